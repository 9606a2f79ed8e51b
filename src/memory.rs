//! The in-process storage engine (`memory://`).
//!
//! Three sharded tables hold the three kinds of state:
//! fixed-window counters, moving-window rings and sliding-window cells. Keys
//! are hashed once with a per-storage random seed (xxh3, 128 bits) and only
//! the hash is kept, so a key costs the same whatever its length. Each table
//! is bounded by a TLRU policy: `max_entries` per table, an entry's time to
//! live is its window, expired entries go first, then least recently used ones.
//!
//! Sliding window counters are epoch-aligned like `limits`' memory storage
//! (window `n` covers `[n * expiry, (n + 1) * expiry)` in Unix time), and the
//! two buckets live in one cell under the key itself, so
//! [`Storage::clear`] removes them too.

#[cfg(feature = "async")]
mod aio;
mod cell;
mod hot;
mod ring;
mod stripe;
mod table;

pub(crate) use table::{shards_for, Key, Shards};

use std::sync::Arc;
use std::time::Duration;

use xxhash_rust::xxh3::{xxh3_128_with_seed, Xxh3};

use crate::clock::{Clock, DefaultClock};
use crate::error::{Error, Result};
use crate::storage::{
    validate_acquire, validate_acquire_len, validate_amount, validate_expiry, validate_key,
    validate_key_len, validate_limit, LimitKey, MovingWindow, MovingWindowSupport, Options,
    SlidingWindow, SlidingWindowCounterSupport, Storage, StorageUri, MAX_MOVING_WINDOW_LIMIT,
};
use cell::{FixedWindowCell, SlidingWindowCell, MAX_SLIDING_LIMIT};
use hot::{contended, Blocks};
use ring::Ring;
use stripe::thread_stripe;
use table::{Expiring, Table};

const NANOS: u64 = 1_000_000_000;
const NANOS_PER_MS: u64 = 1_000_000;

/// A key's 128-bit hash under `seed`: what the engine (and a write-behind
/// node) keeps of it. 128 bits because only the hash is kept, so two keys
/// whose hashes collide would share a counter: with a random seed per
/// storage, a collision among 2^30 keys has odds of about 2^-69.
#[inline]
pub(crate) fn hash_str(seed: u64, key: &str) -> u128 {
    xxh3_128_with_seed(key.as_bytes(), seed)
}

/// The hash [`hash_str`] gives the key's string, from its parts: gathered
/// into a buffer of the thread's when they fit in 128 bytes, streamed
/// otherwise; either way the same seeded xxh3-128 of the same bytes, so a
/// limiter and a caller holding the key string reach the same state.
///
/// Each thread keeps the last key it hashed this way with its seed and
/// hash, so a hit on the key of the thread's previous hit (a hot key)
/// compares the parts with those bytes instead of gathering and hashing
/// them again. The bytes are compared only when the parts lie where the
/// last key's did (see [`LimitKey::place`]), so a hit on another key
/// pays one comparison of numbers.
#[inline]
pub(crate) fn hash_parts(seed: u64, key: &LimitKey<'_>) -> u128 {
    LAST_HASHED
        .try_with(|last| match last.try_borrow_mut() {
            Ok(mut last) => last.hash(seed, key),
            // Only a hash taken inside another could find it borrowed.
            Err(_) => hash_fresh(seed, key, &mut [0u8; 128]).0,
        })
        // The thread is being torn down.
        .unwrap_or_else(|_| hash_fresh(seed, key, &mut [0u8; 128]).0)
}

/// The hash of `key`'s parts under `seed`, gathered into `buf` when they
/// fit (then also their length), streamed otherwise.
#[inline]
fn hash_fresh(seed: u64, key: &LimitKey<'_>, buf: &mut [u8; 128]) -> (u128, Option<usize>) {
    match key.gather(buf) {
        Some(bytes) => (xxh3_128_with_seed(bytes, seed), Some(bytes.len())),
        None => {
            let mut hasher = Xxh3::with_seed(seed);
            key.pieces().for_each(|piece| hasher.update(piece));
            (hasher.digest128(), None)
        }
    }
}

/// The last key a thread hashed from its parts (see [`hash_parts`]).
struct LastHashed {
    seed: u64,
    /// [`LimitKey::place`] of the key.
    place: u64,
    /// The key's bytes are `bytes[..len]`; `None`: no key kept.
    len: Option<usize>,
    bytes: [u8; 128],
    hash: u128,
}

impl LastHashed {
    #[inline]
    fn hash(&mut self, seed: u64, key: &LimitKey<'_>) -> u128 {
        let place = key.place();
        if let Some(len) = self.len {
            if self.place == place && self.seed == seed && key.matches(&self.bytes[..len]) {
                return self.hash;
            }
        }
        let (hash, len) = hash_fresh(seed, key, &mut self.bytes);
        (self.seed, self.place, self.len, self.hash) = (seed, place, len, hash);
        hash
    }
}

std::thread_local! {
    static LAST_HASHED: std::cell::RefCell<LastHashed> = const {
        std::cell::RefCell::new(LastHashed { seed: 0, place: 0, len: None, bytes: [0; 128], hash: 0 })
    };
}

/// Entries per table when no bound is given.
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 20;

impl Expiring for FixedWindowCell {
    #[inline]
    fn expires_at(&self, _now: u64) -> u64 {
        self.expires_at_ms().saturating_mul(NANOS_PER_MS)
    }
}

impl Expiring for Ring {
    fn expires_at(&self, _now: u64) -> u64 {
        self.expires_at_ms().saturating_mul(NANOS_PER_MS)
    }
}

/// A sliding window cell with what it needs to know its own time to live.
#[derive(Debug)]
struct SlidingEntry {
    cell: SlidingWindowCell,
    /// Window length in nanoseconds.
    window: u64,
    /// Unix time of the clock's origin in nanoseconds (aligns windows to the epoch).
    unix_base: u64,
}

impl Expiring for SlidingEntry {
    fn expires_at(&self, now: u64) -> u64 {
        self.cell
            .expires_at(self.unix_base.saturating_add(now), self.window)
            .saturating_sub(self.unix_base)
    }
}

/// The in-process storage: on the hit path, atomic counters under a shard's
/// shared lock taken in the thread's own lock slot; bounded in memory;
/// supporting every strategy.
///
/// ```
/// use limitstore::{FakeClock, MemoryStorage, Storage};
/// use std::time::Duration;
///
/// let clock = FakeClock::new();
/// let storage = MemoryStorage::builder().clock(clock.clone()).max_entries(10_000).build();
/// assert_eq!(storage.incr("k", 10, false, 1).unwrap(), 1);
/// assert_eq!(storage.incr("k", 10, false, 1).unwrap(), 2);
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(storage.get("k").unwrap(), 0);
/// ```
#[derive(Debug)]
pub struct MemoryStorage<C: Clock = DefaultClock> {
    clock: C,
    seed: u64,
    unix_base: u64,
    counters: Table<FixedWindowCell>,
    windows: Table<Ring>,
    sliding: Table<SlidingEntry>,
    /// Whether hot counters take lease blocks (see the builder).
    leases: bool,
    /// This storage's lease blocks; `counters` gives a block back as its
    /// counter leaves the table.
    blocks: Arc<Blocks>,
}

/// Builds a [`MemoryStorage`].
#[derive(Debug, Clone)]
pub struct MemoryStorageBuilder<C: Clock = DefaultClock> {
    clock: C,
    max_entries: usize,
    /// `None`: [`shards_for`] the table size.
    shards: Option<usize>,
    leases: bool,
}

impl MemoryStorageBuilder<DefaultClock> {
    fn new() -> Self {
        MemoryStorageBuilder {
            clock: DefaultClock::new(),
            max_entries: DEFAULT_MAX_ENTRIES,
            shards: None,
            leases: true,
        }
    }
}

impl<C: Clock> MemoryStorageBuilder<C> {
    /// Most keys each table (counters, moving windows, sliding windows) keeps.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// Number of shards (rounded to a power of two). Defaults to four per
    /// hardware thread, or more for a large `max_entries`, so that a shard
    /// holds at most 8,192 entries (up to 1,024 shards, about a kilobyte
    /// each): a shard that is full or grows holds up the hits on its keys
    /// while it makes room.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1));
        self
    }

    /// The clock to read time from (for example a [`FakeClock`](crate::FakeClock) in tests).
    pub fn clock<C2: Clock>(self, clock: C2) -> MemoryStorageBuilder<C2> {
        MemoryStorageBuilder {
            clock,
            max_entries: self.max_entries,
            shards: self.shards,
            leases: self.leases,
        }
    }

    /// Whether a fixed-window counter that several threads hit at once
    /// takes a block of per-thread leases (on by default; see the README's
    /// "The memory engine"). Off, every hit goes to the counter's shared
    /// word: the same decisions, one cache line written by every thread.
    pub fn hot_leases(mut self, on: bool) -> Self {
        self.leases = on;
        self
    }

    /// Builds the storage.
    pub fn build(self) -> MemoryStorage<C> {
        let seed = {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0x6c69_6d69_7473u64)
        };
        let unix_base = (self.clock.unix_origin().max(0.0) * NANOS as f64) as u64;
        let blocks = Arc::new(Blocks::new(stripe::stripes()));
        let retired = Arc::clone(&blocks);
        let shards = self.shards.unwrap_or_else(|| shards_for(self.max_entries));
        MemoryStorage {
            seed,
            unix_base,
            counters: Table::new(self.max_entries, shards)
                .retiring(move |cell: &FixedWindowCell| cell.retire(&retired)),
            blocks,
            windows: Table::new(self.max_entries, shards),
            sliding: Table::new(self.max_entries, shards),
            clock: self.clock,
            leases: self.leases,
        }
    }
}

impl MemoryStorage<DefaultClock> {
    /// A storage with the real clock and default bounds.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts building a storage.
    pub fn builder() -> MemoryStorageBuilder<DefaultClock> {
        MemoryStorageBuilder::new()
    }

    /// Builds a storage from a `memory://` URI. Options: `max_entries`
    /// (per table) and `shards`.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        if !uri.locations.is_empty() || uri.path.is_some() {
            return Err(Error::configuration(format!(
                "`{}`: a memory storage takes no host or path",
                uri.redacted()
            )));
        }
        options.reject_unknown("memory", &["max_entries", "shards"])?;
        let mut builder = Self::builder();
        if let Some(n) = options.get_u64("max_entries")? {
            if n == 0 || n > 1 << 40 {
                return Err(Error::configuration(
                    "option `max_entries` must be between 1 and 2^40",
                ));
            }
            builder = builder.max_entries(n as usize);
        }
        if let Some(n) = options.get_u64("shards")? {
            if n == 0 || n > 1 << 16 {
                return Err(Error::configuration(
                    "option `shards` must be between 1 and 65536",
                ));
            }
            builder = builder.shards(n as usize);
        }
        Ok(builder.build())
    }
}

impl Default for MemoryStorage<DefaultClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryStorage<C> {
    #[inline]
    fn hash(&self, key: &str) -> u128 {
        hash_str(self.seed, key)
    }

    #[inline]
    fn hash_parts(&self, key: &LimitKey<'_>) -> u128 {
        hash_parts(self.seed, key)
    }

    /// The clock this storage reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Entries held across the three tables, including expired ones not yet
    /// reclaimed.
    pub fn len(&self) -> usize {
        self.counters.len() + self.windows.len() + self.sliding.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries each of the three tables holds.
    pub fn max_entries(&self) -> usize {
        self.counters.capacity()
    }

    /// Reclaims every expired entry now, one shard at a time (expired entries
    /// are otherwise reclaimed when a full shard needs room). Returns how
    /// many were dropped.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        self.counters.purge_expired(now)
            + self.windows.purge_expired(now)
            + self.sliding.purge_expired(now)
    }

    /// Checks a fixed-window hit's arguments, then applies `hit` to the
    /// counter at `key` (created if absent) with the key's hash, the clock's
    /// milliseconds and the window's; an overflow becomes an invalid argument.
    #[inline]
    fn hit_counter<R>(
        &self,
        key: impl std::fmt::Display,
        hash: u128,
        expiry: u64,
        amount: u64,
        hit: impl FnOnce(&FixedWindowCell, u128, u64, u64) -> std::result::Result<R, cell::Overflow>,
    ) -> Result<R> {
        validate_expiry(expiry)?;
        validate_amount(amount)?;
        let now = self.clock.now();
        let (now_ms, window_ms) = (now / NANOS_PER_MS, expiry * 1000);
        self.counters
            .upsert(hash, now, FixedWindowCell::new, |cell| {
                hit(cell, hash, now_ms, window_ms)
            })
            .map_err(|_| {
                Error::invalid_argument(format!("counter `{key}` would overflow adding {amount}"))
            })
    }

    /// `incr_within` on the counter of `hash` (`key` names it in errors);
    /// `then(cell, now_ms, admitted)` answers, still holding the counter.
    #[inline]
    #[allow(clippy::too_many_arguments)] // a hit's arguments, in registers
    fn hit_within<R>(
        &self,
        key: impl std::fmt::Display,
        hash: u128,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
        then: impl FnOnce(&FixedWindowCell, u64, bool) -> R,
    ) -> Result<R> {
        let stripe = thread_stripe();
        self.hit_counter(
            key,
            hash,
            expiry,
            amount,
            |cell, hash, now_ms, window_ms| {
                let hit = cell.incr_within(
                    &self.blocks,
                    stripe,
                    now_ms,
                    window_ms,
                    elastic_expiry,
                    amount,
                    limit,
                )?;
                if let Some(shared) = hit.shared.filter(|_| self.leases) {
                    if contended(hash as u64, now_ms, shared, amount) {
                        cell.make_hot(&self.blocks, now_ms);
                    }
                }
                Ok(then(cell, now_ms, hit.admitted))
            },
        )
    }

    /// `incr_within` on the counter of `hash`, answering the counter as the
    /// hit leaves it as well: one lookup where `incr_within`, `get` and
    /// `get_expiry` would make three.
    #[cfg(feature = "async")]
    fn hit_and_window(
        &self,
        key: impl std::fmt::Display,
        hash: u128,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, crate::storage::FixedWindow)> {
        self.hit_within(
            key,
            hash,
            expiry,
            elastic_expiry,
            amount,
            limit,
            |cell, now_ms, admitted| {
                let window = crate::storage::FixedWindow {
                    count: cell.get(&self.blocks, now_ms),
                    expires_at: cell
                        .expiry_ms(now_ms)
                        .map_or(0.0, |at| self.clock.to_unix(at * NANOS_PER_MS)),
                };
                (admitted, window)
            },
        )
    }

    /// [`Storage::incr_within`], answering the counter's count and expiry
    /// after the hit as `get` and `get_expiry` would, from one lookup (what
    /// the asynchronous limiters' `decide` asks for).
    #[cfg(feature = "async")]
    pub(crate) fn incr_within_and_window(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, crate::storage::FixedWindow)> {
        validate_key(key)?;
        let hash = self.hash(key);
        self.hit_and_window(key, hash, expiry, elastic_expiry, amount, limit)
    }

    /// [`incr_within_and_window`](Self::incr_within_and_window) on the key
    /// given as its parts.
    #[cfg(feature = "async")]
    pub(crate) fn incr_within_and_window_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, crate::storage::FixedWindow)> {
        validate_key_len(key.len())?;
        let hash = self.hash_parts(&key);
        self.hit_and_window(key, hash, expiry, elastic_expiry, amount, limit)
    }

    /// A moving-window acquire on the ring of `hash`, arguments checked.
    fn acquire_ring(&self, hash: u128, limit: u64, expiry: u64, amount: u64) -> bool {
        self.acquire_ring_then(hash, limit, expiry, amount, |_, _, acquired| acquired)
    }

    /// [`acquire_ring`](Self::acquire_ring); `then(ring, now, acquired)`
    /// answers, still holding the ring.
    fn acquire_ring_then<R>(
        &self,
        hash: u128,
        limit: u64,
        expiry: u64,
        amount: u64,
        then: impl FnOnce(&Ring, u64, bool) -> R,
    ) -> R {
        let now = self.clock.now();
        let (now_ms, expiry_ms) = (now / NANOS_PER_MS, expiry * 1000);
        self.windows.upsert_rebuild(
            hash,
            now,
            |ring| ring.capacity() < limit,
            |old| match old {
                Some(ring) => ring.grown(limit as usize),
                None => Ring::new(limit as usize),
            },
            |ring| then(ring, now, ring.acquire(now_ms, expiry_ms, limit, amount)),
        )
    }

    /// The moving window of `ring` (absent: empty) at clock time `now`.
    fn moving_window_of(
        &self,
        ring: Option<&Ring>,
        now: u64,
        limit: u64,
        expiry: u64,
    ) -> MovingWindow {
        let (count, oldest) = ring.map_or((0, None), |ring| {
            ring.window(now / NANOS_PER_MS, expiry * 1000, limit)
        });
        let start = oldest.map_or(self.clock.to_unix(now), |ms| {
            self.clock.to_unix(ms * NANOS_PER_MS)
        });
        MovingWindow { start, count }
    }

    /// A sliding-window acquire on the cell of `hash`, arguments checked.
    fn acquire_sliding(&self, hash: u128, limit: u64, expiry: u64, amount: u64) -> bool {
        self.acquire_sliding_then(hash, limit, expiry, amount, |_, _, acquired| acquired)
    }

    /// [`acquire_sliding`](Self::acquire_sliding); `then(cell, aligned
    /// now, acquired)` answers, still holding the cell.
    fn acquire_sliding_then<R>(
        &self,
        hash: u128,
        limit: u64,
        expiry: u64,
        amount: u64,
        then: impl FnOnce(&SlidingWindowCell, u64, bool) -> R,
    ) -> R {
        let window = expiry_nanos(expiry);
        let now = self.clock.now();
        let aligned = self.sliding_now(now);
        self.sliding.upsert(
            hash,
            now,
            || SlidingEntry {
                cell: SlidingWindowCell::new(),
                window,
                unix_base: self.unix_base,
            },
            |e| {
                then(
                    &e.cell,
                    aligned,
                    e.cell.acquire(aligned, window, limit, amount),
                )
            },
        )
    }

    /// The sliding window counters of `cell` (absent: empty) at
    /// epoch-aligned time `aligned`.
    fn sliding_window_of(
        cell: Option<&SlidingWindowCell>,
        aligned: u64,
        expiry: u64,
    ) -> SlidingWindow {
        let window = expiry_nanos(expiry);
        let state = cell.map_or(
            cell::SlidingState {
                previous: 0,
                current: 0,
                elapsed: aligned % window,
            },
            |cell| cell.get(aligned, window),
        );
        let remaining = Duration::from_nanos(window - state.elapsed).as_secs_f64();
        SlidingWindow {
            previous_count: state.previous,
            previous_expires_in: if state.previous == 0 { 0.0 } else { remaining },
            current_count: state.current,
            current_expires_in: remaining + expiry as f64,
        }
    }

    /// [`MovingWindowSupport::acquire_entry`], answering the window as it
    /// stands after the acquire as `get_moving_window` would, from one
    /// lookup (what the asynchronous limiters' `decide` asks for).
    #[cfg(feature = "async")]
    pub(crate) fn acquire_entry_and_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, MovingWindow)> {
        if !validate_acquire(key, limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)? {
            return Ok((false, self.get_moving_window(key, limit, expiry)?));
        }
        Ok(self.ring_and_window(self.hash(key), limit, expiry, amount))
    }

    /// [`acquire_entry_and_window`](Self::acquire_entry_and_window) on the
    /// key given as its parts.
    #[cfg(feature = "async")]
    pub(crate) fn acquire_entry_and_window_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, MovingWindow)> {
        if !validate_acquire_len(key.len(), limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)? {
            return key.with_str(|key| Ok((false, self.get_moving_window(key, limit, expiry)?)));
        }
        Ok(self.ring_and_window(self.hash_parts(&key), limit, expiry, amount))
    }

    #[cfg(feature = "async")]
    fn ring_and_window(
        &self,
        hash: u128,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> (bool, MovingWindow) {
        self.acquire_ring_then(hash, limit, expiry, amount, |ring, now, acquired| {
            (
                acquired,
                self.moving_window_of(Some(ring), now, limit, expiry),
            )
        })
    }

    /// [`SlidingWindowCounterSupport::acquire_sliding_window_entry`],
    /// answering the counters as they stand after the acquire as
    /// `get_sliding_window` would, from one lookup.
    #[cfg(feature = "async")]
    pub(crate) fn acquire_sliding_window_entry_and_window(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, SlidingWindow)> {
        if !validate_acquire(key, limit, MAX_SLIDING_LIMIT, expiry, amount)? {
            return Ok((false, self.get_sliding_window(key, expiry)?));
        }
        Ok(self.sliding_and_window(self.hash(key), limit, expiry, amount))
    }

    /// [`acquire_sliding_window_entry_and_window`](Self::acquire_sliding_window_entry_and_window)
    /// on the key given as its parts.
    #[cfg(feature = "async")]
    pub(crate) fn acquire_sliding_window_entry_and_window_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, SlidingWindow)> {
        if !validate_acquire_len(key.len(), limit, MAX_SLIDING_LIMIT, expiry, amount)? {
            return key.with_str(|key| Ok((false, self.get_sliding_window(key, expiry)?)));
        }
        Ok(self.sliding_and_window(self.hash_parts(&key), limit, expiry, amount))
    }

    #[cfg(feature = "async")]
    fn sliding_and_window(
        &self,
        hash: u128,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> (bool, SlidingWindow) {
        self.acquire_sliding_then(hash, limit, expiry, amount, |cell, aligned, acquired| {
            (
                acquired,
                Self::sliding_window_of(Some(cell), aligned, expiry),
            )
        })
    }

    fn sliding_now(&self, now: u64) -> u64 {
        self.unix_base.saturating_add(now)
    }
}

#[inline]
fn expiry_nanos(expiry: u64) -> u64 {
    expiry.saturating_mul(NANOS)
}

impl<C: Clock> Storage for MemoryStorage<C> {
    #[inline]
    fn incr(&self, key: &str, expiry: u64, elastic_expiry: bool, amount: u64) -> Result<u64> {
        validate_key(key)?;
        self.hit_counter(
            key,
            self.hash(key),
            expiry,
            amount,
            |cell, _, now_ms, window_ms| {
                cell.incr(&self.blocks, now_ms, window_ms, elastic_expiry, amount)
            },
        )
    }

    #[inline]
    fn incr_within(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        validate_key(key)?;
        self.hit_within(
            key,
            self.hash(key),
            expiry,
            elastic_expiry,
            amount,
            limit,
            |_, _, admitted| admitted,
        )
    }

    #[inline]
    fn incr_within_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<bool> {
        validate_key_len(key.len())?;
        self.hit_within(
            key,
            self.hash_parts(&key),
            expiry,
            elastic_expiry,
            amount,
            limit,
            |_, _, admitted| admitted,
        )
    }

    fn get(&self, key: &str) -> Result<u64> {
        validate_key(key)?;
        let now = self.clock.now();
        Ok(self
            .counters
            .read(self.hash(key), now, |c| {
                c.get(&self.blocks, now / NANOS_PER_MS)
            })
            .unwrap_or(0))
    }

    fn get_expiry(&self, key: &str) -> Result<f64> {
        validate_key(key)?;
        let now = self.clock.now();
        Ok(self
            .counters
            .read(self.hash(key), now, |c| c.expiry_ms(now / NANOS_PER_MS))
            .flatten()
            .map_or(0.0, |at| self.clock.to_unix(at * NANOS_PER_MS)))
    }

    fn check(&self) -> bool {
        true
    }

    fn reset(&self) -> Result<Option<u64>> {
        let now = self.clock.now();
        let n = self.counters.clear(now) + self.windows.clear(now) + self.sliding.clear(now);
        Ok(Some(n as u64))
    }

    fn clear(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let h = self.hash(key);
        self.counters.remove(h);
        self.windows.remove(h);
        self.sliding.remove(h);
        Ok(())
    }

    fn unix_now(&self) -> f64 {
        self.clock.unix_now()
    }

    fn moving_window(&self) -> Option<&dyn MovingWindowSupport> {
        Some(self)
    }

    fn sliding_window(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        Some(self)
    }
}

impl<C: Clock> MovingWindowSupport for MemoryStorage<C> {
    fn acquire_entry(&self, key: &str, limit: u64, expiry: u64, amount: u64) -> Result<bool> {
        if !validate_acquire(key, limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)? {
            return Ok(false);
        }
        Ok(self.acquire_ring(self.hash(key), limit, expiry, amount))
    }

    fn acquire_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire_len(key.len(), limit, MAX_MOVING_WINDOW_LIMIT, expiry, amount)? {
            return Ok(false);
        }
        Ok(self.acquire_ring(self.hash_parts(&key), limit, expiry, amount))
    }

    fn get_moving_window(&self, key: &str, limit: u64, expiry: u64) -> Result<MovingWindow> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        validate_limit(limit, MAX_MOVING_WINDOW_LIMIT)?;
        let now = self.clock.now();
        let window = self.windows.read(self.hash(key), now, |ring| {
            self.moving_window_of(Some(ring), now, limit, expiry)
        });
        Ok(window.unwrap_or_else(|| self.moving_window_of(None, now, limit, expiry)))
    }
}

impl<C: Clock> SlidingWindowCounterSupport for MemoryStorage<C> {
    fn get_sliding_window(&self, key: &str, expiry: u64) -> Result<SlidingWindow> {
        validate_key(key)?;
        validate_expiry(expiry)?;
        let now = self.clock.now();
        let aligned = self.sliding_now(now);
        let window = self.sliding.read(self.hash(key), now, |e| {
            Self::sliding_window_of(Some(&e.cell), aligned, expiry)
        });
        Ok(window.unwrap_or_else(|| Self::sliding_window_of(None, aligned, expiry)))
    }

    fn acquire_sliding_window_entry(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire(key, limit, MAX_SLIDING_LIMIT, expiry, amount)? {
            return Ok(false);
        }
        Ok(self.acquire_sliding(self.hash(key), limit, expiry, amount))
    }

    fn acquire_sliding_window_entry_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<bool> {
        if !validate_acquire_len(key.len(), limit, MAX_SLIDING_LIMIT, expiry, amount)? {
            return Ok(false);
        }
        Ok(self.acquire_sliding(self.hash_parts(&key), limit, expiry, amount))
    }

    fn clear_sliding_window(&self, key: &str, _expiry: u64) -> Result<()> {
        validate_key(key)?;
        self.sliding.remove(self.hash(key));
        Ok(())
    }
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::*;
    use crate::FakeClock;

    impl<C: Clock> MemoryStorage<C> {
        fn is_hot(&self, key: &str) -> bool {
            let now = self.clock.now();
            self.counters
                .read(self.hash(key), now, FixedWindowCell::is_hot)
                .unwrap_or(false)
        }
    }

    /// A large table gets shards of at most 8,192 entries, up to 1,024
    /// shards; a small one four per hardware thread; a shard count asked
    /// for is kept.
    #[test]
    fn shards_follow_the_table_size_unless_asked_for() {
        let shards = |s: &MemoryStorage| s.counters.shard_count();
        let default = table::default_shards();
        assert_eq!(
            shards(&MemoryStorage::builder().max_entries(1000).build()),
            default
        );
        assert_eq!(shards(&MemoryStorage::new()), default.max(128));
        let big = MemoryStorage::builder().max_entries(8 << 20).build();
        assert_eq!(shards(&big), default.max(1024));
        assert!(big.counters.capacity() / shards(&big) <= 8192);
        let huge = MemoryStorage::builder().max_entries(1 << 40).build();
        assert_eq!(shards(&huge), default.max(1024));
        let asked = MemoryStorage::builder()
            .max_entries(8 << 20)
            .shards(2)
            .build();
        assert_eq!(shards(&asked), 2);
    }

    /// A key's hash from its parts is its string's, whether the thread
    /// hashed the same key last (with the same seed or another) or not,
    /// for keys that fit the gathering buffer and longer ones.
    #[test]
    fn parts_hash_as_their_string_with_the_last_key_kept_or_not() {
        let long = "l".repeat(200);
        let ids = [["a", "b"], ["a", "c"], ["ab", ""], [long.as_str(), "b"]];
        let keys: Vec<LimitKey<'_>> = ids
            .iter()
            .flat_map(|ids| {
                [
                    LimitKey::new("LIMITER", &ids[..], "/1/1/minute"),
                    LimitKey::new("LIMITER", &ids[..1], "/1/1/minute"),
                ]
            })
            .chain([LimitKey::new("LIMITER/a", &ids[0][1..], "/1/1/minute")])
            .collect();
        for (i, seed) in [1u64, 2, 1].into_iter().enumerate() {
            for key in keys.iter().chain(keys.iter().rev()) {
                let want = hash_str(seed, &key.to_string());
                assert_eq!(hash_parts(seed, key), want, "{key} seed {seed} round {i}");
                assert_eq!(hash_parts(seed, key), want, "{key} again");
                assert_ne!(hash_parts(seed + 10, key), want, "{key} under another seed");
            }
        }
        // An identifier rewritten in place (same address, same length) is
        // another key.
        let mut id = String::from("user-1");
        for next in ["user-2", "user-1", "user-3"] {
            let place = {
                let ids = [id.as_str()];
                let before = LimitKey::new("LIMITER", &ids, "/1/1/minute");
                assert_eq!(hash_parts(7, &before), hash_str(7, &before.to_string()));
                before.place()
            };
            id.replace_range(.., next);
            let ids = [id.as_str()];
            let after = LimitKey::new("LIMITER", &ids, "/1/1/minute");
            assert_eq!(after.place(), place, "the same place");
            let want = hash_str(7, &format!("LIMITER/{next}/1/1/minute"));
            assert_eq!(hash_parts(7, &after), want);
        }
    }

    /// Hits `key` from two threads with `hit` until it is hot; then checks
    /// every hit is still counted and `clear` gives its block back.
    fn becomes_hot_and_gives_back<C: Clock>(
        storage: &MemoryStorage<C>,
        key: &str,
        hit: impl Fn(&MemoryStorage<C>, &str) -> bool + Sync,
    ) {
        make_hot(storage, key, &hit);
        assert_eq!(storage.blocks.in_use(), 1);
        // Every hit is counted, leases or not.
        let count = storage.get(key).unwrap();
        assert!(hit(storage, key));
        assert_eq!(storage.get(key).unwrap(), count + 1);
        assert_eq!(storage.incr(key, 60, false, 2).unwrap(), count + 3);
        storage.clear(key).unwrap();
        assert!(!storage.is_hot(key));
        assert_eq!(storage.blocks.in_use(), 0);
        assert_eq!(storage.get(key).unwrap(), 0);
    }

    /// Hits `key` from two threads with `hit` until it is hot.
    fn make_hot<C: Clock>(
        storage: &MemoryStorage<C>,
        key: &str,
        hit: impl Fn(&MemoryStorage<C>, &str) -> bool + Sync,
    ) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !storage.is_hot(key) {
            assert!(std::time::Instant::now() < deadline, "never became hot");
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..50_000 {
                            assert!(hit(storage, key));
                        }
                    });
                }
            });
        }
    }

    /// Each storage has its own lease blocks: a hot key of one takes none
    /// of another's, and a hot counter that leaves its table by expiring
    /// (purged, or evicted to make room) gives its block back.
    #[test]
    fn lease_blocks_belong_to_their_storage_and_come_back_when_counters_leave() {
        let clock = FakeClock::new();
        let one = MemoryStorage::builder().clock(clock.clone()).build();
        let other = MemoryStorage::builder().clock(clock.clone()).build();
        let hit = |s: &MemoryStorage<FakeClock>, key: &str| {
            s.incr_within(key, 60, false, 1, 1_000_000_000).unwrap()
        };
        make_hot(&one, "LIMITER/a/1/minute", hit);
        make_hot(&one, "LIMITER/b/1/minute", hit);
        assert_eq!((one.blocks.in_use(), other.blocks.in_use()), (2, 0));
        clock.advance(Duration::from_secs(61));
        assert_eq!(one.purge_expired(), 2);
        assert_eq!(one.blocks.in_use(), 0);

        // A full table evicts an expired hot counter for a new key.
        let small = MemoryStorage::builder()
            .clock(clock.clone())
            .max_entries(8)
            .shards(1)
            .build();
        make_hot(&small, "LIMITER/c/1/minute", hit);
        for i in 0..7 {
            small.incr(&format!("k{i}"), 3600, false, 1).unwrap();
        }
        assert_eq!(small.blocks.in_use(), 1);
        clock.advance(Duration::from_secs(61));
        small.incr("new", 3600, false, 1).unwrap();
        assert!(!small.is_hot("LIMITER/c/1/minute"));
        assert_eq!(small.blocks.in_use(), 0);
    }

    #[test]
    fn a_key_that_threads_hit_together_gets_leases_and_gives_them_back() {
        becomes_hot_and_gives_back(&MemoryStorage::new(), "LIMITER/hot/1/minute", |s, key| {
            s.incr_within(key, 60, false, 1, 1_000_000_000).unwrap()
        });
    }

    #[test]
    fn without_leases_a_key_threads_hit_together_stays_shared_and_exact() {
        let storage = MemoryStorage::builder().hot_leases(false).build();
        let key = "LIMITER/hot/1/minute";
        // Twice what made the same key hot in the test above, from 2 threads,
        // against a limit in reach: exactly the limit is admitted.
        let limit = 150_000;
        let admitted: usize = std::thread::scope(|s| {
            let hitters: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        (0..100_000)
                            .filter(|_| storage.incr_within(key, 60, false, 1, limit).unwrap())
                            .count()
                    })
                })
                .collect();
            hitters.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(!storage.is_hot(key));
        assert_eq!(admitted as u64, limit);
        assert_eq!(storage.get(key).unwrap(), 200_000);
    }

    #[cfg(feature = "async")]
    #[test]
    fn the_async_api_gets_leases_too() {
        use crate::aio::AsyncStorage;
        use std::task::{Context, Poll, Waker};

        becomes_hot_and_gives_back(&MemoryStorage::new(), "LIMITER/hot/1/minute", |s, key| {
            // The memory engine's futures are ready at their first poll.
            let mut hit = AsyncStorage::incr_within(s, key, 60, false, 1, 1_000_000_000);
            match hit.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(admitted) => admitted.unwrap(),
                Poll::Pending => panic!("a memory future was not ready"),
            }
        });
    }
}
