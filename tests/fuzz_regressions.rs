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
