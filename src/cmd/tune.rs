//! `limitstore tune`: over-admission, remote load and hit latency for a
//! list of sync intervals, as a table and an SVG chart.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use limitstore::write_behind::sync_target_from_string;
use limitstore::write_behind::tune::{format_duration, run_tune, TuneConfig, TuneProgress};
use limitstore::{Error, Options, Result};

/// Options of `limitstore tune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Simulated nodes (threads), each its own write-behind instance.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Limit per window.
    #[arg(long, default_value_t = 1000)]
    limit: u64,
    /// Window length in seconds.
    #[arg(long, default_value_t = 1)]
    window: u64,
    /// Seconds to run each interval.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Hits per second per node; as fast as possible when not given.
    #[arg(long)]
    rate: Option<f64>,
    /// Sync intervals to measure (comma-separated; `0` is write-through;
    /// units ns, us, ms, s; a bare number is seconds).
    #[arg(long, value_delimiter = ',', default_value = "0,1ms,10ms,100ms,1s")]
    intervals: Vec<String>,
    /// Round-trip latency injected into the embedded remote.
    #[arg(long, default_value = "100us")]
    latency: String,
    /// Remote URI instead of the embedded one: `redis://host:port`, or
    /// `memory://?latency=0.0001`.
    #[arg(long)]
    remote: Option<String>,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "tune.svg")]
    svg: PathBuf,
}

/// Parses `250us`, `10ms`, `1s`, `0.5` (seconds), `0`.
fn parse_duration(text: &str) -> Result<Duration> {
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
    if !secs.is_finite() || secs > 1e6 {
        return Err(Error::invalid_argument(format!("`{text}` is out of range")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A one-line progress bar on stderr.
fn draw(p: &TuneProgress) {
    const WIDTH: usize = 40;
    let filled = ((p.done * WIDTH as f64).round() as usize).min(WIDTH);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{}{}] {:>3.0}%  interval {}/{} ({})   ",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        p.done * 100.0,
        p.index + 1,
        p.of,
        format_duration(p.interval)
    );
    let _ = err.flush();
}

/// Runs `limitstore tune`.
pub fn run(args: &Args) -> Result<()> {
    let intervals = args
        .intervals
        .iter()
        .map(|s| parse_duration(s))
        .collect::<Result<Vec<_>>>()?;
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 1e6) {
        return Err(Error::invalid_argument(
            "--duration must be a positive number of seconds",
        ));
    }
    let remote = match &args.remote {
        Some(uri) => Some(sync_target_from_string(uri, &Options::new())?),
        None => None,
    };
    let config = TuneConfig {
        nodes: args.nodes,
        limit: args.limit,
        window: args.window,
        duration: Duration::from_secs_f64(args.duration),
        rate: args.rate,
        intervals,
        latency: parse_duration(&args.latency)?,
        remote,
    };
    let report = run_tune(&config, &mut draw)?;
    eprintln!();
    println!("{report}");
    println!(
        "over: admitted beyond the limit, summed over windows; over%: that over limit x windows;\n\
         worst/win: the worst window; bound: the research-note bound for one window,\n\
         max over B of max(0, sum min(B, r_i*T) - B), T = 2 x (interval + mean round trip);\n\
         ok: worst/win <= bound."
    );
    std::fs::write(&args.svg, report.to_svg())
        .map_err(|e| Error::storage("writing the chart", e))?;
    println!("chart: {}", args.svg.display());
    Ok(())
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
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
