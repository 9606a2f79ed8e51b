//! `limitstore tune`: over-admission, remote load and hit latency for a
//! list of sync intervals, as a table and an SVG chart.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use limitstore::write_behind::sync_target_from_string;
use limitstore::write_behind::tune::{
    format_duration, run_tune, unique_namespace, TuneConfig, TuneMode, TuneProgress, TuneReport,
};
use limitstore::{Error, Options, MAX_AMOUNT, MAX_EXPIRY};

use super::{interrupted, parse_uri, scope, usage, usage_of, Cleanup, Failure, Outcome};

/// The most simulated nodes.
pub const MAX_NODES: usize = 256;
/// The most intervals one run measures.
pub const MAX_INTERVALS: usize = 64;
/// The longest duration, interval or latency, in seconds.
pub const MAX_SECONDS: f64 = 3600.0;
/// The highest `--rate`, hits per second per node.
pub const MAX_RATE: f64 = 1e9;

/// Options of `limitstore tune`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each interval counts one key of the run's own namespace \
(`limitstore-tune-<random>/<index>`, under a key prefix of its own on Redis \
and etcd) and clears it when the interval ends; on Redis the run's own prefix \
is reset at the end; the nodes write no incarnation marker: nothing \
else on the remote is read or deleted. Ctrl-C prints the finished runs, writes their chart \
and exits with 130.")]
pub struct Args {
    /// Simulated nodes (threads), each its own write-behind instance (1 to 256).
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Limit per window.
    #[arg(long, default_value_t = 1000)]
    limit: u64,
    /// Window length in seconds.
    #[arg(long, default_value_t = 1)]
    window: u64,
    /// Seconds to run each interval (up to 3600).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Hits per second per node (up to 1e9); as fast as possible when not given.
    #[arg(long)]
    rate: Option<f64>,
    /// Sync intervals to measure (comma-separated; `0` is write-through;
    /// units ns, us, ms, s; a bare number is seconds; up to 1 hour).
    #[arg(long, value_delimiter = ',', default_value = "0,1ms,10ms,100ms,1s")]
    intervals: Vec<String>,
    /// Round-trip latency injected into the embedded remote (at most --duration).
    #[arg(long, default_value = "100us")]
    latency: String,
    /// Remote URI instead of the embedded one: `redis://host:port`, or
    /// `memory://?latency=0.0001`.
    #[arg(long)]
    remote: Option<String>,
    /// Modes measured at each positive interval (comma-separated):
    /// `interval` (plain write-behind), `split` (budget split), `split+max`
    /// (budget split with --max-unsynced).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "interval,split,split+max"
    )]
    modes: Vec<String>,
    /// Unsynced hits per node and window that ask for an early sync in mode
    /// `split+max` (default: max(1, limit / (10 x nodes))).
    #[arg(long)]
    max_unsynced: Option<u64>,
    /// The fraction of the whole load node 0 offers, 0 to 1 (needs --rate:
    /// the nodes together offer rate x nodes).
    #[arg(long)]
    skew: Option<f64>,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "tune.svg")]
    svg: PathBuf,
}

/// A checked command line.
pub struct Plan {
    config: TuneConfig,
    svg: PathBuf,
    /// The remote's key prefix is the run's own: a `reset` at the end also
    /// takes anything a failed clear left under it.
    reset_own_prefix: bool,
}

/// Parses `250us`, `10ms`, `1s`, `0.5` (seconds), `0`: finite, not
/// negative, at most [`MAX_SECONDS`].
fn parse_duration(text: &str) -> Result<Duration, Error> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| Error::invalid_argument(format!("`{text}` is not a duration")))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        other => {
            return Err(Error::invalid_argument(format!(
                "unknown duration unit `{other}` in `{text}`"
            )))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > MAX_SECONDS {
        return Err(Error::invalid_argument(format!(
            "`{text}` is out of range (at most {MAX_SECONDS} s)"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Fails unless a file can be created at `path`: its folder exists, and the
/// path is not a folder or a read-only file.
fn check_output(path: &Path) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let shown = path.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() && !m.permissions().readonly() => {}
        _ => {
            return usage(format!(
                "--svg {shown}: no writable folder `{}`",
                dir.display()
            ))
        }
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => usage(format!("--svg {shown} is a folder")),
        Ok(m) if m.permissions().readonly() => usage(format!("--svg {shown} is read-only")),
        _ => Ok(()),
    }
}

/// Checks every flag; touches no remote (building one does not connect).
pub fn plan(args: &Args) -> Result<Plan, Failure> {
    if args.nodes == 0 || args.nodes > MAX_NODES {
        return usage(format!("--nodes must lie between 1 and {MAX_NODES}"));
    }
    if args.limit == 0 || args.limit > MAX_AMOUNT {
        return usage(format!("--limit must lie between 1 and {MAX_AMOUNT}"));
    }
    if args.window == 0 || args.window > MAX_EXPIRY {
        return usage(format!(
            "--window must lie between 1 and {MAX_EXPIRY} seconds"
        ));
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= MAX_SECONDS) {
        return usage(format!(
            "--duration must be a number of seconds above 0 and at most {MAX_SECONDS}"
        ));
    }
    let duration = Duration::from_secs_f64(args.duration);
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return usage(format!(
                "--rate must be a number of hits per second above 0 and at most {MAX_RATE} \
                 (leave it out for as fast as possible)"
            ));
        }
    }
    if args.intervals.is_empty() || args.intervals.len() > MAX_INTERVALS {
        return usage(format!("--intervals takes 1 to {MAX_INTERVALS} intervals"));
    }
    let intervals = args
        .intervals
        .iter()
        .map(|s| parse_duration(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| usage_of("--intervals", e))?;
    let mut latency = parse_duration(&args.latency).map_err(|e| usage_of("--latency", e))?;
    let namespace = unique_namespace("limitstore-tune");
    let mut remote = None;
    let mut reset_own_prefix = false;
    if let Some(uri) = &args.remote {
        let parsed = parse_uri("--remote", uri)?;
        let scope = scope(&parsed, &namespace);
        let target =
            sync_target_from_string(uri, &scope.options).map_err(|e| usage_of("--remote", e))?;
        if parsed.scheme == "memory" {
            // The embedded remote: its latency is checked like --latency.
            let query = parsed
                .query
                .iter()
                .fold(Options::new(), |o, (k, v)| o.with(k, v.as_str()));
            latency = query
                .get_secs("latency")
                .map_err(|e| usage_of("--remote", e))?
                .unwrap_or(Duration::ZERO);
        } else {
            reset_own_prefix = scope.cleanup == Cleanup::ResetOwnPrefix;
            remote = Some(target);
        }
    }
    if latency > duration {
        return usage(format!(
            "the remote's latency ({}) must not exceed --duration ({}): \
             each node would wait on it for longer than it runs",
            format_duration(latency),
            format_duration(duration)
        ));
    }
    let mut modes = Vec::new();
    for m in &args.modes {
        let mode: TuneMode = m.parse().map_err(|e| usage_of("--modes", e))?;
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    if modes.is_empty() {
        return usage("--modes takes at least one mode".to_string());
    }
    if args.max_unsynced == Some(0) {
        return usage("--max-unsynced must be at least 1".to_string());
    }
    if let Some(skew) = args.skew {
        if !(0.0..=1.0).contains(&skew) {
            return usage("--skew must lie between 0 and 1".to_string());
        }
        if args.rate.is_none() {
            return usage("--skew needs --rate (the load it divides)".to_string());
        }
    }
    check_output(&args.svg)?;
    let mut config = TuneConfig::default();
    config.modes = modes;
    config.max_unsynced = args.max_unsynced;
    config.skew = args.skew;
    config.nodes = args.nodes;
    config.limit = args.limit;
    config.window = args.window;
    config.duration = duration;
    config.rate = args.rate;
    config.intervals = intervals;
    config.latency = latency;
    config.remote = remote;
    config.namespace = namespace;
    Ok(Plan {
        config,
        svg: args.svg.clone(),
        reset_own_prefix,
    })
}

#[cfg(test)]
impl Plan {
    /// Asserts what keeps a run finite: the property test of the command line checks it.
    pub fn check_bounds(&self) {
        let c = &self.config;
        assert!((1..=MAX_NODES).contains(&c.nodes));
        assert!(c.duration > Duration::ZERO && c.duration.as_secs_f64() <= MAX_SECONDS);
        assert!(c.latency <= c.duration);
        assert!(c
            .rate
            .is_none_or(|r| r.is_finite() && r > 0.0 && r <= MAX_RATE));
        assert!(!c.intervals.is_empty() && c.intervals.len() <= MAX_INTERVALS);
    }
}

/// A one-line progress bar on stderr.
fn draw(p: &TuneProgress) {
    const WIDTH: usize = 40;
    let filled = ((p.done * WIDTH as f64).round() as usize).min(WIDTH);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{}{}] {:>3.0}%  run {}/{} ({}, {})   ",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        p.done * 100.0,
        p.index + 1,
        p.of,
        format_duration(p.interval),
        p.mode.label(p.interval)
    );
    let _ = err.flush();
}

fn print(report: &TuneReport, svg: &Path) -> Result<(), Failure> {
    println!("{report}");
    println!(
        "over: admitted beyond the limit, summed over windows; over%: that over limit x windows;\n\
         worst/win: the worst window; bound: the research-note bound for one window,\n\
         max over B of max(0, sum min(B, r_i*T) - B), T = 2 x (interval + mean round trip);\n\
         ok: worst/win <= bound. under%: refused demand that fitted under the limit;\n\
         under/win: the worst full window's.\n\
         modes: interval = plain write-behind, split = budget split, split+max = budget split\n\
         with max_unsynced; at interval 0 every hit is written through."
    );
    std::fs::write(svg, report.to_svg()).map_err(|e| Error::storage("writing the chart", e))?;
    println!("chart: {}", svg.display());
    Ok(())
}

/// Runs a checked command line.
pub fn run(plan: Plan) -> Result<Outcome, Failure> {
    let result = run_tune(&plan.config, &mut |p| {
        draw(p);
        if interrupted() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    // End the progress line before anything else is printed.
    eprintln!();
    let cleaned = match &plan.config.remote {
        Some(remote) if plan.reset_own_prefix => remote.reset().map(drop),
        _ => Ok(()),
    };
    let report = result?;
    cleaned?;
    if report.interrupted {
        println!(
            "interrupted: {} of {} runs finished",
            report.rows.len(),
            report.planned
        );
    }
    print(&report, &plan.svg)?;
    Ok(if report.interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Done
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        for bad in ["fast", "3h", "-1", "inf", "NaN", "1e300", "1000000s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn output_paths_are_checked_before_the_run() {
        assert!(check_output(Path::new("/nonexistent/x.svg")).is_err());
        assert!(check_output(Path::new("/")).is_err());
        let dir = std::env::temp_dir();
        assert!(check_output(&dir).is_err());
        assert!(check_output(&dir.join("limitstore-tune-check.svg")).is_ok());
        assert!(check_output(Path::new("tune.svg")).is_ok());
    }
}
