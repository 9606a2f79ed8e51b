//! The shared behavioural suite on the memory engine, driven by a fake clock,
//! plus what only the memory engine promises (its bound).

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Subject;
use limitstore::{
    parse, storage_from_string, Clock, FakeClock, FixedWindowRateLimiter, MemoryStorage,
    MovingWindowRateLimiter, Options, RateLimiter, SlidingWindowCounterRateLimiter,
    SlidingWindowCounterSupport, Storage,
};

fn subject() -> Subject {
    let clock = FakeClock::new();
    let storage = MemoryStorage::builder().clock(clock.clone()).build();
    Subject {
        storage: Arc::new(storage),
        advance: Box::new(move |d| clock.advance(d)),
        slack: 0.0,
        lacks: &[],
    }
}

storage_suite!(subject);

/// The same suite through the URI factory and the real clock.
mod from_uri {
    use super::*;

    fn subject() -> Subject {
        Subject::real_time(storage_from_string("memory://", &Options::new()).unwrap())
    }

    #[test]
    fn basic_behaviour_on_real_time() {
        let s = subject();
        common::suite::incr_adds_amounts(&s);
        common::suite::acquire_entry_admits_up_to_the_limit(&s);
        common::suite::sliding_window_counts_and_refuses(&s);
        common::suite::concurrent_incr_counts_every_hit(&s);
        common::suite::concurrent_acquire_entry_is_exact(&s);
        common::suite::concurrent_sliding_window_is_exact(&s);
    }
}

#[test]
fn a_million_distinct_keys_stay_within_max_entries() {
    let clock = FakeClock::new();
    let storage = MemoryStorage::builder()
        .clock(clock.clone())
        .max_entries(10_000)
        .build();
    assert!(storage.max_entries() <= 10_000);
    for i in 0..1_000_000u32 {
        storage.incr(&format!("key-{i}"), 3600, false, 1).unwrap();
        if i % 1000 == 0 {
            clock.advance(Duration::from_millis(2));
        }
    }
    assert!(storage.len() <= 10_000, "{} entries", storage.len());
    // The most recent keys are still counted.
    assert_eq!(storage.get("key-999999").unwrap(), 1);
}

#[test]
fn expired_keys_are_reclaimed_before_live_ones() {
    let clock = FakeClock::new();
    let storage = MemoryStorage::builder()
        .clock(clock.clone())
        .max_entries(1000)
        .shards(1)
        .build();
    storage.incr("long-lived", 3600, false, 7).unwrap();
    for i in 0..999 {
        storage.incr(&format!("short-{i}"), 1, false, 1).unwrap();
    }
    clock.advance(Duration::from_secs(2));
    for i in 0..500 {
        storage.incr(&format!("new-{i}"), 1, false, 1).unwrap();
    }
    // The full table made room by dropping expired keys, not the live one.
    assert_eq!(storage.get("long-lived").unwrap(), 7);
    assert!(storage.len() <= 1000);
    clock.advance(Duration::from_secs(2));
    assert_eq!(storage.purge_expired(), 500);
    assert_eq!(storage.len(), 1);
}

#[test]
fn sliding_window_is_epoch_aligned_like_limits() {
    // Windows of 10 s start at Unix times divisible by 10.
    let clock = FakeClock::with_unix_origin(1_700_000_005.0);
    let storage = MemoryStorage::builder().clock(clock.clone()).build();
    assert!(storage
        .acquire_sliding_window_entry("k", 10, 10, 4)
        .unwrap());
    let w = storage.get_sliding_window("k", 10).unwrap();
    assert_eq!((w.previous_count, w.current_count), (0, 4));
    assert_eq!(w.previous_expires_in, 0.0);
    assert!((w.current_expires_in - 15.0).abs() < 1e-9, "{w:?}");
    // 5 s later a new window starts: the 4 hits are now the previous
    // window, weighing fully at its start.
    clock.advance(Duration::from_secs(5));
    let w = storage.get_sliding_window("k", 10).unwrap();
    assert_eq!((w.previous_count, w.current_count), (4, 0));
    assert!((w.previous_expires_in - 10.0).abs() < 1e-9, "{w:?}");
    assert!(storage
        .acquire_sliding_window_entry("k", 10, 10, 6)
        .unwrap());
    assert!(!storage
        .acquire_sliding_window_entry("k", 10, 10, 1)
        .unwrap());
    // Three quarters in, the previous 4 weigh 1: floor(1 + 6) = 7, so 3 more fit.
    clock.advance(Duration::from_millis(7500));
    assert!(storage
        .acquire_sliding_window_entry("k", 10, 10, 3)
        .unwrap());
    assert!(!storage
        .acquire_sliding_window_entry("k", 10, 10, 1)
        .unwrap());
}

#[test]
fn get_expiry_is_wall_clock_seconds() {
    let clock = FakeClock::with_unix_origin(1_800_000_000.0);
    let storage = MemoryStorage::builder().clock(clock.clone()).build();
    clock.advance(Duration::from_millis(250));
    storage.incr("k", 30, false, 1).unwrap();
    assert_eq!(storage.get_expiry("k").unwrap(), 1_800_000_030.25);
    assert_eq!(storage.unix_now(), clock.unix_now());
}

#[test]
fn memory_uri_options() {
    let s = storage_from_string("memory://?max_entries=100&shards=2", &Options::new()).unwrap();
    assert_eq!(s.incr("k", 1, false, 1).unwrap(), 1);
    for bad in [
        "memory://?max_entries=0",
        "memory://?max_entries=lots",
        "memory://?shards=0",
        "memory://?colour=blue",
        "memory://somehost:1",
    ] {
        let e = storage_from_string(bad, &Options::new()).unwrap_err();
        assert!(e.is_configuration(), "{bad}: {e}");
    }
    // Explicit options win over the query string.
    let opts = Options::new().with("max_entries", 10);
    assert!(storage_from_string("memory://?max_entries=oops", &opts).is_ok());
}

/// An entry exactly `expiry` old is still inside the moving window, as in
/// `limits` (`timestamp >= now - expiry`, every backend) and this crate's
/// Redis and MongoDB scripts; it leaves the window a millisecond later.
#[test]
fn a_moving_window_entry_exactly_expiry_old_is_still_inside() {
    use limitstore::MovingWindowSupport;
    let clock = FakeClock::new();
    let s = MemoryStorage::builder().clock(clock.clone()).build();
    assert!(s.acquire_entry("edge", 1, 5, 1).unwrap());
    clock.advance(Duration::from_secs(5));
    assert_eq!(s.get_moving_window("edge", 1, 5).unwrap().count, 1);
    assert!(!s.acquire_entry("edge", 1, 5, 1).unwrap());
    // The entry is still stored while it is inside the window.
    s.purge_expired();
    assert_eq!(s.get_moving_window("edge", 1, 5).unwrap().count, 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(s.get_moving_window("edge", 1, 5).unwrap().count, 0);
    assert!(s.acquire_entry("edge", 1, 5, 1).unwrap());
}

/// A limiter hands the engine its key as parts, which the engine hashes
/// where they lie (gathered on the stack up to 128 bytes, streamed past
/// that); a caller with the key string reaches the same counter, window and
/// ring, for every strategy, at every length around that boundary.
#[test]
fn a_limiter_and_its_key_string_reach_the_same_state() {
    use limitstore::{
        FixedWindowRateLimiter, MovingWindowRateLimiter, MovingWindowSupport, RateLimitItem,
        RateLimiter, SlidingWindowCounterRateLimiter, MAX_KEY_LEN,
    };
    let storage = Arc::new(MemoryStorage::new());
    let fixed = FixedWindowRateLimiter::new(Arc::clone(&storage));
    let moving = MovingWindowRateLimiter::new(Arc::clone(&storage)).unwrap();
    let sliding = SlidingWindowCounterRateLimiter::new(Arc::clone(&storage)).unwrap();
    let item = RateLimitItem::per_minute(5).unwrap().with_namespace("ns");
    // "ns/" + id + "/5/1/minute": 14 bytes around the identifier.
    let sized: Vec<String> = [113, 114, 115, 300, 5000].map(|n| "x".repeat(n)).to_vec();
    let mut identities: Vec<Vec<&str>> =
        vec![vec!["user"], vec!["a", "b", "c"], vec!["", "é/"], vec![]];
    identities.extend(sized.iter().map(|id| vec![id.as_str()]));
    for ids in &identities {
        let key = item.key_for(ids);
        assert_eq!(item.key(ids).len(), key.len());
        // Fixed window: limiter, string, limiter.
        assert!(fixed.hit(&item, ids, 2).unwrap(), "{}", key.len());
        assert_eq!(storage.get(&key).unwrap(), 2, "{}", key.len());
        assert_eq!(storage.incr(&key, 60, false, 2).unwrap(), 4);
        assert!(fixed.hit(&item, ids, 1).unwrap());
        assert!(!fixed.hit(&item, ids, 1).unwrap());
        assert_eq!(storage.get(&key).unwrap(), 6);
        // Moving window: string, then limiter.
        assert!(storage.acquire_entry(&key, 5, 60, 4).unwrap());
        assert!(moving.hit(&item, ids, 1).unwrap());
        assert!(!moving.hit(&item, ids, 1).unwrap());
        assert_eq!(storage.get_moving_window(&key, 5, 60).unwrap().count, 5);
        // Sliding window: limiter, then string.
        assert!(sliding.hit(&item, ids, 3).unwrap());
        assert_eq!(
            storage.get_sliding_window(&key, 60).unwrap().current_count,
            3
        );
        assert!(storage
            .acquire_sliding_window_entry(&key, 5, 60, 2)
            .unwrap());
        assert!(!sliding.hit(&item, ids, 1).unwrap());
        storage.clear(&key).unwrap();
        assert!(fixed.hit(&item, ids, 5).unwrap());
    }
    // A key past the longest accepted is refused the same way both ways.
    let huge = "x".repeat(MAX_KEY_LEN);
    for e in [
        fixed.hit(&item, &[&huge], 1).unwrap_err(),
        moving.hit(&item, &[&huge], 1).unwrap_err(),
        sliding.hit(&item, &[&huge], 1).unwrap_err(),
        storage
            .incr(&item.key_for(&[&huge]), 60, false, 1)
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), limitstore::ErrorKind::InvalidArgument, "{e}");
    }
}

/// The engine and the limiters over it can be shared into
/// `std::panic::catch_unwind` (as a server that survives a panicking
/// handler does) without `AssertUnwindSafe`: a hit never panics and changes
/// the engine only through atomics and shard locks it has let go of when it
/// returns, so unwinding through the caller leaves no counter half-changed.
#[test]
fn the_engine_and_its_limiters_are_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe + Send + Sync>() {}
    unwind_safe::<MemoryStorage>();
    unwind_safe::<MemoryStorage<FakeClock>>();
    unwind_safe::<Arc<MemoryStorage>>();
    unwind_safe::<FixedWindowRateLimiter<MemoryStorage>>();
    unwind_safe::<MovingWindowRateLimiter<MemoryStorage>>();
    unwind_safe::<SlidingWindowCounterRateLimiter<MemoryStorage>>();

    let limiter = FixedWindowRateLimiter::new(Arc::new(MemoryStorage::new()));
    let item = parse("2/minute").unwrap();
    let caught = std::panic::catch_unwind(|| {
        assert!(limiter.hit(&item, &["caught"], 1).unwrap());
        panic!("a handler panics after its hit");
    });
    assert!(caught.is_err());
    assert!(limiter.hit(&item, &["caught"], 1).unwrap());
    assert!(!limiter.hit(&item, &["caught"], 1).unwrap());
}
