//! The `limitstore` command-line tool.
fn main() {}
