//! Criterion benchmarks of the write-behind hit path: a fixed-window hit on
//! a node whose syncer runs every 10 ms against the embedded remote with
//! 100 µs of injected latency, next to the plain memory engine, and on a node
//! whose syncer stays idle (an hour's interval), which tells the table's own
//! cost from the syncer's. Write-through (interval 0) pays the round trip on
//! each hit and is measured on the hot key.
//!
//! `write_behind_budget_split/hot_key/{1,2}_threads` times a hit on a
//! budget-split node's hot key, within the share the remote granted;
//! `write_behind_budget_split/refused_key/{1,2}_threads` one on a key far
//! past its limit, whose hits are refused.
//!
//! Run with `cargo bench --bench write_behind`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use limitstore::write_behind::{MemoryRemote, WriteBehind};
use limitstore::{FixedWindowRateLimiter, MemoryStorage, RateLimitItem, RateLimiter};

fn ids(n: usize) -> Vec<String> {
    (0..n as u64)
        .map(|i| format!("user-{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16))
        .collect()
}

fn hits(c: &mut Criterion) {
    let item = RateLimitItem::per_second(1 << 40).expect("valid item");
    for (name, n) in [
        ("hot_key", 1usize),
        ("10k_keys", 10_000),
        ("100k_keys", 100_000),
    ] {
        let ids = ids(n);
        let mut group = c.benchmark_group(format!("write_behind_hit/{name}"));
        let memory = FixedWindowRateLimiter::new(Arc::new(MemoryStorage::new()));
        let remote = Arc::new(MemoryRemote::new().with_latency(Duration::from_micros(100)));
        let node = WriteBehind::builder(remote.clone())
            .sync_interval(Duration::from_millis(10))
            .start()
            .expect("node");
        let behind = FixedWindowRateLimiter::new(node.storage());
        let idle_node = WriteBehind::builder(remote.clone())
            .sync_interval(Duration::from_secs(3600))
            .start()
            .expect("node");
        let idle = FixedWindowRateLimiter::new(idle_node.storage());
        let through_node = WriteBehind::builder(remote)
            .sync_interval(Duration::ZERO)
            .start()
            .expect("node");
        let through = FixedWindowRateLimiter::new(through_node.storage());
        let cases: [(&str, &dyn RateLimiter); 4] = [
            ("memory", &memory),
            ("write_behind_10ms", &behind),
            ("write_behind_idle", &idle),
            ("write_through", &through),
        ];
        // Write-through pays a round trip per hit whatever the key set.
        let cases = if n == 1 { &cases[..] } else { &cases[..3] };
        for &(who, limiter) in cases {
            group.bench_function(BenchmarkId::from_parameter(who), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = if i + 1 >= ids.len() { 0 } else { i + 1 };
                    black_box(limiter.hit(&item, &[&ids[i]], 1).unwrap())
                })
            });
        }
        group.finish();
    }
}

/// Budget split on one hot key, on 1 and 2 threads (the time per hit of
/// the slowest thread): a hit within the share the remote granted, and a
/// hit on a key past its limit, refused.
fn budget_split(c: &mut Criterion) {
    // A key hit far below its limit, whose hits the granted share admits,
    // and one hit far past it (10 a minute), whose hits are refused.
    for (name, item) in [
        ("hot_key", RateLimitItem::per_second(1 << 40)),
        ("refused_key", RateLimitItem::per_minute(10)),
    ] {
        let item = item.expect("valid item");
        let remote = Arc::new(MemoryRemote::new().with_latency(Duration::from_micros(100)));
        let node = WriteBehind::builder(remote)
            .sync_interval(Duration::from_millis(10))
            .budget_split(true)
            .start()
            .expect("node");
        let limiter = FixedWindowRateLimiter::new(node.storage());
        let mut group = c.benchmark_group(format!("write_behind_budget_split/{name}"));
        for threads in [1usize, 2] {
            group.bench_function(
                BenchmarkId::from_parameter(format!("{threads}_threads")),
                |b| {
                    b.iter_custom(|iters| {
                        std::thread::scope(|scope| {
                            let hitters: Vec<_> = (0..threads)
                                .map(|_| {
                                    scope.spawn(|| {
                                        let start = std::time::Instant::now();
                                        for _ in 0..iters {
                                            black_box(limiter.hit(&item, &["hot"], 1).unwrap());
                                        }
                                        start.elapsed()
                                    })
                                })
                                .collect();
                            hitters
                                .into_iter()
                                .map(|h| h.join().expect("hitter"))
                                .max()
                                .unwrap_or_default()
                        })
                    })
                },
            );
        }
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
    targets = hits, budget_split
}
criterion_main!(benches);
