//! The asynchronous API: the shared suite through `AsyncStorage` (natively on
//! the memory engine, and through the blocking-pool adapter), the async
//! strategies, and the `async+` URIs.
#![cfg(feature = "async")]

#[macro_use]
mod common;

use std::sync::Arc;

use common::Subject;
use limitstore::aio::{
    async_limiter_for, async_storage_from_string, AsyncFixedWindowRateLimiter, AsyncRateLimiter,
    AsyncStorage, Blocking,
};
use limitstore::{parse, ErrorKind, FakeClock, MemoryStorage, Options, Storage, Strategy};

fn memory(clock: &FakeClock) -> MemoryStorage<FakeClock> {
    MemoryStorage::builder().clock(clock.clone()).build()
}

/// The suite through the memory engine's own async implementation.
mod native {
    use super::*;

    fn subject() -> Subject {
        let clock = FakeClock::new();
        let storage: Arc<dyn AsyncStorage> = Arc::new(memory(&clock));
        common::via_async(storage, Box::new(move |d| clock.advance(d)), 0.0)
    }

    storage_suite!(subject);
}

/// The suite through `Blocking`, which runs a synchronous storage on tokio's
/// blocking pool (here polled from a runtime, so the pool is used).
mod blocking_pool {
    use super::*;

    fn subject() -> Subject {
        let clock = FakeClock::new();
        let storage: Arc<dyn AsyncStorage> = Arc::new(Blocking::new(Arc::new(memory(&clock))));
        common::via_async(storage, Box::new(move |d| clock.advance(d)), 0.0)
    }

    storage_suite!(subject);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn decide_answers_as_hit_then_stats_on_memory_blocking_and_write_behind() {
    let rt = runtime();
    let clock = FakeClock::new();
    let memory = Arc::new(memory(&clock));
    rt.block_on(common::decide::decide_answers_as_hit_then_stats(
        memory.clone(),
        "memory",
        0.0,
    ));
    let blocking: Arc<dyn AsyncStorage> = Arc::new(Blocking::new(memory));
    rt.block_on(common::decide::decide_answers_as_hit_then_stats(
        blocking, "blocking", 0.0,
    ));
    let write_behind = async_storage_from_string("writebehind+memory://", &Options::new()).unwrap();
    rt.block_on(common::decide::decide_answers_as_hit_then_stats(
        write_behind,
        "write-behind",
        0.05,
    ));
}

/// 100 tasks hit a 5/minute limit at once; each exact strategy admits 5.
#[test]
fn concurrent_tasks_admit_exactly_the_limit() {
    let rt = runtime();
    for strategy in [
        Strategy::FixedWindow,
        Strategy::FixedWindowElasticExpiry,
        Strategy::MovingWindow,
        Strategy::SlidingWindowCounter,
    ] {
        for uri in ["async+memory://", "memory://"] {
            let storage = async_storage_from_string(uri, &Options::new()).unwrap();
            let limiter: Arc<dyn AsyncRateLimiter> =
                async_limiter_for(strategy, storage).unwrap().into();
            let admitted = rt.block_on(async {
                let tasks: Vec<_> = (0..100)
                    .map(|_| {
                        let limiter = Arc::clone(&limiter);
                        tokio::spawn(async move {
                            let item = parse("5/minute").unwrap();
                            limiter.hit(&item, &["hot"], 1).await.unwrap()
                        })
                    })
                    .collect();
                let mut admitted = 0;
                for task in tasks {
                    admitted += usize::from(task.await.unwrap());
                }
                admitted
            });
            assert_eq!(admitted, 5, "{strategy} over {uri}");
        }
    }
}

/// Tasks on four worker threads hammer one key of a large limit through the
/// async fixed-window limiters: the memory engine serves it from hot-key
/// leases and still admits exactly the limit, counting every hit.
#[test]
fn hot_key_tasks_admit_exactly_the_limit() {
    const TASKS: usize = 4;
    const HITS: usize = 100_000;
    const LIMIT: u64 = 150_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TASKS)
        .build()
        .unwrap();
    for strategy in [Strategy::FixedWindow, Strategy::FixedWindowElasticExpiry] {
        let storage = Arc::new(MemoryStorage::new());
        let limiter: Arc<dyn AsyncRateLimiter> =
            async_limiter_for(strategy, storage.clone()).unwrap().into();
        let item = parse(&format!("{LIMIT}/minute")).unwrap();
        let admitted: usize = rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (limiter, item) = (Arc::clone(&limiter), item.clone());
                    tokio::spawn(async move {
                        let mut admitted = 0;
                        for _ in 0..HITS {
                            admitted += usize::from(limiter.hit(&item, &["hot"], 1).await.unwrap());
                        }
                        admitted
                    })
                })
                .collect();
            let mut admitted = 0;
            for task in tasks {
                admitted += task.await.unwrap();
            }
            admitted
        });
        assert_eq!(admitted as u64, LIMIT, "{strategy}");
        let key = item.key_for(&["hot"]);
        assert_eq!(
            Storage::get(&*storage, &key).unwrap(),
            (TASKS * HITS) as u64
        );
    }
}

#[test]
fn strategies_report_like_their_sync_twins() {
    let rt = runtime();
    let clock = FakeClock::new();
    let storage = Arc::new(memory(&clock));
    let item = parse("3/minute").unwrap();
    for strategy in Strategy::ALL {
        let sync = limitstore::limiter_for(strategy, storage.clone() as Arc<dyn Storage>).unwrap();
        let limiter =
            async_limiter_for(strategy, storage.clone() as Arc<dyn AsyncStorage>).unwrap();
        rt.block_on(async {
            let id = ["same", strategy.name()];
            assert!(limiter.test(&item, &id, 3).await.unwrap());
            assert!(!limiter.test(&item, &id, 4).await.unwrap());
            assert!(limiter.hit(&item, &id, 2).await.unwrap());
            // Both APIs see one state.
            assert_eq!(
                limiter.get_window_stats(&item, &id).await.unwrap(),
                sync.get_window_stats(&item, &id).unwrap()
            );
            assert_eq!(
                limiter
                    .get_window_stats(&item, &id)
                    .await
                    .unwrap()
                    .remaining,
                1
            );
            assert!(!limiter.test(&item, &id, 2).await.unwrap());
            assert!(limiter.hit(&item, &id, 1).await.unwrap());
            assert!(!limiter.hit(&item, &id, 1).await.unwrap());
            let e = limiter.hit(&item, &id, 0).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(!limiter.hit(&item, &id, 4).await.unwrap());
            limiter.clear(&item, &id).await.unwrap();
            assert!(limiter.hit(&item, &id, 3).await.unwrap());
        });
        clock.advance(std::time::Duration::from_secs(120));
    }
}

/// A storage with fixed windows only.
#[derive(Debug)]
struct FixedOnly(MemoryStorage);

impl Storage for FixedOnly {
    fn incr(&self, key: &str, expiry: u64, elastic: bool, amount: u64) -> limitstore::Result<u64> {
        Storage::incr(&self.0, key, expiry, elastic, amount)
    }
    fn get(&self, key: &str) -> limitstore::Result<u64> {
        Storage::get(&self.0, key)
    }
    fn get_expiry(&self, key: &str) -> limitstore::Result<f64> {
        Storage::get_expiry(&self.0, key)
    }
    fn check(&self) -> bool {
        true
    }
    fn reset(&self) -> limitstore::Result<Option<u64>> {
        Storage::reset(&self.0)
    }
    fn clear(&self, key: &str) -> limitstore::Result<()> {
        Storage::clear(&self.0, key)
    }
}

#[test]
fn missing_capabilities_fail_at_construction() {
    let storage: Arc<dyn AsyncStorage> =
        Arc::new(Blocking::new(Arc::new(FixedOnly(MemoryStorage::new()))));
    assert!(storage.moving_window().is_none());
    assert!(storage.sliding_window().is_none());
    for strategy in [Strategy::MovingWindow, Strategy::SlidingWindowCounter] {
        let e = async_limiter_for(strategy, Arc::clone(&storage))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    }
    let fixed = AsyncFixedWindowRateLimiter::new(storage);
    let item = parse("1/second").unwrap();
    let rt = runtime();
    assert!(rt.block_on(fixed.hit(&item, &[], 1)).unwrap());
    assert!(!rt.block_on(fixed.hit(&item, &[], 1)).unwrap());
}

#[test]
fn uris() {
    for uri in [
        "async+memory://",
        "async+writebehind+memory://?sync_interval=0",
    ] {
        let s = async_storage_from_string(uri, &Options::new()).unwrap();
        let rt = runtime();
        assert!(rt.block_on(s.check()), "{uri}");
        assert_eq!(rt.block_on(s.incr("k", 10, false, 2)).unwrap(), 2, "{uri}");
    }
    for uri in [
        "async+nope://",
        "async+memory://?max_entries=0",
        "async+memory://?bogus=1",
    ] {
        let e = async_storage_from_string(uri, &Options::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{uri}: {e}");
    }
    // The synchronous factory points async schemes to the async one.
    let e = limitstore::storage_from_string("async+memory://", &Options::new()).unwrap_err();
    assert!(e.message().contains("async_storage_from_string"), "{e}");
}

/// Async limiters hand storages their key as parts; hits through them and
/// calls with the key string reach one state, at key lengths around the
/// memory engine's 128-byte gather, on every in-place storage and through
/// the blocking pool; `decide` answers the counter `get` and `get_expiry`
/// read.
#[test]
fn async_limiters_and_key_strings_reach_the_same_state() {
    let rt = runtime();
    let clock = FakeClock::new();
    let memory = Arc::new(memory(&clock));
    let storages: [(&str, Arc<dyn AsyncStorage>); 3] = [
        ("memory", memory.clone()),
        ("blocking", Arc::new(Blocking::new(memory.clone()))),
        (
            "write-behind",
            async_storage_from_string("writebehind+memory://", &Options::new()).unwrap(),
        ),
    ];
    // "n1f/" + id + "/5/1/minute": 15 bytes around the identifier.
    let sized: Vec<String> = [112, 113, 114, 5000].map(|n| "x".repeat(n)).to_vec();
    let mut identities: Vec<Vec<&str>> = vec![vec!["user"], vec!["a", "b"], vec![]];
    identities.extend(sized.iter().map(|id| vec![id.as_str()]));
    for (ns, (name, storage)) in ["n1", "n2", "n3"].into_iter().zip(storages) {
        // One namespace per storage and strategy: no two share a key.
        let items =
            ["f", "m", "s"].map(|s| parse("5/minute").unwrap().with_namespace(ns.to_owned() + s));
        let fixed = async_limiter_for(Strategy::FixedWindow, storage.clone()).unwrap();
        let moving = async_limiter_for(Strategy::MovingWindow, storage.clone());
        let sliding = async_limiter_for(Strategy::SlidingWindowCounter, storage.clone());
        // A capability the storage lacks is refused when the limiter is built.
        for (limiter, has) in [
            (&moving, storage.moving_window().is_some()),
            (&sliding, storage.sliding_window().is_some()),
        ] {
            match limiter {
                Ok(_) => assert!(has, "{name}"),
                Err(e) => assert!(!has && e.kind() == ErrorKind::Configuration, "{name}"),
            }
        }
        rt.block_on(async {
            for ids in &identities {
                let (item, key) = (&items[0], items[0].key_for(ids));
                let at = format!("{name}, {} bytes", key.len());
                // Fixed window: limiter, string, decide.
                assert!(fixed.hit(item, ids, 2).await.unwrap(), "{at}");
                assert_eq!(storage.get(&key).await.unwrap(), 2, "{at}");
                assert_eq!(storage.incr(&key, 60, false, 1).await.unwrap(), 3);
                let decision = fixed.decide(item, ids, 1).await.unwrap();
                assert!(decision.admitted, "{at}");
                assert_eq!(decision.remaining, 1, "{at}");
                let (expires_at, count) = (
                    storage.get_expiry(&key).await.unwrap(),
                    storage.get(&key).await.unwrap(),
                );
                assert_eq!(count, 4, "{at}");
                assert!((decision.reset_time - expires_at).abs() < 1.0, "{at}");
                assert!(fixed.hit(item, ids, 1).await.unwrap());
                assert!(!fixed.decide(item, ids, 2).await.unwrap().admitted);
                assert!(!fixed.hit(item, ids, 1).await.unwrap(), "{at}");
                if let Ok(moving) = &moving {
                    // Moving window: string, limiter, decide.
                    let (item, key) = (&items[1], items[1].key_for(ids));
                    let windows = storage.moving_window().unwrap();
                    assert!(windows.acquire_entry(&key, 5, 60, 3).await.unwrap());
                    assert!(moving.hit(item, ids, 1).await.unwrap(), "{at}");
                    assert_eq!(moving.decide(item, ids, 1).await.unwrap().remaining, 0);
                    assert!(!moving.hit(item, ids, 1).await.unwrap(), "{at}");
                    let window = windows.get_moving_window(&key, 5, 60).await.unwrap();
                    assert_eq!(window.count, 5, "{at}");
                }
                if let Ok(sliding) = &sliding {
                    // Sliding window: limiter, string, decide.
                    let (item, key) = (&items[2], items[2].key_for(ids));
                    let counters = storage.sliding_window().unwrap();
                    assert!(sliding.hit(item, ids, 3).await.unwrap(), "{at}");
                    let window = counters.get_sliding_window(&key, 60).await.unwrap();
                    assert_eq!(window.current_count, 3, "{at}");
                    assert!(counters
                        .acquire_sliding_window_entry(&key, 5, 60, 1)
                        .await
                        .unwrap());
                    assert_eq!(sliding.decide(item, ids, 1).await.unwrap().remaining, 0);
                    assert!(!sliding.hit(item, ids, 1).await.unwrap(), "{at}");
                }
            }
            // A key past the longest accepted is refused the same way both ways.
            let (item, huge) = (&items[0], "x".repeat(limitstore::MAX_KEY_LEN));
            let e = fixed.hit(item, &[&huge], 1).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{name}: {e}");
            let e = fixed.decide(item, &[&huge], 1).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{name}: {e}");
            let e = storage
                .incr(&item.key_for(&[&huge]), 60, false, 1)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{name}: {e}");
        });
    }
}

/// A synchronous limiter over `Bridged` hands the key's parts on to the
/// asynchronous storage: the same counter as the key string.
#[test]
fn bridged_limiters_reach_the_key_strings_state() {
    use limitstore::aio::Bridged;
    use limitstore::{limiter_for, MovingWindowSupport, SlidingWindowCounterSupport};
    let memory = Arc::new(MemoryStorage::new());
    let bridged: Arc<dyn Storage> = Arc::new(Bridged::new(memory.clone()));
    let item = parse("4/minute").unwrap();
    let key = item.key_for(&["b"]);
    let fixed = limiter_for(Strategy::FixedWindow, bridged.clone()).unwrap();
    assert!(fixed.hit(&item, &["b"], 3).unwrap());
    assert_eq!(Storage::get(&*memory, &key).unwrap(), 3);
    let moving = limiter_for(Strategy::MovingWindow, bridged.clone()).unwrap();
    assert!(moving.hit(&item, &["b"], 4).unwrap());
    assert!(!MovingWindowSupport::acquire_entry(&*memory, &key, 4, 60, 1).unwrap());
    let sliding = limiter_for(Strategy::SlidingWindowCounter, bridged).unwrap();
    assert!(sliding.hit(&item, &["b"], 1).unwrap());
    let window = SlidingWindowCounterSupport::get_sliding_window(&*memory, &key, 60).unwrap();
    assert_eq!(window.current_count, 1);
}
