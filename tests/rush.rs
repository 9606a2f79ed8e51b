//! Tests of the `rush`-style stores, limiters and throttle.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use limitstore::rush::{
    DictionaryStore, GenericCellRatelimiter, LimitData, Limiter, PeriodicLimiter, Quota,
    RateLimitResult, RushStore, TLRUCacheStore, Throttle,
};
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

// ---------------------------------------------------------------- helpers

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Runs `test` once over each store kind, both on the same fake time.
fn over_both_stores(test: impl Fn(Arc<dyn RushStore>, &FakeClock)) {
    let clock = FakeClock::new();
    test(Arc::new(DictionaryStore::with_clock(clock.clone())), &clock);
    let clock = FakeClock::new();
    test(Arc::new(tlru(clock.clone())), &clock);
}

fn gcra(store: Arc<dyn RushStore>) -> GenericCellRatelimiter<Arc<dyn RushStore>> {
    GenericCellRatelimiter::new(store)
}

fn periodic(store: Arc<dyn RushStore>) -> PeriodicLimiter<Arc<dyn RushStore>> {
    PeriodicLimiter::new(store)
}

// ---------------------------------------------------------------- GCRA

#[test]
fn gcra_admits_a_burst_of_exactly_limit_then_limits() {
    over_both_stores(|store, clock| {
        let limiter = gcra(store);
        let quota = Quota::per_second(10).unwrap();
        for i in 0..10u64 {
            let r = limiter.rate_limit("k", 1, &quota).unwrap();
            assert_eq!(
                r,
                RateLimitResult {
                    limit: 10,
                    limited: false,
                    remaining: 9 - i,
                    reset_after: ms(100 * (i + 1)),
                    retry_after: None,
                },
                "request {i}"
            );
        }
        let denied = limiter.rate_limit("k", 1, &quota).unwrap();
        assert_eq!(
            denied,
            RateLimitResult {
                limit: 10,
                limited: true,
                remaining: 0,
                reset_after: secs(1),
                retry_after: Some(ms(100)),
            }
        );

        // One emission interval later, exactly one more is admitted.
        clock.advance(ms(100));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(!r.limited);
        assert_eq!((r.remaining, r.reset_after), (0, secs(1)));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.retry_after, Some(ms(100)));

        // Part of an interval is not enough; the rest of it is.
        clock.advance(ms(40));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.retry_after, Some(ms(60)));
        assert_eq!(r.reset_after, ms(960));
        clock.advance(ms(60));
        assert!(!limiter.rate_limit("k", 1, &quota).unwrap().limited);

        // A full period of silence restores the whole burst.
        clock.advance(secs(1));
        for i in 0..10u64 {
            let r = limiter.rate_limit("k", 1, &quota).unwrap();
            assert!(!r.limited, "request {i} after the pause");
            assert_eq!(r.remaining, 9 - i);
        }
        assert!(limiter.rate_limit("k", 1, &quota).unwrap().limited);

        // Other keys are independent.
        assert_eq!(limiter.rate_limit("other", 1, &quota).unwrap().remaining, 9);
    });
}

#[test]
fn gcra_stores_its_theoretical_arrival_time() {
    over_both_stores(|store, clock| {
        let limiter = gcra(Arc::clone(&store));
        let quota = Quota::per_minute(6).unwrap();
        clock.advance(secs(5));
        limiter.rate_limit("k", 2, &quota).unwrap();
        let data = store.get("k").unwrap().unwrap();
        assert_eq!(data.time, Some(T0 + 5.0 + 20.0));
        assert_eq!((data.used, data.remaining), (2, 4));
        assert_eq!(data.created_at, T0 + 5.0);
    });
}

#[test]
fn gcra_burst_raises_the_limit() {
    over_both_stores(|store, clock| {
        let limiter = gcra(store);
        // limit = 2 + 3 = 5, emission interval = 1 s / 5 = 200 ms.
        let quota = Quota::per_second(2).unwrap().with_burst(3).unwrap();
        assert_eq!(quota.limit(), 5);
        for i in 0..5u64 {
            let r = limiter.rate_limit("k", 1, &quota).unwrap();
            assert!(!r.limited, "request {i}");
            assert_eq!(r.limit, 5);
            assert_eq!(r.remaining, 4 - i);
            assert_eq!(r.reset_after, ms(200 * (i + 1)));
        }
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.retry_after, Some(ms(200)));
        assert_eq!(r.reset_after, secs(1));
        clock.advance(ms(200));
        assert!(!limiter.rate_limit("k", 1, &quota).unwrap().limited);
    });
}

#[test]
fn gcra_quantities_above_one() {
    over_both_stores(|store, _clock| {
        let limiter = gcra(store);
        let quota = Quota::per_second(10).unwrap();
        let r = limiter.rate_limit("k", 4, &quota).unwrap();
        assert!(!r.limited);
        assert_eq!((r.remaining, r.reset_after), (6, ms(400)));

        // 7 does not fit (6 left): refused, nothing consumed, and one
        // emission interval frees the missing unit.
        let r = limiter.rate_limit("k", 7, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.remaining, 0);
        assert_eq!(r.retry_after, Some(ms(100)));
        assert_eq!(r.reset_after, ms(400));

        let r = limiter.rate_limit("k", 6, &quota).unwrap();
        assert!(!r.limited);
        assert_eq!((r.remaining, r.reset_after), (0, secs(1)));

        // More than the whole limit can never pass: no retry time.
        let r = limiter.rate_limit("fresh", 11, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.retry_after, None);
        assert_eq!(r.reset_after, Duration::ZERO);
        // And it consumed nothing.
        assert_eq!(
            limiter.rate_limit("fresh", 10, &quota).unwrap().remaining,
            0
        );
    });
}

#[test]
fn gcra_peek_reads_without_consuming() {
    over_both_stores(|store, clock| {
        let limiter = gcra(store);
        let quota = Quota::per_second(10).unwrap();
        assert_eq!(
            limiter.peek("k", &quota).unwrap(),
            RateLimitResult::fresh(10)
        );
        for _ in 0..3 {
            limiter.rate_limit("k", 1, &quota).unwrap();
        }
        for _ in 0..3 {
            let p = limiter.peek("k", &quota).unwrap();
            assert_eq!((p.limited, p.remaining, p.reset_after), (false, 7, ms(300)));
            assert_eq!(p.retry_after, None);
        }
        limiter.rate_limit("k", 7, &quota).unwrap();
        let p = limiter.peek("k", &quota).unwrap();
        assert_eq!(
            p,
            RateLimitResult {
                limit: 10,
                limited: true,
                remaining: 0,
                reset_after: secs(1),
                retry_after: Some(ms(100)),
            }
        );
        clock.advance(ms(250));
        let p = limiter.peek("k", &quota).unwrap();
        assert_eq!((p.limited, p.remaining, p.reset_after), (false, 2, ms(750)));
    });
}

#[test]
fn gcra_reset_forgets_the_key() {
    over_both_stores(|store, _clock| {
        let limiter = gcra(Arc::clone(&store));
        let quota = Quota::per_minute(2).unwrap();
        limiter.rate_limit("k", 2, &quota).unwrap();
        assert!(limiter.rate_limit("k", 1, &quota).unwrap().limited);
        assert_eq!(
            limiter.reset("k", &quota).unwrap(),
            RateLimitResult::fresh(2)
        );
        assert_eq!(store.get("k").unwrap(), None);
        assert!(!limiter.rate_limit("k", 2, &quota).unwrap().limited);
    });
}

#[test]
fn limiters_reject_bad_arguments() {
    let store: Arc<dyn RushStore> = Arc::new(DictionaryStore::with_clock(FakeClock::new()));
    let quota = Quota::per_second(10).unwrap();
    let limiters: [Box<dyn Limiter>; 2] = [
        Box::new(gcra(Arc::clone(&store))),
        Box::new(periodic(Arc::clone(&store))),
    ];
    for limiter in &limiters {
        let err = limiter.rate_limit("k", 0, &quota).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = limiter.rate_limit("k", u64::MAX, &quota).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let long_key = "k".repeat(limitstore::storage::MAX_KEY_LEN + 1);
        let err = limiter.rate_limit(&long_key, 1, &quota).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    // GCRA cannot represent an emission interval under one microsecond.
    let too_fine = Quota::per_second(2_000_000).unwrap();
    let err = gcra(Arc::clone(&store))
        .rate_limit("k", 1, &too_fine)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // The periodic limiter has no such bound.
    assert!(
        !periodic(store)
            .rate_limit("k", 1, &too_fine)
            .unwrap()
            .limited
    );
}

// ---------------------------------------------------------------- periodic

#[test]
fn periodic_window_is_anchored_at_the_first_hit() {
    over_both_stores(|store, clock| {
        let limiter = periodic(Arc::clone(&store));
        let quota = Quota::per_minute(3).unwrap();
        // Start off any minute boundary.
        clock.advance(secs(45));
        for i in 0..3u64 {
            let r = limiter.rate_limit("k", 1, &quota).unwrap();
            assert_eq!(
                r,
                RateLimitResult {
                    limit: 3,
                    limited: false,
                    remaining: 2 - i,
                    reset_after: secs(60),
                    retry_after: None,
                }
            );
        }
        assert_eq!(store.get("k").unwrap().unwrap().created_at, T0 + 45.0);

        clock.advance(secs(10));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert_eq!(
            r,
            RateLimitResult {
                limit: 3,
                limited: true,
                remaining: 0,
                reset_after: secs(50),
                retry_after: Some(secs(50)),
            }
        );

        // 59 s after the first hit the window is still closed...
        clock.advance(secs(49));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.reset_after, secs(1));

        // ...and at 60 s a new window opens, anchored at this hit.
        clock.advance(secs(1));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(!r.limited);
        assert_eq!((r.remaining, r.reset_after), (2, secs(60)));
        assert_eq!(store.get("k").unwrap().unwrap().created_at, T0 + 105.0);

        clock.advance(secs(30));
        let r = limiter.rate_limit("k", 2, &quota).unwrap();
        assert!(!r.limited);
        assert_eq!((r.remaining, r.reset_after), (0, secs(30)));
    });
}

#[test]
fn periodic_window_resets_after_a_long_pause() {
    over_both_stores(|store, clock| {
        let limiter = periodic(store);
        let quota = Quota::per_second(2).unwrap();
        limiter.rate_limit("k", 2, &quota).unwrap();
        assert!(limiter.rate_limit("k", 1, &quota).unwrap().limited);
        clock.advance(ms(10_500));
        let r = limiter.rate_limit("k", 1, &quota).unwrap();
        assert!(!r.limited);
        assert_eq!((r.remaining, r.reset_after), (1, secs(1)));
    });
}

#[test]
fn periodic_quantities_and_over_limit_requests() {
    over_both_stores(|store, clock| {
        let limiter = periodic(Arc::clone(&store));
        let quota = Quota::per_minute(10).unwrap();
        let r = limiter.rate_limit("k", 7, &quota).unwrap();
        assert_eq!((r.limited, r.remaining), (false, 3));
        let before = store.get("k").unwrap();

        clock.advance(secs(15));
        let r = limiter.rate_limit("k", 4, &quota).unwrap();
        assert_eq!(
            r,
            RateLimitResult {
                limit: 10,
                limited: true,
                remaining: 3,
                reset_after: secs(45),
                retry_after: Some(secs(45)),
            }
        );
        // A refused request stores nothing.
        assert_eq!(store.get("k").unwrap(), before);

        let r = limiter.rate_limit("k", 11, &quota).unwrap();
        assert!(r.limited);
        assert_eq!(r.retry_after, None);

        let r = limiter.rate_limit("k", 3, &quota).unwrap();
        assert_eq!((r.limited, r.remaining), (false, 0));
    });
}

#[test]
fn periodic_peek_and_reset() {
    over_both_stores(|store, clock| {
        let limiter = periodic(Arc::clone(&store));
        let quota = Quota::per_minute(2).unwrap();
        assert_eq!(
            limiter.peek("k", &quota).unwrap(),
            RateLimitResult::fresh(2)
        );
        limiter.rate_limit("k", 1, &quota).unwrap();
        clock.advance(secs(20));
        let p = limiter.peek("k", &quota).unwrap();
        assert_eq!(
            (p.limited, p.remaining, p.reset_after),
            (false, 1, secs(40))
        );
        assert_eq!(limiter.peek("k", &quota).unwrap(), p);
        limiter.rate_limit("k", 1, &quota).unwrap();
        let p = limiter.peek("k", &quota).unwrap();
        assert_eq!((p.limited, p.remaining), (true, 0));
        assert_eq!(p.retry_after, Some(secs(40)));
        // Once the window has ended, peek reports a fresh key.
        clock.advance(secs(40));
        assert_eq!(
            limiter.peek("k", &quota).unwrap(),
            RateLimitResult::fresh(2)
        );

        limiter.rate_limit("k", 2, &quota).unwrap();
        assert_eq!(
            limiter.reset("k", &quota).unwrap(),
            RateLimitResult::fresh(2)
        );
        assert_eq!(store.get("k").unwrap(), None);
        assert!(!limiter.rate_limit("k", 2, &quota).unwrap().limited);
    });
}

// ---------------------------------------------------------------- throttle

#[test]
fn throttle_binds_a_quota_to_a_limiter() {
    let clock = FakeClock::new();
    let store = Arc::new(DictionaryStore::with_clock(clock.clone()));
    let quota = Quota::per_hour(3).unwrap();
    let throttle = Throttle::new(quota, PeriodicLimiter::from_arc(Arc::clone(&store)));
    assert_eq!(throttle.quota(), &quota);
    assert!(Arc::ptr_eq(throttle.limiter().store(), &store));

    assert_eq!(throttle.peek("user").unwrap(), RateLimitResult::fresh(3));
    assert_eq!(throttle.check("user", 2).unwrap().remaining, 1);
    assert_eq!(throttle.peek("user").unwrap().remaining, 1);
    assert_eq!(throttle.check("user", 1).unwrap().remaining, 0);
    let denied = throttle.check("user", 1).unwrap();
    assert!(denied.limited);
    assert_eq!(denied.retry_after, Some(secs(3600)));

    let now = std::time::UNIX_EPOCH + Duration::from_secs_f64(store.current_time());
    assert_eq!(denied.resets_at(now), now + secs(3600));
    assert_eq!(denied.retry_at(now), Some(now + secs(3600)));
    assert_eq!(RateLimitResult::fresh(3).retry_at(now), None);

    assert_eq!(throttle.clear("user").unwrap(), RateLimitResult::fresh(3));
    assert!(!throttle.check("user", 3).unwrap().limited);
}

#[test]
fn limiters_can_share_a_store() {
    let clock = FakeClock::new();
    let store = Arc::new(tlru(clock));
    let quota = Quota::per_second(4).unwrap();
    let a = Throttle::new(quota, GenericCellRatelimiter::from_arc(Arc::clone(&store)));
    let b = Throttle::new(quota, a.limiter().clone());
    a.check("k", 3).unwrap();
    assert_eq!(b.check("k", 1).unwrap().remaining, 0);
    assert!(a.check("k", 1).unwrap().limited);
}

// ---------------------------------------------------------------- concurrency

/// 100 threads released together each ask once for the same key under a
/// 5-per-minute quota: exactly 5 may pass.
fn exactly_five_of_a_hundred<L: Limiter + 'static>(limiter: L) {
    const THREADS: usize = 100;
    let throttle = Arc::new(Throttle::new(Quota::per_minute(5).unwrap(), limiter));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let throttle = Arc::clone(&throttle);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                throttle.check("shared", 1).unwrap()
            })
        })
        .collect();
    let results: Vec<RateLimitResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let admitted = results.iter().filter(|r| !r.limited).count();
    assert_eq!(admitted, 5);
    // Each admitted request saw a distinct remaining count.
    let mut remaining: Vec<u64> = results
        .iter()
        .filter(|r| !r.limited)
        .map(|r| r.remaining)
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, vec![0, 1, 2, 3, 4]);
    assert!(throttle.check("shared", 1).unwrap().limited);
}

#[test]
fn concurrent_checks_admit_exactly_the_limit() {
    let tlru_store = || TLRUCacheStore::with_clock(128, secs(3600), FakeClock::new()).unwrap();
    let dict_store = || DictionaryStore::with_clock(FakeClock::new());
    exactly_five_of_a_hundred(GenericCellRatelimiter::new(tlru_store()));
    exactly_five_of_a_hundred(GenericCellRatelimiter::new(dict_store()));
    exactly_five_of_a_hundred(PeriodicLimiter::new(tlru_store()));
    exactly_five_of_a_hundred(PeriodicLimiter::new(dict_store()));
}

/// A store whose value changes under every compare-and-swap, as if another
/// writer always got there first.
struct AlwaysContended {
    inner: DictionaryStore<FakeClock>,
}

impl RushStore for AlwaysContended {
    fn get(&self, key: &str) -> limitstore::Result<Option<LimitData>> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, data: LimitData) -> limitstore::Result<LimitData> {
        self.inner.set(key, data)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        _old: Option<&LimitData>,
        _new: LimitData,
    ) -> limitstore::Result<Result<LimitData, Option<LimitData>>> {
        let current = self.inner.get(key)?;
        let used = current.as_ref().map_or(0, |d| d.used);
        let bumped = LimitData::new(used, 0, T0 - 1.0);
        self.inner.set(key, bumped.clone())?;
        Ok(Err(Some(bumped)))
    }
    fn clear(&self, key: &str) -> limitstore::Result<()> {
        self.inner.clear(key)
    }
    fn current_time(&self) -> f64 {
        self.inner.current_time()
    }
}

#[test]
fn endless_conflicts_end_in_a_concurrent_update_error() {
    let quota = Quota::per_minute(5).unwrap();
    let store = || AlwaysContended {
        inner: DictionaryStore::with_clock(FakeClock::new()),
    };
    let err = GenericCellRatelimiter::new(store())
        .rate_limit("k", 1, &quota)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConcurrentUpdate);
    let err = PeriodicLimiter::new(store())
        .rate_limit("k", 1, &quota)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConcurrentUpdate);
}
