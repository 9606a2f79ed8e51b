//! After `limits`' `tests/integration/test_concurrency.py`: many threads hit a
//! `5/minute` limit at once on one shared storage, and exactly five get in.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use limitstore::{limiter_for, parse, MemoryStorage, RateLimiter, Storage, Strategy};

const THREADS: usize = 100;
const ROUNDS: usize = 5;

/// Sliding window counters are aligned to the epoch: a round that straddled a
/// minute boundary would see the previous minute's hits decay and rightly
/// admit more than five. Rounds take milliseconds, so waiting out the last
/// second of a minute keeps every round inside one window.
fn stay_clear_of_a_minute_boundary() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into_minute = now.as_secs_f64() % 60.0;
    if into_minute > 59.0 {
        std::thread::sleep(Duration::from_secs_f64(60.0 - into_minute + 0.05));
    }
}

fn admitted_at_once(limiter: &dyn RateLimiter, round: usize) -> usize {
    let item = parse("5/minute").unwrap();
    let barrier = Barrier::new(THREADS);
    let admitted = AtomicUsize::new(0);
    let id = format!("round-{round}");
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                if limiter.hit(&item, &["concurrency", &id], 1).unwrap() {
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    admitted.into_inner()
}

fn exactly_five(strategy: Strategy) {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let limiter = limiter_for(strategy, storage).unwrap();
    for round in 0..ROUNDS {
        stay_clear_of_a_minute_boundary();
        assert_eq!(
            admitted_at_once(&*limiter, round),
            5,
            "{strategy}, round {round}"
        );
        let item = parse("5/minute").unwrap();
        let stats = limiter
            .get_window_stats(&item, &["concurrency", &format!("round-{round}")])
            .unwrap();
        assert_eq!(stats.remaining, 0, "{strategy}, round {round}");
    }
}

#[test]
fn fixed_window_admits_exactly_the_limit() {
    exactly_five(Strategy::FixedWindow);
}

#[test]
fn fixed_window_elastic_expiry_admits_exactly_the_limit() {
    exactly_five(Strategy::FixedWindowElasticExpiry);
}

#[test]
fn moving_window_admits_exactly_the_limit() {
    exactly_five(Strategy::MovingWindow);
}

#[test]
fn sliding_window_counter_admits_exactly_the_limit() {
    exactly_five(Strategy::SlidingWindowCounter);
}

/// Threads hammering one key with a large limit: the memory engine soon
/// serves the key from per-thread leases, and still admits exactly the limit
/// and counts every hit.
fn hot_key_admits_exactly_the_limit(strategy: Strategy) {
    const HOT_THREADS: usize = 4;
    const HITS: usize = 100_000;
    const LIMIT: u64 = 150_000;
    let storage = Arc::new(MemoryStorage::new());
    let limiter = limiter_for(strategy, storage.clone() as Arc<dyn Storage>).unwrap();
    let item = parse(&format!("{LIMIT}/minute")).unwrap();
    let barrier = Barrier::new(HOT_THREADS);
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..HOT_THREADS {
            s.spawn(|| {
                barrier.wait();
                let mine = (0..HITS)
                    .filter(|_| limiter.hit(&item, &["hot"], 1).unwrap())
                    .count();
                admitted.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(admitted.into_inner() as u64, LIMIT, "{strategy}");
    let key = item.key_for(&["hot"]);
    assert_eq!(storage.get(&key).unwrap(), (HOT_THREADS * HITS) as u64);
    let stats = limiter.get_window_stats(&item, &["hot"]).unwrap();
    assert_eq!(stats.remaining, 0, "{strategy}");
}

#[test]
fn fixed_window_hot_key_admits_exactly_the_limit() {
    hot_key_admits_exactly_the_limit(Strategy::FixedWindow);
}

#[test]
fn fixed_window_elastic_expiry_hot_key_admits_exactly_the_limit() {
    hot_key_admits_exactly_the_limit(Strategy::FixedWindowElasticExpiry);
}
