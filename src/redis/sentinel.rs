//! Redis Sentinel: `redis+sentinel://` and `valkey+sentinel://`.
//!
//! Each new connection asks the Sentinels, in order, for the address of the
//! primary of `service_name` and checks with `ROLE` that the server there is
//! a primary. Every step runs under the configured connect and socket
//! timeouts, so a Sentinel that hangs cannot hang a call. After a failover
//! the connections to the old primary fail (closed, or `READONLY` once it
//! comes back as a replica); the pool drops them and the next call connects
//! to the primary the Sentinels name then.

use redis::{cmd, Cmd, ConnectionAddr, RedisError, RedisResult, Value};

use super::config::{host_ports, merge_query, RedisConfig, COMMON_OPTIONS, DEFAULT_SENTINEL_PORT};
use super::ops::{impl_storage_traits, Ops, SinglePrimary};
use super::pool::Connector;
use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// Finds the primary through the Sentinels and connects to it.
pub(crate) struct Sentinel {
    /// One client per Sentinel (credentials from the URI's user info).
    pub(crate) sentinels: Vec<redis::Client>,
    pub(crate) service_name: String,
    pub(crate) config: RedisConfig,
}

impl Sentinel {
    /// `SENTINEL GET-MASTER-ADDR-BY-NAME service_name`.
    pub(crate) fn ask_cmd(&self) -> Cmd {
        let mut ask = cmd("SENTINEL");
        ask.arg("GET-MASTER-ADDR-BY-NAME").arg(&self.service_name);
        ask
    }

    /// The primary's address in a Sentinel's reply to [`Self::ask_cmd`].
    pub(crate) fn primary_addr(&self, reply: Value) -> RedisResult<(String, u16)> {
        let addr: Option<(String, u16)> = redis::from_redis_value(reply)?;
        addr.ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::MasterNameNotFoundBySentinel,
                "the sentinel does not know the service",
                self.service_name.clone(),
            ))
        })
    }

    /// Checks that a reply to `ROLE` from `host:port` is that of a primary.
    pub(crate) fn check_role(reply: Value, host: &str, port: u16) -> RedisResult<()> {
        let role: Vec<Value> = redis::from_redis_value(reply)?;
        match role.first() {
            Some(Value::BulkString(r)) if r.as_slice() == b"master" => Ok(()),
            _ => Err(RedisError::from((
                redis::ErrorKind::Client,
                "the server the sentinel named is not a primary",
                format!("{host}:{port}"),
            ))),
        }
    }

    /// The primary's address, as the first Sentinel that knows it says.
    fn ask(&self, sentinel: &redis::Client) -> RedisResult<(String, u16)> {
        let mut conn = self.config.connect(sentinel)?;
        self.primary_addr(self.ask_cmd().query(&mut conn)?)
    }

    fn connect_primary(&self, host: String, port: u16) -> RedisResult<redis::Connection> {
        let client = self
            .config
            .client(ConnectionAddr::Tcp(host.clone(), port))?;
        let mut conn = self.config.connect(&client)?;
        Self::check_role(cmd("ROLE").query(&mut conn)?, &host, port)?;
        Ok(conn)
    }
}

impl Sentinel {
    /// The Sentinels, service and settings a URI names, and the target shown
    /// by `Debug`.
    pub(crate) fn from_uri(uri: &StorageUri, options: &Options) -> Result<(Self, String)> {
        let options = &merge_query(uri, options);
        let mut known: Vec<&str> = COMMON_OPTIONS
            .iter()
            .copied()
            .filter(|o| *o != "ssl_ca_certs")
            .collect();
        known.push("service_name");
        options.reject_unknown("redis sentinel", &known)?;
        let service_name = match (options.get_str("service_name")?, uri.path.clone()) {
            (Some(opt), Some(path)) if opt != path => {
                return Err(Error::configuration(format!(
                    "`{}`: service name `{path}` in the path but option `service_name` = `{opt}`",
                    uri.redacted()
                )))
            }
            (Some(name), _) | (None, Some(name)) if !name.is_empty() => name,
            _ => {
                return Err(Error::configuration(format!(
                    "`{}`: 'service_name' not provided (URI path or option)",
                    uri.redacted()
                )))
            }
        };
        let config = RedisConfig::parse(uri, options, false)?;
        let sentinel_config = RedisConfig {
            db: 0,
            username: uri.username.clone(),
            password: uri.password.clone(),
            ..config.clone()
        };
        let addrs = host_ports(uri, DEFAULT_SENTINEL_PORT)?;
        let target = format!(
            "{}/{service_name}",
            addrs
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let sentinels = addrs
            .into_iter()
            .map(|(h, p)| sentinel_config.client(ConnectionAddr::Tcp(h, p)))
            .collect::<RedisResult<Vec<_>>>()
            .map_err(|e| Error::configuration(format!("`{}`: {e}", uri.redacted())))?;
        Ok((
            Sentinel {
                sentinels,
                service_name,
                config,
            },
            target,
        ))
    }
}

impl Connector for Sentinel {
    type Conn = redis::Connection;

    fn connect(&self) -> RedisResult<redis::Connection> {
        let mut last_err = None;
        for sentinel in &self.sentinels {
            match self
                .ask(sentinel)
                .and_then(|(host, port)| self.connect_primary(host, port))
            {
                Ok(conn) => return Ok(conn),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("a sentinel storage has at least one sentinel"))
    }
}

impl SinglePrimary for Sentinel {}

/// Rate-limit storage on the primary that Redis Sentinel names.
///
/// URI: `redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name`
/// (or `valkey+sentinel://`); the locations are Sentinels (default port
/// 26379) and the service name comes from the path or option `service_name`.
/// The URI's credentials are sent to the Sentinels and to the data nodes
/// (as Python `limits` does); options `username` / `password` replace them
/// for the data nodes only. Options as for [`RedisStorage`](crate::RedisStorage),
/// plus `service_name`, without `ssl_ca_certs`.
pub struct RedisSentinelStorage {
    ops: Ops<Sentinel>,
    target: String,
}

impl RedisSentinelStorage {
    /// Builds a storage from a URI string (options from its query string).
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (sentinel, target) = Sentinel::from_uri(uri, options)?;
        let config = sentinel.config.clone();
        Ok(RedisSentinelStorage {
            ops: Ops::new(sentinel, &config, "redis sentinel"),
            target,
        })
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        self.ops.prefix()
    }

    /// The service name of the monitored primary.
    pub fn service_name(&self) -> &str {
        &self.ops.topology().service_name
    }
}

impl RedisSentinelStorage {
    /// The operations (for other remotes built on this storage, such as the
    /// write-behind sync target).
    pub(crate) fn ops(&self) -> &Ops<Sentinel> {
        &self.ops
    }
}

impl std::fmt::Debug for RedisSentinelStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSentinelStorage")
            .field("sentinels", &self.target)
            .field("config", &self.ops.topology().config)
            .finish()
    }
}

impl_storage_traits!(RedisSentinelStorage);
