//! The etcd storage against real `etcd` processes started here: the shared
//! suite through the synchronous and the asynchronous API, the key and value
//! layout of Python `limits`, leases that really remove keys, contention
//! between storages, configuration errors, and a killed and a hung server.
#![cfg(feature = "etcd")]

#[macro_use]
mod common;
#[macro_use]
mod servers;

use std::sync::{Arc, Barrier, Mutex, Weak};
use std::time::{Duration, Instant};

use common::Subject;
use limitstore::aio::{async_limiter_for, async_storage_from_string, AsyncStorage};
use limitstore::{
    limiter_for, parse, storage_from_string, ErrorKind, EtcdStorage, Options, Storage, Strategy,
};
use servers::etcd::Etcd;
use servers::unique_prefix;

/// One etcd shared by the tests that run at the same time: each test holds it
/// through its subject and keeps to its own key prefix; the last holder's
/// drop stops it, so no server outlives the test binary.
fn shared_etcd() -> Arc<Etcd> {
    static SHARED: Mutex<Weak<Etcd>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(etcd) = slot.upgrade() {
        return etcd;
    }
    let etcd = Arc::new(Etcd::start());
    *slot = Arc::downgrade(&etcd);
    etcd
}

fn keep_alive(etcd: Arc<Etcd>) -> Box<dyn Fn(Duration) + Send + Sync> {
    Box::new(move |d| {
        let _alive = &etcd;
        std::thread::sleep(d)
    })
}

fn sync_subject() -> Subject {
    let etcd = shared_etcd();
    let uri = format!("{}?key_prefix={}", etcd.url(), unique_prefix("etcd"));
    Subject {
        storage: storage_from_string(&uri, &Options::new()).unwrap(),
        advance: keep_alive(etcd),
        slack: 0.5,
        lacks: &[],
    }
}

fn async_subject() -> Subject {
    let etcd = shared_etcd();
    let uri = format!(
        "async+etcd://127.0.0.1:{}?key_prefix={}",
        etcd.port,
        unique_prefix("etcd-async")
    );
    let storage = async_storage_from_string(&uri, &Options::new()).unwrap();
    common::via_async(storage, keep_alive(etcd), 0.5)
}

/// The shared suite through the synchronous API (`etcd://`, bridged).
mod sync_api {
    use super::*;
    // etcd keeps fixed windows only.
    storage_suite!({
        require_or_skip!("etcd");
        sync_subject
    }; lacks: [MovingWindow, SlidingWindowCounter]; skip: []);
}

/// The shared suite through the asynchronous API (`async+etcd://`).
mod async_api {
    use super::*;
    // etcd keeps fixed windows only.
    storage_suite!({
        require_or_skip!("etcd");
        async_subject
    }; lacks: [MovingWindow, SlidingWindowCounter]; skip: []);
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A plain etcd client on a runtime of its own, to look at what the storage wrote.
struct Raw {
    rt: tokio::runtime::Runtime,
    client: etcd_client::Client,
}

impl Raw {
    fn new(etcd: &Etcd) -> Raw {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(etcd_client::Client::connect([etcd.endpoint()], None))
            .unwrap();
        Raw { rt, client }
    }

    fn get(&self, key: &str) -> Option<etcd_client::KeyValue> {
        let mut c = self.client.clone();
        self.rt
            .block_on(c.get(key, None))
            .unwrap()
            .take_kvs()
            .into_iter()
            .next()
    }

    /// The remaining and granted TTL of a lease.
    fn ttl(&self, lease: i64) -> (i64, i64) {
        let mut c = self.client.clone();
        let r = self.rt.block_on(c.lease_time_to_live(lease, None)).unwrap();
        (r.ttl(), r.granted_ttl())
    }

    /// Writes `value` at `key` with a fresh lease of `ttl` seconds, as `limits` does.
    fn put_with_lease(&self, key: &str, value: &str, ttl: i64) -> i64 {
        let mut c = self.client.clone();
        self.rt.block_on(async {
            let lease = c.lease_grant(ttl, None).await.unwrap().id();
            c.put(
                key,
                value,
                Some(etcd_client::PutOptions::new().with_lease(lease)),
            )
            .await
            .unwrap();
            lease
        })
    }
}

fn value_of(kv: &etcd_client::KeyValue) -> (u64, f64) {
    let (count, end) = kv.value_str().unwrap().split_once(':').unwrap();
    (count.parse().unwrap(), end.parse().unwrap())
}

#[test]
fn key_and_value_layout_is_that_of_python_limits() {
    require_or_skip!("etcd");
    let etcd = shared_etcd();
    let raw = Raw::new(&etcd);
    // The default prefix, `limits`, with a key no other test uses.
    let st = storage_from_string(&etcd.url(), &Options::new()).unwrap();
    let key = format!("{}/1/minute", unique_prefix("LIMITER/layout"));
    let before = unix_now();
    assert_eq!(st.incr(&key, 60, false, 3).unwrap(), 3);
    let kv = raw
        .get(&format!("limits/{key}"))
        .expect("the key limits/<key>");
    let text = kv.value_str().unwrap().to_owned();
    let (count, end) = value_of(&kv);
    assert_eq!(count, 3, "{text}");
    assert!(
        end >= before + 60.0 && end <= unix_now() + 60.0,
        "{text} vs {before}"
    );
    assert!(text.contains('.'), "the end is written as a float: {text}");
    assert_eq!(st.get_expiry(&key).unwrap(), end);
    // The key carries a lease of the window's length.
    assert_ne!(kv.lease(), 0);
    let (ttl, granted) = raw.ttl(kv.lease());
    assert_eq!(granted, 60);
    assert!((55..=60).contains(&ttl), "{ttl}");
    // A second increment keeps the end and the lease.
    assert_eq!(st.incr(&key, 60, false, 2).unwrap(), 5);
    let kv2 = raw.get(&format!("limits/{key}")).unwrap();
    assert_eq!(value_of(&kv2), (5, end));
    assert_eq!(kv2.lease(), kv.lease());
    // Elastic expiry moves the end and puts the key on a new lease.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(st.incr(&key, 60, true, 1).unwrap(), 6);
    let kv3 = raw.get(&format!("limits/{key}")).unwrap();
    let (count, end3) = value_of(&kv3);
    assert_eq!(count, 6);
    assert!(end3 > end, "{end3} vs {end}");
    assert_ne!(kv3.lease(), kv.lease());
    st.clear(&key).unwrap();
    assert!(raw.get(&format!("limits/{key}")).is_none());
}

#[test]
fn counters_written_by_python_limits_are_shared() {
    require_or_skip!("etcd");
    let etcd = shared_etcd();
    let raw = Raw::new(&etcd);
    let prefix = unique_prefix("py");
    // What limits' EtcdStorage.incr writes: `f"{amount}:{window_end}"` on a lease.
    let end = unix_now() + 60.0;
    raw.put_with_lease(&format!("{prefix}/shared"), &format!("7:{end}"), 60);
    // A window that has ended but whose key is still there counts as empty.
    raw.put_with_lease(
        &format!("{prefix}/ended"),
        &format!("9:{}", unix_now() - 1.0),
        60,
    );
    let st = storage_from_string(
        &format!("{}?key_prefix={prefix}", etcd.url()),
        &Options::new(),
    )
    .unwrap();
    assert_eq!(st.get("shared").unwrap(), 7);
    assert!((st.get_expiry("shared").unwrap() - end).abs() < 1e-6);
    assert_eq!(st.incr("shared", 60, false, 1).unwrap(), 8);
    let (count, stored_end) = value_of(&raw.get(&format!("{prefix}/shared")).unwrap());
    assert_eq!(count, 8);
    assert!((stored_end - end).abs() < 1e-6);
    assert_eq!(st.get("ended").unwrap(), 0);
    assert_eq!(st.get_expiry("ended").unwrap(), 0.0);
    assert_eq!(st.incr("ended", 60, false, 1).unwrap(), 1);
    // A value that is not `<count>:<window_end>` is a storage error, not a panic.
    raw.put_with_lease(&format!("{prefix}/garbage"), "many:soon", 60);
    assert_eq!(st.get("garbage").unwrap_err().kind(), ErrorKind::Storage);
    assert_eq!(
        st.incr("garbage", 60, false, 1).unwrap_err().kind(),
        ErrorKind::Storage
    );
    // reset() deletes everything under `{prefix}/` and says how much.
    assert_eq!(st.reset().unwrap(), Some(3));
    assert!(raw.get(&format!("{prefix}/shared")).is_none());
}

#[test]
fn lease_expiry_removes_the_key() {
    require_or_skip!("etcd");
    let etcd = shared_etcd();
    let raw = Raw::new(&etcd);
    let prefix = unique_prefix("lease");
    let st = EtcdStorage::new(&format!("{}?key_prefix={prefix}", etcd.url())).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(st.incr("k", 1, false, 1)).unwrap(), 1);
    let start = Instant::now();
    let key = format!("{prefix}/k");
    assert!(raw.get(&key).is_some());
    // The window is over after 1 s, whatever the server does with the key.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(rt.block_on(st.get("k")).unwrap(), 0);
    // etcd deletes the key when its lease runs out (shortest lease: 1 s with
    // the harness's heartbeat; leases are checked every 500 ms).
    servers::wait_until(
        "the lease to delete the key",
        Duration::from_secs(5),
        || raw.get(&key).is_none(),
    );
    eprintln!(
        "lease of 1 s: key removed by etcd {:?} after the increment",
        start.elapsed()
    );
    // The next increment starts a new window on a new lease.
    assert_eq!(rt.block_on(st.incr("k", 1, false, 2)).unwrap(), 2);
}

#[test]
fn storages_in_contention_count_exactly() {
    require_or_skip!("etcd");
    let etcd = shared_etcd();
    let prefix = unique_prefix("contention");
    // Eight storages (eight clients, as eight processes would have), 100
    // threads, every thread's increment fighting the other storages' ones.
    let run = |max_retries: u32| {
        let storages: Vec<Arc<dyn Storage>> = (0..8)
            .map(|_| {
                storage_from_string(
                    &format!(
                        "{}?key_prefix={prefix}&max_retries={max_retries}",
                        etcd.url()
                    ),
                    &Options::new(),
                )
                .unwrap()
            })
            .collect();
        let key = format!("k{max_retries}");
        let barrier = Barrier::new(100);
        let results: Vec<limitstore::Result<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..100)
                .map(|i| {
                    let st = &storages[i % storages.len()];
                    let (barrier, key) = (&barrier, &key);
                    scope.spawn(move || {
                        barrier.wait();
                        st.incr(key, 60, false, 1)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok: Vec<u64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::ConcurrentUpdate, "{e}");
            }
        }
        // Every accepted increment counted once, each with its own count;
        // every refused one counted nothing.
        let mut sorted = ok.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=ok.len() as u64).collect::<Vec<_>>());
        assert_eq!(storages[0].get(&key).unwrap(), ok.len() as u64);
        ok.len()
    };
    assert_eq!(run(limitstore::etcd::DEFAULT_MAX_RETRIES), 100);
    let with_one_attempt = run(1);
    eprintln!("max_retries=1: {with_one_attempt} of 100 increments accepted");
    // Of increments that start on the same revision, exactly one wins.
    assert!(with_one_attempt >= 1);
}

#[test]
fn bad_uris_and_options_are_configuration_errors() {
    for uri in [
        "etcd://",
        "etcd://host/path",
        "etcd://user:secret@host",
        "etcd://host?bogus=1",
        "etcd://host?max_retries=0",
        "etcd://host?max_retries=lots",
        "etcd://host?timeout=-1",
        "etcd://host?request_timeout=1&timeout=2",
        "etcd://host?connect_timeout=0",
        "etcd://host?key_prefix=",
        "etcd://host:99999",
        "etcd://host:x",
    ] {
        let e = storage_from_string(uri, &Options::new()).unwrap_err();
        assert!(e.is_configuration(), "{uri}: {e}");
        let e = async_storage_from_string(&format!("async+{uri}"), &Options::new()).unwrap_err();
        assert!(e.is_configuration(), "async+{uri}: {e}");
    }
    let e = storage_from_string("etcd://localhost", &Options::new().with("max_retries", 1.5))
        .unwrap_err();
    assert!(e.is_configuration(), "{e}");
    // Construction does not connect: a port nobody listens on builds.
    assert!(storage_from_string("etcd://127.0.0.1:1,127.0.0.1:2", &Options::new()).is_ok());
}

#[test]
fn moving_and_sliding_windows_are_refused_as_in_limits() {
    let st = storage_from_string("etcd://127.0.0.1:1", &Options::new()).unwrap();
    assert!(st.moving_window().is_none() && st.sliding_window().is_none());
    for strategy in [Strategy::MovingWindow, Strategy::SlidingWindowCounter] {
        let e = limiter_for(strategy, st.clone()).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{strategy:?}");
    }
    assert!(limiter_for(Strategy::FixedWindow, st).is_ok());
    let ast = async_storage_from_string("async+etcd://127.0.0.1:1", &Options::new()).unwrap();
    assert!(ast.moving_window().is_none() && ast.sliding_window().is_none());
    for strategy in [Strategy::MovingWindow, Strategy::SlidingWindowCounter] {
        let e = async_limiter_for(strategy, ast.clone()).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{strategy:?}");
    }
    assert!(async_limiter_for(Strategy::FixedWindowElasticExpiry, ast).is_ok());
}

/// Runs `f`, asserts it failed with a storage error, and returns how long it took.
fn timed_failure<T: std::fmt::Debug>(f: impl FnOnce() -> limitstore::Result<T>) -> Duration {
    let start = Instant::now();
    let e = f().expect_err("expected a storage error");
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    start.elapsed()
}

#[test]
fn a_killed_server_is_a_storage_error_within_the_timeout() {
    require_or_skip!("etcd");
    let mut etcd = Etcd::start();
    let st = storage_from_string(
        &format!("{}?request_timeout=1&connect_timeout=0.5", etcd.url()),
        &Options::new(),
    )
    .unwrap();
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    etcd.kill();
    let took = [
        timed_failure(|| st.incr("k", 60, false, 1)),
        timed_failure(|| st.get("k")),
        timed_failure(|| st.reset()),
    ];
    let start = Instant::now();
    assert!(!st.check());
    let check = start.elapsed();
    eprintln!("killed server: incr/get/reset failed after {took:?}, check() false after {check:?}");
    for t in took.iter().chain([&check]) {
        assert!(*t < Duration::from_millis(2500), "{t:?}");
    }
    // Without a server at all (nothing ever listened), the same.
    let nobody =
        storage_from_string("etcd://127.0.0.1:1?request_timeout=0.5", &Options::new()).unwrap();
    let t = timed_failure(|| nobody.incr("k", 60, false, 1));
    assert!(t < Duration::from_secs(2), "{t:?}");
    assert!(!nobody.check());
    // The data survives a restart, and the storage reconnects by itself.
    etcd.restart();
    servers::wait_until("the storage to reconnect", Duration::from_secs(10), || {
        st.check()
    });
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 2);
}

#[test]
fn a_hung_server_is_a_storage_error_within_the_timeout() {
    require_or_skip!("etcd");
    let etcd = Etcd::start();
    let st = EtcdStorage::new(&format!("{}?request_timeout=0.5", etcd.url())).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(st.incr("k", 60, false, 1)).unwrap(), 1);
    etcd.signal("STOP");
    let start = Instant::now();
    let e = rt.block_on(st.incr("k", 60, false, 1)).unwrap_err();
    let incr = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert!(e.is_timeout() && e.is_retryable(), "{e:#}");
    let start = Instant::now();
    assert!(!rt.block_on(st.check()));
    let check = start.elapsed();
    etcd.signal("CONT");
    eprintln!("hung server: incr failed after {incr:?}, check() false after {check:?}");
    assert!(incr < Duration::from_millis(1500), "{incr:?}");
    assert!(check < Duration::from_millis(1500), "{check:?}");
    assert!(rt.block_on(st.check()));
    let n = rt.block_on(st.get("k")).unwrap();
    assert!(n == 1 || n == 2, "{n}");
}

#[test]
fn works_from_any_runtime_and_no_runtime() {
    require_or_skip!("etcd");
    let etcd = shared_etcd();
    let st = EtcdStorage::new(&format!(
        "{}?key_prefix={}",
        etcd.url(),
        unique_prefix("rt")
    ))
    .unwrap();
    // A current-thread runtime without timers or I/O: the calls run on the
    // crate's runtime, where the client lives.
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(bare.block_on(st.incr("k", 60, false, 1)).unwrap(), 1);
    // Dropping a call before it completes is fine.
    drop(st.incr("k", 60, false, 1));
    // The synchronous API from inside a runtime.
    let sync: Arc<dyn Storage> = Arc::new(limitstore::aio::Bridged::new(Arc::new(st.clone())));
    let n = bare
        .block_on(async { sync.incr("k", 60, false, 1) })
        .unwrap();
    assert!(n == 2 || n == 3, "{n}");
    // A rate limiter on top.
    let limiter = limiter_for(Strategy::FixedWindow, sync).unwrap();
    let item = parse("2/minute").unwrap();
    assert!(limiter.hit(&item, &["u"], 2).unwrap());
    assert!(!limiter.hit(&item, &["u"], 1).unwrap());
}

/// The etcd storage as the remote of write-behind nodes.
mod write_behind_remote {
    use super::*;
    use limitstore::write_behind::{Report, SyncTarget};

    fn remote(etcd: &Etcd, prefix: &str) -> Arc<EtcdStorage> {
        Arc::new(EtcdStorage::new(&format!("{}?key_prefix={prefix}", etcd.url())).unwrap())
    }

    fn report<'a>(key: &'a str, window: u64, node: &'a str, total: u64) -> Report<'a> {
        Report {
            key,
            window,
            expiry: 24 * 3600,
            node,
            total,
        }
    }

    #[test]
    fn batches_answer_per_key_and_repeat_harmlessly() {
        require_or_skip!("etcd");
        let etcd = shared_etcd();
        let remote = remote(&etcd, &unique_prefix("wb-batch"));
        common::remote::batches_answer_per_key_and_repeat_harmlessly(&*remote, "etcd");
    }

    #[test]
    fn several_writers_total_exactly() {
        require_or_skip!("etcd");
        let etcd = shared_etcd();
        let remote = remote(&etcd, &unique_prefix("wb-writers"));
        common::remote::several_writers_total_exactly(remote.clone(), "etcd");
        common::remote::budget_shares(remote, "etcd");
    }

    /// A server of its own stopped (`SIGSTOP`) under a node, then let go on.
    #[test]
    fn a_stalled_server_holds_up_no_hit_and_loses_none() {
        require_or_skip!("etcd");
        let etcd = Etcd::start();
        let uri = format!("{}?request_timeout=0.3&connect_timeout=0.3", etcd.url());
        common::remote::a_stalled_remote_holds_up_no_hit_and_loses_none(
            Arc::new(EtcdStorage::new(&uri).unwrap()),
            "etcd",
            &mut || etcd.signal("STOP"),
            &mut || etcd.signal("CONT"),
        );
    }

    /// Everything under the node's prefix wiped by another client (etcd
    /// keeps its data across restarts, so a wipe is how it forgets).
    #[test]
    fn a_remote_that_forgot_is_made_whole() {
        require_or_skip!("etcd");
        let etcd = shared_etcd();
        let prefix = unique_prefix("wb-forgot");
        let other = remote(&etcd, &prefix);
        common::remote::a_remote_that_forgot_is_made_whole(
            remote(&etcd, &prefix),
            "etcd",
            &mut || {
                SyncTarget::reset(&*other).unwrap();
            },
        );
    }

    /// Batches larger than one transaction, a slot repeated in a batch, keys
    /// with `/`, and the slots' layout: padded values on a lease that ends a
    /// window after the window.
    #[test]
    fn large_batches_repeats_and_layout() {
        require_or_skip!("etcd");
        let etcd = shared_etcd();
        let prefix = unique_prefix("wb-layout");
        let remote = remote(&etcd, &prefix);
        let window = (unix_now() / (24.0 * 3600.0)) as u64;
        let keys: Vec<String> = (0..150).map(|i| format!("k{i}")).collect();
        let mut batch: Vec<Report<'_>> = keys.iter().map(|k| report(k, window, "a", 2)).collect();
        // A stale report of a slot already in the batch changes nothing.
        batch.push(report(&keys[0], window, "a", 1));
        batch.push(report(&keys[0], window, "b", 5));
        let got = remote.sync(&batch).unwrap();
        assert_eq!(got.len(), 152);
        assert!(got[..150].iter().skip(1).all(|&t| t == 2), "{got:?}");
        assert_eq!(got[150], 2);
        assert_eq!(got[151], 7);
        // A transaction filled to the limit around a nested put.
        let mut batch = vec![report("full", window, "a", 1)];
        batch.extend(keys[1..127].iter().map(|k| report(k, window, "r", 0)));
        let got = remote.sync(&batch).unwrap();
        assert_eq!(got[0], 1);
        assert!(got[1..].iter().all(|&t| t == 2));
        // Key `x` and key `x/5` stay apart: clearing one keeps the other.
        let got = remote
            .sync(&[report("x", window, "a", 1), report("x/5", window, "a", 4)])
            .unwrap();
        assert_eq!(got, vec![1, 4]);
        assert_eq!(
            remote.sync(&[report("x", window, "r", 0)]).unwrap(),
            vec![1]
        );

        let raw = Raw::new(&etcd);
        let kv = raw
            .get(&format!("{prefix}/wb/k0/{window}/b"))
            .expect("slot of b");
        assert_eq!(kv.value_str().unwrap(), "00000000000000000005");
        let (ttl, _) = raw.ttl(kv.lease());
        let end = ((window + 2) * 24 * 3600) as f64;
        assert!(
            (ttl as f64 - (end - unix_now())).abs() < 5.0,
            "lease ttl {ttl}"
        );
        assert!(raw.get(&format!("{prefix}/wb/x%2F5/{window}/a")).is_some());

        // Past their end, a window's slots are only read.
        assert_eq!(remote.sync(&[report("old", 3, "a", 9)]).unwrap(), vec![0]);
        assert!(raw.get(&format!("{prefix}/wb/old/3/a")).is_none());

        SyncTarget::clear(&*remote, "x").unwrap();
        assert_eq!(
            remote
                .sync(&[report("x", window, "r", 0), report("x/5", window, "r", 0)])
                .unwrap(),
            vec![0, 4]
        );
        assert!(SyncTarget::check(&*remote));
        assert!(SyncTarget::reset(&*remote).unwrap().unwrap() >= 150);
        assert_eq!(
            remote.sync(&[report("k1", window, "r", 0)]).unwrap(),
            vec![0]
        );
    }

    /// A cached lease that the server no longer has is replaced: the sync
    /// is sent again on a new lease.
    #[test]
    fn a_lost_lease_is_replaced() {
        require_or_skip!("etcd");
        let etcd = shared_etcd();
        let prefix = unique_prefix("wb-lease");
        let remote = remote(&etcd, &prefix);
        let window = (unix_now() / (24.0 * 3600.0)) as u64;
        assert_eq!(
            remote.sync(&[report("k", window, "a", 2)]).unwrap(),
            vec![2]
        );
        let raw = Raw::new(&etcd);
        let lease = raw
            .get(&format!("{prefix}/wb/k/{window}/a"))
            .unwrap()
            .lease();
        let mut c = raw.client.clone();
        raw.rt.block_on(c.lease_revoke(lease)).unwrap();
        // Revoking deleted the slot; the node's next report restores it.
        assert_eq!(
            remote.sync(&[report("k", window, "a", 3)]).unwrap(),
            vec![3]
        );
        let kv = raw.get(&format!("{prefix}/wb/k/{window}/a")).unwrap();
        assert_ne!(kv.lease(), lease);
    }

    /// A down server is an error within the request timeout, not a hang.
    #[test]
    fn a_down_server_is_an_error() {
        let remote =
            EtcdStorage::new("etcd://127.0.0.1:1?request_timeout=0.5&connect_timeout=0.5").unwrap();
        let start = Instant::now();
        let e = remote.sync(&[report("k", 1, "a", 1)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(!SyncTarget::check(&remote));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    /// `writebehind+etcd://`: write-through nodes see each other's hits.
    #[test]
    fn writebehind_etcd_uri() {
        require_or_skip!("etcd");
        let etcd = shared_etcd();
        let prefix = unique_prefix("wb-uri");
        common::remote::write_through_nodes_share_hits(
            |id| {
                format!(
                    "writebehind+{}?sync_interval=0&node_id={id}&key_prefix={prefix}",
                    etcd.url()
                )
            },
            &format!("writebehind+{}?colour=blue", etcd.url()),
        );
    }
}
