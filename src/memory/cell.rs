//! The atomic cells behind fixed-window counters and sliding window counters.
//! A hit changes a cell with atomics only: the cell takes no lock (the table
//! it sits in is read under its shard's shared lock).
//!
//! - [`FixedWindowCell`]: two 64-bit words, the window (generation, lease
//!   block, expiry) and the count (generation, count). A new window is a
//!   compare-and-swap of the window word; a hit in a live window is one
//!   `fetch_add` on the count, whose generation says which window it landed
//!   in. Hot counters add per-thread leases ([`hot`](super::hot)).
//! - [`SlidingWindowCell`]: one 128-bit word (window index, previous and
//!   current counts) changed only by compare-and-swap, so the weighted count
//!   a hit is admitted against is exactly the state it writes.

use super::hot::{lease_size, Block, Blocks, Phase};
use crate::sync::{AtomicU128, AtomicU64, Ordering};

/// Counts above this are refused (2^47), so that no increment, even racing
/// ones, can carry out of a 48-bit count field.
pub(crate) const MAX_COUNT: u64 = 1 << 47;

/// Amounts below this take the `fetch_add` path; larger ones a checked
/// compare-and-swap, so concurrent adds can never carry past 48 bits.
const FAST_AMOUNT: u64 = 1 << 32;

const GEN_SHIFT: u32 = 48;
const LOW_MASK: u64 = (1 << GEN_SHIFT) - 1;
const GEN_MASK: u64 = 0xFFFF;

/// What adding to a window's count came to.
enum Added {
    Total(u64),
    Overflow,
    /// The count was behind the window; look at the window again.
    Retry,
}

/// A count would exceed [`MAX_COUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

#[inline]
pub(super) fn generation(word: u64) -> u64 {
    word >> GEN_SHIFT
}

#[inline]
pub(super) fn low(word: u64) -> u64 {
    word & LOW_MASK
}

#[inline]
pub(super) fn pack(generation: u64, low: u64) -> u64 {
    ((generation & GEN_MASK) << GEN_SHIFT) | (low & LOW_MASK)
}

/// Whether generation `a` is older than `b` (16-bit wrapping).
#[inline]
pub(super) fn older(a: u64, b: u64) -> bool {
    let d = b.wrapping_sub(a) & GEN_MASK;
    d != 0 && d < 0x8000
}

/// A fixed-window counter in two 64-bit words:
///
/// - `window` = `[generation: 16 | hot: 6 | expiry: 42]`, the expiry in
///   milliseconds on the clock's time line (42 bits: 139 years), `hot` the
///   slot of the counter's lease block (see [`hot`](super::hot)), 0 for none;
/// - `count` = `[generation: 16 | count: 48]`.
///
/// A new window is claimed by a compare-and-swap of `window` to the next
/// generation; `count` follows it (whoever sees it lag resets it to the new
/// generation, so nobody waits for the claimer). A hit in a live window is one
/// `fetch_add` on `count`, whose returned generation says which window the
/// hit landed in: the one it saw or a newer one, both live. `count` never runs
/// ahead of `window`.
///
/// A hot counter also has leases in its block: `count` then includes the
/// tokens leased and not yet used, which reads subtract.
#[derive(Debug)]
pub(crate) struct FixedWindowCell {
    window: AtomicU64,
    count: AtomicU64,
}

const EXPIRY_BITS: u32 = 42;
const EXPIRY_MASK: u64 = (1 << EXPIRY_BITS) - 1;
const HOT_MASK: u64 = 0x3F;

#[inline]
fn expiry(window: u64) -> u64 {
    window & EXPIRY_MASK
}

#[inline]
fn hot_slot(window: u64) -> u64 {
    (window >> EXPIRY_BITS) & HOT_MASK
}

#[inline]
fn pack_window(generation: u64, hot: u64, expiry: u64) -> u64 {
    ((generation & GEN_MASK) << GEN_SHIFT) | ((hot & HOT_MASK) << EXPIRY_BITS) | expiry
}

/// What a hit limited by a count came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitedHit {
    /// Whether the count stayed within the limit.
    pub(crate) admitted: bool,
    /// The shared count after the hit, when the hit went through it on a
    /// counter without leases (what tells a hot counter from a quiet one).
    pub(crate) shared: Option<u64>,
}

impl FixedWindowCell {
    pub(crate) fn new() -> Self {
        FixedWindowCell {
            window: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// The live window at `now_ms`, claiming the next one (ending at
    /// `fresh_expiry`) if the current one is over; also whether this call
    /// claimed it.
    #[inline]
    fn live(&self, blocks: &Blocks, now_ms: u64, fresh_expiry: u64) -> (u64, bool) {
        loop {
            let w = self.window.load(Ordering::Acquire);
            if expiry(w) > now_ms {
                return (w, false);
            }
            let next = pack_window(generation(w) + 1, hot_slot(w), fresh_expiry);
            if self
                .window
                .compare_exchange(w, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if hot_slot(next) != 0 {
                    blocks.block(hot_slot(next)).renew(generation(next));
                }
                return (next, true);
            }
        }
    }

    /// The end of a window starting at `now_ms`.
    #[inline]
    fn fresh_expiry(now_ms: u64, window_ms: u64) -> u64 {
        now_ms.saturating_add(window_ms).min(EXPIRY_MASK)
    }

    /// Adds `amount` at `now_ms`; starts a new window of `window_ms` if the
    /// current one is over; with `elastic`, moves the expiry to `now_ms + window_ms`.
    ///
    /// On a hot counter this raw increment (no limit: another limiter's, or
    /// a caller's own accounting) first drains the window's leases: leased
    /// tokens were sized against a count that no longer holds, so from here
    /// on every limited hit of the window checks the shared count.
    #[inline]
    pub(crate) fn incr(
        &self,
        blocks: &Blocks,
        now_ms: u64,
        window_ms: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<u64, Overflow> {
        self.in_live_window(blocks, now_ms, window_ms, elastic, amount, |w, gen| {
            let slot = hot_slot(w);
            if slot != 0 {
                self.drain_leases(blocks.block(slot), gen);
            }
            match self.add(gen, amount) {
                Added::Total(total) => Some(Ok(match slot {
                    0 => total,
                    slot => blocks.block(slot).count(total, gen),
                })),
                Added::Overflow => Some(Err(Overflow)),
                Added::Retry => None,
            }
        })
    }

    /// Ends leasing in window `gen` of `block`, the unused tokens back on
    /// the shared count; waits if another caller is draining it.
    fn drain_leases(&self, block: &Block, gen: u64) {
        if block.phase(gen) == Phase::Drained {
            return;
        }
        if let Some(tokens) = block.drain(gen) {
            self.give_back(gen, tokens);
            block.drained(gen);
        }
    }

    /// Adds `amount` at `now_ms` as [`incr`](Self::incr) does and says
    /// whether the count is within `limit`. A hot counter admits from this
    /// thread's lease (`stripe`) where it can.
    #[inline]
    #[allow(clippy::too_many_arguments)] // a hit's arguments, in registers
    pub(crate) fn incr_within(
        &self,
        blocks: &Blocks,
        stripe: usize,
        now_ms: u64,
        window_ms: u64,
        elastic: bool,
        amount: u64,
        limit: u64,
    ) -> Result<LimitedHit, Overflow> {
        self.in_live_window(
            blocks,
            now_ms,
            window_ms,
            elastic,
            amount,
            |w, gen| match hot_slot(w) {
                0 => match self.add(gen, amount) {
                    Added::Total(total) => Some(Ok(LimitedHit {
                        admitted: total <= limit,
                        shared: Some(total),
                    })),
                    Added::Overflow => Some(Err(Overflow)),
                    Added::Retry => None,
                },
                slot => self
                    .leased(blocks.block(slot), stripe, gen, amount, limit)
                    .map(|hit| {
                        hit.map(|admitted| LimitedHit {
                            admitted,
                            shared: None,
                        })
                    }),
            },
        )
    }

    /// Applies `hit(window word, generation)` to the live window at
    /// `now_ms` (claiming the next one, of `window_ms`, if the current one is
    /// over) until it stops asking to look again (`None`); then, with
    /// `elastic`, moves the window's end to `now_ms + window_ms`.
    #[inline]
    fn in_live_window<R>(
        &self,
        blocks: &Blocks,
        now_ms: u64,
        window_ms: u64,
        elastic: bool,
        amount: u64,
        hit: impl Fn(u64, u64) -> Option<Result<R, Overflow>>,
    ) -> Result<R, Overflow> {
        if amount > MAX_COUNT {
            return Err(Overflow);
        }
        let fresh_expiry = Self::fresh_expiry(now_ms, window_ms);
        loop {
            let (w, claimed) = self.live(blocks, now_ms, fresh_expiry);
            let gen = generation(w);
            let Some(done) = hit(w, gen) else {
                continue;
            };
            let r = done?;
            if elastic && !claimed {
                self.extend(gen, fresh_expiry);
            }
            return Ok(r);
        }
    }

    /// A hit on a hot counter in window `gen`: from `stripe`'s lease or a
    /// new one while the window is leasing; once it is drained, on the shared
    /// count, or, when that has reached the limit, refused and counted on
    /// `stripe` (see [`hot`](super::hot)). `None`: the window moved on, try
    /// again.
    #[inline]
    fn leased(
        &self,
        block: &Block,
        stripe: usize,
        gen: u64,
        amount: u64,
        limit: u64,
    ) -> Option<Result<bool, Overflow>> {
        if block.take(stripe, gen, amount) {
            return Some(Ok(true));
        }
        if block.phase(gen) != Phase::Drained {
            let c = self.count.load(Ordering::Acquire);
            if generation(c) != gen {
                self.follow(gen);
                return None;
            }
            let lease = lease_size(limit, low(c), amount, block.len());
            if lease == 0 {
                self.drain_leases(block, gen);
                return None;
            }
            if !block.begin_lease(gen) {
                // Another caller is draining the window: wait for it
                // rather than spin on the retry, then look again.
                self.drain_leases(block, gen);
                return None;
            }
            // `low(c) + amount + lease <= limit <= MAX_COUNT`: no carry.
            let taken = self
                .count
                .compare_exchange(
                    c,
                    pack(gen, low(c) + amount + lease),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            if taken {
                block.deposit(stripe, gen, lease);
            }
            block.handed_over();
            return taken.then_some(Ok(true));
        }
        // Drained: no token is leased, and the shared count only grows until
        // the window ends. Once it has reached the limit, this hit is refused
        // whatever it races, and is counted on its stripe.
        let c = self.count.load(Ordering::Acquire);
        if generation(c) == gen && low(c) >= limit && amount < FAST_AMOUNT {
            match block.refuse(stripe, gen, amount, limit) {
                Some(true) => return Some(Ok(false)),
                Some(false) => {}
                None => return None,
            }
        }
        match self.add(gen, amount) {
            Added::Total(total) => Some(Ok(block.admits(gen, total, amount, limit))),
            Added::Overflow => Some(Err(Overflow)),
            Added::Retry => None,
        }
    }

    /// Takes `tokens` taken back from leases of window `gen` off the count.
    fn give_back(&self, gen: u64, tokens: u64) {
        let mut c = self.count.load(Ordering::Acquire);
        while tokens > 0 && generation(c) == gen {
            match self.count.compare_exchange(
                c,
                pack(gen, low(c).saturating_sub(tokens)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => c = actual,
            }
        }
    }

    /// Gives this counter a lease block if it has none and a block is free.
    pub(crate) fn make_hot(&self, blocks: &Blocks, now_ms: u64) {
        let w = self.window.load(Ordering::Acquire);
        if hot_slot(w) != 0 || expiry(w) <= now_ms {
            return;
        }
        let Some(slot) = blocks.claim(generation(w)) else {
            return;
        };
        let hot = pack_window(generation(w), slot, expiry(w));
        if self
            .window
            .compare_exchange(w, hot, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            blocks.release(slot);
        }
    }

    /// Gives this counter's lease block, if it has one, back to `blocks`:
    /// called by the table when the counter leaves it, under the shard's
    /// exclusive lock, so nobody can reach the counter any more.
    pub(crate) fn retire(&self, blocks: &Blocks) {
        let slot = hot_slot(self.window.load(Ordering::Acquire));
        if slot != 0 {
            blocks.release(slot);
        }
    }

    /// Whether this counter has a lease block.
    #[cfg(all(test, not(limitstore_loom)))]
    pub(crate) fn is_hot(&self) -> bool {
        hot_slot(self.window.load(Ordering::Acquire)) != 0
    }

    /// Adds `amount` to the count of window generation `gen`.
    #[inline]
    fn add(&self, gen: u64, amount: u64) -> Added {
        if amount < FAST_AMOUNT {
            let prev = self.count.fetch_add(amount, Ordering::AcqRel);
            if older(generation(prev), gen) {
                // The hit landed in a count the window has left behind (and
                // that is about to be reset): make the count follow the
                // window, then hit again.
                self.follow(gen);
                return Added::Retry;
            }
            // Generation `gen` or newer: a live window either way.
            let total = low(prev) + amount;
            if total > MAX_COUNT {
                self.count.fetch_sub(amount, Ordering::AcqRel);
                return Added::Overflow;
            }
            return Added::Total(total);
        }
        let c = self.count.load(Ordering::Acquire);
        if generation(c) != gen {
            self.follow(gen);
            return Added::Retry;
        }
        let total = low(c) + amount;
        if total > MAX_COUNT {
            return Added::Overflow;
        }
        match self
            .count
            .compare_exchange(c, pack(gen, total), Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Added::Total(total),
            Err(_) => Added::Retry,
        }
    }

    /// Sets the expiry of window generation `gen` to `expiry` (elastic
    /// expiry: a full window from the latest hit, as `limits` does), unless
    /// the window has moved on.
    fn extend(&self, gen: u64, new_expiry: u64) {
        let mut w = self.window.load(Ordering::Acquire);
        while generation(w) == gen && expiry(w) != new_expiry {
            match self.window.compare_exchange(
                w,
                pack_window(gen, hot_slot(w), new_expiry),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => w = actual,
            }
        }
    }

    /// Resets the count to generation `gen` if it is still of an older one.
    fn follow(&self, gen: u64) {
        let c = self.count.load(Ordering::Acquire);
        if older(generation(c), gen) {
            let _ =
                self.count
                    .compare_exchange(c, pack(gen, 0), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// The count at `now_ms`, 0 if the window is over.
    #[inline]
    pub(crate) fn get(&self, blocks: &Blocks, now_ms: u64) -> u64 {
        let w = self.window.load(Ordering::Acquire);
        if expiry(w) <= now_ms {
            return 0;
        }
        let c = self.count.load(Ordering::Acquire);
        if generation(c) != generation(w) {
            return 0;
        }
        match hot_slot(w) {
            0 => low(c),
            slot => blocks.block(slot).count(low(c), generation(w)),
        }
    }

    /// When the window ends (clock milliseconds), if it has not yet.
    pub(crate) fn expiry_ms(&self, now_ms: u64) -> Option<u64> {
        let expires = expiry(self.window.load(Ordering::Acquire));
        (expires > now_ms).then_some(expires)
    }

    /// When this cell stops holding anything, in clock milliseconds.
    pub(crate) fn expires_at_ms(&self) -> u64 {
        expiry(self.window.load(Ordering::Acquire))
    }
}

/// Counts of a sliding window cell are limited to 48 bits; admission never
/// lets a count exceed the limit, so limits are capped at this.
pub(crate) const MAX_SLIDING_LIMIT: u64 = (1 << 48) - 1;

const COUNT_MASK: u128 = (1 << 48) - 1;

/// A sliding window counter: the previous and the current fixed bucket.
///
/// Layout: bits 96..128 = index of the current window (`now / window`,
/// truncated to 32 bits and compared with wrapping arithmetic), bits 48..96 =
/// previous count, bits 0..48 = current count. Rolling into a new window and
/// adding to it is one compare-and-swap, so the weighted count a hit is
/// admitted against is exactly the state it writes to.
#[derive(Debug)]
pub(crate) struct SlidingWindowCell {
    word: AtomicU128,
}

/// A sliding window cell's state, seen at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlidingState {
    pub(crate) previous: u64,
    pub(crate) current: u64,
    /// Nanoseconds already elapsed in the current window.
    pub(crate) elapsed: u64,
}

impl SlidingState {
    /// `floor(previous * remaining / window) + current`, in exact integer arithmetic.
    pub(crate) fn weighted(&self, window: u64) -> u64 {
        let remaining = window.saturating_sub(self.elapsed);
        let prev = (u128::from(self.previous) * u128::from(remaining)) / u128::from(window.max(1));
        (prev as u64).saturating_add(self.current)
    }
}

fn unpack_sliding(word: u128) -> (u32, u64, u64) {
    (
        (word >> 96) as u32,
        ((word >> 48) & COUNT_MASK) as u64,
        (word & COUNT_MASK) as u64,
    )
}

fn pack_sliding(index: u32, previous: u64, current: u64) -> u128 {
    (u128::from(index) << 96)
        | ((u128::from(previous) & COUNT_MASK) << 48)
        | (u128::from(current) & COUNT_MASK)
}

impl SlidingWindowCell {
    pub(crate) fn new() -> Self {
        SlidingWindowCell {
            word: AtomicU128::new(0),
        }
    }

    /// The buckets as of `now` (nanoseconds on the window-aligned time line).
    /// Returns the state and the window index it belongs to.
    fn view(word: u128, now: u64, window: u64) -> (SlidingState, u32) {
        let index = now / window;
        let elapsed = now % window;
        let tag = index as u32;
        let (stored, previous, current) = unpack_sliding(word);
        let ahead = tag.wrapping_sub(stored);
        let (previous, current, tag) = if previous == 0 && current == 0 {
            // A cell never written holds no window: its zero tag is not a
            // window index. Read as one, it would look ahead of every window
            // from index 2^31 on (Unix seconds past 2038 for a one-second
            // window) and the cell would never roll.
            (0, 0, tag)
        } else if ahead == 0 || ahead > u32::MAX / 2 {
            // Same window, or a thread that read the clock a moment later has
            // already rolled it: use the stored buckets as they are.
            (previous, current, stored)
        } else if ahead == 1 {
            (current, 0, tag)
        } else {
            (0, 0, tag)
        };
        (
            SlidingState {
                previous,
                current,
                elapsed,
            },
            tag,
        )
    }

    pub(crate) fn get(&self, now: u64, window: u64) -> SlidingState {
        Self::view(self.word.load(), now, window).0
    }

    /// Adds `amount` to the current bucket if `weighted + amount <= limit`.
    #[inline]
    pub(crate) fn acquire(&self, now: u64, window: u64, limit: u64, amount: u64) -> bool {
        if amount > limit {
            return false;
        }
        let mut word = self.word.load();
        loop {
            let (state, tag) = Self::view(word, now, window);
            if state.weighted(window).saturating_add(amount) > limit {
                return false;
            }
            let new = pack_sliding(tag, state.previous, state.current + amount);
            match self.word.compare_exchange(word, new) {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
    }

    /// When this cell stops holding anything, on the window-aligned time
    /// line: the end of the window after the stored one.
    pub(crate) fn expires_at(&self, now: u64, window: u64) -> u64 {
        let (stored, previous, current) = unpack_sliding(self.word.load());
        if previous == 0 && current == 0 {
            return 0;
        }
        let index = now / window;
        let behind = (index as u32).wrapping_sub(stored);
        let stored_index = if behind > u32::MAX / 2 {
            index
        } else {
            index.saturating_sub(u64::from(behind.min(2)))
        };
        stored_index.saturating_add(2).saturating_mul(window)
    }
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::super::hot::blocks;
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn fixed_window_counts_then_expires() {
        let c = FixedWindowCell::new();
        assert_eq!(c.incr(blocks(), 0, 10_000, false, 1), Ok(1));
        assert_eq!(c.incr(blocks(), 5_000, 10_000, false, 10), Ok(11));
        assert_eq!(c.get(blocks(), 9_999), 11);
        assert_eq!(c.expiry_ms(9_999), Some(10_000));
        assert_eq!(c.get(blocks(), 10_000), 0);
        assert_eq!(c.incr(blocks(), 10_000, 10_000, false, 2), Ok(2));
        assert_eq!(c.expiry_ms(10_000), Some(20_000));
    }

    #[test]
    fn elastic_expiry_moves_out() {
        let c = FixedWindowCell::new();
        c.incr(blocks(), 0, 10_000, true, 1).unwrap();
        c.incr(blocks(), 8_000, 10_000, true, 1).unwrap();
        assert_eq!(c.expiry_ms(12_000), Some(18_000));
        assert_eq!(c.get(blocks(), 17_000), 2);
    }

    #[test]
    fn fixed_window_refuses_overflow() {
        let c = FixedWindowCell::new();
        c.incr(blocks(), 0, 1000, false, MAX_COUNT - 1).unwrap();
        assert_eq!(c.incr(blocks(), 0, 1000, false, 2), Err(Overflow));
        assert_eq!(c.get(blocks(), 0), MAX_COUNT - 1);
        assert_eq!(c.incr(blocks(), 0, 1000, false, 1), Ok(MAX_COUNT));
        let d = FixedWindowCell::new();
        assert_eq!(
            d.incr(blocks(), 0, 1000, false, MAX_COUNT + 1),
            Err(Overflow)
        );
        assert_eq!(d.incr(blocks(), 0, 1000, false, 1 << 40), Ok(1 << 40));
        assert_eq!(d.incr(blocks(), 0, 1000, false, 1 << 40), Ok(2 << 40));
    }

    #[test]
    fn generations_wrap_around() {
        let c = FixedWindowCell::new();
        for w in 0..70_000u64 {
            assert_eq!(c.incr(blocks(), w * 10, 10, false, 3), Ok(3), "window {w}");
            assert_eq!(c.incr(blocks(), w * 10 + 5, 10, false, 1), Ok(4));
        }
    }

    #[test]
    fn a_hot_counter_admits_exactly_its_limit_and_counts_every_hit() {
        let c = FixedWindowCell::new();
        c.incr_within(blocks(), 0, 0, 10_000, false, 1, 1000)
            .unwrap();
        c.make_hot(blocks(), 0);
        assert!(c.is_hot());
        let mut admitted = 1;
        for i in 1..1500u64 {
            // Alternate stripes as two threads would.
            let hit = c
                .incr_within(blocks(), i as usize, 1, 10_000, false, 1, 1000)
                .unwrap();
            admitted += u64::from(hit.admitted);
            assert_eq!(c.get(blocks(), 1), i + 1, "leases are not counts");
        }
        assert_eq!(admitted, 1000);
        // A new window starts from nothing and leases again.
        let hit = c
            .incr_within(blocks(), 0, 10_000, 10_000, false, 1, 1000)
            .unwrap();
        assert!(hit.admitted);
        assert_eq!(c.get(blocks(), 10_000), 1);
        assert_eq!(c.incr(blocks(), 10_000, 10_000, false, 4), Ok(5));
        assert_eq!(c.expiry_ms(10_000), Some(20_000));
        c.retire(blocks());
    }

    #[test]
    fn a_hot_counter_over_its_limit_counts_refusals_on_its_stripes() {
        let c = FixedWindowCell::new();
        c.incr_within(blocks(), 0, 0, 10_000, false, 1, 10).unwrap();
        c.make_hot(blocks(), 0);
        for i in 1..10u64 {
            assert!(
                c.incr_within(blocks(), i as usize, 1, 10_000, false, 1, 10)
                    .unwrap()
                    .admitted
            );
        }
        // The limit is reached: the next hit drains the window and is refused.
        assert!(
            !c.incr_within(blocks(), 0, 1, 10_000, false, 1, 10)
                .unwrap()
                .admitted
        );
        let shared = c.count.load(Ordering::Acquire);
        for i in 0..100usize {
            assert!(
                !c.incr_within(blocks(), i, 1, 10_000, false, 2, 10)
                    .unwrap()
                    .admitted
            );
        }
        assert_eq!(
            c.count.load(Ordering::Acquire),
            shared,
            "refusals left the shared count alone"
        );
        assert_eq!(c.get(blocks(), 1), 211);
        assert_eq!(c.incr(blocks(), 1, 10_000, false, 1), Ok(212));
        // A caller with a higher limit on the same key sees the refusals.
        assert!(
            !c.incr_within(blocks(), 0, 1, 10_000, false, 1, 212)
                .unwrap()
                .admitted
        );
        assert!(
            c.incr_within(blocks(), 0, 1, 10_000, false, 1, 214)
                .unwrap()
                .admitted
        );
        assert_eq!(c.get(blocks(), 1), 214);
        // The next window starts from nothing.
        assert!(
            c.incr_within(blocks(), 1, 10_000, 10_000, false, 1, 10)
                .unwrap()
                .admitted
        );
        assert_eq!(c.get(blocks(), 10_000), 1);
        c.retire(blocks());
    }

    /// The reproducer of a divergence from `limits`: every call at one
    /// instant, limit 300, on a hot counter. A raw increment past the limit
    /// ends the leases, so the next limited hit is refused.
    #[test]
    fn a_raw_increment_is_seen_by_the_leases() {
        let c = FixedWindowCell::new();
        let hit = |cost| {
            c.incr_within(blocks(), 0, 0, 60_000, false, cost, 300)
                .unwrap()
                .admitted
        };
        assert!(hit(1));
        c.make_hot(blocks(), 0);
        assert!(c.is_hot());
        assert!(hit(1), "this hit takes a lease");
        assert_eq!(c.incr(blocks(), 0, 60_000, false, 101), Ok(103));
        assert!(hit(5));
        assert_eq!(c.incr(blocks(), 0, 60_000, false, 400), Ok(508));
        assert!(!hit(2), "508 hits counted: a limit of 300 refuses");
        assert_eq!(c.get(blocks(), 0), 510);
        // Racing threads after it: nothing more is admitted.
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let c = &c;
                    s.spawn(move || {
                        (0..1000)
                            .filter(|_| {
                                c.incr_within(blocks(), t, 0, 60_000, false, 1, 300)
                                    .unwrap()
                                    .admitted
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 0);
        assert_eq!(c.get(blocks(), 0), 4510);
        c.retire(blocks());
    }

    #[test]
    fn a_hot_counter_keeps_elastic_expiry_and_gives_its_block_back() {
        let c = FixedWindowCell::new();
        c.incr_within(blocks(), 0, 0, 10_000, true, 1, 1 << 20)
            .unwrap();
        c.make_hot(blocks(), 0);
        assert!(c.is_hot());
        c.incr_within(blocks(), 1, 4_000, 10_000, true, 1, 1 << 20)
            .unwrap();
        assert_eq!(c.expiry_ms(4_000), Some(14_000));
        assert!(c.is_hot(), "extending the window keeps the block");
        // Other tests claim and release blocks meanwhile: count the
        // releases of this counter's own slot.
        let slot = hot_slot(c.window.load(Ordering::Acquire));
        let before = blocks().releases(slot);
        c.retire(blocks());
        assert_eq!(blocks().releases(slot), before + 1);
    }

    /// Makes a counter with one hit at `limit` hot, then has 4 threads hit
    /// it `hits` times each at once; returns how many of those hits were
    /// admitted and the count after them.
    fn hammer_hot_counter(limit: u64, hits: usize) -> (u64, u64) {
        let c = std::sync::Arc::new(FixedWindowCell::new());
        c.incr_within(blocks(), 0, 0, 60_000, false, 1, limit)
            .unwrap();
        c.make_hot(blocks(), 0);
        assert!(c.is_hot());
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let admitted = (0..4)
            .map(|t| {
                let (c, start) = (c.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..hits)
                        .filter(|_| {
                            c.incr_within(blocks(), t, 1, 60_000, false, 1, limit)
                                .unwrap()
                                .admitted
                        })
                        .count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        let count = c.get(blocks(), 1);
        c.retire(blocks());
        (admitted, count)
    }

    #[test]
    fn threads_on_a_hot_counter_never_admit_past_the_limit() {
        assert_eq!(hammer_hot_counter(50_000, 20_000), (50_000 - 1, 80_001));
    }

    /// Many rounds of threads racing for the last tokens of a hot counter:
    /// a hit refused on its stripe right after another hit took the last
    /// token must not be counted before that hit, or the limit is missed.
    #[test]
    fn threads_racing_for_the_last_tokens_get_exactly_the_limit() {
        for round in 0..1000 {
            let (admitted, count) = hammer_hot_counter(1_000, 400);
            assert_eq!((admitted, count), (1_000 - 1, 1_601), "round {round}");
        }
    }

    #[test]
    fn sliding_window_weights_the_previous_bucket() {
        let c = SlidingWindowCell::new();
        let w = 10 * S;
        for _ in 0..10 {
            assert!(c.acquire(0, w, 10, 1));
        }
        assert!(!c.acquire(S, w, 10, 1));
        // Half-way through the next window the previous 10 weigh 5.
        let st = c.get(15 * S, w);
        assert_eq!((st.previous, st.current, st.weighted(w)), (10, 0, 5));
        for _ in 0..5 {
            assert!(c.acquire(15 * S, w, 10, 1));
        }
        assert!(!c.acquire(15 * S, w, 10, 1));
        // Two windows later everything has rolled off.
        assert_eq!(c.get(30 * S, w).weighted(w), 0);
        assert!(!c.acquire(30 * S, w, 10, 11));
        assert!(c.acquire(30 * S, w, 10, 10));
    }
}

#[cfg(all(test, limitstore_loom))]
mod loom_tests {
    use super::super::hot::blocks;
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    const S: u64 = 1_000_000_000;

    /// Two threads racing a window roll-over with a third adding in the old
    /// window: the final count is the sum of the hits in the window that won.
    #[test]
    fn fixed_window_roll_over_is_atomic() {
        loom::model(|| {
            let c = Arc::new(FixedWindowCell::new());
            c.incr(blocks(), 0, 10_000, false, 5).unwrap();
            let a = {
                let c = c.clone();
                thread::spawn(move || c.incr(blocks(), 10_000, 10_000, false, 1).unwrap())
            };
            let b = {
                let c = c.clone();
                thread::spawn(move || c.incr(blocks(), 11_000, 10_000, false, 2).unwrap())
            };
            let ra = a.join().unwrap();
            let rb = b.join().unwrap();
            // Whoever rolled the window started at its own amount, the other added.
            assert!((ra, rb) == (1, 3) || (ra, rb) == (3, 2), "{ra} {rb}");
            assert_eq!(c.get(blocks(), 12_000), 3);
        });
    }

    /// Three hits racing a window roll-over: each is counted exactly once,
    /// in the new window, and each sees a distinct count.
    #[test]
    fn hits_racing_a_roll_over_count_once() {
        loom::model(|| {
            let c = Arc::new(FixedWindowCell::new());
            c.incr(blocks(), 0, 10_000, false, 5).unwrap();
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || c.incr(blocks(), 10_000, 10_000, false, 1).unwrap())
                })
                .collect();
            let mut seen: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![1, 2, 3]);
            assert_eq!(c.get(blocks(), 10_001), 3);
        });
    }

    /// A counter with one hit in a window from 0 to 10 s at `limit`, made hot.
    fn hot_cell(limit: u64) -> Arc<FixedWindowCell> {
        let c = Arc::new(FixedWindowCell::new());
        c.incr_within(blocks(), 0, 0, 10_000, false, 1, limit)
            .unwrap();
        c.make_hot(blocks(), 0);
        c
    }

    /// Two threads hitting `c` once each at `limit`, from stripes 0 and 1.
    fn two_hits(c: &Arc<FixedWindowCell>, limit: u64) -> Vec<thread::JoinHandle<LimitedHit>> {
        (0..2)
            .map(|t| {
                let c = c.clone();
                thread::spawn(move || {
                    c.incr_within(blocks(), t, 1, 10_000, false, 1, limit)
                        .unwrap()
                })
            })
            .collect()
    }

    /// Two threads hitting a hot counter twice each, after a first hit, at a
    /// limit of 4: the first to go leases a token, the next finds the limit
    /// too near and drains the window, the rest go to the shared count.
    /// Exactly 4 of the 5 hits are admitted in every interleaving, and all 5
    /// are counted.
    #[test]
    fn hot_leases_admit_exactly_the_limit() {
        loom::model(|| {
            let c = hot_cell(4);
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let c = c.clone();
                    thread::spawn(move || {
                        (0..2)
                            .filter(|_| {
                                c.incr_within(blocks(), t, 1, 10_000, false, 1, 4)
                                    .unwrap()
                                    .admitted
                            })
                            .count()
                    })
                })
                .collect();
            let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(admitted + 1, 4);
            assert_eq!(c.get(blocks(), 1), 5);
        });
    }

    /// A hot counter of limit 3, drained with one token left: two threads
    /// race for it. Exactly one is admitted, in every interleaving loom
    /// runs, and both are counted. Loom 0.7 remembers one last load per
    /// atomic, so it never runs a refusal's load and swap between the other
    /// hit's add and its read of the refusals; the unit test
    /// `threads_racing_for_the_last_tokens_get_exactly_the_limit` covers
    /// that order.
    #[test]
    fn hot_last_token_goes_to_exactly_one_thread() {
        loom::model(|| {
            let c = hot_cell(3);
            assert!(
                c.incr_within(blocks(), 0, 1, 10_000, false, 1, 3)
                    .unwrap()
                    .admitted
            );
            let admitted = two_hits(&c, 3)
                .into_iter()
                .map(|h| h.join().unwrap().admitted)
                .filter(|ok| *ok)
                .count();
            assert_eq!(admitted, 1);
            assert_eq!(c.get(blocks(), 1), 4);
        });
    }

    /// A hot counter over its limit of 2, drained: two threads refused on
    /// their stripes race a hit with a limit of 10 on the shared count.
    /// Every hit is counted, the refused ones stay refused, and the other
    /// is admitted.
    #[test]
    fn hot_refusals_on_stripes_are_counted() {
        loom::model(|| {
            let c = hot_cell(2);
            assert!(
                c.incr_within(blocks(), 0, 1, 10_000, false, 1, 2)
                    .unwrap()
                    .admitted
            );
            assert!(
                !c.incr_within(blocks(), 0, 1, 10_000, false, 1, 2)
                    .unwrap()
                    .admitted
            );
            let refused = two_hits(&c, 2);
            let other = c.incr_within(blocks(), 1, 1, 10_000, false, 1, 10).unwrap();
            for hit in refused {
                assert!(!hit.join().unwrap().admitted);
            }
            assert!(other.admitted);
            assert_eq!(c.get(blocks(), 1), 6);
        });
    }

    /// A raw increment (no limit) racing a hit from a stripe that holds a
    /// lease, on a hot counter of limit 100: a hit that starts after the
    /// increment has returned is refused, as is every later one, and every
    /// hit is counted.
    #[test]
    fn hot_raw_increment_stops_the_leases() {
        use loom::sync::atomic::AtomicBool;
        loom::model(|| {
            let c = hot_cell(100);
            // Stripe 0 takes a lease.
            assert!(
                c.incr_within(blocks(), 0, 1, 10_000, false, 1, 100)
                    .unwrap()
                    .admitted
            );
            let done = Arc::new(AtomicBool::new(false));
            let raw = {
                let (c, done) = (c.clone(), done.clone());
                thread::spawn(move || {
                    c.incr(blocks(), 1, 10_000, false, 100).unwrap();
                    done.store(true, Ordering::SeqCst);
                })
            };
            let after = done.load(Ordering::SeqCst);
            let hit = c
                .incr_within(blocks(), 0, 1, 10_000, false, 1, 100)
                .unwrap();
            raw.join().unwrap();
            if after {
                assert!(!hit.admitted, "a lease admitted past a raw increment");
            }
            assert_eq!(c.get(blocks(), 1), 103);
            assert!(
                !c.incr_within(blocks(), 0, 1, 10_000, false, 1, 100)
                    .unwrap()
                    .admitted
            );
            assert_eq!(c.get(blocks(), 1), 104);
        });
    }

    /// Three hitters on a limit of 2: exactly two are admitted, in any interleaving.
    #[test]
    fn sliding_window_never_admits_past_the_limit() {
        loom::model(|| {
            let c = Arc::new(SlidingWindowCell::new());
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || c.acquire(S, 10 * S, 2, 1))
                })
                .collect();
            let admitted = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|ok| *ok)
                .count();
            assert_eq!(admitted, 2);
            assert_eq!(c.get(S, 10 * S).current, 2);
        });
    }
}
