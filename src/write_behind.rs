//! Write-behind: answer every hit locally, reconcile with a remote in the
//! background.
//!
//! A [`WriteBehind`] node counts hits in a local sharded table and answers
//! each one as `global count at the last sync + hits accepted here since`,
//! without remote I/O. A syncer thread (started by
//! [`WriteBehindBuilder::start`]) sends every `sync_interval` the keys with
//! new hits to a [`SyncTarget`], in batches of one round trip each, and
//! rebases the local counts on the global totals it answers with.
//! `sync_interval = 0` means write-through: each hit is reported before it
//! is answered, with the global count, which is exact across nodes.
//!
//! **Idempotent reports.** A node never sends deltas. It sends, per key and
//! epoch-aligned window, its *cumulative* total, and the remote keeps the
//! largest total per `(key, window, node)` slot and sums the slots. A report
//! re-sent after a lost reply therefore changes nothing: when the remote is
//! unreachable, hits stay pending (one entry per key, not per hit), are
//! retried with exponential back-off, and once the remote answers each
//! accepted hit is in the global total exactly once.
//!
//! **Accuracy.** Between syncs, each of N nodes admits against a global
//! count up to one interval old. With a remaining budget B at the last sync,
//! node rates r_i and total rate R, the excess per interval is
//! `max(0, Σ min(B, r_i·T) − B) ≤ min((N−1)·B, R·T − B)`; `limitstore tune`
//! measures it ([`tune`]).
//!
//! **Remote down.** [`FailurePolicy::Open`] keeps answering locally;
//! [`FailurePolicy::Closed`] refuses hits once the remote has failed for
//! longer than a grace period. [`WriteBehindHandle::stats`](WriteBehind::stats)
//! tells pending keys, lag, syncs and errors.
//!
//! **Remotes.** [`MemoryRemote`] (in-process, with injectable latency and
//! failures); with the `redis` feature, [`RedisStorage`](crate::RedisStorage),
//! [`RedisClusterStorage`](crate::RedisClusterStorage) and
//! [`RedisSentinelStorage`](crate::RedisSentinelStorage) (one Lua script per
//! batch, per hash slot on a Cluster; slots are the fields of the hash
//! `{key_prefix}:wb:{key}/{window}`); with the `etcd` feature,
//! `EtcdStorage` (a few transactions per batch; slots
//! are keys `{key_prefix}/wb/{key}/{window}/{node}` on a lease); with the
//! `memcached` feature, `MemcachedStorage`
//! (compare-and-swap per slot item and a membership item per window; exact
//! unless Memcached evicts live items, see
//! its `SyncTarget` implementation); with the `mongodb` feature,
//! `MongoDbStorage` (a `$max` upsert per report, run concurrently, and one
//! query for the totals; one document per key and window with a field per
//! node).
//!
//! **URIs.** `writebehind+<scheme>://...` wraps the remote the inner URI
//! names: `writebehind+memory://` a fresh [`MemoryRemote`],
//! `writebehind+redis://host:port` (and `rediss`, `redis+unix`, the `valkey`
//! aliases, `redis+cluster`, `redis+sentinel`) Redis,
//! `writebehind+etcd://host:port` etcd, `writebehind+memcached://host:port`
//! Memcached, `writebehind+mongodb://host:port` MongoDB. The node's options are `sync_interval`
//! (seconds), `node_id`, `batch_size`, `failure_policy` (`open`/`closed`),
//! `grace` (seconds) and `max_entries`; every other option goes to the remote
//! (`key_prefix`, `socket_timeout`, ... for Redis; `latency` for memory).
//!
//! ```
//! use limitstore::{storage_from_string, FixedWindowRateLimiter, Options, RateLimitItem, RateLimiter};
//! let storage = storage_from_string("writebehind+memory://?sync_interval=0.05&node_id=a", &Options::new()).unwrap();
//! let limiter = FixedWindowRateLimiter::new(storage);
//! let item = RateLimitItem::per_minute(2).unwrap();
//! assert!(limiter.hit(&item, &["user"], 1).unwrap());
//! assert!(limiter.hit(&item, &["user"], 1).unwrap());
//! assert!(!limiter.hit(&item, &["user"], 1).unwrap());
//! ```

mod histogram;
mod memory_remote;
mod state;
mod stats;
mod storage;
mod syncer;
mod target;
pub mod tune;
mod uri;

pub use memory_remote::MemoryRemote;

/// The most keys a write-behind node holds unless
/// [`WriteBehindBuilder::max_entries`] says otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 20;
pub use crate::backends::sync_target_from_string;
pub use stats::Stats;
pub use storage::WriteBehind;
pub use syncer::{FailurePolicy, WriteBehindBuilder, WriteBehindHandle};
pub use target::{share_rule, Budget, Report, Share, SyncTarget};
pub(crate) use uri::handle_from_uri;
pub use uri::SCHEME_PREFIX;
