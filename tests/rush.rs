//! Tests of the `rush`-style stores, limiters and throttle.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use limitstore::rush::{DictionaryStore, LimitData, RushStore, TLRUCacheStore};
use limitstore::{ErrorKind, FakeClock};

const T0: f64 = FakeClock::DEFAULT_UNIX_ORIGIN;

fn tlru(clock: FakeClock) -> TLRUCacheStore<FakeClock> {
    TLRUCacheStore::with_clock(1024, Duration::from_secs(3600), clock).unwrap()
}

// ---------------------------------------------------------------- stores

fn store_round_trip_and_cas(store: &dyn RushStore) {
    assert_eq!(store.current_time(), T0);
    assert_eq!(store.get("k").unwrap(), None);

    let a = LimitData::new(1, 9, T0).with_time(T0 + 0.1);
    assert_eq!(store.set("k", a.clone()).unwrap(), a);
    assert_eq!(store.get("k").unwrap(), Some(a.clone()));

    // CAS from the stored value succeeds.
    let b = a.clone().with_used(2).with_remaining(8).with_time(T0 + 0.2);
    assert_eq!(
        store.compare_and_swap("k", Some(&a), b.clone()).unwrap(),
        Ok(b.clone())
    );
    assert_eq!(store.get("k").unwrap(), Some(b.clone()));

    // CAS from a stale value fails, reports the current value, changes nothing.
    let c = b.clone().with_used(3);
    assert_eq!(
        store.compare_and_swap("k", Some(&a), c.clone()).unwrap(),
        Err(Some(b.clone()))
    );
    // Expecting absence while a value is stored fails too.
    assert_eq!(
        store.compare_and_swap("k", None, c.clone()).unwrap(),
        Err(Some(b.clone()))
    );
    assert_eq!(store.get("k").unwrap(), Some(b.clone()));

    // Expecting a value for an absent key reports absence.
    assert_eq!(
        store
            .compare_and_swap("other", Some(&a), c.clone())
            .unwrap(),
        Err(None)
    );
    assert_eq!(store.get("other").unwrap(), None);
    // Creating from absence works.
    assert_eq!(
        store.compare_and_swap("other", None, c.clone()).unwrap(),
        Ok(c.clone())
    );
    assert_eq!(store.get("other").unwrap(), Some(c));

    // A record without `time` round-trips as such.
    let plain = LimitData::fresh(5, T0 + 1.25);
    store.set("plain", plain.clone()).unwrap();
    assert_eq!(store.get("plain").unwrap(), Some(plain));

    store.clear("k").unwrap();
    assert_eq!(store.get("k").unwrap(), None);
    store.clear("never-set").unwrap();
}

#[test]
fn dictionary_store_round_trips_and_cas_mismatch_returns_current() {
    let store = DictionaryStore::with_clock(FakeClock::new());
    store_round_trip_and_cas(&store);
    assert_eq!(store.len(), 2);
    assert!(!store.is_empty());
}

#[test]
fn tlru_store_round_trips_and_cas_mismatch_returns_current() {
    store_round_trip_and_cas(&tlru(FakeClock::new()));
}

#[test]
fn store_time_follows_its_clock() {
    let clock = FakeClock::new();
    let dict = DictionaryStore::with_clock(clock.clone());
    let cache = tlru(clock.clone());
    clock.advance(Duration::from_millis(2500));
    assert_eq!(dict.current_time(), T0 + 2.5);
    assert_eq!(cache.current_time(), T0 + 2.5);
    let real = TLRUCacheStore::new(8, Duration::from_secs(1)).unwrap();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((real.current_time() - wall).abs() < 1.0);
}

#[test]
fn tlru_rejects_zero_bounds() {
    let err = TLRUCacheStore::new(0, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = TLRUCacheStore::new(1, Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let store = TLRUCacheStore::new(7, Duration::from_secs(9)).unwrap();
    assert_eq!((store.maxsize(), store.ttl()), (7, Duration::from_secs(9)));
}

#[test]
fn tlru_store_stays_within_maxsize() {
    let store =
        TLRUCacheStore::with_clock(128, Duration::from_secs(3600), FakeClock::new()).unwrap();
    for i in 0..10_000 {
        store
            .set(&format!("key-{i}"), LimitData::fresh(1, T0))
            .unwrap();
    }
    store.run_pending_tasks();
    assert!(
        store.entry_count() <= 128,
        "entry_count = {}",
        store.entry_count()
    );
    assert!(store.entry_count() > 0);
    // The most recent key survives an LRU eviction.
    assert!(store.get("key-9999").unwrap().is_some());
}

#[test]
fn tlru_store_expires_entries_after_ttl() {
    let store = TLRUCacheStore::new(16, Duration::from_millis(200)).unwrap();
    let data = LimitData::fresh(3, store.current_time());
    store.set("short-lived", data.clone()).unwrap();
    assert_eq!(store.get("short-lived").unwrap(), Some(data.clone()));
    thread::sleep(Duration::from_millis(350));
    // An expired record is neither returned nor matched by a CAS.
    assert_eq!(store.get("short-lived").unwrap(), None);
    assert_eq!(
        store
            .compare_and_swap("short-lived", Some(&data), data.clone())
            .unwrap(),
        Err(None)
    );
    store.run_pending_tasks();
    assert_eq!(store.entry_count(), 0);
}

#[test]
fn stores_cas_is_atomic_under_contention() {
    fn hammer(store: Arc<dyn RushStore>) {
        const THREADS: usize = 8;
        const PER_THREAD: u64 = 200;
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..PER_THREAD {
                        let mut current = store.get("counter").unwrap();
                        loop {
                            let next =
                                LimitData::new(current.as_ref().map_or(0, |d| d.used) + 1, 0, T0);
                            match store
                                .compare_and_swap("counter", current.as_ref(), next)
                                .unwrap()
                            {
                                Ok(_) => break,
                                Err(fresher) => current = fresher,
                            }
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let total = store.get("counter").unwrap().unwrap().used;
        assert_eq!(total, THREADS as u64 * PER_THREAD);
    }
    hammer(Arc::new(DictionaryStore::with_clock(FakeClock::new())));
    hammer(Arc::new(tlru(FakeClock::new())));
}
