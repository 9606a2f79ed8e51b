//! Write-behind nodes on a real `redis-server`, reached through a
//! fault-injecting TCP proxy written here: connections cut, the link
//! stalled, replies dropped after the server applied the write, and the
//! server killed and restarted. After recovery the remote total is exactly
//! the number of hits the nodes accepted.
#![cfg(feature = "redis")]

#[macro_use]
mod servers;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use limitstore::write_behind::{Report, SyncTarget, WriteBehind, WriteBehindHandle};
use limitstore::{storage_from_string, Options, RedisStorage, Storage};
use servers::{Config, Server};

/// A TCP proxy in front of one upstream port, with switches.
struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    /// New connections are closed at once, as if the port were closed.
    refuse: AtomicBool,
    /// Nothing is forwarded in either direction while set.
    stall: AtomicBool,
    /// Replies from the server are discarded and the connection is cut:
    /// the server applied the command, the client never hears of it.
    drop_replies: AtomicBool,
    /// Replies dropped so far.
    dropped: AtomicU64,
    /// Open client-side sockets, to cut them.
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if st.refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                st.open.lock().unwrap().push(client.try_clone().unwrap());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (a, b) = (st.clone(), st.clone());
                std::thread::spawn(move || pump(client, server, &a, false));
                std::thread::spawn(move || pump(s2, c2, &b, true));
            }
        });
        Proxy { port, state }
    }

    /// Closes every open connection (clients see a reset or EOF).
    fn cut(&self) {
        for s in self.state.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn set(&self, switch: &AtomicBool, on: bool) {
        switch.store(on, Ordering::SeqCst);
    }

    fn url(&self, query: &str) -> String {
        format!("redis://127.0.0.1:{}?{query}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` until either side closes; `replies` marks the
/// server-to-client direction.
fn pump(mut from: TcpStream, mut to: TcpStream, st: &ProxyState, replies: bool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while st.stall.load(Ordering::SeqCst) && !st.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if replies && st.drop_replies.load(Ordering::SeqCst) {
            st.dropped.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

const QUERY: &str = "socket_timeout=0.3&socket_connect_timeout=0.3&key_prefix=WBT";
const EXPIRY: u64 = 3600;

fn nodes(proxy: &Proxy, n: usize, interval: Duration) -> Vec<WriteBehindHandle> {
    (0..n)
        .map(|i| {
            let remote = Arc::new(RedisStorage::new(&proxy.url(QUERY)).unwrap());
            WriteBehind::builder(remote)
                .node_id(format!("node-{i}"))
                .sync_interval(interval)
                .max_backoff(Duration::from_millis(100))
                .start()
                .unwrap()
        })
        .collect()
}

/// The global total of `key`'s current window, read straight from the server.
fn remote_total(server: &Server, key: &str, window: u64) -> u64 {
    let direct = RedisStorage::new(&format!("{}?{QUERY}", server.url())).unwrap();
    let read = Report {
        key,
        window,
        expiry: EXPIRY,
        node: "reader",
        total: 0,
    };
    direct.sync(&[read]).unwrap()[0]
}

fn flush_until_delivered(nodes: &[WriteBehindHandle]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in nodes {
        while let Err(e) = n.flush() {
            assert!(Instant::now() < deadline, "never recovered: {e}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(n.stats().pending_keys, 0);
    }
}

#[test]
fn a_lost_reply_is_retried_without_double_counting() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let proxy = Proxy::start(server.port);
    let node = nodes(&proxy, 1, Duration::from_secs(3600)).remove(0);
    // Connect and load the script first, so the reply dropped is the sync's.
    let (w, _) = node.incr_in_window("k", EXPIRY, 2).unwrap();
    node.flush().unwrap();
    node.incr("k", EXPIRY, false, 5).unwrap();
    proxy.set(&proxy.state.drop_replies, true);
    assert!(node.flush().is_err());
    assert!(proxy.state.dropped.load(Ordering::SeqCst) >= 1);
    // The server applied the write; the node does not know it.
    assert_eq!(remote_total(&server, "k", w), 7);
    assert_eq!(node.stats().pending_keys, 1);
    proxy.set(&proxy.state.drop_replies, false);
    node.incr("k", EXPIRY, false, 1).unwrap();
    node.flush().unwrap();
    assert_eq!(remote_total(&server, "k", w), 8);
    assert_eq!(node.get("k").unwrap(), 8);
}

#[test]
fn several_writers_through_cuts_stalls_lost_replies_and_a_restart_total_exactly() {
    require_or_skip!("redis-server");
    let mut server = Server::redis(Config::default());
    let proxy = Proxy::start(server.port);
    let nodes = nodes(&proxy, 3, Duration::from_millis(20));
    let keys = ["a", "b", "c"];
    let accepted = AtomicU64::new(0);
    let window = AtomicU64::new(0);
    let running = AtomicBool::new(true);
    std::thread::scope(|s| {
        for node in &nodes {
            let (accepted, window, running) = (&accepted, &window, &running);
            s.spawn(move || {
                let mut i = 0usize;
                while running.load(Ordering::SeqCst) {
                    let (w, _) = node.incr_in_window(keys[i % 3], EXPIRY, 1).unwrap();
                    window.store(w, Ordering::SeqCst);
                    accepted.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
                // Every node hits every key after the faults: its next report
                // carries its whole cumulative total again.
                for k in keys {
                    node.incr(k, EXPIRY, false, 1).unwrap();
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let phase = Duration::from_millis(300);
        std::thread::sleep(phase);
        proxy.cut();
        std::thread::sleep(phase);
        proxy.set(&proxy.state.refuse, true);
        proxy.cut();
        std::thread::sleep(phase);
        proxy.set(&proxy.state.refuse, false);
        std::thread::sleep(phase);
        proxy.set(&proxy.state.stall, true);
        std::thread::sleep(phase * 2);
        proxy.set(&proxy.state.stall, false);
        std::thread::sleep(phase);
        proxy.set(&proxy.state.drop_replies, true);
        std::thread::sleep(phase);
        proxy.set(&proxy.state.drop_replies, false);
        std::thread::sleep(phase);
        // Killed and restarted without persistence: the server forgets all.
        server.restart();
        std::thread::sleep(phase);
        running.store(false, Ordering::SeqCst);
    });
    flush_until_delivered(&nodes);
    let errors: u64 = nodes.iter().map(|n| n.stats().errors).sum();
    assert!(errors > 0, "the faults were noticed");
    assert!(
        proxy.state.dropped.load(Ordering::SeqCst) > 0,
        "replies were dropped"
    );
    let w = window.load(Ordering::SeqCst);
    let total: u64 = keys.iter().map(|k| remote_total(&server, k, w)).sum();
    assert_eq!(total, accepted.load(Ordering::SeqCst));
    // Each node's view converges on the global count.
    for n in &nodes {
        n.incr("a", EXPIRY, false, 1).unwrap();
        n.flush().unwrap();
    }
    let a = remote_total(&server, "a", w);
    assert_eq!(nodes[2].get("a").unwrap(), a);
}

#[test]
fn writebehind_redis_uri_is_write_through_at_interval_zero() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let uri = format!(
        "writebehind+redis://127.0.0.1:{}?sync_interval=0&node_id=u&key_prefix=WBU",
        server.port
    );
    let a = storage_from_string(&uri, &Options::new()).unwrap();
    let b = storage_from_string(&uri.replace("node_id=u", "node_id=v"), &Options::new()).unwrap();
    assert_eq!(a.incr("k", 60, false, 2).unwrap(), 2);
    assert_eq!(b.incr("k", 60, false, 3).unwrap(), 5);
    assert_eq!(a.get("k").unwrap(), 5);
    a.clear("k").unwrap();
    assert_eq!(b.get("k").unwrap(), 3, "b's own total is reported again");
    let e = storage_from_string(
        &format!("writebehind+redis://127.0.0.1:{}?colour=blue", server.port),
        &Options::new(),
    )
    .unwrap_err();
    assert!(e.is_configuration(), "{e}");
}

#[test]
fn write_through_on_redis_is_exact_across_nodes() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let remote = Arc::new(RedisStorage::new(&format!("{}?{QUERY}", server.url())).unwrap());
    let nodes: Vec<_> = (0..4)
        .map(|i| {
            WriteBehind::builder(remote.clone())
                .node_id(format!("wt-{i}"))
                .sync_interval(Duration::ZERO)
                .start()
                .unwrap()
        })
        .collect();
    let barrier = std::sync::Barrier::new(100);
    let admitted = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|t| {
                let (node, barrier) = (&nodes[t % 4], &barrier);
                s.spawn(move || {
                    barrier.wait();
                    node.incr("conc", EXPIRY, false, 1).unwrap() <= 5
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(admitted, 5);
    let (w, count) = nodes[1].incr_in_window("conc", EXPIRY, 1).unwrap();
    assert_eq!(count, 101);
    assert_eq!(remote_total(&server, "conc", w), 101);
}

#[test]
fn tune_against_redis_is_exact_in_write_through() {
    use limitstore::write_behind::tune::{run_tune, TuneConfig};
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let remote = Arc::new(RedisStorage::new(&format!("{}?{QUERY}", server.url())).unwrap());
    let mut config = TuneConfig::default();
    config.nodes = 2;
    config.limit = 30;
    config.duration = Duration::from_millis(600);
    config.intervals = vec![Duration::ZERO, Duration::from_millis(50)];
    config.remote = Some(remote);
    let report = run_tune(&config, &mut |_| std::ops::ControlFlow::Continue(())).unwrap();
    let exact = &report.rows[0];
    assert_eq!(
        (exact.over_admitted, exact.under_admitted),
        (0, 0),
        "{report}"
    );
    assert!(exact.admitted >= config.limit, "{report}");
    let behind = &report.rows[1];
    assert!(
        behind.remote_ops_per_sec < exact.remote_ops_per_sec,
        "{report}"
    );
    assert!(behind.within_bound(), "{report}");
}

/// The remote forgets everything twice — `FLUSHDB`, then SIGKILL and a
/// restart without persistence — while three nodes hold 3,000 keys that are
/// not hit again: each node notices the new incarnation marker and re-sends
/// its windows, so every key's remote total is again exactly the hits
/// accepted.
#[test]
fn a_remote_that_lost_its_data_is_made_whole_for_keys_not_hit_again() {
    require_or_skip!("redis-server");
    let mut server = Server::redis(Config::default());
    let proxy = Proxy::start(server.port);
    let nodes = nodes(&proxy, 3, Duration::from_millis(20));
    let keys: Vec<String> = (0..3000).map(|i| format!("key-{i}")).collect();
    let mut accepted = vec![0u64; keys.len()];
    let mut window = 0;
    for (i, key) in keys.iter().enumerate() {
        // Every key on one node, a third of them on all three.
        let on: &[usize] = if i % 3 == 0 { &[0, 1, 2] } else { &[i % 3] };
        for &n in on {
            let amount = 1 + (i % 5) as u64;
            let (w, _) = nodes[n].incr_in_window(key, EXPIRY, amount).unwrap();
            window = w;
            accepted[i] += amount;
        }
    }
    let whole = |server: &Server, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let wrong = keys
                .iter()
                .zip(&accepted)
                .filter(|(k, &a)| remote_total(server, k, window) != a)
                .count();
            if wrong == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {wrong} of {} keys still wrong",
                keys.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    whole(&server, "first delivery");
    let mut conn = server.connection();
    redis::cmd("FLUSHDB").query::<()>(&mut conn).unwrap();
    whole(&server, "after FLUSHDB");
    server.restart();
    whole(&server, "after a restart without persistence");
    for n in &nodes {
        assert_eq!(n.stats().remote_data_losses, 2, "{:?}", n.stats());
    }
}

/// Three nodes hit 2,000 keys while the server goes through every fault in
/// turn — SIGSTOP for 8 s, `DEBUG SLEEP` past the socket timeout (replies
/// lost), `CLIENT PAUSE`, SIGKILL and a restart without persistence,
/// `FLUSHDB` — with hits going on throughout (after the flush on half of the
/// keys only) and 30 s windows, so a window
/// may roll over mid-fault. Afterwards every (key, window) live at the last
/// flush holds on the server exactly the hits the nodes accepted, and no
/// window holds more.
#[test]
fn three_nodes_through_every_server_fault_total_exactly_per_key_and_window() {
    require_or_skip!("redis-server");
    const EXPIRY: u64 = 30;
    let mut server = Server::redis(Config {
        args: vec!["--enable-debug-command".into(), "yes".into()],
        ..Config::default()
    });
    let url = format!("redis://127.0.0.1:{}?{QUERY}", server.port);
    let nodes: Vec<WriteBehindHandle> = (0..3)
        .map(|i| {
            WriteBehind::builder(Arc::new(RedisStorage::new(&url).unwrap()))
                .node_id(format!("node-{i}"))
                .sync_interval(Duration::from_millis(20))
                .max_backoff(Duration::from_millis(200))
                .start()
                .unwrap()
        })
        .collect();
    let keys: Vec<String> = (0..2000).map(|i| format!("fault-{i}")).collect();
    let running = AtomicBool::new(true);
    let accepted: Mutex<std::collections::HashMap<(usize, u64), u64>> = Mutex::default();
    let unix_window = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / EXPIRY
    };
    // The window live when the server last forgot everything: it and later
    // ones must come back whole.
    let flushed = AtomicU64::new(0);
    // After the flush only the first half of the keys is hit again.
    let span = std::sync::atomic::AtomicUsize::new(keys.len());
    let faults = |server: &mut Server| {
        let healthy = Duration::from_millis(700);
        let addr = servers::Addr::Tcp(server.port);
        std::thread::sleep(healthy);
        server.signal("STOP");
        std::thread::sleep(Duration::from_secs(8));
        server.signal("CONT");
        std::thread::sleep(healthy);
        // The sleeping server answers nobody for 1 s; replies of calls it
        // took before come after the clients' 0.3 s timeout.
        let sleeper = std::thread::spawn(move || {
            let _ = servers::raw_command(&addr, "DEBUG SLEEP 1");
        });
        std::thread::sleep(Duration::from_millis(1500));
        sleeper.join().unwrap();
        std::thread::sleep(healthy);
        let reply = servers::raw_command(&servers::Addr::Tcp(server.port), "CLIENT PAUSE 1000 ALL")
            .unwrap();
        assert!(reply.starts_with("+OK"), "{reply}");
        std::thread::sleep(Duration::from_millis(1500));
        server.restart();
        std::thread::sleep(healthy);
        let mut conn = server.connection();
        flushed.store(unix_window(), Ordering::SeqCst);
        span.store(keys.len() / 2, Ordering::SeqCst);
        redis::cmd("FLUSHDB").query::<()>(&mut conn).unwrap();
        std::thread::sleep(healthy);
    };
    std::thread::scope(|s| {
        for (n, node) in nodes.iter().enumerate() {
            let (keys, running, accepted, span) = (&keys, &running, &accepted, &span);
            s.spawn(move || {
                let mut i = n * 7919;
                while running.load(Ordering::SeqCst) {
                    let k = i % span.load(Ordering::Relaxed);
                    let amount = 1 + (i % 3) as u64;
                    let (w, _) = node.incr_in_window(&keys[k], EXPIRY, amount).unwrap();
                    *accepted.lock().unwrap().entry((k, w)).or_default() += amount;
                    i += 13;
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
        }
        faults(&mut server);
        running.store(false, Ordering::SeqCst);
    });
    flush_until_delivered(&nodes);
    let flushed = flushed.load(Ordering::SeqCst);
    let direct = RedisStorage::new(&url).unwrap();
    let accepted = accepted.into_inner().unwrap();
    let (mut exact, mut ended) = (0, 0);
    for (&(k, w), &hits) in &accepted {
        let read = Report {
            key: &keys[k],
            window: w,
            expiry: EXPIRY,
            node: "reader",
            total: 0,
        };
        let total = direct.sync(&[read]).unwrap()[0];
        if w >= flushed {
            assert_eq!(total, hits, "key {} window {w}", keys[k]);
            exact += 1;
        } else {
            // A window that ended before the flush may have been let go
            // (its hits can no longer affect a limit); never over-counted.
            assert!(
                total <= hits,
                "key {} window {w}: {total} > {hits}",
                keys[k]
            );
            ended += 1;
        }
    }
    assert!(
        exact > 1000,
        "{exact} live (key, window) pairs checked, {ended} ended"
    );
}

/// The deadlock reproducer of the embedded remote's test, over Redis: the
/// port closed (every connection refused), more than `batch_size` keys
/// pending and two threads creating new keys while sync passes fail. Every
/// hit finishes, and once the port opens every key is delivered.
#[test]
fn an_outage_with_many_new_keys_over_a_closed_port_does_not_deadlock() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let proxy = Proxy::start(server.port);
    proxy.set(&proxy.state.refuse, true);
    let remote = Arc::new(RedisStorage::new(&proxy.url(QUERY)).unwrap());
    let node = Arc::new(
        WriteBehind::builder(remote)
            .node_id("closed-port")
            .sync_interval(Duration::from_millis(1))
            .batch_size(100)
            .max_backoff(Duration::from_millis(20))
            .start()
            .unwrap(),
    );
    const KEYS: u64 = 20_000;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..2 {
        let (node, done) = (node.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let (window, _) = node
                .incr_in_window(&format!("closed-{t}/0"), EXPIRY, 1)
                .unwrap();
            for i in 1..KEYS {
                node.incr(&format!("closed-{t}/{i}"), EXPIRY, false, 1)
                    .unwrap();
            }
            done.send(window).unwrap();
        });
    }
    let windows: Vec<u64> = (0..2)
        .map(|_| {
            done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("hits finish while the port is closed")
        })
        .collect();
    assert!(node.stats().errors > 0, "the remote was unreachable");
    assert_eq!(node.stats().keys, 2 * KEYS);
    proxy.set(&proxy.state.refuse, false);
    flush_until_delivered(std::slice::from_ref(&*node));
    let direct = RedisStorage::new(&format!("{}?{QUERY}", server.url())).unwrap();
    for (t, &window) in windows.iter().enumerate() {
        let reports: Vec<String> = (0..KEYS).map(|i| format!("closed-{t}/{i}")).collect();
        let totals = direct
            .sync(
                &reports
                    .iter()
                    .map(|key| Report {
                        key,
                        window,
                        expiry: EXPIRY,
                        node: "reader",
                        total: 0,
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert!(totals.iter().all(|&n| n == 1), "thread {t}: a key was lost");
    }
}
