//! Criterion benchmarks of the memory engine, side by side in one run with
//! the peers a user would otherwise reach for:
//!
//! - `fixed_window_hit/{hot_key,100k_keys,1m_keys}/{1,N}_threads`: the
//!   fixed-window `hit` (also without hot-key leases: `limitstore-no-leases`)
//!   against `governor`'s keyed `check_key` and three plain baselines, a
//!   `moka` cache and a `DashMap<String, AtomicU64>` holding one counter per
//!   identifier (no windows, no expiry: the floor of a keyed counter), and
//!   pingora-limits' `Rate::observe` (an approximate count-min estimate that
//!   keeps no key: the floor of any keyed count);
//! - `strategy_hit/{hot_key,100k_keys}/{1,N}_threads`: every strategy's
//!   `hit` on the memory engine at a limit of `100/second`, so a hot key's
//!   hits are mostly refusals and the 100k keys' mostly admissions (a moving
//!   window keeps one timestamp per admitted hit: 100 slots per key).
//!
//! - `hit_parts/*`: one thread, one hot key: what a fixed-window `hit`
//!   spends its time on, part by part (building the `limits`-layout key,
//!   hashing it, a shard's read lock and unlock, the storage call with the
//!   key already built and with the key as its parts, the whole `hit`, the asynchronous limiter's `hit`
//!   polled once), beside `governor`'s `check_key`;
//! - `table_probe/{hot_key,100k_keys}/*`: the table alone, the key already
//!   hashed: the engine's shard structure (`ShardedLock` over `hashbrown`)
//!   against an open-addressing table of atomics and two lock-free maps
//!   (`papaya`, `scc`'s `HashIndex`), each adding to a counter.
//!
//! `N` is the machine's hardware threads (at least 2). Multi-threaded rows
//! report the time per hit of the slowest thread, each thread doing the
//! same number of hits, so throughput scaling is `N × t(1) / t(N)`.
//!
//! Run with `cargo bench --bench main`; filter with e.g.
//! `cargo bench --bench main -- hot_key`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor};
use limitstore::{
    limiter_for, FixedWindowRateLimiter, MemoryStorage, RateLimitItem, RateLimiter, Storage,
    Strategy, SystemClock,
};

/// The key sets: one hot key, 100k and 1M distinct identifiers.
const KEY_SETS: [(&str, usize); 3] = [
    ("hot_key", 1),
    ("100k_keys", 100_000),
    ("1m_keys", 1_000_000),
];

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

/// Thread counts to measure: 1 and the machine's hardware threads (at least 2).
fn thread_counts() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    vec![1, n]
}

/// A memory storage large enough to hold every key of the biggest set.
fn storage() -> MemoryStorage {
    MemoryStorage::builder().max_entries(2_000_000).build()
}

type Hit<'a> = &'a (dyn Fn(&String) -> bool + Sync);

/// Times `hit` over `ids` on one thread, or over each thread's own copy of
/// them (`copies`) on several, each thread walking its identifiers from its
/// own offset; returns the slowest thread's time.
///
/// Each thread has its own copy as each request brings its own: threads
/// reading one shared string would share its cache line with whatever the
/// allocator put beside it.
fn run(ids: &[String], copies: &[Vec<String>], iters: u64, hit: Hit<'_>) -> Duration {
    if copies.is_empty() {
        let mut i = 0usize;
        let start = Instant::now();
        for _ in 0..iters {
            i = if i + 1 >= ids.len() { 0 } else { i + 1 };
            black_box(hit(&ids[i]));
        }
        return start.elapsed();
    }
    let threads = copies.len();
    std::thread::scope(|s| {
        let handles: Vec<_> = copies
            .iter()
            .enumerate()
            .map(|(t, ids)| {
                s.spawn(move || {
                    let mut i = t * ids.len() / threads;
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
}

fn bench_one(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    who: &str,
    ids: &[String],
    threads: usize,
    hit: Hit<'_>,
) {
    // Made when the row is measured (not when a filter leaves it out):
    // every key exists before measuring, and each thread's identifiers.
    let mut prepared: Option<Vec<Vec<String>>> = None;
    group.bench_function(BenchmarkId::from_parameter(who), |b| {
        let copies = &*prepared.get_or_insert_with(|| {
            for id in ids {
                hit(id);
            }
            if threads > 1 {
                (0..threads).map(|_| ids.to_vec()).collect()
            } else {
                Vec::new()
            }
        });
        b.iter_custom(|iters| run(ids, copies, iters, hit))
    });
}

fn fixed_window_vs_peers(c: &mut Criterion) {
    for (name, n) in KEY_SETS {
        let ids = identifiers(n);
        for threads in thread_counts() {
            let mut group = c.benchmark_group(format!("fixed_window_hit/{name}/{threads}_threads"));
            let item = item();
            {
                let limiter = FixedWindowRateLimiter::new(Arc::new(storage()));
                bench_one(&mut group, "limitstore", &ids, threads, &|id| {
                    limiter.hit(&item, &[id], 1).unwrap()
                });
            }
            {
                let limiter = FixedWindowRateLimiter::new(Arc::new(
                    MemoryStorage::builder()
                        .max_entries(2_000_000)
                        .clock(SystemClock::new())
                        .build(),
                ));
                bench_one(
                    &mut group,
                    "limitstore-precise-clock",
                    &ids,
                    threads,
                    &|id| limiter.hit(&item, &[id], 1).unwrap(),
                );
            }
            {
                let limiter = FixedWindowRateLimiter::new(Arc::new(
                    MemoryStorage::builder()
                        .max_entries(2_000_000)
                        .hot_leases(false)
                        .build(),
                ));
                bench_one(&mut group, "limitstore-no-leases", &ids, threads, &|id| {
                    limiter.hit(&item, &[id], 1).unwrap()
                });
            }
            {
                let limiter = FixedWindowRateLimiter::new(Arc::new(storage()) as Arc<dyn Storage>);
                bench_one(&mut group, "limitstore-dyn", &ids, threads, &|id| {
                    limiter.hit(&item, &[id], 1).unwrap()
                });
            }
            {
                let governor: DefaultKeyedRateLimiter<String> =
                    Governor::keyed(Quota::per_second(NonZeroU32::MAX));
                bench_one(&mut group, "governor", &ids, threads, &|id| {
                    governor.check_key(id).is_ok()
                });
            }
            {
                let cache: moka::sync::Cache<String, Arc<AtomicU64>> =
                    moka::sync::Cache::builder().max_capacity(2_000_000).build();
                bench_one(&mut group, "moka-counter", &ids, threads, &|id| {
                    let counter = cache.get_with_by_ref(id, || Arc::new(AtomicU64::new(0)));
                    counter.fetch_add(1, Ordering::Relaxed) < u64::MAX
                });
            }
            {
                // pingora-limits' lock-free estimator: approximate (a
                // count-min sketch, no key kept), the floor of a keyed count.
                let rate = pingora_limits::rate::Rate::new(std::time::Duration::from_secs(1));
                bench_one(&mut group, "pingora-rate", &ids, threads, &|id| {
                    rate.observe(id, 1) < isize::MAX
                });
            }
            {
                let map: DashMap<String, AtomicU64> = DashMap::new();
                bench_one(&mut group, "dashmap-counter", &ids, threads, &|id| {
                    if let Some(counter) = map.get(id) {
                        return counter.fetch_add(1, Ordering::Relaxed) < u64::MAX;
                    }
                    map.entry(id.clone())
                        .or_insert_with(|| AtomicU64::new(0))
                        .fetch_add(1, Ordering::Relaxed)
                        < u64::MAX
                });
            }
            group.finish();
        }
    }
}

fn every_strategy(c: &mut Criterion) {
    for (name, n) in &KEY_SETS[..2] {
        let (name, n) = (*name, *n);
        let ids = identifiers(n);
        for threads in thread_counts() {
            let mut group = c.benchmark_group(format!("strategy_hit/{name}/{threads}_threads"));
            let item = RateLimitItem::per_second(100).expect("valid item");
            for strategy in Strategy::ALL {
                let limiter = limiter_for(strategy, Arc::new(storage())).expect("limiter");
                bench_one(&mut group, strategy.name(), &ids, threads, &|id| {
                    limiter.hit(&item, &[id], 1).unwrap()
                });
            }
            group.finish();
        }
    }
}

fn hit_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("hit_parts");
    let item = item();
    let id = identifiers(1).remove(0);
    let key = item.key_for(&[&id]);
    group.bench_function("key_build", |b| {
        let mut buffer = String::new();
        b.iter(|| {
            buffer.clear();
            item.write_key(&[black_box(&id)], &mut buffer);
            black_box(buffer.len())
        })
    });
    group.bench_function("key_hash_xxh3_128", |b| {
        b.iter(|| xxhash_rust::xxh3::xxh3_128_with_seed(black_box(key.as_bytes()), 7))
    });
    group.bench_function("shard_read_lock", |b| {
        let lock = crossbeam_utils::sync::ShardedLock::new(0u64);
        b.iter(|| *black_box(&lock).read().expect("not poisoned"))
    });
    let memory = storage();
    group.bench_function("storage_incr_within", |b| {
        b.iter(|| memory.incr_within(black_box(&key), 1, false, 1, item.amount()))
    });
    group.bench_function("storage_incr_within_key", |b| {
        b.iter(|| memory.incr_within_key(item.key(&[black_box(&id)]), 1, false, 1, item.amount()))
    });
    let limiter = FixedWindowRateLimiter::new(Arc::new(storage()));
    group.bench_function("limitstore_hit", |b| {
        b.iter(|| limiter.hit(&item, &[black_box(&id)], 1))
    });
    // The asynchronous limiter over the same engine, polled once: the
    // memory engine answers at the first poll.
    let async_limiter = limitstore::aio::AsyncFixedWindowRateLimiter::new(Arc::new(storage()));
    group.bench_function("limitstore_async_hit", |b| {
        use limitstore::aio::AsyncRateLimiter;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        b.iter(|| {
            let ids = [black_box(id.as_str())];
            let mut hit = async_limiter.hit(&item, &ids, 1);
            match hit.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => unreachable!("the memory engine answers at once"),
            }
        })
    });
    let governor: DefaultKeyedRateLimiter<String> =
        Governor::keyed(Quota::per_second(NonZeroU32::MAX));
    group.bench_function("governor_check_key", |b| {
        b.iter(|| governor.check_key(black_box(&id)).is_ok())
    });
    group.finish();
}

/// Shards of the table rows: the engine's default for a table of up to
/// 65,536 entries on 2 hardware threads (larger tables get more shards).
const SHARDS: usize = 8;

/// The shard of a hashed key: its high word, as the engine picks it.
fn shard_of(k: u128) -> usize {
    (k >> 64) as usize % SHARDS
}

/// The engine's shard structure with an atomic counter per key, the key
/// already hashed: a `ShardedLock` over a `hashbrown` map, by the high bits.
struct LockedShards {
    shards: Vec<crossbeam_utils::sync::ShardedLock<Shard>>,
}

/// A shard of [`LockedShards`]: the key's low word is its hash, as in the engine.
type Shard = hashbrown::HashMap<u128, AtomicU64, std::hash::BuildHasherDefault<LowWord>>;

#[derive(Default)]
struct LowWord(u64);

impl std::hash::Hasher for LowWord {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

impl LockedShards {
    fn new(keys: &[u128]) -> Self {
        let shards: Vec<_> = (0..SHARDS)
            .map(|_| crossbeam_utils::sync::ShardedLock::new(Shard::default()))
            .collect();
        for &k in keys {
            let mut shard = shards[shard_of(k)].write().expect("not poisoned");
            shard.insert(k, AtomicU64::new(0));
        }
        LockedShards { shards }
    }

    #[inline]
    fn hit(&self, k: u128) -> u64 {
        let shard = self.shards[shard_of(k)].read().expect("not poisoned");
        shard
            .get(&k)
            .map_or(0, |c| c.fetch_add(1, Ordering::AcqRel))
    }
}

/// A fixed-capacity open-addressing table of the same counters: the key's
/// two words and its count in atomics, found by a linear probe that writes
/// nothing but the count (no lock word, no eviction: the floor a lock-free
/// table would reach).
struct OpenAddressing {
    slots: Box<[[AtomicU64; 3]]>,
    mask: usize,
}

impl OpenAddressing {
    fn new(keys: &[u128]) -> Self {
        let n = (keys.len() * 2).next_power_of_two();
        let table = OpenAddressing {
            slots: (0..n).map(|_| Default::default()).collect(),
            mask: n - 1,
        };
        for &k in keys {
            let mut i = k as usize & table.mask;
            while table.slots[i][0].load(Ordering::Relaxed) != 0 {
                i = (i + 1) & table.mask;
            }
            table.slots[i][0].store(k as u64, Ordering::Relaxed);
            table.slots[i][1].store((k >> 64) as u64, Ordering::Relaxed);
        }
        table
    }

    #[inline]
    fn hit(&self, k: u128) -> u64 {
        let (lo, hi) = (k as u64, (k >> 64) as u64);
        let mut i = lo as usize & self.mask;
        loop {
            let [key_lo, key_hi, count] = &self.slots[i];
            let found = key_lo.load(Ordering::Acquire);
            if found == lo && key_hi.load(Ordering::Acquire) == hi {
                return count.fetch_add(1, Ordering::AcqRel);
            }
            if found == 0 {
                return 0;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// [`OpenAddressing`] behind the engine's shard locks: what the lock adds.
struct LockedOpenAddressing {
    shards: Vec<crossbeam_utils::sync::ShardedLock<OpenAddressing>>,
}

impl LockedOpenAddressing {
    fn new(keys: &[u128]) -> Self {
        let shards = (0..SHARDS)
            .map(|s| {
                let mine: Vec<u128> = keys.iter().copied().filter(|&k| shard_of(k) == s).collect();
                crossbeam_utils::sync::ShardedLock::new(OpenAddressing::new(&mine))
            })
            .collect();
        LockedOpenAddressing { shards }
    }

    #[inline]
    fn hit(&self, k: u128) -> u64 {
        self.shards[shard_of(k)]
            .read()
            .expect("not poisoned")
            .hit(k)
    }
}

/// Concurrent maps whose reads take no lock, holding the same counters:
/// `papaya` (a lock-free table whose entries are freed once no reader's
/// guard can see them) and `scc`'s `HashIndex` (lock-free reads, entries
/// reclaimed by epochs). Each hit pins the map, as a hit of the engine
/// would.
type Papaya = papaya::HashMap<u128, AtomicU64, std::hash::BuildHasherDefault<LowWord>>;
type SccIndex = scc::HashIndex<u128, AtomicU64, std::hash::BuildHasherDefault<LowWord>>;

fn papaya_table(keys: &[u128]) -> Papaya {
    let map = Papaya::default();
    let pinned = map.pin();
    for &k in keys {
        pinned.insert(k, AtomicU64::new(0));
    }
    drop(pinned);
    map
}

fn scc_index(keys: &[u128]) -> SccIndex {
    let map = SccIndex::default();
    for &k in keys {
        let _ = map.insert_sync(k, AtomicU64::new(0));
    }
    map
}

/// What the table costs a hit, the key already hashed: the engine's shard
/// structure against an open-addressing table of atomics, bare and behind
/// the same shard locks, and against two lock-free maps, on one key and on
/// 100,000 keys in a scattered order, one thread.
fn table_probe(c: &mut Criterion) {
    for (name, n) in [("hot_key", 1), ("100k_keys", 100_000)] {
        let mut group = c.benchmark_group(format!("table_probe/{name}"));
        let keys: Vec<u128> = identifiers(n)
            .iter()
            .map(|id| xxhash_rust::xxh3::xxh3_128_with_seed(id.as_bytes(), 7))
            .collect();
        let locked = LockedShards::new(&keys);
        let open = OpenAddressing::new(&keys);
        let locked_open = LockedOpenAddressing::new(&keys);
        let papaya = papaya_table(&keys);
        let scc = scc_index(&keys);
        let mut at = 0;
        group.bench_function("sharded-lock-hashbrown", |b| {
            b.iter(|| {
                at = (at + 1) % keys.len();
                locked.hit(black_box(keys[at]))
            })
        });
        group.bench_function("open-addressing", |b| {
            b.iter(|| {
                at = (at + 1) % keys.len();
                open.hit(black_box(keys[at]))
            })
        });
        group.bench_function("sharded-lock-open-addressing", |b| {
            b.iter(|| {
                at = (at + 1) % keys.len();
                locked_open.hit(black_box(keys[at]))
            })
        });
        group.bench_function("papaya", |b| {
            b.iter(|| {
                at = (at + 1) % keys.len();
                let k = black_box(keys[at]);
                papaya
                    .pin()
                    .get(&k)
                    .map_or(0, |c| c.fetch_add(1, Ordering::AcqRel))
            })
        });
        group.bench_function("scc-hash-index", |b| {
            b.iter(|| {
                at = (at + 1) % keys.len();
                let k = black_box(keys[at]);
                scc.peek_with(&k, |_, c| c.fetch_add(1, Ordering::AcqRel))
                    .unwrap_or(0)
            })
        });
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
    targets = fixed_window_vs_peers, every_strategy, hit_parts, table_probe
}
criterion_main!(benches);
