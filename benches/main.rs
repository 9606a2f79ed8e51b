//! Criterion benchmarks.
fn main() {}
