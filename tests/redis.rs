//! The Redis storage against real `redis-server` processes started here:
//! plain TCP, TLS, a unix socket, the `valkey` aliases, the key layout,
//! options, a killed and a hung server, and the shared behavioural suite.
#![cfg(feature = "redis")]

#[macro_use]
mod common;
#[macro_use]
mod servers;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::Subject;
use limitstore::{storage_from_string, ErrorKind, Options, RedisStorage, Storage};
use servers::{Config, Server};

/// A storage of `uri` that keeps `server` running as long as the subject lives.
fn subject_on(server: Server, uri: &str) -> Subject {
    let storage = storage_from_string(uri, &Options::new()).unwrap();
    Subject {
        storage,
        advance: Box::new(move |d| {
            let _alive = &server;
            std::thread::sleep(d)
        }),
        slack: 0.5,
        lacks: &[],
    }
}

/// A fresh server per test, reached over TCP.
fn tcp_subject() -> Subject {
    let server = Server::redis(Config::default());
    let uri = server.url();
    subject_on(server, &uri)
}

/// A fresh server per test, reached over its unix socket.
fn unix_subject() -> Subject {
    let server = Server::redis(Config {
        unix_socket: true,
        ..Config::default()
    });
    let uri = format!("redis+unix://{}", server.socket.as_ref().unwrap().display());
    subject_on(server, &uri)
}

/// The shared suite over TCP (`redis://`).
mod tcp {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server");
        tcp_subject
    });
}

/// The shared suite over a unix socket (`redis+unix://`).
mod unix_socket {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server");
        unix_subject
    });
}

fn raw_get(server: &Server, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut server.connection())
        .unwrap()
}

fn raw_pttl(server: &Server, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut server.connection())
        .unwrap()
}

#[test]
fn key_layout_is_that_of_python_limits() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st = RedisStorage::new(&server.url()).unwrap();
    assert_eq!(st.key_prefix(), "LIMITS");
    // Fixed window: a string counter with a TTL in seconds.
    assert_eq!(st.incr("LIMITER/a/1/1/minute", 60, false, 3).unwrap(), 3);
    assert_eq!(
        raw_get(&server, "LIMITS:LIMITER/a/1/1/minute").as_deref(),
        Some("3")
    );
    let ttl = raw_pttl(&server, "LIMITS:LIMITER/a/1/1/minute");
    assert!((59_000..=60_000).contains(&ttl), "{ttl}");
    // Moving window: a list of timestamps, newest first.
    let mw = st.moving_window().unwrap();
    assert!(mw.acquire_entry("mw", 10, 30, 2).unwrap());
    let mut c = server.connection();
    let entries: Vec<String> = redis::cmd("LRANGE")
        .arg("LIMITS:mw")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(entries.len(), 2);
    let ts: f64 = entries[0].parse().unwrap();
    assert!((ts - st.unix_now()).abs() < 5.0, "{ts}");
    // Sliding window: two string counters sharing a hash tag.
    let sw = st.sliding_window().unwrap();
    assert!(sw.acquire_sliding_window_entry("sw", 10, 30, 4).unwrap());
    assert_eq!(raw_get(&server, "LIMITS:{sw}").as_deref(), Some("4"));
    let ttl = raw_pttl(&server, "LIMITS:{sw}");
    assert!((59_000..=60_000).contains(&ttl), "{ttl}");
    // clear() removes the counter, the moving window and both sliding buckets.
    redis::cmd("SET")
        .arg("LIMITS:{sw}/-1")
        .arg(1)
        .exec(&mut c)
        .unwrap();
    st.clear("sw").unwrap();
    let left: u64 = redis::cmd("EXISTS")
        .arg("LIMITS:{sw}")
        .arg("LIMITS:{sw}/-1")
        .query(&mut c)
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn counters_written_by_others_are_shared() {
    require_or_skip!("redis-server");
    // Python `limits` keeps exactly this state; whoever wrote it, we read it.
    let server = Server::redis(Config::default());
    let mut c = server.connection();
    redis::cmd("SET")
        .arg("LIMITS:shared")
        .arg(7)
        .arg("EX")
        .arg(60)
        .exec(&mut c)
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for _ in 0..3 {
        redis::cmd("LPUSH")
            .arg("LIMITS:shared-mw")
            .arg(now)
            .exec(&mut c)
            .unwrap();
    }
    redis::cmd("SET")
        .arg("LIMITS:{shared-sw}")
        .arg(2)
        .arg("PX")
        .arg(120_000)
        .exec(&mut c)
        .unwrap();
    let st = RedisStorage::new(&server.url()).unwrap();
    assert_eq!(st.get("shared").unwrap(), 7);
    assert_eq!(st.incr("shared", 60, false, 1).unwrap(), 8);
    let mw = st.moving_window().unwrap();
    let w = mw.get_moving_window("shared-mw", 5, 60).unwrap();
    assert_eq!(w.count, 3);
    assert!((w.start - now).abs() < 0.001);
    assert!(mw.acquire_entry("shared-mw", 5, 60, 2).unwrap());
    assert!(!mw.acquire_entry("shared-mw", 5, 60, 1).unwrap());
    let sw = st.sliding_window().unwrap();
    let s = sw.get_sliding_window("shared-sw", 60).unwrap();
    assert_eq!((s.previous_count, s.current_count), (0, 2));
    assert!(sw
        .acquire_sliding_window_entry("shared-sw", 3, 60, 1)
        .unwrap());
    assert!(!sw
        .acquire_sliding_window_entry("shared-sw", 3, 60, 1)
        .unwrap());
}

#[test]
fn sliding_window_rolls_over_on_the_server() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st = RedisStorage::new(&server.url()).unwrap();
    let sw = st.sliding_window().unwrap();
    assert!(sw.acquire_sliding_window_entry("roll", 10, 1, 6).unwrap());
    std::thread::sleep(Duration::from_millis(1100));
    // The first window is over: its 6 hits are the previous bucket now.
    let w = sw.get_sliding_window("roll", 1).unwrap();
    assert_eq!((w.previous_count, w.current_count), (6, 0), "{w:?}");
    assert!(
        w.previous_expires_in > 0.0 && w.previous_expires_in <= 1.0,
        "{w:?}"
    );
    assert_eq!(raw_get(&server, "LIMITS:{roll}/-1").as_deref(), Some("6"));
}

#[test]
fn key_prefix_and_reset_touch_only_their_keys() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let mine = storage_from_string(
        &format!("{}?key_prefix=app*1", server.url()),
        &Options::new(),
    )
    .unwrap();
    let other = RedisStorage::new(&server.url()).unwrap();
    let mut c = server.connection();
    redis::cmd("SET")
        .arg("unrelated")
        .arg(1)
        .exec(&mut c)
        .unwrap();
    // `app*1` must be matched literally, not as a glob.
    redis::cmd("SET")
        .arg("appX1:k")
        .arg(1)
        .exec(&mut c)
        .unwrap();
    for i in 0..2500 {
        mine.incr(&format!("k{i}"), 60, false, 1).unwrap();
    }
    mine.moving_window()
        .unwrap()
        .acquire_entry("m", 5, 60, 1)
        .unwrap();
    mine.sliding_window()
        .unwrap()
        .acquire_sliding_window_entry("s", 5, 60, 1)
        .unwrap();
    other.incr("k0", 60, false, 5).unwrap();
    assert_eq!(raw_get(&server, "app*1:k0").as_deref(), Some("1"));
    assert_eq!(mine.reset().unwrap(), Some(2502));
    assert_eq!(mine.get("k0").unwrap(), 0);
    assert_eq!(other.get("k0").unwrap(), 5);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["LIMITS:k0", "appX1:k", "unrelated"]);
}

#[test]
fn database_from_path_and_option() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let in_path = RedisStorage::new(&format!("{}/3", server.url())).unwrap();
    in_path.incr("k", 60, false, 1).unwrap();
    let in_option = storage_from_string(
        &server.url(),
        &Options::new().with("db", 4).with("key_prefix", "P"),
    )
    .unwrap();
    in_option.incr("k", 60, false, 2).unwrap();
    let mut c = server.connection();
    for (db, key, value) in [(3, "LIMITS:k", "1"), (4, "P:k", "2")] {
        redis::cmd("SELECT").arg(db).exec(&mut c).unwrap();
        let v: Option<String> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
        assert_eq!(v.as_deref(), Some(value), "db {db}");
    }
    redis::cmd("SELECT").arg(0).exec(&mut c).unwrap();
    let n: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn password_from_uri_and_options() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config {
        args: vec!["--requirepass".into(), "s3cret".into()],
        ..Config::default()
    });
    let uri = format!("redis://:s3cret@127.0.0.1:{}", server.port);
    let st = storage_from_string(&uri, &Options::new()).unwrap();
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    let st =
        storage_from_string(&server.url(), &Options::new().with("password", "s3cret")).unwrap();
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 2);
    let wrong = storage_from_string(
        &format!("redis://:nope@127.0.0.1:{}", server.port),
        &Options::new(),
    )
    .unwrap();
    let e = wrong.incr("k", 60, false, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert!(!wrong.check());
    // The Debug output does not show the password.
    assert!(!format!("{st:?}").contains("s3cret"));
}

#[test]
fn bad_uris_and_options_are_configuration_errors() {
    for (uri, opts) in [
        ("redis://localhost?colour=blue", Options::new()),
        (
            "redis://localhost",
            Options::new().with("socket_timeout", 0),
        ),
        (
            "redis://localhost",
            Options::new().with("socket_timeout", "soon"),
        ),
        (
            "redis://localhost",
            Options::new().with("socket_connect_timeout", 7200),
        ),
        (
            "redis://localhost",
            Options::new().with("max_connections", 0),
        ),
        ("redis://localhost", Options::new().with("db", -1)),
        ("redis://localhost/abc", Options::new()),
        ("redis://localhost/2", Options::new().with("db", 3)),
        ("redis://a:1,b:2", Options::new()),
        ("redis://localhost?ssl_ca_certs=/etc/hosts", Options::new()),
        (
            "rediss://localhost?ssl_ca_certs=/nonexistent/ca.pem",
            Options::new(),
        ),
        ("redis+unix://localhost:1", Options::new()),
        ("redis+unix://", Options::new()),
        ("valkey+unix://", Options::new()),
        ("redis+cluster://localhost:1/0", Options::new()),
        ("redis+cluster://localhost:1?db=1", Options::new()),
        ("redis+sentinel://localhost:26379", Options::new()),
        (
            "redis+sentinel://localhost:26379/a?service_name=b",
            Options::new(),
        ),
        ("valkey+sentinel://localhost:26379/a?foo=1", Options::new()),
    ] {
        let e = storage_from_string(uri, &opts).unwrap_err();
        assert!(e.is_configuration(), "{uri} {opts:?}: {e}");
    }
    // Construction does not connect: these build, and fail only when used.
    for uri in [
        "redis://localhost:1/2",
        "valkey://localhost:1",
        "rediss://localhost:1",
        "valkeys://localhost:1",
        "redis+unix:///nonexistent.sock?db=2",
        "valkey+unix:///nonexistent.sock",
        "redis+cluster://localhost:1,localhost:2",
        "valkey+cluster://localhost:1",
        "redis+sentinel://localhost:1/mymaster",
        "valkey+sentinel://localhost:1?service_name=mymaster",
    ] {
        storage_from_string(uri, &Options::new()).unwrap_or_else(|e| panic!("{uri}: {e}"));
    }
}

#[test]
fn valkey_schemes_are_aliases() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config {
        unix_socket: true,
        ..Config::default()
    });
    let tcp = storage_from_string(
        &format!("valkey://127.0.0.1:{}", server.port),
        &Options::new(),
    )
    .unwrap();
    let unix = storage_from_string(
        &format!(
            "valkey+unix://{}",
            server.socket.as_ref().unwrap().display()
        ),
        &Options::new(),
    )
    .unwrap();
    assert_eq!(tcp.incr("k", 60, false, 1).unwrap(), 1);
    assert_eq!(unix.incr("k", 60, false, 1).unwrap(), 2);
    assert!(tcp.check() && unix.check());
}

/// A killed server: every call fails fast with a storage error, `check()`
/// is false, and once the server is back the storage reconnects by itself.
#[test]
fn killed_server_gives_storage_errors_then_reconnects() {
    require_or_skip!("redis-server");
    let mut server = Server::redis(Config::default());
    let st = storage_from_string(
        &format!("{}?socket_timeout=1&socket_connect_timeout=1", server.url()),
        &Options::new(),
    )
    .unwrap();
    // Several pooled connections.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    st.incr("k", 60, false, 1).unwrap();
                }
            });
        }
    });
    assert_eq!(st.get("k").unwrap(), 80);
    server.kill();
    let started = Instant::now();
    let e = st.incr("k", 60, false, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e:#}");
    assert!(e.storage_error().is_some());
    assert!(e.is_retryable(), "{e:#}");
    let e = st
        .moving_window()
        .unwrap()
        .acquire_entry("m", 5, 60, 1)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(!st.check());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.restart();
    // Data is gone (no persistence), the connection is new.
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    assert!(st.check());
}

/// A server that accepts connections but never answers (stopped with
/// SIGSTOP): calls and `check()` return within the socket timeout.
#[test]
fn hung_server_times_out() {
    require_or_skip!("redis-server", "kill");
    let server = Server::redis(Config::default());
    let st = storage_from_string(
        &format!(
            "{}?socket_timeout=0.5&socket_connect_timeout=0.5",
            server.url()
        ),
        &Options::new(),
    )
    .unwrap();
    assert!(st.check());
    server.signal("STOP");
    let started = Instant::now();
    assert!(!st.check());
    let e = st.incr("k", 60, false, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e:#}");
    assert!(e.is_timeout() && e.is_retryable(), "{e:#}");
    let elapsed = started.elapsed();
    server.signal("CONT");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(st.check());
}

/// The synchronous API works from inside a tokio runtime, on both flavours.
#[test]
fn usable_inside_a_tokio_runtime() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st: Arc<dyn Storage> = Arc::new(RedisStorage::new(&server.url()).unwrap());
    for rt in [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
    ] {
        let st = st.clone();
        rt.block_on(async move {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let st = st.clone();
                    tokio::spawn(async move {
                        st.incr("async", 60, false, 1).unwrap();
                        st.moving_window()
                            .unwrap()
                            .acquire_entry("am", 100, 60, 1)
                            .unwrap()
                    })
                })
                .collect();
            for h in handles {
                assert!(h.await.unwrap());
            }
        });
    }
    assert_eq!(st.get("async").unwrap(), 16);
}

/// More threads than pooled connections: callers wait for a free one.
#[test]
fn small_pool_serves_many_threads() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let st = storage_from_string(
        &format!("{}?max_connections=2", server.url()),
        &Options::new(),
    )
    .unwrap();
    let barrier = Barrier::new(20);
    std::thread::scope(|s| {
        for _ in 0..20 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..10 {
                    st.incr("k", 60, false, 1).unwrap();
                }
            });
        }
    });
    assert_eq!(st.get("k").unwrap(), 200);
}

/// `rediss://` with a certificate made by `openssl` for this test.
#[test]
fn tls_with_a_private_ca() {
    require_or_skip!("redis-server", "openssl");
    let certs = servers::TempDir::new("certs");
    let dir = certs.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
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
    for scheme in ["rediss", "valkeys"] {
        let st = storage_from_string(
            &format!(
                "{scheme}://127.0.0.1:{tls_port}/0?ssl_ca_certs={}",
                path("ca.pem")
            ),
            &Options::new(),
        )
        .unwrap();
        assert!(st.check(), "{scheme}");
        st.incr("tls", 60, false, 1).unwrap();
        assert!(st
            .moving_window()
            .unwrap()
            .acquire_entry("tls-mw", 5, 60, 1)
            .unwrap());
    }
    assert_eq!(raw_get(&server, "LIMITS:tls").as_deref(), Some("2"));
    // Without the CA the certificate is not trusted; plain text on the TLS
    // port is not TLS either. Both are storage errors, not hangs.
    let untrusted =
        RedisStorage::new(&format!("rediss://127.0.0.1:{tls_port}?socket_timeout=1")).unwrap();
    assert_eq!(
        untrusted.incr("k", 60, false, 1).unwrap_err().kind(),
        ErrorKind::Storage
    );
    assert!(!untrusted.check());
    let plain =
        RedisStorage::new(&format!("redis://127.0.0.1:{tls_port}?socket_timeout=1")).unwrap();
    assert!(!plain.check());
}

/// Write-behind over a standalone Redis under budget split.
mod budget_split {
    use super::*;
    use limitstore::write_behind::WriteBehind;

    /// The share script answers as the embedded remote does.
    #[test]
    fn the_share_script_follows_the_rule() {
        require_or_skip!("redis-server");
        let server = Server::redis(Config::default());
        let remote = Arc::new(RedisStorage::new(&server.url()).unwrap());
        common::remote::budget_shares(remote, "rs");
    }

    /// `FLUSHDB` (the same check every backend's remote passes).
    #[test]
    fn a_flushed_remote_is_made_whole() {
        require_or_skip!("redis-server");
        let server = Server::redis(Config::default());
        let remote = Arc::new(RedisStorage::new(&server.url()).unwrap());
        common::remote::a_remote_that_forgot_is_made_whole(remote, "rs", &mut || {
            let _: () = redis::cmd("FLUSHDB")
                .query(&mut server.connection())
                .unwrap();
        });
    }

    /// Four nodes on their own threads, each offering twice the limit over
    /// a real Redis, with a sync interval of 20 ms and 1 s windows: no window
    /// admits past the limit, the full ones admit nearly all of it, and the
    /// remote counts exactly what was admitted.
    #[test]
    fn four_nodes_over_redis_never_pass_the_limit() {
        require_or_skip!("redis-server");
        let server = Server::redis(Config::default());
        let uri = format!("{}?key_prefix=SPLIT", server.url());
        const LIMIT: u64 = 400;
        let nodes: Vec<_> = (0..4)
            .map(|i| {
                let remote = Arc::new(RedisStorage::new(&uri).unwrap());
                WriteBehind::builder(remote)
                    .node_id(format!("n{i}"))
                    .sync_interval(Duration::from_millis(20))
                    .budget_split(true)
                    .start()
                    .unwrap()
            })
            .collect();
        let barrier = Barrier::new(nodes.len());
        let per_node: Vec<std::collections::BTreeMap<u64, u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let mut admitted = std::collections::BTreeMap::new();
                        barrier.wait();
                        let start = Instant::now();
                        let mut hits = 0u32;
                        // 200 hits/s per node: twice the limit together.
                        while start.elapsed() < Duration::from_millis(3500) {
                            let due = start + Duration::from_millis(5) * hits;
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            let (w, ok) = node.hit_in_window("shared", 1, LIMIT, 1).unwrap();
                            *admitted.entry(w).or_insert(0) += u64::from(ok);
                            hits += 1;
                        }
                        admitted
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for node in &nodes {
            node.flush().unwrap();
        }
        let mut windows = std::collections::BTreeMap::new();
        for m in &per_node {
            for (w, a) in m {
                *windows.entry(*w).or_insert(0u64) += a;
            }
        }
        let direct = RedisStorage::new(&uri).unwrap();
        let full: Vec<u64> = windows.keys().copied().skip(1).collect();
        // Slots of 1 s windows expire one window after theirs: the
        // windows still live are checked against the server.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mut checked = 0;
        for (w, admitted) in &windows {
            assert!(*admitted <= LIMIT, "window {w}: {admitted} of {LIMIT}");
            if (*w + 2) as f64 <= now + 0.2 {
                continue;
            }
            checked += 1;
            let read = limitstore::write_behind::Report {
                key: "shared",
                window: *w,
                expiry: 1,
                node: "reader",
                total: 0,
            };
            use limitstore::write_behind::SyncTarget;
            assert_eq!(direct.sync(&[read]).unwrap()[0], *admitted, "window {w}");
        }
        // The windows after the first, but the last, are full ones.
        for w in &full[..full.len().saturating_sub(1)] {
            assert!(
                windows[w] >= LIMIT * 95 / 100,
                "window {w}: {} of {LIMIT}",
                windows[w]
            );
        }
        assert!(full.len() >= 3, "{windows:?}");
        assert!(checked >= 1, "{windows:?}");
    }
}
