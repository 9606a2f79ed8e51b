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
