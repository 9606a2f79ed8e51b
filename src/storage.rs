//! The storage API: what every backend implements.
//!
//! The shape follows Python `limits`: a [`Storage`] holds fixed-window
//! counters; backends that can also hold moving windows implement
//! [`MovingWindowSupport`], and those that can hold sliding-window counters
//! implement [`SlidingWindowCounterSupport`]. Strategies find these
//! capabilities at construction through [`Storage::moving_window`] and
//! [`Storage::sliding_window`], so a backend without them is still a valid
//! backend.
//!
//! All expiries are whole seconds, as in `limits`; all timestamps returned are
//! wall-clock seconds since the Unix epoch.

mod key;
mod options;
mod registry;
mod uri;

pub use key::LimitKey;
#[cfg(feature = "async")]
pub(crate) use key::PooledKey;
pub use options::{OptionValue, Options};
pub(crate) use registry::{custom_factory, parse_with_options};
pub use registry::{register_storage, StorageFactory};
pub(crate) use uri::is_secret_name;
pub use uri::{redact, Location, StorageUri, REDACTED};

use crate::error::{Error, Result};

/// The longest accepted expiry: 100 years, in seconds.
pub const MAX_EXPIRY: u64 = 100 * 365 * 24 * 3600;

/// The largest accepted `amount` (and cost): 2^47 - 1 (about 1.4 × 10^14).
/// Every backend represents it exactly (Lua's doubles in Redis hold 2^53),
/// and the memory engine's counters, which keep a count in 48 bits beside a
/// window generation, can take it in one increment.
pub const MAX_AMOUNT: u64 = (1 << 47) - 1;

/// The largest moving-window limit. A moving window stores one timestamp per
/// admitted hit, so its memory grows with the limit.
pub const MAX_MOVING_WINDOW_LIMIT: u64 = 1 << 20;

/// The longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// Checks an expiry argument: at least one second, at most [`MAX_EXPIRY`].
#[inline]
pub fn validate_expiry(expiry: u64) -> Result<()> {
    if expiry == 0 {
        return Err(Error::invalid_argument("expiry must be at least 1 second"));
    }
    if expiry > MAX_EXPIRY {
        return Err(Error::invalid_argument(format!(
            "expiry of {expiry} s exceeds the maximum of {MAX_EXPIRY} s"
        )));
    }
    Ok(())
}

/// Checks an amount argument: at least 1, at most [`MAX_AMOUNT`].
#[inline]
pub fn validate_amount(amount: u64) -> Result<()> {
    if amount == 0 {
        return Err(Error::invalid_argument("amount must be at least 1"));
    }
    if amount > MAX_AMOUNT {
        return Err(Error::invalid_argument(format!(
            "amount {amount} exceeds the maximum of {MAX_AMOUNT}"
        )));
    }
    Ok(())
}

/// Checks a limit argument: at least 1, at most `max`.
#[inline]
pub fn validate_limit(limit: u64, max: u64) -> Result<()> {
    if limit == 0 {
        return Err(Error::invalid_argument("limit must be at least 1"));
    }
    if limit > max {
        return Err(Error::invalid_argument(format!(
            "limit {limit} exceeds the maximum of {max} for this operation"
        )));
    }
    Ok(())
}

/// Checks the arguments of an acquire call (moving window or sliding window
/// counter). `Ok(false)` means `amount > limit`: the call is refused without
/// touching the storage; `Ok(true)` means go ahead.
#[inline]
pub fn validate_acquire(
    key: &str,
    limit: u64,
    max_limit: u64,
    expiry: u64,
    amount: u64,
) -> Result<bool> {
    validate_acquire_len(key.len(), limit, max_limit, expiry, amount)
}

/// [`validate_acquire`] on a key's length alone.
#[inline]
pub(crate) fn validate_acquire_len(
    key_len: usize,
    limit: u64,
    max_limit: u64,
    expiry: u64,
    amount: u64,
) -> Result<bool> {
    validate_key_len(key_len)?;
    validate_expiry(expiry)?;
    validate_amount(amount)?;
    validate_limit(limit, max_limit)?;
    Ok(amount <= limit)
}

/// Checks a key argument's length.
#[inline]
pub fn validate_key(key: &str) -> Result<()> {
    validate_key_len(key.len())
}

/// [`validate_key`] on a key's length alone.
#[inline]
pub(crate) fn validate_key_len(len: usize) -> Result<()> {
    if len > MAX_KEY_LEN {
        return Err(Error::invalid_argument(format!(
            "key of {len} bytes exceeds the maximum of {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// A rate-limit storage: fixed-window counters with expiry.
///
/// Implementations must be safe to share between threads; every method may be
/// called concurrently.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Adds `amount` to the counter at `key` and returns the new count.
    ///
    /// The first increment of a key (or the first after it expired) starts its
    /// window of `expiry` seconds. With `elastic_expiry`, every increment
    /// pushes the expiry out to `expiry` seconds from now.
    fn incr(&self, key: &str, expiry: u64, elastic_expiry: bool, amount: u64) -> Result<u64>;

    /// Adds `amount` to the counter at `key` as [`incr`](Storage::incr)
    /// does, and says whether the new count is at most `limit`. This is the
    /// fixed window strategy's hit.
    ///
    /// The default calls `incr`. A storage that knows the limit can do better:
    /// the memory engine lets threads hitting one hot key admit from
    /// per-thread leases of the count instead of all writing one counter,
    /// never admitting past `limit`.
    fn incr_within(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        Ok(self.incr(key, expiry, elastic_expiry, amount)? <= limit)
    }

    /// [`incr_within`](Self::incr_within) on a key given as its parts, as
    /// limiters call it. The provided method joins the key in a per-thread
    /// buffer and calls `incr_within`; a storage that only hashes keys
    /// overrides it to hash the parts where they lie. Both reach the same
    /// counter.
    #[inline]
    fn incr_within_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        key.with_str(|key| self.incr_within(key, expiry, elastic_expiry, amount, limit))
    }

    /// The counter at `key`; 0 if absent or expired.
    fn get(&self, key: &str) -> Result<u64>;

    /// When the counter at `key` expires, in Unix seconds; 0 if absent.
    fn get_expiry(&self, key: &str) -> Result<f64>;

    /// Whether the storage is reachable and working. Never hangs longer than
    /// the backend's configured timeout.
    fn check(&self) -> bool;

    /// Removes every rate-limit entry this storage holds. Returns how many
    /// entries were removed, where the backend can tell.
    fn reset(&self) -> Result<Option<u64>>;

    /// Removes `key`: its counter and any moving-window state under it.
    fn clear(&self, key: &str) -> Result<()>;

    /// The storage's notion of the current time, in Unix seconds. Strategies
    /// use it to compute reset times; the memory engine answers from its
    /// clock, so fake clocks reach the strategies too.
    fn unix_now(&self) -> f64 {
        crate::clock::wall_now()
    }

    /// Whether [`incr`](Self::incr) takes `elastic_expiry = true`: the
    /// elastic-expiry strategy refuses, when it is built, a storage that
    /// does not (a write-behind node counts epoch-aligned windows that
    /// every node agrees on, which cannot move).
    fn elastic_expiry(&self) -> bool {
        true
    }

    /// This storage as a moving-window store, if it is one.
    fn moving_window(&self) -> Option<&dyn MovingWindowSupport> {
        None
    }

    /// This storage as a sliding-window-counter store, if it is one.
    fn sliding_window(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        None
    }
}

/// A capability of a storage beyond fixed windows, which strategies and
/// adapters may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    /// [`MovingWindowSupport`].
    MovingWindow,
    /// [`SlidingWindowCounterSupport`].
    SlidingWindowCounter,
    /// Windows that a hit can extend ([`Storage::elastic_expiry`]).
    ElasticExpiry,
}

/// The configuration error for the storage type `S` lacking `capability`:
/// the one wording of it, whoever finds it missing.
pub(crate) fn lacks<S: ?Sized>(capability: Capability) -> Error {
    let (what, strategy) = match capability {
        Capability::MovingWindow => ("moving window support", "moving-window"),
        Capability::SlidingWindowCounter => {
            ("sliding window counter support", "sliding-window-counter")
        }
        Capability::ElasticExpiry => ("windows a hit can extend", "fixed-window-elastic-expiry"),
    };
    Error::configuration(format!(
        "`{}` has no {what}, which the {strategy} strategy needs",
        std::any::type_name::<S>()
    ))
}

/// `storage`'s moving windows, or the error saying it has none.
pub(crate) fn moving_windows<S: Storage + ?Sized>(storage: &S) -> Result<&dyn MovingWindowSupport> {
    storage
        .moving_window()
        .ok_or_else(|| lacks::<S>(Capability::MovingWindow))
}

/// `storage`'s sliding window counters, or the error saying it has none.
pub(crate) fn sliding_counters<S: Storage + ?Sized>(
    storage: &S,
) -> Result<&dyn SlidingWindowCounterSupport> {
    storage
        .sliding_window()
        .ok_or_else(|| lacks::<S>(Capability::SlidingWindowCounter))
}

/// The state of a fixed-window counter, as a hit leaves it (see
/// [`AsyncStorage::incr_within_and_window`](crate::aio::AsyncStorage::incr_within_and_window)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedWindow {
    /// The counter's value.
    pub count: u64,
    /// Unix time at which the counter expires (0: it does not exist).
    pub expires_at: f64,
}

/// The state of a moving window, as [`MovingWindowSupport::get_moving_window`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovingWindow {
    /// Unix time of the oldest entry still inside the window (now, if empty).
    pub start: f64,
    /// Number of entries inside the window.
    pub count: u64,
}

/// A storage that can hold moving windows (a log of hit timestamps per key).
pub trait MovingWindowSupport: Send + Sync {
    /// Admits `amount` entries at `key` if, after adding them, no more than
    /// `limit` entries fall inside the last `expiry` seconds. Returns whether
    /// they were admitted; a refusal adds nothing. `amount > limit` is refused.
    fn acquire_entry(&self, key: &str, limit: u64, expiry: u64, amount: u64) -> Result<bool>;

    /// [`acquire_entry`](Self::acquire_entry) on a key given as its parts
    /// (see [`Storage::incr_within_key`]).
    #[inline]
    fn acquire_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        key.with_str(|key| self.acquire_entry(key, limit, expiry, amount))
    }

    /// The oldest entry inside the window and the number of entries in it.
    fn get_moving_window(&self, key: &str, limit: u64, expiry: u64) -> Result<MovingWindow>;
}

/// The state of a sliding window counter, as
/// [`SlidingWindowCounterSupport::get_sliding_window`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlidingWindow {
    /// Hits counted in the previous window.
    pub previous_count: u64,
    /// Seconds until the previous window stops weighing (0 when it is empty).
    pub previous_expires_in: f64,
    /// Hits counted in the current window.
    pub current_count: u64,
    /// Seconds until the current window's count expires.
    pub current_expires_in: f64,
}

impl SlidingWindow {
    /// The weighted count `previous * previous_expires_in / expiry + current`.
    pub fn weighted_count(&self, expiry: u64) -> f64 {
        self.previous_count as f64 * self.previous_expires_in / expiry as f64
            + self.current_count as f64
    }
}

/// A storage that can hold sliding window counters: two fixed buckets
/// (previous and current) whose weighted sum approximates a moving window.
pub trait SlidingWindowCounterSupport: Send + Sync {
    /// The two buckets of `key` and their remaining lifetimes.
    fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow>;

    /// Adds `amount` to the current bucket if `floor(weighted) + amount <=
    /// limit`; returns whether it did.
    fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool>;

    /// [`acquire_sliding_window_entry`](Self::acquire_sliding_window_entry)
    /// on a key given as its parts (see [`Storage::incr_within_key`]).
    #[inline]
    fn acquire_sliding_window_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        key.with_str(|key| self.acquire_sliding_window_entry(key, limit, expiry, amount))
    }

    /// Removes both buckets of `key`.
    fn clear_sliding_window(&self, key: &str, expiry: u64) -> Result<()>;
}

/// Key helpers for storages that keep sliding-window buckets under
/// epoch-aligned, timestamped keys (as `limits`' memory and memcached
/// storages do).
#[derive(Debug, Clone, Copy)]
pub struct TimestampedSlidingWindow;

impl TimestampedSlidingWindow {
    /// The `(previous, current)` bucket keys of `key` at Unix time `at`:
    /// `"{key}/{floor((at - expiry) / expiry)}"` and `"{key}/{floor(at / expiry)}"`.
    ///
    /// ```
    /// use limitstore::TimestampedSlidingWindow;
    /// let (prev, cur) = TimestampedSlidingWindow::sliding_window_keys("mykey", 60, 1738576292.6631825);
    /// assert_eq!(prev, "mykey/28976270");
    /// assert_eq!(cur, "mykey/28976271");
    /// ```
    pub fn sliding_window_keys(key: &str, expiry: u64, at: f64) -> (String, String) {
        let expiry = expiry.max(1) as f64;
        let previous = ((at - expiry) / expiry).floor() as i64;
        let current = (at / expiry).floor() as i64;
        (format!("{key}/{previous}"), format!("{key}/{current}"))
    }

    /// Seconds until the bucket containing `at` ends: `(1 - frac(at / expiry)) * expiry`.
    pub fn window_remaining(expiry: u64, at: f64) -> f64 {
        let expiry = expiry.max(1) as f64;
        (1.0 - (at / expiry).fract()) * expiry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_checks() {
        assert!(validate_expiry(0).is_err());
        assert!(validate_expiry(1).is_ok());
        assert!(validate_expiry(MAX_EXPIRY + 1).is_err());
        assert!(validate_amount(0).is_err());
        assert!(validate_amount(MAX_AMOUNT).is_ok());
        assert!(validate_amount(u64::MAX).is_err());
        assert!(validate_limit(0, 10).is_err());
        assert!(validate_limit(11, 10).is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn sliding_keys_are_epoch_aligned() {
        let (p, c) = TimestampedSlidingWindow::sliding_window_keys("k", 10, 105.0);
        assert_eq!((p.as_str(), c.as_str()), ("k/9", "k/10"));
        let rem = TimestampedSlidingWindow::window_remaining(10, 105.0);
        assert!((rem - 5.0).abs() < 1e-9);
    }
}
