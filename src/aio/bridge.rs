//! [`Bridged`]: an asynchronous storage made synchronous, driven on a small
//! runtime this crate owns.

use std::fmt;
use std::sync::Arc;

use super::AsyncStorage;
use crate::error::Result;
use crate::rt::block_on;
use crate::storage::{
    LimitKey, MovingWindow, MovingWindowSupport, SlidingWindow, SlidingWindowCounterSupport,
    Storage,
};

/// Gives an [`AsyncStorage`] the synchronous [`Storage`] API: each call is
/// driven to completion on a runtime owned by this crate (two worker
/// threads, started on first use). Capabilities carry over.
///
/// Backends whose clients are asynchronous (MongoDB, etcd) are synchronous
/// storages this way. From inside a tokio runtime a call still works, but
/// costs a thread; async code should use the [`AsyncStorage`] directly.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::aio::Bridged;
/// use limitstore::{MemoryStorage, Storage};
///
/// let storage = Bridged::new(Arc::new(MemoryStorage::new()));
/// assert_eq!(storage.incr("k", 60, false, 2).unwrap(), 2);
/// assert_eq!(storage.get("k").unwrap(), 2);
/// ```
pub struct Bridged<A: AsyncStorage + ?Sized = dyn AsyncStorage> {
    inner: Arc<A>,
}

impl<A: AsyncStorage + ?Sized> Bridged<A> {
    /// Wraps `storage`.
    pub fn new(storage: Arc<A>) -> Self {
        Bridged { inner: storage }
    }

    /// The wrapped asynchronous storage.
    pub fn storage(&self) -> &Arc<A> {
        &self.inner
    }
}

impl<A: AsyncStorage + ?Sized> Storage for Bridged<A> {
    fn incr(&self, key: &str, expiry: u64, elastic_expiry: bool, amount: u64) -> Result<u64> {
        block_on(self.inner.incr(key, expiry, elastic_expiry, amount))?
    }

    fn incr_within(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        block_on(
            self.inner
                .incr_within(key, expiry, elastic_expiry, amount, limit),
        )?
    }

    fn incr_within_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        block_on(
            self.inner
                .incr_within_key(key, expiry, elastic_expiry, amount, limit),
        )?
    }

    fn get(&self, key: &str) -> Result<u64> {
        block_on(self.inner.get(key))?
    }

    fn get_expiry(&self, key: &str) -> Result<f64> {
        block_on(self.inner.get_expiry(key))?
    }

    fn check(&self) -> bool {
        block_on(self.inner.check()).unwrap_or(false)
    }

    fn reset(&self) -> Result<Option<u64>> {
        block_on(self.inner.reset())?
    }

    fn clear(&self, key: &str) -> Result<()> {
        block_on(self.inner.clear(key))?
    }

    fn unix_now(&self) -> f64 {
        self.inner.unix_now()
    }

    fn elastic_expiry(&self) -> bool {
        self.inner.elastic_expiry()
    }

    fn moving_window(&self) -> Option<&dyn MovingWindowSupport> {
        self.inner.moving_window().map(|_| self as _)
    }

    fn sliding_window(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        self.inner.sliding_window().map(|_| self as _)
    }
}

impl<A: AsyncStorage + ?Sized> MovingWindowSupport for Bridged<A> {
    fn acquire_entry(&self, key: &str, limit: u64, expiry: u64, amount: u64) -> Result<bool> {
        let windows = super::moving_windows(&*self.inner)?;
        block_on(windows.acquire_entry(key, limit, expiry, amount))?
    }

    fn acquire_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        let windows = super::moving_windows(&*self.inner)?;
        block_on(windows.acquire_entry_key(key, limit, expiry, amount))?
    }

    fn get_moving_window(&self, key: &str, limit: u64, expiry: u64) -> Result<MovingWindow> {
        let windows = super::moving_windows(&*self.inner)?;
        block_on(windows.get_moving_window(key, limit, expiry))?
    }
}

impl<A: AsyncStorage + ?Sized> SlidingWindowCounterSupport for Bridged<A> {
    fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow> {
        let counters = super::sliding_counters(&*self.inner)?;
        block_on(counters.get_sliding_window(key, expiry))?
    }

    fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        let counters = super::sliding_counters(&*self.inner)?;
        block_on(counters.acquire_sliding_window_entry(key, limit, expiry, amount))?
    }

    fn acquire_sliding_window_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        let counters = super::sliding_counters(&*self.inner)?;
        block_on(counters.acquire_sliding_window_entry_key(key, limit, expiry, amount))?
    }

    fn clear_sliding_window(&self, key: &str, expiry: u64) -> Result<()> {
        let counters = super::sliding_counters(&*self.inner)?;
        block_on(counters.clear_sliding_window(key, expiry))?
    }
}

impl<A: AsyncStorage + ?Sized> fmt::Debug for Bridged<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Bridged").field(&self.inner).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;

    #[test]
    fn works_from_inside_a_runtime() {
        let storage = Bridged::new(Arc::new(MemoryStorage::new()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let count = rt.block_on(async { storage.incr("k", 60, false, 4) });
        assert_eq!(count.unwrap(), 4);
        assert!(storage.moving_window().is_some());
        assert!(storage
            .moving_window()
            .unwrap()
            .acquire_entry("m", 1, 60, 1)
            .unwrap());
    }
}
