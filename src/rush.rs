//! Rate-limit state in the style of Python `rush`: a small store interface
//! holding [`LimitData`] per key.
//!
//! - [`LimitData`]: what a store keeps per key (`used`, `remaining`,
//!   `created_at`, and an optional `time`, the GCRA theoretical arrival time).
//! - [`RushStore`]: `get`, `set`, an atomic `compare_and_swap`, `clear` and
//!   `current_time`. Two stores ship: [`DictionaryStore`] (an unbounded map,
//!   for tests and proofs of concept) and [`TLRUCacheStore`] (bounded by a
//!   maximum entry count and a per-entry time to live).

mod dictionary;
mod limit_data;
mod store;
mod tlru;

pub use dictionary::DictionaryStore;
pub use limit_data::LimitData;
pub use store::RushStore;
pub use tlru::TLRUCacheStore;
