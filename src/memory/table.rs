//! A sharded hash table bounded by a TLRU policy.
//!
//! Keys are 128-bit hashes of the user's key. Each shard is a
//! `hashbrown::HashMap` behind a `crossbeam` `ShardedLock`; the high 64 bits
//! of the hash pick the shard. Lookups of existing keys take the shard's
//! shared lock only, and the values are atomic cells, so hits on existing
//! keys never wait for each other. A `ShardedLock` keeps one reader lock per
//! thread slot, so threads reading the same shard at a high rate do not pass
//! one reader count back and forth. Creating a key takes one shard's
//! exclusive lock (every slot's).
//!
//! Bound: each shard holds at most `max_entries / shards` entries. Inserting
//! into a full shard first drops that shard's expired entries; if none
//! expired, it evicts the least recently used eighth of the shard. The
//! entries to drop are chosen under the shard's shared lock, and only their
//! removal takes the exclusive one. Work is done one shard at a time, never
//! under a global pause; a default table has shards of at most
//! [`SHARD_ENTRIES`], so that what a shard does under its exclusive lock
//! (removing, growing) stays short. A full shard is rebuilt at its size
//! where `hashbrown` would double it only to clear tombstones.

use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::PoisonError;

use hashbrown::hash_map::Entry;
use hashbrown::HashMap;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

/// A value that knows when it stops holding anything.
pub(crate) trait Expiring {
    /// Clock nanoseconds at which the value is empty; `<= now` means expired.
    fn expires_at(&self, now: u64) -> u64;
}

/// A 128-bit key hash, stored as two words so that a bucket is aligned to
/// 8 bytes, not 16: a bucket (key, cell, recency) is then 40 bytes.
/// Write-behind nodes key their entries the same way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Key([u64; 2]);

impl Key {
    /// The high word: independent of the bits that place the key in a
    /// table, for spreading keys over other stripes.
    #[inline]
    pub(crate) fn spread(self) -> u64 {
        self.0[1]
    }
}

impl From<u128> for Key {
    #[inline]
    fn from(k: u128) -> Self {
        Key([k as u64, (k >> 64) as u64])
    }
}

impl std::hash::Hash for Key {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The low word is already a hash: the table uses it as is.
        state.write_u64(self.0[0]);
    }
}

/// Passes a [`Key`]'s low word through as the table's hash.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `Key` is hashed.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Recency is recorded at most once per this many nanoseconds per entry, so
/// a hot key's hits do not all write its recency word.
const TOUCH_GRANULARITY: u64 = 1_000_000;

/// An entry's value and when it was last used.
struct Slot<V> {
    value: V,
    touched: AtomicU64,
}

impl<V> Slot<V> {
    #[inline]
    fn touch(&self, now: u64) {
        if now.saturating_sub(self.touched.load(Ordering::Relaxed)) > TOUCH_GRANULARITY {
            self.touched.store(now, Ordering::Relaxed);
        }
    }
}

/// One shard's map.
pub(crate) type Map<V> = HashMap<Key, V, BuildHasherDefault<PassThrough>>;

/// Maps keyed by [`Key`], sharded by the key's high word, each behind a
/// `crossbeam` `ShardedLock`: a reader takes only its own thread slot's
/// lock, so readers on different threads write no common cache line. The
/// memory engine's [`Table`] and the write-behind node's entries sit on it.
pub(crate) struct Shards<V> {
    shards: Box<[ShardedLock<Map<V>>]>,
    /// `shards.len() - 1`.
    mask: usize,
}

impl<V> Shards<V> {
    /// `shards` empty shards (a power of two, at least one).
    pub(crate) fn new(shards: usize) -> Self {
        let shards = shards.clamp(1, 1 << 16).next_power_of_two();
        Shards {
            shards: (0..shards)
                .map(|_| ShardedLock::new(Map::default()))
                .collect(),
            mask: shards - 1,
        }
    }

    /// The shard of `key`.
    #[inline]
    pub(crate) fn of(&self, key: Key) -> &ShardedLock<Map<V>> {
        &self.shards[(key.spread() as usize) & self.mask]
    }

    /// Every shard, in order.
    pub(crate) fn all(&self) -> &[ShardedLock<Map<V>>] {
        &self.shards
    }

    /// Applies `f` to the value at `key` under its shard's shared lock,
    /// if present.
    #[inline]
    pub(crate) fn read<R>(&self, key: Key, f: impl FnOnce(&V) -> R) -> Option<R> {
        read(self.of(key)).get(&key).map(f)
    }

    /// Applies `f` to the value at `key` under its shard's exclusive lock,
    /// if present.
    pub(crate) fn write<R>(&self, key: Key, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        write(self.of(key)).get_mut(&key).map(f)
    }

    /// Applies `f` to the value at `key` under its shard's exclusive lock,
    /// made by `make` first if absent; `f` is told whether it was made.
    pub(crate) fn upsert<R>(
        &self,
        key: Key,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V, bool) -> R,
    ) -> R {
        let mut guard = write(self.of(key));
        let mut made = false;
        let value = guard.entry(key).or_insert_with(|| {
            made = true;
            make()
        });
        f(value, made)
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: Key) -> bool {
        read(self.of(key)).contains_key(&key)
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&self, key: Key) -> Option<V> {
        write(self.of(key)).remove(&key)
    }

    /// Keeps the entries for which `keep` holds, one shard at a time
    /// under its exclusive lock.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&Key, &mut V) -> bool) {
        for shard in self.shards.iter() {
            write(shard).retain(|k, v| keep(k, v));
        }
    }

    /// Applies `f` to every entry, one shard at a time under its exclusive lock.
    pub(crate) fn for_each_mut(&self, mut f: impl FnMut(&Key, &mut V)) {
        for shard in self.shards.iter() {
            write(shard).iter_mut().for_each(|(k, v)| f(k, v));
        }
    }

    /// Removes every entry, one shard at a time.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut g = write(shard);
            g.clear();
            g.shrink_to_fit();
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }
}

/// Called on each value as it leaves the table (see [`Table::retiring`]).
/// Unwind-safe, so that the storages holding a table are too.
type Retire<V> = Box<dyn Fn(&V) + Send + Sync + UnwindSafe + RefUnwindSafe>;

pub(crate) struct Table<V> {
    /// The shard is picked by the hash's high 64 bits.
    shards: Shards<Slot<V>>,
    retire: Retire<V>,
    shard_capacity: usize,
}

impl<V: Expiring> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("shards", &self.shards.all().len())
            .field("shard_capacity", &self.shard_capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// The default shard count: four per hardware thread, a power of two.
pub(crate) fn default_shards() -> usize {
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
    (threads * 4).next_power_of_two().clamp(1, 1024)
}

/// Most entries a shard of a default table holds, up to [`MAX_SHARDS`]
/// shards. What a full or growing shard does under its exclusive lock
/// (removing what it evicts, growing, clearing the tombstones of removed
/// entries) takes time in proportion to the shard, and hits on that shard
/// wait for it.
const SHARD_ENTRIES: usize = 8192;

/// Most shards a default table is split into. Each shard's lock takes about
/// a kilobyte whether the table holds anything or not, so tables of over
/// 8M entries get larger shards instead of more.
const MAX_SHARDS: usize = 1024;

/// The default shard count of a table of `max_entries`: four per hardware
/// thread, or more where each would otherwise hold over [`SHARD_ENTRIES`].
pub(crate) fn shards_for(max_entries: usize) -> usize {
    let small = max_entries.div_ceil(SHARD_ENTRIES).next_power_of_two();
    default_shards().max(small.min(MAX_SHARDS))
}

impl<V: Expiring> Table<V> {
    /// A table of at most `max_entries` entries over (at most) `shards`
    /// shards; fewer shards are used where each would otherwise hold fewer
    /// than 8 entries.
    pub(crate) fn new(max_entries: usize, shards: usize) -> Self {
        let max_entries = max_entries.max(1);
        let mut shards = shards.clamp(1, 1 << 16).next_power_of_two();
        while shards > 1 && max_entries / shards < 8 {
            shards /= 2;
        }
        Table {
            shards: Shards::new(shards),
            shard_capacity: (max_entries / shards).max(1),
            retire: Box::new(|_| {}),
        }
    }

    /// This table, calling `retire` on each value as it leaves (removed,
    /// cleared, purged, evicted or rebuilt), under its shard's exclusive
    /// lock: what a value holding something of its storage's gives back.
    pub(crate) fn retiring(
        mut self,
        retire: impl Fn(&V) + Send + Sync + UnwindSafe + RefUnwindSafe + 'static,
    ) -> Self {
        self.retire = Box::new(retire);
        self
    }

    #[inline]
    fn shard(&self, key: u128) -> &ShardedLock<Map<Slot<V>>> {
        self.shards.of(Key::from(key))
    }

    /// Applies `f` to the value at `key`, if present.
    #[inline]
    pub(crate) fn read<R>(&self, key: u128, now: u64, f: impl FnOnce(&V) -> R) -> Option<R> {
        let guard = read(self.shard(key));
        let slot = guard.get(&Key::from(key))?;
        slot.touch(now);
        Some(f(&slot.value))
    }

    /// Applies `f` to the value at `key`, creating it with `make` first if absent.
    #[inline]
    pub(crate) fn upsert<R>(
        &self,
        key: u128,
        now: u64,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&V) -> R,
    ) -> R {
        let shard = self.shard(key);
        {
            let guard = read(shard);
            if let Some(slot) = guard.get(&Key::from(key)) {
                slot.touch(now);
                return f(&slot.value);
            }
        }
        let mut guard = self.room(shard, Key::from(key), now);
        let slot = guard.entry(Key::from(key)).or_insert_with(|| Slot {
            value: make(),
            touched: AtomicU64::new(now),
        });
        f(&slot.value)
    }

    /// Like [`upsert`](Self::upsert), but first replaces the value with
    /// `rebuild(old)` when `stale(old)` holds (under the shard's exclusive lock).
    pub(crate) fn upsert_rebuild<R>(
        &self,
        key: u128,
        now: u64,
        stale: impl Fn(&V) -> bool,
        rebuild: impl FnOnce(Option<&V>) -> V,
        f: impl FnOnce(&V) -> R,
    ) -> R {
        let shard = self.shard(key);
        {
            let guard = read(shard);
            if let Some(slot) = guard.get(&Key::from(key)) {
                if !stale(&slot.value) {
                    slot.touch(now);
                    return f(&slot.value);
                }
            }
        }
        let mut guard = self.room(shard, Key::from(key), now);
        let slot = match guard.entry(Key::from(key)) {
            Entry::Occupied(mut occupied) => {
                if stale(&occupied.get().value) {
                    let value = rebuild(Some(&occupied.get().value));
                    let old = std::mem::replace(&mut occupied.get_mut().value, value);
                    (self.retire)(&old);
                }
                occupied.into_mut()
            }
            Entry::Vacant(vacant) => vacant.insert(Slot {
                value: rebuild(None),
                touched: AtomicU64::new(now),
            }),
        };
        slot.touch(now);
        f(&slot.value)
    }

    /// `shard`'s exclusive lock, with room made for `key` first if the
    /// shard is full and `key` is not in it. The entries to drop are chosen
    /// under the shard's shared lock, so hits on the shard go on while its
    /// entries are scanned; the exclusive lock is held only to remove them.
    fn room<'a>(
        &self,
        shard: &'a ShardedLock<Map<Slot<V>>>,
        key: Key,
        now: u64,
    ) -> ShardedLockWriteGuard<'a, Map<Slot<V>>> {
        let full = |map: &Map<Slot<V>>| !map.contains_key(&key) && map.len() >= self.shard_capacity;
        let mut guard = write(shard);
        if !full(&guard) {
            self.compact(&mut guard);
            return guard;
        }
        drop(guard);
        let victims = Victims::choose(&read(shard), now, self.shard_capacity);
        let mut guard = write(shard);
        victims.remove(&mut guard, now, &self.retire);
        if full(&guard) {
            // Other inserts filled what was freed, or hits made the chosen
            // entries recent again: choose again under the exclusive lock.
            Victims::choose(&guard, now, self.shard_capacity).remove(&mut guard, now, &self.retire);
        }
        self.compact(&mut guard);
        guard
    }

    /// Rebuilds a shard at its size where the next insert would otherwise
    /// double it only because removed entries left tombstones. `hashbrown`
    /// clears tombstones in place only while the map is at most half of its
    /// capacity; fuller, it doubles the buckets, so a shard bounded at over
    /// half of its buckets would take twice the memory its bound needs once
    /// keys come and go.
    fn compact(&self, map: &mut Map<Slot<V>>) {
        if map.len() < map.capacity() {
            return; // room without a rehash
        }
        let full = full_capacity(map);
        if self.shard_capacity < full && map.len() >= full / 2 {
            let mut fresh = Map::with_capacity_and_hasher(self.shard_capacity, Default::default());
            fresh.extend(map.drain());
            *map = fresh;
        }
    }

    /// Removes `key`; returns whether it was present.
    pub(crate) fn remove(&self, key: u128) -> bool {
        let removed = write(self.shard(key)).remove(&Key::from(key));
        if let Some(slot) = &removed {
            (self.retire)(&slot.value);
        }
        removed.is_some()
    }

    /// Removes everything; returns how many entries were still live at `now`.
    pub(crate) fn clear(&self, now: u64) -> usize {
        self.shards
            .all()
            .iter()
            .map(|s| {
                let mut g = write(s);
                let live = g.values().filter(|v| v.value.expires_at(now) > now).count();
                g.values().for_each(|v| (self.retire)(&v.value));
                g.clear();
                g.shrink_to_fit();
                live
            })
            .sum()
    }

    /// Drops expired entries, one shard at a time; returns how many.
    pub(crate) fn purge_expired(&self, now: u64) -> usize {
        self.shards
            .all()
            .iter()
            .map(|s| {
                let mut g = write(s);
                let before = g.len();
                g.retain(|_, v| kept(&v.value, now, &self.retire));
                before - g.len()
            })
            .sum()
    }

    /// Entries held, expired or not.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// Shards the table is split into.
    #[cfg(test)]
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.all().len()
    }

    /// Most entries the table will hold.
    pub(crate) fn capacity(&self) -> usize {
        self.shard_capacity * self.shards.all().len()
    }
}

/// Shared access to a shard. Nothing panics while holding a shard's lock
/// in a way that leaves the map broken, so a poisoned lock is used as is.
#[inline]
fn read<V>(shard: &ShardedLock<Map<V>>) -> ShardedLockReadGuard<'_, Map<V>> {
    shard.read().unwrap_or_else(PoisonError::into_inner)
}

/// Exclusive access to a shard (see [`read`] on poisoning).
fn write<V>(shard: &ShardedLock<Map<V>>) -> ShardedLockWriteGuard<'_, Map<V>> {
    shard.write().unwrap_or_else(PoisonError::into_inner)
}

/// The entries a full shard drops to make room, chosen under its shared
/// lock: every expired entry, and, if that is not enough, the least
/// recently used eighth of the shard.
#[derive(Debug, Default)]
struct Victims {
    expired: Vec<Key>,
    /// Chosen for being used least recently: removed only if still not
    /// used after `cutoff`.
    unused: Vec<Key>,
    cutoff: u64,
}

impl Victims {
    fn choose<V: Expiring>(map: &Map<Slot<V>>, now: u64, capacity: usize) -> Victims {
        let mut victims = Victims::default();
        let mut ages = Vec::new();
        for (k, v) in map.iter() {
            if v.value.expires_at(now) > now {
                ages.push((v.touched.load(Ordering::Relaxed), *k));
            } else {
                victims.expired.push(*k);
            }
        }
        let target = capacity - (capacity / 8).max(1);
        if ages.len() >= capacity {
            let excess = ages.len() - target;
            ages.select_nth_unstable(excess - 1);
            victims.cutoff = ages[excess - 1].0;
            victims.unused = ages[..excess].iter().map(|(_, k)| *k).collect();
        }
        victims
    }

    /// Removes the chosen entries that are still expired, or still unused
    /// since they were chosen.
    fn remove<V: Expiring>(self, map: &mut Map<Slot<V>>, now: u64, retire: &Retire<V>) {
        let mut drop_if = |key: &Key, gone: &dyn Fn(&Slot<V>) -> bool| {
            if let Entry::Occupied(entry) = map.entry(*key) {
                if gone(entry.get()) {
                    retire(&entry.remove().value);
                }
            }
        };
        for key in &self.expired {
            drop_if(key, &|slot| slot.value.expires_at(now) <= now);
        }
        for key in &self.unused {
            drop_if(key, &|slot| {
                slot.touched.load(Ordering::Relaxed) <= self.cutoff
            });
        }
    }
}

/// The entries `map` holds before it must grow, tombstones or not:
/// `hashbrown` fills its buckets up to seven eighths. The bucket count is
/// read from the allocation (the buckets, a control byte for each, and
/// less than one bucket's worth of padding and trailing control bytes).
fn full_capacity<T>(map: &Map<T>) -> usize {
    let estimate = map.allocation_size() / (std::mem::size_of::<(Key, T)>() + 1);
    if estimate == 0 {
        return 0;
    }
    let buckets = 1usize << (usize::BITS - 1 - estimate.leading_zeros());
    if buckets < 8 {
        buckets - 1
    } else {
        buckets / 8 * 7
    }
}

/// Whether `value` is still live at `now`; retires it if not.
fn kept<V: Expiring>(value: &V, now: u64, retire: &Retire<V>) -> bool {
    let live = value.expires_at(now) > now;
    if !live {
        retire(value);
    }
    live
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::*;

    struct Until(u64);
    impl Expiring for Until {
        fn expires_at(&self, _now: u64) -> u64 {
            self.0
        }
    }

    #[test]
    fn stays_within_capacity_evicting_expired_then_lru() {
        let t: Table<Until> = Table::new(64, 4);
        assert_eq!(t.capacity(), 64);
        for k in 0..10_000u128 {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            t.upsert(key, k as u64 * 2_000_000, || Until(u64::MAX), |_| ());
            assert!(t.len() <= 64);
        }
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        let t: Table<Until> = Table::new(8, 1);
        t.upsert(1, 0, || Until(u64::MAX), |_| ());
        for k in 2..9 {
            t.upsert(k, 0, || Until(10), |_| ());
        }
        assert_eq!(t.len(), 8);
        // At time 20 the seven short-lived entries are expired: inserting
        // drops them and keeps the long-lived one.
        t.upsert(100, 20, || Until(u64::MAX), |_| ());
        assert_eq!(t.len(), 2);
        assert!(t.read(1, 20, |_| ()).is_some());
        assert_eq!(t.purge_expired(20), 0);
    }

    #[test]
    fn least_recently_used_goes_first() {
        let t: Table<Until> = Table::new(8, 1);
        for k in 0..8u128 {
            t.upsert(k, k as u64 * 10_000_000, || Until(u64::MAX), |_| ());
        }
        // Touch key 0 so it is the most recent.
        t.read(0, 100_000_000, |_| ());
        t.upsert(99, 200_000_000, || Until(u64::MAX), |_| ());
        assert!(t.read(0, 200_000_000, |_| ()).is_some());
        assert!(t.read(1, 200_000_000, |_| ()).is_none());
    }

    #[test]
    fn shards_read_write_and_drop_what_they_hold() {
        let s: Shards<u64> = Shards::new(8);
        let keys: Vec<Key> = (0..1000u128)
            .map(|k| Key::from(k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)))
            .collect();
        for (i, &k) in keys.iter().enumerate() {
            assert!(s.upsert(k, || i as u64, |_, made| made));
            assert!(!s.upsert(k, || 0, |_, made| made));
        }
        assert_eq!(s.len(), 1000);
        assert_eq!(s.read(keys[8], |v| *v), Some(8));
        assert_eq!(s.write(keys[8], |v| std::mem::replace(v, 80)), Some(8));
        assert_eq!(s.read(keys[8], |v| *v), Some(80));
        let mut total = 0;
        s.for_each_mut(|_, v| {
            *v += 1;
            total += 1;
        });
        assert_eq!(total, 1000);
        assert_eq!(s.read(keys[0], |v| *v), Some(1));
        s.retain(|_, v| *v % 2 == 0);
        assert_eq!(s.len(), 500);
        assert!(!s.contains_key(keys[0]) && s.contains_key(keys[1]));
        assert_eq!(s.remove(keys[1]), Some(2));
        assert_eq!(s.read(keys[1], |v| *v), None);
        assert_eq!(s.write(keys[1], |v| *v), None);
        s.clear();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn threads_sharing_shards_lose_no_update() {
        let s: Shards<std::sync::atomic::AtomicU64> = Shards::new(4);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..2000u128 {
                        let k = Key::from((i % 50) << 64 | (i % 50));
                        let added = s.read(k, |v| v.fetch_add(1, Ordering::Relaxed));
                        if added.is_none() {
                            s.upsert(
                                k,
                                || AtomicU64::new(0),
                                |v, _| {
                                    v.fetch_add(1, Ordering::Relaxed);
                                },
                            );
                        }
                    }
                });
            }
        });
        let mut total = 0;
        s.for_each_mut(|_, v| total += v.load(Ordering::Relaxed));
        assert_eq!(total, 8000);
        assert_eq!(s.len(), 50);
    }

    #[test]
    fn a_fixed_window_bucket_is_40_bytes() {
        use crate::memory::cell::FixedWindowCell;
        assert_eq!(std::mem::size_of::<(Key, Slot<FixedWindowCell>)>(), 40);
    }

    /// Entries chosen to make room under the shared lock are removed only
    /// if they are still expired, or still unused, once the exclusive lock
    /// is taken; the bound holds either way.
    #[test]
    fn entries_used_after_being_chosen_are_kept() {
        let t: Table<Until> = Table::new(8, 1);
        for k in 0..8u128 {
            t.upsert(k, k as u64 * 10_000_000, || Until(u64::MAX), |_| ());
        }
        let now = 100_000_000;
        let victims = Victims::choose(&read(t.shard(0)), now, t.capacity());
        assert_eq!(
            (victims.expired.len(), victims.unused.as_slice()),
            (0, &[Key::from(0)][..])
        );
        // Key 0 is hit before the chosen entries are removed.
        t.read(0, now, |_| ());
        victims.remove(&mut write(t.shard(0)), now, &t.retire);
        assert_eq!(t.len(), 8);
        // The next insert chooses again and stays within the bound.
        t.upsert(20, now, || Until(u64::MAX), |_| ());
        assert_eq!(t.len(), 8);
        assert!(t.read(0, now, |_| ()).is_some() && t.read(1, now, |_| ()).is_none());

        let t: Table<Until> = Table::new(8, 1);
        for k in 0..8u128 {
            t.upsert(k, 0, || Until(if k == 7 { 50 } else { u64::MAX }), |_| ());
        }
        let victims = Victims::choose(&read(t.shard(0)), now, t.capacity());
        assert_eq!(
            (victims.expired.as_slice(), victims.unused.len()),
            (&[Key::from(7)][..], 0)
        );
        // Key 7 starts a new window before the chosen entries are removed.
        t.upsert_rebuild(7, now, |_| true, |_| Until(u64::MAX), |_| ());
        victims.remove(&mut write(t.shard(0)), now, &t.retire);
        assert_eq!(t.len(), 8);
        assert!(t.read(7, now, |_| ()).is_some());
    }

    /// Threads filling a small table at once keep it within its bound,
    /// and every value that leaves it is retired exactly once.
    #[test]
    fn threads_filling_a_table_keep_its_bound_and_retire_each_value_once() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let retired = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&retired);
        let t: Table<Until> = Table::new(256, 4).retiring(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        });
        let clock = AtomicU64::new(0);
        let made = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for thread in 0..4u128 {
                let (t, clock, made) = (&t, &clock, &made);
                scope.spawn(move || {
                    for i in 0..20_000u128 {
                        let now = clock.fetch_add(2_000_000, Ordering::Relaxed);
                        let key = (thread << 100 | i)
                            .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
                        // Every third key expires soon, so both kinds of
                        // victims are chosen and raced for.
                        let until = if i % 3 == 0 {
                            now + 10_000_000
                        } else {
                            u64::MAX
                        };
                        t.upsert(
                            key,
                            now,
                            || {
                                made.fetch_add(1, Ordering::Relaxed);
                                Until(until)
                            },
                            |_| (),
                        );
                        assert!(t.len() <= t.capacity());
                    }
                });
            }
        });
        let held = made.load(Ordering::Relaxed) - retired.load(Ordering::Relaxed);
        assert_eq!(held, t.len());
        assert!(t.len() <= t.capacity());
    }

    /// A fresh map's full capacity is what `hashbrown` reports for it,
    /// whatever the size of its values.
    #[test]
    fn full_capacity_is_read_from_the_allocation() {
        fn check<T>() {
            for n in [0usize, 1, 3, 7, 8, 13, 100, 1000, 6250, 8192, 100_000] {
                let map: Map<T> = Map::with_capacity_and_hasher(n, Default::default());
                let name = std::any::type_name::<T>();
                assert_eq!(full_capacity(&map), map.capacity(), "{n} entries of {name}");
            }
        }
        check::<Slot<Until>>();
        check::<Slot<crate::memory::cell::FixedWindowCell>>();
        check::<Slot<crate::memory::ring::Ring>>();
        check::<Slot<crate::memory::cell::SlidingWindowCell>>();
        check::<u8>();
        check::<[u64; 12]>();
    }

    /// A shard bounded at over half of its buckets keeps its size while
    /// keys come and go, instead of doubling when removed entries' tombstones
    /// fill it.
    #[test]
    fn a_churning_shard_keeps_its_size() {
        for bound in [6250usize, 10_938, 3000] {
            let t: Table<Until> = Table::new(bound, 1);
            // Keys spread as hashes are, hit in the same millisecond.
            let key = |k: u128| {
                let k = k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
                k ^ (k >> 67) ^ (k << 41)
            };
            for k in 0..bound as u128 {
                t.upsert(key(k), 0, || Until(u64::MAX), |_| ());
            }
            let filled = read(t.shard(0)).allocation_size();
            for k in bound as u128..bound as u128 * 20 {
                t.upsert(key(k), 0, || Until(u64::MAX), |_| ());
            }
            assert!(t.len() <= bound);
            let churned = read(t.shard(0)).allocation_size();
            assert_eq!(churned, filled, "bound {bound}");
        }
    }

    #[test]
    fn rebuild_replaces_stale_values() {
        let t: Table<Until> = Table::new(8, 1);
        let v = t.upsert_rebuild(1, 0, |_| false, |_| Until(5), |v| v.0);
        assert_eq!(v, 5);
        let v = t.upsert_rebuild(1, 0, |v| v.0 < 6, |old| Until(old.unwrap().0 + 10), |v| v.0);
        assert_eq!(v, 15);
    }
}
