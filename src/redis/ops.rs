//! The storage operations, written once for every Redis topology.
//!
//! Key layout (that of Python `limits`): a fixed-window counter or a moving
//! window lives at `{prefix}:{key}`; a sliding window counter at
//! `{prefix}:{{key}}` (current) and `{prefix}:{{key}}/-1` (previous), the
//! braces making both one Cluster hash slot.

use redis::{cmd, Cmd, RedisResult, Value};

use super::config::RedisConfig;
use super::pool::{Connector, Pool};
use super::scripts;
use crate::error::{Error, Result};
use crate::storage::{
    validate_acquire, validate_amount, validate_expiry, validate_key, validate_limit, MovingWindow,
    SlidingWindow, MAX_AMOUNT, MAX_MOVING_WINDOW_LIMIT,
};

/// Keys deleted per `DEL` by [`Ops::reset`], and the `COUNT` hint of its `SCAN`.
const RESET_BATCH: usize = 1000;

/// Where the keys of a deployment live: one server, or the primaries of a Cluster.
pub(crate) trait Topology: Connector {
    /// One primary.
    type Node;

    /// Every primary that holds keys.
    fn primaries(&self, conn: &mut Self::Conn) -> RedisResult<Vec<Self::Node>>;

    /// Runs `cmd` on `node`.
    fn query_node(&self, conn: &mut Self::Conn, node: &Self::Node, cmd: &Cmd)
        -> RedisResult<Value>;
}

/// A topology with one primary on a plain connection (standalone, Sentinel):
/// every key lives there, and commands go straight to the connection.
pub(crate) trait SinglePrimary: Connector<Conn = redis::Connection> {}

impl<T: SinglePrimary> Topology for T {
    type Node = ();

    fn primaries(&self, _conn: &mut redis::Connection) -> RedisResult<Vec<()>> {
        Ok(vec![()])
    }

    fn query_node(
        &self,
        conn: &mut redis::Connection,
        _node: &(),
        cmd: &Cmd,
    ) -> RedisResult<Value> {
        cmd.query(conn)
    }
}

/// Escapes `*?[]\` so that `text` matches itself in a `SCAN MATCH` pattern.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A pool of connections to one deployment plus the key layout.
pub(crate) struct Ops<T: Topology> {
    pool: Pool<T>,
    prefix: String,
    backend: &'static str,
}

impl<T: Topology> Ops<T> {
    pub(crate) fn new(topology: T, config: &RedisConfig, backend: &'static str) -> Self {
        Ops {
            pool: Pool::new(topology, config.max_connections, config.socket_timeout),
            prefix: config.key_prefix.clone(),
            backend,
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn topology(&self) -> &T {
        self.pool.connector()
    }

    pub(crate) fn idle_connections(&self) -> usize {
        self.pool.idle()
    }

    pub(crate) fn run<R>(&self, f: impl FnOnce(&mut T::Conn) -> RedisResult<R>) -> Result<R> {
        self.pool
            .run(f)
            .map_err(|e| Error::storage(self.backend, e))
    }

    /// `{prefix}:{key}`.
    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// The current and previous sliding-window keys.
    fn sliding_keys(&self, key: &str) -> (String, String) {
        let current = format!("{}:{{{key}}}", self.prefix);
        let previous = format!("{current}/-1");
        (current, previous)
    }

    pub(crate) fn incr(&self, key: &str, expiry: u64, elastic: bool, amount: u64) -> Result<u64> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        let key = self.key(key);
        self.run(|c| {
            scripts::INCR_EXPIRE
                .key(&key)
                .arg(expiry)
                .arg(amount)
                .arg(u8::from(elastic))
                .invoke(c)
        })
    }

    pub(crate) fn get(&self, key: &str) -> Result<u64> {
        validate_key(key)?;
        let key = self.key(key);
        let count: Option<u64> = self.run(|c| cmd("GET").arg(&key).query(c))?;
        Ok(count.unwrap_or(0))
    }

    pub(crate) fn get_expiry(&self, key: &str) -> Result<f64> {
        validate_key(key)?;
        let key = self.key(key);
        let ttl_ms: i64 = self.run(|c| cmd("PTTL").arg(&key).query(c))?;
        Ok(if ttl_ms < 0 {
            0.0
        } else {
            now() + ttl_ms as f64 / 1000.0
        })
    }

    pub(crate) fn check(&self) -> bool {
        self.run(|c| cmd("PING").query::<()>(c)).is_ok()
    }

    /// Deletes every key under the prefix, on every primary, with `SCAN`.
    pub(crate) fn reset(&self) -> Result<Option<u64>> {
        self.delete_matching(&format!("{}:*", glob_escape(&self.prefix)))
            .map(Some)
    }

    /// Deletes every key matching the `SCAN MATCH` `pattern`, on every
    /// primary; returns how many were deleted.
    pub(crate) fn delete_matching(&self, pattern: &str) -> Result<u64> {
        let topology = self.topology();
        self.run(|c| {
            let mut deleted = 0u64;
            for node in topology.primaries(c)? {
                let mut cursor = 0u64;
                loop {
                    let mut scan = cmd("SCAN");
                    scan.arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(RESET_BATCH);
                    let (next, keys): (u64, Vec<Vec<u8>>) =
                        redis::from_redis_value(topology.query_node(c, &node, &scan)?)?;
                    for batch in keys.chunks(RESET_BATCH) {
                        // Routed by key: a Cluster splits it per slot.
                        let n: u64 = cmd("DEL").arg(batch).query(c)?;
                        deleted += n;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            Ok(deleted)
        })
    }

    /// Deletes the key and the sliding-window keys of the same name.
    pub(crate) fn clear(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let (current, previous) = self.sliding_keys(key);
        let key = self.key(key);
        self.run(|c| cmd("DEL").arg(&key).arg(&current).arg(&previous).exec(c))
    }

    pub(crate) fn acquire_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire(key, limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)? {
            return Ok(false);
        }
        let key = self.key(key);
        let timestamp = format!("{:.6}", now());
        let admitted: u8 = self.run(|c| {
            scripts::ACQUIRE_MOVING_WINDOW
                .key(&key)
                .arg(&timestamp)
                .arg(limit)
                .arg(expiry)
                .arg(amount)
                .invoke(c)
        })?;
        Ok(admitted == 1)
    }

    pub(crate) fn get_moving_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
    ) -> Result<MovingWindow> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_limit(limit, MAX_MOVING_WINDOW_LIMIT)?;
        let key = self.key(key);
        let now = now();
        let start = format!("{:.6}", now - expiry as f64);
        let (count, oldest): (u64, String) = self.run(|c| {
            scripts::MOVING_WINDOW
                .key(&key)
                .arg(&start)
                .arg(limit)
                .invoke(c)
        })?;
        if count == 0 {
            return Ok(MovingWindow { start: now, count });
        }
        let start = oldest.parse::<f64>().map_err(|_| {
            Error::storage_msg(
                self.backend,
                format!("moving window entry `{oldest}` is not a timestamp"),
            )
        })?;
        Ok(MovingWindow { start, count })
    }

    pub(crate) fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        let (current, previous) = self.sliding_keys(key);
        let (previous_count, previous_ttl, current_count, current_ttl): (u64, u64, u64, u64) = self
            .run(|c| {
                scripts::SLIDING_WINDOW
                    .key(&current)
                    .key(&previous)
                    .arg(expiry)
                    .invoke(c)
            })?;
        Ok(SlidingWindow {
            previous_count,
            previous_expires_in: previous_ttl as f64 / 1000.0,
            current_count,
            current_expires_in: current_ttl as f64 / 1000.0,
        })
    }

    pub(crate) fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire(key, limit, MAX_AMOUNT, expiry, amount)? {
            return Ok(false);
        }
        let (current, previous) = self.sliding_keys(key);
        let admitted: u8 = self.run(|c| {
            scripts::ACQUIRE_SLIDING_WINDOW
                .key(&current)
                .key(&previous)
                .arg(limit)
                .arg(expiry)
                .arg(amount)
                .invoke(c)
        })?;
        Ok(admitted == 1)
    }

    pub(crate) fn clear_sliding_window(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let (current, previous) = self.sliding_keys(key);
        self.run(|c| cmd("DEL").arg(&current).arg(&previous).exec(c))
    }
}

/// Implements [`Storage`](crate::Storage), [`MovingWindowSupport`](crate::MovingWindowSupport)
/// and [`SlidingWindowCounterSupport`](crate::SlidingWindowCounterSupport)
/// for a type with an `ops: Ops<_>` field.
macro_rules! impl_storage_traits {
    ($ty:ty) => {
        impl $crate::storage::Storage for $ty {
            fn incr(
                &self,
                key: &str,
                expiry: u64,
                elastic_expiry: bool,
                amount: u64,
            ) -> $crate::Result<u64> {
                self.ops.incr(key, expiry, elastic_expiry, amount)
            }
            fn get(&self, key: &str) -> $crate::Result<u64> {
                self.ops.get(key)
            }
            fn get_expiry(&self, key: &str) -> $crate::Result<f64> {
                self.ops.get_expiry(key)
            }
            fn check(&self) -> bool {
                self.ops.check()
            }
            fn reset(&self) -> $crate::Result<Option<u64>> {
                self.ops.reset()
            }
            fn clear(&self, key: &str) -> $crate::Result<()> {
                self.ops.clear(key)
            }
            fn moving_window(&self) -> Option<&dyn $crate::storage::MovingWindowSupport> {
                Some(self)
            }
            fn sliding_window(&self) -> Option<&dyn $crate::storage::SlidingWindowCounterSupport> {
                Some(self)
            }
        }

        impl $crate::storage::MovingWindowSupport for $ty {
            fn acquire_entry(
                &self,
                key: &str,
                limit: u64,
                expiry: u64,
                amount: u64,
            ) -> $crate::Result<bool> {
                self.ops.acquire_entry(key, limit, expiry, amount)
            }
            fn get_moving_window(
                &self,
                key: &str,
                limit: u64,
                expiry: u64,
            ) -> $crate::Result<$crate::storage::MovingWindow> {
                self.ops.get_moving_window(key, limit, expiry)
            }
        }

        impl $crate::storage::SlidingWindowCounterSupport for $ty {
            fn get_sliding_window(
                &self,
                key: &str,
                expiry: u64,
            ) -> $crate::Result<$crate::storage::SlidingWindow> {
                self.ops.get_sliding_window(key, expiry)
            }
            fn acquire_sliding_window_entry(
                &self,
                key: &str,
                limit: u64,
                expiry: u64,
                amount: u64,
            ) -> $crate::Result<bool> {
                self.ops
                    .acquire_sliding_window_entry(key, limit, expiry, amount)
            }
            fn clear_sliding_window(&self, key: &str, _expiry: u64) -> $crate::Result<()> {
                self.ops.clear_sliding_window(key)
            }
        }
    };
}
pub(crate) use impl_storage_traits;

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_escape_protects_pattern_characters() {
        assert_eq!(glob_escape("LIMITS"), "LIMITS");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
