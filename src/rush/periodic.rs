//! [`PeriodicLimiter`]: a fixed window anchored at a key's first hit.

use std::sync::Arc;

use super::limiter::{update, validate, Decision};
use super::time::{duration, to_micros, to_seconds};
use super::{LimitData, Limiter, Quota, RateLimitResult, RushStore};
use crate::error::Result;
use crate::storage::validate_key;

/// A fixed-window limiter (rush's `PeriodicLimiter`).
///
/// A key's window opens at its first admitted request (not at a multiple of
/// the period since the epoch) and lasts one period; within it at most
/// `limit` is admitted. The first request after the window ends opens a new
/// one. The window's start is kept in [`LimitData::created_at`].
///
/// ```
/// use limitstore::rush::{DictionaryStore, Limiter, PeriodicLimiter, Quota};
/// use limitstore::FakeClock;
/// use std::time::Duration;
///
/// let clock = FakeClock::new();
/// let periodic = PeriodicLimiter::new(DictionaryStore::with_clock(clock.clone()));
/// let quota = Quota::per_minute(1)?;
/// clock.advance(Duration::from_secs(45));
/// assert!(!periodic.rate_limit("k", 1, &quota)?.limited);
/// clock.advance(Duration::from_secs(30));
/// let r = periodic.rate_limit("k", 1, &quota)?;
/// assert!(r.limited);
/// assert_eq!(r.reset_after, Duration::from_secs(30));
/// # Ok::<(), limitstore::Error>(())
/// ```
#[derive(Debug)]
pub struct PeriodicLimiter<S> {
    store: Arc<S>,
}

impl<S> Clone for PeriodicLimiter<S> {
    fn clone(&self) -> Self {
        PeriodicLimiter {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: RushStore> PeriodicLimiter<S> {
    /// A limiter over `store`.
    pub fn new(store: S) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A limiter over a store shared with others.
    pub fn from_arc(store: Arc<S>) -> Self {
        PeriodicLimiter { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

/// The window still open at `now`, if any: (its start as stored, its end in
/// microseconds, the amount used in it).
fn open_window(data: Option<&LimitData>, now: i128, period: i128) -> Option<(f64, i128, u64)> {
    let d = data?;
    let end = to_micros(d.created_at) + period;
    (now < end).then_some((d.created_at, end, d.used))
}

impl<S: RushStore> Limiter for PeriodicLimiter<S> {
    fn rate_limit(&self, key: &str, quantity: u64, quota: &Quota) -> Result<RateLimitResult> {
        validate(key, quantity)?;
        let limit = quota.limit();
        let period = quota.period_micros();
        update(&*self.store, key, |now, current| {
            let (created_at, end, used) =
                open_window(current, now, period).unwrap_or((to_seconds(now), now + period, 0));
            let reset_after = duration(end - now);
            if used.saturating_add(quantity) > limit {
                return Decision::Answer(RateLimitResult {
                    limit,
                    limited: true,
                    remaining: limit.saturating_sub(used),
                    reset_after,
                    retry_after: (quantity <= limit).then_some(reset_after),
                });
            }
            let used = used + quantity;
            let remaining = limit - used;
            Decision::Store(
                LimitData::new(used, remaining, created_at),
                RateLimitResult {
                    limit,
                    limited: false,
                    remaining,
                    reset_after,
                    retry_after: None,
                },
            )
        })
    }

    fn peek(&self, key: &str, quota: &Quota) -> Result<RateLimitResult> {
        validate_key(key)?;
        let limit = quota.limit();
        let now = to_micros(self.store.current_time());
        let current = self.store.get(key)?;
        let Some((_, end, used)) = open_window(current.as_ref(), now, quota.period_micros()) else {
            return Ok(RateLimitResult::fresh(limit));
        };
        let remaining = limit.saturating_sub(used);
        let limited = remaining == 0;
        let reset_after = duration(end - now);
        Ok(RateLimitResult {
            limit,
            limited,
            remaining,
            reset_after,
            retry_after: limited.then_some(reset_after),
        })
    }

    fn reset(&self, key: &str, quota: &Quota) -> Result<RateLimitResult> {
        validate_key(key)?;
        self.store.clear(key)?;
        Ok(RateLimitResult::fresh(quota.limit()))
    }
}
