//! [`MemoryRemote`]: an in-process [`SyncTarget`], with injectable latency
//! and failures.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::target::{check_budgets, share_rule, Budget, Report, Share, SyncTarget};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// The slots of one `(key, window)`.
#[derive(Debug, Default)]
struct Slots {
    /// Unix time after which the slots are dropped: one window after the
    /// window ended.
    expires_at: f64,
    /// Per node: the largest cumulative total it reported.
    nodes: HashMap<String, u64>,
    /// The sum over `nodes`.
    sum: u64,
    /// Per node under budget split: the largest claim it was granted.
    claims: HashMap<String, u64>,
}

impl Slots {
    /// Over the nodes other than `node`: the sum of `max(total, claim)`.
    /// (A node with a claim has a slot: budget reports always create one.)
    fn others(&self, node: &str) -> u64 {
        self.nodes
            .iter()
            .filter(|(n, _)| n.as_str() != node)
            .map(|(n, &total)| total.max(self.claims.get(n).copied().unwrap_or(0)))
            .fold(0, u64::saturating_add)
    }
}

#[derive(Debug, Default)]
struct Table {
    windows: HashMap<(String, u64), Slots>,
    next_purge: f64,
    /// See [`SyncTarget::incarnation`].
    incarnation: Option<String>,
}

/// An embedded remote for write-behind nodes in one process: the reference
/// [`SyncTarget`], used by tests and by `tune`.
///
/// Besides the slots it can simulate a network: [`with_latency`](Self::with_latency)
/// adds a delay to every call, and [`fail_next`](Self::fail_next),
/// [`fail_next_after_apply`](Self::fail_next_after_apply) and
/// [`set_down`](Self::set_down) inject failures. It counts its calls and the
/// reports it received.
///
/// ```
/// use std::time::Duration;
/// use limitstore::write_behind::{MemoryRemote, Report, SyncTarget};
/// let remote = MemoryRemote::new().with_latency(Duration::from_micros(100));
/// let report = Report { key: "k", window: 1, expiry: 1, node: "a", total: 4 };
/// // The write is applied, but the caller sees an error (a lost reply).
/// remote.fail_next_after_apply(1);
/// assert!(remote.sync(&[report]).is_err());
/// // Sending it again is harmless.
/// assert_eq!(remote.sync(&[report]).unwrap(), vec![4]);
/// assert_eq!(remote.total("k", 1), 4);
/// assert_eq!(remote.calls(), 2);
/// ```
pub struct MemoryRemote {
    table: Mutex<Table>,
    clock: Arc<dyn Clock>,
    latency: Duration,
    fail_before: AtomicU64,
    fail_after: AtomicU64,
    down: AtomicBool,
    calls: AtomicU64,
    reports: AtomicU64,
}

impl MemoryRemote {
    /// An empty remote on the real clock, without latency.
    pub fn new() -> Self {
        Self::with_clock(SystemClock::new())
    }

    /// An empty remote whose slot lifetimes follow `clock`.
    pub fn with_clock(clock: impl Clock) -> Self {
        MemoryRemote {
            table: Mutex::new(Table::default()),
            clock: Arc::new(clock),
            latency: Duration::ZERO,
            fail_before: AtomicU64::new(0),
            fail_after: AtomicU64::new(0),
            down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            reports: AtomicU64::new(0),
        }
    }

    /// The remote of a `memory://` URI (as a write-behind remote): no host;
    /// option `latency`, in seconds, injects a round-trip delay.
    pub(crate) fn from_uri(
        uri: &crate::storage::StorageUri,
        options: &crate::Options,
    ) -> crate::Result<Self> {
        if !uri.locations.is_empty() {
            return Err(crate::Error::configuration(
                "a memory remote takes no host: it lives in this process",
            ));
        }
        options.reject_unknown("write-behind memory remote", &["latency"])?;
        let latency = options.get_secs("latency")?.unwrap_or(Duration::ZERO);
        Ok(MemoryRemote::new().with_latency(latency))
    }

    /// Adds `latency` to every call (a simulated network round trip; the
    /// call sleeps without holding the table).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Makes the next `n` calls fail without applying anything (a refused
    /// connection).
    pub fn fail_next(&self, n: u64) {
        self.fail_before.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` calls apply their writes and then fail (the reply
    /// was lost).
    pub fn fail_next_after_apply(&self, n: u64) {
        self.fail_after.store(n, Ordering::SeqCst);
    }

    /// Loses every slot and the incarnation marker, as a server restarted
    /// without persistence (or flushed) does.
    pub fn forget(&self) {
        *self.table.lock() = Table::default();
    }

    /// While down, every call fails without applying anything and
    /// [`check`](SyncTarget::check) is false.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Calls received so far (each is one round trip), failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Reports received so far, in calls that reached the table.
    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Relaxed)
    }

    /// The global total of `(key, window)`: the sum over its node slots.
    pub fn total(&self, key: &str, window: u64) -> u64 {
        self.table
            .lock()
            .windows
            .get(&(key.to_owned(), window))
            .map_or(0, |s| s.sum)
    }

    /// The slot of `node` in `(key, window)`.
    pub fn slot(&self, key: &str, window: u64, node: &str) -> u64 {
        self.table
            .lock()
            .windows
            .get(&(key.to_owned(), window))
            .and_then(|s| s.nodes.get(node).copied())
            .unwrap_or(0)
    }

    fn take_one(counter: &AtomicU64) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn unreachable(&self) -> Error {
        Error::storage(
            "memory remote",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "remote unreachable"),
        )
    }

    fn round_trip(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        if self.down.load(Ordering::SeqCst) || Self::take_one(&self.fail_before) {
            return Err(self.unreachable());
        }
        Ok(())
    }
}

impl Default for MemoryRemote {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRemote")
            .field("windows", &self.table.lock().windows.len())
            .field("latency", &self.latency)
            .field("calls", &self.calls())
            .finish()
    }
}

impl MemoryRemote {
    /// Applies `reports` under one lock; `grant` runs on each report's
    /// slots after the report was applied. Unless `create`, a read (total
    /// 0) creates no slots and is answered from an empty one when absent.
    fn apply<T>(
        &self,
        reports: &[Report<'_>],
        create: bool,
        mut grant: impl FnMut(usize, &Report<'_>, &mut Slots) -> T,
    ) -> Result<Vec<T>> {
        self.round_trip()?;
        self.reports
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        let now = self.clock.unix_now();
        let mut table = self.table.lock();
        if now >= table.next_purge {
            table.windows.retain(|_, s| s.expires_at > now);
            table.next_purge = now + 1.0;
        }
        let mut out = Vec::with_capacity(reports.len());
        for (i, r) in reports.iter().enumerate() {
            if r.total == 0 && !create {
                // A read: answer without creating anything.
                let id = (r.key.to_owned(), r.window);
                match table.windows.get_mut(&id) {
                    Some(slots) => out.push(grant(i, r, slots)),
                    None => out.push(grant(i, r, &mut Slots::default())),
                }
                continue;
            }
            let slots = table
                .windows
                .entry((r.key.to_owned(), r.window))
                .or_default();
            let end = (r.window.saturating_add(2)).saturating_mul(r.expiry) as f64;
            slots.expires_at = slots.expires_at.max(end);
            let slot = slots.nodes.entry(r.node.to_owned()).or_insert(0);
            if r.total > *slot {
                slots.sum += r.total - *slot;
                *slot = r.total;
            }
            out.push(grant(i, r, slots));
        }
        drop(table);
        if Self::take_one(&self.fail_after) {
            return Err(self.unreachable());
        }
        Ok(out)
    }
}

impl SyncTarget for MemoryRemote {
    fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
        self.apply(reports, false, |_, _, slots| slots.sum)
    }

    fn shares_budgets(&self) -> bool {
        true
    }

    /// Applies [`share_rule`] under the table's lock; every report, a
    /// total of 0 too, stores the claim it is granted.
    fn sync_shares(&self, reports: &[Report<'_>], budgets: &[Budget]) -> Result<Vec<Share>> {
        check_budgets(reports, budgets)?;
        self.apply(reports, true, |i, r, slots| {
            let b = budgets[i];
            let used = slots.nodes.get(r.node).copied().unwrap_or(0);
            let stored = slots.claims.get(r.node).copied().unwrap_or(0);
            // The report created this node's slot: it is among them.
            let nodes = slots.nodes.len() as u64;
            let allowed = share_rule(b, used, slots.others(r.node), nodes, stored);
            if allowed > stored {
                slots.claims.insert(r.node.to_owned(), allowed);
            }
            Share {
                global: slots.sum,
                nodes,
                allowed,
            }
        })
    }

    fn check(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }

    fn clear(&self, key: &str) -> Result<()> {
        self.round_trip()?;
        self.table.lock().windows.retain(|(k, _), _| k != key);
        Ok(())
    }

    /// Fails while the remote is down; unlike the other calls it is not
    /// counted in [`calls`](Self::calls) and takes no injected failure.
    fn incarnation(&self, candidate: &str) -> Result<Option<String>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(self.unreachable());
        }
        let mut table = self.table.lock();
        let marker = table
            .incarnation
            .get_or_insert_with(|| candidate.to_owned());
        Ok(Some(marker.clone()))
    }

    fn reset(&self) -> Result<Option<u64>> {
        self.round_trip()?;
        let mut table = self.table.lock();
        let mut keys: Vec<&str> = table.windows.keys().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let n = keys.len() as u64;
        table.windows.clear();
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn rep<'a>(key: &'a str, window: u64, node: &'a str, total: u64) -> Report<'a> {
        Report {
            key,
            window,
            expiry: 10,
            node,
            total,
        }
    }

    #[test]
    fn slots_keep_the_largest_total_and_sum_per_window() {
        let remote = MemoryRemote::with_clock(FakeClock::new());
        assert_eq!(remote.sync(&[rep("k", 1, "a", 0)]).unwrap(), vec![0]);
        assert!(
            remote.table.lock().windows.is_empty(),
            "a read creates nothing"
        );
        let got = remote
            .sync(&[
                rep("k", 1, "a", 2),
                rep("k", 1, "b", 5),
                rep("k", 2, "a", 1),
            ])
            .unwrap();
        assert_eq!(got, vec![2, 7, 1]);
        assert_eq!(remote.sync(&[rep("k", 1, "b", 4)]).unwrap(), vec![7]);
        assert_eq!(remote.slot("k", 1, "b"), 5);
        assert_eq!(remote.reports(), 5);
        remote.clear("k").unwrap();
        assert_eq!(remote.total("k", 1), 0);
    }

    #[test]
    fn failures_before_and_after_apply() {
        let remote = MemoryRemote::with_clock(FakeClock::new());
        remote.fail_next(2);
        assert!(remote.sync(&[rep("k", 1, "a", 1)]).is_err());
        assert!(remote.sync(&[rep("k", 1, "a", 1)]).is_err());
        assert_eq!(remote.total("k", 1), 0);
        remote.fail_next_after_apply(1);
        let e = remote.sync(&[rep("k", 1, "a", 3)]).unwrap_err();
        assert!(e.is_storage());
        assert_eq!(remote.total("k", 1), 3);
        remote.set_down(true);
        assert!(!remote.check());
        assert!(remote.reset().is_err());
        remote.set_down(false);
        assert_eq!(remote.reset().unwrap(), Some(1));
        assert_eq!(remote.calls(), 5);
    }

    #[test]
    fn slots_expire_a_window_after_their_window() {
        // Window 170_000_000 of 10 s covers [1.7e9, 1.7e9 + 10).
        let clock = FakeClock::new();
        let remote = MemoryRemote::with_clock(clock.clone());
        let w = 170_000_000;
        remote.sync(&[rep("k", w, "a", 1)]).unwrap();
        clock.advance(Duration::from_secs(19));
        remote.sync(&[rep("other", w + 1, "a", 1)]).unwrap();
        assert_eq!(remote.total("k", w), 1);
        clock.advance(Duration::from_secs(2));
        remote.sync(&[rep("other", w + 2, "a", 1)]).unwrap();
        assert_eq!(remote.total("k", w), 0);
    }
}
