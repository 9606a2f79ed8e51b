//! `limitstore tune`: measure what each sync interval costs in accuracy and
//! saves in remote load.
//!
//! [`run_tune`] starts, for each interval, N simulated nodes (threads, each
//! its own [`WriteBehind`] with its own node id) against one remote, all
//! hitting one key of a fixed-window limit: `{namespace}/{index}`, in the
//! run's own [`namespace`](TuneConfig::namespace), cleared on the remote
//! when the interval ends. Nothing else on the remote is read or deleted. Each hit is timed with the real
//! clock and counted in the window the node counted it in; afterwards, per
//! window, admissions beyond the limit are over-admission and demand under
//! the limit that was refused is under-admission.
//!
//! The measured worst window is compared with the bound of
//! `research/peers-and-write-behind.md` §3: with a remaining budget B at
//! the last sync and node rates r_i, one staleness period T admits at most
//! `E = max(0, Σ min(B, r_i·T) − B)` beyond the limit, maximised here over
//! B ∈ [0, L]. A node's view of the others is at most two sync periods old
//! (its own last read, and the others' last reports), so T = 2 × (interval
//! + mean remote round trip), as for Gubernator's `2·GlobalSyncWait + 2 RTT`.
//!
//! ```
//! use std::ops::ControlFlow;
//! use std::time::Duration;
//! use limitstore::write_behind::tune::{run_tune, TuneConfig};
//! let mut config = TuneConfig::default();
//! config.nodes = 2;
//! config.limit = 20;
//! config.duration = Duration::from_millis(100);
//! config.intervals = vec![Duration::ZERO, Duration::from_millis(10)];
//! let report = run_tune(&config, &mut |_| ControlFlow::Continue(())).unwrap();
//! assert_eq!(report.rows[0].over_admitted, 0);
//! println!("{report}");
//! assert!(report.to_svg().starts_with("<svg"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::{MemoryRemote, SyncTarget, WriteBehind};
use crate::clock::SystemClock;
use crate::error::{Error, Result};

/// What to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TuneConfig {
    /// Simulated nodes (threads), each its own write-behind instance.
    pub nodes: usize,
    /// The limit per window.
    pub limit: u64,
    /// The window length in seconds.
    pub window: u64,
    /// How long each interval runs.
    pub duration: Duration,
    /// Hits per second per node; `None` hits as fast as possible.
    pub rate: Option<f64>,
    /// The sync intervals to measure; zero is write-through.
    pub intervals: Vec<Duration>,
    /// Injected round-trip latency of the default embedded remote.
    pub latency: Duration,
    /// The remote to use instead of an embedded [`MemoryRemote`]. Only the
    /// keys of [`namespace`](Self::namespace) are written there, and they
    /// are cleared after each interval.
    pub remote: Option<Arc<dyn SyncTarget>>,
    /// The first segment of every key the run writes; unique per
    /// [`TuneConfig::default`] (see [`unique_namespace`]).
    pub namespace: String,
}

/// `{prefix}-{16 hex digits}`, different on every call: a key namespace
/// no other run (or application) uses.
///
/// ```
/// use limitstore::write_behind::tune::unique_namespace;
/// let a = unique_namespace("limitstore-tune");
/// assert!(a.starts_with("limitstore-tune-") && a.len() == "limitstore-tune-".len() + 16);
/// assert_ne!(a, unique_namespace("limitstore-tune"));
/// ```
pub fn unique_namespace(prefix: &str) -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // RandomState is seeded from the OS once per process and varies per
    // instance; the pid, the time and a counter separate runs and calls.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128((crate::clock::wall_now() * 1e9) as u128);
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}-{:016x}", h.finish())
}

impl Default for TuneConfig {
    /// 4 nodes, 1000 per 1 s window, 3 s per interval, as fast as possible,
    /// intervals 0, 1 ms, 10 ms, 100 ms, 1 s, an embedded remote with 100 µs latency.
    fn default() -> Self {
        TuneConfig {
            nodes: 4,
            limit: 1000,
            window: 1,
            duration: Duration::from_secs(3),
            rate: None,
            intervals: [0, 1, 10, 100, 1000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            latency: Duration::from_micros(100),
            remote: None,
            namespace: unique_namespace("limitstore-tune"),
        }
    }
}

/// Where a run is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneProgress {
    /// Index of the interval being measured.
    pub index: usize,
    /// Number of intervals.
    pub of: usize,
    /// The interval being measured.
    pub interval: Duration,
    /// Fraction of the whole run done, 0 to 1.
    pub done: f64,
}

/// The measurements of one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneRow {
    /// The sync interval (zero: write-through).
    pub interval: Duration,
    /// Hits attempted, all nodes.
    pub attempts: u64,
    /// Hits admitted (answered with a count within the limit).
    pub admitted: u64,
    /// Windows the run touched (the first and last are usually partial).
    pub windows: u64,
    /// Admissions beyond the limit, summed over windows.
    pub over_admitted: u64,
    /// The largest over-admission of one window.
    pub worst_window_over: u64,
    /// `over_admitted / (limit × windows)`, in percent.
    pub over_pct: f64,
    /// Refused hits that fit under the limit (`min(attempts, limit) − admitted` per window), summed.
    pub under_admitted: u64,
    /// `under_admitted / (limit × windows)`, in percent.
    pub under_pct: f64,
    /// Remote calls per second, all nodes.
    pub remote_ops_per_sec: f64,
    /// Hits per second, all nodes.
    pub hits_per_sec: f64,
    /// Mean remote round trip.
    pub mean_rtt: Duration,
    /// Median hit latency.
    pub p50: Duration,
    /// 99th percentile hit latency.
    pub p99: Duration,
    /// The bound on one window's over-admission (see the module docs).
    pub bound: u64,
}

impl TuneRow {
    /// Whether the worst window stayed within the bound.
    pub fn within_bound(&self) -> bool {
        self.worst_window_over <= self.bound
    }
}

/// The result of [`run_tune`]: one row per interval.
#[derive(Debug, Clone)]
pub struct TuneReport {
    /// Nodes simulated.
    pub nodes: usize,
    /// Limit per window.
    pub limit: u64,
    /// Window length in seconds.
    pub window: u64,
    /// One row per interval finished, in the order given.
    pub rows: Vec<TuneRow>,
    /// Whether the progress callback stopped the run before its last
    /// interval finished (the unfinished interval has no row).
    pub interrupted: bool,
}

/// The over-admission bound of one staleness period `t` for node rates
/// `rates` (hits/s) and limit `limit`: `max over B in [0, limit] of
/// max(0, Σ min(B, r_i·t) − B)`. The expression is piecewise linear in B,
/// so its maximum lies at B = limit or at some r_i·t.
///
/// ```
/// use std::time::Duration;
/// use limitstore::write_behind::tune::over_admission_bound;
/// // Four nodes far faster than the limit: (N−1)·L.
/// assert_eq!(over_admission_bound(&[1e9; 4], 1000, Duration::from_millis(10)), 3000);
/// // Write-through: nothing.
/// assert_eq!(over_admission_bound(&[1e9; 4], 1000, Duration::ZERO), 0);
/// // Two nodes of 100/s over 1 s, limit 1000: at most min(B, 100) twice, minus B.
/// assert_eq!(over_admission_bound(&[100.0, 100.0], 1000, Duration::from_secs(1)), 100);
/// ```
pub fn over_admission_bound(rates: &[f64], limit: u64, t: Duration) -> u64 {
    let t = t.as_secs_f64();
    let limit = limit as f64;
    let excess = |b: f64| {
        let sum: f64 = rates.iter().map(|r| b.min(r * t)).sum();
        (sum - b).max(0.0)
    };
    rates
        .iter()
        .map(|r| r * t)
        .filter(|&b| b <= limit)
        .chain([limit])
        .map(excess)
        .fold(0.0, f64::max)
        .ceil() as u64
}

struct NodeResult {
    /// window -> (attempts, admitted)
    windows: BTreeMap<u64, (u64, u64)>,
    latency: Histogram,
    attempts: u64,
    remote_calls: u64,
    remote_time: Duration,
}

fn run_node(
    node: &WriteBehind,
    key: &str,
    config: &TuneConfig,
    started: Instant,
    stop: &AtomicBool,
) -> Result<NodeResult> {
    let mut res = NodeResult {
        windows: BTreeMap::new(),
        latency: Histogram::new(),
        attempts: 0,
        remote_calls: 0,
        remote_time: Duration::ZERO,
    };
    let pace = config.rate.filter(|r| r.is_finite() && *r > 0.0);
    let end = config.duration.as_secs_f64();
    while !stop.load(Ordering::Relaxed) {
        let now = started.elapsed();
        if now >= config.duration {
            break;
        }
        if let Some(rate) = pace {
            // In seconds as a float: a tiny rate puts the next hit far
            // beyond any Duration.
            let due = res.attempts as f64 / rate;
            if due >= end {
                break;
            }
            let wait = due - now.as_secs_f64();
            if wait > 0.0 {
                // Woken at least every 50 ms to notice `stop`.
                std::thread::sleep(Duration::from_secs_f64(wait.min(0.05)));
                continue;
            }
        }
        let t0 = Instant::now();
        let (window, count) = node.incr_in_window(key, config.window, 1)?;
        res.latency.record(t0.elapsed());
        res.attempts += 1;
        let w = res.windows.entry(window).or_default();
        w.0 += 1;
        if count <= config.limit {
            w.1 += 1;
        }
    }
    Ok(res)
}

fn run_interval(
    config: &TuneConfig,
    target: &Arc<dyn SyncTarget>,
    index: usize,
    interval: Duration,
    progress: &mut dyn FnMut(&TuneProgress) -> ControlFlow<()>,
) -> Result<Option<TuneRow>> {
    let key = format!("{}/{index}", config.namespace);
    let measured = measure_interval(config, target, &key, index, interval, progress);
    // The interval's key is the run's own: delete it whatever happened.
    let cleared = target.clear(&key);
    let row = measured?;
    cleared?;
    Ok(row)
}

fn measure_interval(
    config: &TuneConfig,
    target: &Arc<dyn SyncTarget>,
    key: &str,
    index: usize,
    interval: Duration,
    progress: &mut dyn FnMut(&TuneProgress) -> ControlFlow<()>,
) -> Result<Option<TuneRow>> {
    let clock = SystemClock::new();
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(config.nodes + 1);
    let results: Vec<Result<NodeResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.nodes)
            .map(|n| {
                let (clock, barrier, stop) = (clock.clone(), &barrier, &stop);
                scope.spawn(move || {
                    let started = WriteBehind::builder(target.clone())
                        .node_id(format!("tune-{n}"))
                        .sync_interval(interval)
                        .clock(clock)
                        .start();
                    barrier.wait();
                    let handle = started?;
                    let begin = Instant::now();
                    let mut res = run_node(&handle, key, config, begin, stop)?;
                    handle.flush()?;
                    let stats = handle.stats();
                    res.remote_calls = stats.remote_calls;
                    res.remote_time = stats.remote_time;
                    Ok(res)
                })
            })
            .collect();
        barrier.wait();
        let begin = Instant::now();
        let total = config.intervals.len().max(1) as f64;
        while handles.iter().any(|h| !h.is_finished()) {
            let part =
                (begin.elapsed().as_secs_f64() / config.duration.as_secs_f64().max(1e-9)).min(1.0);
            let asked = progress(&TuneProgress {
                index,
                of: config.intervals.len(),
                interval,
                done: (index as f64 + part) / total,
            });
            if asked.is_break() {
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::storage_msg("tune", "a node thread panicked")))
            })
            .collect()
    });
    let results = results.into_iter().collect::<Result<Vec<_>>>()?;
    if stop.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let elapsed = config.duration.as_secs_f64().max(1e-9);

    let mut windows: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut latency = Histogram::new();
    let (mut calls, mut remote_time, mut rates) = (0, Duration::ZERO, Vec::new());
    for r in &results {
        for (w, (a, d)) in &r.windows {
            let e = windows.entry(*w).or_default();
            e.0 += a;
            e.1 += d;
        }
        latency.merge(&r.latency);
        calls += r.remote_calls;
        remote_time += r.remote_time;
        rates.push(r.attempts as f64 / elapsed);
    }
    let limit = config.limit;
    let attempts: u64 = windows.values().map(|w| w.0).sum();
    let admitted: u64 = windows.values().map(|w| w.1).sum();
    let over: Vec<u64> = windows
        .values()
        .map(|w| w.1.saturating_sub(limit))
        .collect();
    let under: u64 = windows
        .values()
        .map(|w| w.0.min(limit).saturating_sub(w.1))
        .sum();
    let n_windows = windows.len() as u64;
    let capacity = (limit * n_windows.max(1)) as f64;
    let mean_rtt = if calls == 0 {
        Duration::ZERO
    } else {
        remote_time / u32::try_from(calls).unwrap_or(u32::MAX)
    };
    let staleness = if interval.is_zero() {
        Duration::ZERO
    } else {
        2 * (interval + mean_rtt)
    };
    let over_admitted: u64 = over.iter().sum();
    Ok(Some(TuneRow {
        interval,
        attempts,
        admitted,
        windows: n_windows,
        over_admitted,
        worst_window_over: over.iter().copied().max().unwrap_or(0),
        over_pct: 100.0 * over_admitted as f64 / capacity,
        under_admitted: under,
        under_pct: 100.0 * under as f64 / capacity,
        remote_ops_per_sec: calls as f64 / elapsed,
        hits_per_sec: attempts as f64 / elapsed,
        mean_rtt,
        p50: latency.quantile(0.50),
        p99: latency.quantile(0.99),
        bound: over_admission_bound(&rates, limit, staleness),
    }))
}

/// Runs every interval of `config` in turn; calls `progress` about 20 times
/// a second. When `progress` answers [`ControlFlow::Break`], the interval
/// under way stops within about 50 ms and is left out, and the report of
/// the finished ones comes back with [`interrupted`](TuneReport::interrupted) set.
pub fn run_tune(
    config: &TuneConfig,
    progress: &mut dyn FnMut(&TuneProgress) -> ControlFlow<()>,
) -> Result<TuneReport> {
    if config.nodes == 0 || config.limit == 0 || config.window == 0 {
        return Err(Error::invalid_argument(
            "tune needs at least one node, a limit and a window of at least 1",
        ));
    }
    if config.intervals.is_empty() || config.duration.is_zero() {
        return Err(Error::invalid_argument(
            "tune needs at least one interval and a non-zero duration",
        ));
    }
    let target: Arc<dyn SyncTarget> = match &config.remote {
        Some(t) => t.clone(),
        None => Arc::new(MemoryRemote::new().with_latency(config.latency)),
    };
    let mut report = TuneReport {
        nodes: config.nodes,
        limit: config.limit,
        window: config.window,
        rows: Vec::with_capacity(config.intervals.len()),
        interrupted: false,
    };
    for (i, &interval) in config.intervals.iter().enumerate() {
        match run_interval(config, &target, i, interval, progress)? {
            Some(row) => report.rows.push(row),
            None => {
                report.interrupted = true;
                return Ok(report);
            }
        }
    }
    // The last call says 100%; the run is over, so its answer changes nothing.
    let _ = progress(&TuneProgress {
        index: config.intervals.len().saturating_sub(1),
        of: config.intervals.len(),
        interval: *config.intervals.last().expect("not empty"),
        done: 1.0,
    });
    Ok(report)
}

/// Formats a duration compactly: `0`, `850ns`, `12.3µs`, `10ms`, `1s`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (v, unit) = if ns == 0.0 {
        return "0".into();
    } else if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s}{unit}")
}

impl fmt::Display for TuneReport {
    /// The table `limitstore tune` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} nodes, limit {} per {} s window, one shared key",
            self.nodes, self.limit, self.window
        )?;
        writeln!(
            f,
            "{:>9} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>8} {:>11} {:>9} {:>9} {:>10} {:>6}",
            "interval",
            "admitted",
            "windows",
            "over",
            "over%",
            "worst/win",
            "bound",
            "under%",
            "remote op/s",
            "hit p50",
            "hit p99",
            "hits/s",
            "ok"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>9} {:>10} {:>8} {:>10} {:>7.2}% {:>10} {:>8} {:>7.2}% {:>11.0} {:>9} {:>9} {:>10.0} {:>6}",
                format_duration(r.interval),
                r.admitted,
                r.windows,
                r.over_admitted,
                r.over_pct,
                r.worst_window_over,
                r.bound,
                r.under_pct,
                r.remote_ops_per_sec,
                format_duration(r.p50),
                format_duration(r.p99),
                r.hits_per_sec,
                if r.within_bound() { "yes" } else { "NO" }
            )?;
        }
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl TuneReport {
    /// An SVG chart: over-admission (% of the limit, mean per window) and
    /// its bound against the sync interval on a logarithmic axis, with
    /// write-through (interval 0) placed one decade left of the smallest
    /// positive interval.
    pub fn to_svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 20.0, 40.0, 60.0);
        let positive: Vec<f64> = self
            .rows
            .iter()
            .map(|r| r.interval.as_secs_f64())
            .filter(|&s| s > 0.0)
            .collect();
        let min_pos = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let max_pos = positive.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if positive.is_empty() {
            (-1.0, 0.0)
        } else {
            (
                min_pos.log10() - 1.0,
                max_pos.log10().max(min_pos.log10() + 1.0),
            )
        };
        let x = |secs: f64| {
            let l = if secs > 0.0 { secs.log10() } else { lo };
            left + (l - lo) / (hi - lo) * (w - left - right)
        };
        let capacity = |r: &TuneRow| (self.limit * r.windows.max(1)) as f64;
        let bound_pct = |r: &TuneRow| 100.0 * (r.bound * r.windows.max(1)) as f64 / capacity(r);
        let ymax = self
            .rows
            .iter()
            .flat_map(|r| [r.over_pct, bound_pct(r).min(100.0 * self.nodes as f64)])
            .fold(1.0, f64::max)
            * 1.1;
        let y = |pct: f64| top + (1.0 - pct / ymax) * (h - top - bottom);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">Over-admission vs sync interval ({} nodes, limit {} per {} s)</text>\n",
            w / 2.0,
            self.nodes,
            self.limit,
            self.window
        );
        // Axes and grid.
        s += &format!(
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
            h - bottom,
            w - right,
            h - bottom,
            h - bottom
        );
        for i in 0..=5 {
            let pct = ymax * i as f64 / 5.0;
            let yy = y(pct);
            s += &format!(
                "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{pct:.1}%</text>\n",
                w - right,
                left - 6.0,
                yy + 4.0
            );
        }
        for r in &self.rows {
            let xx = x(r.interval.as_secs_f64());
            let label = if r.interval.is_zero() {
                "0 (write-through)".to_string()
            } else {
                format_duration(r.interval)
            };
            s += &format!(
                "<line x1=\"{xx:.1}\" y1=\"{}\" x2=\"{xx:.1}\" y2=\"{}\" stroke=\"black\"/>\n<text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                h - bottom,
                h - bottom + 5.0,
                h - bottom + 20.0,
                escape(&label)
            );
        }
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">sync interval (log scale)</text>\n\
             <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">admitted beyond the limit (% of limit, per window)</text>\n",
            (left + w - right) / 2.0,
            h - 18.0,
            (top + h - bottom) / 2.0,
            (top + h - bottom) / 2.0
        );
        let series = |pts: Vec<(f64, f64)>, colour: &str, dash: &str| {
            let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let mut out = format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>\n",
                path.join(" ")
            );
            for (a, b) in &pts {
                out +=
                    &format!("<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3.5\" fill=\"{colour}\"/>\n");
            }
            out
        };
        s += &series(
            self.rows
                .iter()
                .map(|r| (x(r.interval.as_secs_f64()), y(bound_pct(r).min(ymax))))
                .collect(),
            "#999",
            " stroke-dasharray=\"6 4\"",
        );
        s += &series(
            self.rows
                .iter()
                .map(|r| (x(r.interval.as_secs_f64()), y(r.over_pct)))
                .collect(),
            "#c0392b",
            "",
        );
        s += &format!(
            "<rect x=\"{}\" y=\"{}\" width=\"220\" height=\"44\" fill=\"white\" stroke=\"#999\"/>\n\
             <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#c0392b\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">measured (mean per window)</text>\n\
             <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{}\">bound per window</text>\n",
            left + 10.0, top + 4.0,
            left + 18.0, top + 18.0, left + 42.0, top + 18.0, left + 48.0, top + 22.0,
            left + 18.0, top + 36.0, left + 42.0, top + 36.0, left + 48.0, top + 40.0,
        );
        s += "</svg>\n";
        s
    }
}
