//! Hits per second and latency percentiles of each storage operation on any
//! storage URI: a remote backend, a write-behind node over one, or memory.
//!
//! ```text
//! cargo run --release --all-features --example remote_bench -- redis://127.0.0.1:6379 16 5
//! cargo run --release --all-features --example remote_bench -- 'writebehind+redis://127.0.0.1:6379?sync_interval=0.01' 4 5
//! ```
//!
//! Arguments: storage URI, threads, seconds per operation. Each thread calls
//! the operation in a loop on its own key (one key per thread and
//! operation); hits/s is the total divided by the elapsed time, and p50/p99
//! are over every call's latency. Operations the storage lacks (a moving
//! window on Memcached or etcd) are skipped. `scripts/bench-remotes.sh`
//! starts every server on loopback and runs this against each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use limitstore::{storage_from_string, Options, Storage};

/// One operation under test: returns whether the call succeeded.
type Op = fn(&dyn Storage, &str) -> bool;

/// Per-thread latency samples kept at most (the rest are counted only).
const MAX_SAMPLES: usize = 1 << 20;

struct Outcome {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn run(name: &str, storage: &Arc<dyn Storage>, threads: usize, secs: f64, op: Op) -> Outcome {
    let stop = AtomicBool::new(false);
    let samples: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let calls = Mutex::new(0u64);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, samples, calls, storage) = (&stop, &samples, &calls, storage.clone());
            s.spawn(move || {
                let key = format!("bench/{name}/{t}");
                let mut mine = Vec::with_capacity(1 << 16);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    assert!(op(&*storage, &key), "{name}: a call was refused or failed");
                    if mine.len() < MAX_SAMPLES {
                        mine.push(at.elapsed().as_nanos() as u64);
                    }
                    n += 1;
                }
                samples.lock().unwrap().extend(mine);
                *calls.lock().unwrap() += n;
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut samples = samples.into_inner().unwrap();
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
        Duration::from_nanos(samples.get(i).copied().unwrap_or(0))
    };
    let calls = calls.into_inner().unwrap();
    Outcome {
        rate: calls as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let uri = args
        .first()
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let threads: usize = args.get(1).map_or(1, |a| a.parse().expect("threads"));
    let secs: f64 = args.get(2).map_or(3.0, |a| a.parse().expect("seconds"));
    let storage = storage_from_string(&uri, &Options::new()).expect("storage");
    // Some backends cannot list their keys (Memcached); fresh keys suffice.
    let _ = storage.reset();
    let ops: [(&str, Op, bool); 3] = [
        ("incr", |s, k| s.incr(k, 3600, false, 1).is_ok(), true),
        (
            "acquire_entry",
            |s, k| {
                s.moving_window()
                    .is_some_and(|w| w.acquire_entry(k, 100, 1, 1).is_ok())
            },
            storage.moving_window().is_some(),
        ),
        (
            "acquire_sliding_window_entry",
            |s, k| {
                s.sliding_window()
                    .is_some_and(|w| w.acquire_sliding_window_entry(k, 1 << 40, 3600, 1).is_ok())
            },
            storage.sliding_window().is_some(),
        ),
    ];
    for (name, op, supported) in ops {
        if !supported {
            continue;
        }
        let o = run(name, &storage, threads, secs, op);
        println!(
            "{name:<30} threads={threads:<3} {:>10.0} hits/s p50={:.1}us p99={:.1}us",
            o.rate,
            o.p50.as_secs_f64() * 1e6,
            o.p99.as_secs_f64() * 1e6
        );
    }
    let _ = storage.reset();
}
