//! `limitstore`: the command-line companion of the crate.
//!
//! `limitstore bench` measures hits per second of every strategy on a storage;
//! `limitstore tune` measures what each write-behind sync interval costs in
//! accuracy and saves in remote load.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "limitstore",
    version,
    about = "Rate-limit storage: measure and tune"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hits per second of each strategy on a storage (the embedded memory engine by default).
    Bench(cmd::bench::Args),
    /// Over-admission, remote load and hit latency of write-behind sync
    /// intervals, for N simulated nodes on one remote; writes an SVG chart.
    Tune(cmd::tune::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Tune(args) => cmd::tune::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limitstore: {e}");
            ExitCode::FAILURE
        }
    }
}
