//! How long a hit can wait while another thread fills the table.
//!
//! One thread hits 64 keys over and over and times every call; another
//! thread floods the same storage with distinct new keys. A full shard
//! makes room (expired entries first, then the least recently used
//! eighth), and a shard that is not yet full grows; a hit on a key of that
//! shard waits for whatever part of that work holds the shard's exclusive
//! lock. A write-behind node over the embedded memory remote is flooded the
//! same way, with two-second windows: once a second it drops the keys whose
//! windows are over, one shard at a time under its exclusive lock. Prints,
//! per case, the hit's latency percentiles and maximum.
//!
//! Run with `cargo bench --bench pauses` (about 30 s). The maximum includes
//! whatever the operating system does to the timing thread, so read it
//! beside the p99.99.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use limitstore::write_behind::{MemoryRemote, WriteBehind};
use limitstore::{MemoryStorage, Storage};

/// Latencies below this many nanoseconds are counted one per nanosecond;
/// longer ones are kept as they are.
const EXACT: usize = 4096;

#[derive(Default)]
struct Latencies {
    short: Vec<u64>,
    long: Vec<u64>,
    count: u64,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            short: vec![0; EXACT],
            ..Default::default()
        }
    }

    fn record(&mut self, ns: u64) {
        self.count += 1;
        match self.short.get_mut(ns as usize) {
            Some(n) => *n += 1,
            None => self.long.push(ns),
        }
    }

    /// The latency below which a `q` share of the calls fell.
    fn quantile(&mut self, q: f64) -> u64 {
        let rank = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count.max(1));
        let mut seen = 0;
        for (ns, n) in self.short.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ns as u64;
            }
        }
        self.long.sort_unstable();
        let i = (rank - seen - 1) as usize;
        self.long.get(i).copied().unwrap_or(0)
    }

    fn max(&self) -> u64 {
        self.long
            .iter()
            .copied()
            .max()
            .unwrap_or_else(|| self.short.iter().rposition(|&n| n > 0).unwrap_or(0) as u64)
    }
}

fn key(buf: &mut String, prefix: &str, i: u64) {
    use std::fmt::Write;
    buf.clear();
    write!(buf, "LIMITER/{prefix}-{i}/100/1/minute").expect("write to string");
}

/// Floods `flood` distinct keys with windows of `expiry` seconds into
/// `storage` while a second thread hits 64 keys; returns the second
/// thread's latencies.
fn case(storage: &impl Storage, flood: u64, expiry: u64) -> (Latencies, Duration) {
    let mut buf = String::with_capacity(64);
    let hot: Vec<String> = (0..64)
        .map(|i| {
            key(&mut buf, "hot", i);
            buf.clone()
        })
        .collect();
    for k in &hot {
        storage.incr(k, expiry, false, 1).expect("incr");
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let flooder = s.spawn(|| {
            let mut buf = String::with_capacity(64);
            let start = Instant::now();
            for i in 0..flood {
                key(&mut buf, "flood", i);
                storage.incr(&buf, expiry, false, 1).expect("incr");
            }
            done.store(true, Ordering::Relaxed);
            start.elapsed()
        });
        let mut lat = Latencies::new();
        let mut i = 0usize;
        while !done.load(Ordering::Relaxed) {
            let k = &hot[i % hot.len()];
            let start = Instant::now();
            storage.incr(k, expiry, false, 1).expect("incr");
            lat.record(start.elapsed().as_nanos() as u64);
            i += 1;
        }
        (lat, flooder.join().expect("flooder"))
    })
}

fn main() {
    println!("| table | max_entries | keys flooded | flood | hits timed | p50 | p99 | p99.9 | p99.99 | max |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let fmt = |ns: u64| {
        if ns >= 1_000_000 {
            format!("{:.1} ms", ns as f64 / 1e6)
        } else if ns >= 1_000 {
            format!("{:.1} µs", ns as f64 / 1e3)
        } else {
            format!("{ns} ns")
        }
    };
    let row = |table: &str,
               max_entries: usize,
               flood: u64,
               (mut lat, took): (Latencies, Duration)| {
        let [p50, p99, p999, p9999] = [0.5, 0.99, 0.999, 0.9999].map(|q| fmt(lat.quantile(q)));
        println!(
            "| {table} | {max_entries} | {flood} | {took:.2?} | {} | {p50} | {p99} | {p999} | {p9999} | {} |",
            lat.count,
            fmt(lat.max()),
        );
    };
    let flood = 4_000_000;
    for max_entries in [131_072, 1_048_576, 8_388_608] {
        let storage = MemoryStorage::builder().max_entries(max_entries).build();
        row("memory", max_entries, flood, case(&storage, flood, 60));
    }
    let max_entries = 4_194_304;
    let node = WriteBehind::builder(Arc::new(MemoryRemote::new()))
        .max_entries(max_entries)
        .sync_interval(Duration::from_millis(100))
        .start()
        .expect("node");
    row(
        "write-behind",
        max_entries,
        flood,
        case(&*node.storage(), flood, 2),
    );
}
