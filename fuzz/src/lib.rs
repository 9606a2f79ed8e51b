//! Input decoders, properties and the reference model behind the fuzz targets.
//!
//! Each target in `fuzz_targets/` is one line calling a `run` function here,
//! so a failing input can also be replayed from a plain test.

pub mod memory_model;
pub mod rate_string;
pub mod uri;
