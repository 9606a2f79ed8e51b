//! [`Blocking`]: a synchronous storage made asynchronous on tokio's blocking
//! pool.

use std::fmt;
use std::sync::Arc;

use super::{AsyncMovingWindowSupport, AsyncSlidingWindowCounterSupport, AsyncStorage, BoxFuture};
use crate::error::{Error, Result};
use crate::storage::{
    moving_windows, sliding_counters, FixedWindow, MovingWindow, SlidingWindow, Storage,
};

/// Gives a synchronous [`Storage`] the [`AsyncStorage`] API without blocking
/// the async runtime: each call runs on tokio's blocking thread pool
/// ([`spawn_blocking`](tokio::task::spawn_blocking)). Polled outside a tokio
/// runtime, a call runs in place instead.
///
/// This is how blocking clients (Memcached, custom synchronous storages)
/// serve async code; capabilities of the wrapped storage carry over.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use limitstore::aio::{AsyncStorage, Blocking};
/// use limitstore::MemoryStorage;
///
/// let storage = Blocking::new(Arc::new(MemoryStorage::new()));
/// assert_eq!(storage.incr("k", 60, false, 3).await.unwrap(), 3);
/// assert!(storage.moving_window().is_some());
/// # });
/// ```
pub struct Blocking<S: Storage + ?Sized = dyn Storage> {
    inner: Arc<S>,
}

impl<S: Storage + ?Sized + 'static> Blocking<S> {
    /// Wraps `storage`.
    pub fn new(storage: Arc<S>) -> Self {
        Blocking { inner: storage }
    }

    /// The wrapped storage.
    pub fn storage(&self) -> &Arc<S> {
        &self.inner
    }

    /// Runs `f` on the wrapped storage, on the blocking pool when there is a
    /// tokio runtime.
    fn run<'a, T, F>(&'a self, f: F) -> BoxFuture<'a, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&S) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle
                    .spawn_blocking(move || f(&inner))
                    .await
                    .map_err(|e| Error::storage_msg("blocking pool", e))?,
                Err(_) => f(&inner),
            }
        })
    }
}

impl<S: Storage + ?Sized + 'static> AsyncStorage for Blocking<S> {
    fn incr<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
    ) -> BoxFuture<'a, Result<u64>> {
        let key = key.to_owned();
        self.run(move |s| s.incr(&key, expiry, elastic_expiry, amount))
    }

    fn incr_within<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        self.run(move |s| s.incr_within(&key, expiry, elastic_expiry, amount, limit))
    }

    /// All three calls in one trip to the blocking pool.
    fn incr_within_and_window<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<(bool, FixedWindow)>> {
        let key = key.to_owned();
        self.run(move |s| super::inline::fixed_hit(s, &key, expiry, elastic_expiry, amount, limit))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64>> {
        let key = key.to_owned();
        self.run(move |s| s.get(&key))
    }

    fn get_expiry<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<f64>> {
        let key = key.to_owned();
        self.run(move |s| s.get_expiry(&key))
    }

    fn check(&self) -> BoxFuture<'_, bool> {
        let checked = self.run(|s| Ok(s.check()));
        Box::pin(async move { checked.await.unwrap_or(false) })
    }

    fn reset(&self) -> BoxFuture<'_, Result<Option<u64>>> {
        self.run(|s| s.reset())
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        let key = key.to_owned();
        self.run(move |s| s.clear(&key))
    }

    fn unix_now(&self) -> f64 {
        self.inner.unix_now()
    }

    fn elastic_expiry(&self) -> bool {
        self.inner.elastic_expiry()
    }

    fn moving_window(&self) -> Option<&dyn AsyncMovingWindowSupport> {
        self.inner.moving_window().map(|_| self as _)
    }

    fn sliding_window(&self) -> Option<&dyn AsyncSlidingWindowCounterSupport> {
        self.inner.sliding_window().map(|_| self as _)
    }
}

impl<S: Storage + ?Sized + 'static> AsyncMovingWindowSupport for Blocking<S> {
    fn acquire_entry<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        self.run(move |s| {
            let windows = moving_windows(s)?;
            windows.acquire_entry(&key, limit, expiry, amount)
        })
    }

    fn get_moving_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
    ) -> BoxFuture<'a, Result<MovingWindow>> {
        let key = key.to_owned();
        self.run(move |s| {
            let windows = moving_windows(s)?;
            windows.get_moving_window(&key, limit, expiry)
        })
    }

    /// Both calls in one trip to the blocking pool.
    fn acquire_entry_and_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<(bool, MovingWindow)>> {
        let key = key.to_owned();
        self.run(move |s| {
            let windows = moving_windows(s)?;
            super::inline::moving_hit(windows, &key, limit, expiry, amount)
        })
    }
}

impl<S: Storage + ?Sized + 'static> AsyncSlidingWindowCounterSupport for Blocking<S> {
    fn get_sliding_window<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
    ) -> BoxFuture<'a, Result<SlidingWindow>> {
        let key = key.to_owned();
        self.run(move |s| {
            let counters = sliding_counters(s)?;
            counters.get_sliding_window(&key, expiry)
        })
    }

    fn acquire_sliding_window_entry<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        self.run(move |s| {
            let counters = sliding_counters(s)?;
            counters.acquire_sliding_window_entry(&key, limit, expiry, amount)
        })
    }

    /// Both calls in one trip to the blocking pool.
    fn acquire_sliding_window_entry_and_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<(bool, SlidingWindow)>> {
        let key = key.to_owned();
        self.run(move |s| {
            let counters = sliding_counters(s)?;
            super::inline::sliding_hit(counters, &key, limit, expiry, amount)
        })
    }

    fn clear_sliding_window<'a>(&'a self, key: &'a str, expiry: u64) -> BoxFuture<'a, Result<()>> {
        let key = key.to_owned();
        self.run(move |s| {
            let counters = sliding_counters(s)?;
            counters.clear_sliding_window(&key, expiry)
        })
    }
}

impl<S: Storage + ?Sized> fmt::Debug for Blocking<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Blocking").field(&self.inner).finish()
    }
}
