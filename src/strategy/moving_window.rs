//! Moving windows: a log of hit timestamps per identity.

use std::fmt;
use std::sync::Arc;

use super::{cost_fits, room_for, with_key, Decision, RateLimiter, WindowStats};
use crate::error::Result;
use crate::item::RateLimitItem;
use crate::storage::{MovingWindow, MovingWindowSupport, Storage};

/// The moving window strategy (`"moving-window"`): a hit is allowed if, with
/// it, no more than the limit's amount of hits fall inside the last window
/// (the item's expiry, ending now). Exact, and the most expensive in memory:
/// the storage keeps one timestamp per allowed hit, and storages may cap the
/// amount (the memory storage at
/// [`MAX_MOVING_WINDOW_LIMIT`](crate::storage::MAX_MOVING_WINDOW_LIMIT); a
/// larger one is an [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) error).
///
/// ```
/// use std::sync::Arc;
/// use limitstore::{MemoryStorage, MovingWindowRateLimiter, RateLimitItem, RateLimiter};
///
/// let limiter = MovingWindowRateLimiter::new(Arc::new(MemoryStorage::new())).unwrap();
/// let item = RateLimitItem::per_hour(3).unwrap();
/// assert!(limiter.hit(&item, &["alice"], 2).unwrap());
/// assert!(!limiter.hit(&item, &["alice"], 2).unwrap());
/// assert!(limiter.hit(&item, &["alice"], 1).unwrap());
/// assert_eq!(limiter.get_window_stats(&item, &["alice"]).unwrap().remaining, 0);
/// ```
pub struct MovingWindowRateLimiter<S: Storage + ?Sized = dyn Storage> {
    storage: Arc<S>,
}

impl<S: Storage + ?Sized> MovingWindowRateLimiter<S> {
    /// A moving window limiter over `storage`. Fails with a
    /// [configuration error](crate::ErrorKind::Configuration) if the storage
    /// cannot hold moving windows ([`Storage::moving_window`] is `None`).
    pub fn new(storage: Arc<S>) -> Result<Self> {
        crate::storage::moving_windows(&*storage)?;
        Ok(MovingWindowRateLimiter { storage })
    }

    /// The storage this limiter keeps its windows in.
    pub fn storage(&self) -> &Arc<S> {
        &self.storage
    }

    fn windows(&self) -> Result<&dyn MovingWindowSupport> {
        crate::storage::moving_windows(&*self.storage)
    }
}

impl<S: Storage + ?Sized> RateLimiter for MovingWindowRateLimiter<S> {
    fn hit(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        if !cost_fits(item, cost)? {
            return Ok(false);
        }
        let amount = item.amount();
        let windows = self.windows()?;
        let expiry = item.get_expiry();
        windows.acquire_entry_key(item.key(identifiers), amount, expiry, cost)
    }

    fn test(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        if !cost_fits(item, cost)? {
            return Ok(false);
        }
        let amount = item.amount();
        let windows = self.windows()?;
        let expiry = item.get_expiry();
        let window = with_key(item, identifiers, |key| {
            windows.get_moving_window(key, amount, expiry)
        })?;
        Ok(judge(&window, amount, expiry, cost).admitted)
    }

    fn get_window_stats(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<WindowStats> {
        let windows = self.windows()?;
        let (amount, expiry) = (item.amount(), item.get_expiry());
        let window = with_key(item, identifiers, |key| {
            windows.get_moving_window(key, amount, expiry)
        })?;
        Ok(judge(&window, amount, expiry, 1).stats())
    }

    fn clear(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()> {
        with_key(item, identifiers, |key| self.storage.clear(key))
    }
}

/// Everything a moving window of `limit` per `expiry` seconds answers,
/// judged from its state: whether `cost` more fits beside the entries inside
/// it (`cost <= limit`, as [`cost_fits`] checked), what is left and when its
/// oldest entry leaves. The sync and async limiters both decide here, as
/// [`fixed_window::judge`](super::fixed_window::judge) says.
pub(crate) fn judge(window: &MovingWindow, limit: u64, expiry: u64, cost: u64) -> Decision {
    Decision {
        admitted: room_for(window.count, limit, cost),
        limit,
        remaining: limit.saturating_sub(window.count),
        reset_time: window.start + expiry as f64,
    }
}

impl<S: Storage + ?Sized> Clone for MovingWindowRateLimiter<S> {
    fn clone(&self) -> Self {
        MovingWindowRateLimiter {
            storage: Arc::clone(&self.storage),
        }
    }
}

impl<S: Storage + ?Sized> fmt::Debug for MovingWindowRateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MovingWindowRateLimiter")
            .field("storage", &self.storage)
            .finish()
    }
}
