//! Rate-limiting strategies over any [`Storage`], as in `limits`.
//!
//! - [`FixedWindowRateLimiter`]: a counter per window; the cheapest.
//! - [`FixedWindowElasticExpiryRateLimiter`]: a fixed window whose expiry
//!   every hit pushes out again.
//! - [`MovingWindowRateLimiter`]: a log of hit timestamps; exact, needs
//!   [`MovingWindowSupport`](crate::storage::MovingWindowSupport).
//! - [`SlidingWindowCounterRateLimiter`]: two fixed buckets weighted into an
//!   approximation of a moving window; needs
//!   [`SlidingWindowCounterSupport`](crate::storage::SlidingWindowCounterSupport).
//!
//! Every limiter implements [`RateLimiter`]. Keys come from
//! [`RateLimitItem::key_for`], so the same item and identifiers reach the
//! same counters whichever process (or `limits` itself) wrote them.
//! A refused hit is `Ok(false)`, never an error; errors are bad arguments
//! (a cost of zero or above [`MAX_AMOUNT`]) and failing storages.
//!
//! Each strategy decides in one pure function of its module, `judge`: from
//! the window's state (counts, times), the limit and the cost, whether the
//! cost fits and the [`Decision`] it leaves. The synchronous limiters here
//! and the asynchronous ones in [`aio`](crate::aio) only fetch the state
//! and ask it; a hit's own admission is the storage's, made atomically with
//! the count.

pub(crate) mod fixed_window;
pub(crate) mod moving_window;
pub(crate) mod sliding_window;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use fixed_window::{FixedWindowElasticExpiryRateLimiter, FixedWindowRateLimiter};
pub use moving_window::MovingWindowRateLimiter;
pub use sliding_window::SlidingWindowCounterRateLimiter;

use crate::error::{Error, Result};
use crate::item::RateLimitItem;
use crate::storage::{Storage, MAX_AMOUNT};

/// The state of an identity's window, as [`RateLimiter::get_window_stats`]
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct WindowStats {
    /// When the window (or, for the sliding window counter, the next unit of
    /// quota) frees up, in Unix seconds.
    pub reset_time: f64,
    /// Hits still allowed in the current window.
    pub remaining: u64,
}

impl WindowStats {
    /// The stats of a window that resets at `reset_time` (Unix seconds)
    /// with `remaining` hits left, for limiters of your own.
    pub fn new(reset_time: f64, remaining: u64) -> Self {
        WindowStats {
            reset_time,
            remaining,
        }
    }
}

/// One hit's answer together with the window it leaves: what a server tells
/// its client (admitted or not, the limit, what is left, when it resets).
/// [`AsyncRateLimiter::decide`](crate::aio::AsyncRateLimiter::decide)
/// returns it from one storage call.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the hit was admitted.
    pub admitted: bool,
    /// The item's limit (its amount).
    pub limit: u64,
    /// Hits still allowed in the window after this one.
    pub remaining: u64,
    /// When the window (or, for the sliding window counter, the next unit of
    /// quota) frees up, in Unix seconds.
    pub reset_time: f64,
}

impl Decision {
    /// The decision `admitted` for `item`, with the window `stats`.
    pub fn new(admitted: bool, item: &crate::RateLimitItem, stats: WindowStats) -> Self {
        Decision {
            admitted,
            limit: item.amount(),
            remaining: stats.remaining,
            reset_time: stats.reset_time,
        }
    }

    /// The window this decision leaves: its reset time and what remains.
    pub fn stats(&self) -> WindowStats {
        WindowStats {
            reset_time: self.reset_time,
            remaining: self.remaining,
        }
    }

    /// This decision with `admitted` as the storage answered it: a hit's
    /// admission is decided by the storage, atomically with the count, and
    /// the rest of the decision is judged from the window it leaves.
    #[cfg(feature = "async")]
    #[inline]
    pub(crate) fn admitted(self, admitted: bool) -> Self {
        Decision { admitted, ..self }
    }
}

/// A rate-limiting strategy bound to a storage.
pub trait RateLimiter: Send + Sync {
    /// Consumes `cost` units of `item`'s quota for the identity
    /// `identifiers`; returns whether the hit is allowed.
    ///
    /// `cost` must be between 1 and [`MAX_AMOUNT`], else this is an
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument)
    /// error. A cost above the item's amount can never fit and is refused
    /// (`Ok(false)`) without touching the storage.
    fn hit(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool>;

    /// Whether a hit of `cost` would be allowed now, consuming nothing.
    /// `cost` is checked as in [`hit`](Self::hit).
    fn test(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool>;

    /// When the window resets and how much quota is left.
    fn get_window_stats(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<WindowStats>;

    /// Forgets the identity's state for `item`.
    fn clear(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()>;

    /// [`hit`](Self::hit), answering the window the hit leaves as well:
    /// admitted, limit, remaining and reset together, as
    /// [`AsyncRateLimiter::decide`](crate::aio::AsyncRateLimiter::decide)
    /// does. The synchronous storages have no combined call, so this is
    /// `hit`, then `get_window_stats`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use limitstore::{FixedWindowRateLimiter, MemoryStorage, RateLimitItem, RateLimiter};
    ///
    /// let limiter = FixedWindowRateLimiter::new(Arc::new(MemoryStorage::new()));
    /// let item = RateLimitItem::per_minute(2).unwrap();
    /// let first = limiter.decide(&item, &["alice"], 1).unwrap();
    /// assert!(first.admitted);
    /// assert_eq!((first.limit, first.remaining), (2, 1));
    /// assert!(!limiter.decide(&item, &["alice"], 2).unwrap().admitted);
    /// ```
    fn decide(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<Decision> {
        let admitted = self.hit(item, identifiers, cost)?;
        let stats = self.get_window_stats(item, identifiers)?;
        Ok(Decision::new(admitted, item, stats))
    }
}

macro_rules! forward_rate_limiter {
    ($($pointer:ident),*) => {$(
        /// Forwards to the limiter pointed to, so shared and boxed limiters
        /// are limiters too.
        impl<L: RateLimiter + ?Sized> RateLimiter for $pointer<L> {
            #[inline]
            fn hit(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
                (**self).hit(item, identifiers, cost)
            }
            fn test(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
                (**self).test(item, identifiers, cost)
            }
            fn get_window_stats(
                &self,
                item: &RateLimitItem,
                identifiers: &[&str],
            ) -> Result<WindowStats> {
                (**self).get_window_stats(item, identifiers)
            }
            fn clear(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()> {
                (**self).clear(item, identifiers)
            }
            fn decide(
                &self,
                item: &RateLimitItem,
                identifiers: &[&str],
                cost: u64,
            ) -> Result<Decision> {
                (**self).decide(item, identifiers, cost)
            }
        }
    )*};
}

forward_rate_limiter!(Arc, Box);

/// The strategies, named as in `limits`' `STRATEGIES` registry.
///
/// ```
/// use limitstore::Strategy;
/// let s: Strategy = "moving-window".parse().unwrap();
/// assert_eq!(s, Strategy::MovingWindow);
/// assert_eq!(Strategy::FixedWindowElasticExpiry.to_string(), "fixed-window-elastic-expiry");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// [`FixedWindowRateLimiter`], `"fixed-window"`.
    FixedWindow,
    /// [`FixedWindowElasticExpiryRateLimiter`], `"fixed-window-elastic-expiry"`.
    FixedWindowElasticExpiry,
    /// [`MovingWindowRateLimiter`], `"moving-window"`.
    MovingWindow,
    /// [`SlidingWindowCounterRateLimiter`], `"sliding-window-counter"`.
    SlidingWindowCounter,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 4] = [
        Strategy::FixedWindow,
        Strategy::FixedWindowElasticExpiry,
        Strategy::MovingWindow,
        Strategy::SlidingWindowCounter,
    ];

    /// The strategy's name in `limits`.
    pub const fn name(self) -> &'static str {
        match self {
            Strategy::FixedWindow => "fixed-window",
            Strategy::FixedWindowElasticExpiry => "fixed-window-elastic-expiry",
            Strategy::MovingWindow => "moving-window",
            Strategy::SlidingWindowCounter => "sliding-window-counter",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    /// Parses a strategy name; an unknown one is a
    /// [configuration error](crate::ErrorKind::Configuration).
    fn from_str(s: &str) -> Result<Self> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| {
                Error::configuration(format!(
                    "unknown rate-limiting strategy `{s}` (expected one of: fixed-window, \
                     fixed-window-elastic-expiry, moving-window, sliding-window-counter)"
                ))
            })
    }
}

/// Builds the limiter of `strategy` over `storage`. Fails with a
/// [configuration error](crate::ErrorKind::Configuration) when the storage
/// lacks what the strategy needs.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::{limiter_for, parse, MemoryStorage, Storage, Strategy};
///
/// let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
/// let limiter = limiter_for("sliding-window-counter".parse().unwrap(), storage).unwrap();
/// let item = parse("2/minute").unwrap();
/// assert!(limiter.hit(&item, &["user"], 1).unwrap());
/// assert!(limiter.hit(&item, &["user"], 1).unwrap());
/// assert!(!limiter.hit(&item, &["user"], 1).unwrap());
/// ```
pub fn limiter_for(strategy: Strategy, storage: Arc<dyn Storage>) -> Result<Box<dyn RateLimiter>> {
    Ok(match strategy {
        Strategy::FixedWindow => Box::new(FixedWindowRateLimiter::new(storage)),
        Strategy::FixedWindowElasticExpiry => {
            Box::new(FixedWindowElasticExpiryRateLimiter::new(storage)?)
        }
        Strategy::MovingWindow => Box::new(MovingWindowRateLimiter::new(storage)?),
        Strategy::SlidingWindowCounter => Box::new(SlidingWindowCounterRateLimiter::new(storage)?),
    })
}

/// Checks `cost` and says whether it can fit in `item` at all (`cost <=
/// amount`); a cost that cannot is refused without touching the storage.
#[inline]
pub(crate) fn cost_fits(item: &RateLimitItem, cost: u64) -> Result<bool> {
    validate_cost(cost)?;
    Ok(cost <= item.amount())
}

/// Whether `cost` more fits beside `count` under a limit of `amount` (the
/// admission of the fixed and moving windows); `cost <= amount`, as
/// [`cost_fits`] checked.
#[inline]
fn room_for(count: u64, amount: u64, cost: u64) -> bool {
    // `count + cost <= amount`, without overflow.
    count <= amount - cost
}

/// Checks a cost: at least 1, at most [`MAX_AMOUNT`].
#[inline]
fn validate_cost(cost: u64) -> Result<()> {
    if cost == 0 {
        return Err(Error::invalid_argument("cost must be at least 1"));
    }
    if cost > MAX_AMOUNT {
        return Err(Error::invalid_argument(format!(
            "cost {cost} exceeds the maximum of {MAX_AMOUNT}"
        )));
    }
    Ok(())
}

/// Runs `f` on the key string of `item` and `identifiers`, built in the
/// per-thread buffer ([`LimitKey::with_str`](crate::LimitKey::with_str)).
#[inline]
fn with_key<R>(item: &RateLimitItem, identifiers: &[&str], f: impl FnOnce(&str) -> R) -> R {
    item.key(identifiers).with_str(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_boxed_limiters_are_limiters() {
        fn hit_twice(limiter: impl RateLimiter, item: &RateLimitItem) -> (bool, bool) {
            (
                limiter.hit(item, &["k"], 1).unwrap(),
                limiter.hit(item, &["k"], 1).unwrap(),
            )
        }
        let item = RateLimitItem::per_minute(1).unwrap();
        let storage: Arc<dyn Storage> = Arc::new(crate::MemoryStorage::new());
        let boxed = limiter_for(Strategy::MovingWindow, Arc::clone(&storage)).unwrap();
        assert_eq!(hit_twice(boxed, &item), (true, false));
        let shared = Arc::new(FixedWindowRateLimiter::new(storage));
        assert_eq!(hit_twice(Arc::clone(&shared), &item), (true, false));
        assert_eq!(shared.get_window_stats(&item, &["k"]).unwrap().remaining, 0);
        shared.clear(&item, &["k"]).unwrap();
        assert!(shared.test(&item, &["k"], 1).unwrap());
    }

    #[test]
    fn costs() {
        assert!(validate_cost(1).is_ok());
        assert!(validate_cost(MAX_AMOUNT).is_ok());
        assert!(validate_cost(0).is_err());
        assert!(validate_cost(MAX_AMOUNT + 1).is_err());
    }
}
