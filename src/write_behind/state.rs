//! The local state of one key on a write-behind node.
//!
//! A key's [`Entry`] keeps inline, in its table bucket, only what a hit on
//! its newest window reads and writes: that window's counts and the two
//! queue marks (64 bytes; 80 with the key's hash). The key's name, its
//! older windows and the budget-split state live behind pointers a plain
//! hit does not follow, so that a table of many keys costs a hit about the
//! cache lines a memory-engine counter costs it.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// One window of one key as this node knows it.
///
/// The count answered locally is `global + (local - sent)`: the global total
/// the remote returned for the last acknowledged report, plus what this node
/// accepted since that report.
///
/// A hit on a window that exists adds to `local` (and, under budget split,
/// to its [`Split`]'s `asked`, or raises `want`) under the table shard's
/// shared lock; everything else changes under its exclusive lock, so a hit
/// reads `sent`, `global` and the share as one consistent state.
#[derive(Debug)]
pub(crate) struct Win {
    /// Window length in seconds (0: the empty head of an entry with no window).
    pub expiry: u64,
    /// Epoch-aligned window index.
    pub window: u64,
    /// This node's cumulative accepted hits in the window.
    local: AtomicU64,
    /// The cumulative total of the last acknowledged report.
    pub sent: u64,
    /// The global total the remote answered that report with.
    pub global: u64,
    /// Budget split: the window's share, made (under the exclusive lock) by
    /// the first hit or answer that needs one.
    split: Option<Box<Split>>,
}

/// Budget split: a window's share of its budget (see
/// [the storage's documentation](super::storage)).
#[derive(Debug)]
pub(crate) struct Split {
    /// The cumulative `local` this node may reach in the window (its claim
    /// once granted, its opening share before).
    pub allowed: u64,
    /// The window's limit as of the last hit that knew it (0: none known),
    /// sent with the next report.
    pub budget: u64,
    /// The largest hit refused for want of share since the last grant
    /// (raised under the shard's shared lock or its exclusive one).
    want: AtomicU64,
    /// Whether `allowed` was granted by the remote.
    pub granted: bool,
    /// Hits asked for (admitted or refused for want of share) since the
    /// last grant.
    asked: AtomicU64,
    /// The next window's budget is `budget` too (a fixed window), so its
    /// share is asked for ahead, with this one's reports.
    pub ahead: bool,
}

impl Split {
    fn new() -> Self {
        Split {
            allowed: 0,
            budget: 0,
            want: AtomicU64::new(0),
            granted: false,
            asked: AtomicU64::new(0),
            ahead: false,
        }
    }

    /// Hits asked for since the last grant.
    #[inline]
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// Records `amount` hits asked for (under the shard's shared lock or
    /// its exclusive one).
    #[inline]
    pub fn ask(&self, amount: u64) {
        let _ = self
            .asked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                Some(a.saturating_add(amount))
            });
    }

    /// The largest hit refused for want of share since the last grant.
    #[inline]
    pub fn want(&self) -> u64 {
        self.want.load(Ordering::Relaxed)
    }

    /// Records a hit of `amount` refused for want of share (under the
    /// shard's shared lock or its exclusive one).
    #[inline]
    pub fn refused_for_share(&self, amount: u64) {
        self.want.fetch_max(amount, Ordering::Relaxed);
    }

    /// Forgets the largest refused hit once a grant asked for at least
    /// `want` answered it (under the shard's exclusive lock).
    pub fn want_answered(&mut self, want: u64) {
        let _ = self
            .want
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                (w <= want).then_some(0)
            });
    }

    /// Forgets the `asked` hits a grant answered (under the shard's
    /// exclusive lock).
    pub fn answered(&mut self, asked: u64) {
        let _ = self
            .asked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                Some(a.saturating_sub(asked))
            });
    }
}

impl Win {
    /// Whether Unix second `secs` falls in this window.
    #[inline]
    pub fn holds(&self, secs: u64) -> bool {
        let start = self.start();
        start <= secs && secs - start < self.expiry
    }

    /// The window's first Unix second.
    #[inline]
    fn start(&self) -> u64 {
        self.window.saturating_mul(self.expiry)
    }

    /// Whether, at Unix second `now`, the remote dropped this window's
    /// slots a window ago or more: they live until one window after the
    /// window ends, so this is from `(window + 3) × expiry` on (the extra
    /// window allows for clocks that disagree). A report of the window can
    /// no longer count towards any limit.
    fn forgotten(&self, now: u64) -> bool {
        window_of(now, self.expiry) >= self.window.saturating_add(3)
    }

    fn new(expiry: u64, window: u64) -> Self {
        Win {
            expiry,
            window,
            local: AtomicU64::new(0),
            sent: 0,
            global: 0,
            split: None,
        }
    }

    /// This node's cumulative accepted hits.
    #[inline]
    pub fn local(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }

    /// Counts `amount` accepted hits (under the shard's shared lock, or
    /// its exclusive one); returns the estimate of the global count after.
    #[inline]
    pub fn add(&self, amount: u64) -> u64 {
        let local = self.local.fetch_add(amount, Ordering::Relaxed) + amount;
        self.global + (local - self.sent)
    }

    /// Counts `amount` accepted hits if `admit(local, estimate)` holds for
    /// the cumulative `local` and the estimate of the global count the add
    /// would leave, as one step with the add (a compare-and-swap on
    /// `local`, under the shard's shared lock): racing hits never admit
    /// together what each alone would not. Returns whether it counted.
    #[inline]
    pub fn add_if(&self, amount: u64, admit: impl Fn(u64, u64) -> bool) -> bool {
        let mut local = self.local.load(Ordering::Relaxed);
        loop {
            let after = local.saturating_add(amount);
            if !admit(after, self.global + (after - self.sent)) {
                return false;
            }
            match self.local.compare_exchange_weak(
                local,
                after,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => local = now,
            }
        }
    }

    /// Budget split: the window's share, if one was made.
    #[inline]
    pub fn split(&self) -> Option<&Split> {
        self.split.as_deref()
    }

    /// Budget split: the window's share, made empty if there is none yet
    /// (under the shard's exclusive lock).
    pub fn split_mut(&mut self) -> &mut Split {
        self.split.get_or_insert_with(|| Box::new(Split::new()))
    }

    /// Budget split: hits asked for since the last grant.
    pub fn asked(&self) -> u64 {
        self.split().map_or(0, Split::asked)
    }

    /// Budget split: the largest hit refused for want of share since the
    /// last grant.
    pub fn want(&self) -> u64 {
        self.split().map_or(0, Split::want)
    }

    /// Budget split: the window's limit as of the last hit that knew it.
    pub fn budget(&self) -> u64 {
        self.split().map_or(0, |s| s.budget)
    }

    /// Budget split: whether the next window's share is asked for ahead.
    pub fn ahead(&self) -> bool {
        self.split().is_some_and(|s| s.ahead)
    }

    /// Hits accepted that the remote has not acknowledged.
    #[inline]
    pub fn unsynced(&self) -> u64 {
        self.local() - self.sent
    }

    /// The best local estimate of the global count.
    pub fn count(&self) -> u64 {
        self.global + self.unsynced()
    }

    /// Whether hits were accepted that the remote has not acknowledged.
    pub fn pending(&self) -> bool {
        self.unsynced() > 0
    }

    /// Budget split: whether the window waits for a share from the remote
    /// (none granted yet, or a hit found the share spent).
    pub fn wants_share(&self) -> bool {
        self.split()
            .is_some_and(|s| s.budget > 0 && (!s.granted || s.want() > 0))
    }

    /// Forgets the acknowledgement (the remote lost it), keeping the
    /// estimate of the global count: the whole local total is sent again.
    pub fn resend(&mut self) {
        self.global = self.global.saturating_sub(self.sent);
        self.sent = 0;
    }

    /// Records an acknowledged report of `total` answered with `global`.
    /// An acknowledgement older than one already applied is ignored.
    pub fn ack(&mut self, total: u64, global: u64) {
        if total >= self.sent && total <= self.local() {
            self.sent = total;
            // The remote keeps the largest total per node, so its answer
            // includes at least `total` of ours.
            self.global = global.max(total);
        }
    }
}

/// Whether a key waits in one of the node's queues: set by the hit that
/// queues it (under the shard's shared lock, so hits race to set it) and
/// cleared by the syncer when it takes the key (under the exclusive lock).
#[derive(Debug)]
pub(crate) struct Mark(AtomicBool);

impl Mark {
    fn new() -> Self {
        Mark(AtomicBool::new(false))
    }

    /// Sets the mark; true for the one call that found it clear, which
    /// queues the key. A read first keeps hits on a queued key from writing
    /// the line.
    #[inline]
    pub fn set(&self) -> bool {
        !self.0.load(Ordering::Relaxed) && !self.0.swap(true, Ordering::Relaxed)
    }

    pub fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything a node holds for one key: its recent windows (the current one
/// and the previous one, which sliding windows weigh, plus any older window
/// still pending) and whether the key waits in the sync queue. The queue
/// marks are set by hits under the shard's shared lock and cleared by the
/// syncer under its exclusive one.
///
/// The window that starts last (`head`) is inline; older ones are in
/// [`Cold`]. An entry whose head is empty holds no window at all.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The newest window: the one nearly every hit counts in.
    head: Win,
    /// Set while the key is in the pending queue.
    pub dirty: Mark,
    /// Set while the key is in the early-sync queue.
    pub early: Mark,
    /// What a hit on the head does not read.
    pub cold: Box<Cold>,
}

/// The part of an [`Entry`] off a plain hit's path.
#[derive(Debug)]
pub(crate) struct Cold {
    /// The key itself, as reports carry it (the table holds its hash).
    pub key: Arc<str>,
    /// The windows older than the head, oldest first.
    older: SmallVec<[Win; 1]>,
    /// Budget split: the nodes the remote last said share the key (0: not
    /// known yet).
    pub nodes: u64,
    /// Budget split: hits asked for in the key's last period between two
    /// grants, decaying by half per grant: what the node expects to ask for
    /// until its next one.
    pub demand: u64,
}

/// The epoch-aligned window index of Unix time `secs` (whole seconds) for
/// windows of `expiry` seconds.
#[inline]
pub(crate) fn window_of(secs: u64, expiry: u64) -> u64 {
    secs / expiry.max(1)
}

/// A clock's origin as Unix time in whole seconds and nanoseconds, so
/// that the node turns a clock reading into whole Unix seconds with
/// integers only (no division but by a constant). It is the floor of
/// [`Clock::to_unix`](crate::Clock::to_unix), exact where that float sum
/// rounds up a nanosecond before a second ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    secs: u64,
    nanos: u64,
}

impl Origin {
    const NANOS: u64 = 1_000_000_000;

    /// The origin at Unix time `unix` (seconds; negative counts as 0).
    pub fn new(unix: f64) -> Self {
        let unix = unix.max(0.0);
        let secs = unix as u64;
        let nanos = (((unix - secs as f64) * 1e9) as u64).min(Self::NANOS - 1);
        Origin { secs, nanos }
    }

    /// The index of the window of `expiry` seconds that Unix time `nanos`
    /// after the origin falls in, and the nanoseconds left in it.
    pub fn split(&self, nanos: u64, expiry: u64) -> (u64, u64) {
        // In u64 nanoseconds up to the year 2554 (then saturated); a span
        // of MAX_EXPIRY (100 years) fits.
        let span = expiry.clamp(1, u64::MAX / Self::NANOS) * Self::NANOS;
        let unix = self
            .secs
            .saturating_mul(Self::NANOS)
            .saturating_add(self.nanos)
            .saturating_add(nanos);
        (unix / span, span - unix % span)
    }

    /// The whole Unix seconds `nanos` after the origin.
    #[inline]
    pub fn unix_secs(&self, nanos: u64) -> u64 {
        // Saturates only 584 years after the origin.
        self.secs
            .saturating_add(nanos.saturating_add(self.nanos) / Self::NANOS)
    }
}

impl Entry {
    pub fn new(key: &str) -> Self {
        Entry {
            head: Win::new(0, 0),
            dirty: Mark::new(),
            early: Mark::new(),
            cold: Box::new(Cold {
                key: Arc::from(key),
                older: SmallVec::new(),
                nodes: 0,
                demand: 0,
            }),
        }
    }

    /// The newest window, if the entry holds any.
    pub fn head(&self) -> Option<&Win> {
        (!self.is_empty()).then_some(&self.head)
    }

    /// Whether the entry holds no window.
    pub fn is_empty(&self) -> bool {
        // Older windows are only kept beside a head.
        self.head.expiry == 0
    }

    /// The windows, newest first.
    pub fn windows(&self) -> impl Iterator<Item = &Win> {
        self.head().into_iter().chain(self.cold.older.iter().rev())
    }

    /// The windows, newest first, to change (under the exclusive lock).
    pub fn windows_mut(&mut self) -> impl Iterator<Item = &mut Win> {
        let head = (!self.is_empty()).then_some(&mut self.head);
        head.into_iter().chain(self.cold.older.iter_mut().rev())
    }

    pub fn find(&self, expiry: u64, window: u64) -> Option<&Win> {
        self.windows()
            .find(|w| w.expiry == expiry && w.window == window)
    }

    /// The window of `expiry` that holds Unix second `secs`: found with a
    /// multiplication per window, not the division that gives its index.
    #[inline]
    pub fn current(&self, expiry: u64, secs: u64) -> Option<&Win> {
        let head = &self.head;
        if head.expiry == expiry && head.holds(secs) {
            return Some(head);
        }
        self.cold
            .older
            .iter()
            .rev()
            .find(|w| w.expiry == expiry && w.holds(secs))
    }

    pub fn find_mut(&mut self, expiry: u64, window: u64) -> Option<&mut Win> {
        self.windows_mut()
            .find(|w| w.expiry == expiry && w.window == window)
    }

    /// The window `(expiry, window)`, created empty if absent. A window
    /// that starts after the head (or at its start) becomes the head.
    pub fn win_mut(&mut self, expiry: u64, window: u64) -> &mut Win {
        if self.head.expiry == expiry && self.head.window == window {
            return &mut self.head;
        }
        let older = &mut self.cold.older;
        if let Some(i) = older
            .iter()
            .position(|w| w.expiry == expiry && w.window == window)
        {
            return &mut older[i];
        }
        let win = Win::new(expiry, window);
        if self.head.expiry == 0 {
            self.head = win;
        } else if win.start() >= self.head.start() {
            older.push(std::mem::replace(&mut self.head, win));
        } else {
            older.push(win);
            return older.last_mut().expect("just pushed");
        }
        &mut self.head
    }

    /// The estimated count of `(expiry, window)`, 0 if unknown.
    pub fn count(&self, expiry: u64, window: u64) -> u64 {
        self.find(expiry, window).map_or(0, Win::count)
    }

    /// Whether any window has unacknowledged hits.
    pub fn pending(&self) -> bool {
        self.windows().any(Win::pending)
    }

    /// Drops windows that ended more than one window before `now` (whole
    /// Unix seconds) and have nothing pending, and pending ones whose
    /// remote slots are gone ([forgotten](Win::forgotten): an outage, or a
    /// sync interval, longer than the window and its slots' life). Returns
    /// the undelivered hits dropped with those.
    pub fn prune(&mut self, now: u64) -> u64 {
        let mut dropped = 0;
        let mut keep = |w: &Win| {
            let recent = w.window.saturating_add(1) >= window_of(now, w.expiry);
            if recent || !w.pending() {
                return recent;
            }
            if w.forgotten(now) {
                dropped += w.unsynced();
                return false;
            }
            true
        };
        let older = &mut self.cold.older;
        older.retain(|w| keep(w));
        if self.head.expiry != 0 && !keep(&self.head) {
            // The newest older window takes the head's place.
            self.head = match (0..older.len()).max_by_key(|&i| older[i].start()) {
                Some(i) => older.remove(i),
                None => Win::new(0, 0),
            };
        }
        dropped
    }

    /// Budget split: what a node that has not heard from the remote in a
    /// window may admit there: `⌊limit / (n + 1)⌋` for the `n` nodes last
    /// seen sharing the key, or, for a key not synced yet, the most nodes
    /// `peers` seen sharing any key; nothing before the node's first share
    /// (`peers` 0). It is what [`share_rule`] grants with nothing used.
    ///
    /// [`share_rule`]: super::target::share_rule
    pub fn opening_share(&self, limit: u64, peers: u64) -> u64 {
        match if self.cold.nodes > 0 {
            self.cold.nodes
        } else {
            peers
        } {
            0 => 0,
            n => limit / (n + 1),
        }
    }
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn count_rebases_on_the_acknowledged_global() {
        let mut e = Entry::new("k");
        let w = e.win_mut(10, 5);
        w.add(3);
        assert_eq!(w.count(), 3);
        w.ack(3, 10);
        assert_eq!(w.count(), 10);
        w.add(2);
        assert_eq!(w.count(), 12);
        // A stale acknowledgement changes nothing.
        w.ack(1, 4);
        assert_eq!((w.sent, w.global), (3, 10));
        assert!(w.pending());
        w.ack(5, 20);
        assert_eq!(w.count(), 20);
        assert!(!e.pending());
    }

    #[test]
    fn prune_keeps_the_previous_window_and_pending_ones() {
        let mut e = Entry::new("k");
        let w = e.win_mut(10, 1); // delivered, old
        w.add(1);
        w.ack(1, 1);
        e.win_mut(10, 2).add(1); // pending, two windows old
        let w = e.win_mut(10, 4);
        w.add(1);
        w.ack(1, 1);
        assert_eq!(e.prune(45), 0); // window 4
        let kept: Vec<u64> = e.windows().map(|w| w.window).collect();
        assert_eq!(kept, vec![4, 2], "newest first");
        assert_eq!(window_of(45, 10), 4);
        // The head ends: the newest older window takes its place, and an
        // entry left with none is empty.
        let mut e = Entry::new("k");
        e.win_mut(60, 0).add(1); // pending, a minute long
        let w = e.win_mut(10, 4);
        w.add(1);
        w.ack(1, 1);
        assert_eq!(e.head().map(|w| w.expiry), Some(10));
        assert_eq!(e.prune(65), 0); // the 10 s window 4 ended more than a window ago
        assert_eq!(e.head().map(|w| (w.expiry, w.window)), Some((60, 0)));
        assert_eq!(e.windows().count(), 1);
        e.find_mut(60, 0).unwrap().ack(1, 1);
        e.prune(125);
        assert!(e.is_empty() && e.head().is_none() && !e.pending());
    }

    #[test]
    fn prune_drops_pending_windows_the_remote_has_forgotten() {
        let mut e = Entry::new("k");
        for window in 10..20 {
            e.win_mut(60, window).add(window);
        }
        // At window 20 the slots of windows up to 17 expired a window ago
        // or more (window 17's at the start of window 19).
        let now = 20 * 60 + 5;
        assert_eq!(e.prune(now), (10..=17).sum::<u64>());
        let kept: Vec<u64> = e.windows().map(|w| w.window).collect();
        assert_eq!(kept, vec![19, 18]);
        assert_eq!(e.prune(now), 0, "nothing more to drop");
        // The head goes too once forgotten, and the entry is empty.
        assert_eq!(e.prune(22 * 60), 18 + 19);
        assert!(e.is_empty());
    }

    #[test]
    fn the_window_that_starts_last_is_the_head() {
        let mut e = Entry::new("k");
        assert!(e.is_empty());
        e.win_mut(10, 5).add(1);
        e.win_mut(10, 6).add(2);
        assert_eq!(e.head().map(|w| (w.window, w.local())), Some((6, 2)));
        // An older window goes beside it, and is found again.
        e.win_mut(10, 4).add(3);
        // A window starting with the head (at 60) replaces it.
        e.win_mut(60, 1).add(4);
        assert_eq!(e.head().map(|w| (w.expiry, w.window)), Some((60, 1)));
        let all: Vec<(u64, u64, u64)> = e
            .windows()
            .map(|w| (w.expiry, w.window, w.local()))
            .collect();
        assert_eq!(all, vec![(60, 1, 4), (10, 6, 2), (10, 4, 3), (10, 5, 1)]);
        assert_eq!(e.count(10, 5), 1);
        assert_eq!(e.current(10, 65).map(|w| w.window), Some(6));
        assert_eq!(e.current(60, 65).map(|w| w.window), Some(1));
        assert_eq!(e.current(10, 75).map(|w| w.window), None);
        assert_eq!(e.win_mut(10, 5).local(), 1, "found, not made again");
        assert_eq!(e.windows().count(), 4);
    }

    /// What a hit on the newest window reads fits one cache line beside the
    /// 16-byte key hash in the table's bucket.
    #[test]
    fn an_entry_is_a_cache_line() {
        assert!(std::mem::size_of::<Entry>() <= 64);
        assert!(std::mem::size_of::<Win>() <= 48);
    }

    #[test]
    fn a_window_holds_the_seconds_whose_index_it_is() {
        let mut e = Entry::new("k");
        for window in [0, 1, 170_000_000] {
            e.win_mut(10, window);
        }
        e.win_mut(7, 3);
        for secs in (0..40).chain(1_699_999_990..1_700_000_020) {
            let found = e.current(10, secs).map(|w| w.window);
            let index = window_of(secs, 10);
            let held = [0, 1, 170_000_000].contains(&index);
            assert_eq!(found, held.then_some(index), "second {secs}");
            let found = e.current(7, secs).map(|w| w.window);
            assert_eq!(
                found,
                (window_of(secs, 7) == 3).then_some(3),
                "second {secs}"
            );
        }
    }

    #[test]
    fn unix_seconds_are_the_floor_of_the_clock_as_unix_time() {
        let nanos = [
            0,
            1,
            499_999_999,
            500_000_000,
            999_999_999,
            1_000_000_000,
            59_999_999_999,
            60_000_000_000,
            86_400_123_456_789,
        ];
        for origin in [0.0, 1_700_000_000.0, 1_700_000_000.5, 1_700_000_059.25] {
            for n in nanos {
                // Exact: these origins are whole nanoseconds in binary.
                let expected = ((origin * 1e9) as u128 + u128::from(n)) / 1_000_000_000;
                let expected = expected as u64;
                let got = Origin::new(origin).unix_secs(n);
                assert_eq!(got, expected, "origin {origin}, nanos {n}");
            }
        }
        assert_eq!(Origin::new(-5.0).unix_secs(2_000_000_000), 2);
        // A window's index and what is left of it, from the same integers.
        let o = Origin::new(1_700_000_000.5);
        assert_eq!(o.split(0, 60), (1_700_000_000 / 60, 39_500_000_000));
        for n in nanos {
            let (window, left) = o.split(n, 60);
            assert_eq!(window, window_of(o.unix_secs(n), 60), "nanos {n}");
            assert!(left > 0 && left <= 60_000_000_000);
        }
        assert_eq!(Origin::new(f64::MAX).unix_secs(u64::MAX), u64::MAX);
    }
}

/// The protocol of a node's hits and its syncer on one key, with the locks
/// the node takes (its table shard's, a reader-writer lock, and the pending
/// queue's): hits on an existing window add under the shared lock and queue
/// the key on the first hit after a sync; a sync pass clears the mark and
/// snapshots the total under the exclusive lock, then acknowledges. No
/// interleaving loses a hit: every hit is in a delivered snapshot or has
/// queued the key for the next pass.
#[cfg(all(test, limitstore_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Mutex, RwLock};
    use loom::thread;

    struct Node {
        shard: RwLock<Entry>,
        pending: Mutex<usize>,
        remote: Mutex<u64>,
    }

    impl Node {
        fn hit(&self) -> u64 {
            let e = self.shard.read().unwrap();
            let w = e.find(60, 1).expect("the window exists");
            let count = w.add(1);
            if e.dirty.set() {
                *self.pending.lock().unwrap() += 1;
            }
            count
        }

        /// One pass: returns whether the key was queued.
        fn sync(&self) -> bool {
            let queued = std::mem::take(&mut *self.pending.lock().unwrap());
            if queued == 0 {
                return false;
            }
            let total = {
                let e = self.shard.write().unwrap();
                e.dirty.clear();
                e.find(60, 1).unwrap().local()
            };
            let global = {
                let mut remote = self.remote.lock().unwrap();
                *remote = (*remote).max(total);
                *remote
            };
            let mut e = self.shard.write().unwrap();
            e.find_mut(60, 1).unwrap().ack(total, global);
            true
        }
    }

    /// Two hits racing for the last place of a limit (`add_if`, as budget
    /// split and sliding windows admit under the shared lock) while a pass
    /// snapshots and acknowledges: exactly one is admitted, and the remote
    /// ends with exactly the admitted total.
    #[test]
    fn hits_racing_for_the_last_place_admit_one() {
        loom::model(|| {
            let mut entry = Entry::new("k");
            entry.win_mut(60, 1).add(1);
            let node = Arc::new(Node {
                shard: RwLock::new(entry),
                pending: Mutex::new(1),
                remote: Mutex::new(0),
            });
            let hitters: Vec<_> = (0..2)
                .map(|_| {
                    let node = node.clone();
                    thread::spawn(move || {
                        let e = node.shard.read().unwrap();
                        let w = e.find(60, 1).expect("the window exists");
                        let admitted = w.add_if(1, |_, estimate| estimate <= 2);
                        if admitted && e.dirty.set() {
                            *node.pending.lock().unwrap() += 1;
                        }
                        admitted
                    })
                })
                .collect();
            node.sync();
            let admitted = hitters
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&a| a)
                .count();
            assert_eq!(admitted, 1, "one place, one admission");
            node.sync();
            assert_eq!(*node.remote.lock().unwrap(), 2);
            assert!(!node.shard.read().unwrap().pending());
        });
    }

    #[test]
    fn hits_racing_a_sync_are_each_delivered() {
        loom::model(|| {
            let mut entry = Entry::new("k");
            entry.win_mut(60, 1);
            let node = Arc::new(Node {
                shard: RwLock::new(entry),
                pending: Mutex::new(0),
                remote: Mutex::new(0),
            });
            let hitters: Vec<_> = (0..2)
                .map(|_| {
                    let node = node.clone();
                    thread::spawn(move || node.hit())
                })
                .collect();
            node.sync();
            let mut counts: Vec<u64> = hitters.into_iter().map(|h| h.join().unwrap()).collect();
            counts.sort_unstable();
            assert_eq!(counts, [1, 2], "each hit sees a count of its own");
            // What the racing pass missed is queued: one more pass delivers it.
            node.sync();
            assert_eq!(*node.remote.lock().unwrap(), 2);
            assert!(!node.sync(), "nothing left queued");
            let e = node.shard.read().unwrap();
            assert!(!e.pending());
        });
    }
}
