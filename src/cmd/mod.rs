//! The subcommands.

pub mod bench;
