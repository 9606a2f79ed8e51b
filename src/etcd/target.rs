//! The etcd storage as a write-behind remote: per sync, a few transactions
//! that keep the larger total in each node's slot and read the window's
//! slots back.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};

use super::is_lease_not_found;
use crate::aio::AsyncStorage;
use crate::clock::wall_now;
use crate::error::{Error, Result};
use crate::rt::block_on;
use crate::storage::validate_key;
use crate::write_behind::{Report, SyncTarget};
use crate::EtcdStorage;

const BACKEND: &str = "etcd write-behind";
/// etcd's default `--max-txn-ops`: the most operations in one branch of a
/// transaction.
const MAX_TXN_OPS: usize = 128;
/// How deep a report's conditional put nests transactions. etcd checks a
/// nested transaction against what its parents leave of the limit (the
/// limit less their own operation counts), so a transaction of `n`
/// operations around two levels of one-operation branches must keep
/// `n + 2 <= 128`.
const NESTING: usize = 2;
/// Attempts of one sync whose leases turned out to be gone.
const LEASE_ATTEMPTS: usize = 3;

/// `key` with `%` and `/` percent-encoded, so that a key never reads as a
/// key, window and node of another: the prefix of one key's slots is never
/// a prefix of another key's.
pub(crate) fn escape(key: &str) -> Cow<'_, str> {
    if !key.contains(['%', '/']) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `{prefix}/wb/{key}/`: every slot of `key`.
fn key_prefix(prefix: &str, key: &str) -> String {
    format!("{prefix}/wb/{}/", escape(key))
}

/// `{prefix}/wb/{key}/{window}/`: the slots of one window.
fn window_prefix(prefix: &str, key: &str, window: u64) -> String {
    format!("{prefix}/wb/{}/{window}/", escape(key))
}

/// A slot's value: the total zero-padded to 20 digits, so that etcd's
/// byte-wise comparison of values is the numeric one.
fn encode(total: u64) -> String {
    format!("{total:020}")
}

fn decode(raw: &[u8]) -> Result<u64> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::storage_msg(
                BACKEND,
                format!(
                    "a slot holds `{}`, not a total",
                    String::from_utf8_lossy(raw)
                ),
            )
        })
}

/// The Unix second at which the slots of `r`'s window expire: one window
/// after the window ends.
fn deadline(r: &Report<'_>) -> u64 {
    r.window.saturating_add(2).saturating_mul(r.expiry)
}

/// One report, as sent: what to write (if anything) and what to read.
struct Planned {
    /// The slot key and its new value, with the deadline of its lease.
    write: Option<(String, String, u64)>,
    /// The prefix of the report's window.
    read: String,
}

/// One transaction: reports `start..end` of the plan.
struct Chunk {
    start: usize,
    end: usize,
}

async fn timed<T>(
    limit: Duration,
    what: &str,
    call: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> std::result::Result<T, Attempt> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if is_lease_not_found(&e) => Err(Attempt::LeaseGone),
        Ok(Err(e)) => Err(Attempt::Failed(super::client_error(BACKEND, e))),
        Err(_) => Err(Attempt::Failed(Error::storage_timeout(
            BACKEND,
            format!("{what}: no reply within {limit:?}"),
        ))),
    }
}

/// Why an attempt of a sync failed.
enum Attempt {
    /// A lease in the cache was gone on the server: grant new ones, retry.
    LeaseGone,
    Failed(Error),
}

/// Outside a sync's retry loop, a lease found gone is an error like any other.
impl From<Attempt> for Error {
    fn from(attempt: Attempt) -> Self {
        match attempt {
            Attempt::Failed(e) => e,
            Attempt::LeaseGone => Error::storage_msg(BACKEND, "lease not found"),
        }
    }
}

impl EtcdStorage {
    /// The lease ending at `deadline` (Unix seconds), from the cache or
    /// granted now.
    async fn wb_lease(&self, deadline: u64, now: f64) -> std::result::Result<i64, Attempt> {
        let cached = self.wb_leases().lock().get(&deadline).copied();
        if let Some(id) = cached {
            return Ok(id);
        }
        let ttl = (deadline as f64 - now).ceil().max(1.0) as i64;
        let mut lease = self.lease_client();
        let id = timed(
            self.request_timeout(),
            "lease grant",
            lease.grant(ttl, None),
        )
        .await?
        .id();
        let mut cache = self.wb_leases().lock();
        cache.retain(|&end, _| end as f64 > now);
        Ok(*cache.entry(deadline).or_insert(id))
    }

    /// Forgets the cached leases ending at `deadlines`.
    fn forget_leases(&self, deadlines: impl IntoIterator<Item = u64>) {
        let mut cache = self.wb_leases().lock();
        for d in deadlines {
            cache.remove(&d);
        }
    }

    /// Sends the transactions of one wave at once; answers for their
    /// reports, in order.
    async fn sync_once(
        &self,
        plan: &[Planned],
        chunks: &[Chunk],
        leases: &HashMap<u64, i64>,
    ) -> std::result::Result<Vec<u64>, Attempt> {
        let mut calls = tokio::task::JoinSet::new();
        for (c, chunk) in chunks.iter().enumerate() {
            let mut ops = Vec::new();
            for p in &plan[chunk.start..chunk.end] {
                if let Some((slot, value, end)) = &p.write {
                    let put = || {
                        TxnOp::put(
                            slot.as_str(),
                            value.as_str(),
                            Some(PutOptions::new().with_lease(leases[end])),
                        )
                    };
                    // A missing key fails every value comparison, so a new
                    // slot is its own branch.
                    ops.push(TxnOp::txn(
                        Txn::new()
                            .when([Compare::create_revision(slot.as_str(), CompareOp::Equal, 0)])
                            .and_then([put()])
                            .or_else([TxnOp::txn(
                                Txn::new()
                                    .when([Compare::value(
                                        slot.as_str(),
                                        CompareOp::Less,
                                        value.as_str(),
                                    )])
                                    .and_then([put()]),
                            )]),
                    ));
                }
                ops.push(TxnOp::get(
                    p.read.as_str(),
                    Some(GetOptions::new().with_prefix()),
                ));
            }
            let mut kv: KvClient = self.kv_client();
            let limit = self.request_timeout();
            calls.spawn(async move {
                let resp = timed(limit, "txn", kv.txn(Txn::new().and_then(ops))).await;
                (c, resp)
            });
        }
        let mut answers: Vec<Option<TxnResponse>> = (0..chunks.len()).map(|_| None).collect();
        let mut lease_gone = false;
        let mut failure = None;
        while let Some(joined) = calls.join_next().await {
            let (c, resp) = joined.map_err(|e| {
                Attempt::Failed(Error::storage_msg(
                    BACKEND,
                    format!("a transaction did not complete: {e}"),
                ))
            })?;
            match resp {
                Ok(r) => answers[c] = Some(r),
                Err(Attempt::LeaseGone) => lease_gone = true,
                Err(Attempt::Failed(e)) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            return Err(Attempt::Failed(e));
        }
        if lease_gone {
            return Err(Attempt::LeaseGone);
        }
        let mut totals = Vec::with_capacity(plan.len());
        for (chunk, resp) in chunks.iter().zip(answers) {
            let resp = resp.expect("every chunk answered");
            let mut gets = resp.op_responses().into_iter().filter_map(|r| match r {
                TxnOpResponse::Get(g) => Some(g),
                _ => None,
            });
            for _ in chunk.start..chunk.end {
                let get = gets.next().ok_or_else(|| {
                    Attempt::Failed(Error::storage_msg(
                        BACKEND,
                        "a transaction answered fewer reads than it was sent",
                    ))
                })?;
                let mut sum = 0u64;
                for kv in get.kvs() {
                    sum = sum.saturating_add(decode(kv.value()).map_err(Attempt::Failed)?);
                }
                totals.push(sum);
            }
        }
        Ok(totals)
    }

    async fn wb_sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
        let prefix = self.key_prefix();
        let now = wall_now();
        let plan: Vec<Planned> = reports
            .iter()
            .map(|r| {
                let end = deadline(r);
                // Hits of a window whose slots are past their end can no
                // longer affect a limit: they are only read.
                let write = (r.total > 0 && end as f64 > now).then(|| {
                    let mut slot = window_prefix(prefix, r.key, r.window);
                    slot.push_str(r.node);
                    (slot, encode(r.total), end)
                });
                Planned {
                    write,
                    read: window_prefix(prefix, r.key, r.window),
                }
            })
            .collect();
        // Transactions of at most MAX_TXN_OPS operations, sent together in
        // waves. A slot put twice starts a new wave: etcd refuses two puts
        // of one key in a transaction, and the second report must be
        // answered after the first was applied.
        let mut waves: Vec<Vec<Chunk>> = vec![Vec::new()];
        let (mut start, mut ops) = (0, 0);
        let mut slots: HashSet<&str> = HashSet::new();
        for (i, p) in plan.iter().enumerate() {
            let need = 1 + usize::from(p.write.is_some());
            let repeated = p
                .write
                .as_ref()
                .is_some_and(|(slot, _, _)| slots.contains(slot.as_str()));
            if ops + need > MAX_TXN_OPS - NESTING || repeated {
                waves
                    .last_mut()
                    .expect("a wave")
                    .push(Chunk { start, end: i });
                (start, ops) = (i, 0);
                if repeated {
                    waves.push(Vec::new());
                    slots.clear();
                }
            }
            ops += need;
            if let Some((slot, _, _)) = &p.write {
                slots.insert(slot.as_str());
            }
        }
        waves.last_mut().expect("a wave").push(Chunk {
            start,
            end: plan.len(),
        });
        let mut deadlines: Vec<u64> = plan
            .iter()
            .filter_map(|p| p.write.as_ref().map(|w| w.2))
            .collect();
        deadlines.sort_unstable();
        deadlines.dedup();
        for attempt in 1..=LEASE_ATTEMPTS {
            let mut leases = HashMap::new();
            let mut result = Ok(());
            for &end in &deadlines {
                match self.wb_lease(end, now).await {
                    Ok(id) => {
                        leases.insert(end, id);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            let mut totals = Vec::with_capacity(plan.len());
            if result.is_ok() {
                for wave in &waves {
                    match self.sync_once(&plan, wave, &leases).await {
                        Ok(t) => totals.extend(t),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
            }
            match result.map(|()| totals) {
                Ok(totals) => return Ok(totals),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::LeaseGone) if attempt < LEASE_ATTEMPTS => {
                    // A cached lease ran out (or the server lost it):
                    // reports are idempotent, so send them all again on
                    // fresh leases.
                    self.forget_leases(deadlines.iter().copied());
                }
                Err(Attempt::LeaseGone) => break,
            }
        }
        Err(Error::storage_msg(
            BACKEND,
            format!("the leases of the slots kept vanishing ({LEASE_ATTEMPTS} attempts)"),
        ))
    }
}

/// An etcd cluster as the remote of write-behind nodes.
///
/// The slot of node `n` in window `w` of `key` is the etcd key
/// `{key_prefix}/wb/{key}/{w}/{n}` (`%` and `/` in `key` percent-encoded),
/// holding the node's cumulative total as 20 zero-padded digits, on a lease
/// that ends one window after the window ends (leases are shared by all the
/// slots ending at the same second and cached). A
/// [`sync`](SyncTarget::sync) is one transaction per 64 reports (etcd's
/// default limit of 128 operations per transaction, nesting included), sent
/// concurrently: per report, a nested transaction that puts the total if the
/// slot is missing or holds a smaller value (etcd compares values byte-wise,
/// hence the padding), then a range read of the window's slots, summed. Each
/// report is therefore answered with its window's total right after its own
/// put, and a report sent again changes nothing. A second report of a slot
/// in one batch waits for the transactions before it (etcd refuses two puts
/// of one key in one transaction); reports of other slots of the same window
/// in concurrent transactions may see each other's puts in either order (the
/// syncer's batches hold one report per key and window).
///
/// Reports of a window whose slots have already expired are only read.
/// [`clear`](SyncTarget::clear) deletes the range `{key_prefix}/wb/{key}/`;
/// [`reset`](SyncTarget::reset) is the storage's (everything under
/// `{key_prefix}/`).
///
/// ```no_run
/// use std::sync::Arc;
/// use limitstore::EtcdStorage;
/// use limitstore::write_behind::WriteBehind;
/// let remote = Arc::new(EtcdStorage::new("etcd://127.0.0.1:2379").unwrap());
/// let node = WriteBehind::builder(remote).node_id("web-1").start().unwrap();
/// ```
impl SyncTarget for EtcdStorage {
    fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        for r in reports {
            validate_key(r.key)?;
        }
        block_on(self.wb_sync(reports))?
    }

    fn check(&self) -> bool {
        block_on(AsyncStorage::check(self)).unwrap_or(false)
    }

    /// The key `{key_prefix}/wb-incarnation`, put when missing and read in
    /// one transaction.
    fn incarnation(&self, candidate: &str) -> Result<Option<String>> {
        let key = format!("{}/wb-incarnation", self.key_prefix());
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put(key.as_str(), candidate, None),
                TxnOp::get(key.as_str(), None),
            ])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let mut kv = self.kv_client();
        let limit = self.request_timeout();
        let resp = block_on(async move { timed(limit, "txn", kv.txn(txn)).await })??;
        let marker = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        });
        Ok(marker)
    }

    fn clear(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let range = key_prefix(self.key_prefix(), key);
        let mut kv = self.kv_client();
        let limit = self.request_timeout();
        let delete = kv.delete(range, Some(DeleteOptions::new().with_prefix()));
        block_on(async move { timed(limit, "delete", delete).await })??;
        Ok(())
    }

    /// Deletes every key under the prefix, write-behind slots included (the
    /// storage's own [`reset`](AsyncStorage::reset)).
    fn reset(&self) -> Result<Option<u64>> {
        block_on(AsyncStorage::reset(self))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_run_into_each_other() {
        assert_eq!(window_prefix("p", "a", 5), "p/wb/a/5/");
        assert_eq!(window_prefix("p", "a/5", 7), "p/wb/a%2F5/7/");
        assert_eq!(key_prefix("p", "50%/x"), "p/wb/50%25%2Fx/");
        assert!(!window_prefix("p", "a/5", 7).starts_with(&window_prefix("p", "a", 5)));
    }

    #[test]
    fn padded_values_compare_as_numbers() {
        assert_eq!(encode(7), "00000000000000000007");
        assert_eq!(encode(u64::MAX).len(), 20);
        assert!(encode(9) < encode(10));
        assert!(encode(u64::MAX - 1) < encode(u64::MAX));
        assert_eq!(decode(encode(u64::MAX).as_bytes()).unwrap(), u64::MAX);
        assert_eq!(decode(b"12").unwrap(), 12);
        for bad in [&b""[..], b"-1", b"1 ", b"x"] {
            assert!(decode(bad).is_err());
        }
    }
}
