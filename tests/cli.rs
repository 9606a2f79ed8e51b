//! The `limitstore` binary as a user runs it: every bad flag refused up
//! front with exit code 2 and no panic or hang, secrets never printed,
//! Ctrl-C during `tune` keeping what finished, and `bench` and `tune`
//! against a real Redis (and Memcached) leaving every key they did not
//! write as it was, and none of their own behind.
#![cfg(all(feature = "cli", feature = "redis"))]

#[macro_use]
mod servers;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use redis::Commands;
use servers::{Config, Server};

fn limitstore(args: &[&str]) -> (Output, Duration) {
    let dir = std::env::temp_dir();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_limitstore"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run limitstore");
    (out, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bad_flags_exit_2_at_once_with_a_message_and_no_output() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "--seconds", "inf"], "--seconds"),
        (&["bench", "--seconds", "1e20"], "--seconds"),
        (&["bench", "--seconds=-1"], "--seconds"),
        (&["bench", "--seconds", "NaN"], "--seconds"),
        (&["bench", "--threads", "0"], "--threads"),
        (
            &["bench", "--threads", "3000", "--seconds", "0.2"],
            "--threads",
        ),
        (&["bench", "--keys", "0"], "--keys"),
        (&["bench", "--storage", "nosuch://x"], "--storage"),
        (
            &["bench", "--storage", "redis://localhost:6379:6379"],
            "--storage",
        ),
        (
            &[
                "bench",
                "--storage",
                "memory://?max_entries=10&max_entries=20",
            ],
            "twice",
        ),
        (&["bench", "--limit", "lots"], "--limit"),
        (&["bench", "--limit", "2000000/second"], "moving-window"),
        (
            &[
                "bench",
                "--storage",
                "writebehind+memory://",
                "--strategies",
                "moving-window",
            ],
            "moving-window",
        ),
        (&["tune", "--rate", "0"], "--rate"),
        (&["tune", "--rate", "NaN"], "--rate"),
        (&["tune", "--rate", "inf"], "--rate"),
        (&["tune", "--rate=-5"], "--rate"),
        (&["tune", "--latency", "1000000s"], "--latency"),
        (&["tune", "--remote", "memory://?latency=1e9"], "latency"),
        (&["tune", "--latency", "5s", "--duration", "0.3"], "latency"),
        (&["tune", "--window", "100000000000"], "--window"),
        (&["tune", "--nodes", "0"], "--nodes"),
        (&["tune", "--limit", "0"], "--limit"),
        (&["tune", "--duration", "inf"], "--duration"),
        (&["tune", "--intervals", "0,3h"], "--intervals"),
        (&["tune", "--svg", "/nonexistent/x.svg"], "--svg"),
        (&["tune", "--remote", "nosuch://h:1"], "--remote"),
    ];
    for (args, names) in cases {
        let (out, took) = limitstore(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {}",
            text(&out.stdout)
        );
        assert!(
            err.contains(names),
            "{args:?}: `{err}` does not name {names}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    }
}

#[test]
fn what_once_panicked_or_hung_now_runs_to_its_end() {
    for args in [
        &[
            "tune",
            "--rate",
            "1e-300",
            "--duration",
            "0.2",
            "--intervals",
            "0,1ms",
            "--svg",
            "limitstore-cli-tiny-rate.svg",
        ][..],
        &[
            "bench",
            "--threads",
            "1024",
            "--seconds",
            "0.05",
            "--keys",
            "1",
            "--strategies",
            "fixed-window",
        ][..],
    ] {
        let (out, took) = limitstore(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
    }
}

#[test]
fn a_password_is_never_printed() {
    for args in [
        &["tune", "--remote", "redis://user:s3cr3t@127.0.0.1:bad"][..],
        &["bench", "--storage", "redis://user:s3cr3t@127.0.0.1:bad"][..],
        // Valid, but nothing listens: the run fails, and says where, without the secret.
        &[
            "bench",
            "--storage",
            "redis://user:s3cr3t@127.0.0.1:1?socket_connect_timeout=0.2",
            "--keys",
            "1",
            "--threads",
            "1",
            "--seconds",
            "0.01",
        ][..],
    ] {
        let (out, _) = limitstore(args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(!all.contains("s3cr3t"), "{args:?}: {all}");
        assert!(all.contains("127.0.0.1"), "{args:?}: {all}");
    }
}

#[test]
fn ctrl_c_during_tune_prints_the_finished_intervals_and_writes_the_chart() {
    let svg = std::env::temp_dir().join(format!("limitstore-cli-{}.svg", std::process::id()));
    let _ = std::fs::remove_file(&svg);
    let mut child = Command::new(env!("CARGO_BIN_EXE_limitstore"))
        .args([
            "tune",
            "--duration",
            "0.5",
            "--intervals",
            "0,1ms,10ms,100ms,1s",
            "--modes",
            "interval",
            "--svg",
        ])
        .arg(&svg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two intervals take about a second; five about two and a half.
    std::thread::sleep(Duration::from_millis(1300));
    servers::send_signal(child.id(), "INT");
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{out}\n{err}");
    assert!(out.contains("interrupted:"), "{out}");
    // About two intervals finish before the signal; fewer on a loaded
    // machine. The table holds exactly the finished ones.
    let said = out
        .split("interrupted: ")
        .nth(1)
        .and_then(|r| r.split(" of 5 runs finished").next())
        .and_then(|k| k.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(said <= 4, "{out}");
    let rows = out
        .lines()
        .skip_while(|l| !l.contains("remote op/s"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows, said, "{out}");
    assert!(err.ends_with('\n'), "the progress line is ended: {err:?}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("write-through"),
        "{chart}"
    );
    let _ = std::fs::remove_file(&svg);
}

/// The keys another application keeps on the server, with their values.
fn plant(conn: &mut redis::Connection) -> Vec<(String, String)> {
    let _: () = conn
        .set("LIMITS:LIMITER/prod-user/100/1/minute", "42")
        .unwrap();
    let _: () = conn
        .set("LIMITS:{LIMITER/prod-user/10/1/minute}", "7")
        .unwrap();
    let _: () = conn
        .hset(
            "LIMITS:wb:LIMITER/prod-user/100/1/minute/29000000",
            "web-1",
            "9",
        )
        .unwrap();
    let _: () = conn.set("limitstore-bench:not-mine", "1").unwrap();
    let _: () = conn.set("app:session", "alive").unwrap();
    dump(conn)
}

fn dump(conn: &mut redis::Connection) -> Vec<(String, String)> {
    let mut keys: Vec<String> = conn.keys("*").unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let kind: String = redis::cmd("TYPE").arg(&k).query(conn).unwrap();
            let value = if kind == "hash" {
                let h: Vec<(String, String)> = conn.hgetall(&k).unwrap();
                format!("{h:?}")
            } else {
                conn.get(&k).unwrap()
            };
            (k, value)
        })
        .collect()
}

#[test]
fn bench_and_tune_touch_no_key_they_did_not_write_on_redis() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let mut conn = server.connection();
    let before = plant(&mut conn);
    let url = server.url();
    let wb = format!("writebehind+{url}?sync_interval=0.01");
    let prefixed = format!("{url}?key_prefix=LIMITS");
    for storage in [&url, &wb, &prefixed] {
        let (out, _) = limitstore(&[
            "bench",
            "--storage",
            storage,
            "--keys",
            "1,200",
            "--threads",
            "1,2",
            "--seconds",
            "0.1",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{storage}: {}",
            text(&out.stderr)
        );
        assert_eq!(dump(&mut conn), before, "bench --storage {storage}");
    }
    let (out, _) = limitstore(&[
        "tune",
        "--remote",
        &url,
        "--duration",
        "0.2",
        "--intervals",
        "0,10ms",
        "--svg",
        "limitstore-cli-redis.svg",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(dump(&mut conn), before, "tune --remote {url}");
}

#[cfg(feature = "memcached")]
#[test]
fn bench_and_tune_touch_no_key_they_did_not_write_on_memcached() {
    require_or_skip!("memcached");
    let server = servers::memcached::Memcached::tcp();
    server.set("LIMITER/prod-user/100/1/minute", "42", 0);
    server.set("other-app", "alive", 0);
    let uri = server.uri();
    // Plain, and behind write-behind nodes (whose slots, membership items,
    // registries and incarnation marker would be left otherwise).
    let behind = format!("writebehind+{uri}?sync_interval=0.02");
    for storage in [uri.as_str(), behind.as_str()] {
        let (out, _) = limitstore(&[
            "bench",
            "--storage",
            storage,
            "--keys",
            "1,50",
            "--threads",
            "2",
            "--seconds",
            "0.1",
            "--strategies",
            "fixed-window,sliding-window-counter",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            server.get("LIMITER/prod-user/100/1/minute").as_deref(),
            Some("42")
        );
        assert_eq!(server.get("other-app").as_deref(), Some("alive"));
        assert_eq!(
            server.curr_items(),
            2,
            "bench on {storage} left keys behind"
        );
    }
    let (out, _) = limitstore(&[
        "tune",
        "--remote",
        &uri,
        "--duration",
        "0.2",
        "--intervals",
        "0,10ms",
        "--svg",
        "limitstore-cli-memcached.svg",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.curr_items(), 2, "tune left keys behind");
}
