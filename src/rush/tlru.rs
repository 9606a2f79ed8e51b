//! [`TLRUCacheStore`]: a bounded store with a per-entry time to live.

use std::fmt;
use std::time::Duration;

use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::store::matches;
use super::{LimitData, RushStore};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// A store bounded in size and in time (rush's `TLRUCacheStore(maxsize, ttl)`).
///
/// At most `maxsize` keys are kept; when more arrive the least recently used
/// are evicted. Each record also expires `ttl` after it was last written, so
/// keys that stop being hit disappear on their own. Choose a `ttl` at least as
/// long as the longest quota period used with the store, or a key may be
/// forgotten while its limit still applies.
///
/// Bounds are enforced by a [`moka`] cache. Two consequences:
///
/// - The time to live runs on real (monotonic) time, not on the store's
///   [`Clock`]; the clock only supplies [`current_time`](RushStore::current_time)
///   to limiters. With a [`FakeClock`](crate::FakeClock), window arithmetic
///   follows the fake time while expiry still follows the wall.
/// - Eviction happens in batches: between batches the entry count may briefly
///   exceed `maxsize`. [`run_pending_tasks`](Self::run_pending_tasks) runs a
///   batch now. An expired record is never returned, even before its batch.
///
/// Every write (`set`, `compare_and_swap`, `clear`) goes through the cache's
/// per-key compute lock, so `compare_and_swap` is atomic with respect to all
/// of them.
///
/// ```
/// use limitstore::rush::{LimitData, RushStore, TLRUCacheStore};
/// use std::time::Duration;
/// let store = TLRUCacheStore::new(128, Duration::from_secs(6 * 3600))?;
/// let now = store.current_time();
/// store.set("k", LimitData::fresh(5, now))?;
/// assert_eq!(store.get("k")?.map(|d| d.remaining), Some(5));
/// # Ok::<(), limitstore::Error>(())
/// ```
pub struct TLRUCacheStore<C: Clock = SystemClock> {
    cache: Cache<String, LimitData>,
    maxsize: u64,
    ttl: Duration,
    clock: C,
}

impl TLRUCacheStore<SystemClock> {
    /// A store keeping at most `maxsize` keys, each for `ttl` after its last
    /// write, on the system clock.
    ///
    /// A `maxsize` or `ttl` of zero is an
    /// [`InvalidArgument`](crate::ErrorKind::InvalidArgument) error.
    pub fn new(maxsize: u64, ttl: Duration) -> Result<Self> {
        Self::with_clock(maxsize, ttl, SystemClock::new())
    }
}

impl<C: Clock> TLRUCacheStore<C> {
    /// Like [`new`](TLRUCacheStore::new), with `clock` as the source of
    /// [`current_time`](RushStore::current_time).
    pub fn with_clock(maxsize: u64, ttl: Duration, clock: C) -> Result<Self> {
        if maxsize == 0 {
            return Err(Error::invalid_argument("TLRU maxsize must be at least 1"));
        }
        if ttl.is_zero() {
            return Err(Error::invalid_argument("TLRU ttl must not be zero"));
        }
        let cache = Cache::builder()
            .max_capacity(maxsize)
            .time_to_live(ttl)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Ok(TLRUCacheStore {
            cache,
            maxsize,
            ttl,
            clock,
        })
    }

    /// The maximum number of keys kept.
    pub fn maxsize(&self) -> u64 {
        self.maxsize
    }

    /// How long a record lives after its last write.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The store's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The number of records held, as of the last maintenance batch (call
    /// [`run_pending_tasks`](Self::run_pending_tasks) first for an exact
    /// figure).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs pending maintenance now: evicts expired records and records beyond
    /// `maxsize`, and brings [`entry_count`](Self::entry_count) up to date.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

impl<C: Clock> fmt::Debug for TLRUCacheStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TLRUCacheStore")
            .field("maxsize", &self.maxsize)
            .field("ttl", &self.ttl)
            .field("entry_count", &self.cache.entry_count())
            .field("clock", &self.clock)
            .finish()
    }
}

impl<C: Clock> RushStore for TLRUCacheStore<C> {
    fn get(&self, key: &str) -> Result<Option<LimitData>> {
        Ok(self.cache.get(key))
    }

    fn set(&self, key: &str, data: LimitData) -> Result<LimitData> {
        let stored = data.clone();
        self.cache
            .entry_by_ref(key)
            .and_compute_with(move |_| Op::Put(stored));
        Ok(data)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        old: Option<&LimitData>,
        new: LimitData,
    ) -> Result<Result<LimitData, Option<LimitData>>> {
        let mut conflict = None;
        let proposed = new.clone();
        let outcome = self.cache.entry_by_ref(key).and_compute_with(|entry| {
            let current = entry.map(|e| e.into_value());
            if matches(current.as_ref(), old) {
                Op::Put(proposed)
            } else {
                conflict = Some(current);
                Op::Nop
            }
        });
        match (outcome, conflict) {
            (CompResult::Inserted(_) | CompResult::ReplacedWith(_), _) => Ok(Ok(new)),
            (_, Some(current)) => Ok(Err(current)),
            (other, None) => Err(Error::storage_msg(
                "tlru",
                format!("unexpected compare-and-swap outcome {other:?}"),
            )),
        }
    }

    fn clear(&self, key: &str) -> Result<()> {
        self.cache
            .entry_by_ref(key)
            .and_compute_with(|_| Op::<LimitData>::Remove);
        Ok(())
    }

    fn current_time(&self) -> f64 {
        self.clock.unix_now()
    }
}
