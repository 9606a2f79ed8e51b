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
//! **Budget split** ([`WriteBehindBuilder::budget_split`], URI option
//! `budget_split=true`) makes shared quotas as exact as write-through at
//! write-behind's cost. Each report also asks the remote for a *claim*: the
//! cumulative total this node may reach in the window. The remote grants it
//! by [`share_rule`] — a share of what the other nodes' claims and counts
//! leave, `⌊left / (n + 1)⌋` for the n nodes in the window (the `+ 1` for one
//! not seen yet), capped at twice what the node asked for in its last
//! period, at least a refused hit's amount when that fits — atomically with
//! the report (one script on Redis), and claims only grow. Between syncs the
//! node admits a hit only while it fits both the estimated count and its
//! claim, so the claims of a window never sum past its limit and neither do
//! the admissions. What that costs and how it is kept cheap:
//! - A hit refused for want of share is not counted (a plain write-behind
//!   node counts refused fixed-window hits, as `limits` does) and asks for an
//!   **early sync** of its key, as does the first hit of a window it holds no claim for and, with
//!   [`max_unsynced`](WriteBehindBuilder::max_unsynced), a window holding that
//!   many unsynced hits. Early syncs run between the regular ones, at most one
//!   pass per [`early_sync_gap`](WriteBehindBuilder::early_sync_gap) (default:
//!   the interval), each key in at most one, so a key under attack costs at
//!   most one more round trip per gap. [`Stats::early_syncs`] and
//!   [`Stats::share_refusals`] count them.
//! - A fixed window's next window is claimed ahead, with the reports of the
//!   current one, so a busy key's first hits in a new window are admitted from
//!   a claim. A window a node holds no claim for (a key it did not sync in the
//!   previous window) opens with `⌊limit / (n + 1)⌋` for the n nodes last
//!   seen on the key (nothing before the node's first answer), claimed at its
//!   first sync: nodes opening one window at the same instant can pass the
//!   limit by what they admitted from opening shares before then. With an
//!   interval well below the window this does not happen in `tune`'s scenes;
//!   with an interval as long as the window it does (see the README).
//! - The sliding window counter claims the current window's part of the
//!   limit, `limit − ⌈previous × weight⌉` as of the hit (the weight only falls
//!   until the window ends). `previous` is this node's estimate of the
//!   previous window's total, up to one sync old: claims granted on a low
//!   estimate can pass the weighted limit by the weight of what other nodes
//!   added to the previous window after this node last synced it.
//! - Only remotes that [share budgets](SyncTarget::shares_budgets) can: the
//!   Redis family and [`MemoryRemote`]; building a budget-split node over
//!   another is a configuration error. Write-through (interval 0) ignores it.
//! - **Remote down:** within the grace period the node keeps to the claims it
//!   holds (and opening shares); past it, [`FailurePolicy::Open`] admits as a
//!   plain node (each node as if alone) and [`FailurePolicy::Closed`] refuses.
//!
//! **Remote down.** [`FailurePolicy::Open`] keeps answering locally;
//! [`FailurePolicy::Closed`] refuses hits once the remote has failed for
//! longer than a grace period. [`WriteBehindHandle::stats`](WriteBehind::stats)
//! tells pending keys, lag, syncs and errors. A node holds at most
//! [`max_entries`](WriteBehindBuilder::max_entries) keys, and a key a few
//! windows however long the outage: a window whose slots the remote has
//! dropped (they live until one window after the window ends) is dropped
//! a window later, delivered or not, since its hits can no longer count
//! towards any limit ([`Stats::forgotten_hits`] counts those not delivered).
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
//! `grace` (seconds), `max_entries`, `budget_split` (`true`/`false`),
//! `max_unsynced`, `early_sync_gap` (seconds) and `incarnation_marker`
//! (`true`/`false`); every other option goes to the remote
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

#[cfg(feature = "async")]
mod aio;
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
#[cfg(feature = "redis")]
pub(crate) use target::check_budgets;
pub use target::{share_rule, Budget, Report, Share, SyncTarget};
pub(crate) use uri::handle_from_uri;
pub use uri::SCHEME_PREFIX;
