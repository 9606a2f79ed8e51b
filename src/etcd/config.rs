//! The options of the etcd storage (see the [module docs](crate::etcd)).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// The key prefix of Python `limits`: keys are `limits/<key>`.
pub const DEFAULT_KEY_PREFIX: &str = "limits";
/// Default `max_retries`: attempts of one increment before it gives up with
/// [`ErrorKind::ConcurrentUpdate`](crate::ErrorKind::ConcurrentUpdate).
pub const DEFAULT_MAX_RETRIES: u32 = 32;
/// Default `request_timeout`: the longest wait for one reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `connect_timeout`: the longest wait for a new connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The port of an endpoint given without one.
pub const DEFAULT_PORT: u16 = 2379;
/// The largest `max_retries`.
pub const MAX_RETRIES: u32 = 10_000;

const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Every option the etcd storage takes.
pub(crate) const OPTIONS: &[&str] = &[
    "key_prefix",
    "max_retries",
    "request_timeout",
    "timeout",
    "connect_timeout",
];

/// The settings of one etcd storage, parsed from its URI and options.
#[derive(Debug, Clone)]
pub(crate) struct EtcdConfig {
    /// `http://host:port` of every endpoint, in the URI's order.
    pub endpoints: Vec<String>,
    pub key_prefix: String,
    pub max_retries: u32,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

fn timeout(options: &Options, name: &str) -> Result<Option<Duration>> {
    match options.get_secs(name)? {
        None => Ok(None),
        Some(d) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) => Ok(Some(d)),
        Some(d) => Err(Error::configuration(format!(
            "option `{name}` = {d:?} must lie between 1 ms and 1 hour"
        ))),
    }
}

impl EtcdConfig {
    /// Parses `etcd://host[:port][,host[:port]...]` and the options (query
    /// parameters merged in already, or merged here where not set).
    pub(crate) fn parse(uri: &StorageUri, options: &Options) -> Result<Self> {
        let mut options = options.clone();
        for (k, v) in &uri.query {
            options.insert_default(k, v.as_str());
        }
        options.reject_unknown("etcd", OPTIONS)?;
        let (base, _) = uri.base_scheme();
        if base != "etcd" {
            return Err(Error::configuration(format!(
                "`{base}` is not an etcd scheme"
            )));
        }
        uri.require_location()?;
        if uri.username.is_some() || uri.password.is_some() {
            return Err(Error::configuration(format!(
                "`{}`: etcd authentication is not supported; remove the user info",
                uri.redacted()
            )));
        }
        if let Some(path) = uri.path.as_deref().filter(|p| !p.is_empty()) {
            return Err(Error::configuration(format!(
                "`{}`: an etcd URI takes no path (`/{path}`); set the key prefix with \
                 option `key_prefix`",
                uri.redacted()
            )));
        }
        let endpoints = uri
            .locations
            .iter()
            .map(|l| {
                let host = if l.host.contains(':') {
                    format!("[{}]", l.host)
                } else {
                    l.host.clone()
                };
                format!("http://{host}:{}", l.port.unwrap_or(DEFAULT_PORT))
            })
            .collect();
        let key_prefix = options
            .get_str("key_prefix")?
            .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
        if key_prefix.is_empty() {
            return Err(Error::configuration(
                "option `key_prefix` must not be empty (reset() deletes everything under it)",
            ));
        }
        let max_retries = match options.get_u64("max_retries")? {
            None => DEFAULT_MAX_RETRIES,
            Some(n) if (1..=u64::from(MAX_RETRIES)).contains(&n) => n as u32,
            Some(n) => {
                return Err(Error::configuration(format!(
                    "option `max_retries` = {n} must lie between 1 and {MAX_RETRIES}"
                )))
            }
        };
        let request_timeout = match (
            timeout(&options, "request_timeout")?,
            timeout(&options, "timeout")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(Error::configuration(
                    "options `request_timeout` and `timeout` name the same setting: give one",
                ))
            }
            (Some(d), None) | (None, Some(d)) => d,
            (None, None) => DEFAULT_REQUEST_TIMEOUT,
        };
        Ok(EtcdConfig {
            endpoints,
            key_prefix,
            max_retries,
            request_timeout,
            connect_timeout: timeout(&options, "connect_timeout")?
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Result<EtcdConfig> {
        EtcdConfig::parse(&StorageUri::parse(uri)?, &Options::new())
    }

    #[test]
    fn endpoints_and_defaults() {
        let c = parse("etcd://h1,h2:1234,[::1]:5").unwrap();
        assert_eq!(
            c.endpoints,
            ["http://h1:2379", "http://h2:1234", "http://[::1]:5"]
        );
        assert_eq!(c.key_prefix, "limits");
        assert_eq!(c.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(c.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let c =
            parse("etcd://h?key_prefix=app&max_retries=50&timeout=0.5&connect_timeout=1").unwrap();
        assert_eq!(c.key_prefix, "app");
        assert_eq!(c.max_retries, 50);
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(c.connect_timeout, Duration::from_secs(1));
    }

    #[test]
    fn bad_uris_and_options() {
        for uri in [
            "etcd://",
            "etcd://h/path",
            "etcd://u:p@h",
            "etcd://h?bogus=1",
            "etcd://h?max_retries=0",
            "etcd://h?max_retries=-1",
            "etcd://h?max_retries=x",
            "etcd://h?timeout=0",
            "etcd://h?request_timeout=1&timeout=1",
            "etcd://h?connect_timeout=nan",
            "etcd://h?key_prefix=",
        ] {
            let e = parse(uri).unwrap_err();
            assert!(e.is_configuration(), "{uri}: {e}");
        }
    }
}
