//! The remote side of write-behind: [`SyncTarget`] and its [`Report`]s.

use std::fmt::Debug;

use crate::error::{Error, Result};

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

    /// Whether the target answers [`sync_shares`](Self::sync_shares): it
    /// keeps a claim per slot and applies [`share_rule`] atomically with
    /// each report. Nodes with budget split refuse a target that does not
    /// (`false`, the default).
    fn shares_budgets(&self) -> bool {
        false
    }

    /// [`sync`](Self::sync) under budget split: applies each report as
    /// `sync` does and, atomically with it, grants the node the claim
    /// [`share_rule`] gives for `budgets[i]`, storing it as the node's
    /// claim for the window (claims only grow and expire with the slots).
    ///
    /// The default refuses: see [`shares_budgets`](Self::shares_budgets).
    fn sync_shares(&self, reports: &[Report<'_>], budgets: &[Budget]) -> Result<Vec<Share>> {
        let _ = (reports, budgets);
        Err(Error::configuration(
            "this write-behind remote does not share budgets (budget split needs the Redis family or the embedded remote)",
        ))
    }
}

/// What a node asks for with a report under budget split: its share of
/// what is left of `limit` in the report's window.
///
/// See [`SyncTarget::sync_shares`] and [`share_rule`] for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Budget {
    /// The limit of the report's window (for a sliding window counter, the
    /// limit less the weighted count of the previous window).
    pub limit: u64,
    /// The largest single hit the node could not admit from its last share
    /// (0: none): the rule grants at least that much when it is left.
    pub want: u64,
    /// What the node expects to admit until its next sync (0: unknown): no
    /// more than that is claimed, so a quiet node leaves the rest to others.
    pub demand: u64,
    /// The nodes the node last saw sharing the key (0: none known): the
    /// share divides by at least this many plus one, so the first node to
    /// report in a window does not take half of it.
    pub nodes: u64,
}

/// The answer to one report under budget split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Share {
    /// The global total of the report's `(key, window)`, as
    /// [`SyncTarget::sync`] answers it.
    pub global: u64,
    /// The nodes with a slot in the window, the reporting one included.
    pub nodes: u64,
    /// The cumulative total this node may reach in the window before it
    /// asks again: its claim, which the other nodes' shares leave room for.
    pub allowed: u64,
}

/// The error a [`SyncTarget::sync_shares`] answers unless there is one
/// budget per report.
pub(crate) fn check_budgets(reports: &[Report<'_>], budgets: &[Budget]) -> Result<()> {
    if budgets.len() == reports.len() {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "sync_shares needs one budget per report",
        ))
    }
}

/// The budget-split rule: the claim (the cumulative total a node may reach)
/// that a node reporting `used` gets for `budget`, where `others` is the sum
/// over the other nodes' slots of `max(used, claim)`, `nodes` counts the
/// window's nodes with this one, and `stored` is this node's previous claim.
///
/// With `left = limit − others − used` (0 when negative) and
/// `n = max(nodes, budget.nodes)`, the node gets
/// `used + max(min(⌊left / (n + 1)⌋, demand), min(want, left))` (no
/// `demand` cap when it is 0), and never less than its previous claim. The
/// `+ 1` leaves a share for a node not seen yet, the `demand` cap leaves
/// what a quiet node will not use to the busy ones, and `want` lets a hit
/// larger than a share through when the window has room for it. Claims only
/// grow, and a target applies the rule atomically with the report (one
/// script, one lock), so the sum of all claims never passes `limit` unless
/// a claim was already past it: nodes that admit only within their claims
/// never pass the limit together.
///
/// ```
/// use limitstore::write_behind::{share_rule, Budget};
/// let budget = |want, demand| Budget { limit: 100, want, demand, nodes: 0 };
/// // Alone in a window of 100: half of what is left.
/// assert_eq!(share_rule(budget(0, 0), 0, 0, 1, 0), 50);
/// // Three nodes, 60 claimed by the others, 10 used here: 10 + 30 / 4.
/// assert_eq!(share_rule(budget(0, 0), 10, 60, 3, 0), 17);
/// // A node expecting 3 more hits claims 3.
/// assert_eq!(share_rule(budget(0, 3), 10, 60, 3, 0), 13);
/// // A hit of 20 fits what is left, so it is granted.
/// assert_eq!(share_rule(budget(20, 0), 10, 60, 3, 0), 30);
/// // A claim never shrinks.
/// assert_eq!(share_rule(budget(0, 0), 10, 60, 3, 25), 25);
/// ```
pub fn share_rule(budget: Budget, used: u64, others: u64, nodes: u64, stored: u64) -> u64 {
    let left = budget.limit.saturating_sub(others).saturating_sub(used);
    let n = nodes.max(budget.nodes).max(1);
    let mut share = left / (n + 1);
    if budget.demand > 0 {
        share = share.min(budget.demand);
    }
    let share = share.max(budget.want.min(left));
    used.saturating_add(share).max(stored)
}
