//! The remote side of write-behind: [`SyncTarget`] and its [`Report`]s.

use std::fmt::Debug;

use crate::error::Result;

/// One node's cumulative count for one window of one key, as the syncer sends it.
///
/// `total` is cumulative: every accepted hit of this node in this window,
/// not the delta since the last sync. A target keeps, per slot
/// `(key, window, node)`, the largest total it was sent, so sending the same
/// report twice (after a lost reply) changes nothing: no hit is lost and none
/// is counted twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Report<'a> {
    /// The rate-limit key.
    pub key: &'a str,
    /// The epoch-aligned window index: `floor(unix_seconds / expiry)`.
    pub window: u64,
    /// The window length in seconds.
    pub expiry: u64,
    /// The reporting node's id.
    pub node: &'a str,
    /// This node's cumulative accepted hits for `(key, window)`.
    pub total: u64,
}

/// A remote store that write-behind nodes reconcile through.
///
/// Implementations store, per slot `(key, window, node)`, `max(stored,
/// total)` until one window after the window ends, and answer each report with
/// the global total of `(key, window)`: the sum over all nodes' slots after
/// the update. Each call to [`sync`](SyncTarget::sync) is one round trip
/// (one script, pipeline or transaction).
///
/// Hits delivered after their window's slots expired (an outage longer than
/// a window) are no longer stored: they can no longer affect any limit.
///
/// ```
/// use limitstore::write_behind::{MemoryRemote, Report, SyncTarget};
/// let remote = MemoryRemote::new();
/// let r = |node, total| Report { key: "k", window: 7, expiry: 60, node, total };
/// assert_eq!(remote.sync(&[r("a", 3)]).unwrap(), vec![3]);
/// assert_eq!(remote.sync(&[r("b", 2)]).unwrap(), vec![5]);
/// // A repeated or stale report changes nothing.
/// assert_eq!(remote.sync(&[r("a", 3), r("a", 1)]).unwrap(), vec![5, 5]);
/// ```
pub trait SyncTarget: Send + Sync + Debug {
    /// Applies `reports` in order and returns, for each, the global total of
    /// its `(key, window)` right after it was applied.
    fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>>;

    /// Whether the remote is reachable.
    fn check(&self) -> bool;

    /// Removes every window and slot of `key`.
    fn clear(&self, key: &str) -> Result<()>;

    /// Removes everything; returns how many keys were removed, where known.
    fn reset(&self) -> Result<Option<u64>>;

    /// A marker of the remote's data: created with `candidate` when absent,
    /// answered as stored otherwise, so every node sees the same marker for
    /// as long as the remote keeps its data, and a different one once it lost
    /// it (a restart without persistence, a flush). A node that sees the
    /// marker change re-sends its totals for every live window.
    ///
    /// `None`: the target cannot tell (the default).
    fn incarnation(&self, candidate: &str) -> Result<Option<String>> {
        let _ = candidate;
        Ok(None)
    }
}
