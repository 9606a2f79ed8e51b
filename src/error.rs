//! Errors: one opaque, cloneable [`Error`] with a [`ErrorKind`] to match on.
//!
//! A rate-limit *denial* is never an error: limiters return `Ok(false)` or a
//! throttle result with `limited = true`. Errors are for misconfiguration, bad
//! arguments and failing backends.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What went wrong, broadly. New kinds may be added in minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The storage URI, its scheme or one of its options is wrong, or the
    /// storage lacks a capability a strategy needs. Raised at construction.
    Configuration,
    /// An argument of a call is out of range: zero or huge amount, zero or
    /// absurd expiry, a limit of zero, a key that is too long.
    InvalidArgument,
    /// A rate-limit string such as `"10/minute"` could not be parsed.
    Parse,
    /// The backend failed (connection refused, timeout, protocol error, a
    /// reply that could not be decoded). The backend's own error is the
    /// [`source`](std::error::Error::source).
    Storage,
    /// An optimistic update lost its race too many times in a row.
    ConcurrentUpdate,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Configuration => "configuration error",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Parse => "parse error",
            ErrorKind::Storage => "storage error",
            ErrorKind::ConcurrentUpdate => "concurrent update error",
        }
    }
}

/// The error type of every fallible operation in this crate.
///
/// ```
/// use limitstore::{storage_from_string, ErrorKind, Options};
/// let err = storage_from_string("nosuchdb://localhost", &Options::new()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Configuration);
/// ```
///
/// It is one pointer wide (its contents are boxed), so the `Result<bool>`
/// of a hit is two words.
#[derive(Clone)]
pub struct Error(Box<Inner>);

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            source: None,
        }))
    }

    /// A configuration error (unknown scheme, bad option, bad URI, missing capability).
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configuration, message)
    }

    /// An invalid-argument error.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A storage error that wraps the backend's own error.
    pub fn storage<E>(backend: &str, source: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        Error(Box::new(Inner {
            kind: ErrorKind::Storage,
            message: format!("{backend}: {source}"),
            source: Some(Arc::new(source)),
        }))
    }

    /// A storage error without an underlying error value (for example a reply
    /// of an unexpected shape).
    pub fn storage_msg(backend: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Storage, format!("{backend}: {message}"))
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// True for [`ErrorKind::Configuration`].
    pub fn is_configuration(&self) -> bool {
        self.0.kind == ErrorKind::Configuration
    }

    /// True for [`ErrorKind::Storage`].
    pub fn is_storage(&self) -> bool {
        self.0.kind == ErrorKind::Storage
    }

    /// The backend's own error, if this error wraps one.
    pub fn storage_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.0.source.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(s) = &self.0.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind.as_str(), self.0.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_two_words() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert!(std::mem::size_of::<Result<bool>>() <= 2 * std::mem::size_of::<usize>());
    }

    #[test]
    fn storage_error_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::storage("redis", io);
        assert!(e.is_storage());
        assert!(e.to_string().contains("refused"));
        let src = e.source().expect("source");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
        let cloned = e.clone();
        assert_eq!(cloned.kind(), ErrorKind::Storage);
    }
}
