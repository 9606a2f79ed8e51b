//! The server-side scripts, one per atomic operation.
//!
//! They are sent with `EVALSHA`; [`redis::Script`] loads a script the first
//! time a server answers `NOSCRIPT` (after a restart, on a new Cluster node).
//! The state they keep is the state Python `limits` keeps, so both can share
//! counters on one server.

use std::sync::LazyLock;

use redis::Script;

/// `INCRBY` + `EXPIRE` on the first increment (or on every one when elastic).
pub(crate) static INCR_EXPIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/incr_expire.lua")));

/// Moving window admission: a list of timestamps, pushed in chunks.
pub(crate) static ACQUIRE_MOVING_WINDOW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/acquire_moving_window.lua")));

/// Moving window state: count and oldest entry inside the window.
pub(crate) static MOVING_WINDOW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/moving_window.lua")));

/// Sliding window counter admission.
pub(crate) static ACQUIRE_SLIDING_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/sliding_window_roll.lua"),
        include_str!("lua/acquire_sliding_window.lua")
    ))
});

/// Sliding window counter state.
pub(crate) static SLIDING_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/sliding_window_roll.lua"),
        include_str!("lua/sliding_window.lua")
    ))
});
