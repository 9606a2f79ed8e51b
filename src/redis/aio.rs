//! The asynchronous Redis storages (cargo features `redis` and `async`):
//! [`AsyncRedisStorage`], [`AsyncRedisClusterStorage`] and
//! [`AsyncRedisSentinelStorage`], which
//! [`async_storage_from_string`](crate::aio::async_storage_from_string) builds
//! for `async+redis://`, `async+rediss://`, `async+redis+unix://`,
//! `async+redis+cluster://`, `async+redis+sentinel://` and the `valkey`
//! aliases.
//!
//! They take the same URIs and options as their blocking twins, build each
//! operation with the same code (same scripts, same key layout, same reply
//! handling, see `ops.rs`), and differ only in how a call reaches the server:
//! over one multiplexed connection of the `redis` crate (a Cluster connection
//! for a Cluster), shared by every task.
//!
//! How calls run, time out and reconnect is documented on
//! [`AsyncRedisStorage`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{cmd, AsyncConnectionConfig, Cmd, ConnectionAddr, RedisError, RedisResult, Value};
use tokio::time::{timeout, timeout_at, Instant};

use super::cluster::{cluster_slots, primaries_of, to_node, Cluster};
use super::config::RedisConfig;
use super::ops::{del_cmds, ping, scan_cmd, scan_reply, Layout, Reply, Step};
use super::pool::is_connection_error;
use super::sentinel::Sentinel;
use super::standalone::Standalone;
use crate::aio::{
    AsyncMovingWindowSupport, AsyncSlidingWindowCounterSupport, AsyncStorage, BoxFuture,
};
use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// A timeout as a client error (an I/O error of kind `TimedOut`, so that it
/// counts as a connection-level error).
fn timed_out(what: &str, after: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer within {after:?}"),
    ))
}

/// `future`, failing with a timeout error after `after`.
async fn bounded<R>(
    what: &str,
    after: Duration,
    future: impl Future<Output = RedisResult<R>>,
) -> RedisResult<R> {
    timeout(after, future)
        .await
        .unwrap_or_else(|_| Err(timed_out(what, after)))
}

/// Settings of the multiplexed connections: the `redis` crate's own
/// response timeout is off, every await here has its own bound.
fn multiplexed(config: &RedisConfig) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(None)
}

/// Where the keys of a deployment live, reached with asynchronous
/// connections (the asynchronous twin of `ops::Topology`).
pub(crate) trait AsyncTopology: Send + Sync + 'static {
    /// A connection, cloned cheaply and shared by every call.
    type Conn: redis::aio::ConnectionLike + Clone + Send + Sync + 'static;
    /// One primary.
    type Node: Send + Sync;

    /// The settings.
    fn config(&self) -> &RedisConfig;

    /// The longest [`connect`](Self::connect) may take.
    fn connect_bound(&self) -> Duration {
        self.config().connect_timeout
    }

    /// Opens a connection.
    fn connect(&self) -> impl Future<Output = RedisResult<Self::Conn>> + Send;

    /// Every primary that holds keys.
    fn primaries(
        &self,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = RedisResult<Vec<Self::Node>>> + Send;

    /// Runs `cmd` on `node`.
    fn query_node(
        &self,
        conn: &mut Self::Conn,
        node: &Self::Node,
        cmd: Cmd,
    ) -> impl Future<Output = RedisResult<Value>> + Send;
}

impl AsyncTopology for Standalone {
    type Conn = MultiplexedConnection;
    type Node = ();

    fn config(&self) -> &RedisConfig {
        &self.config
    }

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        self.client
            .get_multiplexed_async_connection_with_config(&multiplexed(&self.config))
            .await
    }

    async fn primaries(&self, _conn: &mut MultiplexedConnection) -> RedisResult<Vec<()>> {
        Ok(vec![()])
    }

    async fn query_node(
        &self,
        conn: &mut MultiplexedConnection,
        _node: &(),
        cmd: Cmd,
    ) -> RedisResult<Value> {
        cmd.query_async(conn).await
    }
}

impl Sentinel {
    /// Asks `sentinel` for the primary, connects to it and checks its role,
    /// each step under its own timeout.
    async fn connect_via(&self, sentinel: &redis::Client) -> RedisResult<MultiplexedConnection> {
        let config = &self.config;
        let (connect, reply) = (config.connect_timeout, config.socket_timeout);
        let mut asking = bounded(
            "connecting to the sentinel",
            connect,
            sentinel.get_multiplexed_async_connection_with_config(&multiplexed(config)),
        )
        .await?;
        let answer = bounded(
            "asking the sentinel",
            reply,
            self.ask_cmd().query_async(&mut asking),
        )
        .await?;
        drop(asking);
        let (host, port) = self.primary_addr(answer)?;
        let client = config.client(ConnectionAddr::Tcp(host.clone(), port))?;
        let mut conn = bounded(
            "connecting to the primary",
            connect,
            client.get_multiplexed_async_connection_with_config(&multiplexed(config)),
        )
        .await?;
        let role = bounded(
            "asking the primary its role",
            reply,
            cmd("ROLE").query_async(&mut conn),
        )
        .await?;
        Sentinel::check_role(role, &host, port)?;
        Ok(conn)
    }
}

impl AsyncTopology for Sentinel {
    type Conn = MultiplexedConnection;
    type Node = ();

    fn config(&self) -> &RedisConfig {
        &self.config
    }

    fn connect_bound(&self) -> Duration {
        let per_sentinel = 2 * (self.config.connect_timeout + self.config.socket_timeout);
        per_sentinel * self.sentinels.len().max(1) as u32
    }

    /// Tries the Sentinels in order, as the blocking storage does.
    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let mut last_err = None;
        for sentinel in &self.sentinels {
            match self.connect_via(sentinel).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("a sentinel storage has at least one sentinel"))
    }

    async fn primaries(&self, _conn: &mut MultiplexedConnection) -> RedisResult<Vec<()>> {
        Ok(vec![()])
    }

    async fn query_node(
        &self,
        conn: &mut MultiplexedConnection,
        _node: &(),
        cmd: Cmd,
    ) -> RedisResult<Value> {
        cmd.query_async(conn).await
    }
}

impl AsyncTopology for Cluster {
    type Conn = ClusterConnection;
    type Node = (String, u16);

    fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Connecting to the seeds, then learning the slots.
    fn connect_bound(&self) -> Duration {
        self.config.connect_timeout + self.config.socket_timeout
    }

    async fn connect(&self) -> RedisResult<ClusterConnection> {
        self.client.get_async_connection().await
    }

    async fn primaries(&self, conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
        primaries_of(cluster_slots().query_async(conn).await?)
    }

    async fn query_node(
        &self,
        conn: &mut ClusterConnection,
        (host, port): &(String, u16),
        cmd: Cmd,
    ) -> RedisResult<Value> {
        conn.route_command(cmd, to_node(host, *port)).await
    }
}

/// The state of one asynchronous storage, shared with its running calls.
struct Shared<T: AsyncTopology> {
    topology: T,
    layout: Layout,
    /// The connection calls use now, with its generation.
    current: Mutex<Option<(u64, T::Conn)>>,
    /// Held while connecting, so that one attempt runs at a time.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

impl<T: AsyncTopology> Shared<T> {
    fn current(&self) -> Option<(u64, T::Conn)> {
        self.current.lock().clone()
    }

    /// The current connection, or a new one.
    async fn connection(&self) -> RedisResult<(u64, T::Conn)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let bound = self.topology.connect_bound();
        let deadline = Instant::now() + bound;
        let _gate = timeout_at(deadline, self.connecting.lock())
            .await
            .map_err(|_| timed_out("waiting for a connection", bound))?;
        // Another call may have connected while this one waited.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let conn = timeout_at(deadline, self.topology.connect())
            .await
            .unwrap_or_else(|_| Err(timed_out("connecting", bound)))?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.lock() = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    /// Drops connection `generation` if it is still the current one.
    fn invalidate(&self, generation: u64) {
        let stale = {
            let mut current = self.current.lock();
            match &*current {
                Some((g, _)) if *g == generation => current.take(),
                _ => None,
            }
        };
        // Closed outside the lock.
        drop(stale);
    }

    /// Awaits one reply on connection `generation` within the socket
    /// timeout; a connection-level error invalidates the connection.
    async fn io<R>(
        &self,
        generation: u64,
        reply: impl Future<Output = RedisResult<R>>,
    ) -> RedisResult<R> {
        let result = bounded(
            "waiting for a reply",
            self.topology.config().socket_timeout,
            reply,
        )
        .await;
        if let Err(err) = &result {
            if is_connection_error(err) {
                self.invalidate(generation);
            }
        }
        result
    }

    async fn perform<R, F: Reply<R>>(&self, step: Step<R, F>) -> Result<R> {
        match step {
            Step::Done(answer) => Ok(answer),
            Step::Call(call, reply) => {
                let error = |e| self.layout.error(e);
                let (generation, mut conn) = self.connection().await.map_err(error)?;
                let value = self
                    .io(generation, call.query_async(&mut conn))
                    .await
                    .map_err(error)?;
                reply(value)
            }
        }
    }

    async fn check(&self) -> Result<()> {
        let error = |e| self.layout.error(e);
        let (generation, mut conn) = self.connection().await.map_err(error)?;
        self.io(generation, ping().query_async::<()>(&mut conn))
            .await
            .map_err(error)
    }

    /// Deletes every key under the prefix, on every primary, with `SCAN`.
    async fn reset(&self) -> Result<Option<u64>> {
        let error = |e| self.layout.error(e);
        let pattern = self.layout.reset_pattern();
        let (generation, mut conn) = self.connection().await.map_err(error)?;
        let nodes = self
            .io(generation, self.topology.primaries(&mut conn))
            .await
            .map_err(error)?;
        let mut deleted = 0u64;
        for node in nodes {
            let mut cursor = 0u64;
            loop {
                let scan = scan_cmd(cursor, &pattern);
                let reply = self
                    .io(generation, self.topology.query_node(&mut conn, &node, scan))
                    .await
                    .map_err(error)?;
                let (next, keys) = scan_reply(reply).map_err(error)?;
                for del in del_cmds(&keys) {
                    deleted += self
                        .io(generation, del.query_async::<u64>(&mut conn))
                        .await
                        .map_err(error)?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(Some(deleted))
    }

    async fn primaries(&self) -> Result<Vec<T::Node>> {
        let error = |e| self.layout.error(e);
        let (generation, mut conn) = self.connection().await.map_err(error)?;
        self.io(generation, self.topology.primaries(&mut conn))
            .await
            .map_err(error)
    }
}

/// A call running on the crate's runtime, cancelled when dropped.
struct Task<R>(tokio::task::JoinHandle<R>);

impl<R> Drop for Task<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<R> Future for Task<R> {
    type Output = std::result::Result<R, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs `work` on the crate's runtime (see [`AsyncRedisStorage`]) when first polled.
fn on_runtime<R: Send + 'static>(
    backend: &'static str,
    work: impl Future<Output = Result<R>> + Send + 'static,
) -> BoxFuture<'static, Result<R>> {
    Box::pin(async move {
        let task = Task(crate::rt::runtime()?.spawn(work));
        task.await
            .map_err(|e| Error::storage_msg(backend, format!("the call did not complete: {e}")))?
    })
}

/// The operations of an asynchronous storage over topology `T`.
struct AsyncOps<T: AsyncTopology> {
    shared: Arc<Shared<T>>,
}

impl<T: AsyncTopology> AsyncOps<T> {
    fn new(topology: T, backend: &'static str) -> Self {
        let layout = Layout::new(topology.config(), backend);
        AsyncOps {
            shared: Arc::new(Shared {
                topology,
                layout,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
            }),
        }
    }

    fn layout(&self) -> &Layout {
        &self.shared.layout
    }

    fn topology(&self) -> &T {
        &self.shared.topology
    }

    /// Answers `step`: at once when it needs no server, else on the runtime.
    fn submit<R: Send + 'static, F: Reply<R>>(
        &self,
        step: Result<Step<R, F>>,
    ) -> BoxFuture<'static, Result<R>> {
        match step {
            Err(e) => Box::pin(std::future::ready(Err(e))),
            Ok(Step::Done(answer)) => Box::pin(std::future::ready(Ok(answer))),
            Ok(step) => {
                let shared = self.shared.clone();
                on_runtime(self.layout().backend(), async move {
                    shared.perform(step).await
                })
            }
        }
    }

    fn check(&self) -> BoxFuture<'static, bool> {
        let shared = self.shared.clone();
        let call = on_runtime(self.layout().backend(), async move { shared.check().await });
        Box::pin(async move { call.await.is_ok() })
    }

    fn reset(&self) -> BoxFuture<'static, Result<Option<u64>>> {
        let shared = self.shared.clone();
        on_runtime(self.layout().backend(), async move { shared.reset().await })
    }

    fn primaries(&self) -> BoxFuture<'static, Result<Vec<T::Node>>>
    where
        T::Node: 'static,
    {
        let shared = self.shared.clone();
        on_runtime(
            self.layout().backend(),
            async move { shared.primaries().await },
        )
    }
}

/// Implements [`AsyncStorage`], [`AsyncMovingWindowSupport`] and
/// [`AsyncSlidingWindowCounterSupport`] for a type with an
/// `ops: AsyncOps<_>` field.
macro_rules! impl_async_storage_traits {
    ($ty:ty) => {
        impl AsyncStorage for $ty {
            fn incr<'a>(
                &'a self,
                key: &'a str,
                expiry: u64,
                elastic_expiry: bool,
                amount: u64,
            ) -> BoxFuture<'a, Result<u64>> {
                self.ops
                    .submit(self.ops.layout().incr(key, expiry, elastic_expiry, amount))
            }

            fn incr_within_and_window<'a>(
                &'a self,
                key: &'a str,
                expiry: u64,
                elastic_expiry: bool,
                amount: u64,
                limit: u64,
            ) -> BoxFuture<'a, Result<(bool, crate::storage::FixedWindow)>> {
                let step = self
                    .ops
                    .layout()
                    .incr_and_window(key, expiry, elastic_expiry, amount);
                let window = self.ops.submit(step);
                Box::pin(async move {
                    let window = window.await?;
                    Ok((window.count <= limit, window))
                })
            }

            fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64>> {
                self.ops.submit(self.ops.layout().get(key))
            }

            fn get_expiry<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<f64>> {
                self.ops.submit(self.ops.layout().get_expiry(key))
            }

            fn check(&self) -> BoxFuture<'_, bool> {
                self.ops.check()
            }

            fn reset(&self) -> BoxFuture<'_, Result<Option<u64>>> {
                self.ops.reset()
            }

            fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
                self.ops.submit(self.ops.layout().clear(key))
            }

            fn moving_window(&self) -> Option<&dyn AsyncMovingWindowSupport> {
                Some(self)
            }

            fn sliding_window(&self) -> Option<&dyn AsyncSlidingWindowCounterSupport> {
                Some(self)
            }
        }

        impl AsyncMovingWindowSupport for $ty {
            fn acquire_entry<'a>(
                &'a self,
                key: &'a str,
                limit: u64,
                expiry: u64,
                amount: u64,
            ) -> BoxFuture<'a, Result<bool>> {
                self.ops
                    .submit(self.ops.layout().acquire_entry(key, limit, expiry, amount))
            }

            fn get_moving_window<'a>(
                &'a self,
                key: &'a str,
                limit: u64,
                expiry: u64,
            ) -> BoxFuture<'a, Result<crate::storage::MovingWindow>> {
                self.ops
                    .submit(self.ops.layout().get_moving_window(key, limit, expiry))
            }

            fn acquire_entry_and_window<'a>(
                &'a self,
                key: &'a str,
                limit: u64,
                expiry: u64,
                amount: u64,
            ) -> BoxFuture<'a, Result<(bool, crate::storage::MovingWindow)>> {
                self.ops.submit(
                    self.ops
                        .layout()
                        .acquire_entry_and_window(key, limit, expiry, amount),
                )
            }
        }

        impl AsyncSlidingWindowCounterSupport for $ty {
            fn get_sliding_window<'a>(
                &'a self,
                key: &'a str,
                expiry: u64,
            ) -> BoxFuture<'a, Result<crate::storage::SlidingWindow>> {
                self.ops
                    .submit(self.ops.layout().get_sliding_window(key, expiry))
            }

            fn acquire_sliding_window_entry<'a>(
                &'a self,
                key: &'a str,
                limit: u64,
                expiry: u64,
                amount: u64,
            ) -> BoxFuture<'a, Result<bool>> {
                self.ops.submit(
                    self.ops
                        .layout()
                        .acquire_sliding_window_entry(key, limit, expiry, amount),
                )
            }

            fn acquire_sliding_window_entry_and_window<'a>(
                &'a self,
                key: &'a str,
                limit: u64,
                expiry: u64,
                amount: u64,
            ) -> BoxFuture<'a, Result<(bool, crate::storage::SlidingWindow)>> {
                self.ops.submit(
                    self.ops
                        .layout()
                        .acquire_sliding_window_entry_and_window(key, limit, expiry, amount),
                )
            }

            fn clear_sliding_window<'a>(
                &'a self,
                key: &'a str,
                _expiry: u64,
            ) -> BoxFuture<'a, Result<()>> {
                self.ops.submit(self.ops.layout().clear_sliding_window(key))
            }
        }
    };
}

/// Asynchronous rate-limit storage on one Redis (or Valkey) server: the
/// asynchronous twin of [`RedisStorage`](crate::RedisStorage), with the same
/// URIs (`redis://`, `rediss://`, `redis+unix://`, `valkey://`, `valkeys://`,
/// `valkey+unix://`, optionally prefixed with `async+`) and options.
///
/// All calls share one multiplexed connection (option `max_connections` is
/// accepted and has no effect).
///
/// # Runtime
///
/// The connections, the tasks that drive them and every call live on the
/// small runtime this crate owns (two `limitstore-io` threads, started on
/// first use). A call made from any runtime (a multi-threaded one, a
/// current-thread one, even one built without the time and I/O drivers) is
/// handed to that runtime, and the caller awaits its result; so a storage
/// can be shared between runtimes, and one runtime shutting down does not
/// break the connection others use. Dropping a call's future cancels it.
///
/// # Failures
///
/// Construction does not connect: the first call does (one connection
/// attempt at a time; concurrent calls wait for it). Connecting is bounded by
/// `socket_connect_timeout` (per step for Sentinel: asking a Sentinel,
/// connecting to the primary, checking its role) and every reply by
/// `socket_timeout`; past those, the call fails with an
/// [`ErrorKind::Storage`](crate::ErrorKind::Storage) error and
/// [`check`](AsyncStorage::check) answers false. A connection-level error
/// (I/O, timeout, closed connection, a primary demoted to replica) drops
/// the shared connection, and the next call connects afresh: that is how a
/// storage recovers from a server restart or follows a Sentinel failover.
///
/// # Example
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use limitstore::aio::AsyncStorage;
/// use limitstore::AsyncRedisStorage;
///
/// let storage = AsyncRedisStorage::new("redis://localhost:6379/0?key_prefix=myapp").unwrap();
/// assert_eq!(storage.incr("k", 60, false, 1).await.unwrap(), 1);
/// let mw = storage.moving_window().unwrap();
/// assert!(mw.acquire_entry("user:1", 10, 60, 1).await.unwrap());
/// # });
/// ```
pub struct AsyncRedisStorage {
    ops: AsyncOps<Standalone>,
    target: String,
}

impl AsyncRedisStorage {
    /// Builds a storage from a URI string (options from its query string);
    /// an `async+` prefix is allowed. Does not connect.
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options (the options win over
    /// the URI's query string and user info).
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (standalone, target) = Standalone::from_uri(uri, options)?;
        Ok(AsyncRedisStorage {
            ops: AsyncOps::new(standalone, "redis"),
            target,
        })
    }

    /// The key prefix (`LIMITS` unless option `key_prefix` says otherwise).
    pub fn key_prefix(&self) -> &str {
        self.ops.layout().prefix()
    }
}

impl std::fmt::Debug for AsyncRedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisStorage")
            .field("target", &self.target)
            .field("config", &self.ops.topology().config)
            .finish()
    }
}

impl_async_storage_traits!(AsyncRedisStorage);

/// Asynchronous rate-limit storage on a Redis (or Valkey) Cluster: the
/// asynchronous twin of [`RedisClusterStorage`](crate::RedisClusterStorage),
/// with the same URIs (`redis+cluster://`, `valkey+cluster://`, optionally
/// prefixed with `async+`) and options.
///
/// All calls share one Cluster connection of the `redis` crate, which keeps
/// a multiplexed connection per node and follows slot moves. It runs,
/// times out and reconnects as [`AsyncRedisStorage`] does.
pub struct AsyncRedisClusterStorage {
    ops: AsyncOps<Cluster>,
    target: String,
}

impl AsyncRedisClusterStorage {
    /// Builds a storage from a URI string (options from its query string);
    /// an `async+` prefix is allowed. Does not connect.
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (cluster, target) = Cluster::from_uri(uri, options)?;
        Ok(AsyncRedisClusterStorage {
            ops: AsyncOps::new(cluster, "redis cluster"),
            target,
        })
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        self.ops.layout().prefix()
    }

    /// The `host:port` of every primary, as the cluster reports them now.
    pub async fn primaries(&self) -> Result<Vec<(String, u16)>> {
        self.ops.primaries().await
    }
}

impl std::fmt::Debug for AsyncRedisClusterStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisClusterStorage")
            .field("seeds", &self.target)
            .field("config", &self.ops.topology().config)
            .finish()
    }
}

impl_async_storage_traits!(AsyncRedisClusterStorage);

/// Asynchronous rate-limit storage on the primary that Redis Sentinel names:
/// the asynchronous twin of [`RedisSentinelStorage`](crate::RedisSentinelStorage),
/// with the same URIs (`redis+sentinel://`, `valkey+sentinel://`, optionally
/// prefixed with `async+`) and options.
///
/// A new connection asks the Sentinels, in order, for the primary of the
/// service and checks with `ROLE` that it is one. After a failover the
/// connection to the old primary fails (closed, or `READONLY` once it is
/// back as a replica); it is dropped and the next call connects to the
/// primary the Sentinels name then. Otherwise it runs, times out and
/// reconnects as [`AsyncRedisStorage`] does.
pub struct AsyncRedisSentinelStorage {
    ops: AsyncOps<Sentinel>,
    target: String,
}

impl AsyncRedisSentinelStorage {
    /// Builds a storage from a URI string (options from its query string);
    /// an `async+` prefix is allowed. Does not connect.
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (sentinel, target) = Sentinel::from_uri(uri, options)?;
        Ok(AsyncRedisSentinelStorage {
            ops: AsyncOps::new(sentinel, "redis sentinel"),
            target,
        })
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        self.ops.layout().prefix()
    }

    /// The service name of the monitored primary.
    pub fn service_name(&self) -> &str {
        &self.ops.topology().service_name
    }
}

impl std::fmt::Debug for AsyncRedisSentinelStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisSentinelStorage")
            .field("sentinels", &self.target)
            .field("config", &self.ops.topology().config)
            .finish()
    }
}

impl_async_storage_traits!(AsyncRedisSentinelStorage);
