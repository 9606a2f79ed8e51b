//! `limitstore bench`: hits per second of each strategy, for a few key-set
//! sizes and thread counts, on any storage URI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use limitstore::{limiter_for, parse, storage_from_string, Options, Result, Strategy};

/// Options of `limitstore bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Storage URI.
    #[arg(long, default_value = "memory://")]
    storage: String,
    /// The rate limit every identity gets.
    #[arg(long, default_value = "100/second")]
    limit: String,
    /// Numbers of distinct identities to spread hits over (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,100000")]
    keys: Vec<usize>,
    /// Numbers of threads hitting at once (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Strategies to measure (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<Strategy>,
    /// Seconds to measure each case.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

struct Outcome {
    hits: u64,
    admitted: u64,
    elapsed: Duration,
}

fn identities(n: usize) -> Vec<String> {
    // Scattered, so consecutive hits land on unrelated keys.
    (0..n as u64)
        .map(|i| format!("user-{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16))
        .collect()
}

fn measure(args: &Args, strategy: Strategy, keys: usize, threads: usize) -> Result<Outcome> {
    let item = parse(&args.limit)?;
    let storage = storage_from_string(&args.storage, &Options::new())?;
    storage.reset()?;
    let limiter = limiter_for(strategy, storage)?;
    let ids = identities(keys.max(1));
    let stop = AtomicBool::new(false);
    let run_for = Duration::from_secs_f64(args.seconds.max(0.01));
    let start = Instant::now();
    let per_thread: Vec<Result<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|t| {
                let (ids, limiter, item, stop) = (&ids, &limiter, &item, &stop);
                s.spawn(move || -> Result<(u64, u64)> {
                    let (mut hits, mut admitted) = (0u64, 0u64);
                    let mut i = t * ids.len() / threads.max(1);
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..1024 {
                            i = if i + 1 >= ids.len() { 0 } else { i + 1 };
                            admitted += u64::from(limiter.hit(item, &[&ids[i]], 1)?);
                        }
                        hits += 1024;
                    }
                    Ok((hits, admitted))
                })
            })
            .collect();
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let elapsed = start.elapsed();
    let mut outcome = Outcome {
        hits: 0,
        admitted: 0,
        elapsed,
    };
    for r in per_thread {
        let (h, a) = r?;
        outcome.hits += h;
        outcome.admitted += a;
    }
    Ok(outcome)
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// Runs the benchmark and prints one row per case.
pub fn run(args: &Args) -> Result<()> {
    let strategies = if args.strategies.is_empty() {
        Strategy::ALL.to_vec()
    } else {
        args.strategies.clone()
    };
    println!(
        "storage {}  limit {}  {} s per case  ({} hardware threads)",
        args.storage,
        args.limit,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<30} {:>8} {:>8} {:>12} {:>12} {:>9}",
        "strategy", "keys", "threads", "hits/s", "ns/hit", "admitted"
    );
    for strategy in strategies {
        for &keys in &args.keys {
            for &threads in &args.threads {
                let o = measure(args, strategy, keys, threads)?;
                let secs = o.elapsed.as_secs_f64();
                let ns_per_hit = secs * 1e9 * threads as f64 / o.hits.max(1) as f64;
                println!(
                    "{:<30} {:>8} {:>8} {:>12} {:>12.1} {:>8.1}%",
                    strategy.to_string(),
                    keys,
                    threads,
                    human(o.hits as f64 / secs),
                    ns_per_hit,
                    100.0 * o.admitted as f64 / o.hits.max(1) as f64
                );
            }
        }
    }
    Ok(())
}
