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
