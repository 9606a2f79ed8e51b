//! Criterion benchmarks: the memory engine's fixed-window `hit` side by side
//! with `governor`'s keyed `check_key` on the same identifiers.
//!
//! Run with `cargo bench --bench main`; filter with e.g.
//! `cargo bench --bench main -- hot_key`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor};
use limitstore::{
    FixedWindowRateLimiter, MemoryStorage, RateLimitItem, RateLimiter, Storage, SystemClock,
};

const KEYS: usize = 100_000;

/// Identifiers in a scattered order (SplitMix64), so consecutive hits land on
/// unrelated keys as real traffic does.
fn identifiers(n: usize) -> Vec<String> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("user-{}", (z ^ (z >> 31)) % (n as u64 * 16))
        })
        .collect()
}

/// A limit high enough that every hit is admitted (the common case).
fn item() -> RateLimitItem {
    RateLimitItem::per_second(1 << 40).expect("valid item")
}

fn governor() -> DefaultKeyedRateLimiter<String> {
    Governor::keyed(Quota::per_second(NonZeroU32::MAX))
}

/// The contenders, all warmed on the same identifiers.
struct Contenders {
    default: FixedWindowRateLimiter<MemoryStorage>,
    precise: FixedWindowRateLimiter<MemoryStorage<SystemClock>>,
    dynamic: FixedWindowRateLimiter<dyn Storage>,
    governor: DefaultKeyedRateLimiter<String>,
    item: RateLimitItem,
}

impl Contenders {
    fn new(ids: &[String]) -> Self {
        let c = Contenders {
            default: FixedWindowRateLimiter::new(Arc::new(MemoryStorage::new())),
            precise: FixedWindowRateLimiter::new(Arc::new(
                MemoryStorage::builder().clock(SystemClock::new()).build(),
            )),
            dynamic: FixedWindowRateLimiter::new(Arc::new(MemoryStorage::new()) as Arc<dyn Storage>),
            governor: governor(),
            item: item(),
        };
        // Warm every table so the measured hits find existing keys.
        for id in ids {
            assert!(c.default.hit(&c.item, &[id], 1).unwrap());
            assert!(c.precise.hit(&c.item, &[id], 1).unwrap());
            assert!(c.dynamic.hit(&c.item, &[id], 1).unwrap());
            assert!(c.governor.check_key(id).is_ok());
        }
        c
    }
}

/// Runs `bench` once per contender, handing it that contender's hit function.
macro_rules! each_contender {
    ($c:expr, $bench:ident) => {{
        let c = &$c;
        $bench("limitstore", &|id: &String| {
            c.default.hit(&c.item, &[id], 1).unwrap()
        });
        $bench("limitstore-precise-clock", &|id: &String| {
            c.precise.hit(&c.item, &[id], 1).unwrap()
        });
        $bench("limitstore-dyn", &|id: &String| {
            c.dynamic.hit(&c.item, &[id], 1).unwrap()
        });
        $bench("governor", &|id: &String| c.governor.check_key(id).is_ok());
    }};
}

fn single_thread(c: &mut Criterion) {
    for (name, n) in [("hot_key", 1usize), ("100k_keys", KEYS)] {
        let ids = identifiers(n);
        let contenders = Contenders::new(&ids);
        let mut group = c.benchmark_group(format!("fixed_window_hit/{name}/1_thread"));
        let mut bench = |who: &str, hit: &(dyn Fn(&String) -> bool + Sync)| {
            group.bench_function(BenchmarkId::from_parameter(who), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = if i + 1 >= ids.len() { 0 } else { i + 1 };
                    black_box(hit(&ids[i]))
                })
            });
        };
        each_contender!(contenders, bench);
        group.finish();
    }
}

/// Two threads hitting at once; reports the time per hit of the slower thread.
fn two_threads(c: &mut Criterion) {
    for (name, n) in [("hot_key", 1usize), ("100k_keys", KEYS)] {
        let ids = identifiers(n);
        let contenders = Contenders::new(&ids);
        let mut group = c.benchmark_group(format!("fixed_window_hit/{name}/2_threads"));
        let mut bench = |who: &str, hit: &(dyn Fn(&String) -> bool + Sync)| {
            group.bench_function(BenchmarkId::from_parameter(who), |b| {
                b.iter_custom(|iters| {
                    std::thread::scope(|s| {
                        let handles: Vec<_> = (0..2)
                            .map(|t| {
                                let ids = &ids;
                                s.spawn(move || {
                                    // Each thread walks its own half of the keys.
                                    let mut i = t * ids.len() / 2;
                                    let start = Instant::now();
                                    for _ in 0..iters {
                                        i = if i + 1 >= ids.len() { 0 } else { i + 1 };
                                        black_box(hit(&ids[i]));
                                    }
                                    start.elapsed()
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().expect("bench thread"))
                            .max()
                            .unwrap_or(Duration::ZERO)
                    })
                })
            });
        };
        each_contender!(contenders, bench);
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, two_threads
}
criterion_main!(benches);
