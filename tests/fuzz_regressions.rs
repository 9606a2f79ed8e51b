//! Inputs the fuzz targets (`fuzz/`) found failing, replayed through the
//! public API. Each test names the target and what was wrong.

use std::time::Duration;

use limitstore::{FakeClock, MemoryStorage, SlidingWindowCounterSupport, Storage};

/// `memory_model`: from Unix time 2^31 s (2038) on, a one-second sliding
/// window's index no longer fits in 31 bits, and a new cell's zero tag read
/// as "ahead" of it: the cell never rolled, so its counts never expired and
/// `reset` counted it as live forever.
#[test]
fn sliding_window_rolls_after_2038() {
    for origin in [(1u64 << 31) + 5, (1 << 32) - 4, (1 << 31) - 1] {
        let clock = FakeClock::with_unix_origin(origin as f64);
        let storage = MemoryStorage::builder().clock(clock.clone()).build();
        assert!(storage.acquire_sliding_window_entry("a", 2, 1, 1).unwrap());
        assert!(storage.acquire_sliding_window_entry("a", 2, 1, 1).unwrap());
        assert!(!storage.acquire_sliding_window_entry("a", 2, 1, 1).unwrap());
        let w = storage.get_sliding_window("a", 1).unwrap();
        assert_eq!((w.previous_count, w.current_count), (0, 2), "{origin}");

        clock.advance(Duration::from_secs(1));
        let w = storage.get_sliding_window("a", 1).unwrap();
        assert_eq!((w.previous_count, w.current_count), (2, 0), "{origin}");

        clock.advance(Duration::from_millis(1255));
        let w = storage.get_sliding_window("a", 1).unwrap();
        assert_eq!((w.previous_count, w.current_count), (0, 0), "{origin}");
        assert_eq!(storage.reset().unwrap(), Some(0), "{origin}");
        assert!(storage.acquire_sliding_window_entry("a", 2, 1, 2).unwrap());
    }
}

/// `memory_model`: an elastic increment refused because the count would
/// overflow still pushed the window's expiry out. A refused call must leave
/// the counter as it was.
#[test]
fn refused_elastic_increment_leaves_the_expiry_alone() {
    let clock = FakeClock::with_unix_origin(0.0);
    let storage = MemoryStorage::builder().clock(clock.clone()).build();
    assert_eq!(storage.incr("b", 1, false, 3).unwrap(), 3);
    let err = storage
        .incr("b", 2, true, limitstore::MAX_AMOUNT)
        .unwrap_err();
    assert_eq!(err.kind(), limitstore::ErrorKind::InvalidArgument);
    assert_eq!(storage.get("b").unwrap(), 3);
    assert_eq!(storage.get_expiry("b").unwrap(), 1.0);
    // An accepted elastic increment does move it.
    clock.advance(Duration::from_millis(500));
    assert_eq!(storage.incr("b", 2, true, 1).unwrap(), 4);
    assert_eq!(storage.get_expiry("b").unwrap(), 2.5);
}

/// `memory_model`: elastic expiry sets the window's end to a full expiry
/// from the latest hit, also when that expiry is shorter than the last one.
#[test]
fn elastic_expiry_follows_the_latest_hit() {
    let clock = FakeClock::with_unix_origin(1_700_000_000.0);
    let storage = MemoryStorage::builder().clock(clock.clone()).build();
    storage.incr("k", 2, true, 1).unwrap();
    assert_eq!(storage.get_expiry("k").unwrap(), 1_700_000_002.0);
    storage.incr("k", 1, true, 1).unwrap();
    assert_eq!(storage.get_expiry("k").unwrap(), 1_700_000_001.0);
}
