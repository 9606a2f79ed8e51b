//! Redis Cluster: `redis+cluster://` and `valkey+cluster://`.

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{cmd, Cmd, ConnectionAddr, RedisResult, Value};

use super::config::{host_ports, merge_query, RedisConfig, COMMON_OPTIONS, DEFAULT_PORT};
use super::ops::{impl_storage_traits, Ops, Topology};
use super::pool::Connector;
use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// Retries of a command after a redirect or a broken node connection.
const RETRIES: u32 = 3;

/// Connects to a Cluster (one `ClusterConnection` holds a connection per node).
pub(crate) struct Cluster {
    pub(crate) client: ClusterClient,
    pub(crate) config: RedisConfig,
}

impl Connector for Cluster {
    type Conn = ClusterConnection;

    fn connect(&self) -> RedisResult<ClusterConnection> {
        let conn = self.client.get_connection()?;
        conn.set_read_timeout(Some(self.config.socket_timeout))?;
        conn.set_write_timeout(Some(self.config.socket_timeout))?;
        Ok(conn)
    }
}

/// `CLUSTER SLOTS`.
pub(crate) fn cluster_slots() -> Cmd {
    let mut slots = cmd("CLUSTER");
    slots.arg("SLOTS");
    slots
}

/// Routes a command to the primary at `host:port`.
pub(crate) fn to_node(host: &str, port: u16) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: host.to_owned(),
        port,
    })
}

/// The primaries in a `CLUSTER SLOTS` reply: the first node of each range.
pub(crate) fn primaries_of(slots: Value) -> RedisResult<Vec<(String, u16)>> {
    let bad = || {
        redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected CLUSTER SLOTS reply",
        ))
    };
    let Value::Array(ranges) = slots else {
        return Err(bad());
    };
    let mut out: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err(bad());
        };
        let Some(Value::Array(node)) = fields.get(2) else {
            return Err(bad());
        };
        let (host, port) = match (node.first(), node.get(1)) {
            (Some(Value::BulkString(h)), Some(Value::Int(p))) => (
                String::from_utf8_lossy(h).into_owned(),
                u16::try_from(*p).map_err(|_| bad())?,
            ),
            _ => return Err(bad()),
        };
        if !out.contains(&(host.clone(), port)) {
            out.push((host, port));
        }
    }
    Ok(out)
}

impl Cluster {
    /// The seeds and settings a URI names, and the target shown by `Debug`.
    pub(crate) fn from_uri(uri: &StorageUri, options: &Options) -> Result<(Self, String)> {
        let options = &merge_query(uri, options);
        options.reject_unknown(
            "redis cluster",
            &COMMON_OPTIONS
                .iter()
                .copied()
                .filter(|o| !matches!(*o, "db" | "ssl_ca_certs"))
                .collect::<Vec<_>>(),
        )?;
        if let Some(path) = &uri.path {
            return Err(Error::configuration(format!(
                "`{}`: a cluster URI takes no path (`{path}`); a Cluster has only database 0",
                uri.redacted()
            )));
        }
        let config = RedisConfig::parse(uri, options, false)?;
        let nodes = host_ports(uri, DEFAULT_PORT)?;
        let target = nodes
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let seeds = nodes
            .into_iter()
            .map(|(h, p)| config.connection_info(ConnectionAddr::Tcp(h, p)))
            .collect::<RedisResult<Vec<_>>>()
            .map_err(|e| Error::configuration(format!("`{}`: {e}", uri.redacted())))?;
        let mut builder = ClusterClientBuilder::new(seeds)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.socket_timeout)
            .retries(RETRIES)
            .min_retry_wait(10)
            .max_retry_wait(500);
        if let Some(user) = &config.username {
            builder = builder.username(user);
        }
        if let Some(password) = &config.password {
            builder = builder.password(password);
        }
        let client = builder
            .build()
            .map_err(|e| Error::configuration(format!("`{}`: {e}", uri.redacted())))?;
        Ok((Cluster { client, config }, target))
    }
}

impl Topology for Cluster {
    type Node = (String, u16);

    fn primaries(&self, conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
        primaries_of(cluster_slots().query(conn)?)
    }

    fn query_node(
        &self,
        conn: &mut ClusterConnection,
        (host, port): &(String, u16),
        cmd: &Cmd,
    ) -> RedisResult<Value> {
        conn.route_command(cmd, to_node(host, *port))
    }
}

/// Rate-limit storage on a Redis (or Valkey) Cluster.
///
/// URI: `redis+cluster://[[user]:password@]host:port[,host:port...]` or
/// `valkey+cluster://...`; the nodes given are the seeds from which the
/// cluster's layout is learnt. Same options as [`RedisStorage`](crate::RedisStorage)
/// except `db` (a Cluster has only database 0) and `ssl_ca_certs`.
///
/// Sliding window keys carry a hash tag so both buckets of a key share a
/// slot; [`reset`](crate::Storage::reset) scans every primary.
pub struct RedisClusterStorage {
    ops: Ops<Cluster>,
    target: String,
}

impl RedisClusterStorage {
    /// Builds a storage from a URI string (options from its query string).
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (cluster, target) = Cluster::from_uri(uri, options)?;
        let config = cluster.config.clone();
        Ok(RedisClusterStorage {
            ops: Ops::new(cluster, &config, "redis cluster"),
            target,
        })
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        self.ops.prefix()
    }

    /// The `host:port` of every primary, as the cluster reports them now.
    pub fn primaries(&self) -> Result<Vec<(String, u16)>> {
        let topology = self.ops.topology();
        self.ops.run(|c| topology.primaries(c))
    }
}

impl RedisClusterStorage {
    /// The operations (for other remotes built on this storage, such as the
    /// write-behind sync target).
    pub(crate) fn ops(&self) -> &Ops<Cluster> {
        &self.ops
    }
}

impl std::fmt::Debug for RedisClusterStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClusterStorage")
            .field("seeds", &self.target)
            .field("config", &self.ops.topology().config)
            .finish()
    }
}

impl_storage_traits!(RedisClusterStorage);

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn primaries_come_from_cluster_slots() {
        let range = |a, b, host: &str, port| {
            Value::Array(vec![
                Value::Int(a),
                Value::Int(b),
                Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
                Value::Array(vec![bulk("10.0.0.9"), Value::Int(7009), bulk("replica")]),
            ])
        };
        let reply = Value::Array(vec![
            range(0, 5460, "127.0.0.1", 7000),
            range(5461, 10922, "127.0.0.1", 7001),
            range(10923, 12000, "127.0.0.1", 7002),
            range(12001, 16383, "127.0.0.1", 7002),
        ]);
        assert_eq!(
            primaries_of(reply).unwrap(),
            vec![
                ("127.0.0.1".to_string(), 7000),
                ("127.0.0.1".to_string(), 7001),
                ("127.0.0.1".to_string(), 7002)
            ]
        );
        assert!(primaries_of(Value::Int(1)).is_err());
    }
}
