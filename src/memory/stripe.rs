//! Per-thread stripes: each thread gets a small index, so that state written
//! on every hit (a shard's reader count, a hot key's lease) can be kept in one
//! cache line per stripe instead of one line every thread writes.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many stripes striped state keeps: the machine's hardware threads
/// rounded up to a power of two, between 2 and 64.
#[cfg(not(limitstore_loom))]
pub(crate) fn stripes() -> usize {
    static STRIPES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *STRIPES.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        threads.next_power_of_two().clamp(2, 64)
    })
}

/// Two stripes under model checking, as the models' threads.
#[cfg(limitstore_loom)]
pub(crate) fn stripes() -> usize {
    2
}

std::thread_local! {
    /// This thread's index plus one; 0 until first asked.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// This thread's stripe number. Threads are numbered in the order they first
/// ask, so up to [`stripes`] threads each get a stripe of their own; callers
/// reduce it with their stripe mask.
#[inline]
pub(crate) fn thread_stripe() -> usize {
    INDEX
        .try_with(|index| {
            let i = index.get();
            if i != 0 {
                return i - 1;
            }
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            index.set(i + 1);
            i
        })
        // A thread being torn down shares stripe 0.
        .unwrap_or(0)
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn threads_get_distinct_stable_stripes() {
        let mine = thread_stripe();
        assert_eq!(thread_stripe(), mine);
        let other = std::thread::spawn(thread_stripe).join().unwrap();
        assert_ne!(other, mine);
        assert!(stripes().is_power_of_two() && (2..=64).contains(&stripes()));
    }
}
