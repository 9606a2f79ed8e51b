//! The storage operations, written once for every Redis topology.
//!
//! Key layout (that of Python `limits`): a fixed-window counter or a moving
//! window lives at `{prefix}:{key}`; a sliding window counter at
//! `{prefix}:{{key}}` (current) and `{prefix}:{{key}}/-1` (previous), the
//! braces making both one Cluster hash slot.

use redis::{cmd, Cmd, ConnectionLike, RedisError, RedisResult, ScriptInvocation, Value};

use super::config::RedisConfig;
use super::pool::{Connector, Pool};
use super::scripts;
use crate::clock::wall_now;
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

/// The Unix time a key with `ttl_ms` left expires at (0: no expiry, absent).
fn expires_at(ttl_ms: i64) -> f64 {
    if ttl_ms < 0 {
        0.0
    } else {
        wall_now() + ttl_ms as f64 / 1000.0
    }
}

/// A moving window from a script's count and oldest entry; `now` is its
/// start when it is empty.
fn moving_window(
    backend: &'static str,
    now: f64,
    count: u64,
    oldest: &str,
) -> Result<MovingWindow> {
    if count == 0 {
        return Ok(MovingWindow { start: now, count });
    }
    let start = oldest.parse::<f64>().map_err(|_| {
        Error::storage_msg(
            backend,
            format!("moving window entry `{oldest}` is not a timestamp"),
        )
    })?;
    Ok(MovingWindow { start, count })
}

/// A sliding window from a script's `{previous count, previous ttl ms,
/// current count, current ttl ms}`.
fn sliding_window(
    (previous_count, previous_ttl, current_count, current_ttl): (u64, u64, u64, u64),
) -> SlidingWindow {
    SlidingWindow {
        previous_count,
        previous_expires_in: previous_ttl as f64 / 1000.0,
        current_count,
        current_expires_in: current_ttl as f64 / 1000.0,
    }
}

/// A call as the server sees it: one script or one plain command.
pub(crate) enum Call {
    Script(ScriptInvocation<'static>),
    Cmd(Cmd),
}

impl Call {
    /// Sends the call on a blocking connection.
    pub(crate) fn query(&self, conn: &mut dyn ConnectionLike) -> RedisResult<Value> {
        match self {
            Call::Script(script) => script.invoke(conn),
            Call::Cmd(cmd) => cmd.query(conn),
        }
    }

    /// Sends the call on an asynchronous connection.
    #[cfg(feature = "async")]
    pub(crate) async fn query_async(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<Value> {
        match self {
            Call::Script(script) => script.invoke_async(conn).await,
            Call::Cmd(cmd) => cmd.query_async(conn).await,
        }
    }
}

/// The command `name` with `args`.
fn command(name: &str, args: &[String]) -> Call {
    let mut command = cmd(name);
    command.arg(args);
    Call::Cmd(command)
}

/// Turns the reply of a [`Call`] into the result of a storage operation.
pub(crate) trait Reply<T>: FnOnce(Value) -> Result<T> + Send + 'static {}

impl<T, F: FnOnce(Value) -> Result<T> + Send + 'static> Reply<T> for F {}

/// One storage operation, validated and ready to send: either its answer is
/// known without the server (a refused acquire), or it is a call and the way
/// its reply becomes the answer. The blocking and the asynchronous storages
/// build their operations here and differ only in how they send the call.
pub(crate) enum Step<T, F: Reply<T>> {
    Done(T),
    Call(Call, F),
}

/// `PING`, the health check.
pub(crate) fn ping() -> Cmd {
    cmd("PING")
}

/// One `SCAN` step of [`Ops::reset`] over `pattern`.
pub(crate) fn scan_cmd(cursor: u64, pattern: &str) -> Cmd {
    let mut scan = cmd("SCAN");
    scan.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(RESET_BATCH);
    scan
}

/// The next cursor and the keys of a `SCAN` reply.
pub(crate) fn scan_reply(reply: Value) -> RedisResult<(u64, Vec<Vec<u8>>)> {
    Ok(redis::from_redis_value(reply)?)
}

/// `DEL` commands for `keys`, [`RESET_BATCH`] keys each (routed by key: a
/// Cluster splits each per slot).
pub(crate) fn del_cmds(keys: &[Vec<u8>]) -> impl Iterator<Item = Cmd> + '_ {
    keys.chunks(RESET_BATCH).map(|batch| {
        let mut del = cmd("DEL");
        del.arg(batch);
        del
    })
}

/// The key layout and the operations of the Redis storages, independent of
/// how calls reach the server.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    prefix: String,
    backend: &'static str,
}

/// Decodes a reply as `T`; a reply of another shape is a storage error.
fn decode<T: redis::FromRedisValue>(backend: &'static str, reply: Value) -> Result<T> {
    redis::from_redis_value(reply).map_err(|e| Error::storage(backend, RedisError::from(e)))
}

impl Layout {
    pub(crate) fn new(config: &RedisConfig, backend: &'static str) -> Self {
        Layout {
            prefix: config.key_prefix.clone(),
            backend,
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The backend name errors carry (`redis`, `redis cluster`, ...).
    #[cfg(feature = "async")]
    pub(crate) fn backend(&self) -> &'static str {
        self.backend
    }

    /// A client error as this storage reports it.
    pub(crate) fn error(&self, err: RedisError) -> Error {
        Error::storage(self.backend, err)
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

    /// The `SCAN MATCH` pattern of every key under the prefix.
    pub(crate) fn reset_pattern(&self) -> String {
        format!("{}:*", glob_escape(&self.prefix))
    }

    pub(crate) fn incr(
        &self,
        key: &str,
        expiry: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<Step<u64, impl Reply<u64>>> {
        let call = self.incr_call(&scripts::INCR_EXPIRE, key, expiry, elastic, amount)?;
        let backend = self.backend;
        Ok(Step::Call(call, move |reply| decode(backend, reply)))
    }

    /// `script` (one of the fixed-window increments) invoked on `key`, its
    /// arguments checked.
    fn incr_call(
        &self,
        script: &'static redis::Script,
        key: &str,
        expiry: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<Call> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        let mut call = script.prepare_invoke();
        call.key(self.key(key))
            .arg(expiry)
            .arg(amount)
            .arg(u8::from(elastic));
        Ok(Call::Script(call))
    }

    /// [`incr`](Self::incr), answering the counter as it stands after the
    /// increment, in one script.
    #[cfg(feature = "async")]
    pub(crate) fn incr_and_window(
        &self,
        key: &str,
        expiry: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<Step<crate::storage::FixedWindow, impl Reply<crate::storage::FixedWindow>>> {
        let call = self.incr_call(&scripts::INCR_EXPIRE_TTL, key, expiry, elastic, amount)?;
        let backend = self.backend;
        Ok(Step::Call(call, move |reply| {
            let (count, ttl_ms): (u64, i64) = decode(backend, reply)?;
            Ok(crate::storage::FixedWindow {
                count,
                expires_at: expires_at(ttl_ms),
            })
        }))
    }

    pub(crate) fn get(&self, key: &str) -> Result<Step<u64, impl Reply<u64>>> {
        validate_key(key)?;
        let backend = self.backend;
        Ok(Step::Call(command("GET", &[self.key(key)]), move |reply| {
            Ok(decode::<Option<u64>>(backend, reply)?.unwrap_or(0))
        }))
    }

    pub(crate) fn get_expiry(&self, key: &str) -> Result<Step<f64, impl Reply<f64>>> {
        validate_key(key)?;
        let backend = self.backend;
        Ok(Step::Call(
            command("PTTL", &[self.key(key)]),
            move |reply| Ok(expires_at(decode(backend, reply)?)),
        ))
    }

    /// Deletes the key and the sliding-window keys of the same name.
    pub(crate) fn clear(&self, key: &str) -> Result<Step<(), impl Reply<()>>> {
        validate_key(key)?;
        let (current, previous) = self.sliding_keys(key);
        let backend = self.backend;
        Ok(Step::Call(
            command("DEL", &[self.key(key), current, previous]),
            move |reply| decode(backend, reply),
        ))
    }

    pub(crate) fn acquire_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<Step<bool, impl Reply<bool>>> {
        let backend = self.backend;
        let reply = move |reply| Ok(decode::<u8>(backend, reply)? == 1);
        if !validate_acquire(key, limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)? {
            return Ok(Step::Done(false));
        }
        let timestamp = format!("{:.6}", wall_now());
        let mut call = scripts::ACQUIRE_MOVING_WINDOW.prepare_invoke();
        call.key(self.key(key))
            .arg(timestamp)
            .arg(limit)
            .arg(expiry)
            .arg(amount);
        Ok(Step::Call(Call::Script(call), reply))
    }

    pub(crate) fn get_moving_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
    ) -> Result<Step<MovingWindow, impl Reply<MovingWindow>>> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_limit(limit, MAX_MOVING_WINDOW_LIMIT)?;
        let now = wall_now();
        let start = format!("{:.6}", now - expiry as f64);
        let mut call = scripts::MOVING_WINDOW.prepare_invoke();
        call.key(self.key(key)).arg(start).arg(limit);
        let backend = self.backend;
        Ok(Step::Call(Call::Script(call), move |reply| {
            let (count, oldest): (u64, String) = decode(backend, reply)?;
            moving_window(backend, now, count, &oldest)
        }))
    }

    /// [`acquire_entry`](Self::acquire_entry), answering the window as it
    /// stands after the admission, in one script. An `amount` above `limit`
    /// is sent too: the script refuses it and still reads the window.
    #[cfg(feature = "async")]
    pub(crate) fn acquire_entry_and_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<Step<(bool, MovingWindow), impl Reply<(bool, MovingWindow)>>> {
        validate_acquire(key, limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)?;
        let now = wall_now();
        let mut call = scripts::ACQUIRE_MOVING_WINDOW_STATE.prepare_invoke();
        call.key(self.key(key))
            .arg(format!("{now:.6}"))
            .arg(limit)
            .arg(expiry)
            .arg(amount);
        let backend = self.backend;
        Ok(Step::Call(Call::Script(call), move |reply| {
            let (acquired, count, oldest): (u8, u64, String) = decode(backend, reply)?;
            Ok((acquired == 1, moving_window(backend, now, count, &oldest)?))
        }))
    }

    pub(crate) fn get_sliding_window(
        &self,
        key: &str,
        expiry: u64,
    ) -> Result<Step<SlidingWindow, impl Reply<SlidingWindow>>> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        let (current, previous) = self.sliding_keys(key);
        let mut call = scripts::SLIDING_WINDOW.prepare_invoke();
        call.key(current).key(previous).arg(expiry);
        let backend = self.backend;
        Ok(Step::Call(Call::Script(call), move |reply| {
            Ok(sliding_window(decode(backend, reply)?))
        }))
    }

    /// [`acquire_sliding_window_entry`](Self::acquire_sliding_window_entry),
    /// answering the counters as they stand after the admission, in one
    /// script. An `amount` above `limit` is sent too: the script refuses it
    /// and still reads the counters.
    #[cfg(feature = "async")]
    pub(crate) fn acquire_sliding_window_entry_and_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<Step<(bool, SlidingWindow), impl Reply<(bool, SlidingWindow)>>> {
        validate_acquire(key, limit, MAX_AMOUNT, expiry, amount)?;
        let (current, previous) = self.sliding_keys(key);
        let mut call = scripts::ACQUIRE_SLIDING_WINDOW_STATE.prepare_invoke();
        call.key(current)
            .key(previous)
            .arg(limit)
            .arg(expiry)
            .arg(amount);
        let backend = self.backend;
        Ok(Step::Call(Call::Script(call), move |reply| {
            let (acquired, previous_count, previous_ttl, current_count, current_ttl): (
                u8,
                u64,
                u64,
                u64,
                u64,
            ) = decode(backend, reply)?;
            let state = (previous_count, previous_ttl, current_count, current_ttl);
            Ok((acquired == 1, sliding_window(state)))
        }))
    }

    pub(crate) fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<Step<bool, impl Reply<bool>>> {
        let backend = self.backend;
        let reply = move |reply| Ok(decode::<u8>(backend, reply)? == 1);
        if !validate_acquire(key, limit, MAX_AMOUNT, expiry, amount)? {
            return Ok(Step::Done(false));
        }
        let (current, previous) = self.sliding_keys(key);
        let mut call = scripts::ACQUIRE_SLIDING_WINDOW.prepare_invoke();
        call.key(current)
            .key(previous)
            .arg(limit)
            .arg(expiry)
            .arg(amount);
        Ok(Step::Call(Call::Script(call), reply))
    }

    pub(crate) fn clear_sliding_window(&self, key: &str) -> Result<Step<(), impl Reply<()>>> {
        validate_key(key)?;
        let (current, previous) = self.sliding_keys(key);
        let backend = self.backend;
        Ok(Step::Call(
            command("DEL", &[current, previous]),
            move |reply| decode(backend, reply),
        ))
    }
}

/// A pool of connections to one deployment plus the key layout.
pub(crate) struct Ops<T: Topology> {
    pool: Pool<T>,
    layout: Layout,
}

impl<T: Topology> Ops<T> {
    pub(crate) fn new(topology: T, config: &RedisConfig, backend: &'static str) -> Self {
        Ops {
            pool: Pool::new(topology, config.max_connections, config.socket_timeout),
            layout: Layout::new(config, backend),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        self.layout.prefix()
    }

    pub(crate) fn topology(&self) -> &T {
        self.pool.connector()
    }

    pub(crate) fn idle_connections(&self) -> usize {
        self.pool.idle()
    }

    pub(crate) fn run<R>(&self, f: impl FnOnce(&mut T::Conn) -> RedisResult<R>) -> Result<R> {
        self.pool.run(f).map_err(|e| self.layout.error(e))
    }

    /// Sends `step`'s call (if any) on a pooled connection.
    fn perform<R, F: Reply<R>>(&self, step: Result<Step<R, F>>) -> Result<R> {
        match step? {
            Step::Done(answer) => Ok(answer),
            Step::Call(call, reply) => reply(self.run(|c| call.query(c))?),
        }
    }

    pub(crate) fn incr(&self, key: &str, expiry: u64, elastic: bool, amount: u64) -> Result<u64> {
        self.perform(self.layout.incr(key, expiry, elastic, amount))
    }

    pub(crate) fn get(&self, key: &str) -> Result<u64> {
        self.perform(self.layout.get(key))
    }

    pub(crate) fn get_expiry(&self, key: &str) -> Result<f64> {
        self.perform(self.layout.get_expiry(key))
    }

    pub(crate) fn check(&self) -> bool {
        self.run(|c| ping().query::<()>(c)).is_ok()
    }

    /// Deletes every key under the prefix, on every primary, with `SCAN`.
    pub(crate) fn reset(&self) -> Result<Option<u64>> {
        self.delete_matching(&self.layout.reset_pattern()).map(Some)
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
                    let scan = scan_cmd(cursor, pattern);
                    let (next, keys) = scan_reply(topology.query_node(c, &node, &scan)?)?;
                    for del in del_cmds(&keys) {
                        deleted += del.query::<u64>(c)?;
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

    pub(crate) fn clear(&self, key: &str) -> Result<()> {
        self.perform(self.layout.clear(key))
    }

    pub(crate) fn acquire_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        self.perform(self.layout.acquire_entry(key, limit, expiry, amount))
    }

    pub(crate) fn get_moving_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
    ) -> Result<MovingWindow> {
        self.perform(self.layout.get_moving_window(key, limit, expiry))
    }

    pub(crate) fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow> {
        self.perform(self.layout.get_sliding_window(key, expiry))
    }

    pub(crate) fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        self.perform(
            self.layout
                .acquire_sliding_window_entry(key, limit, expiry, amount),
        )
    }

    pub(crate) fn clear_sliding_window(&self, key: &str) -> Result<()> {
        self.perform(self.layout.clear_sliding_window(key))
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
