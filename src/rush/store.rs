//! [`RushStore`]: the interface between limiters and storage.

use super::LimitData;
use crate::error::Result;

/// Where limiters keep their [`LimitData`] (rush's `BaseStore`).
///
/// Implementations must be safe to share between threads, and
/// [`compare_and_swap`](Self::compare_and_swap) must be atomic: limiters rely
/// on it, retrying their computation when it reports a conflict, so that no
/// two concurrent calls both consume the last of a quota.
///
/// A store has a clock: [`current_time`](Self::current_time) is the "now" that
/// limiters using the store compute with.
pub trait RushStore: Send + Sync {
    /// The record stored under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<LimitData>>;

    /// Stores `data` under `key` unconditionally and returns it.
    fn set(&self, key: &str, data: LimitData) -> Result<LimitData>;

    /// Atomically replaces the record under `key` with `new` if the stored
    /// record is `old` (`None`: no record stored), comparing with
    /// [`LimitData::same_as`].
    ///
    /// Returns `Ok(Ok(new))` when swapped, `Ok(Err(current))` with the record
    /// actually stored (or `None`) when it was not `old`, and `Err` only when
    /// the store itself failed.
    fn compare_and_swap(
        &self,
        key: &str,
        old: Option<&LimitData>,
        new: LimitData,
    ) -> Result<Result<LimitData, Option<LimitData>>>;

    /// Removes the record under `key`, if any.
    fn clear(&self, key: &str) -> Result<()>;

    /// The store's current time in Unix seconds.
    fn current_time(&self) -> f64;
}

impl<S: RushStore + ?Sized> RushStore for std::sync::Arc<S> {
    fn get(&self, key: &str) -> Result<Option<LimitData>> {
        (**self).get(key)
    }
    fn set(&self, key: &str, data: LimitData) -> Result<LimitData> {
        (**self).set(key, data)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        old: Option<&LimitData>,
        new: LimitData,
    ) -> Result<Result<LimitData, Option<LimitData>>> {
        (**self).compare_and_swap(key, old, new)
    }
    fn clear(&self, key: &str) -> Result<()> {
        (**self).clear(key)
    }
    fn current_time(&self) -> f64 {
        (**self).current_time()
    }
}

/// Whether a stored record matches the expected one, as `compare_and_swap`
/// defines it.
pub(crate) fn matches(current: Option<&LimitData>, expected: Option<&LimitData>) -> bool {
    match (current, expected) {
        (None, None) => true,
        (Some(c), Some(e)) => c.same_as(e),
        _ => false,
    }
}
