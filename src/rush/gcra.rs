//! [`GenericCellRatelimiter`]: the generic cell rate algorithm.

use std::sync::Arc;

use super::limiter::{update, validate, Decision};
use super::time::{duration, to_micros, to_seconds};
use super::{LimitData, Limiter, Quota, RateLimitResult, RushStore};
use crate::error::{Error, Result};
use crate::storage::validate_key;

/// GCRA, as rush's `GenericCellRatelimiter` and `redis-gcra` compute it.
///
/// Each key keeps one timestamp, its theoretical arrival time (TAT), in
/// [`LimitData::time`]. With `emission_interval = period / limit` and a
/// tolerance of `emission_interval * limit`, a request of `quantity` at `now`
/// moves the TAT to `max(tat, now) + emission_interval * quantity`, and is
/// admitted when that is at most one tolerance ahead of `now`. So a fresh key
/// admits a burst of exactly `limit`, then one more request per emission
/// interval.
///
/// Time is counted in whole microseconds; a quota whose emission interval is
/// under one microsecond (more than a million per second) is an
/// [`InvalidArgument`](crate::ErrorKind::InvalidArgument) error.
///
/// ```
/// use limitstore::rush::{DictionaryStore, GenericCellRatelimiter, Limiter, Quota};
/// use limitstore::FakeClock;
/// use std::time::Duration;
///
/// let clock = FakeClock::new();
/// let gcra = GenericCellRatelimiter::new(DictionaryStore::with_clock(clock.clone()));
/// let quota = Quota::per_minute(2)?;
/// let r = gcra.rate_limit("k", 1, &quota)?;
/// assert_eq!((r.limited, r.remaining, r.reset_after), (false, 1, Duration::from_secs(30)));
/// gcra.rate_limit("k", 1, &quota)?;
/// let r = gcra.rate_limit("k", 1, &quota)?;
/// assert!(r.limited);
/// assert_eq!(r.retry_after, Some(Duration::from_secs(30)));
/// # Ok::<(), limitstore::Error>(())
/// ```
#[derive(Debug)]
pub struct GenericCellRatelimiter<S> {
    store: Arc<S>,
}

impl<S> Clone for GenericCellRatelimiter<S> {
    fn clone(&self) -> Self {
        GenericCellRatelimiter {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: RushStore> GenericCellRatelimiter<S> {
    /// A limiter over `store`.
    pub fn new(store: S) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A limiter over a store shared with others.
    pub fn from_arc(store: Arc<S>) -> Self {
        GenericCellRatelimiter { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

/// The emission interval and the delay variation tolerance, in microseconds.
fn intervals(quota: &Quota) -> Result<(i128, i128)> {
    let limit = quota.limit() as i128;
    let emission = quota.period_micros() / limit;
    if emission < 1 {
        return Err(Error::invalid_argument(format!(
            "quota of {} per {:?} is finer than one microsecond per request",
            quota.limit(),
            quota.period()
        )));
    }
    Ok((emission, emission * limit))
}

fn tat_of(data: Option<&LimitData>, now: i128) -> i128 {
    data.and_then(|d| d.time).map(to_micros).unwrap_or(now)
}

impl<S: RushStore> Limiter for GenericCellRatelimiter<S> {
    fn rate_limit(&self, key: &str, quantity: u64, quota: &Quota) -> Result<RateLimitResult> {
        validate(key, quantity)?;
        let (emission, tolerance) = intervals(quota)?;
        let limit = quota.limit();
        let increment = emission * quantity as i128;
        update(&*self.store, key, |now, current| {
            let tat = tat_of(current, now);
            let new_tat = tat.max(now) + increment;
            let allow_at = new_tat - tolerance;
            let diff = now - allow_at;
            if diff < 0 {
                return Decision::Answer(RateLimitResult {
                    limit,
                    limited: true,
                    remaining: 0,
                    reset_after: duration(tat - now),
                    retry_after: (quantity <= limit).then(|| duration(-diff)),
                });
            }
            let remaining = (diff / emission) as u64;
            let created_at = current.map_or(to_seconds(now), |d| d.created_at);
            let data = LimitData::new(limit - remaining, remaining, created_at)
                .with_time(to_seconds(new_tat));
            Decision::Store(
                data,
                RateLimitResult {
                    limit,
                    limited: false,
                    remaining,
                    reset_after: duration(new_tat - now),
                    retry_after: None,
                },
            )
        })
    }

    fn peek(&self, key: &str, quota: &Quota) -> Result<RateLimitResult> {
        validate_key(key)?;
        let (emission, tolerance) = intervals(quota)?;
        let now = to_micros(self.store.current_time());
        let current = self.store.get(key)?;
        let backlog = (tat_of(current.as_ref(), now) - now).max(0);
        let slack = tolerance - backlog;
        let remaining = (slack.max(0) / emission) as u64;
        let limited = remaining == 0;
        Ok(RateLimitResult {
            limit: quota.limit(),
            limited,
            remaining,
            reset_after: duration(backlog),
            retry_after: limited.then(|| duration(emission - slack)),
        })
    }

    fn reset(&self, key: &str, quota: &Quota) -> Result<RateLimitResult> {
        validate_key(key)?;
        self.store.clear(key)?;
        Ok(RateLimitResult::fresh(quota.limit()))
    }
}
