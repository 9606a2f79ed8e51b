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
    /// The modes measured at each positive interval (write-through is
    /// measured once, at interval 0).
    pub modes: Vec<TuneMode>,
    /// `max_unsynced` of [`TuneMode::BudgetSplitMaxUnsynced`]; by default
    /// a tenth of a node's fair share, `max(1, limit / (10 × nodes))`.
    pub max_unsynced: Option<u64>,
    /// The fraction of the whole load that node 0 offers (with
    /// [`rate`](Self::rate): the nodes together offer `rate × nodes`);
    /// `None`: every node offers `rate`.
    pub skew: Option<f64>,
}

/// How the nodes of a run reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TuneMode {
    /// Plain write-behind: each node admits against the global count of its
    /// last sync plus its own hits since.
    Interval,
    /// [Budget split](super::WriteBehindBuilder::budget_split).
    BudgetSplit,
    /// Budget split with [`max_unsynced`](super::WriteBehindBuilder::max_unsynced).
    BudgetSplitMaxUnsynced,
}

impl TuneMode {
    /// Every mode, in the order the report shows them.
    pub const ALL: [TuneMode; 3] = [
        TuneMode::Interval,
        TuneMode::BudgetSplit,
        TuneMode::BudgetSplitMaxUnsynced,
    ];

    /// The name of a run of this mode at `interval`: `write-through` at
    /// interval zero (where the mode changes nothing), else [`name`](Self::name).
    pub fn label(self, interval: Duration) -> &'static str {
        if interval.is_zero() {
            "write-through"
        } else {
            self.name()
        }
    }

    /// The name in the table and the chart: `interval`, `split`, `split+max`.
    pub fn name(self) -> &'static str {
        match self {
            TuneMode::Interval => "interval",
            TuneMode::BudgetSplit => "split",
            TuneMode::BudgetSplitMaxUnsynced => "split+max",
        }
    }
}

impl std::str::FromStr for TuneMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        TuneMode::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                Error::invalid_argument(format!("mode `{s}` is none of interval, split, split+max"))
            })
    }
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
    /// 4 nodes, 1000 per 1 s window, 3 s per interval and mode, as fast as
    /// possible, intervals 0, 1 ms, 10 ms, 100 ms, 1 s, every mode, an
    /// embedded remote with 100 µs latency.
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
            modes: TuneMode::ALL.to_vec(),
            max_unsynced: None,
            skew: None,
        }
    }
}

/// Where a run is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneProgress {
    /// Index of the run (interval and mode) being measured.
    pub index: usize,
    /// Number of runs.
    pub of: usize,
    /// The interval being measured.
    pub interval: Duration,
    /// The mode being measured.
    pub mode: TuneMode,
    /// Fraction of the whole run done, 0 to 1.
    pub done: f64,
}

/// The measurements of one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneRow {
    /// The sync interval (zero: write-through).
    pub interval: Duration,
    /// How the nodes reconciled (at interval zero, write-through).
    pub mode: TuneMode,
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
    /// The largest under-admission of one full window (the first and last
    /// windows of a run are partial and left out when there are more).
    pub worst_window_under: u64,
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
    /// The mode's name, `write-through` at interval zero.
    pub fn mode_name(&self) -> &'static str {
        self.mode.label(self.interval)
    }

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
    /// One row per interval and mode finished, in the order given.
    pub rows: Vec<TuneRow>,
    /// Modes left out because the remote does not share budgets.
    pub unsupported: Vec<TuneMode>,
    /// The runs (interval and mode) the report was to hold.
    pub planned: usize,
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
    rate: Option<f64>,
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
    let pace = rate.filter(|r| r.is_finite() && *r > 0.0);
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
        let (window, admitted) = node.hit_in_window(key, config.window, config.limit, 1)?;
        res.latency.record(t0.elapsed());
        res.attempts += 1;
        let w = res.windows.entry(window).or_default();
        w.0 += 1;
        w.1 += u64::from(admitted);
    }
    Ok(res)
}

/// One run: an interval and a mode, and where it is among `of` runs.
#[derive(Clone, Copy)]
struct Run {
    index: usize,
    of: usize,
    interval: Duration,
    mode: TuneMode,
}

/// What node `n` offers, in hits per second.
fn node_rate(config: &TuneConfig, n: usize) -> Option<f64> {
    let rate = config.rate?;
    let Some(skew) = config.skew.filter(|s| (0.0..=1.0).contains(s)) else {
        return Some(rate);
    };
    let total = rate * config.nodes as f64;
    Some(if n == 0 || config.nodes == 1 {
        total * skew
    } else {
        total * (1.0 - skew) / (config.nodes - 1) as f64
    })
}

fn run_interval(
    config: &TuneConfig,
    target: &Arc<dyn SyncTarget>,
    run: Run,
    progress: &mut dyn FnMut(&TuneProgress) -> ControlFlow<()>,
) -> Result<Option<TuneRow>> {
    let key = format!("{}/{}", config.namespace, run.index);
    let measured = measure_interval(config, target, &key, run, progress);
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
    run: Run,
    progress: &mut dyn FnMut(&TuneProgress) -> ControlFlow<()>,
) -> Result<Option<TuneRow>> {
    let interval = run.interval;
    let split = run.mode != TuneMode::Interval;
    let max_unsynced = config
        .max_unsynced
        .unwrap_or(config.limit / (10 * config.nodes as u64).max(1))
        .max(1);
    let clock = SystemClock::new();
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(config.nodes + 1);
    let results: Vec<Result<NodeResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.nodes)
            .map(|n| {
                let (clock, barrier, stop) = (clock.clone(), &barrier, &stop);
                scope.spawn(move || {
                    let mut builder = WriteBehind::builder(target.clone())
                        .node_id(format!("tune-{n}"))
                        .sync_interval(interval)
                        .budget_split(split)
                        // A run lasts seconds and leaves nothing behind.
                        .incarnation_marker(false)
                        .clock(clock);
                    if run.mode == TuneMode::BudgetSplitMaxUnsynced {
                        builder = builder.max_unsynced(max_unsynced);
                    }
                    let started = builder.start();
                    barrier.wait();
                    let handle = started?;
                    let begin = Instant::now();
                    let rate = node_rate(config, n);
                    let mut res = run_node(&handle, key, config, rate, begin, stop)?;
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
        let total = run.of.max(1) as f64;
        while handles.iter().any(|h| !h.is_finished()) {
            let part =
                (begin.elapsed().as_secs_f64() / config.duration.as_secs_f64().max(1e-9)).min(1.0);
            let asked = progress(&TuneProgress {
                index: run.index,
                of: run.of,
                interval,
                mode: run.mode,
                done: (run.index as f64 + part) / total,
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
    let under_of = |w: &(u64, u64)| w.0.min(limit).saturating_sub(w.1);
    let under: u64 = windows.values().map(under_of).sum();
    // The first and last windows are partial: judged only when alone.
    let full: Vec<&(u64, u64)> = if windows.len() > 2 {
        windows.values().skip(1).take(windows.len() - 2).collect()
    } else {
        windows.values().collect()
    };
    let worst_window_under = full.into_iter().map(under_of).max().unwrap_or(0);
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
        mode: run.mode,
        attempts,
        admitted,
        windows: n_windows,
        over_admitted,
        worst_window_over: over.iter().copied().max().unwrap_or(0),
        over_pct: 100.0 * over_admitted as f64 / capacity,
        under_admitted: under,
        under_pct: 100.0 * under as f64 / capacity,
        worst_window_under,
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
    if config.intervals.is_empty() || config.duration.is_zero() || config.modes.is_empty() {
        return Err(Error::invalid_argument(
            "tune needs at least one interval, one mode and a non-zero duration",
        ));
    }
    let target: Arc<dyn SyncTarget> = match &config.remote {
        Some(t) => t.clone(),
        None => Arc::new(MemoryRemote::new().with_latency(config.latency)),
    };
    let unsupported: Vec<TuneMode> = if target.shares_budgets() {
        Vec::new()
    } else {
        config
            .modes
            .iter()
            .copied()
            .filter(|m| *m != TuneMode::Interval)
            .collect()
    };
    let modes: Vec<TuneMode> = config
        .modes
        .iter()
        .copied()
        .filter(|m| !unsupported.contains(m))
        .collect();
    let mut runs: Vec<(Duration, TuneMode)> = Vec::new();
    for &interval in &config.intervals {
        if interval.is_zero() {
            runs.push((interval, TuneMode::Interval));
        } else {
            runs.extend(modes.iter().map(|&m| (interval, m)));
        }
    }
    let mut report = TuneReport {
        nodes: config.nodes,
        limit: config.limit,
        window: config.window,
        rows: Vec::with_capacity(runs.len()),
        unsupported,
        planned: runs.len(),
        interrupted: false,
    };
    let of = runs.len();
    for (index, &(interval, mode)) in runs.iter().enumerate() {
        let run = Run {
            index,
            of,
            interval,
            mode,
        };
        match run_interval(config, &target, run, progress)? {
            Some(row) => report.rows.push(row),
            None => {
                report.interrupted = true;
                return Ok(report);
            }
        }
    }
    // The last call says 100%; the run is over, so its answer changes nothing.
    if let Some(&(interval, mode)) = runs.last() {
        let _ = progress(&TuneProgress {
            index: of - 1,
            of,
            interval,
            mode,
            done: 1.0,
        });
    }
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
            "{:>9} {:>13} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>8} {:>10} {:>11} {:>9} {:>9} {:>10} {:>6}",
            "interval",
            "mode",
            "admitted",
            "windows",
            "over",
            "over%",
            "worst/win",
            "bound",
            "under%",
            "under/win",
            "remote op/s",
            "hit p50",
            "hit p99",
            "hits/s",
            "ok"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>9} {:>13} {:>10} {:>8} {:>10} {:>7.2}% {:>10} {:>8} {:>7.2}% {:>10} {:>11.0} {:>9} {:>9} {:>10.0} {:>6}",
                format_duration(r.interval),
                r.mode_name(),
                r.admitted,
                r.windows,
                r.over_admitted,
                r.over_pct,
                r.worst_window_over,
                r.bound,
                r.under_pct,
                r.worst_window_under,
                r.remote_ops_per_sec,
                format_duration(r.p50),
                format_duration(r.p99),
                r.hits_per_sec,
                if r.within_bound() { "yes" } else { "NO" }
            )?;
        }
        for m in &self.unsupported {
            writeln!(
                f,
                "mode {} left out: the remote does not share budgets",
                m.name()
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
    /// An SVG chart against the sync interval (logarithmic axis, with
    /// write-through, interval 0, one decade left of the smallest positive
    /// interval): per mode, the worst window's over-admission (solid) and
    /// under-admission (dashed) in % of the limit, the statistics the `ok`
    /// column and the targets judge, and the bound on one window (grey).
    /// Write-through's point is drawn on every mode's lines.
    pub fn to_svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (760.0, 440.0, 70.0, 150.0, 40.0, 60.0);
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
        let limit = self.limit.max(1) as f64;
        let over = |r: &TuneRow| 100.0 * r.worst_window_over as f64 / limit;
        let under = |r: &TuneRow| 100.0 * r.worst_window_under as f64 / limit;
        let bound = |r: &TuneRow| (100.0 * r.bound as f64 / limit).min(100.0 * self.nodes as f64);
        let top_value = self
            .rows
            .iter()
            .flat_map(|r| [over(r), under(r), bound(r)])
            .fold(0.0, f64::max);
        let step = nice_step(top_value / 5.0);
        let ymax = (top_value / step).ceil().max(1.0) * step;
        let y = |pct: f64| top + (1.0 - pct.min(ymax) / ymax) * (h - top - bottom);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">Worst window vs sync interval ({} nodes, limit {} per {} s)</text>\n",
            (left + w - right) / 2.0,
            self.nodes,
            self.limit,
            self.window
        );
        s += &format!(
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
            h - bottom,
            w - right,
            h - bottom,
            h - bottom
        );
        let ticks = (ymax / step).round() as usize;
        for i in 0..=ticks {
            let pct = step * i as f64;
            let yy = y(pct);
            s += &format!(
                "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>\n",
                w - right,
                left - 6.0,
                yy + 4.0,
                tick_label(pct, step)
            );
        }
        let mut intervals: Vec<Duration> = self.rows.iter().map(|r| r.interval).collect();
        intervals.dedup();
        for interval in &intervals {
            let xx = x(interval.as_secs_f64());
            let label = if interval.is_zero() {
                "0 (write-through)".to_string()
            } else {
                format_duration(*interval)
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
             <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">worst window: over (solid), under (dashed), % of limit</text>\n",
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
                    &format!("<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3\" fill=\"{colour}\"/>\n");
            }
            out
        };
        let through: Vec<&TuneRow> = self.rows.iter().filter(|r| r.interval.is_zero()).collect();
        let of_mode = |m: TuneMode| -> Vec<&TuneRow> {
            through
                .iter()
                .copied()
                .chain(
                    self.rows
                        .iter()
                        .filter(|r| !r.interval.is_zero() && r.mode == m),
                )
                .collect()
        };
        let bound_rows = of_mode(TuneMode::Interval);
        s += &series(
            bound_rows
                .iter()
                .map(|r| (x(r.interval.as_secs_f64()), y(bound(r))))
                .collect(),
            "#999",
            " stroke-dasharray=\"2 3\"",
        );
        let mut legend = vec![(
            "#999",
            " stroke-dasharray=\"2 3\"",
            "bound (interval)".to_string(),
        )];
        for (m, colour) in TuneMode::ALL
            .into_iter()
            .zip(["#c0392b", "#2471a3", "#1e8449"])
        {
            let rows = of_mode(m);
            if rows.iter().all(|r| r.interval.is_zero()) {
                continue;
            }
            let at = |f: &dyn Fn(&TuneRow) -> f64| {
                rows.iter()
                    .map(|r| (x(r.interval.as_secs_f64()), y(f(r))))
                    .collect::<Vec<_>>()
            };
            s += &series(at(&over), colour, "");
            s += &series(at(&under), colour, " stroke-dasharray=\"6 4\"");
            legend.push((colour, "", format!("{} over", m.name())));
            legend.push((
                colour,
                " stroke-dasharray=\"6 4\"",
                format!("{} under", m.name()),
            ));
        }
        let lx = w - right + 10.0;
        for (i, (colour, dash, label)) in legend.iter().enumerate() {
            let ly = top + 10.0 + 18.0 * i as f64;
            s += &format!(
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>\n",
                lx + 24.0,
                lx + 30.0,
                ly + 4.0,
                escape(label)
            );
        }
        s += "</svg>\n";
        s
    }
}

/// A round tick step near `rough`: 1, 2 or 5 times a power of ten.
fn nice_step(rough: f64) -> f64 {
    if !(rough.is_finite() && rough > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    let m = rough / power;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// `pct` with as many decimals as the tick step needs.
fn tick_label(pct: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{pct:.decimals$}")
}
