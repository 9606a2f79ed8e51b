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
    /// reply that could not be decoded). The backend's own error, when there
    /// is one, is the [`source`](std::error::Error::source), not part of the
    /// message: print the error with `{:#}` (or through a reporter that
    /// walks sources) to see it. [`Error::is_timeout`] and
    /// [`Error::is_retryable`] tell what to do about it.
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
    /// Set by [`Error::storage_timeout`], for timeouts without a source.
    timeout: bool,
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
            timeout: false,
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

    /// A storage error of `backend` caused by the backend's own error,
    /// which becomes the [`source`](std::error::Error::source). The message
    /// says `<backend> call timed out` where that error is a timeout (see
    /// [`is_timeout`](Self::is_timeout)), `<backend> call failed` otherwise.
    pub fn storage<E>(backend: &str, source: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        let e = Error(Box::new(Inner {
            kind: ErrorKind::Storage,
            message: format!("{backend} call failed"),
            source: Some(Arc::new(source)),
            timeout: false,
        }));
        if e.causes().any(cause_is_timeout) {
            e.timed_out()
        } else {
            e
        }
    }

    /// A storage error of `backend` saying `message`, caused by `source`
    /// (which is not repeated in the message).
    pub fn storage_caused<E>(backend: &str, message: impl fmt::Display, source: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        let mut e = Self::storage(backend, source);
        e.0.message = format!("{backend}: {message}");
        e
    }

    /// A storage error without an underlying error value (for example a reply
    /// of an unexpected shape).
    pub fn storage_msg(backend: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Storage, format!("{backend}: {message}"))
    }

    /// A storage error for a call that did not finish in time, without an
    /// underlying error value; [`is_timeout`](Self::is_timeout) is true.
    pub fn storage_timeout(backend: &str, message: impl fmt::Display) -> Self {
        Self::storage_msg(backend, message).timed_out()
    }

    /// This error, marked as a timeout: for a backend whose client reports
    /// timeouts in terms [`is_timeout`](Self::is_timeout) cannot read
    /// through the sources. A `<backend> call failed` message becomes
    /// `<backend> call timed out`.
    pub(crate) fn timed_out(mut self) -> Self {
        self.0.timeout = true;
        if let Some(call) = self.0.message.strip_suffix(" call failed") {
            self.0.message = format!("{call} call timed out");
        }
        self
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

    /// Whether a storage call ran out of time: a server that did not answer
    /// within the timeouts (a hung or paused server, a lost network).
    pub fn is_timeout(&self) -> bool {
        self.0.timeout || self.causes().any(cause_is_timeout)
    }

    /// Whether the same call may succeed if tried again later: timeouts,
    /// lost or refused connections and other I/O failures, a server busy
    /// loading or failing over, a lost optimistic race. Bad configuration,
    /// bad arguments, parse errors and replies of the wrong shape are not.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::ConcurrentUpdate => true,
            ErrorKind::Storage => {
                self.is_timeout() || self.0.source.as_deref().is_some_and(source_is_retryable)
            }
            _ => false,
        }
    }

    /// This error's sources, outermost first.
    fn causes(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let mut next = self
            .0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static));
        std::iter::from_fn(move || {
            let cause = next?;
            next = cause.source();
            Some(cause)
        })
    }
}

/// Whether an I/O error is a timeout. A socket read timeout surfaces as
/// `WouldBlock` (EAGAIN) on Unix.
pub(crate) fn io_timed_out(io: &std::io::Error) -> bool {
    matches!(
        io.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

fn cause_is_timeout(cause: &(dyn StdError + 'static)) -> bool {
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return io_timed_out(io);
    }
    #[cfg(feature = "redis")]
    if let Some(redis) = cause.downcast_ref::<redis::RedisError>() {
        return redis.is_timeout();
    }
    false
}

/// Whether a backend error is worth a retry. Errors of clients this module
/// cannot inspect (MongoDB, etcd, Memcached) are their transport's failures
/// in practice, so they count as retryable.
fn source_is_retryable(source: &(dyn StdError + Send + Sync + 'static)) -> bool {
    let source = source as &(dyn StdError + 'static);
    if source.downcast_ref::<std::io::Error>().is_some() {
        return true;
    }
    #[cfg(feature = "redis")]
    if let Some(e) = source.downcast_ref::<redis::RedisError>() {
        return e.kind() != redis::ErrorKind::AuthenticationFailed
            && !matches!(e.retry_method(), redis::RetryMethod::NoRetry);
    }
    true
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

/// `{}` prints the kind and the message; `{:#}` adds every source after
/// them (`storage error: redis call failed: Connection refused (os error
/// 111)`), as reporters do. The source is never part of the message, so a
/// reporter walking sources prints it once.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind.as_str(), self.0.message)?;
        if f.alternate() {
            // A client error that prints its own source (redis-rs' I/O
            // errors do) would show that text twice: it is shown once. A
            // cause that spans lines (a parser's report of a garbled reply)
            // is put on one, its lines separated by `; `.
            let mut shown = String::new();
            for cause in self.causes() {
                let text = one_line(&cause.to_string());
                if !shown.ends_with(&text) {
                    write!(f, ": {text}")?;
                }
                shown = text;
            }
        }
        Ok(())
    }
}

/// `text` with its control characters (line breaks, a reply's stray
/// bytes) replaced by `; ` between the pieces they separate.
fn one_line(text: &str) -> String {
    if !text.contains(char::is_control) {
        return text.to_owned();
    }
    text.split(char::is_control)
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
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
    fn storage_error_keeps_its_source_and_prints_it_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::storage("redis", io);
        assert!(e.is_storage());
        assert_eq!(e.to_string(), "storage error: redis call failed");
        assert_eq!(
            format!("{e:#}"),
            "storage error: redis call failed: refused"
        );
        assert!(e.is_retryable());
        assert!(!e.is_timeout());
        let src = e.source().expect("source");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
        let cloned = e.clone();
        assert_eq!(cloned.kind(), ErrorKind::Storage);
    }

    /// An error whose message already ends with its source's.
    #[derive(Debug)]
    struct Wrapping(std::io::Error);
    impl fmt::Display for Wrapping {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "call: {}", self.0)
        }
    }
    impl StdError for Wrapping {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_that_spans_lines_is_printed_on_one() {
        let garbled = std::io::Error::other("Parse error at 1\nUnexpected `255`\r\n\u{0}");
        let e = Error::storage("redis", garbled);
        assert_eq!(
            format!("{e:#}"),
            "storage error: redis call failed: Parse error at 1; Unexpected `255`"
        );
    }

    #[test]
    fn a_source_that_its_wrapper_already_prints_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::storage("redis", Wrapping(io));
        assert_eq!(
            format!("{e:#}"),
            "storage error: redis call failed: call: refused"
        );
    }

    #[test]
    fn timeouts_and_retries() {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let e = Error::storage("memcached", timed_out);
        assert!(e.is_timeout() && e.is_retryable());
        assert_eq!(e.to_string(), "storage error: memcached call timed out");
        let eagain = std::io::Error::from_raw_os_error(11);
        let e = Error::storage("redis", Wrapping(eagain));
        assert!(e.is_timeout());
        assert_eq!(e.to_string(), "storage error: redis call timed out");
        let opaque = Error::storage("memcached", Wrapping(std::io::Error::other("eof")));
        assert_eq!(opaque.to_string(), "storage error: memcached call failed");
        let marked = opaque.timed_out();
        assert!(marked.is_timeout());
        assert_eq!(
            marked.to_string(),
            "storage error: memcached call timed out"
        );
        let e = Error::storage_timeout("etcd", "connecting timed out");
        assert!(e.is_timeout() && e.is_retryable());
        let shape = Error::storage_msg("redis", "entry `x` is not a timestamp");
        assert!(!shape.is_timeout() && !shape.is_retryable());
        assert!(Error::new(ErrorKind::ConcurrentUpdate, "lost").is_retryable());
        for e in [
            Error::configuration("x"),
            Error::invalid_argument("x"),
            Error::new(ErrorKind::Parse, "x"),
        ] {
            assert!(!e.is_retryable() && !e.is_timeout(), "{e}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_errors() {
        let decode =
            redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a number"));
        assert!(!Error::storage("redis", decode).is_retryable());
        let auth = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "wrong pass"));
        assert!(!Error::storage("redis", auth).is_retryable());
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read");
        let e = Error::storage("redis", redis::RedisError::from(io));
        assert!(e.is_timeout() && e.is_retryable());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = Error::storage("redis", redis::RedisError::from(refused));
        assert!(!e.is_timeout() && e.is_retryable());
    }
}
