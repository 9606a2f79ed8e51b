//! Rate limiters in the style of Python `rush`: a small store interface
//! holding [`LimitData`] per key, two limiters written against it (GCRA and a
//! periodic fixed window) and a [`Throttle`] that binds a [`Quota`] to a
//! limiter.
//!
//! The pieces, bottom up:
//!
//! - [`LimitData`]: what a store keeps per key (`used`, `remaining`,
//!   `created_at`, and an optional `time`, the GCRA theoretical arrival time).
//! - [`RushStore`]: `get`, `set`, an atomic `compare_and_swap`, `clear` and
//!   `current_time`. Two stores ship: [`DictionaryStore`] (an unbounded map,
//!   for tests and proofs of concept) and [`TLRUCacheStore`] (bounded by a
//!   maximum entry count and a per-entry time to live).
//! - [`Quota`]: `count` per `period`, plus an optional `maximum_burst`.
//! - [`Limiter`]: [`GenericCellRatelimiter`] (GCRA) and [`PeriodicLimiter`]
//!   (a fixed window anchored at a key's first hit), each answering with a
//!   [`RateLimitResult`].
//! - [`Throttle`]: a quota and a limiter, with `check`, `peek` and `clear`.
//!
//! Limiters compute in whole microseconds. Timestamps are stored as Unix
//! seconds in an `f64`, which represents every whole microsecond exactly
//! enough to round-trip until the year 2106, so results do not drift with
//! rounding.
//!
//! ```
//! use limitstore::rush::{DictionaryStore, GenericCellRatelimiter, Quota, Throttle};
//! use limitstore::FakeClock;
//! use std::time::Duration;
//!
//! let clock = FakeClock::new();
//! let store = DictionaryStore::with_clock(clock.clone());
//! let throttle = Throttle::new(
//!     Quota::per_second(10)?,
//!     GenericCellRatelimiter::new(store),
//! );
//!
//! for _ in 0..10 {
//!     assert!(!throttle.check("user-1", 1)?.limited);
//! }
//! let denied = throttle.check("user-1", 1)?;
//! assert!(denied.limited);
//! assert_eq!(denied.retry_after, Some(Duration::from_millis(100)));
//!
//! clock.advance(Duration::from_millis(100));
//! assert!(!throttle.check("user-1", 1)?.limited);
//! # Ok::<(), limitstore::Error>(())
//! ```

mod dictionary;
mod gcra;
mod limit_data;
mod limiter;
mod periodic;
mod quota;
mod result;
mod store;
mod throttle;
mod time;
mod tlru;

pub use dictionary::DictionaryStore;
pub use gcra::GenericCellRatelimiter;
pub use limit_data::LimitData;
pub use limiter::Limiter;
pub use periodic::PeriodicLimiter;
pub use quota::Quota;
pub use result::RateLimitResult;
pub use store::RushStore;
pub use throttle::Throttle;
pub use tlru::TLRUCacheStore;
