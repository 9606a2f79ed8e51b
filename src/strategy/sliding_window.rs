//! Sliding window counters: two fixed buckets, the previous one weighted by
//! how much of it still overlaps the moving window.

use std::fmt;
use std::sync::Arc;

use super::{cost_fits, with_key, Decision, RateLimiter, WindowStats};
use crate::error::Result;
use crate::item::RateLimitItem;
use crate::storage::{SlidingWindow, SlidingWindowCounterSupport, Storage};

/// The sliding window counter strategy (`"sliding-window-counter"`): the
/// count a hit is judged against is `previous * (share of the previous window
/// still inside the moving window) + current`, an approximation of a moving
/// window that costs two counters per identity.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::{MemoryStorage, RateLimitItem, RateLimiter, SlidingWindowCounterRateLimiter};
///
/// let limiter = SlidingWindowCounterRateLimiter::new(Arc::new(MemoryStorage::new())).unwrap();
/// let item = RateLimitItem::per_day(5).unwrap();
/// assert!(limiter.hit(&item, &["alice"], 5).unwrap());
/// assert!(!limiter.test(&item, &["alice"], 1).unwrap());
/// limiter.clear(&item, &["alice"]).unwrap();
/// assert!(limiter.hit(&item, &["alice"], 1).unwrap());
/// ```
pub struct SlidingWindowCounterRateLimiter<S: Storage + ?Sized = dyn Storage> {
    storage: Arc<S>,
}

impl<S: Storage + ?Sized> SlidingWindowCounterRateLimiter<S> {
    /// A sliding window counter limiter over `storage`. Fails with a
    /// [configuration error](crate::ErrorKind::Configuration) if the storage
    /// cannot hold sliding window counters ([`Storage::sliding_window`] is
    /// `None`).
    pub fn new(storage: Arc<S>) -> Result<Self> {
        crate::storage::sliding_counters(&*storage)?;
        Ok(SlidingWindowCounterRateLimiter { storage })
    }

    /// The storage this limiter keeps its counters in.
    pub fn storage(&self) -> &Arc<S> {
        &self.storage
    }

    fn counters(&self) -> Result<&dyn SlidingWindowCounterSupport> {
        crate::storage::sliding_counters(&*self.storage)
    }
}

impl<S: Storage + ?Sized> RateLimiter for SlidingWindowCounterRateLimiter<S> {
    fn hit(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        if !cost_fits(item, cost)? {
            return Ok(false);
        }
        let amount = item.amount();
        let counters = self.counters()?;
        let expiry = item.get_expiry();
        counters.acquire_sliding_window_entry_key(item.key(identifiers), amount, expiry, cost)
    }

    fn test(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        if !cost_fits(item, cost)? {
            return Ok(false);
        }
        let amount = item.amount();
        let counters = self.counters()?;
        let expiry = item.get_expiry();
        let window = with_key(item, identifiers, |key| {
            counters.get_sliding_window(key, expiry)
        })?;
        Ok(fits(&window, amount, expiry, cost))
    }

    fn get_window_stats(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<WindowStats> {
        let counters = self.counters()?;
        let (amount, expiry) = (item.amount(), item.get_expiry());
        let window = with_key(item, identifiers, |key| {
            counters.get_sliding_window(key, expiry)
        })?;
        Ok(judge(&window, amount, expiry, 1, self.storage.unix_now()).stats())
    }

    fn clear(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()> {
        let counters = self.counters()?;
        let expiry = item.get_expiry();
        with_key(item, identifiers, |key| {
            counters.clear_sliding_window(key, expiry)
        })
    }
}

/// Everything a sliding window counter of `limit` per `expiry` seconds
/// answers at Unix time `now`, judged from its two buckets: whether `cost`
/// more fits under the weighted count (`cost <= limit`, as [`cost_fits`]
/// checked), what is left and when the next unit of quota frees up. The sync
/// and async limiters both decide here, as
/// [`fixed_window::judge`](super::fixed_window::judge) says.
pub(crate) fn judge(
    window: &SlidingWindow,
    limit: u64,
    expiry: u64,
    cost: u64,
    now: f64,
) -> Decision {
    let weighted = window.weighted_count(expiry);
    let remaining = if weighted.floor() >= limit as f64 {
        0
    } else {
        limit - weighted.floor() as u64
    };
    Decision {
        admitted: fits(window, limit, expiry, cost),
        limit,
        remaining,
        reset_time: now + frees_in(window, expiry),
    }
}

/// Whether `cost` more fits under the weighted count: [`judge`]'s
/// admission, for a `test`, which needs no clock.
#[inline]
pub(crate) fn fits(window: &SlidingWindow, limit: u64, expiry: u64, cost: u64) -> bool {
    window.weighted_count(expiry) < (limit - cost + 1) as f64
}

/// Seconds until a unit of the window's quota frees up (0 for an empty one).
fn frees_in(window: &SlidingWindow, expiry: u64) -> f64 {
    if window.previous_count == 0 && window.current_count == 0 {
        return 0.0;
    }
    let expiry = expiry as f64;
    // The previous bucket's weight drops by one hit every
    // `expiry / previous_count` seconds.
    let previous_reset_in = if window.previous_count > 0 {
        window.previous_expires_in % (expiry / window.previous_count as f64)
    } else {
        f64::INFINITY
    };
    // The current bucket weighs in full until its window ends. Exactly at
    // a window's start the modulo is zero although the end is a whole
    // window away.
    let current_reset_in = if window.current_count > 0 {
        match window.current_expires_in % expiry {
            r if r > 0.0 => r,
            _ => expiry,
        }
    } else {
        f64::INFINITY
    };
    previous_reset_in.min(current_reset_in)
}

impl<S: Storage + ?Sized> Clone for SlidingWindowCounterRateLimiter<S> {
    fn clone(&self) -> Self {
        SlidingWindowCounterRateLimiter {
            storage: Arc::clone(&self.storage),
        }
    }
}

impl<S: Storage + ?Sized> fmt::Debug for SlidingWindowCounterRateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingWindowCounterRateLimiter")
            .field("storage", &self.storage)
            .finish()
    }
}
