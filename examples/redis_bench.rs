//! Hits per second of each strategy-level operation on a Redis storage.
//!
//! ```text
//! cargo run --release --example redis_bench -- redis://127.0.0.1:6379 16 5
//! ```
//!
//! Arguments: storage URI, threads, seconds per operation. Each thread calls
//! the operation in a loop on its own key (one key per thread and operation), and the total is divided by the elapsed time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use limitstore::{storage_from_string, Options, Storage};

/// One operation under test: returns whether the call succeeded.
type Op = fn(&dyn Storage, &str) -> bool;

fn run(name: &str, storage: &Arc<dyn Storage>, threads: usize, secs: f64, op: Op) -> f64 {
    let stop = AtomicBool::new(false);
    let hits = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, hits, storage) = (&stop, &hits, storage.clone());
            s.spawn(move || {
                let key = format!("bench/{name}/{t}");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert!(op(&*storage, &key), "a hit was refused or failed");
                    n += 1;
                }
                hits.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    hits.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let uri = args
        .first()
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let threads: usize = args.get(1).map_or(1, |a| a.parse().expect("threads"));
    let secs: f64 = args.get(2).map_or(3.0, |a| a.parse().expect("seconds"));
    let storage = storage_from_string(
        &uri,
        &Options::new().with("max_connections", threads.max(1) as i64),
    )
    .expect("storage");
    storage.reset().expect("reset");
    let ops: [(&str, Op); 3] = [
        ("incr", |s, k| s.incr(k, 3600, false, 1).is_ok()),
        ("acquire_entry", |s, k| {
            s.moving_window()
                .unwrap()
                .acquire_entry(k, 100, 1, 1)
                .is_ok()
        }),
        ("acquire_sliding_window_entry", |s, k| {
            s.sliding_window()
                .unwrap()
                .acquire_sliding_window_entry(k, 1 << 40, 3600, 1)
                .is_ok()
        }),
    ];
    for (name, op) in ops {
        let rate = run(name, &storage, threads, secs, op);
        println!("{name:<30} threads={threads:<3} {rate:>10.0} hits/s");
    }
    storage.reset().expect("reset");
}
