//! Redis and Valkey storages (cargo feature `redis`, on by default).
//!
//! | scheme | storage |
//! | --- | --- |
//! | `redis://`, `rediss://` (TLS), `redis+unix://`, `valkey://`, `valkeys://`, `valkey+unix://` | [`RedisStorage`] |
//! | `redis+cluster://`, `valkey+cluster://` | [`RedisClusterStorage`] |
//! | `redis+sentinel://`, `valkey+sentinel://` | [`RedisSentinelStorage`] |
//!
//! Every operation is one server-side Lua script (or one plain command), so
//! it is atomic on the server. Keys, values and the scripts' semantics are
//! those of Python `limits`: counters at `LIMITS:{key}`, moving windows as
//! lists of timestamps at the same key, sliding window counters at
//! `LIMITS:{{key}}` and `LIMITS:{{key}}/-1`. A Python service and a Rust
//! service pointed at the same server share their limits.
//!
//! The API is synchronous and uses blocking connections from a small pool,
//! never an async runtime of its own, so it may be called from any thread,
//! including from inside a tokio runtime (a call blocks that thread for one
//! round trip). Every wait is bounded by `socket_connect_timeout` and
//! `socket_timeout`; a server that is down or hangs yields an
//! [`ErrorKind::Storage`](crate::ErrorKind::Storage) error and
//! [`check`](crate::Storage::check) returns false.
//!
//! With feature `async`, `AsyncRedisStorage`, `AsyncRedisClusterStorage`
//! and `AsyncRedisSentinelStorage` are the native asynchronous twins, which
//! `aio::async_storage_from_string` builds for the same schemes with an
//! `async+` prefix (`async+redis://...`): same URIs, options, scripts and
//! keys, over multiplexed connections, with the same timeouts.
//!
//! Options (URI query or [`Options`](crate::Options)):
//!
//! | option | meaning | default |
//! | --- | --- | --- |
//! | `key_prefix` | keys are stored as `{key_prefix}:{key}` | `LIMITS` |
//! | `db` | database number (also the URI path `/1` of `redis://`, `rediss://`) | 0 |
//! | `username`, `password` | credentials (override the URI's user info) | from the URI |
//! | `socket_timeout` | seconds to wait for a reply, or for a free pooled connection | 5 |
//! | `socket_connect_timeout` | seconds to wait for a new connection | 2 |
//! | `ssl_ca_certs` | PEM file of the CA of the server certificate (`rediss`, `valkeys` only) | system roots |
//! | `max_connections` | most connections open at once (per Cluster node for a Cluster) | 32 |
//! | `service_name` | Sentinel only: the name of the monitored primary (or the URI path) | - |
//!
//! Unknown options and malformed values are configuration errors.
//!
//! ```no_run
//! use limitstore::{storage_from_string, Options};
//! let storage = storage_from_string(
//!     "redis://localhost:6379/0?socket_timeout=0.5",
//!     &Options::new().with("key_prefix", "myapp"),
//! )
//! .unwrap();
//! let mw = storage.moving_window().unwrap();
//! assert!(mw.acquire_entry("user:1", 10, 60, 1).unwrap());
//! ```

#[cfg(feature = "async")]
mod aio;
mod cluster;
mod config;
mod ops;
pub(crate) use ops::{glob_escape, Ops, Topology};
mod pool;
mod scripts;
mod sentinel;
mod standalone;
mod target;

#[cfg(feature = "async")]
pub use aio::{AsyncRedisClusterStorage, AsyncRedisSentinelStorage, AsyncRedisStorage};
pub use cluster::RedisClusterStorage;
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_MAX_CONNECTIONS, DEFAULT_SOCKET_TIMEOUT,
};
pub use sentinel::RedisSentinelStorage;
pub use standalone::RedisStorage;
