//! [`DictionaryStore`]: an unbounded in-memory map.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::store::matches;
use super::{LimitData, RushStore};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;

/// A plain map behind one mutex (rush's `DictionaryStore`).
///
/// Nothing is ever evicted, so memory grows with the number of keys: use it
/// for tests and proofs of concept, and [`TLRUCacheStore`](super::TLRUCacheStore)
/// when keys come from the outside world. Unlike rush's, its
/// [`compare_and_swap`](RushStore::compare_and_swap) is atomic.
///
/// ```
/// use limitstore::rush::{DictionaryStore, LimitData, RushStore};
/// use limitstore::FakeClock;
/// let store = DictionaryStore::with_clock(FakeClock::new());
/// let now = store.current_time();
/// assert_eq!(now, FakeClock::DEFAULT_UNIX_ORIGIN);
/// let first = LimitData::fresh(10, now);
/// assert_eq!(store.compare_and_swap("k", None, first.clone())?, Ok(first.clone()));
/// assert_eq!(store.get("k")?, Some(first));
/// # Ok::<(), limitstore::Error>(())
/// ```
#[derive(Debug)]
pub struct DictionaryStore<C: Clock = SystemClock> {
    map: Mutex<HashMap<String, LimitData>>,
    clock: C,
}

impl DictionaryStore<SystemClock> {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock::new())
    }
}

impl Default for DictionaryStore<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> DictionaryStore<C> {
    /// An empty store reading time from `clock`.
    pub fn with_clock(clock: C) -> Self {
        DictionaryStore {
            map: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// The store's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.map.lock().is_empty()
    }
}

impl<C: Clock> RushStore for DictionaryStore<C> {
    fn get(&self, key: &str) -> Result<Option<LimitData>> {
        Ok(self.map.lock().get(key).cloned())
    }

    fn set(&self, key: &str, data: LimitData) -> Result<LimitData> {
        self.map.lock().insert(key.to_owned(), data.clone());
        Ok(data)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        old: Option<&LimitData>,
        new: LimitData,
    ) -> Result<Result<LimitData, Option<LimitData>>> {
        let mut map = self.map.lock();
        let current = map.get(key);
        if !matches(current, old) {
            return Ok(Err(current.cloned()));
        }
        match map.get_mut(key) {
            Some(slot) => *slot = new.clone(),
            None => {
                map.insert(key.to_owned(), new.clone());
            }
        }
        Ok(Ok(new))
    }

    fn clear(&self, key: &str) -> Result<()> {
        self.map.lock().remove(key);
        Ok(())
    }

    fn current_time(&self) -> f64 {
        self.clock.unix_now()
    }
}
