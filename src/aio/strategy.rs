//! The strategies over an [`AsyncStorage`]: the same decisions as the
//! synchronous limiters in [`strategy`](crate::strategy), awaiting the storage.

use std::fmt;
use std::sync::Arc;

use super::{AsyncMovingWindowSupport, AsyncSlidingWindowCounterSupport, AsyncStorage, BoxFuture};
use crate::error::Result;
use crate::item::RateLimitItem;
use crate::storage::FixedWindow;
use crate::storage::PooledKey;
use crate::storage::{lacks, Capability};
use crate::strategy::{
    cost_fits, fixed_window, moving_window, sliding_window, Decision, Strategy, WindowStats,
};

/// The asynchronous twin of [`RateLimiter`](crate::RateLimiter): the same
/// methods with the same meaning, returning futures.
pub trait AsyncRateLimiter: Send + Sync {
    /// See [`RateLimiter::hit`](crate::RateLimiter::hit).
    fn hit<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<bool>>;

    /// See [`RateLimiter::test`](crate::RateLimiter::test).
    fn test<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<bool>>;

    /// See [`RateLimiter::get_window_stats`](crate::RateLimiter::get_window_stats).
    fn get_window_stats<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
    ) -> BoxFuture<'a, Result<WindowStats>>;

    /// See [`RateLimiter::clear`](crate::RateLimiter::clear).
    fn clear<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
    ) -> BoxFuture<'a, Result<()>>;

    /// [`hit`](AsyncRateLimiter::hit), answering the window the hit leaves
    /// as well: admitted, limit, remaining and reset together. The limiters
    /// of this crate make one storage call for it (one script on the Redis
    /// family; one pass over the tables on memory); the default awaits
    /// `hit`, then `get_window_stats`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use limitstore::aio::{async_limiter_for, async_storage_from_string};
    /// use limitstore::{parse, Options, Strategy};
    ///
    /// let storage = async_storage_from_string("memory://", &Options::new()).unwrap();
    /// let limiter = async_limiter_for(Strategy::FixedWindow, storage).unwrap();
    /// let item = parse("2/minute").unwrap();
    /// let first = limiter.decide(&item, &["alice"], 1).await.unwrap();
    /// assert!(first.admitted);
    /// assert_eq!((first.limit, first.remaining), (2, 1));
    /// limiter.decide(&item, &["alice"], 1).await.unwrap();
    /// let third = limiter.decide(&item, &["alice"], 1).await.unwrap();
    /// assert!(!third.admitted);
    /// assert_eq!(third.remaining, 0);
    /// # });
    /// ```
    fn decide<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(async move {
            let admitted = self.hit(item, identifiers, cost).await?;
            let stats = self.get_window_stats(item, identifiers).await?;
            Ok(Decision::new(admitted, item, stats))
        })
    }
}

/// Builds the asynchronous limiter of `strategy` over `storage`. Fails with a
/// [configuration error](crate::ErrorKind::Configuration) when the storage
/// lacks what the strategy needs.
pub fn async_limiter_for(
    strategy: Strategy,
    storage: Arc<dyn AsyncStorage>,
) -> Result<Box<dyn AsyncRateLimiter>> {
    Ok(match strategy {
        Strategy::FixedWindow => Box::new(AsyncFixedWindowRateLimiter::new(storage)),
        Strategy::FixedWindowElasticExpiry => {
            Box::new(AsyncFixedWindowElasticExpiryRateLimiter::new(storage)?)
        }
        Strategy::MovingWindow => Box::new(AsyncMovingWindowRateLimiter::new(storage)?),
        Strategy::SlidingWindowCounter => {
            Box::new(AsyncSlidingWindowCounterRateLimiter::new(storage)?)
        }
    })
}

macro_rules! limiter_struct {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<S: AsyncStorage + ?Sized = dyn AsyncStorage> {
            storage: Arc<S>,
        }

        impl<S: AsyncStorage + ?Sized> $name<S> {
            /// The storage this limiter counts in.
            pub fn storage(&self) -> &Arc<S> {
                &self.storage
            }
        }

        impl<S: AsyncStorage + ?Sized> Clone for $name<S> {
            fn clone(&self) -> Self {
                $name {
                    storage: Arc::clone(&self.storage),
                }
            }
        }

        impl<S: AsyncStorage + ?Sized> fmt::Debug for $name<S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("storage", &self.storage)
                    .finish()
            }
        }
    };
}

limiter_struct!(
    /// A fixed window over an [`AsyncStorage`]; see
    /// [`FixedWindowRateLimiter`](crate::FixedWindowRateLimiter).
    AsyncFixedWindowRateLimiter
);
limiter_struct!(
    /// A fixed window whose expiry every hit pushes out, over an
    /// [`AsyncStorage`]; see
    /// [`FixedWindowElasticExpiryRateLimiter`](crate::FixedWindowElasticExpiryRateLimiter).
    AsyncFixedWindowElasticExpiryRateLimiter
);
limiter_struct!(
    /// A moving window over an [`AsyncStorage`]; see
    /// [`MovingWindowRateLimiter`](crate::MovingWindowRateLimiter).
    AsyncMovingWindowRateLimiter
);
limiter_struct!(
    /// A sliding window counter over an [`AsyncStorage`]; see
    /// [`SlidingWindowCounterRateLimiter`](crate::SlidingWindowCounterRateLimiter).
    AsyncSlidingWindowCounterRateLimiter
);

impl<S: AsyncStorage + ?Sized> AsyncFixedWindowRateLimiter<S> {
    /// A limiter counting in `storage`.
    pub fn new(storage: Arc<S>) -> Self {
        AsyncFixedWindowRateLimiter { storage }
    }
}

impl<S: AsyncStorage + ?Sized> AsyncFixedWindowElasticExpiryRateLimiter<S> {
    /// A limiter counting in `storage`; a configuration error if the
    /// storage cannot extend a window (see
    /// [`Storage::elastic_expiry`](crate::Storage::elastic_expiry)).
    pub fn new(storage: Arc<S>) -> Result<Self> {
        if !storage.elastic_expiry() {
            return Err(lacks::<S>(Capability::ElasticExpiry));
        }
        Ok(AsyncFixedWindowElasticExpiryRateLimiter { storage })
    }
}

impl<S: AsyncStorage + ?Sized> AsyncMovingWindowRateLimiter<S> {
    /// A limiter keeping its windows in `storage`; a configuration error if
    /// the storage has no moving window support.
    pub fn new(storage: Arc<S>) -> Result<Self> {
        super::moving_windows(&*storage)?;
        Ok(AsyncMovingWindowRateLimiter { storage })
    }

    fn windows(&self) -> Result<&dyn AsyncMovingWindowSupport> {
        super::moving_windows(&*self.storage)
    }
}

impl<S: AsyncStorage + ?Sized> AsyncSlidingWindowCounterRateLimiter<S> {
    /// A limiter keeping its counters in `storage`; a configuration error if
    /// the storage has no sliding window counter support.
    pub fn new(storage: Arc<S>) -> Result<Self> {
        super::sliding_counters(&*storage)?;
        Ok(AsyncSlidingWindowCounterRateLimiter { storage })
    }

    fn counters(&self) -> Result<&dyn AsyncSlidingWindowCounterSupport> {
        super::sliding_counters(&*self.storage)
    }
}

async fn fixed_hit<S: AsyncStorage + ?Sized>(
    storage: &S,
    item: &RateLimitItem,
    identifiers: &[&str],
    cost: u64,
    elastic: bool,
) -> Result<bool> {
    if !cost_fits(item, cost)? {
        return Ok(false);
    }
    let key = item.key(identifiers);
    storage
        .incr_within_key(key, item.get_expiry(), elastic, cost, item.amount())
        .await
}

async fn fixed_test<S: AsyncStorage + ?Sized>(
    storage: &S,
    item: &RateLimitItem,
    identifiers: &[&str],
    cost: u64,
) -> Result<bool> {
    if !cost_fits(item, cost)? {
        return Ok(false);
    }
    let count = storage.get(&PooledKey::new(&item.key(identifiers))).await?;
    Ok(fixed_window::fits(count, item.amount(), cost))
}

async fn fixed_stats<S: AsyncStorage + ?Sized>(
    storage: &S,
    item: &RateLimitItem,
    identifiers: &[&str],
) -> Result<WindowStats> {
    let key = PooledKey::new(&item.key(identifiers));
    let window = FixedWindow {
        expires_at: storage.get_expiry(&key).await?,
        count: storage.get(&key).await?,
    };
    Ok(fixed_window::judge(window, item.amount(), 1, || storage.unix_now()).stats())
}

async fn fixed_decide<S: AsyncStorage + ?Sized>(
    storage: &S,
    item: &RateLimitItem,
    identifiers: &[&str],
    cost: u64,
    elastic: bool,
) -> Result<Decision> {
    if !cost_fits(item, cost)? {
        let stats = fixed_stats(storage, item, identifiers).await?;
        return Ok(Decision::new(false, item, stats));
    }
    let key = item.key(identifiers);
    let (admitted, window) = storage
        .incr_within_and_window_key(key, item.get_expiry(), elastic, cost, item.amount())
        .await?;
    Ok(fixed_window::judge(window, item.amount(), cost, || storage.unix_now()).admitted(admitted))
}

macro_rules! fixed_limiter {
    ($name:ident, $elastic:expr) => {
        impl<S: AsyncStorage + ?Sized> AsyncRateLimiter for $name<S> {
            fn hit<'a>(
                &'a self,
                item: &'a RateLimitItem,
                identifiers: &'a [&'a str],
                cost: u64,
            ) -> BoxFuture<'a, Result<bool>> {
                Box::pin(fixed_hit(&*self.storage, item, identifiers, cost, $elastic))
            }

            fn test<'a>(
                &'a self,
                item: &'a RateLimitItem,
                identifiers: &'a [&'a str],
                cost: u64,
            ) -> BoxFuture<'a, Result<bool>> {
                Box::pin(fixed_test(&*self.storage, item, identifiers, cost))
            }

            fn get_window_stats<'a>(
                &'a self,
                item: &'a RateLimitItem,
                identifiers: &'a [&'a str],
            ) -> BoxFuture<'a, Result<WindowStats>> {
                Box::pin(fixed_stats(&*self.storage, item, identifiers))
            }

            fn clear<'a>(
                &'a self,
                item: &'a RateLimitItem,
                identifiers: &'a [&'a str],
            ) -> BoxFuture<'a, Result<()>> {
                Box::pin(async move {
                    self.storage
                        .clear(&PooledKey::new(&item.key(identifiers)))
                        .await
                })
            }

            fn decide<'a>(
                &'a self,
                item: &'a RateLimitItem,
                identifiers: &'a [&'a str],
                cost: u64,
            ) -> BoxFuture<'a, Result<Decision>> {
                Box::pin(fixed_decide(
                    &*self.storage,
                    item,
                    identifiers,
                    cost,
                    $elastic,
                ))
            }
        }
    };
}

fixed_limiter!(AsyncFixedWindowRateLimiter, false);
fixed_limiter!(AsyncFixedWindowElasticExpiryRateLimiter, true);

impl<S: AsyncStorage + ?Sized> AsyncRateLimiter for AsyncMovingWindowRateLimiter<S> {
    fn hit<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if !cost_fits(item, cost)? {
                return Ok(false);
            }
            self.windows()?
                .acquire_entry_key(
                    item.key(identifiers),
                    item.amount(),
                    item.get_expiry(),
                    cost,
                )
                .await
        })
    }

    fn test<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if !cost_fits(item, cost)? {
                return Ok(false);
            }
            let key = PooledKey::new(&item.key(identifiers));
            let window = self
                .windows()?
                .get_moving_window(&key, item.amount(), item.get_expiry())
                .await?;
            Ok(moving_window::judge(&window, item.amount(), item.get_expiry(), cost).admitted)
        })
    }

    fn get_window_stats<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
    ) -> BoxFuture<'a, Result<WindowStats>> {
        Box::pin(async move {
            let (amount, expiry) = (item.amount(), item.get_expiry());
            let key = PooledKey::new(&item.key(identifiers));
            let window = self
                .windows()?
                .get_moving_window(&key, amount, expiry)
                .await?;
            Ok(moving_window::judge(&window, amount, expiry, 1).stats())
        })
    }

    fn decide<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(async move {
            if !cost_fits(item, cost)? {
                let stats = self.get_window_stats(item, identifiers).await?;
                return Ok(Decision::new(false, item, stats));
            }
            let (amount, expiry) = (item.amount(), item.get_expiry());
            let (admitted, window) = self
                .windows()?
                .acquire_entry_and_window_key(item.key(identifiers), amount, expiry, cost)
                .await?;
            Ok(moving_window::judge(&window, amount, expiry, cost).admitted(admitted))
        })
    }

    fn clear<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.storage
                .clear(&PooledKey::new(&item.key(identifiers)))
                .await
        })
    }
}

impl<S: AsyncStorage + ?Sized> AsyncRateLimiter for AsyncSlidingWindowCounterRateLimiter<S> {
    fn hit<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if !cost_fits(item, cost)? {
                return Ok(false);
            }
            let key = item.key(identifiers);
            self.counters()?
                .acquire_sliding_window_entry_key(key, item.amount(), item.get_expiry(), cost)
                .await
        })
    }

    fn test<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if !cost_fits(item, cost)? {
                return Ok(false);
            }
            let expiry = item.get_expiry();
            let key = PooledKey::new(&item.key(identifiers));
            let window = self.counters()?.get_sliding_window(&key, expiry).await?;
            Ok(sliding_window::fits(&window, item.amount(), expiry, cost))
        })
    }

    fn get_window_stats<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
    ) -> BoxFuture<'a, Result<WindowStats>> {
        Box::pin(async move {
            let expiry = item.get_expiry();
            let key = PooledKey::new(&item.key(identifiers));
            let window = self.counters()?.get_sliding_window(&key, expiry).await?;
            let now = self.storage.unix_now();
            Ok(sliding_window::judge(&window, item.amount(), expiry, 1, now).stats())
        })
    }

    fn decide<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
        cost: u64,
    ) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(async move {
            if !cost_fits(item, cost)? {
                let stats = self.get_window_stats(item, identifiers).await?;
                return Ok(Decision::new(false, item, stats));
            }
            let (amount, expiry) = (item.amount(), item.get_expiry());
            let (admitted, window) = self
                .counters()?
                .acquire_sliding_window_entry_and_window_key(
                    item.key(identifiers),
                    amount,
                    expiry,
                    cost,
                )
                .await?;
            let now = self.storage.unix_now();
            Ok(sliding_window::judge(&window, amount, expiry, cost, now).admitted(admitted))
        })
    }

    fn clear<'a>(
        &'a self,
        item: &'a RateLimitItem,
        identifiers: &'a [&'a str],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let key = PooledKey::new(&item.key(identifiers));
            self.counters()?
                .clear_sliding_window(&key, item.get_expiry())
                .await
        })
    }
}
