//! The background syncer: [`WriteBehindBuilder`], [`WriteBehindHandle`] and
//! [`FailurePolicy`].

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::storage::{Config, WriteBehind};
use super::target::SyncTarget;
use crate::clock::{Clock, DefaultClock};
use crate::error::{Error, Result};
use crate::storage::{LimitKey, SlidingWindowCounterSupport, Storage};

/// What the hit path does while the remote is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Keep answering from local state: each node admits as if it were
    /// alone (at worst N times the limit across N nodes) until the remote
    /// is back, and the pending hits are delivered then.
    #[default]
    Open,
    /// Once the remote has been failing for longer than the grace period
    /// ([`WriteBehindBuilder::grace`]), `incr` and sliding-window acquires
    /// return [`ErrorKind::Storage`](crate::ErrorKind::Storage) errors;
    /// reads keep answering locally. Pending hits are still delivered, and
    /// hits are accepted again after the next successful remote call (the
    /// syncer's retries back off up to [`WriteBehindBuilder::max_backoff`]).
    Closed,
}

impl std::str::FromStr for FailurePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(FailurePolicy::Open),
            "closed" => Ok(FailurePolicy::Closed),
            other => Err(Error::configuration(format!(
                "failure policy `{other}` is neither `open` nor `closed`"
            ))),
        }
    }
}

static NODE_SEQ: AtomicU64 = AtomicU64::new(0);

/// A node id unique to this process and instance: pid, start time, sequence.
fn default_node_id() -> String {
    let started = (crate::clock::wall_now() * 1e9) as u128;
    format!(
        "{}-{started:x}-{}",
        std::process::id(),
        NODE_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Configures and starts a [`WriteBehind`] node.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use limitstore::Storage;
/// use limitstore::write_behind::{FailurePolicy, MemoryRemote, WriteBehind};
///
/// let handle = WriteBehind::builder(Arc::new(MemoryRemote::new()))
///     .node_id("web-1")
///     .sync_interval(Duration::from_millis(50))
///     .batch_size(500)
///     .failure_policy(FailurePolicy::Closed)
///     .grace(Duration::from_secs(2))
///     .start()
///     .unwrap();
/// assert_eq!(handle.incr("k", 60, false, 1).unwrap(), 1);
/// let storage: Arc<dyn Storage> = handle.storage();
/// drop(handle); // flushes and stops the syncer
/// assert_eq!(storage.get("k").unwrap(), 1);
/// ```
#[must_use = "a builder does nothing until started"]
pub struct WriteBehindBuilder {
    target: Arc<dyn SyncTarget>,
    node: Option<String>,
    clock: Option<Arc<dyn Clock>>,
    interval: Duration,
    batch_size: usize,
    policy: FailurePolicy,
    grace: Duration,
    max_backoff: Duration,
    max_entries: usize,
    budget_split: bool,
    max_unsynced: Option<u64>,
    early_gap: Option<Duration>,
    incarnation_marker: bool,
}

impl fmt::Debug for WriteBehindBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBehindBuilder")
            .field("target", &self.target)
            .field("node", &self.node)
            .field("interval", &self.interval)
            .field("batch_size", &self.batch_size)
            .field("policy", &self.policy)
            .field("grace", &self.grace)
            .field("max_backoff", &self.max_backoff)
            .field("max_entries", &self.max_entries)
            .field("budget_split", &self.budget_split)
            .field("max_unsynced", &self.max_unsynced)
            .field("early_gap", &self.early_gap)
            .field("incarnation_marker", &self.incarnation_marker)
            .finish()
    }
}

impl WriteBehind {
    /// A builder for a node reconciling through `target`.
    ///
    /// Defaults: a node id unique to this process and instance, a sync
    /// interval of 100 ms, batches of 1000 reports, [`FailurePolicy::Open`],
    /// a grace period of 5 s, retries backing off up to 5 s, at most
    /// [`DEFAULT_MAX_ENTRIES`](super::DEFAULT_MAX_ENTRIES) keys, the memory
    /// engine's clock ([`DefaultClock`]: millisecond resolution, as windows
    /// of a second or more need).
    pub fn builder(target: Arc<dyn SyncTarget>) -> WriteBehindBuilder {
        WriteBehindBuilder {
            target,
            node: None,
            clock: None,
            interval: Duration::from_millis(100),
            batch_size: 1000,
            policy: FailurePolicy::Open,
            grace: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            max_entries: super::DEFAULT_MAX_ENTRIES,
            budget_split: false,
            max_unsynced: None,
            early_gap: None,
            incarnation_marker: true,
        }
    }
}

impl WriteBehindBuilder {
    /// The node id written into the remote's slots. It must be unique among
    /// the nodes sharing a remote, and a restarted process must not reuse
    /// the id of its previous run within a window (its totals restart at 0).
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node = Some(id.into());
        self
    }

    /// How often the syncer reconciles. Zero means write-through: every hit
    /// is reported before it is answered, and answered with the global count.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The most reports per remote call.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// What hits do while the remote is unreachable.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long the remote may fail before [`FailurePolicy::Closed`] refuses hits.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The longest wait between retries while the remote fails; retries
    /// start at the sync interval (at least 10 ms) and double.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The most keys the node holds (at least 1). When the table is full, a
    /// new key first makes room by dropping keys whose hits the remote has
    /// acknowledged; a key with undelivered hits is never dropped. When
    /// every key holds undelivered hits (a long outage), a hit on a new key
    /// is not recorded: it is counted in [`Stats::unrecorded_hits`](super::Stats::unrecorded_hits),
    /// reported once on standard error, and answered by the failure policy
    /// (open: as the key's only hit; closed: an error).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// The clock deciding windows (and measuring lag and grace).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Budget split (off by default): after each sync the node admits,
    /// until its next one, only within the share of what is left of each
    /// limit that the remote granted it, so nodes that share a key never
    /// admit past its limit together; a hit that finds the share spent is
    /// refused and asks for an early sync. Needs a remote that
    /// [shares budgets](SyncTarget::shares_budgets) (the Redis family and
    /// [`MemoryRemote`](super::MemoryRemote)); ignored in write-through
    /// mode, which is exact anyway. See the [module documentation](super).
    pub fn budget_split(mut self, on: bool) -> Self {
        self.budget_split = on;
        self
    }

    /// A window with this many hits not yet synced asks for an early sync
    /// (none by default), as Bucket4j's `maxUnsynchronizedTokens`: it bounds
    /// what one node adds unseen by the others.
    pub fn max_unsynced(mut self, hits: u64) -> Self {
        self.max_unsynced = Some(hits.max(1));
        self
    }

    /// The least time between two early syncs (default: half the sync
    /// interval), so a key under attack cannot turn the node into
    /// write-through: each key is in at most one early sync at a time.
    pub fn early_sync_gap(mut self, gap: Duration) -> Self {
        self.early_gap = Some(gap);
        self
    }

    /// Whether the node reads (and, the first time, creates) the remote's
    /// [incarnation marker](SyncTarget::incarnation), to notice a remote
    /// that lost its data and re-send its totals (on by default). Off, the
    /// node writes nothing but its keys' slots, and a remote that lost its
    /// data is not made whole: for a short-lived run that must leave no
    /// trace on a shared server (`limitstore bench` and `tune` turn it off
    /// where they cannot delete a key prefix of their own).
    pub fn incarnation_marker(mut self, on: bool) -> Self {
        self.incarnation_marker = on;
        self
    }

    /// Builds the node and starts its syncer thread.
    pub fn start(self) -> Result<WriteBehindHandle> {
        let node = self.node.unwrap_or_else(default_node_id);
        if node.is_empty() || node.contains('\0') {
            return Err(Error::configuration(
                "write-behind node id must not be empty or hold a NUL byte",
            ));
        }
        if self.budget_split && !self.interval.is_zero() && !self.target.shares_budgets() {
            return Err(Error::configuration(
                "budget split needs a remote that shares budgets (the Redis family or \
                 the embedded remote); this one does not",
            ));
        }
        let storage = Arc::new(WriteBehind::new(Config {
            target: self.target,
            node,
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(DefaultClock::new()) as Arc<dyn Clock>),
            interval: self.interval,
            batch_size: self.batch_size,
            policy: self.policy,
            grace: self.grace,
            max_entries: self.max_entries,
            budget_split: self.budget_split,
            max_unsynced: self.max_unsynced,
            early_gap: self.early_gap.unwrap_or(self.interval),
            incarnation_marker: self.incarnation_marker,
        }));
        let control = Arc::new(Control::default());
        // Write-through nodes only retry what failed; they wake every 50 ms.
        let period = if self.interval.is_zero() {
            Duration::from_millis(50)
        } else {
            self.interval
        };
        let max_backoff = self.max_backoff.max(period);
        let thread = {
            let storage = storage.clone();
            let control = control.clone();
            std::thread::Builder::new()
                .name(format!("limitstore-sync-{}", storage.node_id()))
                .spawn(move || run(&storage, &control, period, max_backoff))
                .map_err(|e| Error::storage("write-behind syncer thread", e))?
        };
        storage.set_syncer(thread.thread().clone());
        Ok(WriteBehindHandle {
            storage,
            control,
            thread: Some(thread),
        })
    }
}

#[derive(Debug, Default)]
struct Control {
    stop: AtomicBool,
}

/// The syncer: a regular pass every `period` (backing off after failures),
/// and, between them, early passes over the keys that asked for one, at most
/// one per early gap. It parks between passes; a hit asking for an early
/// sync and the handle's stop unpark it.
fn run(storage: &WriteBehind, control: &Control, period: Duration, max_backoff: Duration) {
    let first_backoff = period.max(Duration::from_millis(10));
    let gap = storage.early_gap();
    let mut failures: u32 = 0;
    let mut next_pass = Instant::now() + period;
    let mut next_early = Instant::now();
    loop {
        if control.stop.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let early = storage.early_pending();
        if early && now >= next_early && failures == 0 {
            let _ = storage.sync_early();
            next_early = now + gap;
            continue;
        }
        if now >= next_pass {
            next_pass = match storage.flush() {
                Ok(()) => {
                    failures = 0;
                    Instant::now() + period
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    Instant::now() + backoff(first_backoff, failures, max_backoff)
                }
            };
            continue;
        }
        let until = if early && failures == 0 {
            next_pass.min(next_early)
        } else {
            next_pass
        };
        std::thread::park_timeout(until.saturating_duration_since(now));
    }
}

/// The wait after `failures` consecutive failed passes: `first`, doubling,
/// at most `max`.
fn backoff(first: Duration, failures: u32, max: Duration) -> Duration {
    first
        .checked_mul(1u32 << failures.saturating_sub(1).min(20))
        .unwrap_or(max)
        .min(max)
}

/// A started [`WriteBehind`] node: derefs to the storage, owns the syncer.
///
/// Dropping the handle stops the syncer and flushes once more (an error of
/// that last flush is dropped; call [`shutdown`](Self::shutdown) to see it).
/// The handle is itself a [`Storage`], so it can be boxed as `Arc<dyn
/// Storage>` and the syncer lives as long as the storage does.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use limitstore::Storage;
/// use limitstore::write_behind::{MemoryRemote, SyncTarget, WriteBehind};
///
/// let remote = Arc::new(MemoryRemote::new());
/// let node = WriteBehind::builder(remote.clone())
///     .sync_interval(Duration::from_secs(3600))
///     .start()
///     .unwrap();
/// node.incr("k", 60, false, 7).unwrap();
/// assert_eq!(node.stats().pending_keys, 1);
/// node.shutdown().unwrap();
/// assert_eq!(remote.reports(), 1);
/// ```
pub struct WriteBehindHandle {
    storage: Arc<WriteBehind>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for WriteBehindHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBehindHandle")
            .field("storage", &self.storage)
            .finish()
    }
}

impl WriteBehindHandle {
    /// The storage, shareable. It keeps answering after the handle is
    /// dropped, but nothing syncs it any more.
    pub fn storage(&self) -> Arc<WriteBehind> {
        self.storage.clone()
    }

    /// Syncs every pending key now and waits for the answers.
    pub fn flush(&self) -> Result<()> {
        self.storage.flush()
    }

    /// Stops the syncer, then flushes; returns the flush's error.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop();
        self.storage.flush()
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.control.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Deref for WriteBehindHandle {
    type Target = WriteBehind;
    fn deref(&self) -> &WriteBehind {
        &self.storage
    }
}

impl Drop for WriteBehindHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
            let _ = self.storage.flush();
        }
    }
}

impl Storage for WriteBehindHandle {
    fn incr(&self, key: &str, expiry: u64, elastic_expiry: bool, amount: u64) -> Result<u64> {
        self.storage.incr(key, expiry, elastic_expiry, amount)
    }
    fn incr_within(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        self.storage
            .incr_within(key, expiry, elastic_expiry, amount, limit)
    }
    fn incr_within_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        self.storage
            .incr_within_key(key, expiry, elastic_expiry, amount, limit)
    }
    fn get(&self, key: &str) -> Result<u64> {
        self.storage.get(key)
    }
    fn get_expiry(&self, key: &str) -> Result<f64> {
        self.storage.get_expiry(key)
    }
    fn check(&self) -> bool {
        self.storage.check()
    }
    fn reset(&self) -> Result<Option<u64>> {
        self.storage.reset()
    }
    fn clear(&self, key: &str) -> Result<()> {
        self.storage.clear(key)
    }
    fn unix_now(&self) -> f64 {
        self.storage.unix_now()
    }
    fn elastic_expiry(&self) -> bool {
        self.storage.elastic_expiry()
    }
    fn sliding_window(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        Some(&*self.storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        let waits: Vec<Duration> = (1..=6).map(|f| backoff(ms(20), f, ms(200))).collect();
        assert_eq!(waits, [ms(20), ms(40), ms(80), ms(160), ms(200), ms(200)]);
        assert_eq!(backoff(ms(20), u32::MAX, ms(200)), ms(200));
    }
}
