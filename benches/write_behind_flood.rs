//! A write-behind node under a flood of new keys while its remote is down:
//! resident memory (RSS) as 10 million keys never seen before hit a node
//! with `max_entries = 100_000` whose remote stays down throughout (every
//! key it holds has undelivered hits, so none may be dropped). The memory
//! engine's own flood is in `benches/memory.rs`.
//!
//! Run with `cargo bench --bench write_behind_flood` (or `-- 1000000` for
//! fewer keys). It prints RSS, the keys held and the hits the node could
//! not record at each checkpoint, then brings the remote back and checks
//! that every recorded hit was delivered. Before the flood it times hits on
//! keys the node holds with the remote up and then down (p50, p99, p99.9).
//! After the flood, 100,000 keys with one-second windows are hit once per
//! window through a 60-window outage (a fake clock): RSS stays flat, since
//! a key keeps only the windows whose remote slots still live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use limitstore::write_behind::{FailurePolicy, MemoryRemote, WriteBehind};
use limitstore::{FakeClock, FixedWindowRateLimiter, RateLimitItem, RateLimiter};

const MAX_ENTRIES: usize = 100_000;

/// Resident memory of this process, in MiB (`VmRSS` of `/proc/self/status`).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn checkpoints(keys: u64) -> Vec<u64> {
    let mut marks: Vec<u64> = [100_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000]
        .into_iter()
        .filter(|&m| m < keys)
        .collect();
    marks.push(keys);
    marks
}

/// Hits `keys` new keys once each through `limiter`, printing RSS (and
/// `extra`) at each checkpoint.
fn flood(limiter: &dyn RateLimiter, keys: u64, extra: &dyn Fn() -> String) {
    let item = RateLimitItem::per_hour(10).expect("valid item");
    let started = Instant::now();
    println!(
        "{:>12} {:>10} {:>9}  state",
        "new keys", "RSS MiB", "seconds"
    );
    println!("{:>12} {:>10.1} {:>9.2}  {}", 0, rss_mib(), 0.0, extra());
    let mut next = 0;
    let marks = checkpoints(keys);
    let mut id = String::new();
    for i in 0..keys {
        id.clear();
        id.push_str("flood-");
        id.push_str(&i.to_string());
        // Answered by the failure policy once the table is full: open.
        limiter.hit(&item, &[&id], 1).expect("hit");
        if i + 1 == marks[next] {
            println!(
                "{:>12} {:>10.1} {:>9.2}  {}",
                i + 1,
                rss_mib(),
                started.elapsed().as_secs_f64(),
                extra()
            );
            next += 1;
        }
    }
}

fn write_behind_part(keys: u64) {
    println!("write-behind node, remote down, max_entries {MAX_ENTRIES}");
    let remote = Arc::new(MemoryRemote::new());
    remote.set_down(true);
    let node = WriteBehind::builder(remote.clone())
        .sync_interval(Duration::from_millis(100))
        .failure_policy(FailurePolicy::Open)
        .max_entries(MAX_ENTRIES)
        .max_backoff(Duration::from_millis(200))
        .start()
        .expect("node");
    let limiter = FixedWindowRateLimiter::new(node.storage());
    let state = || {
        let s = node.stats();
        format!("held {}, unrecorded {}", s.keys, s.unrecorded_hits)
    };
    flood(&limiter, keys, &state);
    let stats = node.stats();
    let recorded = keys - stats.unrecorded_hits;
    remote.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.stats().pending_keys > 0 && Instant::now() < deadline {
        let _ = node.flush();
    }
    let window = limitstore::Storage::unix_now(&*node.storage()) as u64 / 3600;
    let delivered: u64 = (0..recorded)
        .map(|i| remote.total(&format!("LIMITER/flood-{i}/10/1/hour"), window))
        .sum();
    println!(
        "remote back: {recorded} recorded hits, {delivered} delivered, {} keys still pending",
        node.stats().pending_keys
    );
    assert_eq!(delivered, recorded, "every recorded hit is delivered");
}

/// Hit latency on keys the node holds, with the remote up and then down:
/// p50, p99 and p99.9 of single hits (each timed with `Instant`, whose own
/// cost is in every figure alike).
fn outage_latency() {
    println!("hit latency on 10,000 held keys, remote up, then down (ns)");
    let remote = Arc::new(MemoryRemote::new().with_latency(Duration::from_micros(100)));
    let node = WriteBehind::builder(remote.clone())
        .sync_interval(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(100))
        .start()
        .expect("node");
    let limiter = FixedWindowRateLimiter::new(node.storage());
    let item = RateLimitItem::per_hour(1 << 40).expect("valid item");
    let ids: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let phase = |name: &str| {
        let mut times: Vec<u32> = Vec::with_capacity(2_000_000);
        for round in 0..200 {
            for id in &ids {
                let started = Instant::now();
                std::hint::black_box(limiter.hit(&item, &[id], 1).expect("hit"));
                if round > 0 {
                    times.push(started.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                }
            }
        }
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "{name:>12}: p50 {:>6}  p99 {:>6}  p99.9 {:>7}  max {:>9}",
            at(0.5),
            at(0.99),
            at(0.999),
            times[times.len() - 1]
        );
    };
    phase("remote up");
    remote.set_down(true);
    // A pending hit makes the next pass call the remote, and fail.
    let errors = node.stats().errors;
    limiter.hit(&item, &[&ids[0]], 1).expect("hit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.stats().errors == errors {
        assert!(
            Instant::now() < deadline,
            "no pass failed with the remote down"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    phase("remote down");
    assert!(
        node.stats().errors > errors + 1,
        "passes kept failing throughout"
    );
    remote.set_down(false);
}

/// 100,000 held keys hit once per one-second window through an outage
/// of 60 windows (on a fake clock), then the remote comes back: RSS, the
/// hits dropped with windows the remote had forgotten, and the last
/// window delivered exactly.
fn long_outage() {
    const KEYS: usize = 100_000;
    const WINDOWS: u64 = 60;
    println!("{KEYS} held keys, one hit each per 1 s window, remote down for {WINDOWS} windows");
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    remote.set_down(true);
    let node = WriteBehind::builder(remote.clone())
        .clock(clock.clone())
        .sync_interval(Duration::from_millis(100))
        .max_backoff(Duration::from_millis(200))
        .max_entries(2 * KEYS)
        .start()
        .expect("node");
    let limiter = FixedWindowRateLimiter::new(node.storage());
    let item = RateLimitItem::per_second(10).expect("valid item");
    let ids: Vec<String> = (0..KEYS).map(|i| format!("held-{i}")).collect();
    println!("{:>8} {:>10}  state", "windows", "RSS MiB");
    for w in 1..=WINDOWS {
        for id in &ids {
            limiter.hit(&item, &[id], 1).expect("hit");
        }
        if [1, 10, 30, 60].contains(&w) {
            let s = node.stats();
            println!(
                "{w:>8} {:>10.1}  held {}, forgotten hits {}",
                rss_mib(),
                s.keys,
                s.forgotten_hits
            );
        }
        if w < WINDOWS {
            clock.advance(Duration::from_secs(1));
        }
    }
    remote.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while node.stats().pending_keys > 0 && Instant::now() < deadline {
        let _ = node.flush();
    }
    let window = limitstore::Storage::unix_now(&*node.storage()) as u64;
    let delivered: u64 = ids
        .iter()
        .map(|id| remote.total(&format!("LIMITER/{id}/10/1/second"), window))
        .sum();
    println!(
        "remote back: {delivered} of {KEYS} hits of the last window delivered, {} keys still pending",
        node.stats().pending_keys
    );
    assert_eq!(
        delivered, KEYS as u64,
        "the live window is delivered exactly"
    );
}

fn main() {
    let keys = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(10_000_000)
        .max(1);
    outage_latency();
    println!();
    write_behind_part(keys);
    println!();
    long_outage();
}
