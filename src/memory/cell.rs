//! The atomic cells behind fixed-window counters and sliding window counters.
//!
//! Each cell is one 128-bit word changed only by compare-and-swap, so the
//! fields that must change together (a count and the window it belongs to)
//! always do, and a hit on an existing key never takes a lock.

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
fn generation(word: u64) -> u64 {
    word >> GEN_SHIFT
}

#[inline]
fn low(word: u64) -> u64 {
    word & LOW_MASK
}

#[inline]
fn pack(generation: u64, low: u64) -> u64 {
    ((generation & GEN_MASK) << GEN_SHIFT) | (low & LOW_MASK)
}

/// Whether generation `a` is older than `b` (16-bit wrapping).
#[inline]
fn older(a: u64, b: u64) -> bool {
    let d = b.wrapping_sub(a) & GEN_MASK;
    d != 0 && d < 0x8000
}

/// A fixed-window counter in two 64-bit words:
///
/// - `window` = `[generation: 16 | expiry: 48]`, the expiry in milliseconds
///   on the clock's time line;
/// - `count` = `[generation: 16 | count: 48]`.
///
/// A new window is claimed by a compare-and-swap of `window` to the next
/// generation; `count` follows it (whoever sees it lag resets it to the new
/// generation, so nobody waits for the claimer). A hit in a live window is one
/// `fetch_add` on `count`, whose returned generation says which window the
/// hit landed in: the one it saw or a newer one, both live. `count` never runs
/// ahead of `window`.
#[derive(Debug)]
pub(crate) struct FixedWindowCell {
    window: AtomicU64,
    count: AtomicU64,
}

impl FixedWindowCell {
    pub(crate) fn new() -> Self {
        FixedWindowCell {
            window: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Adds `amount` at `now_ms`; starts a new window of `window_ms` if the
    /// current one is over; with `elastic`, moves the expiry to `now_ms + window_ms`.
    #[inline]
    pub(crate) fn incr(
        &self,
        now_ms: u64,
        window_ms: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<u64, Overflow> {
        if amount > MAX_COUNT {
            return Err(Overflow);
        }
        let fresh_expiry = now_ms.saturating_add(window_ms).min(LOW_MASK);
        loop {
            let w = self.window.load(Ordering::Acquire);
            let mut gen = generation(w);
            let expired = low(w) <= now_ms;
            if expired {
                // Claim the next window.
                gen = (gen + 1) & GEN_MASK;
                if self
                    .window
                    .compare_exchange(
                        w,
                        pack(gen, fresh_expiry),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_err()
                {
                    continue;
                }
            }
            let total = match self.add(gen, amount) {
                Added::Total(total) => total,
                Added::Overflow => return Err(Overflow),
                Added::Retry => continue,
            };
            if elastic && !expired {
                self.extend(gen, fresh_expiry);
            }
            return Ok(total);
        }
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
    fn extend(&self, gen: u64, expiry: u64) {
        let mut w = self.window.load(Ordering::Acquire);
        while generation(w) == gen && low(w) != expiry {
            match self.window.compare_exchange(
                w,
                pack(gen, expiry),
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
    pub(crate) fn get(&self, now_ms: u64) -> u64 {
        let w = self.window.load(Ordering::Acquire);
        if low(w) <= now_ms {
            return 0;
        }
        let c = self.count.load(Ordering::Acquire);
        if generation(c) == generation(w) {
            low(c)
        } else {
            0
        }
    }

    /// When the window ends (clock milliseconds), if it has not yet.
    pub(crate) fn expiry_ms(&self, now_ms: u64) -> Option<u64> {
        let expires = low(self.window.load(Ordering::Acquire));
        (expires > now_ms).then_some(expires)
    }

    /// When this cell stops holding anything, in clock milliseconds.
    pub(crate) fn expires_at_ms(&self) -> u64 {
        low(self.window.load(Ordering::Acquire))
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
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn fixed_window_counts_then_expires() {
        let c = FixedWindowCell::new();
        assert_eq!(c.incr(0, 10_000, false, 1), Ok(1));
        assert_eq!(c.incr(5_000, 10_000, false, 10), Ok(11));
        assert_eq!(c.get(9_999), 11);
        assert_eq!(c.expiry_ms(9_999), Some(10_000));
        assert_eq!(c.get(10_000), 0);
        assert_eq!(c.incr(10_000, 10_000, false, 2), Ok(2));
        assert_eq!(c.expiry_ms(10_000), Some(20_000));
    }

    #[test]
    fn elastic_expiry_moves_out() {
        let c = FixedWindowCell::new();
        c.incr(0, 10_000, true, 1).unwrap();
        c.incr(8_000, 10_000, true, 1).unwrap();
        assert_eq!(c.expiry_ms(12_000), Some(18_000));
        assert_eq!(c.get(17_000), 2);
    }

    #[test]
    fn fixed_window_refuses_overflow() {
        let c = FixedWindowCell::new();
        c.incr(0, 1000, false, MAX_COUNT - 1).unwrap();
        assert_eq!(c.incr(0, 1000, false, 2), Err(Overflow));
        assert_eq!(c.get(0), MAX_COUNT - 1);
        assert_eq!(c.incr(0, 1000, false, 1), Ok(MAX_COUNT));
        let d = FixedWindowCell::new();
        assert_eq!(d.incr(0, 1000, false, MAX_COUNT + 1), Err(Overflow));
        assert_eq!(d.incr(0, 1000, false, 1 << 40), Ok(1 << 40));
        assert_eq!(d.incr(0, 1000, false, 1 << 40), Ok(2 << 40));
    }

    #[test]
    fn generations_wrap_around() {
        let c = FixedWindowCell::new();
        for w in 0..70_000u64 {
            assert_eq!(c.incr(w * 10, 10, false, 3), Ok(3), "window {w}");
            assert_eq!(c.incr(w * 10 + 5, 10, false, 1), Ok(4));
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
            c.incr(0, 10_000, false, 5).unwrap();
            let a = {
                let c = c.clone();
                thread::spawn(move || c.incr(10_000, 10_000, false, 1).unwrap())
            };
            let b = {
                let c = c.clone();
                thread::spawn(move || c.incr(11_000, 10_000, false, 2).unwrap())
            };
            let ra = a.join().unwrap();
            let rb = b.join().unwrap();
            // Whoever rolled the window started at its own amount, the other added.
            assert!((ra, rb) == (1, 3) || (ra, rb) == (3, 2), "{ra} {rb}");
            assert_eq!(c.get(12_000), 3);
        });
    }

    /// Three hits racing a window roll-over: each is counted exactly once,
    /// in the new window, and each sees a distinct count.
    #[test]
    fn hits_racing_a_roll_over_count_once() {
        loom::model(|| {
            let c = Arc::new(FixedWindowCell::new());
            c.incr(0, 10_000, false, 5).unwrap();
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || c.incr(10_000, 10_000, false, 1).unwrap())
                })
                .collect();
            let mut seen: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![1, 2, 3]);
            assert_eq!(c.get(10_001), 3);
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
