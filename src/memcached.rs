//! The Memcached storage (cargo feature `memcached`).
//!
//! | URI | servers |
//! | --- | --- |
//! | `memcached://host[:port]` | one server (default port 11211) |
//! | `memcached://h1:p1,h2:p2,...` | several servers, keys sharded over them |
//! | `memcached:///path/to/memcached.sock` | one server on a unix socket |
//!
//! The layout and the algorithms are those of Python `limits`'
//! `MemcachedStorage`, so that a Python service and a Rust service on the
//! same (single) server share their counters:
//!
//! - **Fixed window** (`incr`): `add key amount` with the window as the
//!   item's expiry; if the key exists, `increment key amount`. Memcached
//!   cannot report an item's TTL, so a companion item `{key}/expires` holds
//!   the window's end (Unix seconds) for [`get_expiry`](Storage::get_expiry).
//!   With elastic expiry every increment also `touch`es the counter and
//!   rewrites the companion. The binary protocol is used: its `add` reports
//!   an existing key (the text protocol's client swallows `NOT_STORED`).
//!   If the key expires between the `add` and the `increment`, the binary
//!   `increment` re-creates it as `0` without an expiry; that reply (0 is
//!   never a real count) is detected, the item is given the window's expiry
//!   and the increment is repeated.
//! - **Sliding window counter**: two epoch-aligned buckets per key,
//!   `{key}/{floor(now / expiry) - 1}` and `{key}/{floor(now / expiry)}`
//!   ([`TimestampedSlidingWindow`]), each living `2 × expiry + 1` seconds.
//! - **No moving window**: Memcached has no lists, so
//!   [`moving_window`](Storage::moving_window) is `None` and
//!   [`MovingWindowRateLimiter::new`](crate::MovingWindowRateLimiter::new)
//!   fails with a configuration error, as in `limits`.
//!
//! # What is exact
//!
//! - Fixed window counts are exact under any concurrency: `add` and
//!   `increment` are atomic on the server, so concurrent hits receive
//!   distinct counts and exactly `limit` of them see a count within the limit.
//! - The sliding window acquire reads both buckets, checks, increments the
//!   current bucket, then checks again with the count the increment
//!   returned and the previous bucket's weight at that moment; on overshoot
//!   it decrements and refuses. Concurrent acquires therefore **never
//!   over-admit**: every admitted hit saw a distinct post-increment count
//!   within the limit (100 threads on a limit of 5 admit exactly 5). While a
//!   refused increment is not yet rolled back, a concurrent acquire sees it
//!   and may be refused too, so under contention near the limit it can
//!   under-admit. (`limits` ignores the previous bucket in its second check,
//!   which can over-admit; this storage does not.)
//! - Windows end with Memcached's clock, which counts whole seconds: an item
//!   stored with an expiry of `n` seconds lives between `n - 1` and `n`
//!   seconds. `get_expiry` reports the exact end written in the companion
//!   item; the counter may disappear up to one second before it.
//!
//! # Sharding
//!
//! With several servers each key is placed by rendezvous hashing: the
//! server with the highest `xxh3(server name, key)` holds it, where the name
//! is `host:port` as written in the URI. The same key reaches the same
//! server from every process that lists the same servers, in any order;
//! adding or removing a server moves only the keys it gains or held. A
//! counter, its `/expires` companion and both sliding buckets of a key
//! follow the key itself, so they share one server. (Python `limits`'
//! `HashClient` places keys differently; share counters with Python
//! services through a single server.)
//!
//! # Reset
//!
//! Memcached cannot list keys, so [`reset`](Storage::reset) cannot remove
//! only the rate-limit entries. By default it fails with an
//! [`ErrorKind::Configuration`] error
//! saying so (`limits` raises `NotImplementedError`). With the option
//! `flush_on_reset=true` it sends `flush_all` to every server instead,
//! which deletes **every item on those servers**, also those of other
//! applications, and returns `Ok(None)`.
//!
//! # Options
//!
//! | option | meaning | default |
//! | --- | --- | --- |
//! | `timeout` | seconds a read or write on a TCP connection may block | 5 |
//! | `connect_timeout` | seconds a call waits for a connection (a new one, or a free pooled one) | 2 |
//! | `max_connections` | most connections open at once, per server | 32 |
//! | `key_prefix` | prepended to every key as is | none (the keys of `limits`) |
//! | `flush_on_reset` | make `reset` flush every server (see above) | false |
//!
//! Unknown options, malformed values, credentials in the URI and a path
//! after hosts are configuration errors.
//!
//! # Failures and timeouts
//!
//! Construction does not connect. A call on a server that is down fails
//! with an [`ErrorKind::Storage`] error after at
//! most `connect_timeout`; a TCP server that stops answering fails a call
//! after `timeout`. [`check`](Storage::check) sends `version` to every
//! server and returns false if any fails. After a connection-level error a
//! server's pooled connections are dropped and the next call reconnects, so
//! after a server restart one call per stale connection pool fails (reads
//! are retried once on fresh connections) and later calls succeed.
//! **Unix sockets:** the `memcache` crate sets no read timeout on unix
//! socket connections, so a server that is alive but stops answering (for
//! example a stopped process) can block a call on a unix socket; a killed
//! server fails at once.
//!
//! Keys longer than Memcached's 250 bytes, empty keys and keys with spaces
//! or control characters are stored under `limitstore/h/{xxh3-128 of the
//! key}` instead.
//!
//! The client is blocking; the asynchronous API (`async+memcached://`) runs
//! it on tokio's blocking pool through [`Blocking`](crate::aio::Blocking).
//!
//! ```no_run
//! use limitstore::{storage_from_string, FixedWindowRateLimiter, Options, RateLimitItem, RateLimiter};
//! let storage = storage_from_string(
//!     "memcached://10.0.0.1:11211,10.0.0.2:11211?timeout=0.5",
//!     &Options::new(),
//! )
//! .unwrap();
//! assert!(storage.moving_window().is_none());
//! let limiter = FixedWindowRateLimiter::new(storage);
//! let item = RateLimitItem::per_minute(10).unwrap();
//! assert!(limiter.hit(&item, &["user", "42"], 1).unwrap());
//! ```

mod config;
mod server;
mod target;

use std::sync::Arc;

use memcache::{CommandError, MemcacheError};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64, xxh3_64_with_seed};

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT, DEFAULT_TIMEOUT,
    MAX_CONNECTIONS,
};

use crate::clock::wall_now;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{
    validate_acquire, validate_amount, validate_expiry, validate_key, Options, SlidingWindow,
    SlidingWindowCounterSupport, Storage, StorageUri, TimestampedSlidingWindow, MAX_AMOUNT,
};
use config::MemcachedConfig;
pub(crate) use server::Server;

/// Memcached's longest key, in bytes.
const MAX_MEMCACHED_KEY: usize = 250;
/// Expiries above this many seconds are absolute Unix times for Memcached.
pub(crate) const MAX_RELATIVE_EXPIRY: u64 = 30 * 24 * 3600;
/// How often a fixed-window increment starts over when its key keeps
/// vanishing between commands (eviction), before giving up.
const MAX_ATTEMPTS: usize = 4;

/// The expiration Memcached is sent for `expiry` seconds from `now`.
fn exptime(expiry: u64, now: f64) -> u32 {
    if expiry <= MAX_RELATIVE_EXPIRY {
        expiry as u32
    } else {
        (now.ceil() as u64 + expiry).min(u64::from(u32::MAX)) as u32
    }
}

fn parse_count(raw: &[u8]) -> std::result::Result<u64, String> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("value `{}` is not a count", String::from_utf8_lossy(raw)))
}

fn is_key_exists(err: &MemcacheError) -> bool {
    matches!(err, MemcacheError::CommandError(CommandError::KeyExists))
}

/// Rate-limit storage on one or several Memcached servers (binary protocol).
///
/// See the [module docs](crate::memcached) for URIs, options, sharding and
/// what is exact.
///
/// ```no_run
/// use limitstore::{MemcachedStorage, Storage};
/// let storage = MemcachedStorage::new("memcached://127.0.0.1:11211").unwrap();
/// assert_eq!(storage.incr("k", 60, false, 1).unwrap(), 1);
/// assert!(storage.get_expiry("k").unwrap() > 0.0);
/// ```
pub struct MemcachedStorage {
    servers: Vec<Server>,
    /// Rendezvous seeds, one per server (the hash of its name).
    seeds: Vec<u64>,
    config: Arc<MemcachedConfig>,
}

impl MemcachedStorage {
    /// Builds a storage from a URI string (options from its query string).
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options (the options win over
    /// the URI's query string). Does not connect.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let mut merged = options.clone();
        for (k, v) in &uri.query {
            merged.insert_default(k, v.as_str());
        }
        let config = Arc::new(MemcachedConfig::parse(uri, &merged)?);
        let servers = config
            .targets
            .iter()
            .map(|t| Server::new(t.clone(), config.clone()))
            .collect::<Result<Vec<_>>>()?;
        let seeds = config
            .targets
            .iter()
            .map(|t| xxh3_64(t.name().as_bytes()))
            .collect();
        Ok(MemcachedStorage {
            servers,
            seeds,
            config,
        })
    }

    /// The servers, as `host:port` or socket path, in URI order.
    pub fn servers(&self) -> Vec<String> {
        self.servers.iter().map(Server::name).collect()
    }

    /// The server that holds `key` (and its companion and sliding buckets).
    pub fn server_for(&self, key: &str) -> String {
        self.route(key).name()
    }

    /// The key prefix (empty unless option `key_prefix` is given).
    pub fn key_prefix(&self) -> &str {
        &self.config.key_prefix
    }

    pub(crate) fn route(&self, key: &str) -> &Server {
        if self.servers.len() == 1 {
            return &self.servers[0];
        }
        let best = self
            .seeds
            .iter()
            .enumerate()
            .max_by_key(|&(i, seed)| (xxh3_64_with_seed(key.as_bytes(), *seed), usize::MAX - i))
            .map_or(0, |(i, _)| i);
        &self.servers[best]
    }

    /// The Memcached key of a logical key: the prefixed key itself when
    /// Memcached accepts it, its hash otherwise.
    pub(crate) fn mkey(&self, key: &str) -> String {
        let full = format!("{}{key}", self.config.key_prefix);
        let valid = !full.is_empty()
            && full.len() <= MAX_MEMCACHED_KEY
            && full.bytes().all(|b| b > b' ' && b != 0x7f);
        if valid {
            full
        } else {
            format!("limitstore/h/{:032x}", xxh3_128(full.as_bytes()))
        }
    }

    /// `add`, then `increment`: the new count of `key` (a Memcached key on
    /// `server`). A new item gets expiration `ttl`; `on_create` runs after
    /// this call created the item.
    fn add_or_increment(
        &self,
        server: &Server,
        key: &str,
        ttl: u32,
        amount: u64,
        on_create: impl Fn() -> Result<()>,
    ) -> Result<(u64, bool)> {
        for _ in 0..MAX_ATTEMPTS {
            match server.run(|c| c.add(key, amount, ttl)) {
                Ok(()) => {
                    on_create()?;
                    return Ok((amount, true));
                }
                Err(e) if is_key_exists(&e) => {}
                Err(e) => return Err(server.error_as(server::BACKEND, e)),
            }
            let count = server.call(|c| c.increment(key, amount))?;
            if count != 0 {
                return Ok((count, false));
            }
            // The item expired after the `add`, and the binary `increment`
            // re-created it as 0 with no expiry: give it one, then count.
            server.call(|c| c.touch(key, ttl))?;
            on_create()?;
            let count = server.call(|c| c.increment(key, amount))?;
            if count != 0 {
                return Ok((count, true));
            }
        }
        Err(Error::new(
            ErrorKind::ConcurrentUpdate,
            format!("memcached: `{key}` vanished {MAX_ATTEMPTS} times while being incremented"),
        ))
    }

    /// The counts of two keys on one server, read in one round trip.
    fn get_pair(&self, server: &Server, a: &str, b: &str) -> Result<(u64, u64)> {
        let values = server.read(|c| c.gets::<Vec<u8>>(&[a, b]))?;
        let count = |k: &str| -> Result<u64> {
            values.get(k).map_or(Ok(0), |raw| {
                parse_count(raw).map_err(|m| Error::storage_msg(server::BACKEND, m))
            })
        };
        Ok((count(a)?, count(b)?))
    }

    fn sliding_state(&self, key: &str, expiry: u64, at: f64) -> Result<(SlidingWindow, String)> {
        let server = self.route(key);
        let (previous, current) = TimestampedSlidingWindow::sliding_window_keys(key, expiry, at);
        let (previous, current) = (self.mkey(&previous), self.mkey(&current));
        let (previous_count, current_count) = self.get_pair(server, &previous, &current)?;
        let remaining = TimestampedSlidingWindow::window_remaining(expiry, at);
        let window = SlidingWindow {
            previous_count,
            previous_expires_in: if previous_count == 0 { 0.0 } else { remaining },
            current_count,
            current_expires_in: remaining + expiry as f64,
        };
        Ok((window, current))
    }
}

impl std::fmt::Debug for MemcachedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStorage")
            .field("servers", &self.servers)
            .field("config", &self.config)
            .finish()
    }
}

impl Storage for MemcachedStorage {
    fn incr(&self, key: &str, expiry: u64, elastic_expiry: bool, amount: u64) -> Result<u64> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        let server = self.route(key);
        let counter = self.mkey(key);
        let companion = self.mkey(&format!("{key}/expires"));
        let at = wall_now();
        let ttl = exptime(expiry, at);
        let end = format!("{:.6}", at + expiry as f64);
        let write_end = || server.call(|c| c.set(&companion, end.as_str(), ttl));
        let (count, created) = self.add_or_increment(server, &counter, ttl, amount, write_end)?;
        if elastic_expiry && !created {
            server.call(|c| c.touch(&counter, ttl))?;
            write_end()?;
        }
        Ok(count)
    }

    fn get(&self, key: &str) -> Result<u64> {
        validate_key(key)?;
        let server = self.route(key);
        let counter = self.mkey(key);
        match server.read(|c| c.get::<Vec<u8>>(&counter))? {
            None => Ok(0),
            Some(raw) => parse_count(&raw).map_err(|m| Error::storage_msg(server::BACKEND, m)),
        }
    }

    fn get_expiry(&self, key: &str) -> Result<f64> {
        validate_key(key)?;
        let server = self.route(key);
        let companion = self.mkey(&format!("{key}/expires"));
        let Some(raw) = server.read(|c| c.get::<Vec<u8>>(&companion))? else {
            return Ok(0.0);
        };
        let end = std::str::from_utf8(&raw)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite())
            .ok_or_else(|| {
                Error::storage_msg(
                    server::BACKEND,
                    format!(
                        "`{companion}` holds `{}`, not a timestamp",
                        String::from_utf8_lossy(&raw)
                    ),
                )
            })?;
        // Memcached may keep the companion a tick longer than the window.
        Ok(if end <= wall_now() { 0.0 } else { end })
    }

    fn check(&self) -> bool {
        self.servers.iter().all(|s| s.read(|c| c.version()).is_ok())
    }

    fn reset(&self) -> Result<Option<u64>> {
        if !self.config.flush_on_reset {
            return Err(Error::configuration(
                "memcached cannot list keys, so reset is not supported; option \
                 `flush_on_reset=true` makes it flush every server instead \
                 (deleting all their items, also those of other applications)",
            ));
        }
        for server in &self.servers {
            server.call(|c| c.flush())?;
        }
        Ok(None)
    }

    fn clear(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let server = self.route(key);
        let counter = self.mkey(key);
        let companion = self.mkey(&format!("{key}/expires"));
        server.call(|c| c.delete(&counter))?;
        server.call(|c| c.delete(&companion))?;
        Ok(())
    }

    fn sliding_window(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        Some(self)
    }
}

impl SlidingWindowCounterSupport for MemcachedStorage {
    fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        Ok(self.sliding_state(key, expiry, wall_now())?.0)
    }

    fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire(key, limit, MAX_AMOUNT, expiry, amount)? {
            return Ok(false);
        }
        let server = self.route(key);
        let at = wall_now();
        let (window, current) = self.sliding_state(key, expiry, at)?;
        if window.weighted_count(expiry).floor() as u64 + amount > limit {
            return Ok(false);
        }
        let ttl = exptime(2 * expiry + 1, at);
        let (count, _) = self.add_or_increment(server, &current, ttl, amount, || Ok(()))?;
        // Check again with the count this increment returned: concurrent
        // acquires each get a distinct count, so none is admitted beyond
        // the limit.
        let elapsed = (wall_now() - at).max(0.0);
        let after = SlidingWindow {
            previous_expires_in: (window.previous_expires_in - elapsed).max(0.0),
            current_count: count,
            ..window
        };
        if after.weighted_count(expiry).floor() as u64 > limit {
            server.call(|c| c.decrement(&current, amount))?;
            return Ok(false);
        }
        Ok(true)
    }

    fn clear_sliding_window(&self, key: &str, expiry: u64) -> Result<()> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        let server = self.route(key);
        let (previous, current) =
            TimestampedSlidingWindow::sliding_window_keys(key, expiry, wall_now());
        let (previous, current) = (self.mkey(&previous), self.mkey(&current));
        server.call(|c| c.delete(&previous))?;
        server.call(|c| c.delete(&current))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_beyond_30_days_are_absolute() {
        assert_eq!(exptime(60, 1000.5), 60);
        assert_eq!(
            exptime(MAX_RELATIVE_EXPIRY, 1000.5),
            MAX_RELATIVE_EXPIRY as u32
        );
        assert_eq!(
            exptime(MAX_RELATIVE_EXPIRY + 1, 1000.5),
            (1001 + MAX_RELATIVE_EXPIRY + 1) as u32
        );
        assert_eq!(exptime(crate::MAX_EXPIRY, 4.0e9), u32::MAX);
    }

    #[test]
    fn keys_memcached_refuses_are_hashed() {
        let s = MemcachedStorage::new("memcached://127.0.0.1:1?key_prefix=p:").unwrap();
        assert_eq!(s.mkey("LIMITER/a/1"), "p:LIMITER/a/1");
        for bad in ["a b", "tab\t", &"x".repeat(300)] {
            let k = s.mkey(bad);
            assert!(k.starts_with("limitstore/h/") && k.len() == 45, "{k}");
            assert_eq!(k, s.mkey(bad));
        }
        assert_ne!(s.mkey("a b"), s.mkey("a  b"));
        let s = MemcachedStorage::new("memcached://127.0.0.1:1").unwrap();
        assert!(s.mkey("").starts_with("limitstore/h/"));
    }

    #[test]
    fn routing_is_stable_and_order_independent() {
        let a = MemcachedStorage::new("memcached://h1:1,h2:2,h3:3").unwrap();
        let b = MemcachedStorage::new("memcached://h3:3,h1:1,h2:2").unwrap();
        let mut used = std::collections::HashSet::new();
        for i in 0..300 {
            let key = format!("LIMITER/k/{i}");
            assert_eq!(a.server_for(&key), b.server_for(&key));
            used.insert(a.server_for(&key));
        }
        assert_eq!(used.len(), 3);
        // Dropping a server moves only its own keys.
        let c = MemcachedStorage::new("memcached://h1:1,h2:2").unwrap();
        for i in 0..300 {
            let key = format!("LIMITER/k/{i}");
            if a.server_for(&key) != "h3:3" {
                assert_eq!(a.server_for(&key), c.server_for(&key));
            }
        }
    }

    #[test]
    fn counts_parse_with_padding() {
        assert_eq!(parse_count(b"12"), Ok(12));
        assert_eq!(parse_count(b"9 "), Ok(9));
        assert!(parse_count(b"x").is_err());
    }
}
