//! The `limitstore` command.
fn main() {}
