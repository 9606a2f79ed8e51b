//! [`LimitData`]: the per-key record a [`RushStore`](super::RushStore) keeps.

use crate::error::{Error, ErrorKind, Result};

/// What a store remembers about one key's use of its quota.
///
/// Timestamps are Unix seconds (`f64`), as returned by
/// [`RushStore::current_time`](super::RushStore::current_time).
///
/// ```
/// use limitstore::rush::LimitData;
/// let first = LimitData::new(1, 9, 1_700_000_000.0);
/// let later = first.clone().with_used(2).with_remaining(8).with_time(1_700_000_000.2);
/// assert_eq!(later.created_at, first.created_at);
/// assert_eq!(later.time, Some(1_700_000_000.2));
/// assert_eq!(LimitData::from_fields(later.to_fields())?, later);
/// # Ok::<(), limitstore::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LimitData {
    /// How much of the quota has been consumed.
    pub used: u64,
    /// How much of the quota is left.
    pub remaining: u64,
    /// When the key was first seen (for a periodic limiter: when its current
    /// window opened), in Unix seconds.
    pub created_at: f64,
    /// An optional timestamp a limiter may track, in Unix seconds; the GCRA
    /// limiter keeps its theoretical arrival time here.
    pub time: Option<f64>,
}

impl LimitData {
    /// A record without a `time`.
    pub fn new(used: u64, remaining: u64, created_at: f64) -> Self {
        LimitData {
            used,
            remaining,
            created_at,
            time: None,
        }
    }

    /// A record for a key seen for the first time at `created_at`: nothing
    /// used, `limit` remaining.
    pub fn fresh(limit: u64, created_at: f64) -> Self {
        Self::new(0, limit, created_at)
    }

    /// This record with `used` replaced.
    pub fn with_used(mut self, used: u64) -> Self {
        self.used = used;
        self
    }

    /// This record with `remaining` replaced.
    pub fn with_remaining(mut self, remaining: u64) -> Self {
        self.remaining = remaining;
        self
    }

    /// This record with `created_at` replaced.
    pub fn with_created_at(mut self, created_at: f64) -> Self {
        self.created_at = created_at;
        self
    }

    /// This record with `time` set.
    pub fn with_time(mut self, time: f64) -> Self {
        self.time = Some(time);
        self
    }

    /// This record with `time` removed.
    pub fn without_time(mut self) -> Self {
        self.time = None;
        self
    }

    /// True when both records hold the same values, comparing timestamps by
    /// their bit patterns (so a record holding `NaN` still equals itself).
    /// This is the equality [`compare_and_swap`](super::RushStore::compare_and_swap)
    /// uses.
    pub fn same_as(&self, other: &LimitData) -> bool {
        self.used == other.used
            && self.remaining == other.remaining
            && self.created_at.to_bits() == other.created_at.to_bits()
            && self.time.map(f64::to_bits) == other.time.map(f64::to_bits)
    }

    /// The record as `(field, value)` string pairs, for stores that keep
    /// hashes of strings (such as a Redis hash). `time` is left out when
    /// absent. Floats are written in their shortest exact form.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("used", self.used.to_string()),
            ("remaining", self.remaining.to_string()),
            ("created_at", self.created_at.to_string()),
        ];
        if let Some(t) = self.time {
            fields.push(("time", t.to_string()));
        }
        fields
    }

    /// Parses pairs as written by [`to_fields`](Self::to_fields). Unknown
    /// fields are ignored; a missing `used`, `remaining` or `created_at`, or
    /// an unparsable value, is an [`ErrorKind::Parse`] error.
    pub fn from_fields<I, K, V>(fields: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut used = None;
        let mut remaining = None;
        let mut created_at = None;
        let mut time = None;
        for (k, v) in fields {
            let v = v.as_ref();
            match k.as_ref() {
                "used" => used = Some(parse_u64("used", v)?),
                "remaining" => remaining = Some(parse_u64("remaining", v)?),
                "created_at" => created_at = Some(parse_f64("created_at", v)?),
                "time" => time = Some(parse_f64("time", v)?),
                _ => {}
            }
        }
        let missing =
            |name: &str| Error::new(ErrorKind::Parse, format!("limit data lacks `{name}`"));
        Ok(LimitData {
            used: used.ok_or_else(|| missing("used"))?,
            remaining: remaining.ok_or_else(|| missing("remaining"))?,
            created_at: created_at.ok_or_else(|| missing("created_at"))?,
            time,
        })
    }
}

fn parse_u64(name: &str, v: &str) -> Result<u64> {
    v.trim().parse().map_err(|e| {
        Error::new(
            ErrorKind::Parse,
            format!("limit data `{name}` = {v:?}: {e}"),
        )
    })
}

fn parse_f64(name: &str, v: &str) -> Result<f64> {
    v.trim().parse().map_err(|e| {
        Error::new(
            ErrorKind::Parse,
            format!("limit data `{name}` = {v:?}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_exactly() {
        let d = LimitData::new(3, 7, 1_700_000_000.123_456).with_time(1_700_000_001.000_001);
        assert_eq!(LimitData::from_fields(d.to_fields()).unwrap(), d);
        let no_time = LimitData::fresh(10, 1.5);
        let fields = no_time.to_fields();
        assert_eq!(fields.len(), 3);
        assert_eq!(LimitData::from_fields(fields).unwrap(), no_time);
    }

    #[test]
    fn bad_fields_are_parse_errors() {
        let err = LimitData::from_fields([("used", "1"), ("remaining", "2")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse);
        let err = LimitData::from_fields([("used", "x"), ("remaining", "2"), ("created_at", "0")])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse);
    }

    #[test]
    fn same_as_compares_bits() {
        let a = LimitData::new(0, 0, f64::NAN);
        assert_ne!(a, a.clone());
        assert!(a.same_as(&a.clone()));
        assert!(!a.same_as(&a.clone().with_used(1)));
    }
}
