//! Options shared by the Redis storages (see the [module docs](crate::redis)),
//! and how they become connections.

use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisResult};

use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// The key prefix of Python `limits`.
pub const DEFAULT_KEY_PREFIX: &str = "LIMITS";
/// Default `socket_timeout`.
pub const DEFAULT_SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `socket_connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;
/// The largest `max_connections`.
pub const MAX_CONNECTIONS: usize = 4096;

const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default port of data nodes.
pub(crate) const DEFAULT_PORT: u16 = 6379;
/// Default port of Sentinels.
pub(crate) const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Options every Redis storage takes.
pub(crate) const COMMON_OPTIONS: &[&str] = &[
    "key_prefix",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "ssl_ca_certs",
    "max_connections",
];

/// The settings of one Redis storage, parsed from its URI and options.
#[derive(Clone)]
pub(crate) struct RedisConfig {
    pub key_prefix: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub socket_timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM bytes of the CA file, when given.
    pub ca_certs: Option<Vec<u8>>,
    pub max_connections: usize,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("key_prefix", &self.key_prefix)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("socket_timeout", &self.socket_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_certs", &self.ca_certs.as_ref().map(|_| "<pem>"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
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

impl RedisConfig {
    /// Parses what every Redis storage shares. `tls` says whether the scheme
    /// is a TLS one (`ssl_ca_certs` is refused otherwise).
    pub(crate) fn parse(uri: &StorageUri, options: &Options, tls: bool) -> Result<Self> {
        if tls && !cfg!(feature = "tls") {
            return Err(Error::configuration(format!(
                "`{}://` needs TLS, which this build lacks: enable the crate's `tls` feature",
                uri.scheme
            )));
        }
        let key_prefix = options
            .get_str("key_prefix")?
            .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
        let db = match options.get_u64("db")? {
            Some(db) if db <= i32::MAX as u64 => db as i64,
            Some(db) => {
                return Err(Error::configuration(format!(
                    "option `db` = {db} is out of range"
                )))
            }
            None => 0,
        };
        let max_connections = match options.get_u64("max_connections")? {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(n) if (1..=MAX_CONNECTIONS as u64).contains(&n) => n as usize,
            Some(n) => {
                return Err(Error::configuration(format!(
                    "option `max_connections` = {n} must lie between 1 and {MAX_CONNECTIONS}"
                )))
            }
        };
        let ca_certs = match options.get_str("ssl_ca_certs")? {
            None => None,
            Some(_) if !tls => {
                return Err(Error::configuration(format!(
                "option `ssl_ca_certs` needs a TLS scheme (`rediss://`, `valkeys://`), not `{}://`",
                uri.scheme
            )))
            }
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                Error::configuration(format!("option `ssl_ca_certs`: cannot read `{path}`: {e}"))
            })?),
        };
        Ok(RedisConfig {
            key_prefix,
            db,
            username: options
                .get_str("username")?
                .or_else(|| uri.username.clone()),
            password: options
                .get_str("password")?
                .or_else(|| uri.password.clone()),
            socket_timeout: timeout(options, "socket_timeout", DEFAULT_SOCKET_TIMEOUT)?,
            connect_timeout: timeout(options, "socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
            ca_certs,
            max_connections,
        })
    }

    /// The handshake settings: database and credentials.
    pub(crate) fn redis_settings(&self) -> RedisConnectionInfo {
        let mut settings = RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        settings
    }

    /// Connection info for `addr` with this configuration's handshake settings.
    pub(crate) fn connection_info(&self, addr: ConnectionAddr) -> RedisResult<ConnectionInfo> {
        Ok(addr
            .into_connection_info()?
            .set_redis_settings(self.redis_settings()))
    }

    /// A client for `addr`, with the CA file when one was given.
    pub(crate) fn client(&self, addr: ConnectionAddr) -> RedisResult<redis::Client> {
        let info = self.connection_info(addr)?;
        #[cfg(feature = "tls")]
        match &self.ca_certs {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
        // Without the `tls` feature `parse` refuses TLS schemes, so no CA is set.
        #[cfg(not(feature = "tls"))]
        redis::Client::open(info)
    }

    /// Opens a connection with `client` within the connect timeout and sets
    /// the socket timeouts on it.
    pub(crate) fn connect(&self, client: &redis::Client) -> RedisResult<redis::Connection> {
        let conn = client.get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.socket_timeout))?;
        conn.set_write_timeout(Some(self.socket_timeout))?;
        Ok(conn)
    }
}

/// The `host:port` pairs of a URI, with `default_port` where none is given.
pub(crate) fn host_ports(uri: &StorageUri, default_port: u16) -> Result<Vec<(String, u16)>> {
    uri.require_location()?;
    Ok(uri
        .locations
        .iter()
        .map(|l| (l.host.clone(), l.port.unwrap_or(default_port)))
        .collect())
}

/// `options` with the URI's query parameters added where not set already.
pub(crate) fn merge_query(uri: &StorageUri, options: &Options) -> Options {
    let mut merged = options.clone();
    for (k, v) in &uri.query {
        merged.insert_default(k, v.as_str());
    }
    merged
}
