//! [`Quota`]: how much may be used per period.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::{MAX_AMOUNT, MAX_EXPIRY};

/// `count` uses per `period`, plus up to `maximum_burst` more at once
/// (rush's `Quota`). The limit a limiter enforces is
/// [`limit`](Self::limit)` = count + maximum_burst`.
///
/// A period is at least one microsecond and at most [`MAX_EXPIRY`] seconds;
/// the limit is at least 1 and at most [`MAX_AMOUNT`].
///
/// ```
/// use limitstore::rush::Quota;
/// use std::time::Duration;
/// let q = Quota::per_minute(60)?.with_burst(10)?;
/// assert_eq!(q.period(), Duration::from_secs(60));
/// assert_eq!(q.limit(), 70);
/// assert!(Quota::per_second(0).is_err());
/// # Ok::<(), limitstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    period: Duration,
    count: u64,
    maximum_burst: u64,
}

impl Quota {
    /// `count` per `period`, without burst.
    ///
    /// A `count` of zero, a `period` under one microsecond or a value above
    /// the maxima is an [`InvalidArgument`](crate::ErrorKind::InvalidArgument)
    /// error.
    pub fn new(period: Duration, count: u64) -> Result<Self> {
        if period < Duration::from_micros(1) {
            return Err(Error::invalid_argument(
                "quota period must be at least one microsecond",
            ));
        }
        if period > Duration::from_secs(MAX_EXPIRY) {
            return Err(Error::invalid_argument(format!(
                "quota period of {period:?} exceeds the maximum of {MAX_EXPIRY} s"
            )));
        }
        if count == 0 {
            return Err(Error::invalid_argument("quota count must be at least 1"));
        }
        if count > MAX_AMOUNT {
            return Err(Error::invalid_argument(format!(
                "quota count {count} exceeds the maximum of {MAX_AMOUNT}"
            )));
        }
        Ok(Quota {
            period,
            count,
            maximum_burst: 0,
        })
    }

    /// `count` per second.
    pub fn per_second(count: u64) -> Result<Self> {
        Self::new(Duration::from_secs(1), count)
    }

    /// `count` per minute.
    pub fn per_minute(count: u64) -> Result<Self> {
        Self::new(Duration::from_secs(60), count)
    }

    /// `count` per hour.
    pub fn per_hour(count: u64) -> Result<Self> {
        Self::new(Duration::from_secs(3600), count)
    }

    /// `count` per day.
    pub fn per_day(count: u64) -> Result<Self> {
        Self::new(Duration::from_secs(86_400), count)
    }

    /// This quota with `maximum_burst` extra uses allowed at once. An error
    /// if `count + maximum_burst` exceeds [`MAX_AMOUNT`].
    pub fn with_burst(self, maximum_burst: u64) -> Result<Self> {
        match self.count.checked_add(maximum_burst) {
            Some(limit) if limit <= MAX_AMOUNT => Ok(Quota {
                maximum_burst,
                ..self
            }),
            _ => Err(Error::invalid_argument(format!(
                "quota count {} plus burst {maximum_burst} exceeds the maximum of {MAX_AMOUNT}",
                self.count
            ))),
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Uses per period, without burst.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Extra uses allowed at once.
    pub fn maximum_burst(&self) -> u64 {
        self.maximum_burst
    }

    /// The limit enforced: `count + maximum_burst`.
    pub fn limit(&self) -> u64 {
        self.count + self.maximum_burst
    }

    /// The period in whole microseconds (at least 1).
    pub(crate) fn period_micros(&self) -> i128 {
        self.period.as_micros() as i128
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn constructors_and_validation() {
        assert_eq!(
            Quota::per_hour(5).unwrap().period(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            Quota::per_day(5).unwrap().period(),
            Duration::from_secs(86_400)
        );
        assert_eq!(Quota::per_second(5).unwrap().limit(), 5);
        for bad in [
            Quota::new(Duration::ZERO, 1),
            Quota::new(Duration::from_nanos(999), 1),
            Quota::new(Duration::from_secs(MAX_EXPIRY + 1), 1),
            Quota::per_minute(0),
            Quota::per_minute(MAX_AMOUNT + 1),
            Quota::per_minute(MAX_AMOUNT).unwrap().with_burst(1),
            Quota::per_minute(1).unwrap().with_burst(u64::MAX),
        ] {
            assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidArgument);
        }
        let q = Quota::per_second(10).unwrap().with_burst(5).unwrap();
        assert_eq!((q.count(), q.maximum_burst(), q.limit()), (10, 5, 15));
    }
}
