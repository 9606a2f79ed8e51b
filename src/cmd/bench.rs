//! `limitstore bench`: hits per second of each strategy, for a few key-set
//! sizes and thread counts, on any storage URI.
//!
//! A run hits only keys of its own namespace (`limitstore-bench-<random>`,
//! under a key prefix of its own where the backend has one) and deletes
//! them after each case: keys of other applications on the same server are
//! never read, written or deleted.

use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use limitstore::storage::redact;
use limitstore::write_behind::tune::unique_namespace;
use limitstore::{
    limiter_for, parse, storage_from_string, RateLimitItem, RateLimiter, Result, Storage, Strategy,
    MAX_MOVING_WINDOW_LIMIT,
};

use super::{interrupted, parse_uri, scope, usage, usage_of, Cleanup, Failure, Outcome, Scope};

/// The most threads one case may start.
pub const MAX_THREADS: usize = 1024;
/// The largest key set.
pub const MAX_KEYS: usize = 10_000_000;
/// The longest case, in seconds.
pub const MAX_SECONDS: f64 = 3600.0;
/// The shortest case, in seconds.
pub const MIN_SECONDS: f64 = 0.01;

/// Options of `limitstore bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
The run works only on keys of its own: a namespace `limitstore-bench-<random>` \
(under the key prefix `<prefix>:limitstore-bench-<random>` on Redis, \
`<prefix>/limitstore-bench-<random>` on etcd), and deletes exactly those \
keys after each case. Keys of other applications on the same server are \
never touched. A run killed outright leaves its keys to expire with their \
window; Ctrl-C stops it cleanly.")]
pub struct Args {
    /// Storage URI.
    #[arg(long, default_value = "memory://")]
    storage: String,
    /// The rate limit every identity gets.
    #[arg(long, default_value = "100/second")]
    limit: String,
    /// Numbers of distinct identities to spread hits over (comma-separated,
    /// 1 to 10,000,000).
    #[arg(long, value_delimiter = ',', default_value = "1,100000")]
    keys: Vec<usize>,
    /// Numbers of threads hitting at once (comma-separated, 1 to 1024).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Strategies to measure (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<Strategy>,
    /// Seconds to measure each case (0.01 to 3600).
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

/// A checked command line.
pub struct Plan {
    uri: String,
    scope: Scope,
    item: RateLimitItem,
    keys: Vec<usize>,
    threads: Vec<usize>,
    strategies: Vec<Strategy>,
    /// Left out: the storage lacks what they need.
    unsupported: Vec<Strategy>,
    seconds: f64,
}

fn in_range(flag: &str, values: &[usize], max: usize) -> std::result::Result<(), Failure> {
    if values.is_empty() || values.iter().any(|&v| v == 0 || v > max) {
        return usage(format!(
            "{flag} takes numbers between 1 and {max}, comma-separated"
        ));
    }
    Ok(())
}

/// Checks every flag; touches no storage (building one does not connect).
pub fn plan(args: &Args) -> std::result::Result<Plan, Failure> {
    if !(args.seconds.is_finite() && (MIN_SECONDS..=MAX_SECONDS).contains(&args.seconds)) {
        return usage(format!(
            "--seconds must be a number of seconds between {MIN_SECONDS} and {MAX_SECONDS}"
        ));
    }
    in_range("--keys", &args.keys, MAX_KEYS)?;
    in_range("--threads", &args.threads, MAX_THREADS)?;
    let tag = unique_namespace("limitstore-bench");
    let item = parse(&args.limit)
        .map_err(|e| usage_of("--limit", e))?
        .with_namespace(tag.clone());
    let scope = scope(&parse_uri("--storage", &args.storage)?, &tag);
    let storage =
        storage_from_string(&args.storage, &scope.options).map_err(|e| usage_of("--storage", e))?;
    // Without --strategies, every strategy the storage supports; a named
    // one it does not support is an error.
    let named = !args.strategies.is_empty();
    let mut strategies = Vec::new();
    let mut unsupported = Vec::new();
    for strategy in if named {
        args.strategies.clone()
    } else {
        Strategy::ALL.to_vec()
    } {
        if strategy == Strategy::MovingWindow && item.amount() > MAX_MOVING_WINDOW_LIMIT {
            return usage(format!(
                "--limit: the {strategy} strategy takes limits up to {MAX_MOVING_WINDOW_LIMIT}, \
                 not {}; leave it out with --strategies",
                item.amount()
            ));
        }
        match limiter_for(strategy, storage.clone()) {
            Ok(_) => strategies.push(strategy),
            Err(e) if named => return usage(format!("--strategies {strategy}: {e}")),
            Err(_) => unsupported.push(strategy),
        }
    }
    Ok(Plan {
        uri: args.storage.clone(),
        scope,
        item,
        keys: args.keys.clone(),
        threads: args.threads.clone(),
        strategies,
        unsupported,
        seconds: args.seconds,
    })
}

struct Counts {
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

/// Hits `ids` from `threads` threads for `run_for`, all starting together;
/// `None` when Ctrl-C cut the case short.
///
/// The threads time themselves: the first one past the start line fixes
/// the start, and each stops at the shared deadline. With many more threads
/// than cores, a coordinating thread would wait for a core of its own to
/// start or stop the case.
fn hammer(
    limiter: &dyn RateLimiter,
    item: &RateLimitItem,
    ids: &[String],
    threads: usize,
    run_for: Duration,
) -> Result<Option<Counts>> {
    let ready = Barrier::new(threads);
    let start = OnceLock::new();
    let per_thread: Vec<Result<(u64, u64, Instant)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, start) = (&ready, &start);
                s.spawn(move || {
                    let (mut hits, mut admitted) = (0u64, 0u64);
                    let mut i = t * ids.len() / threads;
                    ready.wait();
                    let deadline = *start.get_or_init(Instant::now) + run_for;
                    loop {
                        let now = Instant::now();
                        if now >= deadline || interrupted() {
                            return Ok((hits, admitted, now));
                        }
                        for _ in 0..64 {
                            i = if i + 1 >= ids.len() { 0 } else { i + 1 };
                            admitted += u64::from(limiter.hit(item, &[&ids[i]], 1)?);
                        }
                        hits += 64;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let start = *start.get().expect("every thread passed the start line");
    let mut counts = Counts {
        hits: 0,
        admitted: 0,
        elapsed: Duration::ZERO,
    };
    for r in per_thread {
        let (h, a, finished) = r?;
        counts.hits += h;
        counts.admitted += a;
        counts.elapsed = counts.elapsed.max(finished - start);
    }
    Ok((!interrupted()).then_some(counts))
}

/// Deletes what a case wrote.
fn clean_up(
    plan: &Plan,
    storage: &dyn Storage,
    limiter: &dyn RateLimiter,
    ids: &[String],
    threads: usize,
) -> Result<()> {
    match plan.scope.cleanup {
        Cleanup::Drop => Ok(()),
        Cleanup::ResetOwnPrefix => storage.reset().map(drop),
        Cleanup::EachKey => std::thread::scope(|s| {
            let chunk = ids.len().div_ceil(threads);
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .try_for_each(|id| limiter.clear(&plan.item, &[id]))
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().expect("clean-up thread panicked"))
        }),
    }
}

/// One case on a fresh storage, cleaned up after, whatever happened.
fn case(plan: &Plan, strategy: Strategy, keys: usize, threads: usize) -> Result<Option<Counts>> {
    let storage: Arc<dyn Storage> = storage_from_string(&plan.uri, &plan.scope.options)?;
    let limiter = limiter_for(strategy, storage.clone())?;
    let ids = identities(keys);
    let run_for = Duration::from_secs_f64(plan.seconds);
    let counts = hammer(&*limiter, &plan.item, &ids, threads, run_for);
    let cleaned = clean_up(plan, &*storage, &*limiter, &ids, threads);
    let counts = counts?;
    cleaned.map_err(|e| {
        limitstore::Error::storage_msg(
            "bench",
            format!("deleting the case's keys failed (they expire with their window): {e:#}"),
        )
    })?;
    Ok(counts)
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

/// Runs a checked command line and prints one row per case.
pub fn run(plan: &Plan) -> std::result::Result<Outcome, Failure> {
    println!(
        "storage {}  limit {}  {} s per case  ({} hardware threads)",
        redact(&plan.uri),
        plan.item,
        plan.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for strategy in &plan.unsupported {
        println!("{strategy}: left out, the storage does not support it");
    }
    println!(
        "{:<30} {:>8} {:>8} {:>12} {:>12} {:>9}",
        "strategy", "keys", "threads", "hits/s", "ns/hit", "admitted"
    );
    for &strategy in &plan.strategies {
        for &keys in &plan.keys {
            for &threads in &plan.threads {
                let counts = case(plan, strategy, keys, threads).map_err(|e| {
                    limitstore::Error::storage_msg(
                        "bench",
                        format!("{strategy}, {keys} keys, {threads} threads: {e:#}"),
                    )
                })?;
                let Some(o) = counts else {
                    println!("interrupted: the unfinished case is left out, its keys deleted");
                    return Ok(Outcome::Interrupted);
                };
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
    Ok(Outcome::Done)
}
