//! Memory per key and resident memory under a flood of distinct keys.
//!
//! - Bytes per fixed-window key, per sliding-window key and per moving-window
//!   slot: the heap the memory engine holds after `n` distinct keys, counted
//!   by a counting global allocator, divided by `n` (and by the limit, for
//!   moving-window slots). Keys are stored as 128-bit hashes, so the user's
//!   key bytes are not part of it.
//! - RSS under a flood of 10M distinct keys into a storage with
//!   `max_entries = 100_000`: resident memory sampled every million keys
//!   must stay flat once the table is full.
//!
//! Run with `cargo bench --bench memory` (prints a table; about 20 s).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use limitstore::{MemoryStorage, Storage};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged, only
// counting the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Key `i` in a fixed-size buffer, so building keys allocates nothing.
fn key(buf: &mut String, i: u64) -> &str {
    use std::fmt::Write;
    buf.clear();
    write!(buf, "LIMITER/user-{i}/100/1/minute").expect("write to string");
    buf
}

/// Heap bytes per entry after `n` distinct keys go through `touch`.
fn per_key(n: u64, touch: impl Fn(&MemoryStorage, &str)) -> f64 {
    let mut buf = String::with_capacity(64);
    let before = live();
    let storage = MemoryStorage::builder().max_entries(n as usize * 2).build();
    let empty = live();
    for i in 0..n {
        touch(&storage, key(&mut buf, i));
    }
    let used = live() - empty;
    drop(storage);
    assert!(live() <= before + 4096, "the storage frees what it held");
    used as f64 / n as f64
}

fn main() {
    // The flood runs first, so that RSS is not inflated by the larger
    // measurements below (freed heap stays mapped).
    flood();
    println!();
    let target = 100.0;
    println!("| measure | keys | bytes |");
    println!("| --- | ---: | ---: |");
    for n in [100_000u64, 1_000_000] {
        let fixed = per_key(n, |s, k| {
            s.incr(k, 60, false, 1).expect("incr");
        });
        println!("| fixed-window counter, per key | {n} | {fixed:.1} |");
        if n == 1_000_000 {
            let verdict = if fixed <= target { "met" } else { "NOT met" };
            println!("| (target: <= {target} bytes per fixed-window key: {verdict}) | | |");
        }
    }
    let sliding = per_key(1_000_000, |s, k| {
        let sw = s.sliding_window().expect("sliding windows");
        sw.acquire_sliding_window_entry(k, 100, 60, 1)
            .expect("acquire");
    });
    println!("| sliding-window counter, per key | 1000000 | {sliding:.1} |");
    for limit in [10u64, 100] {
        let n = 100_000;
        let per_window = per_key(n, |s, k| {
            let mw = s.moving_window().expect("moving windows");
            mw.acquire_entry(k, limit, 60, 1).expect("acquire");
        });
        println!(
            "| moving window of limit {limit}, per slot ({per_window:.0} per key) | {n} | {:.1} |",
            per_window / limit as f64
        );
    }
}

fn flood() {
    // The flood: 10M distinct keys into a table bounded at 100k entries.
    let storage = MemoryStorage::builder().max_entries(100_000).build();
    let mut buf = String::with_capacity(64);
    let start = Instant::now();
    let mut samples = Vec::new();
    for i in 0..10_000_000u64 {
        storage.incr(key(&mut buf, i), 60, false, 1).expect("incr");
        if (i + 1) % 1_000_000 == 0 {
            samples.push((i + 1, rss(), live()));
        }
    }
    let elapsed = start.elapsed();
    println!("Flood: 10M distinct keys, max_entries = 100000, {elapsed:.2?}");
    println!();
    println!("| keys so far | RSS (MiB) | heap held (MiB) |");
    println!("| ---: | ---: | ---: |");
    let mib = |b: f64| b / (1024.0 * 1024.0);
    for (keys, rss, heap) in &samples {
        println!(
            "| {keys} | {:.1} | {:.1} |",
            mib(*rss as f64),
            mib(*heap as f64)
        );
    }
    let rss_values: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let (lo, hi) = (
        *rss_values.iter().min().unwrap_or(&0),
        *rss_values.iter().max().unwrap_or(&0),
    );
    println!();
    println!(
        "RSS from 1M to 10M keys: {:.1}..{:.1} MiB (spread {:.1} MiB); entries held: {}",
        mib(lo as f64),
        mib(hi as f64),
        mib((hi - lo) as f64),
        storage.len()
    );
}
