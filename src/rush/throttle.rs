//! [`Throttle`]: a quota bound to a limiter.

use super::{Limiter, Quota, RateLimitResult};
use crate::error::Result;

/// One [`Quota`] enforced by one [`Limiter`] (rush's `Throttle(rate, limiter)`).
///
/// ```
/// use limitstore::rush::{DictionaryStore, GenericCellRatelimiter, Quota, Throttle};
/// use limitstore::FakeClock;
/// use std::time::Duration;
///
/// let clock = FakeClock::new();
/// let throttle = Throttle::new(
///     Quota::per_second(5)?,
///     GenericCellRatelimiter::new(DictionaryStore::with_clock(clock.clone())),
/// );
/// assert!(!throttle.check("api-key", 3)?.limited);
/// let state = throttle.peek("api-key")?;
/// assert_eq!((state.limited, state.remaining), (false, 2));
/// assert!(throttle.check("api-key", 3)?.limited);
/// assert_eq!(throttle.clear("api-key")?.remaining, 5);
/// assert!(!throttle.check("api-key", 5)?.limited);
/// # Ok::<(), limitstore::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Throttle<L> {
    quota: Quota,
    limiter: L,
}

impl<L: Limiter> Throttle<L> {
    /// Binds `quota` to `limiter`.
    pub fn new(quota: Quota, limiter: L) -> Self {
        Throttle { quota, limiter }
    }

    /// Tries to consume `quantity` for `key`; see [`Limiter::rate_limit`].
    pub fn check(&self, key: &str, quantity: u64) -> Result<RateLimitResult> {
        self.limiter.rate_limit(key, quantity, &self.quota)
    }

    /// `key`'s state, consuming nothing; see [`Limiter::peek`].
    pub fn peek(&self, key: &str) -> Result<RateLimitResult> {
        self.limiter.peek(key, &self.quota)
    }

    /// Forgets `key`'s use; see [`Limiter::reset`].
    pub fn clear(&self, key: &str) -> Result<RateLimitResult> {
        self.limiter.reset(key, &self.quota)
    }

    /// The quota.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The limiter.
    pub fn limiter(&self) -> &L {
        &self.limiter
    }
}
