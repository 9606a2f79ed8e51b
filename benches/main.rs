//! Criterion benchmarks of the crate.
fn main() {}
