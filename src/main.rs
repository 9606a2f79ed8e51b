//! `limitstore`: the command-line companion of the crate.
//!
//! `limitstore bench` measures hits per second of every strategy on a storage.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => cmd::bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limitstore: {e}");
            ExitCode::FAILURE
        }
    }
}
