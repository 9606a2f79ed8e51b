//! The atomic cells behind fixed-window counters and sliding window counters.
//!
//! Each cell is one 128-bit word changed only by compare-and-swap, so the
//! fields that must change together (a count and the window it belongs to)
//! always do, and a hit on an existing key never takes a lock.

use crate::sync::AtomicU128;

/// Counts above this are refused, so that no increment can carry out of the
/// count field.
pub(crate) const MAX_COUNT: u64 = 1 << 62;

/// A count would exceed [`MAX_COUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// A fixed-window counter.
///
/// Layout: high 64 bits = expiry (clock nanoseconds; `<= now` means the window
/// is over and the count no longer counts), low 64 bits = count.
#[derive(Debug)]
pub(crate) struct FixedWindowCell {
    word: AtomicU128,
}

#[inline]
fn split(word: u128) -> (u64, u64) {
    ((word >> 64) as u64, word as u64)
}

#[inline]
fn join(hi: u64, lo: u64) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
}

impl FixedWindowCell {
    pub(crate) fn new() -> Self {
        FixedWindowCell {
            word: AtomicU128::new(0),
        }
    }

    /// Adds `amount`; starts a new window of `window` nanoseconds if the
    /// current one is over; with `elastic`, moves the expiry to `now + window`.
    #[inline]
    pub(crate) fn incr(
        &self,
        now: u64,
        window: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<u64, Overflow> {
        let mut current = self.word.load();
        loop {
            let (expires, count) = split(current);
            let (expires, count) = if expires <= now {
                (now.saturating_add(window), amount)
            } else {
                let count = count
                    .checked_add(amount)
                    .filter(|c| *c <= MAX_COUNT)
                    .ok_or(Overflow)?;
                let expires = if elastic {
                    now.saturating_add(window)
                } else {
                    expires
                };
                (expires, count)
            };
            match self.word.compare_exchange(current, join(expires, count)) {
                Ok(_) => return Ok(count),
                Err(actual) => current = actual,
            }
        }
    }

    /// The count, 0 if the window is over.
    #[inline]
    pub(crate) fn get(&self, now: u64) -> u64 {
        let (expires, count) = split(self.word.load());
        if expires <= now {
            0
        } else {
            count
        }
    }

    /// When the window ends (clock nanoseconds), if it has not yet.
    pub(crate) fn expiry(&self, now: u64) -> Option<u64> {
        let (expires, _) = split(self.word.load());
        (expires > now).then_some(expires)
    }

    /// When this cell stops holding anything.
    pub(crate) fn expires_at(&self) -> u64 {
        split(self.word.load()).0
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn fixed_window_counts_then_expires() {
        let c = FixedWindowCell::new();
        assert_eq!(c.incr(0, 10 * S, false, 1), Ok(1));
        assert_eq!(c.incr(5 * S, 10 * S, false, 10), Ok(11));
        assert_eq!(c.get(9 * S), 11);
        assert_eq!(c.expiry(9 * S), Some(10 * S));
        assert_eq!(c.get(10 * S), 0);
        assert_eq!(c.incr(10 * S, 10 * S, false, 2), Ok(2));
        assert_eq!(c.expiry(10 * S), Some(20 * S));
    }

    #[test]
    fn elastic_expiry_moves_out() {
        let c = FixedWindowCell::new();
        c.incr(0, 10 * S, true, 1).unwrap();
        c.incr(8 * S, 10 * S, true, 1).unwrap();
        assert_eq!(c.expiry(12 * S), Some(18 * S));
        assert_eq!(c.get(17 * S), 2);
    }

    #[test]
    fn fixed_window_refuses_overflow() {
        let c = FixedWindowCell::new();
        c.incr(0, S, false, MAX_COUNT).unwrap();
        assert_eq!(c.incr(0, S, false, 1), Err(Overflow));
        assert_eq!(c.get(0), MAX_COUNT);
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

#[cfg(all(test, loom))]
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
            c.incr(0, 10 * S, false, 5).unwrap();
            let a = {
                let c = c.clone();
                thread::spawn(move || c.incr(10 * S, 10 * S, false, 1).unwrap())
            };
            let b = {
                let c = c.clone();
                thread::spawn(move || c.incr(11 * S, 10 * S, false, 2).unwrap())
            };
            let ra = a.join().unwrap();
            let rb = b.join().unwrap();
            // Whoever rolled the window started at its own amount, the other added.
            assert!((ra, rb) == (1, 3) || (ra, rb) == (3, 2), "{ra} {rb}");
            assert_eq!(c.get(12 * S), 3);
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
