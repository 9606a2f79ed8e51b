//! [`RateLimitResult`]: a limiter's answer.

use std::time::{Duration, SystemTime};

/// The outcome of one rate-limit check (rush's `RateLimitResult`).
///
/// Where rush reports "not applicable" as −1 s, `retry_after` is `None`.
///
/// ```
/// use limitstore::rush::RateLimitResult;
/// use std::time::{Duration, UNIX_EPOCH};
/// let r = RateLimitResult {
///     limit: 10,
///     limited: true,
///     remaining: 0,
///     reset_after: Duration::from_secs(1),
///     retry_after: Some(Duration::from_millis(100)),
/// };
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(r.resets_at(now), now + Duration::from_secs(1));
/// assert_eq!(r.retry_at(now), Some(now + Duration::from_millis(100)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitResult {
    /// The quota's limit (`count + maximum_burst`).
    pub limit: u64,
    /// True when the request was refused (nothing was consumed).
    pub limited: bool,
    /// How much may still be used right now.
    pub remaining: u64,
    /// How long until the key's state is back to a full quota (GCRA) or its
    /// window ends (periodic).
    pub reset_after: Duration,
    /// When limited, how long to wait before the same request can succeed;
    /// `None` when not limited, or when waiting cannot help (the request asks
    /// for more than the whole limit).
    pub retry_after: Option<Duration>,
}

impl RateLimitResult {
    /// A result for a key with nothing used: not limited, the whole limit
    /// remaining, nothing to reset.
    pub fn fresh(limit: u64) -> Self {
        RateLimitResult {
            limit,
            limited: false,
            remaining: limit,
            reset_after: Duration::ZERO,
            retry_after: None,
        }
    }

    /// When the state resets, seen from `now`.
    pub fn resets_at(&self, now: SystemTime) -> SystemTime {
        now + self.reset_after
    }

    /// When to retry, seen from `now`; `None` when `retry_after` is `None`.
    pub fn retry_at(&self, now: SystemTime) -> Option<SystemTime> {
        self.retry_after.map(|d| now + d)
    }
}
