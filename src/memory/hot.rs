//! Striped leases for hot fixed-window counters.
//!
//! A counter that several threads hit at once is given a *block*: one lease
//! word per stripe ([`stripe`](super::stripe)), each on its own cache line,
//! so a thread admits hits from its own line and goes to the shared count
//! only for a new lease. `MemoryStorageBuilder::hot_leases(false)` turns
//! this off; the A/B row `limitstore-no-leases` of `benches/main.rs` shows
//! what it buys (two threads on one key: 70–87 ns a hit with leases,
//! 161–209 ns without, on this 2-vCPU VM).
//!
//! Invariants:
//! 1. **Leased tokens are counted.** A lease is taken from the shared count
//!    by compare-and-swap, only while count + lease stays within the limit,
//!    so admissions never pass the limit.
//! 2. **No refusal while a token is unused.** Leases are given only while
//!    the limit is far ([`lease_size`] > 0). The first hit that finds it
//!    near *drains* the window: no new leases, it waits for leases being
//!    handed over, and gives every unused token back to the shared count.
//!    After that the window's hits all go to the shared count, as on a
//!    counter without leases.
//! 3. **Refused hits still count, off the shared line.** Once a drained
//!    window's shared count reached the limit it only grows, so a hit is
//!    refused whatever it races and is counted on its stripe's *refused*
//!    word; reads add those words up. A hit that goes to the shared count
//!    counts only refusals that came before it: the block keeps the lowest
//!    limit refused in the window, and a refusal whose limit is above the
//!    count before this hit came after it.
//! 4. **A raw increment drains first**, so no lease outlives a count it was
//!    not sized for.
//! 5. **Blocks are few, per storage, and given back**: each `MemoryStorage`
//!    has its own [`SLOTS`] blocks (so one storage's hot keys never starve
//!    another's); a counter keeps its block until it leaves its table (the
//!    table retires it: `Table::retiring`), and a counter that finds none
//!    free stays on the shared count.
//!
//! Loom models in `cell.rs` check 1–4 (`hot_leases_admit_exactly_the_limit`,
//! `hot_last_token_goes_to_exactly_one_thread`,
//! `hot_refusals_on_stripes_are_counted`, `hot_raw_increment_stops_the_leases`);
//! its unit tests check 5.

use crossbeam_utils::CachePadded;

use super::cell::{generation, low as remaining, older, pack};
use crate::sync::{AtomicU64, Ordering};

/// Blocks per storage: the slot numbers `1..=SLOTS` fit in 6 bits of a
/// counter's window word (0 meaning none).
#[cfg(not(limitstore_loom))]
pub(crate) const SLOTS: usize = 63;
#[cfg(limitstore_loom)]
pub(crate) const SLOTS: usize = 2;

/// A lease is at most the room left under the limit divided by this many
/// times the stripes. Model checking leases from much less room, so that a
/// few hits reach the limit.
#[cfg(not(limitstore_loom))]
const LEASE_SHARE: u64 = 4;
#[cfg(limitstore_loom)]
const LEASE_SHARE: u64 = 1;

/// The largest lease a stripe takes at once.
const MAX_LEASE: u64 = 4096;

/// How many tokens to lease when the count is `count`, a hit costs `amount`
/// and the limit is `limit`: a share of the room left that every stripe could
/// take several times over, or 0 when the limit is too near for leases.
#[inline]
pub(crate) fn lease_size(limit: u64, count: u64, amount: u64, stripes: usize) -> u64 {
    let room = limit.saturating_sub(count.saturating_add(amount));
    (room / (LEASE_SHARE * stripes as u64)).min(MAX_LEASE)
}

/// Where a window of a hot counter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Hits are admitted from leases, or take new ones.
    Leasing,
    /// A hit is taking every lease back; the others wait for it.
    Draining,
    /// No lease is left: hits go to the shared count.
    Drained,
}

const LEASING: u64 = 0;
const DRAINING: u64 = 1;
const DRAINED: u64 = 2;

/// A stripe's words, on one cache line: both `[generation: 16 | n: 48]`,
/// the generation being the window they count in.
#[derive(Debug)]
struct Stripe {
    /// Tokens leased and not yet used.
    lease: AtomicU64,
    /// Refused hits counted here instead of on the shared count.
    refused: AtomicU64,
}

/// The most a stripe's refused word holds; past it, refusals go to the
/// shared count. With at most 64 stripes the refused words hold at most
/// 2^46 together, so no sum of them and a count carries out of 48 bits.
const MAX_REFUSED: u64 = 1 << 40;

/// The low half of [`WindowState::refused_below`] while nothing is refused on
/// the stripes: above every limit that refuses.
const NO_REFUSAL: u64 = (1 << 48) - 1;

/// What every hit of a drained window reads, on one cache line, written
/// only when the window changes phase or a lower limit is refused.
#[derive(Debug)]
struct WindowState {
    /// `[generation: 16 | phase]`; a window other than `generation` is leasing.
    phase: AtomicU64,
    /// `[generation: 16 | limit: 48]`: the lowest limit of the hits refused
    /// on the stripes in window `generation`, [`NO_REFUSAL`] for none.
    refused_below: AtomicU64,
}

/// One [`Stripe`] per stripe, and the state of the current window.
#[derive(Debug)]
pub(crate) struct Block {
    stripes: Box<[CachePadded<Stripe>]>,
    window: CachePadded<WindowState>,
    /// Leases taken from the shared count and not yet in their stripe.
    handing_over: CachePadded<AtomicU64>,
}

impl Block {
    fn new(stripes: usize) -> Self {
        Block {
            stripes: (0..stripes.next_power_of_two())
                .map(|_| {
                    CachePadded::new(Stripe {
                        lease: AtomicU64::new(0),
                        refused: AtomicU64::new(0),
                    })
                })
                .collect(),
            window: CachePadded::new(WindowState {
                phase: AtomicU64::new(0),
                refused_below: AtomicU64::new(pack(0, NO_REFUSAL)),
            }),
            handing_over: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// The phase of window `gen`.
    #[inline]
    pub(crate) fn phase(&self, gen: u64) -> Phase {
        let p = self.window.phase.load(Ordering::SeqCst);
        match (generation(p) == gen, remaining(p)) {
            (true, DRAINING) => Phase::Draining,
            (true, DRAINED) => Phase::Drained,
            _ => Phase::Leasing,
        }
    }

    /// Announces a lease about to be taken in window `gen`; false (and
    /// nothing announced) once the window drains. A `true` must be followed
    /// by [`handed_over`](Self::handed_over).
    pub(crate) fn begin_lease(&self, gen: u64) -> bool {
        self.handing_over.fetch_add(1, Ordering::SeqCst);
        if self.phase(gen) == Phase::Leasing {
            return true;
        }
        self.handing_over.fetch_sub(1, Ordering::SeqCst);
        false
    }

    /// Ends what [`begin_lease`](Self::begin_lease) announced.
    pub(crate) fn handed_over(&self) {
        self.handing_over.fetch_sub(1, Ordering::SeqCst);
    }

    /// Drains window `gen` (see the module's documentation): the one caller
    /// that starts it gets `Some` with the unused tokens it took back, which
    /// it must return to the shared count and then call
    /// [`drained`](Self::drained); any other caller waits until the window
    /// is drained and gets `None`.
    pub(crate) fn drain(&self, gen: u64) -> Option<u64> {
        let mut p = self.window.phase.load(Ordering::SeqCst);
        loop {
            if generation(p) == gen && remaining(p) != LEASING {
                break;
            }
            match self.window.phase.compare_exchange(
                p,
                pack(gen, DRAINING),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    // Leases announced before the phase changed are handed
                    // over before their tokens are taken back; later ones
                    // see the phase and give up.
                    let mut spins = 0u32;
                    while self.handing_over.load(Ordering::SeqCst) != 0 {
                        backoff(&mut spins);
                    }
                    return Some(self.reclaim(gen));
                }
                Err(actual) => p = actual,
            }
        }
        let mut spins = 0u32;
        while self.phase(gen) == Phase::Draining {
            backoff(&mut spins);
        }
        None
    }

    /// Marks window `gen` drained: its tokens are back in the shared count.
    pub(crate) fn drained(&self, gen: u64) {
        let _ = self.window.phase.compare_exchange(
            pack(gen, DRAINING),
            pack(gen, DRAINED),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Stripes in this block (a power of two).
    pub(crate) fn len(&self) -> usize {
        self.stripes.len()
    }

    #[inline]
    fn stripe(&self, stripe: usize) -> &Stripe {
        &self.stripes[stripe & (self.stripes.len() - 1)]
    }

    /// Spends `amount` tokens of `stripe`'s lease in window `gen`; false if
    /// it holds fewer.
    #[inline]
    pub(crate) fn take(&self, stripe: usize, gen: u64, amount: u64) -> bool {
        let word = &self.stripe(stripe).lease;
        let mut v = word.load(Ordering::Acquire);
        while generation(v) == gen && remaining(v) >= amount {
            match word.compare_exchange(v, v - amount, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => v = actual,
            }
        }
        false
    }

    /// Adds `tokens` leased in window `gen` to `stripe`'s lease; tokens of
    /// a window the stripe has already left behind are dropped.
    pub(crate) fn deposit(&self, stripe: usize, gen: u64, tokens: u64) {
        update_in_window(&self.stripe(stripe).lease, gen, 0, |left| {
            Some(left + tokens)
        });
    }

    /// Takes back every unused token leased in window `gen`; returns how many.
    fn reclaim(&self, gen: u64) -> u64 {
        let mut total = 0;
        for word in self.stripes.iter().map(|s| &s.lease) {
            let mut v = word.load(Ordering::Acquire);
            while generation(v) == gen && remaining(v) > 0 {
                match word.compare_exchange(v, pack(gen, 0), Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        total += remaining(v);
                        break;
                    }
                    Err(actual) => v = actual,
                }
            }
        }
        total
    }

    /// Tokens leased in window `gen` and not yet used.
    fn outstanding(&self, gen: u64) -> u64 {
        self.sum(gen, |s| &s.lease)
    }

    /// The count of window `gen` whose shared count is `shared`: less the
    /// tokens leased and unused, plus the hits refused on the stripes.
    pub(crate) fn count(&self, shared: u64, gen: u64) -> u64 {
        shared.saturating_sub(self.outstanding(gen)) + self.refused(gen)
    }

    /// Hits of window `gen` counted on the stripes' refused words.
    pub(crate) fn refused(&self, gen: u64) -> u64 {
        self.sum(gen, |s| &s.refused)
    }

    /// What the stripes' `word`s hold for window `gen`.
    fn sum(&self, gen: u64, word: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|s| word(s).load(Ordering::Acquire))
            .filter(|v| generation(*v) == gen)
            .map(remaining)
            .sum()
    }

    /// Counts a hit of `amount` at `limit`, refused in window `gen`, on
    /// `stripe`'s refused word: `Some(true)` if counted, `Some(false)` if the
    /// word is full (count it on the shared count), `None` if the block has
    /// moved on to a newer window (the hit's window is over: look again).
    /// Only for a drained window whose shared count has reached `limit`.
    #[inline]
    pub(crate) fn refuse(&self, stripe: usize, gen: u64, amount: u64, limit: u64) -> Option<bool> {
        // Lowered first, so that a hit that sees this refusal sees its limit.
        update_in_window(&self.window.refused_below, gen, NO_REFUSAL, |below| {
            (limit < below).then_some(limit)
        })?;
        update_in_window(&self.stripe(stripe).refused, gen, 0, |refused| {
            Some(refused + amount).filter(|&n| n <= MAX_REFUSED)
        })
    }

    /// Whether a hit of `amount` at `limit` that took the shared count of
    /// drained window `gen` to `total` is admitted: the shared count and the
    /// hits refused on the stripes before it stay within `limit`.
    ///
    /// A hit refused on a stripe found the shared count at its limit or
    /// more; if every limit refused is above `total - amount`, what the
    /// shared count was before this hit, every refusal came after this hit.
    /// Otherwise a caller with a lower limit on the same key may have
    /// refused hits before this one, and all refused hits are counted, which
    /// may refuse a hit that raced them but never admits past `limit`.
    #[inline]
    pub(crate) fn admits(&self, gen: u64, total: u64, amount: u64, limit: u64) -> bool {
        if total > limit {
            return false;
        }
        let below = self.window.refused_below.load(Ordering::SeqCst);
        if generation(below) != gen || remaining(below) > total - amount {
            return true;
        }
        total + self.refused(gen) <= limit
    }

    /// Moves the phase and every stripe still on an older window to window
    /// `gen`, leasing and empty, so that no lease or phase outlives its window
    /// long enough for the 16-bit generation to come round to it again.
    pub(crate) fn renew(&self, gen: u64) {
        let move_on = |word: &AtomicU64, fresh: u64| {
            let mut v = word.load(Ordering::SeqCst);
            while older(generation(v), gen) {
                match word.compare_exchange(v, pack(gen, fresh), Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => break,
                    Err(actual) => v = actual,
                }
            }
        };
        move_on(&self.window.phase, LEASING);
        move_on(&self.window.refused_below, NO_REFUSAL);
        for word in self.stripes.iter().flat_map(|s| [&s.lease, &s.refused]) {
            move_on(word, 0);
        }
    }

    /// Empties every stripe at window `gen`; only for a block nobody uses.
    fn reset(&self, gen: u64) {
        for stripe in self.stripes.iter() {
            stripe.lease.store(pack(gen, 0), Ordering::Release);
            stripe.refused.store(pack(gen, 0), Ordering::Release);
        }
        self.window
            .refused_below
            .store(pack(gen, NO_REFUSAL), Ordering::SeqCst);
        self.window
            .phase
            .store(pack(gen, LEASING), Ordering::SeqCst);
        self.handing_over.store(0, Ordering::SeqCst);
    }
}

/// Changes `word`, `[generation: 16 | n: 48]`, in window `gen`: `f` gets
/// `n` (`fresh` if the word is of an older window) and gives the new `n`, or
/// `None` to leave the word as it is. `Some(true)` if written, `Some(false)`
/// if left, `None` if the word is already in a newer window.
#[inline]
fn update_in_window(
    word: &AtomicU64,
    gen: u64,
    fresh: u64,
    f: impl Fn(u64) -> Option<u64>,
) -> Option<bool> {
    let mut v = word.load(Ordering::SeqCst);
    loop {
        let n = if generation(v) == gen {
            remaining(v)
        } else if older(generation(v), gen) {
            fresh
        } else {
            return None;
        };
        let Some(new) = f(n) else {
            return Some(false);
        };
        match word.compare_exchange(v, pack(gen, new), Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return Some(true),
            Err(actual) => v = actual,
        }
    }
}

/// Waits a little longer each time: spins first, then yields the processor
/// (the hit being waited for may have been preempted).
fn backoff(spins: &mut u32) {
    #[cfg(limitstore_loom)]
    loom::thread::yield_now();
    #[cfg(not(limitstore_loom))]
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    *spins = spins.saturating_add(1);
}

/// A storage's blocks and which are in use. The blocks are made when the
/// first is claimed, so a storage whose keys never get hot holds none.
pub(crate) struct Blocks {
    used: AtomicU64,
    blocks: std::sync::OnceLock<Box<[Block]>>,
    stripes: usize,
    /// Releases of each slot, so a test can tell that its own block came
    /// back while other tests claim and release theirs.
    #[cfg(all(test, not(limitstore_loom)))]
    releases: Box<[AtomicU64]>,
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("made", &self.blocks.get().is_some())
            .field("in_use", &self.used.load(Ordering::Relaxed).count_ones())
            .finish()
    }
}

impl Blocks {
    /// [`SLOTS`] blocks of `stripes` stripes each (rounded to a power of two).
    pub(crate) fn new(stripes: usize) -> Self {
        Blocks {
            used: AtomicU64::new(0),
            blocks: std::sync::OnceLock::new(),
            stripes,
            #[cfg(all(test, not(limitstore_loom)))]
            releases: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Takes a free block, emptied at window `gen`; returns its slot number
    /// (`1..=SLOTS`), or `None` when every block is in use.
    pub(crate) fn claim(&self, gen: u64) -> Option<u64> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let free = !used & ((1u64 << SLOTS) - 1);
            if free == 0 {
                return None;
            }
            let bit = free.trailing_zeros();
            match self.used.compare_exchange(
                used,
                used | (1 << bit),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let slot = u64::from(bit) + 1;
                    self.block(slot).reset(gen);
                    return Some(slot);
                }
                Err(actual) => used = actual,
            }
        }
    }

    /// Gives back the block of `slot`, which nobody may use any more.
    pub(crate) fn release(&self, slot: u64) {
        #[cfg(all(test, not(limitstore_loom)))]
        self.releases[(slot - 1) as usize].fetch_add(1, Ordering::AcqRel);
        self.used.fetch_and(!(1 << (slot - 1)), Ordering::AcqRel);
    }

    /// How often the block of `slot` was given back.
    #[cfg(all(test, not(limitstore_loom)))]
    pub(crate) fn releases(&self, slot: u64) -> u64 {
        self.releases[(slot - 1) as usize].load(Ordering::Acquire)
    }

    /// The block of `slot` (`1..=SLOTS`).
    #[inline]
    pub(crate) fn block(&self, slot: u64) -> &Block {
        let blocks = self
            .blocks
            .get_or_init(|| (0..SLOTS).map(|_| Block::new(self.stripes)).collect());
        &blocks[(slot - 1) as usize]
    }

    /// Blocks in use.
    #[cfg(all(test, not(limitstore_loom)))]
    pub(crate) fn in_use(&self) -> u32 {
        self.used.load(Ordering::Acquire).count_ones()
    }
}

/// Hits by other threads that one thread must see land on a counter between
/// its own hits, within one millisecond, before it calls the counter hot
/// (about 100 000 hits a second from others).
const HOT_HITS: u64 = 100;

/// What a thread last saw of a counter.
#[derive(Clone, Copy, Default)]
struct Seen {
    key: u64,
    ms: u64,
    /// The shared count after the first of this thread's hits in `ms`.
    base: u64,
    /// The amounts of this thread's later hits in `ms`.
    mine: u64,
}

/// Counters tracked per thread, by the low bits of the key.
const SEEN: usize = 8;

std::thread_local! {
    static RECENT: [std::cell::Cell<Seen>; SEEN] = Default::default();
}

/// Whether the counter with key hash `key`, whose shared count this thread's
/// hit of `amount` at `now_ms` left at `shared`, is hot: other threads'
/// hits keep landing on it between this thread's own. Costs a thread-local
/// read and write; shares nothing.
#[inline]
pub(crate) fn contended(key: u64, now_ms: u64, shared: u64, amount: u64) -> bool {
    RECENT
        .try_with(|recent| {
            let cell = &recent[(key as usize) & (SEEN - 1)];
            let mut seen = cell.get();
            if seen.key != key || seen.ms != now_ms || shared < seen.base {
                cell.set(Seen {
                    key,
                    ms: now_ms,
                    base: shared,
                    mine: 0,
                });
                return false;
            }
            seen.mine += amount;
            let others = (shared - seen.base).saturating_sub(seen.mine);
            if others >= HOT_HITS {
                cell.set(Seen::default());
                return true;
            }
            cell.set(seen);
            false
        })
        .unwrap_or(false)
}

/// Blocks shared by the unit tests of the cells, made on first use.
#[cfg(all(test, not(limitstore_loom)))]
pub(crate) fn blocks() -> &'static Blocks {
    static BLOCKS: std::sync::OnceLock<Blocks> = std::sync::OnceLock::new();
    BLOCKS.get_or_init(|| Blocks::new(super::stripe::stripes()))
}

#[cfg(all(test, limitstore_loom))]
loom::lazy_static! {
    static ref BLOCKS: Blocks = Blocks::new(2);
}

/// The blocks of this model-checking run.
#[cfg(all(test, limitstore_loom))]
pub(crate) fn blocks() -> &'static Blocks {
    &BLOCKS
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn leases_are_taken_deposited_and_reclaimed_per_window() {
        let b = Block::new(4);
        assert!(!b.take(0, 1, 1));
        b.deposit(0, 1, 10);
        b.deposit(1, 1, 5);
        assert!(b.take(0, 1, 4));
        assert!(!b.take(1, 1, 6));
        assert_eq!(b.outstanding(1), 11);
        // A lease of an older window is dropped, and does not count.
        b.deposit(2, 0, 7);
        assert_eq!(b.outstanding(1), 11);
        b.renew(2);
        assert_eq!(b.outstanding(1), 0);
        b.deposit(3, 1, 9);
        assert_eq!(b.outstanding(2), 0);
        b.deposit(3, 2, 9);
        assert_eq!(b.drain(2), Some(9));
        assert_eq!(b.phase(2), Phase::Draining);
        b.drained(2);
        assert_eq!((b.phase(2), b.phase(3)), (Phase::Drained, Phase::Leasing));
        assert!(!b.begin_lease(2));
        assert_eq!(b.drain(2), None);
        assert_eq!(b.outstanding(2), 0);
        assert!(b.begin_lease(3));
        b.handed_over();
    }

    #[test]
    fn refusals_are_counted_per_stripe_and_window() {
        let b = Block::new(2);
        assert_eq!(b.refuse(0, 1, 3, 10), Some(true));
        assert_eq!(b.refuse(1, 1, 2, 10), Some(true));
        assert_eq!(b.refuse(0, 1, 1, 10), Some(true));
        assert_eq!(b.refused(1), 6);
        // Unused leases come off the count, refusals go on it.
        b.deposit(1, 1, 4);
        assert_eq!(b.count(10, 1), 10 - 4 + 6);
        // A full word sends the refusal to the shared count.
        assert_eq!(b.refuse(1, 1, MAX_REFUSED, 10), Some(false));
        assert_eq!(b.refused(1), 6);
        // A stripe already in a newer window: the hit's window is over.
        assert_eq!(b.refuse(0, 2, 1, 10), Some(true));
        assert_eq!(b.refuse(0, 1, 1, 10), None);
        assert_eq!((b.refused(1), b.refused(2)), (2, 1));
        // A new window starts every refused word afresh.
        b.renew(3);
        assert_eq!((b.refused(1), b.refused(2), b.refused(3)), (0, 0, 0));
        b.refuse(1, 3, 5, 10);
        b.reset(4);
        assert_eq!((b.refused(3), b.refused(4)), (0, 0));
    }

    #[test]
    fn a_hit_counts_only_the_refusals_that_can_be_before_it() {
        let b = Block::new(2);
        // The shared count of window 1 was 9 and a hit takes it to 10, the
        // limit: then a hit at limit 10 sees 10 and is refused on its stripe.
        // That refusal came after the first hit, which stays admitted.
        assert_eq!(b.refuse(1, 1, 1, 10), Some(true));
        assert!(b.admits(1, 10, 1, 10));
        assert!(!b.admits(1, 11, 1, 10));
        // A hit with a higher limit: the shared count of 10 already stood
        // at the limit refused, so the refusal may be before this hit.
        assert!(b.admits(1, 11, 1, 12));
        assert!(!b.admits(1, 11, 1, 11));
        // A refusal at a lower limit: one the shared count passed.
        assert_eq!(b.refuse(0, 1, 3, 4), Some(true));
        assert!(!b.admits(1, 7, 1, 10));
        assert!(b.admits(1, 6, 1, 10));
        // A later window starts with no refusal.
        b.renew(2);
        assert!(b.admits(2, 10, 1, 10));
        // A block already in a newer window turns older refusals away.
        assert_eq!(b.refuse(0, 1, 1, 4), None);
    }

    #[test]
    fn leases_shrink_to_nothing_near_the_limit() {
        assert_eq!(lease_size(1 << 40, 0, 1, 8), MAX_LEASE);
        assert_eq!(lease_size(100, 0, 1, 2), 12);
        assert_eq!(lease_size(100, 92, 1, 2), 0);
        assert_eq!(lease_size(5, 10, 1, 2), 0);
        assert_eq!(lease_size(u64::MAX, u64::MAX, u64::MAX, 64), 0);
    }

    #[test]
    fn a_counter_is_hot_when_others_hit_between_this_threads_hits() {
        let key = 0xABCD;
        // Alone: this thread's own hits never make it hot.
        for n in 1..1000 {
            assert!(!contended(key, 5, n, 1));
        }
        // Others add 10 between each of this thread's hits.
        let mut shared = 2000;
        let mut hot = false;
        for _ in 0..20 {
            shared += 11;
            hot |= contended(key, 5, shared, 1);
        }
        assert!(hot);
        // A new millisecond starts over.
        assert!(!contended(key, 6, shared + 500, 1));
    }

    #[test]
    fn blocks_are_claimed_until_none_is_left() {
        let blocks = Blocks::new(2);
        let slots: Vec<u64> = (0..SLOTS).map(|_| blocks.claim(3).unwrap()).collect();
        assert!(blocks.claim(3).is_none());
        blocks.release(slots[5]);
        assert_eq!(blocks.claim(3), Some(slots[5]));
        assert_eq!(blocks.in_use(), SLOTS as u32);
    }
}
