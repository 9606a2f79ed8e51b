//! The asynchronous storage API: [`AsyncStorage`] and its capabilities,
//! mirroring [`Storage`](crate::Storage) method for method, and the
//! asynchronous strategies over it.
//!
//! Every backend is reachable from async code without blocking the runtime:
//!
//! - the memory engine and the write-behind storage never wait on I/O, so
//!   they implement [`AsyncStorage`] directly and answer in the first poll;
//! - backends with an asynchronous client implement it natively;
//! - a blocking backend is wrapped in [`Blocking`], which runs each call on
//!   tokio's blocking pool.
//!
//! The other way round, [`Bridged`] gives any [`AsyncStorage`] the
//! synchronous [`Storage`](crate::Storage) API by driving it on a small
//! runtime owned by this crate.
//!
//! [`async_storage_from_string`] builds an asynchronous storage from an
//! `async+<scheme>://` URI (or a plain one), as `limits` does:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use limitstore::aio::{async_limiter_for, async_storage_from_string};
//! use limitstore::{parse, Options, Strategy};
//!
//! let storage = async_storage_from_string("async+memory://", &Options::new()).unwrap();
//! let limiter = async_limiter_for(Strategy::MovingWindow, storage).unwrap();
//! let item = parse("2/minute").unwrap();
//! assert!(limiter.hit(&item, &["user"], 1).await.unwrap());
//! assert!(limiter.hit(&item, &["user"], 1).await.unwrap());
//! assert!(!limiter.hit(&item, &["user"], 1).await.unwrap());
//! # });
//! ```

mod blocking;
mod bridge;
pub(crate) mod inline;
mod registry;
mod strategy;

use std::future::Future;
use std::pin::Pin;

pub use crate::backends::async_storage_from_string;
pub use blocking::Blocking;
pub use bridge::Bridged;
pub(crate) use registry::custom_async_factory;
pub use registry::{register_async_storage, AsyncStorageFactory};
pub use strategy::{
    async_limiter_for, AsyncFixedWindowElasticExpiryRateLimiter, AsyncFixedWindowRateLimiter,
    AsyncMovingWindowRateLimiter, AsyncRateLimiter, AsyncSlidingWindowCounterRateLimiter,
};

use crate::error::Result;
use crate::storage::{
    lacks, Capability, FixedWindow, LimitKey, MovingWindow, PooledKey, SlidingWindow,
};

/// A boxed future that can move between threads, as the async traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The asynchronous twin of [`Storage`](crate::Storage): the same methods,
/// with the same meaning and the same errors, returning futures.
///
/// Implementations must be safe to share between tasks and threads.
pub trait AsyncStorage: Send + Sync + std::fmt::Debug {
    /// See [`Storage::incr`](crate::Storage::incr).
    fn incr<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
    ) -> BoxFuture<'a, Result<u64>>;

    /// See [`Storage::incr_within`](crate::Storage::incr_within): adds
    /// `amount` as [`incr`](AsyncStorage::incr) does and says whether the new
    /// count is at most `limit`. The default awaits `incr`; the memory
    /// engine answers from its hot-key leases.
    fn incr_within<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let count = self.incr(key, expiry, elastic_expiry, amount);
        Box::pin(async move { Ok(count.await? <= limit) })
    }

    /// [`incr_within`](AsyncStorage::incr_within), answering the counter
    /// as it stands after the increment as well: one decision and the
    /// window it leaves, for callers that report both (HTTP rate-limit
    /// headers). The Redis family answers with one script; the default
    /// awaits `incr_within`, then reads `get` and `get_expiry`.
    fn incr_within_and_window<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<(bool, FixedWindow)>> {
        Box::pin(async move {
            let within = self
                .incr_within(key, expiry, elastic_expiry, amount, limit)
                .await?;
            let count = self.get(key).await?;
            let expires_at = self.get_expiry(key).await?;
            Ok((within, FixedWindow { count, expires_at }))
        })
    }

    /// [`incr_within`](AsyncStorage::incr_within) on the key given as its
    /// parts, as the limiters call it; see
    /// [`Storage::incr_within_key`](crate::Storage::incr_within_key). The
    /// default joins the key string and awaits `incr_within`; the memory
    /// engine and write-behind nodes hash the parts where they lie.
    fn incr_within_key<'a>(
        &'a self,
        key: LimitKey<'a>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = PooledKey::new(&key);
        Box::pin(async move {
            self.incr_within(&key, expiry, elastic_expiry, amount, limit)
                .await
        })
    }

    /// [`incr_within_and_window`](AsyncStorage::incr_within_and_window) on
    /// the key given as its parts. The default joins the key string and
    /// awaits `incr_within_and_window`; the memory engine answers from one
    /// lookup of the counter.
    fn incr_within_and_window_key<'a>(
        &'a self,
        key: LimitKey<'a>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<(bool, FixedWindow)>> {
        let key = PooledKey::new(&key);
        Box::pin(async move {
            self.incr_within_and_window(&key, expiry, elastic_expiry, amount, limit)
                .await
        })
    }

    /// See [`Storage::get`](crate::Storage::get).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64>>;

    /// See [`Storage::get_expiry`](crate::Storage::get_expiry).
    fn get_expiry<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<f64>>;

    /// See [`Storage::check`](crate::Storage::check).
    fn check(&self) -> BoxFuture<'_, bool>;

    /// See [`Storage::reset`](crate::Storage::reset).
    fn reset(&self) -> BoxFuture<'_, Result<Option<u64>>>;

    /// See [`Storage::clear`](crate::Storage::clear).
    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// See [`Storage::unix_now`](crate::Storage::unix_now).
    fn unix_now(&self) -> f64 {
        crate::clock::wall_now()
    }

    /// See [`Storage::elastic_expiry`](crate::Storage::elastic_expiry).
    fn elastic_expiry(&self) -> bool {
        true
    }

    /// This storage as a moving-window store, if it is one.
    fn moving_window(&self) -> Option<&dyn AsyncMovingWindowSupport> {
        None
    }

    /// This storage as a sliding-window-counter store, if it is one.
    fn sliding_window(&self) -> Option<&dyn AsyncSlidingWindowCounterSupport> {
        None
    }
}

/// The asynchronous twin of [`MovingWindowSupport`](crate::MovingWindowSupport).
pub trait AsyncMovingWindowSupport: Send + Sync {
    /// See [`MovingWindowSupport::acquire_entry`](crate::MovingWindowSupport::acquire_entry).
    fn acquire_entry<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>>;

    /// See [`MovingWindowSupport::get_moving_window`](crate::MovingWindowSupport::get_moving_window).
    fn get_moving_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
    ) -> BoxFuture<'a, Result<MovingWindow>>;

    /// [`acquire_entry`](AsyncMovingWindowSupport::acquire_entry), answering
    /// the window as it stands afterwards as well. The Redis family answers
    /// with one script; the default awaits `acquire_entry`, then
    /// `get_moving_window`.
    fn acquire_entry_and_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<(bool, MovingWindow)>> {
        Box::pin(async move {
            let acquired = self.acquire_entry(key, limit, expiry, amount).await?;
            let window = self.get_moving_window(key, limit, expiry).await?;
            Ok((acquired, window))
        })
    }

    /// [`acquire_entry`](AsyncMovingWindowSupport::acquire_entry) on the key
    /// given as its parts; see
    /// [`MovingWindowSupport::acquire_entry_key`](crate::MovingWindowSupport::acquire_entry_key).
    /// The default joins the key string and awaits `acquire_entry`.
    fn acquire_entry_key<'a>(
        &'a self,
        key: LimitKey<'a>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = PooledKey::new(&key);
        Box::pin(async move { self.acquire_entry(&key, limit, expiry, amount).await })
    }

    /// [`acquire_entry_and_window`](AsyncMovingWindowSupport::acquire_entry_and_window)
    /// on the key given as its parts. The default joins the key string and
    /// awaits `acquire_entry_and_window`.
    fn acquire_entry_and_window_key<'a>(
        &'a self,
        key: LimitKey<'a>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<(bool, MovingWindow)>> {
        let key = PooledKey::new(&key);
        Box::pin(async move {
            self.acquire_entry_and_window(&key, limit, expiry, amount)
                .await
        })
    }
}

/// The asynchronous twin of
/// [`SlidingWindowCounterSupport`](crate::SlidingWindowCounterSupport).
pub trait AsyncSlidingWindowCounterSupport: Send + Sync {
    /// See [`SlidingWindowCounterSupport::get_sliding_window`](crate::SlidingWindowCounterSupport::get_sliding_window).
    fn get_sliding_window<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
    ) -> BoxFuture<'a, Result<SlidingWindow>>;

    /// See [`SlidingWindowCounterSupport::acquire_sliding_window_entry`](crate::SlidingWindowCounterSupport::acquire_sliding_window_entry).
    fn acquire_sliding_window_entry<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>>;

    /// [`acquire_sliding_window_entry`](AsyncSlidingWindowCounterSupport::acquire_sliding_window_entry),
    /// answering the counters as they stand afterwards as well. The Redis
    /// family answers with one script; the default awaits the acquire, then
    /// `get_sliding_window`.
    fn acquire_sliding_window_entry_and_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<(bool, SlidingWindow)>> {
        Box::pin(async move {
            let acquired = self
                .acquire_sliding_window_entry(key, limit, expiry, amount)
                .await?;
            let window = self.get_sliding_window(key, expiry).await?;
            Ok((acquired, window))
        })
    }

    /// [`acquire_sliding_window_entry`](AsyncSlidingWindowCounterSupport::acquire_sliding_window_entry)
    /// on the key given as its parts; see
    /// [`SlidingWindowCounterSupport::acquire_sliding_window_entry_key`](crate::SlidingWindowCounterSupport::acquire_sliding_window_entry_key).
    /// The default joins the key string and awaits the acquire.
    fn acquire_sliding_window_entry_key<'a>(
        &'a self,
        key: LimitKey<'a>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = PooledKey::new(&key);
        Box::pin(async move {
            self.acquire_sliding_window_entry(&key, limit, expiry, amount)
                .await
        })
    }

    /// [`acquire_sliding_window_entry_and_window`](AsyncSlidingWindowCounterSupport::acquire_sliding_window_entry_and_window)
    /// on the key given as its parts. The default joins the key string and
    /// awaits `acquire_sliding_window_entry_and_window`.
    fn acquire_sliding_window_entry_and_window_key<'a>(
        &'a self,
        key: LimitKey<'a>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<(bool, SlidingWindow)>> {
        let key = PooledKey::new(&key);
        Box::pin(async move {
            self.acquire_sliding_window_entry_and_window(&key, limit, expiry, amount)
                .await
        })
    }

    /// See [`SlidingWindowCounterSupport::clear_sliding_window`](crate::SlidingWindowCounterSupport::clear_sliding_window).
    fn clear_sliding_window<'a>(&'a self, key: &'a str, expiry: u64) -> BoxFuture<'a, Result<()>>;
}

/// `storage`'s moving windows, or the error saying it has none.
pub(crate) fn moving_windows<A: AsyncStorage + ?Sized>(
    storage: &A,
) -> Result<&dyn AsyncMovingWindowSupport> {
    storage
        .moving_window()
        .ok_or_else(|| lacks::<A>(Capability::MovingWindow))
}

/// `storage`'s sliding window counters, or the error saying it has none.
pub(crate) fn sliding_counters<A: AsyncStorage + ?Sized>(
    storage: &A,
) -> Result<&dyn AsyncSlidingWindowCounterSupport> {
    storage
        .sliding_window()
        .ok_or_else(|| lacks::<A>(Capability::SlidingWindowCounter))
}
