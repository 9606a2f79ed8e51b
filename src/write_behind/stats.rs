//! [`Stats`]: counters of a write-behind node, for metrics.

use std::time::Duration;

/// A snapshot of a write-behind node's counters, from
/// [`WriteBehind::stats`](super::WriteBehind::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Keys with hits the remote has not acknowledged.
    pub pending_keys: u64,
    /// Keys held in the local table.
    pub keys: u64,
    /// Time since the last successful remote call; `None` before the first.
    pub sync_lag: Option<Duration>,
    /// How long the remote has been failing; `None` while it answers.
    pub failing_for: Option<Duration>,
    /// Sync passes that delivered every pending key.
    pub syncs: u64,
    /// Remote calls that failed.
    pub errors: u64,
    /// Remote calls made (each is one round trip carrying a batch).
    pub remote_calls: u64,
    /// Reports sent, one per key and window per call.
    pub reports_sent: u64,
    /// Wall time spent waiting for remote calls, in total.
    pub remote_time: Duration,
    /// Hits on new keys that were not recorded because every key the node
    /// may hold ([`max_entries`](super::WriteBehindBuilder::max_entries))
    /// had undelivered hits; the failure policy answered them.
    pub unrecorded_hits: u64,
    /// Hits this node accepted in windows whose slots the remote dropped
    /// before the hits could be delivered (an outage, or a sync interval,
    /// longer than a window and the one after it, in which a window's slots
    /// live): such a report could no longer count towards any limit, so
    /// the node drops the window instead of holding it until the remote
    /// answers.
    pub forgotten_hits: u64,
    /// Times the remote was found to have lost its data (its
    /// [incarnation marker](super::SyncTarget::incarnation) changed), each
    /// followed by a re-send of every window this node holds.
    pub remote_data_losses: u64,
    /// Early syncs made: passes over the keys whose share ran out, whose
    /// window opened, or that reached
    /// [`max_unsynced`](super::WriteBehindBuilder::max_unsynced).
    pub early_syncs: u64,
    /// Hits refused under budget split because this node's share was spent
    /// while the estimate still had room.
    pub share_refusals: u64,
}
