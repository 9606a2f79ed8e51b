//! Hits are the hot path: once a key exists and the per-thread key buffer
//! has grown, a hit must not allocate, on the memory engine and on a
//! write-behind node (which must not call its remote either).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use limitstore::write_behind::{MemoryRemote, WriteBehind};
use limitstore::{
    parse, FixedWindowElasticExpiryRateLimiter, FixedWindowRateLimiter, MemoryStorage, RateLimiter,
    Storage,
};

/// Counts the allocations of the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while the thread is torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn assert_hits_do_not_allocate(limiter: &dyn RateLimiter) {
    let item = parse("1000000/hour").unwrap();
    let ids = ["user-42", "GET /api/v1/things"];
    // Warm up: creates the key and grows the thread's key buffer.
    assert!(limiter.hit(&item, &ids, 1).unwrap());
    let n = allocations_during(|| {
        for _ in 0..1_000 {
            assert!(limiter.hit(&item, &ids, 1).unwrap());
        }
    });
    assert_eq!(n, 0, "1000 hits allocated {n} times");
}

#[test]
fn fixed_window_hit_does_not_allocate() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    assert_hits_do_not_allocate(&FixedWindowRateLimiter::new(storage));
}

#[test]
fn elastic_fixed_window_hit_does_not_allocate() {
    let storage = Arc::new(MemoryStorage::new());
    assert_hits_do_not_allocate(&FixedWindowElasticExpiryRateLimiter::new(storage).unwrap());
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(16);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn write_behind_hit_does_not_allocate() {
    let remote = Arc::new(MemoryRemote::new());
    let node = WriteBehind::builder(remote.clone())
        .sync_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    let limiter = FixedWindowRateLimiter::new(node.storage());
    let item = parse("1000000/hour").unwrap();
    let ids = ["user-42", "GET /api/v1/things"];
    // Warm up: creates the key, queues it and grows the thread's key buffer.
    assert!(limiter.hit(&item, &ids, 1).unwrap());
    let n = allocations_during(|| {
        for _ in 0..1_000 {
            assert!(limiter.hit(&item, &ids, 1).unwrap());
        }
    });
    assert_eq!(n, 0, "1000 hits allocated {n} times");
    assert_eq!(remote.calls(), 0);
    node.flush().unwrap();
    assert_eq!(remote.calls(), 1);
    assert_eq!(remote.reports(), 1);
}
