//! `limitstore`: the command-line companion of the crate.
//!
//! `limitstore bench` measures hits per second of every strategy on a storage;
//! `limitstore tune` measures what each write-behind sync interval costs in
//! accuracy and saves in remote load.
//!
//! Exit codes: 0 done, 1 the run failed, 2 a flag is wrong (nothing ran),
//! 130 stopped by Ctrl-C (what finished is printed).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

use cmd::{Failure, Outcome};

#[derive(Parser, Debug)]
#[command(
    name = "limitstore",
    version,
    about = "Rate-limit storage: measure and tune",
    after_help = "Each run writes only keys of a namespace of its own \
                  (limitstore-<command>-<random>) and deletes exactly those: \
                  counters of other applications on the same server are never touched."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Hits per second of each strategy on a storage (the embedded memory engine by default).
    Bench(cmd::bench::Args),
    /// Over-admission, remote load and hit latency of write-behind sync
    /// intervals, for N simulated nodes on one remote; writes an SVG chart.
    Tune(cmd::tune::Args),
}

/// What the command line asks for, every flag checked.
enum Plan {
    Bench(cmd::bench::Plan),
    Tune(cmd::tune::Plan),
}

impl Command {
    fn plan(&self) -> Result<Plan, Failure> {
        Ok(match self {
            Command::Bench(args) => Plan::Bench(cmd::bench::plan(args)?),
            Command::Tune(args) => Plan::Tune(cmd::tune::plan(args)?),
        })
    }
}

impl Plan {
    fn run(self) -> Result<Outcome, Failure> {
        match self {
            Plan::Bench(plan) => cmd::bench::run(&plan),
            Plan::Tune(plan) => cmd::tune::run(plan),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = cli.command.plan().and_then(|plan| {
        cmd::catch_interrupt();
        plan.run()
    });
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e @ Failure::Usage(_)) => {
            eprintln!("limitstore: {e}");
            ExitCode::from(2)
        }
        Err(e @ Failure::Run(_)) => {
            eprintln!("limitstore: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64), so a failing case can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.next() as usize % from.len()]
        }
    }

    /// Random command lines from the flags and the values that once
    /// panicked or hung: parsing and checking them never panics, and what
    /// passes the checks is within the bounds that keep a run finite.
    #[test]
    fn no_command_line_panics_while_checked() {
        const FLAGS: &[&str] = &[
            "--storage",
            "--limit",
            "--keys",
            "--threads",
            "--strategies",
            "--seconds",
            "--nodes",
            "--window",
            "--duration",
            "--rate",
            "--intervals",
            "--latency",
            "--remote",
            "--svg",
        ];
        const VALUES: &[&str] = &[
            "0",
            "1",
            "-1",
            "-5",
            "1e-300",
            "1e20",
            "1e300",
            "inf",
            "-inf",
            "NaN",
            "nan",
            "",
            "0.0001",
            "3000",
            "100000000000",
            "18446744073709551616",
            "1,2",
            "0,1ms,10ms",
            "1000000s",
            "5s",
            "0.3",
            "10ms",
            "1µs",
            "3h",
            "fast",
            "100/second",
            "2000000/second",
            "1/0 seconds",
            "moving-window",
            "fixed-window,nosuch",
            "memory://",
            "memory://?latency=1e9",
            "memory://?max_entries=10&max_entries=20",
            "redis://localhost:6379:6379",
            "redis://user:s3cr3t@127.0.0.1:bad",
            "nosuch://x",
            "writebehind+memory://?sync_interval=-1",
            "/nonexistent/x.svg",
            "\u{1f}",
            "%zz",
        ];
        let mut rng = Rng(0x5EED);
        for _ in 0..3000 {
            let mut argv = vec!["limitstore", rng.pick(&["bench", "tune"])];
            for _ in 0..rng.next() % 5 {
                let flag = rng.pick(FLAGS);
                let value = rng.pick(VALUES);
                if rng.next() & 1 == 0 {
                    argv.push(flag);
                    argv.push(value);
                } else {
                    argv.push(Box::leak(format!("{flag}={value}").into_boxed_str()));
                }
            }
            let Ok(cli) = Cli::try_parse_from(&argv) else {
                continue;
            };
            match cli.command.plan() {
                Ok(Plan::Tune(plan)) => plan.check_bounds(),
                Ok(Plan::Bench(_)) | Err(Failure::Usage(_)) => {}
                Err(Failure::Run(e)) => panic!("{argv:?}: checking ran something: {e}"),
            }
        }
    }
}
