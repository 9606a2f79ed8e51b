//! One Redis or Valkey server: `redis://`, `rediss://`, `redis+unix://` and
//! the `valkey` aliases.

use std::path::PathBuf;

use redis::{ConnectionAddr, RedisResult};

use super::config::{host_ports, merge_query, RedisConfig, COMMON_OPTIONS, DEFAULT_PORT};
use super::ops::{impl_storage_traits, Ops, SinglePrimary};
use super::pool::Connector;
use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// Connects to one server.
pub(crate) struct Standalone {
    pub(crate) client: redis::Client,
    pub(crate) config: RedisConfig,
}

impl Connector for Standalone {
    type Conn = redis::Connection;

    fn connect(&self) -> RedisResult<redis::Connection> {
        self.config.connect(&self.client)
    }
}

impl SinglePrimary for Standalone {}

impl Standalone {
    /// The server and settings a URI names, and the target shown by `Debug`.
    pub(crate) fn from_uri(uri: &StorageUri, options: &Options) -> Result<(Self, String)> {
        let options = &merge_query(uri, options);
        options.reject_unknown("redis", COMMON_OPTIONS)?;
        let (base, _) = uri.base_scheme();
        let (addr, target, path_db) = match base {
            "redis" | "valkey" | "rediss" | "valkeys" => {
                let tls = matches!(base, "rediss" | "valkeys");
                let hosts = host_ports(uri, DEFAULT_PORT)?;
                let [(host, port)] = hosts.as_slice() else {
                    return Err(Error::configuration(format!(
                        "`{}`: a {base}:// storage takes one host; use redis+cluster:// or \
                         redis+sentinel:// for several",
                        uri.redacted()
                    )));
                };
                let path_db = match uri.path.as_deref() {
                    None => None,
                    Some(p) => Some(p.parse::<u32>().map_err(|_| {
                        Error::configuration(format!(
                            "`{}`: the path must be a database number, not `{p}`",
                            uri.redacted()
                        ))
                    })?),
                };
                let addr = if tls {
                    ConnectionAddr::TcpTls {
                        host: host.clone(),
                        port: *port,
                        insecure: false,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(host.clone(), *port)
                };
                (addr, format!("{base}://{host}:{port}"), path_db)
            }
            "redis+unix" | "valkey+unix" => {
                if !uri.locations.is_empty() {
                    return Err(Error::configuration(format!(
                        "`{}`: a unix socket URI takes a path, not a host: {base}:///path/to.sock",
                        uri.redacted()
                    )));
                }
                let path = uri.path.clone().ok_or_else(|| {
                    Error::configuration(format!("`{}`: missing the socket path", uri.redacted()))
                })?;
                let target = format!("{base}://{path}");
                (ConnectionAddr::Unix(PathBuf::from(path)), target, None)
            }
            other => {
                return Err(Error::configuration(format!(
                    "`{other}` is not a scheme of a single Redis server"
                )))
            }
        };
        let tls = matches!(addr, ConnectionAddr::TcpTls { .. });
        let mut config = RedisConfig::parse(uri, options, tls)?;
        if let Some(db) = path_db {
            if options.contains("db") && config.db != i64::from(db) {
                return Err(Error::configuration(format!(
                    "`{}`: database {db} in the path but option `db` = {}",
                    uri.redacted(),
                    config.db
                )));
            }
            config.db = db.into();
        }
        let client = config
            .client(addr)
            .map_err(|e| Error::configuration(format!("`{}`: {e}", uri.redacted())))?;
        Ok((Standalone { client, config }, target))
    }
}

/// Rate-limit storage on one Redis (or Valkey) server.
///
/// URIs: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS,
/// with option `ssl_ca_certs` for a private CA), `redis+unix:///path/to.sock`
/// (database from option `db`), and the same with `valkey`, `valkeys`,
/// `valkey+unix`. See the [module docs](crate::redis) for the options.
///
/// Construction does not connect; the first call does, and a failing server
/// is reported by each call as an [`ErrorKind::Storage`](crate::ErrorKind::Storage)
/// error within the configured timeouts.
///
/// ```no_run
/// use limitstore::{RedisStorage, Storage};
/// let storage = RedisStorage::new("redis://localhost:6379/0?key_prefix=myapp").unwrap();
/// assert_eq!(storage.incr("k", 60, false, 1).unwrap(), 1);
/// ```
pub struct RedisStorage {
    ops: Ops<Standalone>,
    target: String,
}

impl RedisStorage {
    /// Builds a storage from a URI string (options from its query string).
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options (the options win over
    /// the URI's query string and user info).
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (standalone, target) = Standalone::from_uri(uri, options)?;
        let config = standalone.config.clone();
        Ok(RedisStorage {
            ops: Ops::new(standalone, &config, "redis"),
            target,
        })
    }

    /// The key prefix (`LIMITS` unless option `key_prefix` says otherwise).
    pub fn key_prefix(&self) -> &str {
        self.ops.prefix()
    }

    /// Connections open and idle in the pool right now.
    pub fn idle_connections(&self) -> usize {
        self.ops.idle_connections()
    }

    /// The operations (for other remotes built on this storage, such as the
    /// write-behind sync target).
    pub(crate) fn ops(&self) -> &Ops<Standalone> {
        &self.ops
    }
}

impl std::fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStorage")
            .field("target", &self.target)
            .field("config", &self.ops.topology().config)
            .finish()
    }
}

impl_storage_traits!(RedisStorage);
