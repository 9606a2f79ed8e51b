//! The server-side scripts, one per atomic operation.
//!
//! They are sent with `EVALSHA`; [`redis::Script`] loads a script the first
//! time a server answers `NOSCRIPT` (after a restart, on a new Cluster node).
//! The state they keep is the state Python `limits` keeps, so both can share
//! counters on one server.

use std::sync::LazyLock;

use redis::Script;

/// `INCRBY` + `EXPIRE` on the first increment (or on every one when elastic).
pub(crate) static INCR_EXPIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/incr_expire.lua"),
        "return incr_expire()\n"
    ))
});

/// [`INCR_EXPIRE`], answering the new count and the counter's `PTTL`.
#[cfg(feature = "async")]
pub(crate) static INCR_EXPIRE_TTL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/incr_expire.lua"),
        "return {incr_expire(), redis.call('PTTL', KEYS[1])}\n"
    ))
});

/// Moving window admission: a list of timestamps, pushed in chunks.
pub(crate) static ACQUIRE_MOVING_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/acquire_moving_window.lua"),
        "return acquire()\n"
    ))
});

/// Moving window state: count and oldest entry inside the window.
/// ARGV[1]: start of the window (now - expiry), ARGV[2]: limit.
pub(crate) static MOVING_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/moving_window.lua"),
        "return {window(tonumber(ARGV[1]), tonumber(ARGV[2]))}\n"
    ))
});

/// [`ACQUIRE_MOVING_WINDOW`], answering `{acquired, count, oldest}`: the
/// window as it stands after the admission.
#[cfg(feature = "async")]
pub(crate) static ACQUIRE_MOVING_WINDOW_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/acquire_moving_window.lua"),
        include_str!("lua/moving_window.lua"),
        "local acquired = acquire()\n",
        "local count, oldest = window(tonumber(ARGV[1]) - tonumber(ARGV[3]), tonumber(ARGV[2]))\n",
        "return {acquired, count, oldest}\n"
    ))
});

/// Sliding window counter admission.
pub(crate) static ACQUIRE_SLIDING_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/sliding_window_roll.lua"),
        include_str!("lua/acquire_sliding_window.lua"),
        "return acquire()\n"
    ))
});

/// [`ACQUIRE_SLIDING_WINDOW`], answering `{acquired, previous count,
/// previous ttl ms, current count, current ttl ms}` after the admission.
#[cfg(feature = "async")]
pub(crate) static ACQUIRE_SLIDING_WINDOW_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/sliding_window_roll.lua"),
        include_str!("lua/acquire_sliding_window.lua"),
        "local acquired = acquire()\n",
        "return {acquired, state()}\n"
    ))
});

/// Sliding window counter state.
pub(crate) static SLIDING_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/sliding_window_roll.lua"),
        include_str!("lua/sliding_window.lua")
    ))
});
