//! The etcd v3 storage (cargo feature `etcd`): fixed-window counters in etcd
//! keys that carry a lease, as Python `limits`' `EtcdStorage` keeps them.
//!
//! URI: `etcd://host[:port][,host[:port]...]` (port 2379 by default; several
//! hosts are endpoints of one cluster, used in turn). The storage is
//! natively asynchronous: [`EtcdStorage`] implements
//! [`AsyncStorage`] (scheme `async+etcd://`), and
//! [`storage_from_string`](crate::storage_from_string) gives it the
//! synchronous [`Storage`](crate::Storage) API through
//! [`Bridged`](crate::aio::Bridged). Its gRPC connections live on the
//! crate's own I/O runtime, so the storage works from any runtime, or none.
//!
//! # Layout
//!
//! The counter of `key` is the etcd key `{key_prefix}/{key}` (`limits/...` by
//! default) holding `"{count}:{window_end}"`, where `window_end` is the Unix
//! time, as a decimal fraction, at which the window ends. The key is attached
//! to a lease of `expiry` seconds, so etcd deletes it after the window; until
//! then the time in the value decides whether the window is still open (etcd
//! rounds short leases up, so a key may outlive its window a little). A
//! Python service and a Rust service pointed at the same cluster share their
//! limits.
//!
//! # Counting
//!
//! An increment reads the key, then writes `count + amount` in a transaction
//! that compares the key's `mod_revision` with the one read (or its
//! `create_revision` with 0 for a new key); a new window first grants a lease
//! of `expiry` seconds and puts the key with it. With elastic expiry every
//! increment grants a new lease and moves the window end, as `limits` does.
//! A transaction that lost a race reads the winner's value in the same round
//! trip and tries again, after a short random pause, up to `max_retries`
//! attempts in all; then the call fails with
//! [`ErrorKind::ConcurrentUpdate`] and
//! has counted nothing. Every accepted increment is counted exactly once.
//!
//! Calls on one storage value for keys of the same stripe (a hash of the key
//! picks one of 64) wait for each other in the process, so the threads or
//! tasks of one process never make each other retry: 100 threads hitting one
//! key through one storage are counted exactly with no retry at all. Only
//! writers in other processes (or other storage values) contend. Under
//! contention each attempt is one round trip, and one of the writers that
//! read the same revision wins it; a loser waits a random pause of up to
//! 1, 2, 4, ... ms (at most 50 ms) and tries again. The default of
//! [`DEFAULT_MAX_RETRIES`] = 32 attempts (`limits` has 5) comes from the
//! test `storages_in_contention_count_exactly`: eight storages driving 100
//! increments of one key at once, a sustained eight-way race, got every
//! increment through with 20 attempts or more, 90-96 with 10 and about 65
//! with 5. More writers of one hot key than that may see
//! `ConcurrentUpdate`; raise `max_retries` for them. Only lost races are
//! retried: an error or a timeout ends the call at once.
//!
//! There is no moving window and no sliding window counter, as in `limits`'
//! etcd storage: [`moving_window`](crate::aio::AsyncStorage::moving_window)
//! and [`sliding_window`](crate::aio::AsyncStorage::sliding_window) return
//! `None`, and those strategies refuse the storage with a configuration error.
//!
//! # Options
//!
//! | option | meaning | default |
//! | --- | --- | --- |
//! | `key_prefix` | keys are stored as `{key_prefix}/{key}` | `limits` |
//! | `max_retries` | attempts of one increment before `ConcurrentUpdate` | 32 |
//! | `request_timeout` (or `timeout`) | seconds to wait for one reply | 5 |
//! | `connect_timeout` | seconds to wait for a new connection | 2 |
//!
//! Unknown options, user info and a path in the URI are configuration errors.
//! Construction does not connect; a server that is down or hangs makes each
//! call fail with an [`ErrorKind::Storage`] error
//! after at most `request_timeout` per request, and
//! [`check`](crate::aio::AsyncStorage::check) returns false.
//!
//! ```no_run
//! use limitstore::{storage_from_string, Options};
//! let storage = storage_from_string(
//!     "etcd://127.0.0.1:2379?max_retries=20",
//!     &Options::new().with("key_prefix", "myapp"),
//! )
//! .unwrap();
//! assert_eq!(storage.incr("user:1", 60, false, 1).unwrap(), 1);
//! assert!(storage.moving_window().is_none());
//! ```

mod config;
mod target;

use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, KeyValue, KvClient, LeaseClient,
    MaintenanceClient, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::time::Instant;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_MAX_RETRIES, DEFAULT_PORT,
    DEFAULT_REQUEST_TIMEOUT, MAX_RETRIES,
};

use crate::aio::{AsyncStorage, BoxFuture};
use crate::clock::wall_now;
use crate::error::{Error, ErrorKind, Result};
use crate::rt::{block_on, runtime};
use crate::storage::{validate_amount, validate_expiry, validate_key, Options, StorageUri};
use config::EtcdConfig;

const BACKEND: &str = "etcd";
/// Stripes of the in-process lock that orders increments of one key.
const STRIPES: usize = 64;
/// The longest pause between two attempts of one increment.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// Rate-limit storage on an etcd v3 cluster: fixed windows only (see the
/// [module docs](crate::etcd) for the layout, the options and how contention
/// is handled).
///
/// It is an [`AsyncStorage`]; wrap it in [`Bridged`](crate::aio::Bridged)
/// (as [`storage_from_string`](crate::storage_from_string) does for
/// `etcd://`) for the synchronous API.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use limitstore::aio::AsyncStorage;
/// use limitstore::EtcdStorage;
/// let storage = EtcdStorage::new("etcd://127.0.0.1:2379").unwrap();
/// assert_eq!(storage.incr("k", 60, false, 1).await.unwrap(), 1);
/// assert_eq!(storage.get("k").await.unwrap(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct EtcdStorage {
    inner: Arc<Inner>,
}

struct Inner {
    config: EtcdConfig,
    kv: KvClient,
    lease: LeaseClient,
    maintenance: MaintenanceClient,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    /// Leases of write-behind slots, by the Unix second at which they end.
    wb_leases: parking_lot::Mutex<std::collections::HashMap<u64, i64>>,
}

impl EtcdStorage {
    /// Builds a storage from a URI string (options from its query string).
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options (the options win over
    /// the URI's query string). Does not contact the server.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let config = EtcdConfig::parse(uri, options)?;
        let connect = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.request_timeout);
        let endpoints = config.endpoints.clone();
        let limit = config.connect_timeout;
        // The client's background tasks are spawned where it is built: on
        // the crate's runtime, which lives as long as the process.
        let client = block_on(async move {
            tokio::time::timeout(limit, Client::connect(endpoints, Some(connect))).await
        })?
        .map_err(|_| Error::storage_timeout(BACKEND, "building the client timed out"))?
        .map_err(|e| Error::configuration(format!("`{}`: {e}", uri.redacted())))?;
        Ok(EtcdStorage {
            inner: Arc::new(Inner {
                kv: client.kv_client(),
                lease: client.lease_client(),
                maintenance: client.maintenance_client(),
                stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
                wb_leases: Default::default(),
                config,
            }),
        })
    }

    /// The key prefix (`limits` unless option `key_prefix` says otherwise).
    pub fn key_prefix(&self) -> &str {
        &self.inner.config.key_prefix
    }

    /// The endpoints, as `http://host:port`.
    pub fn endpoints(&self) -> &[String] {
        &self.inner.config.endpoints
    }

    /// Attempts of one increment before it fails with
    /// [`ErrorKind::ConcurrentUpdate`].
    pub fn max_retries(&self) -> u32 {
        self.inner.config.max_retries
    }

    /// The KV client, for the write-behind remote.
    pub(crate) fn kv_client(&self) -> KvClient {
        self.inner.kv.clone()
    }

    /// The lease client, for the write-behind remote.
    pub(crate) fn lease_client(&self) -> LeaseClient {
        self.inner.lease.clone()
    }

    /// The longest wait for one reply.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout
    }

    /// The write-behind remote's leases, by the Unix second they end at.
    pub(crate) fn wb_leases(&self) -> &parking_lot::Mutex<std::collections::HashMap<u64, i64>> {
        &self.inner.wb_leases
    }
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("EtcdStorage")
            .field("endpoints", &c.endpoints)
            .field("key_prefix", &c.key_prefix)
            .field("max_retries", &c.max_retries)
            .field("request_timeout", &c.request_timeout)
            .finish()
    }
}

/// The stored value of a window: `"{count}:{window_end}"`, the end written as
/// Python writes a float (`1700000000.0`, `1738576292.6631825`).
pub(crate) fn format_value(count: u64, window_end: f64) -> String {
    let mut end = format!("{window_end}");
    if !end.contains(['.', 'e', 'E', 'N', 'n']) {
        end.push_str(".0");
    }
    format!("{count}:{end}")
}

/// Parses a stored value. A value without `:` is an empty, ended window (as
/// `limits` reads it); one with unparsable numbers is an error.
pub(crate) fn parse_value(raw: &[u8]) -> std::result::Result<(u64, f64), String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a value that is not UTF-8".to_owned())?;
    let Some((count, end)) = text.split_once(':') else {
        return Ok((0, 0.0));
    };
    let bad = || format!("the value `{text}`, not `<count>:<window_end>`");
    let count = count.trim().parse::<u64>().map_err(|_| bad())?;
    let end = end.trim().parse::<f64>().map_err(|_| bad())?;
    if !end.is_finite() {
        return Err(bad());
    }
    Ok((count, end))
}

/// Aborts the spawned call when the caller drops its future.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `call` on the crate's runtime (where the client's connections live,
/// with timers enabled whatever the caller's executor is).
fn spawn<T: Send + 'static>(
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> BoxFuture<'static, Result<T>> {
    let handle = runtime().map(|rt| AbortOnDrop(rt.spawn(call)));
    Box::pin(async move {
        let mut handle = handle?;
        (&mut handle.0)
            .await
            .map_err(|e| Error::storage_msg(BACKEND, format!("the call did not complete: {e}")))?
    })
}

/// A client error as `backend` reports it. The client's own request
/// timeout (gRPC `CANCELLED` "Timeout expired") and a server deadline
/// (`DEADLINE_EXCEEDED`) are marked as timeouts: the client does not expose
/// them as I/O errors.
pub(crate) fn client_error(backend: &str, e: etcd_client::Error) -> Error {
    const CANCELLED: i32 = 1;
    const DEADLINE_EXCEEDED: i32 = 4;
    let timed_out = match &e {
        etcd_client::Error::GRpcStatus(s) => {
            let code = i32::from(s.code());
            code == DEADLINE_EXCEEDED || (code == CANCELLED && s.message() == "Timeout expired")
        }
        etcd_client::Error::IoError(io) => crate::error::io_timed_out(io),
        _ => false,
    };
    let e = Error::storage(backend, e);
    if timed_out {
        e.timed_out()
    } else {
        e
    }
}

pub(crate) fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("lease not found"))
}

impl Inner {
    fn full_key(&self, key: &str) -> Vec<u8> {
        format!("{}/{key}", self.config.key_prefix).into_bytes()
    }

    fn timeout_error(&self, what: &str) -> Error {
        Error::storage_timeout(
            BACKEND,
            format!(
                "{what}: no reply from {} within {:?}",
                self.config.endpoints.join(","),
                self.config.request_timeout
            ),
        )
    }

    /// One request, bounded by the request timeout.
    async fn timed<T>(
        &self,
        what: &str,
        request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> std::result::Result<T, RequestError> {
        match tokio::time::timeout(self.config.request_timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RequestError::Etcd(e)),
            Err(_) => Err(RequestError::Other(self.timeout_error(what))),
        }
    }

    async fn get_kv(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let mut kv = self.kv.clone();
        let mut resp = self
            .timed("get", kv.get(key, None))
            .await
            .map_err(RequestError::into_error)?;
        Ok(resp.take_kvs().into_iter().next())
    }

    /// The live window of `kv` (count and end), if it has not ended at `now`.
    fn live_window(kv: Option<&KeyValue>, now: f64) -> Result<Option<(u64, f64)>> {
        let Some(kv) = kv else { return Ok(None) };
        let (count, end) = parse_value(kv.value()).map_err(|why| {
            Error::storage_msg(
                BACKEND,
                format!("key `{}` holds {why}", String::from_utf8_lossy(kv.key())),
            )
        })?;
        Ok((end > now).then_some((count, end)))
    }

    async fn grant(&self, expiry: u64) -> Result<i64> {
        let mut lease = self.lease.clone();
        let ttl = i64::try_from(expiry).unwrap_or(i64::MAX);
        Ok(self
            .timed("lease grant", lease.grant(ttl, None))
            .await
            .map_err(RequestError::into_error)?
            .id())
    }

    /// Revokes a lease that holds no key of ours any more, in the background
    /// (it would expire by itself; revoking keeps the server's lease table small).
    fn revoke_later(self: &Arc<Self>, id: i64) {
        if id == 0 {
            return;
        }
        let this = Arc::clone(self);
        if let Ok(rt) = runtime() {
            rt.spawn(async move {
                let mut lease = this.lease.clone();
                let _ = this.timed("lease revoke", lease.revoke(id)).await;
            });
        }
    }

    async fn incr(
        self: Arc<Self>,
        key: String,
        expiry: u64,
        elastic: bool,
        amount: u64,
    ) -> Result<u64> {
        validate_key(&key)?;
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        let full = self.full_key(&key);
        let stripe = xxhash_rust::xxh3::xxh3_64(&full) as usize % self.stripes.len();
        let _turn = tokio::time::timeout_at(
            Instant::now() + self.config.request_timeout,
            self.stripes[stripe].lock(),
        )
        .await
        .map_err(|_| self.timeout_error("waiting for earlier increments of the key"))?;

        let mut current = self.get_kv(&full).await?;
        let attempts = self.config.max_retries;
        for attempt in 0..attempts {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let now = wall_now();
            let live = Self::live_window(current.as_ref(), now)?;
            let old_lease = current.as_ref().map_or(0, KeyValue::lease);
            let (count, window_end, lease, granted) = match live {
                Some((count, end)) if !elastic => (count.saturating_add(amount), end, old_lease, 0),
                Some((count, _)) => {
                    let lease = self.grant(expiry).await?;
                    (
                        count.saturating_add(amount),
                        now + expiry as f64,
                        lease,
                        lease,
                    )
                }
                None => {
                    let lease = self.grant(expiry).await?;
                    (amount, now + expiry as f64, lease, lease)
                }
            };
            let compare = match &current {
                None => Compare::create_revision(full.clone(), CompareOp::Equal, 0),
                Some(kv) => {
                    Compare::mod_revision(full.clone(), CompareOp::Equal, kv.mod_revision())
                }
            };
            let put = (lease != 0).then(|| PutOptions::new().with_lease(lease));
            let txn = Txn::new()
                .when([compare])
                .and_then([TxnOp::put(
                    full.clone(),
                    format_value(count, window_end),
                    put,
                )])
                .or_else([TxnOp::get(full.clone(), None)]);
            let mut kv = self.kv.clone();
            match self.timed("txn", kv.txn(txn)).await {
                Ok(resp) if resp.succeeded() => {
                    if granted != 0 && old_lease != granted {
                        self.revoke_later(old_lease);
                    }
                    return Ok(count);
                }
                Ok(resp) => {
                    // Lost the race: the failure branch read the winner's value.
                    self.revoke_later(granted);
                    current = resp
                        .op_responses()
                        .into_iter()
                        .find_map(|r| match r {
                            TxnOpResponse::Get(mut g) => Some(g.take_kvs().into_iter().next()),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            Error::storage_msg(BACKEND, "a failed transaction returned no read")
                        })?;
                }
                Err(RequestError::Etcd(e)) if is_lease_not_found(&e) => {
                    // The window's lease ran out under us: the key is gone or going.
                    self.revoke_later(granted);
                    current = self.get_kv(&full).await?;
                }
                Err(e) => {
                    self.revoke_later(granted);
                    return Err(e.into_error());
                }
            }
        }
        Err(Error::new(
            ErrorKind::ConcurrentUpdate,
            format!(
                "{BACKEND}: key `{key}` kept changing under {attempts} attempts to increment it \
                 (option `max_retries`); nothing was counted"
            ),
        ))
    }
}

/// A random pause before attempt `attempt` (1, 2, ...): up to 1 ms, 2 ms,
/// 4 ms, ... and never more than [`MAX_BACKOFF`].
async fn backoff(attempt: u32) {
    let cap = Duration::from_millis(1u64 << attempt.min(16)).min(MAX_BACKOFF);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let pause = cap.mul_f64((random % 1024) as f64 / 1024.0);
    tokio::time::sleep(pause).await;
}

enum RequestError {
    Etcd(etcd_client::Error),
    Other(Error),
}

impl RequestError {
    fn into_error(self) -> Error {
        match self {
            RequestError::Etcd(e) => client_error(BACKEND, e),
            RequestError::Other(e) => e,
        }
    }
}

impl AsyncStorage for EtcdStorage {
    fn incr<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
    ) -> BoxFuture<'a, Result<u64>> {
        let inner = Arc::clone(&self.inner);
        spawn(inner.incr(key.to_owned(), expiry, elastic_expiry, amount))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64>> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_owned();
        spawn(async move {
            validate_key(&key)?;
            let kv = inner.get_kv(&inner.full_key(&key)).await?;
            Ok(Inner::live_window(kv.as_ref(), wall_now())?.map_or(0, |(count, _)| count))
        })
    }

    fn get_expiry<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<f64>> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_owned();
        spawn(async move {
            validate_key(&key)?;
            let kv = inner.get_kv(&inner.full_key(&key)).await?;
            Ok(Inner::live_window(kv.as_ref(), wall_now())?.map_or(0.0, |(_, end)| end))
        })
    }

    fn check(&self) -> BoxFuture<'_, bool> {
        let inner = Arc::clone(&self.inner);
        let call = spawn(async move {
            let mut m = inner.maintenance.clone();
            inner
                .timed("status", m.status())
                .await
                .map_err(RequestError::into_error)
        });
        Box::pin(async move { call.await.is_ok() })
    }

    fn reset(&self) -> BoxFuture<'_, Result<Option<u64>>> {
        let inner = Arc::clone(&self.inner);
        spawn(async move {
            let prefix = format!("{}/", inner.config.key_prefix);
            let mut kv = inner.kv.clone();
            let resp = inner
                .timed(
                    "delete prefix",
                    kv.delete(prefix, Some(DeleteOptions::new().with_prefix())),
                )
                .await
                .map_err(RequestError::into_error)?;
            Ok(Some(u64::try_from(resp.deleted()).unwrap_or(0)))
        })
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_owned();
        spawn(async move {
            validate_key(&key)?;
            let mut kv = inner.kv.clone();
            inner
                .timed("delete", kv.delete(inner.full_key(&key), None))
                .await
                .map_err(RequestError::into_error)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_python_writes_them() {
        assert_eq!(format_value(3, 1700000000.0), "3:1700000000.0");
        assert_eq!(format_value(1, 1738576292.6631825), "1:1738576292.6631825");
        assert_eq!(parse_value(b"3:1700000000.0"), Ok((3, 1700000000.0)));
        assert_eq!(
            parse_value(b"12:1738576292.6631825"),
            Ok((12, 1738576292.6631825))
        );
        // limits reads a value without `:` as an empty window.
        assert_eq!(parse_value(b"7"), Ok((0, 0.0)));
        for bad in [&b"x:1.0"[..], b"1:x", b"-1:1.0", b"1:inf", b"\xff:1"] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn construction_does_not_connect() {
        let s = EtcdStorage::new("etcd://127.0.0.1:1,localhost?key_prefix=p").unwrap();
        assert_eq!(s.key_prefix(), "p");
        assert_eq!(
            s.endpoints(),
            ["http://127.0.0.1:1", "http://localhost:2379"]
        );
        assert!(format!("{s:?}").contains("EtcdStorage"));
    }
}
