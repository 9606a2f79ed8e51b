//! Typed options given beside a storage URI (the `**options` of `limits`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// One option value. Values taken from a URI's query string arrive as
/// [`OptionValue::Str`] and are converted on access.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Bool(b) => write!(f, "{b}"),
            OptionValue::Int(i) => write!(f, "{i}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Str(s) => f.write_str(s),
        }
    }
}

impl From<bool> for OptionValue {
    fn from(v: bool) -> Self {
        OptionValue::Bool(v)
    }
}
impl From<i64> for OptionValue {
    fn from(v: i64) -> Self {
        OptionValue::Int(v)
    }
}
impl From<i32> for OptionValue {
    fn from(v: i32) -> Self {
        OptionValue::Int(v.into())
    }
}
impl From<u32> for OptionValue {
    fn from(v: u32) -> Self {
        OptionValue::Int(v.into())
    }
}
impl From<f64> for OptionValue {
    fn from(v: f64) -> Self {
        OptionValue::Float(v)
    }
}
impl From<&str> for OptionValue {
    fn from(v: &str) -> Self {
        OptionValue::Str(v.to_owned())
    }
}
impl From<String> for OptionValue {
    fn from(v: String) -> Self {
        OptionValue::Str(v)
    }
}

/// Options for a storage, by name.
///
/// ```
/// use limitstore::Options;
/// let opts = Options::new().with("max_entries", 10_000).with("key_prefix", "myapp");
/// assert_eq!(opts.get_u64("max_entries").unwrap(), Some(10_000));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    values: BTreeMap<String, OptionValue>,
}

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an option, builder style.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<OptionValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds (or replaces) an option.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<OptionValue>) {
        self.values.insert(name.into(), value.into());
    }

    /// Adds an option unless one of that name is already set.
    pub fn insert_default(&mut self, name: &str, value: impl Into<OptionValue>) {
        self.values
            .entry(name.to_owned())
            .or_insert_with(|| value.into());
    }

    /// The raw value of an option.
    pub fn get(&self, name: &str) -> Option<&OptionValue> {
        self.values.get(name)
    }

    /// Whether an option is set.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The option names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Fails with a configuration error naming the first option not in `known`.
    pub fn reject_unknown(&self, storage: &str, known: &[&str]) -> Result<()> {
        match self.names().find(|n| !known.contains(n)) {
            Some(name) => Err(Error::configuration(format!(
                "unknown option `{name}` for {storage} storage (known: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn bad(name: &str, value: &OptionValue, want: &str) -> Error {
        if super::is_secret_name(name) {
            return Error::configuration(format!("option `{name}` is not {want}"));
        }
        Error::configuration(format!("option `{name}` = `{value}` is not {want}"))
    }

    /// A string option.
    pub fn get_str(&self, name: &str) -> Result<Option<String>> {
        Ok(self.get(name).map(|v| v.to_string()))
    }

    /// A non-negative integer option.
    pub fn get_u64(&self, name: &str) -> Result<Option<u64>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let parsed = match v {
            OptionValue::Int(i) => u64::try_from(*i).ok(),
            OptionValue::Str(s) => s.trim().parse::<u64>().ok(),
            OptionValue::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19 => {
                Some(*f as u64)
            }
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| Self::bad(name, v, "a non-negative integer"))
    }

    /// A boolean option (`true`/`false`, `1`/`0`, `yes`/`no`).
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let parsed = match v {
            OptionValue::Bool(b) => Some(*b),
            OptionValue::Int(0) => Some(false),
            OptionValue::Int(1) => Some(true),
            OptionValue::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| Self::bad(name, v, "a boolean"))
    }

    /// A duration option given in (possibly fractional) seconds.
    pub fn get_secs(&self, name: &str) -> Result<Option<Duration>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let secs = match v {
            OptionValue::Int(i) => Some(*i as f64),
            OptionValue::Float(f) => Some(*f),
            OptionValue::Str(s) => s.trim().parse::<f64>().ok(),
            OptionValue::Bool(_) => None,
        };
        match secs {
            Some(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
                Ok(Some(Duration::from_secs_f64(s)))
            }
            _ => Err(Self::bad(name, v, "a number of seconds between 0 and 1e9")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_access_converts_strings() {
        let o = Options::new()
            .with("n", "42")
            .with("b", "yes")
            .with("t", "0.5")
            .with("neg", -1);
        assert_eq!(o.get_u64("n").unwrap(), Some(42));
        assert_eq!(o.get_bool("b").unwrap(), Some(true));
        assert_eq!(o.get_secs("t").unwrap(), Some(Duration::from_millis(500)));
        assert!(o.get_u64("neg").is_err());
        assert!(o.get_bool("n").is_err());
        assert!(o.get_secs("b").is_err());
        assert_eq!(o.get_u64("missing").unwrap(), None);
        assert!(o.reject_unknown("test", &["n", "b", "t"]).is_err());
        assert!(o.reject_unknown("test", &["n", "b", "t", "neg"]).is_ok());
    }
}
