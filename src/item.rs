//! Rate-limit items: "`amount` per `multiples` `granularity`", as in `limits`.
//!
//! A [`RateLimitItem`] says how many hits an identity may make per window, and
//! builds the storage key of each identity with [`RateLimitItem::key_for`],
//! keeping `limits`' key layout so that counters written by Python `limits`
//! and by this crate on the same backend are the same counters.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{validate_amount, LimitKey, MAX_EXPIRY};

/// The namespace of a [`RateLimitItem`] unless another is given.
pub const DEFAULT_NAMESPACE: &str = "LIMITER";

/// A unit of time a rate limit is expressed in: a name and its length in
/// seconds.
///
/// ```
/// use limitstore::Granularity;
/// assert_eq!(Granularity::from_name("Hours"), Some(Granularity::HOUR));
/// assert_eq!(Granularity::MONTH.seconds(), 30 * 24 * 3600);
/// assert_eq!(Granularity::from_name("fortnight"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Granularity {
    name: &'static str,
    seconds: u64,
}

impl Granularity {
    /// One second.
    pub const SECOND: Granularity = Granularity::new("second", 1);
    /// Sixty seconds.
    pub const MINUTE: Granularity = Granularity::new("minute", 60);
    /// 3,600 seconds.
    pub const HOUR: Granularity = Granularity::new("hour", 3_600);
    /// 86,400 seconds.
    pub const DAY: Granularity = Granularity::new("day", 86_400);
    /// Thirty days, as in `limits`.
    pub const MONTH: Granularity = Granularity::new("month", 30 * 86_400);
    /// 360 days (twelve 30-day months), as in `limits`.
    pub const YEAR: Granularity = Granularity::new("year", 12 * 30 * 86_400);

    /// The built-in granularities, shortest first.
    pub const ALL: [Granularity; 6] = [
        Self::SECOND,
        Self::MINUTE,
        Self::HOUR,
        Self::DAY,
        Self::MONTH,
        Self::YEAR,
    ];

    /// A granularity with a singular, lower-case `name` lasting `seconds`.
    /// Items built on it are checked by [`RateLimitItem::new`] (a zero-second
    /// granularity is refused there). The parser only knows [`ALL`](Self::ALL).
    pub const fn new(name: &'static str, seconds: u64) -> Self {
        Granularity { name, seconds }
    }

    /// The singular name used in keys and in `Display` (`"minute"`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The length in seconds.
    pub const fn seconds(&self) -> u64 {
        self.seconds
    }

    /// Looks a built-in granularity up by its singular or plural name,
    /// ignoring ASCII case (`"minute"`, `"Minutes"`, `"MINUTE"`).
    pub fn from_name(name: &str) -> Option<Granularity> {
        Self::ALL.into_iter().find(|g| g.matches(name))
    }

    /// Whether `word` is this granularity's singular or plural name, ignoring
    /// ASCII case (`limits`' `granularity_check`).
    pub fn matches(&self, word: &str) -> bool {
        let singular = self.name;
        if word.eq_ignore_ascii_case(singular) {
            return true;
        }
        word.len() == singular.len() + 1
            && word.is_char_boundary(singular.len())
            && word[..singular.len()].eq_ignore_ascii_case(singular)
            && word[singular.len()..].eq_ignore_ascii_case("s")
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl FromStr for Granularity {
    type Err = Error;

    /// Parses a built-in granularity's name; an unknown name is an
    /// [`ErrorKind::Parse`] error.
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s.trim()).ok_or_else(|| {
            Error::new(
                ErrorKind::Parse,
                format!("no granularity matched for `{s}`"),
            )
        })
    }
}

/// A rate limit: `amount` hits per `multiples` × `granularity`, in a
/// namespace.
///
/// Equality and hashing ignore the namespace, as equality does in `limits`:
/// two items with the same rate are the same limit.
///
/// ```
/// use limitstore::{Granularity, RateLimitItem};
/// let item = RateLimitItem::per_minute(10).unwrap();
/// assert_eq!(item.get_expiry(), 60);
/// assert_eq!(item.key_for(&["user1", "GET /x"]), "LIMITER/user1/GET /x/10/1/minute");
/// assert_eq!(item.to_string(), "10 per 1 minute");
///
/// let weekly = RateLimitItem::new(500, 7, Granularity::DAY).unwrap().with_namespace("api");
/// assert_eq!(weekly.key_for(&["k"]), "api/k/500/7/day");
/// assert_eq!(weekly.get_expiry(), 7 * 86_400);
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitItem {
    amount: u64,
    multiples: u64,
    granularity: Granularity,
    namespace: Cow<'static, str>,
    /// `"/{amount}/{multiples}/{granularity}"`, the tail of every key, built once.
    suffix: Box<str>,
}

impl RateLimitItem {
    /// `amount` hits per `multiples` × `granularity`, in the default
    /// namespace [`DEFAULT_NAMESPACE`].
    ///
    /// `amount` must be between 1 and [`MAX_AMOUNT`](crate::storage::MAX_AMOUNT),
    /// `multiples` at least 1, and the window (`granularity` seconds ×
    /// `multiples`) between 1 second and [`MAX_EXPIRY`]; otherwise this is an
    /// [`ErrorKind::InvalidArgument`] error.
    pub fn new(amount: u64, multiples: u64, granularity: Granularity) -> Result<Self> {
        validate_amount(amount)?;
        if multiples == 0 {
            return Err(Error::invalid_argument("multiples must be at least 1"));
        }
        match granularity.seconds.checked_mul(multiples) {
            Some(0) => {
                return Err(Error::invalid_argument(format!(
                    "granularity `{}` lasts zero seconds",
                    granularity.name
                )))
            }
            Some(expiry) if expiry <= MAX_EXPIRY => {}
            _ => {
                return Err(Error::invalid_argument(format!(
                    "a window of {multiples} {} exceeds the maximum of {MAX_EXPIRY} s",
                    granularity.name
                )))
            }
        }
        let mut suffix = String::with_capacity(48);
        suffix.push('/');
        push_decimal(&mut suffix, amount);
        suffix.push('/');
        push_decimal(&mut suffix, multiples);
        suffix.push('/');
        suffix.push_str(granularity.name);
        Ok(RateLimitItem {
            amount,
            multiples,
            granularity,
            namespace: Cow::Borrowed(DEFAULT_NAMESPACE),
            suffix: suffix.into_boxed_str(),
        })
    }

    /// `amount` hits per second.
    pub fn per_second(amount: u64) -> Result<Self> {
        Self::new(amount, 1, Granularity::SECOND)
    }

    /// `amount` hits per minute.
    pub fn per_minute(amount: u64) -> Result<Self> {
        Self::new(amount, 1, Granularity::MINUTE)
    }

    /// `amount` hits per hour.
    pub fn per_hour(amount: u64) -> Result<Self> {
        Self::new(amount, 1, Granularity::HOUR)
    }

    /// `amount` hits per day.
    pub fn per_day(amount: u64) -> Result<Self> {
        Self::new(amount, 1, Granularity::DAY)
    }

    /// `amount` hits per (30-day) month.
    pub fn per_month(amount: u64) -> Result<Self> {
        Self::new(amount, 1, Granularity::MONTH)
    }

    /// `amount` hits per (360-day) year.
    pub fn per_year(amount: u64) -> Result<Self> {
        Self::new(amount, 1, Granularity::YEAR)
    }

    /// The same limit in another namespace (the first segment of its keys).
    pub fn with_namespace(mut self, namespace: impl Into<Cow<'static, str>>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Hits allowed per window.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// How many granularity units one window lasts.
    pub fn multiples(&self) -> u64 {
        self.multiples
    }

    /// The unit of the window.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// The namespace, [`DEFAULT_NAMESPACE`] unless set.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The window length in seconds: granularity seconds × multiples.
    pub fn get_expiry(&self) -> u64 {
        // Checked at construction not to overflow.
        self.granularity.seconds * self.multiples
    }

    /// The storage key of the identity `identifiers`:
    /// `"{namespace}/{id1}/{id2}…/{amount}/{multiples}/{granularity}"`.
    pub fn key_for(&self, identifiers: &[&str]) -> String {
        self.key(identifiers).to_string()
    }

    /// The key [`key_for`](Self::key_for) returns, as its parts: what
    /// limiters hand storages, so that a storage which only hashes keys
    /// never joins them.
    #[inline]
    pub fn key<'a>(&'a self, identifiers: &'a [&'a str]) -> LimitKey<'a> {
        LimitKey::new(&self.namespace, identifiers, &self.suffix)
    }

    /// Appends the key [`key_for`](Self::key_for) returns to `out`, without
    /// allocating when `out` has room.
    #[inline]
    pub fn write_key(&self, identifiers: &[&str], out: &mut String) {
        self.key(identifiers).write_to(out);
    }
}

/// Appends `n` in decimal.
#[inline]
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

impl PartialEq for RateLimitItem {
    fn eq(&self, other: &Self) -> bool {
        self.amount == other.amount
            && self.multiples == other.multiples
            && self.granularity == other.granularity
    }
}

impl Eq for RateLimitItem {}

impl Hash for RateLimitItem {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.amount.hash(state);
        self.multiples.hash(state);
        self.granularity.hash(state);
    }
}

impl fmt::Display for RateLimitItem {
    /// `"{amount} per {multiples} {granularity}"`, like `limits`' `repr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {} {}",
            self.amount, self.multiples, self.granularity.name
        )
    }
}

impl FromStr for RateLimitItem {
    type Err = Error;

    /// Parses one rate-limit string; see [`crate::parse::parse`].
    fn from_str(s: &str) -> Result<Self> {
        crate::parse::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MAX_AMOUNT;

    #[test]
    fn decimal_digits() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn write_key_appends() {
        let item = RateLimitItem::per_second(3).unwrap();
        let mut s = String::from(">");
        item.write_key(&[], &mut s);
        assert_eq!(s, ">LIMITER/3/1/second");
    }

    #[test]
    fn bounds() {
        assert!(RateLimitItem::per_minute(MAX_AMOUNT).is_ok());
        let e = RateLimitItem::per_minute(MAX_AMOUNT + 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = RateLimitItem::new(1, 0, Granularity::SECOND).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = RateLimitItem::new(1, u64::MAX, Granularity::YEAR).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = RateLimitItem::new(1, 1, Granularity::new("instant", 0)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(RateLimitItem::new(1, MAX_EXPIRY, Granularity::SECOND).is_ok());
        assert!(RateLimitItem::new(1, MAX_EXPIRY + 1, Granularity::SECOND).is_err());
    }

    #[test]
    fn granularity_names() {
        assert!(Granularity::DAY.matches("DAYS"));
        assert!(Granularity::DAY.matches("day"));
        assert!(!Granularity::DAY.matches("dayss"));
        assert!(!Granularity::DAY.matches("da"));
        assert!(!Granularity::DAY.matches("dayx"));
        assert_eq!(
            "Seconds".parse::<Granularity>().unwrap(),
            Granularity::SECOND
        );
        assert_eq!(
            "week".parse::<Granularity>().unwrap_err().kind(),
            ErrorKind::Parse
        );
    }
}
