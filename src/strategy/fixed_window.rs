//! Fixed windows: one counter per identity and window.

use std::fmt;
use std::sync::Arc;

use super::{cost_fits, room_for, with_key, Decision, RateLimiter, WindowStats};
use crate::error::Result;
use crate::item::RateLimitItem;
use crate::storage::{lacks, Capability, FixedWindow, Storage};

/// The fixed window strategy (`"fixed-window"`): a counter per identity
/// whose window starts at its first hit and lasts the item's expiry.
///
/// As in `limits`, a hit increments the counter and is allowed if the new
/// count is within the limit; a refused hit still counts. A hit whose cost
/// alone exceeds the limit is refused without touching the counter.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::{FixedWindowRateLimiter, MemoryStorage, RateLimitItem, RateLimiter};
///
/// let limiter = FixedWindowRateLimiter::new(Arc::new(MemoryStorage::new()));
/// let item = RateLimitItem::per_minute(2).unwrap();
/// assert!(limiter.hit(&item, &["alice"], 1).unwrap());
/// assert!(limiter.hit(&item, &["alice"], 1).unwrap());
/// assert!(!limiter.hit(&item, &["alice"], 1).unwrap());
/// assert!(limiter.hit(&item, &["bob"], 1).unwrap());
/// assert_eq!(limiter.get_window_stats(&item, &["alice"]).unwrap().remaining, 0);
/// ```
pub struct FixedWindowRateLimiter<S: Storage + ?Sized = dyn Storage> {
    storage: Arc<S>,
}

/// The fixed window strategy with elastic expiry
/// (`"fixed-window-elastic-expiry"`): like [`FixedWindowRateLimiter`], but
/// every hit (allowed or not) pushes the window's end out to a full expiry
/// from now, so an identity that keeps hitting stays limited until it pauses
/// for a whole window.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::{FixedWindowElasticExpiryRateLimiter, MemoryStorage, RateLimitItem, RateLimiter};
///
/// let limiter = FixedWindowElasticExpiryRateLimiter::new(Arc::new(MemoryStorage::new())).unwrap();
/// let item = RateLimitItem::per_second(1).unwrap();
/// assert!(limiter.hit(&item, &["alice"], 1).unwrap());
/// assert!(!limiter.test(&item, &["alice"], 1).unwrap());
/// ```
pub struct FixedWindowElasticExpiryRateLimiter<S: Storage + ?Sized = dyn Storage> {
    inner: FixedWindowRateLimiter<S>,
}

impl<S: Storage + ?Sized> FixedWindowRateLimiter<S> {
    /// A fixed window limiter over `storage`. Every storage supports it.
    pub fn new(storage: Arc<S>) -> Self {
        FixedWindowRateLimiter { storage }
    }

    /// The storage this limiter counts in.
    pub fn storage(&self) -> &Arc<S> {
        &self.storage
    }

    #[inline]
    fn hit_with(
        &self,
        item: &RateLimitItem,
        identifiers: &[&str],
        cost: u64,
        elastic: bool,
    ) -> Result<bool> {
        if !cost_fits(item, cost)? {
            return Ok(false);
        }
        let amount = item.amount();
        let expiry = item.get_expiry();
        self.storage
            .incr_within_key(item.key(identifiers), expiry, elastic, cost, amount)
    }

    fn test_impl(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        if !cost_fits(item, cost)? {
            return Ok(false);
        }
        let count = with_key(item, identifiers, |key| self.storage.get(key))?;
        Ok(fits(count, item.amount(), cost))
    }

    fn stats_impl(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<WindowStats> {
        let window = with_key(item, identifiers, |key| {
            Ok::<_, crate::Error>(FixedWindow {
                expires_at: self.storage.get_expiry(key)?,
                count: self.storage.get(key)?,
            })
        })?;
        Ok(judge(window, item.amount(), 1, || self.storage.unix_now()).stats())
    }

    fn clear_impl(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()> {
        with_key(item, identifiers, |key| self.storage.clear(key))
    }
}

/// Everything a fixed window answers, judged from its state: whether `cost`
/// more fits beside its count under `limit` (`cost <= limit`, as
/// [`cost_fits`] checked), what is left and when it resets. An absent window
/// (`expires_at` 0) resets now; `now` is read only then. The sync and async
/// limiters both decide here: `test` asks `admitted`, `get_window_stats` the
/// stats, and a hit keeps the storage's own admission beside the stats of
/// the window it leaves.
pub(crate) fn judge(
    window: FixedWindow,
    limit: u64,
    cost: u64,
    now: impl FnOnce() -> f64,
) -> Decision {
    Decision {
        admitted: fits(window.count, limit, cost),
        limit,
        remaining: limit.saturating_sub(window.count),
        reset_time: if window.expires_at == 0.0 {
            now()
        } else {
            window.expires_at
        },
    }
}

/// Whether `cost` more fits beside `count` under `limit`: [`judge`]'s
/// admission, for a `test`, which reads the count alone.
#[inline]
pub(crate) fn fits(count: u64, limit: u64, cost: u64) -> bool {
    room_for(count, limit, cost)
}

impl<S: Storage + ?Sized> RateLimiter for FixedWindowRateLimiter<S> {
    #[inline]
    fn hit(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        self.hit_with(item, identifiers, cost, false)
    }

    fn test(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        self.test_impl(item, identifiers, cost)
    }

    fn get_window_stats(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<WindowStats> {
        self.stats_impl(item, identifiers)
    }

    fn clear(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()> {
        self.clear_impl(item, identifiers)
    }
}

impl<S: Storage + ?Sized> FixedWindowElasticExpiryRateLimiter<S> {
    /// An elastic-expiry fixed window limiter over `storage`. Fails with a
    /// [configuration error](crate::ErrorKind::Configuration) if the storage
    /// cannot extend a window ([`Storage::elastic_expiry`] is false).
    pub fn new(storage: Arc<S>) -> Result<Self> {
        if !storage.elastic_expiry() {
            return Err(lacks::<S>(Capability::ElasticExpiry));
        }
        Ok(FixedWindowElasticExpiryRateLimiter {
            inner: FixedWindowRateLimiter::new(storage),
        })
    }

    /// The storage this limiter counts in.
    pub fn storage(&self) -> &Arc<S> {
        self.inner.storage()
    }
}

impl<S: Storage + ?Sized> RateLimiter for FixedWindowElasticExpiryRateLimiter<S> {
    #[inline]
    fn hit(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        self.inner.hit_with(item, identifiers, cost, true)
    }

    fn test(&self, item: &RateLimitItem, identifiers: &[&str], cost: u64) -> Result<bool> {
        self.inner.test_impl(item, identifiers, cost)
    }

    fn get_window_stats(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<WindowStats> {
        self.inner.stats_impl(item, identifiers)
    }

    fn clear(&self, item: &RateLimitItem, identifiers: &[&str]) -> Result<()> {
        self.inner.clear_impl(item, identifiers)
    }
}

impl<S: Storage + ?Sized> Clone for FixedWindowRateLimiter<S> {
    fn clone(&self) -> Self {
        FixedWindowRateLimiter {
            storage: Arc::clone(&self.storage),
        }
    }
}

impl<S: Storage + ?Sized> Clone for FixedWindowElasticExpiryRateLimiter<S> {
    fn clone(&self) -> Self {
        FixedWindowElasticExpiryRateLimiter {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Storage + ?Sized> fmt::Debug for FixedWindowRateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedWindowRateLimiter")
            .field("storage", &self.storage)
            .finish()
    }
}

impl<S: Storage + ?Sized> fmt::Debug for FixedWindowElasticExpiryRateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedWindowElasticExpiryRateLimiter")
            .field("storage", &self.inner.storage)
            .finish()
    }
}
