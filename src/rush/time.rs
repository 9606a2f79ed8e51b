//! Microsecond arithmetic for the limiters.
//!
//! Limiters read Unix seconds as `f64` from their store and keep timestamps
//! in [`LimitData`](super::LimitData) the same way. Below 2^32 seconds (the
//! year 2106) the spacing of `f64` values is under half a microsecond, so a
//! whole number of microseconds survives the trip to seconds and back
//! exactly: limiters convert to whole microseconds, compute with integers and
//! convert back, and no rounding error accumulates from one call to the next.

use std::time::Duration;

/// Unix seconds to whole microseconds (nearest). Non-finite values saturate
/// (NaN becomes 0).
pub(crate) fn to_micros(seconds: f64) -> i128 {
    (seconds * 1e6).round() as i64 as i128
}

/// Whole microseconds to Unix seconds.
pub(crate) fn to_seconds(micros: i128) -> f64 {
    micros as f64 / 1e6
}

/// A non-negative number of microseconds as a duration (negative becomes zero).
pub(crate) fn duration(micros: i128) -> Duration {
    Duration::from_micros(u64::try_from(micros.max(0)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_through_f64() {
        for base in [1_700_000_000_000_000i128, 4_294_967_295_000_000 - 1_000_000] {
            for off in [0, 1, 7, 99_999, 100_000, 333_333, 999_999] {
                assert_eq!(to_micros(to_seconds(base + off)), base + off);
            }
        }
        assert_eq!(to_micros(f64::NAN), 0);
        assert_eq!(duration(-5), Duration::ZERO);
        assert_eq!(duration(1_500_000), Duration::from_millis(1500));
    }
}
