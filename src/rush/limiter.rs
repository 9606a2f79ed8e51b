//! [`Limiter`]: the interface of rate-limiting algorithms.

use std::sync::Arc;

use super::time::to_micros;
use super::{LimitData, Quota, RateLimitResult, RushStore};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{validate_amount, validate_key};

/// How many times a limiter recomputes after losing a
/// [`compare_and_swap`](RushStore::compare_and_swap) race before it gives up
/// with [`ErrorKind::ConcurrentUpdate`].
pub(crate) const MAX_CAS_ATTEMPTS: usize = 64;

/// A rate-limiting algorithm over a [`RushStore`].
///
/// A denial is not an error: it is a result with `limited = true`. Errors are
/// for bad arguments ([`ErrorKind::InvalidArgument`]: a quantity of zero or
/// above [`MAX_AMOUNT`](crate::storage::MAX_AMOUNT), an over-long key), store
/// failures, and [`ErrorKind::ConcurrentUpdate`] when a key is contended so
/// hard that an update keeps losing its race.
pub trait Limiter: Send + Sync {
    /// Tries to consume `quantity` of `quota` for `key`. When refused, nothing
    /// is consumed. A `quantity` above the quota's limit is always refused.
    fn rate_limit(&self, key: &str, quantity: u64, quota: &Quota) -> Result<RateLimitResult>;

    /// Reports `key`'s state without consuming anything: `remaining` is how
    /// much may be used now, and `limited` tells whether a request of
    /// quantity 1 would be refused now (with `retry_after` saying when it
    /// would not be).
    fn peek(&self, key: &str, quota: &Quota) -> Result<RateLimitResult>;

    /// Forgets `key`'s use of its quota and returns the resulting fresh,
    /// unlimited state.
    fn reset(&self, key: &str, quota: &Quota) -> Result<RateLimitResult>;
}

impl<L: Limiter + ?Sized> Limiter for Arc<L> {
    fn rate_limit(&self, key: &str, quantity: u64, quota: &Quota) -> Result<RateLimitResult> {
        (**self).rate_limit(key, quantity, quota)
    }
    fn peek(&self, key: &str, quota: &Quota) -> Result<RateLimitResult> {
        (**self).peek(key, quota)
    }
    fn reset(&self, key: &str, quota: &Quota) -> Result<RateLimitResult> {
        (**self).reset(key, quota)
    }
}

/// What one attempt of an update decided.
pub(crate) enum Decision {
    /// Answer without writing.
    Answer(RateLimitResult),
    /// Write this record (if the key still holds what was read), then answer.
    Store(LimitData, RateLimitResult),
}

/// Validates a rate-limit call's arguments.
pub(crate) fn validate(key: &str, quantity: u64) -> Result<()> {
    validate_key(key)?;
    validate_amount(quantity)
}

/// Reads `key`, lets `decide` compute from the current time (whole
/// microseconds) and the stored record, and writes its record with
/// compare-and-swap, recomputing from the fresher record on conflict.
pub(crate) fn update<S, F>(store: &S, key: &str, mut decide: F) -> Result<RateLimitResult>
where
    S: RushStore + ?Sized,
    F: FnMut(i128, Option<&LimitData>) -> Decision,
{
    let mut current = store.get(key)?;
    for _ in 0..MAX_CAS_ATTEMPTS {
        let now = to_micros(store.current_time());
        match decide(now, current.as_ref()) {
            Decision::Answer(result) => return Ok(result),
            Decision::Store(new, result) => {
                match store.compare_and_swap(key, current.as_ref(), new)? {
                    Ok(_) => return Ok(result),
                    Err(fresher) => current = fresher,
                }
            }
        }
    }
    Err(Error::new(
        ErrorKind::ConcurrentUpdate,
        format!("key {key:?} changed under {MAX_CAS_ATTEMPTS} consecutive updates"),
    ))
}
