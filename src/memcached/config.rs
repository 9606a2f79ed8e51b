//! Options of the Memcached storage (see the [module docs](crate::memcached))
//! and the servers a URI names.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// Default port of a Memcached server.
pub const DEFAULT_PORT: u16 = 11211;
/// Default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 32;
/// The largest `max_connections`.
pub const MAX_CONNECTIONS: u32 = 4096;

const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Every option the Memcached storage takes.
pub(crate) const OPTIONS: &[&str] = &[
    "connect_timeout",
    "timeout",
    "max_connections",
    "key_prefix",
    "flush_on_reset",
];

/// Where one server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `host:port` (IPv6 hosts without brackets).
    Tcp(String, u16),
    /// A unix socket path.
    Unix(String),
}

impl Target {
    /// The server's name as this crate writes it (`host:port`, `[::1]:port`,
    /// or the socket path). Sharding hashes this name, so the order of the
    /// servers in the URI does not matter.
    pub(crate) fn name(&self) -> String {
        match self {
            Target::Tcp(host, port) if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp(host, port) => format!("{host}:{port}"),
            Target::Unix(path) => path.clone(),
        }
    }

    /// The URL the `memcache` crate connects to. TCP connections get the I/O
    /// timeout from the URL's `timeout` parameter, which the crate applies to
    /// every connection it opens.
    pub(crate) fn url(&self, io_timeout: Duration) -> String {
        match self {
            Target::Tcp(..) => format!(
                "memcache://{}?timeout={}&tcp_nodelay=true",
                self.name(),
                io_timeout.as_secs_f64()
            ),
            Target::Unix(path) => format!("memcache://{path}"),
        }
    }
}

/// The settings of one Memcached storage, parsed from its URI and options.
#[derive(Debug, Clone)]
pub(crate) struct MemcachedConfig {
    pub targets: Vec<Target>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_connections: u32,
    pub key_prefix: String,
    pub flush_on_reset: bool,
}

fn timeout(options: &Options, name: &str, default: Duration) -> Result<Duration> {
    match options.get_secs(name)? {
        None => Ok(default),
        Some(d) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) => Ok(d),
        Some(d) => Err(Error::configuration(format!(
            "option `{name}` = {d:?} must lie between 1 ms and 1 hour"
        ))),
    }
}

fn bad_uri(uri: &StorageUri, why: impl std::fmt::Display) -> Error {
    Error::configuration(format!("`{}`: {why}", uri.redacted()))
}

impl MemcachedConfig {
    /// Parses a `memcached://` URI and its options (query parameters
    /// already merged into `options`).
    pub(crate) fn parse(uri: &StorageUri, options: &Options) -> Result<Self> {
        options.reject_unknown("memcached", OPTIONS)?;
        let (base, _) = uri.base_scheme();
        if base != "memcached" {
            return Err(bad_uri(uri, format!("`{base}` is not a memcached scheme")));
        }
        if uri.username.is_some() || uri.password.is_some() {
            return Err(bad_uri(
                uri,
                "credentials are not supported by the memcached storage (no SASL)",
            ));
        }
        let targets = if uri.locations.is_empty() {
            let path = uri.path.clone().ok_or_else(|| {
                bad_uri(
                    uri,
                    "missing host or port: memcached://host:port[,host:port...] \
                     or memcached:///path/to.sock",
                )
            })?;
            // The memcache crate reads the socket path back from a URL, which
            // would percent-encode these.
            if path
                .chars()
                .any(|c| !c.is_ascii() || c.is_ascii_control() || " %?#".contains(c))
            {
                return Err(bad_uri(
                    uri,
                    format!("unsupported character in socket path `{path}`"),
                ));
            }
            vec![Target::Unix(path)]
        } else {
            if let Some(path) = &uri.path {
                return Err(bad_uri(
                    uri,
                    format!("a memcached:// URI with hosts takes no path (found `/{path}`)"),
                ));
            }
            let mut targets: Vec<Target> = Vec::with_capacity(uri.locations.len());
            for l in &uri.locations {
                let t = Target::Tcp(l.host.clone(), l.port.unwrap_or(DEFAULT_PORT));
                if targets.contains(&t) {
                    return Err(bad_uri(
                        uri,
                        format!("server `{}` is listed twice", t.name()),
                    ));
                }
                targets.push(t);
            }
            targets
        };
        let max_connections = match options.get_u64("max_connections")? {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(n) if (1..=u64::from(MAX_CONNECTIONS)).contains(&n) => n as u32,
            Some(n) => {
                return Err(Error::configuration(format!(
                    "option `max_connections` = {n} must lie between 1 and {MAX_CONNECTIONS}"
                )))
            }
        };
        Ok(MemcachedConfig {
            targets,
            connect_timeout: timeout(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
            timeout: timeout(options, "timeout", DEFAULT_TIMEOUT)?,
            max_connections,
            key_prefix: options.get_str("key_prefix")?.unwrap_or_default(),
            flush_on_reset: options.get_bool("flush_on_reset")?.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str, options: &Options) -> Result<MemcachedConfig> {
        let uri = StorageUri::parse(uri)?;
        let mut merged = options.clone();
        for (k, v) in &uri.query {
            merged.insert_default(k, v.as_str());
        }
        MemcachedConfig::parse(&uri, &merged)
    }

    #[test]
    fn targets_and_defaults() {
        let c = parse("memcached://a:1,[::1],b", &Options::new()).unwrap();
        assert_eq!(
            c.targets,
            vec![
                Target::Tcp("a".into(), 1),
                Target::Tcp("::1".into(), DEFAULT_PORT),
                Target::Tcp("b".into(), DEFAULT_PORT)
            ]
        );
        assert_eq!(c.targets[1].name(), "[::1]:11211");
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(c.key_prefix, "");
        assert!(!c.flush_on_reset);
        let c = parse("memcached:///run/mc.sock?timeout=0.25", &Options::new()).unwrap();
        assert_eq!(c.targets, vec![Target::Unix("/run/mc.sock".into())]);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.targets[0].url(c.timeout), "memcache:///run/mc.sock");
    }

    #[test]
    fn bad_uris_and_options() {
        for (uri, opts) in [
            ("memcached://", Options::new()),
            ("memcached://h:1/path", Options::new()),
            ("memcached://u:p@h:1", Options::new()),
            ("memcached://h:1,h:1", Options::new()),
            ("memcached:///a b", Options::new()),
            ("memcached://h?nope=1", Options::new()),
            ("memcached://h?timeout=0", Options::new()),
            ("memcached://h?timeout=abc", Options::new()),
            ("memcached://h?connect_timeout=-1", Options::new()),
            ("memcached://h?max_connections=0", Options::new()),
            ("memcached://h?max_connections=x", Options::new()),
            ("memcached://h?flush_on_reset=maybe", Options::new()),
            ("memcached://h", Options::new().with("timeout", 7200)),
            ("redis://h", Options::new()),
        ] {
            let e = parse(uri, &opts).unwrap_err();
            assert!(e.is_configuration(), "{uri}: {e}");
        }
    }
}
