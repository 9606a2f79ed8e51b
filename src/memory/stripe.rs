//! Per-thread stripes: each thread gets a small index, so that state written
//! on every hit (a shard's reader count, a hot key's lease) can be kept in one
//! cache line per stripe instead of one line every thread writes.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

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
    /// Gives this thread's index back when the thread exits.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Indices of threads that have exited, for the next threads to ask.
static FREE: Mutex<BinaryHeap<Reverse<usize>>> = Mutex::new(BinaryHeap::new());

/// The next index never given out.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A thread's index, put back in [`FREE`] as the thread exits.
struct Held(usize);

impl Drop for Held {
    fn drop(&mut self) {
        FREE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Reverse(self.0));
    }
}

/// This thread's stripe number. A thread's first call takes the smallest
/// index an exited thread gave back, else the next new one, so the threads
/// alive at once hold the smallest indices: up to [`stripes`] of them each
/// get a stripe of their own even where threads come and go (a pool that
/// replaces its threads, a thread per connection). Callers reduce it with
/// their stripe mask.
#[inline]
pub(crate) fn thread_stripe() -> usize {
    INDEX
        .try_with(|index| match index.get() {
            0 => {
                let i = take_index();
                index.set(i + 1);
                i
            }
            i => i - 1,
        })
        // A thread being torn down shares stripe 0.
        .unwrap_or(0)
}

/// A free index for this thread, given back when it exits (where the
/// thread can still hold it; otherwise the index is simply not reused).
#[cold]
fn take_index() -> usize {
    let freed = FREE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .map(|Reverse(i)| i);
    let i = freed.unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed));
    let _ = HELD.try_with(|held| *held.borrow_mut() = Some(Held(i)));
    i
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

    /// Threads that come and go take back the indices of exited ones, so
    /// two threads alive together never share a stripe while there are
    /// stripes enough, however many threads came before.
    #[test]
    fn exited_threads_give_their_stripes_back() {
        let mine = thread_stripe();
        for _ in 0..200 {
            // Both hold their index until both have one.
            let both = std::sync::Barrier::new(2);
            let (a, b) = std::thread::scope(|s| {
                let take = || {
                    let i = thread_stripe();
                    both.wait();
                    i
                };
                let (a, b) = (s.spawn(take), s.spawn(take));
                (a.join().unwrap(), b.join().unwrap())
            });
            assert_ne!(a, b);
            assert_ne!(a, mine);
            assert_ne!(b, mine);
        }
        // 400 threads came and went: the indices stayed small.
        let next = std::thread::spawn(thread_stripe).join().unwrap();
        assert!(next < 64, "{next}");
    }
}
