//! The native asynchronous Redis storages (`async+redis://` and friends)
//! against real `redis-server` / Cluster / Sentinel processes started here:
//! the shared behavioural suite through the async API on TCP, a unix socket,
//! a Cluster and Sentinel; concurrency on one runtime; a killed and a hung
//! server; calls from a user's own runtimes; TLS; a Sentinel failover.
#![cfg(all(feature = "redis", feature = "async"))]

#[macro_use]
mod common;
#[macro_use]
mod servers;

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::Subject;
use limitstore::aio::{
    async_limiter_for, async_storage_from_string, AsyncRateLimiter, AsyncStorage,
};
use limitstore::{
    parse, AsyncRedisClusterStorage, AsyncRedisSentinelStorage, AsyncRedisStorage, ErrorKind,
    Options, RedisStorage, Storage, Strategy,
};
use servers::{wait_until, Cluster, Config, Server};

const SERVICE: &str = "mymaster";

/// The asynchronous storage of `uri`, checked to be a native one (not the
/// blocking storage on tokio's blocking pool).
fn storage(uri: &str) -> Arc<dyn AsyncStorage> {
    let storage = async_storage_from_string(uri, &Options::new()).unwrap();
    assert!(
        format!("{storage:?}").starts_with("AsyncRedis"),
        "{uri}: {storage:?}"
    );
    storage
}

/// A subject of `uri` whose calls go through the async API; it keeps
/// `servers` running as long as it lives.
fn subject_on(servers: impl Send + Sync + 'static, uri: &str) -> Subject {
    common::via_async(
        storage(uri),
        Box::new(move |d| {
            let _alive = &servers;
            std::thread::sleep(d)
        }),
        0.5,
    )
}

/// A current-thread runtime as a user would build one: no time or I/O driver.
fn bare_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn block_on<F: Future>(future: F) -> F::Output {
    bare_runtime().block_on(future)
}

fn tcp_subject() -> Subject {
    let server = Server::redis(Config::default());
    let uri = format!("async+{}", server.url());
    subject_on(server, &uri)
}

fn unix_subject() -> Subject {
    let server = Server::redis(Config {
        unix_socket: true,
        ..Config::default()
    });
    let uri = format!(
        "async+redis+unix://{}",
        server.socket.as_ref().unwrap().display()
    );
    subject_on(server, &uri)
}

/// One Cluster for the suite's tests that run at the same time, each under
/// its own key prefix; it stops when the last test holding it ends.
fn shared_cluster() -> Arc<Cluster> {
    static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(Cluster::start());
    *shared = Arc::downgrade(&cluster);
    cluster
}

fn cluster_subject() -> Subject {
    let cluster = shared_cluster();
    let uri = format!(
        "async+{}?key_prefix={}",
        cluster.url(),
        servers::unique_prefix("cluster")
    );
    subject_on(cluster, &uri)
}

fn sentinel_subject() -> Subject {
    let master = Server::redis(Config::default());
    let sentinel = Server::sentinel(SERVICE, master.port, 5000);
    let uri = format!(
        "async+redis+sentinel://127.0.0.1:{}/{SERVICE}",
        sentinel.port
    );
    subject_on((master, sentinel), &uri)
}

/// The shared suite over TCP (`async+redis://`).
mod tcp {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server");
        tcp_subject
    });
}

/// The shared suite over a unix socket (`async+redis+unix://`).
mod unix_socket {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server");
        unix_subject
    });
}

/// The shared suite on a three-primary Cluster (`async+redis+cluster://`).
mod cluster {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server");
        cluster_subject
    });
}

/// The shared suite through Sentinel (`async+redis+sentinel://`).
mod sentinel {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server", "redis-sentinel");
        sentinel_subject
    });
}

#[test]
fn every_scheme_builds_a_native_storage_without_connecting() {
    for uri in [
        "async+redis://localhost:1/2",
        "async+rediss://localhost:1",
        "async+redis+unix:///nonexistent.sock?db=2",
        "async+valkey://localhost:1",
        "async+valkeys://localhost:1",
        "async+valkey+unix:///nonexistent.sock",
        "async+redis+cluster://localhost:1,localhost:2",
        "async+valkey+cluster://localhost:1",
        "async+redis+sentinel://localhost:1/mymaster",
        "async+valkey+sentinel://localhost:1?service_name=mymaster",
        "redis://localhost:1",
    ] {
        let st = storage(uri);
        assert!(st.moving_window().is_some() && st.sliding_window().is_some());
    }
    for uri in [
        "async+redis://localhost?colour=blue",
        "async+redis://localhost?socket_timeout=0",
        "async+redis://localhost/abc",
        "async+redis://a:1,b:2",
        "async+redis://localhost?ssl_ca_certs=/etc/hosts",
        "async+redis+unix://",
        "async+redis+cluster://localhost:1/0",
        "async+redis+sentinel://localhost:26379",
        "async+valkey+sentinel://localhost:26379/a?foo=1",
    ] {
        let e = async_storage_from_string(uri, &Options::new()).unwrap_err();
        assert!(e.is_configuration(), "{uri}: {e}");
    }
    assert_eq!(
        AsyncRedisStorage::new("async+redis://localhost:1?key_prefix=app")
            .unwrap()
            .key_prefix(),
        "app"
    );
    assert_eq!(
        AsyncRedisSentinelStorage::new("redis+sentinel://localhost:1/svc")
            .unwrap()
            .service_name(),
        "svc"
    );
}

/// Nobody listens: a storage error, fast, and `check()` is false.
/// `decide` answers from one script what `hit` and `get_window_stats` do
/// from two calls, on one server and on a Cluster.
#[test]
fn decide_answers_as_hit_then_stats() {
    let server = Server::redis(Config::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::decide::decide_answers_as_hit_then_stats(
        storage(&format!("async+{}", server.url())),
        "standalone",
        0.05,
    ));
    let cluster = shared_cluster();
    let uri = format!(
        "async+{}?key_prefix={}",
        cluster.url(),
        servers::unique_prefix("decide")
    );
    rt.block_on(common::decide::decide_answers_as_hit_then_stats(
        storage(&uri),
        "cluster",
        0.05,
    ));
}

#[test]
fn no_server_is_a_storage_error() {
    let port = servers::free_port();
    let st = storage(&format!(
        "async+redis://127.0.0.1:{port}?socket_connect_timeout=1"
    ));
    let started = Instant::now();
    block_on(async {
        let e = st.incr("k", 60, false, 1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e:#}");
        assert!(e.storage_error().is_some());
        assert!(e.is_retryable() && !e.is_timeout(), "{e:#}");
        // The cause is printed once: in the alternate form, not the message.
        let cause = e.storage_error().unwrap().to_string();
        assert!(!e.to_string().contains(&cause), "{e}");
        assert!(format!("{e:#}").ends_with(&cause), "{e:#}");
        assert!(!st.check().await);
    });
    assert!(started.elapsed() < Duration::from_secs(3));
    // Invalid arguments are refused before any I/O.
    let long = "x".repeat(limitstore::MAX_KEY_LEN + 1);
    let e = block_on(st.incr(&long, 60, false, 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

/// The async and the blocking storage read and write the same keys.
#[test]
fn state_is_shared_with_the_blocking_storage() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let blocking = RedisStorage::new(&server.url()).unwrap();
    let st = storage(&format!("async+{}", server.url()));
    block_on(async {
        blocking.incr("k", 60, false, 2).unwrap();
        assert_eq!(st.incr("k", 60, false, 3).await.unwrap(), 5);
        assert_eq!(blocking.get("k").unwrap(), 5);
        let expiry = st.get_expiry("k").await.unwrap();
        assert!((expiry - blocking.get_expiry("k").unwrap()).abs() < 1.0);

        let mw = st.moving_window().unwrap();
        assert!(blocking
            .moving_window()
            .unwrap()
            .acquire_entry("mw", 5, 60, 3)
            .unwrap());
        assert!(mw.acquire_entry("mw", 5, 60, 2).await.unwrap());
        assert!(!mw.acquire_entry("mw", 5, 60, 1).await.unwrap());
        assert_eq!(mw.get_moving_window("mw", 5, 60).await.unwrap().count, 5);

        let sw = st.sliding_window().unwrap();
        assert!(sw
            .acquire_sliding_window_entry("sw", 10, 60, 4)
            .await
            .unwrap());
        let w = blocking
            .sliding_window()
            .unwrap()
            .get_sliding_window("sw", 60)
            .unwrap();
        assert_eq!((w.previous_count, w.current_count), (0, 4));
        st.clear("sw").await.unwrap();
        assert_eq!(
            blocking
                .sliding_window()
                .unwrap()
                .get_sliding_window("sw", 60)
                .unwrap()
                .current_count,
            0
        );
        assert_eq!(st.reset().await.unwrap(), Some(2));
        assert_eq!(blocking.get("k").unwrap(), 0);
    });
}

/// 100 tasks on one runtime hit a 37/minute limit at once; fixed window,
/// moving window and sliding window counter each admit exactly 37.
#[test]
fn concurrent_tasks_admit_exactly_the_limit() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st = storage(&format!("async+{}", server.url()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    for strategy in [
        Strategy::FixedWindow,
        Strategy::MovingWindow,
        Strategy::SlidingWindowCounter,
    ] {
        let limiter: Arc<dyn AsyncRateLimiter> =
            async_limiter_for(strategy, st.clone()).unwrap().into();
        let admitted = rt.block_on(async {
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let limiter = Arc::clone(&limiter);
                    // One key per strategy: their layouts differ.
                    let user = strategy.to_string();
                    tokio::spawn(async move {
                        let item = parse("37/minute").unwrap();
                        limiter.hit(&item, &[&user], 1).await.unwrap()
                    })
                })
                .collect();
            let mut admitted = 0;
            for task in tasks {
                admitted += usize::from(task.await.unwrap());
            }
            admitted
        });
        assert_eq!(admitted, 37, "{strategy}");
    }
    // And plain counters lose no increment.
    let total = rt.block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let st = st.clone();
                tokio::spawn(async move { st.incr("count", 60, false, 1).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        st.get("count").await.unwrap()
    });
    assert_eq!(total, 100);
}

/// A killed server: calls fail with a storage error within the timeouts,
/// `check()` is false, and once the server is back the storage reconnects.
#[test]
fn killed_server_gives_storage_errors_then_reconnects() {
    require_or_skip!("redis-server");
    let mut server = Server::redis(Config::default());
    let st = storage(&format!(
        "async+{}?socket_timeout=1&socket_connect_timeout=1",
        server.url()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let st = st.clone();
                tokio::spawn(async move { st.incr("k", 60, false, 1).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(st.get("k").await.unwrap(), 20);
    });
    server.kill();
    let started = Instant::now();
    rt.block_on(async {
        let e = st.incr("k", 60, false, 1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(e.storage_error().is_some());
        let e = st
            .moving_window()
            .unwrap()
            .acquire_entry("m", 5, 60, 1)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(!st.check().await);
    });
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    server.restart();
    rt.block_on(async {
        // Data is gone (no persistence), the connection is new.
        assert_eq!(st.incr("k", 60, false, 1).await.unwrap(), 1);
        assert!(st.check().await);
    });
}

/// A server that accepts connections but never answers (SIGSTOP): calls
/// and `check()` return within the socket timeout, and recover after SIGCONT.
#[test]
fn hung_server_times_out() {
    require_or_skip!("redis-server", "kill");
    let server = Server::redis(Config::default());
    let st = storage(&format!(
        "async+{}?socket_timeout=0.5&socket_connect_timeout=0.5",
        server.url()
    ));
    assert!(block_on(st.check()));
    server.signal("STOP");
    let started = Instant::now();
    let (healthy, e) = block_on(async {
        let healthy = st.check().await;
        (healthy, st.incr("k", 60, false, 1).await.unwrap_err())
    });
    let elapsed = started.elapsed();
    server.signal("CONT");
    assert!(!healthy);
    assert_eq!(e.kind(), ErrorKind::Storage, "{e:#}");
    assert!(e.is_timeout() && e.is_retryable(), "{e:#}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(block_on(st.check()));
    assert_eq!(block_on(st.incr("k", 60, false, 1)).unwrap(), 1);
}

/// A user's own current-thread runtimes, built without time or I/O drivers
/// and dropped after use: the storage connects in the first and keeps
/// working in the next ones.
#[test]
fn usable_from_a_users_current_thread_runtimes() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st = storage(&format!("async+{}?socket_timeout=2", server.url()));
    for round in 1..=3u64 {
        let rt = bare_runtime();
        rt.block_on(async {
            assert_eq!(st.incr("k", 60, false, 1).await.unwrap(), round);
            assert!(st
                .moving_window()
                .unwrap()
                .acquire_entry("m", 10, 60, 1)
                .await
                .unwrap());
            assert!(st
                .sliding_window()
                .unwrap()
                .acquire_sliding_window_entry("s", 10, 60, 1)
                .await
                .unwrap());
            assert!(st.check().await);
            // Several calls in flight at once on the one thread.
            let calls: Vec<_> = (0..10).map(|_| st.get("k")).collect();
            for call in calls {
                assert_eq!(call.await.unwrap(), round);
            }
        });
        drop(rt);
    }
    // And from a thread with no runtime at all, through the blocking bridge.
    assert_eq!(
        limitstore::aio::Bridged::new(st.clone()).get("k").unwrap(),
        3
    );
}

/// A dropped call is cancelled and leaves the storage usable.
#[test]
fn dropped_calls_leave_the_storage_usable() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st = storage(&format!("async+{}", server.url()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..50 {
            let _ =
                tokio::time::timeout(Duration::from_micros(1), st.incr("k", 60, false, 1)).await;
        }
        let before = st.get("k").await.unwrap();
        assert!(before <= 50);
        assert_eq!(st.incr("k", 60, false, 1).await.unwrap(), before + 1);
    });
}

#[test]
fn valkey_aliases_and_credentials() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config {
        unix_socket: true,
        args: vec!["--requirepass".into(), "s3cret".into()],
    });
    let tcp = storage(&format!("async+valkey://:s3cret@127.0.0.1:{}", server.port));
    let unix = storage(&format!(
        "async+valkey+unix://{}?password=s3cret",
        server.socket.as_ref().unwrap().display()
    ));
    let wrong = storage(&format!("async+redis://:nope@127.0.0.1:{}", server.port));
    block_on(async {
        assert_eq!(tcp.incr("k", 60, false, 1).await.unwrap(), 1);
        assert_eq!(unix.incr("k", 60, false, 1).await.unwrap(), 2);
        let e = wrong.incr("k", 60, false, 1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(!wrong.check().await);
    });
    assert!(!format!("{tcp:?}").contains("s3cret"));
}

#[test]
fn cluster_keys_spread_and_reset_clears_every_primary() {
    require_or_skip!("redis-server");
    let cluster = Cluster::start();
    let st =
        AsyncRedisClusterStorage::new(&format!("async+{}?key_prefix=app", cluster.url())).unwrap();
    let other = storage(&format!("async+{}", cluster.url()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(st.primaries().await.unwrap().len(), 3);
        let mw = st.moving_window().unwrap();
        let sw = st.sliding_window().unwrap();
        for i in 0..100 {
            let key = format!("LIMITER/user/{i}/10/1/minute");
            assert_eq!(st.incr(&key, 60, false, 2).await.unwrap(), 2);
            assert!(mw.acquire_entry(&format!("mw{i}"), 5, 60, 1).await.unwrap());
            assert!(sw
                .acquire_sliding_window_entry(&format!("sw{i}"), 5, 60, 1)
                .await
                .unwrap());
        }
        other.incr("keep", 60, false, 1).await.unwrap();
        let per_node: Vec<usize> = cluster
            .nodes
            .iter()
            .map(|n| {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg("app:*")
                    .query(&mut n.connection())
                    .unwrap();
                keys.len()
            })
            .collect();
        assert!(per_node.iter().all(|&n| n > 50), "{per_node:?}");
        assert_eq!(st.reset().await.unwrap(), Some(300));
        assert_eq!(st.get("LIMITER/user/1/10/1/minute").await.unwrap(), 0);
        assert_eq!(other.get("keep").await.unwrap(), 1);
    });
}

/// Every node killed: calls fail with a storage error within the timeouts.
#[test]
fn a_stopped_cluster_gives_storage_errors() {
    require_or_skip!("redis-server");
    let mut cluster = Cluster::start();
    let st = storage(&format!(
        "async+{}?socket_timeout=1&socket_connect_timeout=1",
        cluster.url()
    ));
    let rt = bare_runtime();
    assert_eq!(rt.block_on(st.incr("k", 60, false, 1)).unwrap(), 1);
    for node in &mut cluster.nodes {
        node.kill();
    }
    let started = Instant::now();
    rt.block_on(async {
        let e = st.incr("k", 60, false, 1).await.unwrap_err();
        assert!(e.is_storage(), "{e}");
        assert!(!st.check().await);
        let e = st.reset().await.unwrap_err();
        assert!(e.is_storage(), "{e}");
    });
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

/// `rediss://` / `valkeys://` with a certificate made by `openssl` here.
#[test]
fn tls_with_a_private_ca() {
    require_or_skip!("redis-server", "openssl");
    let certs = servers::TempDir::new("certs");
    let dir = certs.path();
    let openssl = |args: &str| {
        let out = std::process::Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem",
    );
    openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr");
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out server.pem");
    let tls_port = servers::free_port();
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let server = Server::redis(Config {
        args: vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path("server.pem"),
            "--tls-key-file".into(),
            path("server.key"),
            "--tls-ca-cert-file".into(),
            path("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
        ..Config::default()
    });
    block_on(async {
        for scheme in ["rediss", "valkeys"] {
            let st = storage(&format!(
                "async+{scheme}://127.0.0.1:{tls_port}/0?ssl_ca_certs={}",
                path("ca.pem")
            ));
            assert!(st.check().await, "{scheme}");
            st.incr("tls", 60, false, 1).await.unwrap();
        }
        // Without the CA the certificate is not trusted: a storage error.
        let untrusted = storage(&format!(
            "async+rediss://127.0.0.1:{tls_port}?socket_timeout=1&socket_connect_timeout=1"
        ));
        let e = untrusted.incr("k", 60, false, 1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    });
    let count: Option<String> = redis::cmd("GET")
        .arg("LIMITS:tls")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(count.as_deref(), Some("2"));
}

/// The primary dies; once the Sentinel has promoted the replica, hits go on
/// against it with the counter the replica kept.
#[test]
fn sentinel_failover_is_followed() {
    require_or_skip!("redis-server", "redis-sentinel");
    let mut master = Server::redis(Config::default());
    let replica = Server::redis(Config {
        args: vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ],
        ..Config::default()
    });
    let sentinel = Server::sentinel(SERVICE, master.port, 1000);
    wait_until("the replica to sync", Duration::from_secs(15), || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut replica.connection())
            .unwrap();
        info.contains("master_link_status:up")
    });
    wait_until(
        "the sentinel to know the replica",
        Duration::from_secs(20),
        || {
            let replicas: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
                .arg("REPLICAS")
                .arg(SERVICE)
                .query(&mut sentinel.connection())
                .unwrap();
            replicas
                .iter()
                .any(|r| r.get("flags").is_some_and(|f| f == "slave"))
        },
    );
    let st = storage(&format!(
        "async+redis+sentinel://127.0.0.1:{}/{SERVICE}?socket_timeout=1&socket_connect_timeout=1",
        sentinel.port
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 1..=10 {
            assert_eq!(st.incr("k", 300, false, 1).await.unwrap(), i);
        }
    });
    wait_until(
        "the replica to have the hits",
        Duration::from_secs(5),
        || {
            let on_replica: Option<u64> = redis::cmd("GET")
                .arg("LIMITS:k")
                .query(&mut replica.connection())
                .unwrap();
            on_replica == Some(10)
        },
    );

    master.kill();
    let killed = Instant::now();
    let (first, failures) = rt.block_on(async {
        let mut failures = 0;
        loop {
            match st.incr("k", 300, false, 1).await {
                Ok(n) => break (n, failures),
                Err(e) => {
                    assert!(e.is_storage(), "{e}");
                    failures += 1;
                }
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "no hit succeeded within 30 s of the failover ({failures} failures)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let switched_after = killed.elapsed();
    assert_eq!(first, 11, "the promoted replica kept the counter");
    rt.block_on(async {
        for i in 12..=40 {
            assert_eq!(st.incr("k", 300, false, 1).await.unwrap(), i);
        }
        assert!(st
            .moving_window()
            .unwrap()
            .acquire_entry("m", 5, 60, 1)
            .await
            .unwrap());
        assert!(st.check().await);
    });
    eprintln!(
        "failover: first successful hit {switched_after:?} after the kill, {failures} failed calls before"
    );
}
