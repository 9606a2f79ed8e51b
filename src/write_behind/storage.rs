//! [`WriteBehind`]: the storage that answers hits locally and reconciles
//! with a [`SyncTarget`].
//!
//! The table holds entries by the 128-bit hash of their key (the memory
//! engine's [`Key`], in its [`Shards`], whose shared lock is taken in the
//! reader's own thread slot, so hits on two threads write no common lock
//! word). An entry keeps its newest window's counts and its queue marks
//! inline in the bucket and the rest (its key's name for the reports, older
//! windows, budget-split state) behind a pointer. A hit on a window that
//! exists takes the shard's shared lock and adds to the window's atomic
//! total (a sliding window's hit, which must fit the weighted count, checks
//! and adds in one compare-and-swap); only the first hit after a sync takes
//! a lock beyond it, one stripe of the pending queue, to queue the key. A
//! new key and a new window take the shard's exclusive lock, and so does a
//! hit under budget split that changes more than the counts (a first claim,
//! a new budget).
//! A sync pass clears a key's mark and snapshots its totals under the
//! exclusive lock, so every hit is either in the snapshot or queues the key
//! again (the loom models in `state.rs`).
//!
//! Lock order, outermost first: `sync_lock`, a write-through stripe, a
//! table shard, a `pending` stripe or `early`, `last_error`. A thread
//! holding a later lock never takes an earlier one: a hit marks its key
//! dirty (`pending`) or asks for an early sync (`early`) while it holds the
//! key's shard, so a sync pass takes the lists, empties them and lets them
//! go before it reads the table, never reading the table while holding one.
//! `incarnation` is taken only under `sync_lock`, alone.
//!
//! Budget split (see [the module](crate::write_behind)) keeps, beside each
//! window, a `Split`: the claim the remote granted, the limit last hit
//! against and the largest hit refused for want of share. It is made by the
//! first hit or answer that needs one, so a node without budget split
//! carries none. The claim, the limit and the look-ahead change under the
//! key's shard's exclusive lock; a hit on a granted claim reads them under
//! the shared lock and, with atomics, adds to the count and to the hits
//! asked for, or records the largest hit refused for want of share. It adds
//! no lock.
//!
//! A remote that loses its data (a restart without persistence, a flush)
//! is noticed by its [incarnation marker](SyncTarget::incarnation), read
//! after every sync pass that reached the remote (and before the first):
//! when the marker changes, every window the node holds is sent again with
//! its whole cumulative total in the same pass, so after it the remote
//! counts every hit this node accepted, for every key, hit again or not.
//! Hits of a node that died meanwhile, and of windows whose slots expired,
//! are not recovered.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use parking_lot::Mutex;

use super::state::{window_of, Entry, Origin, Win};
use super::stats::Stats;
use super::target::{Budget, Report, Share, SyncTarget};
use super::FailurePolicy;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::memory::{hash_parts, hash_str, shards_for, Key, Shards};
use crate::storage::{
    validate_acquire, validate_acquire_len, validate_amount, validate_expiry, validate_key,
    validate_key_len, LimitKey, SlidingWindow, SlidingWindowCounterSupport, Storage, MAX_AMOUNT,
};

/// Locks that serialize write-through operations per key.
const STRIPES: usize = 256;

/// Stripes of the pending queue, so that first hits after a sync on
/// different keys rarely meet on one lock.
const PENDING_STRIPES: usize = 64;

/// How often the local table drops windows that are over, in clock nanoseconds.
const PRUNE_EVERY: u64 = 1_000_000_000;

/// How often a full table looks for room (drops windows that are over),
/// at most, in clock nanoseconds: a flood of new keys into a full table
/// costs one pass per period, not one per key.
const ROOM_EVERY: u64 = 100_000_000;

/// A storage that answers every hit from local state and reconciles with a
/// remote [`SyncTarget`] in the background.
///
/// Built and started with [`WriteBehind::builder`]; see the
/// [module documentation](crate::write_behind) for the model.
///
/// Counting follows fixed windows aligned to the epoch: the window of a hit
/// at Unix time `t` is `floor(t / expiry)`, the same on every node, so all
/// nodes count the same window. What the storage does not do:
/// - `incr` with `elastic_expiry` is an [`InvalidArgument`](crate::ErrorKind::InvalidArgument)
///   error: an expiry that moves with each hit has no window every node agrees on.
/// - [`moving_window`](Storage::moving_window) is `None`: a log of timestamps
///   cannot be answered from local counts, so the moving-window strategy
///   refuses this storage at construction.
/// - [`get`](Storage::get) and [`get_expiry`](Storage::get_expiry) of a key
///   this node never counted answer 0: the node does not know its expiry.
/// - It holds at most [`max_entries`](super::WriteBehindBuilder::max_entries)
///   keys. A key stays while one of its windows is live or undelivered (its
///   cumulative totals must survive for its reports to stay exact) and is
///   dropped after. A hit on a new key when the table is full of such keys
///   is not recorded (see [`Stats::unrecorded_hits`]).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use limitstore::{FakeClock, Storage};
/// use limitstore::write_behind::{MemoryRemote, WriteBehind};
///
/// let remote = Arc::new(MemoryRemote::new());
/// let clock = FakeClock::new();
/// let a = WriteBehind::builder(remote.clone()).node_id("a").clock(clock.clone())
///     .sync_interval(Duration::from_secs(3600)).start().unwrap();
/// let b = WriteBehind::builder(remote.clone()).node_id("b").clock(clock.clone())
///     .sync_interval(Duration::from_secs(3600)).start().unwrap();
/// assert_eq!(a.incr("k", 60, false, 3).unwrap(), 3);
/// assert_eq!(b.incr("k", 60, false, 2).unwrap(), 2); // b does not know about a yet
/// a.flush().unwrap();
/// b.flush().unwrap(); // b reports 2 and reads back 5
/// assert_eq!(b.get("k").unwrap(), 5);
/// // A node learns the global count when it syncs a key it counted in.
/// assert_eq!(a.incr("k", 60, false, 1).unwrap(), 4);
/// a.flush().unwrap();
/// assert_eq!(a.get("k").unwrap(), 6);
/// ```
pub struct WriteBehind {
    /// Entries by the 128-bit hash of their key (see [`Key`]), in the
    /// memory engine's shards (a reader locks only its thread's slot).
    map: Shards<Entry>,
    /// Seed of the key hash, random per node.
    seed: u64,
    /// Keys in `map`: a counter, as `Shards::len` visits every shard.
    entries: AtomicUsize,
    max_entries: usize,
    next_room: AtomicU64,
    unrecorded: AtomicU64,
    /// Set once the first unrecorded hit of a full spell is reported.
    full_reported: AtomicBool,
    /// Undelivered hits dropped with windows the remote had forgotten.
    forgotten: AtomicU64,
    /// Set once such a drop is reported, until the remote answers again.
    forgotten_reported: AtomicBool,
    /// Keys with unacknowledged hits, each once, in stripes by key.
    pending: Box<[Mutex<Vec<Key>>]>,
    target: Arc<dyn SyncTarget>,
    node: String,
    clock: Arc<dyn Clock>,
    /// `clock`'s origin, fixed as a clock's origin is.
    origin: Origin,
    interval: Duration,
    batch_size: usize,
    policy: FailurePolicy,
    grace: Duration,
    /// Held by a sync pass, `clear` and `reset`: one at a time.
    sync_lock: Mutex<()>,
    stripes: Box<[Mutex<()>]>,
    next_prune: AtomicU64,
    syncs: AtomicU64,
    errors: AtomicU64,
    remote_calls: AtomicU64,
    reports_sent: AtomicU64,
    /// Wall time spent in remote calls, in nanoseconds.
    remote_nanos: AtomicU64,
    /// Clock nanos + 1 of the first failure of the current outage; 0 when healthy.
    failing_since: AtomicU64,
    /// Clock nanos + 1 of the last successful sync; 0 before the first.
    last_sync: AtomicU64,
    last_error: Mutex<Option<Error>>,
    /// The remote's incarnation marker as last seen (see the module doc).
    incarnation: Mutex<Option<String>>,
    /// Times the marker changed: the remote had lost its data.
    remote_losses: AtomicU64,
    /// Budget split on (and not write-through): see the module doc.
    budget_split: bool,
    /// Unsynced hits on one window that ask for an early sync.
    max_unsynced: Option<u64>,
    /// The least time between two early syncs.
    early_gap: Duration,
    /// Whether the marker is watched at all (see the builder).
    incarnation_marker: bool,
    /// Keys that asked for an early sync, each once (see `Entry::early`).
    early: Mutex<Vec<Key>>,
    /// The syncer thread, woken by early-sync requests.
    syncer: OnceLock<Thread>,
    early_syncs: AtomicU64,
    share_refusals: AtomicU64,
    /// Budget split: the most nodes a share answer said shared a key.
    peers: AtomicU64,
}

pub(crate) struct Config {
    pub target: Arc<dyn SyncTarget>,
    pub node: String,
    pub clock: Arc<dyn Clock>,
    pub interval: Duration,
    pub batch_size: usize,
    pub policy: FailurePolicy,
    pub grace: Duration,
    pub max_entries: usize,
    pub budget_split: bool,
    pub max_unsynced: Option<u64>,
    pub early_gap: Duration,
    pub incarnation_marker: bool,
}

impl fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBehind")
            .field("node", &self.node)
            .field("interval", &self.interval)
            .field("policy", &self.policy)
            .field("keys", &self.entries.load(Ordering::Relaxed))
            .field("target", &self.target)
            .finish()
    }
}

impl WriteBehind {
    pub(crate) fn new(c: Config) -> Self {
        WriteBehind {
            map: Shards::new(shards_for(c.max_entries)),
            seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x7762_6e6f_6465u64)
            },
            entries: AtomicUsize::new(0),
            max_entries: c.max_entries.max(1),
            next_room: AtomicU64::new(0),
            unrecorded: AtomicU64::new(0),
            full_reported: AtomicBool::new(false),
            forgotten: AtomicU64::new(0),
            forgotten_reported: AtomicBool::new(false),
            pending: (0..PENDING_STRIPES).map(|_| Mutex::default()).collect(),
            target: c.target,
            node: c.node,
            origin: Origin::new(c.clock.unix_origin()),
            clock: c.clock,
            interval: c.interval,
            batch_size: c.batch_size.max(1),
            policy: c.policy,
            grace: c.grace,
            sync_lock: Mutex::new(()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            next_prune: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            remote_calls: AtomicU64::new(0),
            reports_sent: AtomicU64::new(0),
            remote_nanos: AtomicU64::new(0),
            failing_since: AtomicU64::new(0),
            last_sync: AtomicU64::new(0),
            last_error: Mutex::new(None),
            incarnation: Mutex::new(None),
            remote_losses: AtomicU64::new(0),
            budget_split: c.budget_split && !c.interval.is_zero(),
            max_unsynced: c.max_unsynced.filter(|_| !c.interval.is_zero()),
            early_gap: c.early_gap,
            incarnation_marker: c.incarnation_marker,
            early: Mutex::new(Vec::new()),
            syncer: OnceLock::new(),
            early_syncs: AtomicU64::new(0),
            share_refusals: AtomicU64::new(0),
            peers: AtomicU64::new(0),
        }
    }

    /// The syncer thread to wake for early syncs.
    pub(crate) fn set_syncer(&self, thread: Thread) {
        let _ = self.syncer.set(thread);
    }

    /// Whether the node admits only within shares (see the module doc).
    pub fn is_budget_split(&self) -> bool {
        self.budget_split
    }

    /// The least time between two early syncs.
    pub(crate) fn early_gap(&self) -> Duration {
        self.early_gap
    }

    /// This node's id, as it appears in its reports.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The sync interval; zero means write-through.
    pub fn sync_interval(&self) -> Duration {
        self.interval
    }

    /// Whether every hit goes to the remote before it is answered.
    pub fn is_write_through(&self) -> bool {
        self.interval.is_zero()
    }

    /// [`incr`](Storage::incr) without elastic expiry, also returning the
    /// epoch-aligned window the hits were counted in: `(window, count)`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use limitstore::FakeClock;
    /// use limitstore::write_behind::{MemoryRemote, WriteBehind};
    /// // The fake clock starts at Unix time 1_700_000_000.
    /// let node = WriteBehind::builder(Arc::new(MemoryRemote::new()))
    ///     .clock(FakeClock::new()).start().unwrap();
    /// assert_eq!(node.incr_in_window("k", 60, 2).unwrap(), (1_700_000_000 / 60, 2));
    /// ```
    pub fn incr_in_window(&self, key: &str, expiry: u64, amount: u64) -> Result<(u64, u64)> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        if let Some(e) = self.closed_error() {
            return Err(e);
        }
        let secs = self.unix_secs();
        let window = window_of(secs, expiry);
        if self.is_write_through() {
            let _g = self.stripe(self.key(key)).lock();
            return Ok((window, self.through(key, expiry, &[window], amount)?[0]));
        }
        let k = self.key(key);
        if let Some(counted) = self.count_in_existing(k, expiry, secs, amount) {
            return Ok(counted);
        }
        let count = self.with_entry(key, k, |e| {
            e.win_mut(expiry, window);
            let w = e.find(expiry, window).expect("just made");
            self.counted(k, e, w, amount)
        });
        match count {
            Some(count) => Ok((window, count)),
            None => Ok((window, self.unrecorded(amount)?)),
        }
    }

    /// Counts `amount` in `key`'s window of `expiry` that holds Unix second
    /// `secs`, if the node holds that window: the shard's shared lock and
    /// atomics. `(window, count)`; `None` when the window is not held (the
    /// caller creates it).
    #[inline]
    fn count_in_existing(&self, k: Key, expiry: u64, secs: u64, amount: u64) -> Option<(u64, u64)> {
        self.map
            .read(k, |e| {
                let w = e.current(expiry, secs)?;
                Some((w.window, self.counted(k, e, w, amount)))
            })
            .flatten()
    }

    /// Counts `amount` in window `w` of entry `e` (keyed `k`) and marks it
    /// for the syncer; returns the node's count of the window.
    #[inline]
    fn counted(&self, k: Key, e: &Entry, w: &Win, amount: u64) -> u64 {
        let count = w.add(amount);
        let early = self.over_unsynced(w);
        self.mark_dirty(k, e);
        if early {
            self.request_early(k, e);
        }
        count
    }

    /// A fixed-window hit of `amount` against `limit`, as
    /// [`incr_within`](Storage::incr_within) answers it, also returning the
    /// epoch-aligned window: `(window, admitted)`.
    ///
    /// Without budget split the hit is counted and admitted when the count
    /// is within `limit`; with it, see the [module documentation](crate::write_behind).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use limitstore::FakeClock;
    /// use limitstore::write_behind::{MemoryRemote, WriteBehind};
    /// let node = WriteBehind::builder(Arc::new(MemoryRemote::new()))
    ///     .clock(FakeClock::new()).start().unwrap();
    /// assert_eq!(node.hit_in_window("k", 60, 1, 1).unwrap(), (1_700_000_000 / 60, true));
    /// assert_eq!(node.hit_in_window("k", 60, 1, 1).unwrap(), (1_700_000_000 / 60, false));
    /// ```
    pub fn hit_in_window(
        &self,
        key: &str,
        expiry: u64,
        limit: u64,
        amount: u64,
    ) -> Result<(u64, bool)> {
        if !self.budget_split {
            let (window, count) = self.incr_in_window(key, expiry, amount)?;
            return Ok((window, count <= limit));
        }
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        if let Some(e) = self.closed_error() {
            return Err(e);
        }
        let window = self.window_index(expiry);
        let k = self.key(key);
        if let Some(admitted) = self.fixed_share(k, (expiry, window), amount, limit) {
            return Ok((window, admitted));
        }
        let admitted = self.with_entry(key, k, |e| {
            let fits = e.count(expiry, window).saturating_add(amount) <= limit;
            self.take_share(k, e, (expiry, window), amount, limit, fits, true)
        });
        match admitted {
            Some(admitted) => Ok((window, admitted)),
            None => Ok((window, self.unrecorded(amount)? <= limit)),
        }
    }

    /// Budget split: admits `amount` into `(expiry, window)` of `key` when
    /// the estimate `fits` and the node's share has room (or the remote has
    /// failed past the grace period under [`FailurePolicy::Open`], which then
    /// decides alone). A refused hit is not counted; one refused for want of
    /// share asks for an early sync, as does a hit in a window the node holds
    /// no claim for.
    #[allow(clippy::too_many_arguments)]
    fn take_share(
        &self,
        k: Key,
        e: &mut Entry,
        (expiry, window): (u64, u64),
        amount: u64,
        budget: u64,
        fits: bool,
        ahead: bool,
    ) -> bool {
        let opening = e.opening_share(budget, self.peers.load(Ordering::Relaxed));
        let governed = !self.open_past_grace();
        let w = e.win_mut(expiry, window);
        let local = w.local();
        let s = w.split_mut();
        s.budget = budget;
        s.ahead = ahead;
        if !s.granted {
            s.allowed = s.allowed.max(opening);
        }
        let room = !governed || local.saturating_add(amount) <= s.allowed;
        let admitted = fits && room;
        if fits {
            s.ask(amount);
        }
        if admitted {
            w.add(amount);
        } else if fits {
            s.refused_for_share(amount);
            self.share_refusals.fetch_add(1, Ordering::Relaxed);
        }
        let early = w.wants_share() || self.over_unsynced(w);
        if admitted {
            self.mark_dirty(k, e);
        }
        if early {
            self.request_early(k, e);
        }
        admitted
    }

    /// Budget split: decides a hit of `amount` on `(expiry, window)` of `k`
    /// under the shard's shared lock when the window's share was granted
    /// and the budget and look-ahead are the ones it knows, as
    /// [`take_share`](Self::take_share) would: `judge(entry)` gives the
    /// window's budget and whether an estimate of the global count after
    /// the hit fits. An admission is one compare-and-swap with the add; a
    /// refusal for want of share records the hit asked for and the largest
    /// refused with atomics and asks for an early sync. `None`: the
    /// exclusive path decides (a first claim, a new budget, a window not
    /// held).
    fn share_in_existing<F: Fn(u64) -> bool>(
        &self,
        k: Key,
        (expiry, window): (u64, u64),
        amount: u64,
        ahead: bool,
        judge: impl FnOnce(&Entry) -> (u64, F),
    ) -> Option<bool> {
        self.map
            .read(k, |e| {
                self.share_in_entry(k, e, (expiry, window), amount, ahead, judge)
            })
            .flatten()
    }

    /// [`share_in_existing`](Self::share_in_existing) on `k`'s entry `e`,
    /// under its shard's shared lock.
    fn share_in_entry<F: Fn(u64) -> bool>(
        &self,
        k: Key,
        e: &Entry,
        (expiry, window): (u64, u64),
        amount: u64,
        ahead: bool,
        judge: impl FnOnce(&Entry) -> (u64, F),
    ) -> Option<bool> {
        let w = e.find(expiry, window)?;
        let (budget, fits) = judge(e);
        let s = w
            .split()
            .filter(|s| s.granted && s.budget == budget && s.ahead == ahead)?;
        let cap = if self.open_past_grace() {
            u64::MAX
        } else {
            s.allowed
        };
        // Whether the last estimate judged fitted: a refusal then was for
        // want of share.
        let fitted = std::cell::Cell::new(false);
        let admitted = w.add_if(amount, |local, estimate| {
            fitted.set(fits(estimate));
            fitted.get() && local <= cap
        });
        if fitted.get() {
            s.ask(amount);
        }
        if admitted {
            self.mark_dirty(k, e);
        } else if fitted.get() {
            s.refused_for_share(amount);
            self.share_refusals.fetch_add(1, Ordering::Relaxed);
        }
        if w.wants_share() || self.over_unsynced(w) {
            self.request_early(k, e);
        }
        Some(admitted)
    }

    /// Budget split: a fixed-window hit on the granted share of `k`'s
    /// window, admitted or refused under the shard's shared lock (see
    /// [`share_in_existing`](Self::share_in_existing)); `None`: the
    /// exclusive path decides.
    fn fixed_share(&self, k: Key, window: (u64, u64), amount: u64, limit: u64) -> Option<bool> {
        self.share_in_existing(k, window, amount, true, |_| {
            (limit, move |c: u64| c <= limit)
        })
    }

    /// A sliding-window hit of `amount` against `limit` on `k`'s window
    /// `w` (of `expiry`, at Unix time `now`) if the node holds it: the
    /// shard's shared lock, and the weighted check and the add as one
    /// compare-and-swap. `None`: the exclusive path decides (a window not
    /// held; under budget split, a first claim or a new budget).
    fn slide_in_existing(
        &self,
        k: Key,
        expiry: u64,
        (remaining, w): (f64, u64),
        amount: u64,
        limit: u64,
    ) -> Option<bool> {
        let prev = w.saturating_sub(1);
        // `c` is the estimate after the hit: the fit is judged before it.
        let fits = move |p: u64, c: u64| {
            sliding_fits(
                p,
                c.saturating_sub(amount),
                remaining,
                expiry,
                amount,
                limit,
            )
        };
        if self.budget_split {
            return self.share_in_existing(k, (expiry, w), amount, false, |e| {
                let p = e.count(expiry, prev);
                (
                    sliding_budget(p, remaining, expiry, limit),
                    move |c: u64| fits(p, c),
                )
            });
        }
        self.map
            .read(k, |e| {
                let p = e.count(expiry, prev);
                let admitted = e.find(expiry, w)?.add_if(amount, |_, c| fits(p, c));
                if admitted {
                    self.mark_dirty(k, e);
                }
                Some(admitted)
            })
            .flatten()
    }

    /// Whether `w` holds `max_unsynced` hits or more that are not synced.
    fn over_unsynced(&self, w: &Win) -> bool {
        self.max_unsynced.is_some_and(|m| w.unsynced() >= m.max(1))
    }

    /// Queues `key` for an early sync unless it is queued already, and
    /// wakes the syncer.
    fn request_early(&self, k: Key, entry: &Entry) {
        if entry.early.set() {
            self.early.lock().push(k);
            if let Some(t) = self.syncer.get() {
                t.unpark();
            }
        }
    }

    /// Whether keys wait for an early sync.
    pub(crate) fn early_pending(&self) -> bool {
        !self.early.lock().is_empty()
    }

    /// Under [`FailurePolicy::Open`], whether the remote has failed for
    /// longer than the grace period: shares are no longer kept to.
    fn open_past_grace(&self) -> bool {
        self.policy == FailurePolicy::Open && self.failing_past_grace().is_some()
    }

    /// How long the remote has been failing, once that is the grace period
    /// or longer.
    fn failing_past_grace(&self) -> Option<Duration> {
        let since = self.failing_since.load(Ordering::Acquire);
        if since == 0 {
            return None;
        }
        let failing = Duration::from_nanos(self.clock.now().saturating_sub(since - 1));
        (failing >= self.grace).then_some(failing)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        let now = self.clock.now();
        let since =
            |stamp: u64| (stamp != 0).then(|| Duration::from_nanos(now.saturating_sub(stamp - 1)));
        Stats {
            pending_keys: self.pending.iter().map(|s| s.lock().len() as u64).sum(),
            keys: self.entries.load(Ordering::Relaxed) as u64,
            sync_lag: since(self.last_sync.load(Ordering::Acquire)),
            failing_for: since(self.failing_since.load(Ordering::Acquire)),
            syncs: self.syncs.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            remote_calls: self.remote_calls.load(Ordering::Relaxed),
            reports_sent: self.reports_sent.load(Ordering::Relaxed),
            remote_time: Duration::from_nanos(self.remote_nanos.load(Ordering::Relaxed)),
            unrecorded_hits: self.unrecorded.load(Ordering::Relaxed),
            forgotten_hits: self.forgotten.load(Ordering::Relaxed),
            remote_data_losses: self.remote_losses.load(Ordering::Relaxed),
            early_syncs: self.early_syncs.load(Ordering::Relaxed),
            share_refusals: self.share_refusals.load(Ordering::Relaxed),
        }
    }

    /// The write-through lock of the key hashed as `k`.
    fn stripe(&self, k: Key) -> &Mutex<()> {
        &self.stripes[k.spread() as usize % STRIPES]
    }

    /// The seconds left in the window of `expiry` seconds the clock is in
    /// (a sliding window's weight), and that window's index: both from one
    /// reading in integer nanoseconds, so they agree at a window's edge.
    fn sliding_at(&self, expiry: u64) -> (f64, u64) {
        let (window, left) = self.origin.split(self.clock.now(), expiry);
        (left as f64 / 1e9, window)
    }

    /// The index of the window of `expiry` seconds the clock is in: integer
    /// arithmetic only, for the fixed window's hit path.
    #[inline]
    fn window_index(&self, expiry: u64) -> u64 {
        window_of(self.unix_secs(), expiry)
    }

    /// The clock's Unix time in whole seconds.
    #[inline]
    fn unix_secs(&self) -> u64 {
        self.origin.unix_secs(self.clock.now())
    }

    /// The table's key for `key`: its 128-bit hash, seeded per node (as the
    /// memory engine keys its counters; a collision is as unlikely).
    #[inline]
    fn key(&self, key: &str) -> Key {
        Key::from(hash_str(self.seed, key))
    }

    /// Runs `f` on the entry of `key` (hashed as `k`), creating it if needed
    /// and there is room; `None` when the table is full. Allocates the key
    /// only when the entry is new.
    ///
    /// An existing entry first drops the windows that are over (see
    /// [`Entry::prune`]), so that a key hit through a long outage holds a
    /// few windows, not one per window of the outage.
    fn with_entry<R>(&self, key: &str, k: Key, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut f = Some(f);
        let mut forgotten = 0;
        let found = self.map.write(k, |e| {
            forgotten = e.prune(self.unix_secs());
            f.take().map(|f| f(e))
        });
        self.dropped_forgotten(forgotten);
        if let Some(r) = found.flatten() {
            return Some(r);
        }
        let f = f?;
        // A place is reserved before the key goes in, so racing hits never
        // take the table past its bound.
        let reserved = self.reserve() || (self.make_room() && self.reserve());
        if !reserved {
            return None;
        }
        Some(self.map.upsert(
            k,
            || Entry::new(key),
            |e, made| {
                if !made {
                    // Another hit created it meanwhile: give the place back.
                    self.release();
                }
                f(e)
            },
        ))
    }

    /// Takes a place in the table for a new key, if one is free.
    fn reserve(&self) -> bool {
        self.entries
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max_entries).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a place taken by [`reserve`](Self::reserve) or held by a removed key.
    fn release(&self) {
        let _ = self
            .entries
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// With the table full: drops the windows that are over (at most once
    /// per [`ROOM_EVERY`]); whether there is room now. Takes no lock but the
    /// shards', one at a time.
    fn make_room(&self) -> bool {
        let now = self.clock.now();
        let due = self.next_room.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_room
                .compare_exchange(due, now + ROOM_EVERY, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.prune();
        }
        let room = self.entries.load(Ordering::Relaxed) < self.max_entries;
        if room {
            self.full_reported.store(false, Ordering::Relaxed);
        }
        room
    }

    /// Answers a hit on a new key that the full table could not record: the
    /// failure policy decides (open: as the key's only hit; closed: an
    /// error), and the hit is counted and reported, never silent.
    fn unrecorded(&self, amount: u64) -> Result<u64> {
        self.unrecorded.fetch_add(1, Ordering::Relaxed);
        if !self.full_reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "limitstore: write-behind node `{}` holds {} keys with live or undelivered \
                 windows (max_entries); hits on new keys are not recorded until windows end \
                 or the remote answers (Stats::unrecorded_hits counts them)",
                self.node, self.max_entries
            );
        }
        match self.policy {
            FailurePolicy::Open => Ok(amount),
            FailurePolicy::Closed => Err(Error::storage_msg(
                "write-behind",
                format!(
                    "the node holds {} keys with live or undelivered windows (max_entries): \
                     this hit on a new key is not recorded, failing closed",
                    self.max_entries
                ),
            )),
        }
    }

    /// Counts `hits` accepted in windows dropped because the remote had
    /// forgotten them, and says so once until the remote answers again.
    fn dropped_forgotten(&self, hits: u64) {
        if hits == 0 {
            return;
        }
        self.forgotten.fetch_add(hits, Ordering::Relaxed);
        if !self.forgotten_reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "limitstore: write-behind node `{}`: hits of windows whose remote slots \
                 expired before they could be delivered were dropped (they can no longer \
                 count towards a limit; Stats::forgotten_hits counts them)",
                self.node
            );
        }
    }

    /// Queues `key` for the next sync unless it is queued already: the
    /// first hit after a sync takes one of the pending queue's stripes.
    #[inline]
    fn mark_dirty(&self, k: Key, entry: &Entry) {
        if entry.dirty.set() {
            self.queue(k);
        }
    }

    /// Puts `k` in its stripe of the pending queue.
    fn queue(&self, k: Key) {
        self.pending[k.spread() as usize % PENDING_STRIPES]
            .lock()
            .push(k);
    }

    /// Empties the pending queue, one stripe at a time.
    fn take_pending(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        for stripe in self.pending.iter() {
            keys.append(&mut stripe.lock());
        }
        keys
    }

    /// One remote call: `sync`, or `sync_shares` with `budgets`; plain
    /// answers come back as shares with only `global` set.
    fn call(&self, reports: &[Report<'_>], budgets: Option<&[Budget]>) -> Result<Vec<Share>> {
        self.remote_calls.fetch_add(1, Ordering::Relaxed);
        self.reports_sent
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let res = match budgets {
            Some(budgets) => self.target.sync_shares(reports, budgets),
            None => self.target.sync(reports).map(|globals| {
                globals
                    .into_iter()
                    .map(|global| Share {
                        global,
                        ..Share::default()
                    })
                    .collect()
            }),
        };
        self.remote_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let res = res.and_then(|answers| {
            if answers.len() == reports.len() {
                Ok(answers)
            } else {
                Err(Error::storage_msg(
                    "write-behind",
                    format!(
                        "remote answered {} totals for {} reports",
                        answers.len(),
                        reports.len()
                    ),
                ))
            }
        });
        match &res {
            Ok(_) => {
                self.failing_since.store(0, Ordering::Release);
                if self.forgotten_reported.load(Ordering::Relaxed) {
                    self.forgotten_reported.store(false, Ordering::Relaxed);
                }
                self.last_sync
                    .store(self.clock.now() + 1, Ordering::Release);
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let _ = self.failing_since.compare_exchange(
                    0,
                    self.clock.now() + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                *self.last_error.lock() = Some(e.clone());
            }
        }
        res
    }

    /// Under [`FailurePolicy::Closed`], the error to answer with once the
    /// remote has been failing for longer than the grace period.
    #[inline]
    fn closed_error(&self) -> Option<Error> {
        if self.policy != FailurePolicy::Closed || self.failing_since.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.failing_closed()
    }

    /// [`closed_error`](Self::closed_error) once the remote has failed.
    #[cold]
    fn failing_closed(&self) -> Option<Error> {
        let failing = self.failing_past_grace()?;
        let message = format!("remote failing for {failing:?}, failing closed");
        Some(match self.last_error.lock().as_ref() {
            Some(last) => Error::storage_caused("write-behind", message, last.clone()),
            None => Error::storage_msg("write-behind", message),
        })
    }

    /// After a failed write-through call: the local estimate under
    /// [`FailurePolicy::Open`] (or within the grace period), else the error.
    fn degraded<T>(&self, err: Error, local: T) -> Result<T> {
        match self.closed_error() {
            Some(_) => Err(err),
            None => Ok(local),
        }
    }

    /// Syncs every pending key now (and, under budget split, every key that
    /// waits for a share), in batches; waits for the answers.
    ///
    /// On an error every key not acknowledged stays pending, and the error
    /// is returned.
    pub fn flush(&self) -> Result<()> {
        let _g = self.sync_lock.lock();
        let early = self.early_pass();
        self.sync_pass().and(early)
    }

    fn sync_pass(&self) -> Result<()> {
        // Only a node holding windows has anything to re-send, so only
        // such a node reads (and, the first time, creates) the marker.
        let watch = || {
            self.incarnation_marker
                && self.failing_since.load(Ordering::Acquire) == 0
                && self.entries.load(Ordering::Relaxed) > 0
        };
        if self.incarnation.lock().is_none() && watch() {
            // The marker the first deliveries are made under.
            self.check_incarnation();
        }
        let mut result = self.deliver();
        // Checked after the deliveries, so a loss during them is found, and
        // repaired within this same pass.
        if result.is_ok() && watch() && self.check_incarnation() {
            result = self.deliver();
        }
        self.prune_if_due();
        result
    }

    /// Sends every queued key's pending windows, in batches.
    fn deliver(&self) -> Result<()> {
        let mut keys = self.take_pending();
        // A key cleared while queued and hit again is queued twice.
        keys.sort_unstable();
        keys.dedup();
        let mut result = Ok(());
        if keys.is_empty() && self.failing_since.load(Ordering::Acquire) != 0 && self.target.check()
        {
            // Nothing to deliver, but the remote is back: stop failing closed.
            self.failing_since.store(0, Ordering::Release);
        }
        if !keys.is_empty() {
            let size = if self.is_write_through() {
                1
            } else {
                self.batch_size
            };
            let chunks: Vec<&[Key]> = keys.chunks(size).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                if let Err(e) = self.sync_chunk(chunk, false) {
                    // The failed chunk was re-queued by `sync_chunk`; the
                    // untouched ones are still marked dirty, so queue them.
                    // The table is read before `pending` is taken: the lock
                    // order is shard, then `pending`, never the reverse.
                    let rest: Vec<Key> = chunks[i + 1..]
                        .iter()
                        .flat_map(|c| c.iter())
                        .filter(|k| self.map.contains_key(**k))
                        .copied()
                        .collect();
                    rest.into_iter().for_each(|k| self.queue(k));
                    result = Err(e);
                    break;
                }
            }
            if result.is_ok() {
                self.syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// Asks the remote for its incarnation marker; when it changed, queues
    /// every window again with its whole total (see the module doc) and
    /// returns true. An error is left to the pass's own calls to find and
    /// back off from.
    fn check_incarnation(&self) -> bool {
        let candidate = super::tune::unique_namespace(&self.node);
        let Ok(Some(seen)) = self.target.incarnation(&candidate) else {
            return false;
        };
        let mut known = self.incarnation.lock();
        let lost = known.as_ref().is_some_and(|k| *k != seen);
        *known = Some(seen);
        drop(known);
        if !lost {
            return false;
        }
        self.remote_losses.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "limitstore: write-behind node `{}`: the remote lost its data; re-sending every window",
            self.node
        );
        let mut requeue = Vec::new();
        self.map.for_each_mut(|k, entry| {
            let mut any = false;
            for w in entry.windows_mut().filter(|w| w.local() > 0) {
                w.resend();
                any = true;
            }
            if any && entry.dirty.set() {
                requeue.push(*k);
            }
        });
        // Shards first, then `pending` (the lock order).
        requeue.into_iter().for_each(|k| self.queue(k));
        true
    }

    /// Sends the windows of `keys` that have hits to deliver (or, under
    /// budget split, that wait for a share) in one call, and applies the
    /// answers. On an error, keys with pending hits are queued again unless
    /// `early` (an early pass leaves them to the next regular one).
    fn sync_chunk(&self, keys: &[Key], early: bool) -> Result<()> {
        // In write-through mode a retry must not interleave with a hit's own
        // call on the same key (a chunk is one key then).
        let _stripe = self.is_write_through().then(|| self.stripe(keys[0]).lock());
        let now = self.unix_secs();
        let mut snap: Vec<Snap> = Vec::with_capacity(keys.len());
        // The keys' names, as the reports carry them.
        let mut names: Vec<Option<Arc<str>>> = vec![None; keys.len()];
        for (i, k) in keys.iter().enumerate() {
            // Exclusive: no hit adds between the mark's clearing and the
            // totals' snapshot, so a hit is either in the snapshot or
            // queues its key again.
            self.map.write(*k, |e| {
                names[i] = Some(Arc::clone(&e.cold.key));
                if early {
                    e.early.clear();
                } else {
                    e.dirty.clear();
                }
                for w in e.windows() {
                    let share = self.budget_split
                        && w.wants_share()
                        && w.window >= window_of(now, w.expiry);
                    if w.pending() || share {
                        // Twice the last period's asking: room for the rate to grow.
                        let expected = w.asked().max(e.cold.demand).saturating_mul(2);
                        let budget = Budget {
                            limit: w.budget(),
                            want: w.want(),
                            demand: expected.max(w.want()),
                            nodes: e.cold.nodes,
                        };
                        snap.push(Snap {
                            key: i,
                            expiry: w.expiry,
                            window: w.window,
                            total: w.local(),
                            budget,
                            asked: w.asked(),
                        });
                        // The next window's share, claimed ahead so that
                        // its first hits need no unclaimed opening share.
                        let next = w.window + 1;
                        if w.ahead() && w.holds(now) && e.find(w.expiry, next).is_none() {
                            snap.push(Snap {
                                key: i,
                                expiry: w.expiry,
                                window: next,
                                total: 0,
                                budget: Budget { want: 0, ..budget },
                                asked: 0,
                            });
                        }
                    }
                }
            });
        }
        if snap.is_empty() {
            return Ok(());
        }
        let reports: Vec<Report<'_>> = snap
            .iter()
            .map(|s| Report {
                key: names[s.key]
                    .as_deref()
                    .expect("a key with a snapshot has its name"),
                window: s.window,
                expiry: s.expiry,
                node: &self.node,
                total: s.total,
            })
            .collect();
        let budgets: Vec<Budget> = snap.iter().map(|s| s.budget).collect();
        let budgets = self.budget_split.then_some(budgets.as_slice());
        match self.call(&reports, budgets) {
            Ok(answers) => {
                for (s, answer) in snap.iter().zip(answers) {
                    let (expiry, window, budget) = (s.expiry, s.window, s.budget);
                    self.map.write(keys[s.key], |e| {
                        if self.budget_split {
                            e.cold.nodes = answer.nodes;
                            e.cold.demand = s.asked.max(e.cold.demand / 2);
                            self.peers.fetch_max(answer.nodes, Ordering::Relaxed);
                        }
                        let ahead = self.budget_split && window > window_of(now, expiry);
                        let w = if ahead {
                            let w = e.win_mut(expiry, window);
                            let split = w.split_mut();
                            (split.budget, split.ahead) = (budget.limit, true);
                            Some(w)
                        } else {
                            e.find_mut(expiry, window)
                        };
                        if let Some(w) = w {
                            w.ack(s.total, answer.global);
                            if self.budget_split {
                                let split = w.split_mut();
                                split.allowed = answer.allowed;
                                split.granted = true;
                                split.answered(s.asked);
                                split.want_answered(budget.want);
                            }
                        }
                    });
                }
                Ok(())
            }
            Err(err) => {
                if !early {
                    for &k in keys {
                        self.map.read(k, |e| {
                            if e.pending() {
                                self.mark_dirty(k, e);
                            }
                        });
                    }
                }
                Err(err)
            }
        }
    }

    /// Syncs the keys that asked for an early sync (see the module doc),
    /// in batches. Called by the syncer at most once per early gap.
    pub(crate) fn sync_early(&self) -> Result<()> {
        let _g = self.sync_lock.lock();
        self.early_pass()
    }

    fn early_pass(&self) -> Result<()> {
        let mut keys = std::mem::take(&mut *self.early.lock());
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        self.early_syncs.fetch_add(1, Ordering::Relaxed);
        let mut result = Ok(());
        let chunks: Vec<&[Key]> = keys.chunks(self.batch_size).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            if let Err(e) = self.sync_chunk(chunk, true) {
                // The rest lose their early mark: they are synced at the
                // next regular pass, or asked for again by a later hit.
                for k in chunks[i + 1..].iter().flat_map(|c| c.iter()) {
                    self.map.read(*k, |e| e.early.clear());
                }
                result = Err(e);
                break;
            }
        }
        result
    }

    fn prune_if_due(&self) {
        let now = self.clock.now();
        let due = self.next_prune.load(Ordering::Relaxed);
        if now < due
            || self
                .next_prune
                .compare_exchange(due, now + PRUNE_EVERY, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.prune();
    }

    /// Drops the windows that are over and the keys left with none.
    fn prune(&self) {
        let unix = self.unix_secs();
        let mut removed = 0;
        let mut forgotten = 0;
        self.map.retain(|_, e| {
            forgotten += e.prune(unix);
            let keep = e.dirty.is_set() || !e.is_empty();
            removed += usize::from(!keep);
            keep
        });
        self.dropped_forgotten(forgotten);
        // Only the removed keys' places are given back: a place a racing
        // hit reserved and has not filled yet stays counted, so the bound
        // holds (a count taken afresh would lose it and let one more in).
        let _ = self
            .entries
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(removed))
            });
    }

    /// Reports the current totals of `(key, expiry, windows)` (write-through
    /// mode, under the key's stripe) and rebases the local windows on the
    /// answers. Adds `amount` to the last window first, if non-zero.
    fn through(&self, key: &str, expiry: u64, windows: &[u64], amount: u64) -> Result<Vec<u64>> {
        let k = self.key(key);
        let totals: Option<Vec<u64>> = self.with_entry(key, k, |e| {
            if let Some(&last) = windows.last() {
                e.win_mut(expiry, last).add(amount);
            }
            windows
                .iter()
                .map(|&w| e.find(expiry, w).map_or(0, Win::local))
                .collect()
        });
        let Some(totals) = totals else {
            // Unrecorded: the last window holds this hit alone, per the policy.
            let last = self.unrecorded(amount)?;
            let mut counts = vec![0; windows.len()];
            if let Some(c) = counts.last_mut() {
                *c = last;
            }
            return Ok(counts);
        };
        let reports: Vec<Report<'_>> = windows
            .iter()
            .zip(&totals)
            .map(|(&window, &total)| Report {
                key,
                window,
                expiry,
                node: &self.node,
                total,
            })
            .collect();
        match self.call(&reports, None) {
            Ok(answers) => {
                let globals: Vec<u64> = answers.iter().map(|a| a.global).collect();
                self.map.write(k, |e| {
                    for ((&w, &total), &global) in windows.iter().zip(&totals).zip(&globals) {
                        if let Some(win) = e.find_mut(expiry, w) {
                            win.ack(total, global);
                        }
                    }
                });
                Ok(globals)
            }
            Err(err) => {
                // Hits stay counted locally (the write may have been applied)
                // and are retried by the syncer.
                // The entry holds pending hits, so it is still there.
                let local = self
                    .map
                    .read(k, |e| {
                        if e.pending() {
                            self.mark_dirty(k, e);
                        }
                        windows.iter().map(|&w| e.count(expiry, w)).collect()
                    })
                    .unwrap_or_else(|| vec![0; windows.len()]);
                self.degraded(err, local)
            }
        }
    }
}

/// Whether a sliding-window hit of `amount` fits `limit` with `p` hits in
/// the previous window and `c` in the current one, `remaining` seconds
/// before the current window of `expiry` seconds ends.
fn sliding_fits(p: u64, c: u64, remaining: f64, expiry: u64, amount: u64, limit: u64) -> bool {
    let weighted = sliding(p, c, remaining, expiry).weighted_count(expiry);
    weighted.floor() as u64 + amount <= limit
}

/// Budget split: a sliding window counter's current window's share of
/// `limit`, what the previous window's `p` hits, weighted, leave `remaining`
/// seconds before the window of `expiry` seconds ends (the weight only
/// shrinks until then, so a share granted on it stays safe).
fn sliding_budget(p: u64, remaining: f64, expiry: u64, limit: u64) -> u64 {
    let weight = p as f64 * remaining / expiry as f64;
    limit.saturating_sub(weight.ceil() as u64)
}

/// One window of one key as a sync pass sends it.
struct Snap {
    /// Index of the key in the pass's key list.
    key: usize,
    expiry: u64,
    window: u64,
    /// The cumulative total reported.
    total: u64,
    budget: Budget,
    /// The window's `asked` as of the report.
    asked: u64,
}

impl Storage for WriteBehind {
    /// Counts `amount` hits locally and answers `global at last sync + hits
    /// since`; in write-through mode, reports first and answers the global
    /// count. `elastic_expiry` is refused (see the type's documentation).
    fn incr(&self, key: &str, expiry: u64, elastic_expiry: bool, amount: u64) -> Result<u64> {
        if elastic_expiry {
            return Err(Error::invalid_argument(
                "write-behind storage counts epoch-aligned windows and cannot extend a window (elastic_expiry)",
            ));
        }
        Ok(self.incr_in_window(key, expiry, amount)?.1)
    }

    /// As [`incr`](Self::incr) compared with `limit`; under budget split
    /// the node admits within its share, and a refused hit is not counted
    /// (see the [module documentation](crate::write_behind)).
    fn incr_within(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        if elastic_expiry || !self.budget_split {
            return Ok(self.incr(key, expiry, elastic_expiry, amount)? <= limit);
        }
        Ok(self.hit_in_window(key, expiry, limit, amount)?.1)
    }

    /// As [`incr_within`](Self::incr_within); a hit on a window this node
    /// already counts (under budget split, within its granted share) hashes
    /// the key's parts and builds no string (the string is built to create a
    /// window, to report, and for what budget split decides under the
    /// exclusive lock).
    fn incr_within_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        if !elastic_expiry
            && !self.is_write_through()
            && validate_key_len(key.len()).is_ok()
            && validate_expiry(expiry).is_ok()
            && validate_amount(amount).is_ok()
            && self.closed_error().is_none()
        {
            let secs = self.unix_secs();
            let k = Key::from(hash_parts(self.seed, &key));
            if self.budget_split {
                let window = window_of(secs, expiry);
                if let Some(admitted) = self.fixed_share(k, (expiry, window), amount, limit) {
                    return Ok(admitted);
                }
            } else if let Some((_, count)) = self.count_in_existing(k, expiry, secs, amount) {
                return Ok(count <= limit);
            }
        }
        key.with_str(|key| self.incr_within(key, expiry, elastic_expiry, amount, limit))
    }

    /// The current window's count of the most recent expiry this node used
    /// for `key`; in write-through mode, read from the remote.
    fn get(&self, key: &str) -> Result<u64> {
        validate_key(key)?;
        let k = self.key(key);
        let Some(expiry) = self.map.read(k, |e| e.head().map(|w| w.expiry)).flatten() else {
            return Ok(0);
        };
        let window = self.window_index(expiry);
        if self.is_write_through() {
            let _g = self.stripe(self.key(key)).lock();
            return Ok(self.through(key, expiry, &[window], 0)?[0]);
        }
        Ok(self.map.read(k, |e| e.count(expiry, window)).unwrap_or(0))
    }

    /// The end of the current window, if this node counted `key` in it.
    fn get_expiry(&self, key: &str) -> Result<f64> {
        validate_key(key)?;
        let now = self.unix_secs();
        Ok(self
            .map
            .read(self.key(key), |e| {
                e.windows()
                    .find(|w| w.holds(now) && w.count() > 0)
                    .map_or(0.0, |w| ((w.window + 1) * w.expiry) as f64)
            })
            .unwrap_or(0.0))
    }

    fn check(&self) -> bool {
        self.target.check()
    }

    /// Clears the local table and the remote. Other nodes keep their own
    /// local counts and report them again at their next sync. Returns the
    /// remote's count of removed keys, or the number of keys this node held
    /// when that is larger (keys not synced yet are on the node only).
    fn reset(&self) -> Result<Option<u64>> {
        let _g = self.sync_lock.lock();
        let local = self.map.len() as u64;
        self.map.clear();
        self.entries.store(self.map.len(), Ordering::Relaxed);
        self.take_pending();
        self.early.lock().clear();
        let removed = self.target.reset()?;
        // The reset removes the remote's marker too; the next one is new
        // data, not a loss.
        *self.incarnation.lock() = None;
        Ok(Some(removed.unwrap_or(0).max(local)))
    }

    /// Removes `key` locally and on the remote. Other nodes that counted the
    /// key report their totals again at their next sync.
    fn clear(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let _g = self.sync_lock.lock();
        if self.map.remove(self.key(key)).is_some() {
            self.release();
        }
        self.target.clear(key)
    }

    fn unix_now(&self) -> f64 {
        self.clock.unix_now()
    }

    /// No: see the type's documentation.
    fn elastic_expiry(&self) -> bool {
        false
    }

    fn sliding_window(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        Some(self)
    }
}

fn sliding(previous: u64, current: u64, remaining: f64, expiry: u64) -> SlidingWindow {
    SlidingWindow {
        previous_count: previous,
        previous_expires_in: if previous == 0 { 0.0 } else { remaining },
        current_count: current,
        current_expires_in: remaining + expiry as f64,
    }
}

/// The two buckets are the windows `w - 1` and `w` of the key, counted and
/// synced like fixed windows.
///
/// In write-through mode one node's acquisitions are exact (they are
/// serialized per key); across nodes the check and the add are two round
/// trips, so nodes acquiring at the same instant may both pass the check.
impl SlidingWindowCounterSupport for WriteBehind {
    fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        let (remaining, w) = self.sliding_at(expiry);
        let prev = w.saturating_sub(1);
        if self.is_write_through() {
            let _g = self.stripe(self.key(key)).lock();
            let g = self.through(key, expiry, &[prev, w], 0)?;
            return Ok(sliding(g[0], g[1], remaining, expiry));
        }
        let (p, c) = self
            .map
            .read(self.key(key), |e| {
                (e.count(expiry, prev), e.count(expiry, w))
            })
            .unwrap_or((0, 0));
        Ok(sliding(p, c, remaining, expiry))
    }

    fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire(key, limit, MAX_AMOUNT, expiry, amount)? {
            return Ok(false);
        }
        if let Some(e) = self.closed_error() {
            return Err(e);
        }
        let (remaining, w) = self.sliding_at(expiry);
        let prev = w.saturating_sub(1);
        let fits = |p: u64, c: u64| sliding_fits(p, c, remaining, expiry, amount, limit);
        if self.is_write_through() {
            let _g = self.stripe(self.key(key)).lock();
            let g = self.through(key, expiry, &[prev, w], 0)?;
            if !fits(g[0], g[1]) {
                return Ok(false);
            }
            self.through(key, expiry, &[w], amount)?;
            return Ok(true);
        }
        let k = self.key(key);
        if let Some(admitted) = self.slide_in_existing(k, expiry, (remaining, w), amount, limit) {
            return Ok(admitted);
        }
        let acquired = self.with_entry(key, k, |e| {
            let (p, c) = (e.count(expiry, prev), e.count(expiry, w));
            if self.budget_split {
                let budget = sliding_budget(p, remaining, expiry, limit);
                return self.take_share(k, e, (expiry, w), amount, budget, fits(p, c), false);
            }
            if !fits(p, c) {
                return false;
            }
            e.win_mut(expiry, w).add(amount);
            self.mark_dirty(k, e);
            true
        });
        match acquired {
            Some(acquired) => Ok(acquired),
            // Alone in its window, the hit fits (`amount <= limit` was checked).
            None => self.unrecorded(amount).map(|_| true),
        }
    }

    /// As [`acquire_sliding_window_entry`](Self::acquire_sliding_window_entry);
    /// a hit on a window this node holds hashes the key's parts and builds
    /// no string.
    fn acquire_sliding_window_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !self.is_write_through()
            && matches!(
                validate_acquire_len(key.len(), limit, MAX_AMOUNT, expiry, amount),
                Ok(true)
            )
            && self.closed_error().is_none()
        {
            let k = Key::from(hash_parts(self.seed, &key));
            let at = self.sliding_at(expiry);
            if let Some(admitted) = self.slide_in_existing(k, expiry, at, amount, limit) {
                return Ok(admitted);
            }
        }
        key.with_str(|key| self.acquire_sliding_window_entry(key, limit, expiry, amount))
    }

    fn clear_sliding_window(&self, key: &str, expiry: u64) -> Result<()> {
        validate_expiry(expiry)?;
        self.clear(key)
    }
}
