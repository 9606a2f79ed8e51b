//! The Memcached storage as a write-behind remote: per-node slot items with
//! compare-and-swap, and a membership item per window listing the nodes
//! that hold a slot in it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use memcache::{CommandError, MemcacheError};

use crate::clock::wall_now;
use crate::error::{Error, ErrorKind, Result};
use crate::memcached::{Server, MAX_RELATIVE_EXPIRY};
use crate::storage::{validate_key, Storage};
use crate::write_behind::{Report, SyncTarget};
use crate::MemcachedStorage;

const BACKEND: &str = "memcached write-behind";
/// Attempts of one compare-and-swap of a slot, or of one add-or-append.
const ATTEMPTS: usize = 8;
/// The logical name of the incarnation marker: an escaped key is never
/// empty, so no key's `wb/{key}/…` items have it.
const INCARNATION: &str = "wb//incarnation";

/// An item as `gets` reads it: value, flags, CAS token.
type Item = (Vec<u8>, u32, Option<u64>);

/// `s` with `%`, `/` and `,` percent-encoded: an escaped key is one path
/// segment, and an escaped node id one entry of a membership list.
fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '/', ',']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The Unix second at which the items of a window expire: one window after
/// the window ends.
fn deadline(window: u64, expiry: u64) -> u64 {
    window.saturating_add(2).saturating_mul(expiry)
}

/// Seconds a membership item and a registry outlive the slots they list.
/// Memcached's clock ticks once a second from its own start and relative
/// expirations are whole seconds, so two items given one deadline at
/// different moments can expire up to a second apart; an index that expired
/// first would hide live slots from [`clear`](SyncTarget::clear).
const INDEX_SLACK: u64 = 2;

/// The expiration Memcached is sent for an item that must live until
/// `deadline`: relative seconds up to 30 days, the absolute Unix time beyond
/// (Memcached reads larger values as absolute times). `None` once the
/// deadline has passed (0 would mean "never expires").
fn exptime_until(deadline: u64, now: f64) -> Option<u32> {
    let left = deadline as f64 - now;
    if left <= 0.0 {
        return None;
    }
    let secs = left.ceil() as u64;
    Some(if secs <= MAX_RELATIVE_EXPIRY {
        secs as u32
    } else {
        deadline.min(u64::from(u32::MAX)) as u32
    })
}

fn is_key_exists(e: &MemcacheError) -> bool {
    matches!(e, MemcacheError::CommandError(CommandError::KeyExists))
}

/// `append` to a missing item: binary status 5, "item not stored".
fn is_not_stored(e: &MemcacheError) -> bool {
    matches!(
        e,
        MemcacheError::CommandError(CommandError::KeyNotFound | CommandError::Unknown(5))
    )
}

/// The CAS token of a read item. (A token of 0 would make `cas` an
/// unconditional `set`; the binary protocol always sends one.)
fn cas_token(key: &str, token: Option<u64>) -> Result<u64> {
    token
        .filter(|&t| t != 0)
        .ok_or_else(|| Error::storage_msg(BACKEND, format!("`{key}` was read without a CAS token")))
}

fn parse_total(key: &str, raw: &[u8]) -> Result<u64> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Error::storage_msg(
                BACKEND,
                format!(
                    "slot `{key}` holds `{}`, not a total",
                    String::from_utf8_lossy(raw)
                ),
            )
        })
}

/// The entries of a comma-separated list, without empty ones and repeats.
fn entries(raw: Option<&[u8]>) -> Vec<String> {
    let Some(raw) = raw else { return Vec::new() };
    let mut seen = HashSet::new();
    String::from_utf8_lossy(raw)
        .split(',')
        .filter(|e| !e.is_empty() && seen.insert(e.to_string()))
        .map(str::to_owned)
        .collect()
}

/// The `(window, expiry)` entries of a key's window registry.
fn registered(raw: Option<&[u8]>) -> Vec<(u64, u64)> {
    entries(raw)
        .iter()
        .filter_map(|e| {
            let (w, x) = e.split_once(':')?;
            Some((w.parse().ok()?, x.parse().ok()?))
        })
        .collect()
}

/// The logical names of a key's items (before the storage's prefix and
/// hashing of keys Memcached refuses).
struct Names {
    key: String,
}

impl Names {
    fn new(key: &str) -> Self {
        Names {
            key: escape(key).into_owned(),
        }
    }
    /// `wb/{key}/windows`: the windows that have a membership item.
    fn registry(&self) -> String {
        format!("wb/{}/windows", self.key)
    }
    /// `wb/{key}/{window}/nodes`: the nodes with a slot in the window.
    fn members(&self, window: u64) -> String {
        format!("wb/{}/{window}/nodes", self.key)
    }
    /// `wb/{key}/{window}/node/{node}`: a node's cumulative total (`node`
    /// escaped already).
    fn slot(&self, window: u64, node: &str) -> String {
        format!("wb/{}/{window}/node/{node}", self.key)
    }
}

/// One `(key, window)` of a batch.
struct Win {
    names: Names,
    window: u64,
    expiry: u64,
    /// Its membership item's Memcached key.
    members: String,
    /// Escaped node ids known to hold a slot.
    nodes: Vec<String>,
    /// The reports of the batch (indices) about it.
    reports: Vec<usize>,
}

/// One slot that a batch raises.
struct Write {
    win: usize,
    node: String,
    slot: String,
    total: u64,
    exptime: u32,
    /// The expiration of the window's membership item and of the key's
    /// registry: [`INDEX_SLACK`] past the slot's.
    index_exptime: u32,
}

impl MemcachedStorage {
    /// `add`s the list item `key` holding `entry`, or appends `entry` to it.
    /// `exists` says which to try first. Returns whether the item was
    /// created.
    fn add_or_append(
        &self,
        server: &Server,
        key: &str,
        entry: &str,
        exptime: u32,
        mut exists: bool,
    ) -> Result<bool> {
        for _ in 0..ATTEMPTS {
            if exists {
                match server.run(|c| c.append(key, entry)) {
                    Ok(()) => return Ok(false),
                    Err(e) if is_not_stored(&e) => {}
                    Err(e) => return Err(server.error_as(BACKEND, e)),
                }
            }
            match server.run(|c| c.add(key, entry, exptime)) {
                Ok(()) => return Ok(true),
                Err(e) if is_key_exists(&e) => exists = true,
                Err(e) => return Err(server.error_as(BACKEND, e)),
            }
        }
        Err(Error::new(
            ErrorKind::ConcurrentUpdate,
            format!("{BACKEND}: `{key}` kept vanishing while being extended"),
        ))
    }

    /// Raises the slot `w.slot` to `w.total` (never lowers it), by `add` or
    /// by compare-and-swap, starting from `current` (value and CAS token).
    fn raise(&self, server: &Server, w: &Write, mut current: Option<(u64, u64)>) -> Result<()> {
        let value = w.total.to_string();
        for _ in 0..ATTEMPTS {
            match current {
                None => match server.run(|c| c.add(&w.slot, value.as_str(), w.exptime)) {
                    Ok(()) => return Ok(()),
                    Err(e) if is_key_exists(&e) => {}
                    Err(e) => return Err(server.error_as(BACKEND, e)),
                },
                Some((stored, _)) if stored >= w.total => return Ok(()),
                Some((_, token)) => {
                    if server.call(|c| c.cas(&w.slot, value.as_str(), w.exptime, token))? {
                        return Ok(());
                    }
                }
            }
            current = match server.read(|c| c.get::<Item>(&w.slot))? {
                None => None,
                Some((raw, _, token)) => {
                    Some((parse_total(&w.slot, &raw)?, cas_token(&w.slot, token)?))
                }
            };
        }
        Err(Error::new(
            ErrorKind::ConcurrentUpdate,
            format!(
                "{BACKEND}: slot `{}` kept changing under {ATTEMPTS} attempts",
                w.slot
            ),
        ))
    }

    /// Makes node `w.node` a member of its window, registering the window
    /// in the key's registry first if the membership item is missing.
    fn join(
        &self,
        server: &Server,
        win: &mut Win,
        w: &Write,
        r1: &mut HashMap<String, Item>,
    ) -> Result<()> {
        let members_exist = r1.contains_key(&win.members);
        if !members_exist {
            let registry = self.mkey(&win.names.registry());
            let listed = registered(r1.get(&registry).map(|i| i.0.as_slice()));
            if !listed.contains(&(win.window, win.expiry)) {
                let entry = format!("{}:{},", win.window, win.expiry);
                let created = self.add_or_append(
                    server,
                    &registry,
                    &entry,
                    w.index_exptime,
                    r1.contains_key(&registry),
                )?;
                let latest = listed.iter().map(|&(w, x)| deadline(w, x)).max();
                if !created && latest.is_none_or(|d| d < deadline(win.window, win.expiry)) {
                    // `append` keeps the item's expiration: extend it to
                    // this window's.
                    server.call(|c| c.touch(&registry, w.index_exptime))?;
                }
                // As the server has it now, for later windows of the batch.
                r1.entry(registry)
                    .or_insert_with(|| (Vec::new(), 0, None))
                    .0
                    .extend_from_slice(entry.as_bytes());
            }
        }
        self.add_or_append(
            server,
            &win.members,
            &format!("{},", w.node),
            w.index_exptime,
            members_exist,
        )?;
        win.nodes.push(w.node.clone());
        Ok(())
    }

    /// Applies the reports `indices` (all routed to `server`) and writes
    /// their answers into `out`.
    fn sync_on(
        &self,
        server: &Server,
        reports: &[Report<'_>],
        indices: &[usize],
        at: f64,
        out: &mut [u64],
    ) -> Result<()> {
        let mut wins: Vec<Win> = Vec::new();
        let mut win_of: HashMap<(&str, u64), usize> = HashMap::new();
        let mut writes: Vec<Write> = Vec::new();
        let mut write_of: HashMap<(usize, &str), usize> = HashMap::new();
        for &i in indices {
            let r = &reports[i];
            let wi = *win_of.entry((r.key, r.window)).or_insert_with(|| {
                let names = Names::new(r.key);
                wins.push(Win {
                    members: self.mkey(&names.members(r.window)),
                    names,
                    window: r.window,
                    expiry: r.expiry,
                    nodes: Vec::new(),
                    reports: Vec::new(),
                });
                wins.len() - 1
            });
            wins[wi].reports.push(i);
            // A report of a window whose items are past their end is only
            // read: its hits can no longer affect a limit.
            let end = deadline(r.window, r.expiry);
            let Some(exptime) = exptime_until(end, at) else {
                continue;
            };
            let index_exptime =
                exptime_until(end.saturating_add(INDEX_SLACK), at).unwrap_or(exptime);
            if r.total == 0 {
                continue;
            }
            match write_of.get(&(wi, r.node)) {
                Some(&w) => writes[w].total = writes[w].total.max(r.total),
                None => {
                    let node = escape(r.node).into_owned();
                    writes.push(Write {
                        win: wi,
                        slot: self.mkey(&wins[wi].names.slot(r.window, &node)),
                        node,
                        total: r.total,
                        exptime,
                        index_exptime,
                    });
                    write_of.insert((wi, r.node), writes.len() - 1);
                }
            }
        }

        // Round trip 1: the membership items, the slots to raise and the
        // registries of the keys written.
        let mut keys: Vec<String> = wins.iter().map(|w| w.members.clone()).collect();
        keys.extend(writes.iter().map(|w| w.slot.clone()));
        let mut registries = HashSet::new();
        for w in &writes {
            let registry = self.mkey(&wins[w.win].names.registry());
            if registries.insert(registry.clone()) {
                keys.push(registry);
            }
        }
        let r1 = multi_get(server, &keys)?;
        for win in &mut wins {
            win.nodes = entries(r1.get(&win.members).map(|i| i.0.as_slice()));
        }

        // Writes: membership first, then the slot, so that a slot is never
        // written without being listed (a failure in between leaves a
        // listed node without a slot, read as 0, and the retry completes it).
        let mut r1 = r1;
        for w in &writes {
            let win = &mut wins[w.win];
            if !win.nodes.contains(&w.node) {
                self.join(server, win, w, &mut r1)?;
                // The item exists now, for the next node of this window.
                r1.entry(win.members.clone())
                    .or_insert_with(|| (Vec::new(), 0, None));
            }
            let current = match r1.get(&w.slot) {
                None => None,
                Some((raw, _, token)) => {
                    Some((parse_total(&w.slot, raw)?, cas_token(&w.slot, *token)?))
                }
            };
            self.raise(server, w, current)?;
        }

        // Round trip 2: the membership items again (nodes may have joined)
        // and the slots of every member known; a third for members that
        // joined meanwhile.
        let slot_keys = |wins: &[Win], wi: usize, nodes: &[String]| -> Vec<String> {
            let win = &wins[wi];
            nodes
                .iter()
                .map(|n| self.mkey(&win.names.slot(win.window, n)))
                .collect()
        };
        let mut keys: Vec<String> = wins.iter().map(|w| w.members.clone()).collect();
        for wi in 0..wins.len() {
            keys.extend(slot_keys(&wins, wi, &wins[wi].nodes));
        }
        let mut got = multi_get(server, &keys)?;
        let mut late = Vec::new();
        for wi in 0..wins.len() {
            let listed = entries(got.get(&wins[wi].members).map(|i| i.0.as_slice()));
            let new: Vec<String> = listed
                .into_iter()
                .filter(|n| !wins[wi].nodes.contains(n))
                .collect();
            late.extend(slot_keys(&wins, wi, &new));
            wins[wi].nodes.extend(new);
        }
        if !late.is_empty() {
            got.extend(multi_get(server, &late)?);
        }
        for wi in 0..wins.len() {
            let mut sum = 0u64;
            for key in slot_keys(&wins, wi, &wins[wi].nodes) {
                if let Some((raw, _, _)) = got.get(&key) {
                    sum = sum.saturating_add(parse_total(&key, raw)?);
                }
            }
            for &i in &wins[wi].reports {
                out[i] = sum;
            }
        }
        Ok(())
    }
}

/// One multi-get of `keys` (deduplicated) on `server`.
fn multi_get(server: &Server, keys: &[String]) -> Result<HashMap<String, Item>> {
    let mut unique: Vec<&str> = keys.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    if unique.is_empty() {
        return Ok(HashMap::new());
    }
    server.read(|c| c.gets::<Item>(&unique))
}

/// Memcached servers as the remote of write-behind nodes.
///
/// Memcached has no transactions and cannot list keys, so each window of a
/// key keeps (all on the server that holds the key itself):
///
/// - one **slot** item per node, `wb/{key}/{window}/node/{node}`, holding the
///   node's cumulative total. It is raised with `add` (new slot) or
///   compare-and-swap (`gets`, then `cas`; retried if it lost a race) and
///   never lowered. Only the node's own syncer writes its slot, so a plain
///   `set` would do in the common case; compare-and-swap also keeps a
///   delayed write from an abandoned connection (after a timeout) from
///   overwriting a newer total with an older one, and keeps a stale report
///   from lowering a slot, as the [`SyncTarget`] contract says.
/// - a **membership** item, `wb/{key}/{window}/nodes`: the node ids with a
///   slot, comma-separated, created with `add` and extended with `append`
///   when a node is first missing from it (repeats are ignored on read). A
///   node joins before it writes its slot.
/// - a **registry** per key, `wb/{key}/windows`, listing the windows that
///   have a membership item (for [`clear`](SyncTarget::clear)).
///
/// Key and node ids are escaped (`%`, `/`, `,` percent-encoded) and the
/// items named like the storage's keys (`key_prefix`; keys Memcached refuses
/// are hashed). Slots expire one window after their window ends (relative
/// seconds up to 30 days, an absolute time beyond); membership items and
/// registries 2 s after the slots they list, so that Memcached's
/// whole-second clock never lets an index expire before them.
///
/// A [`sync`](SyncTarget::sync) takes, per server: one multi-get (membership
/// items, the node's slots, registries), one round trip per slot raised
/// (plus a few the first time a node writes in a window), and one multi-get
/// of the membership items and all members' slots to answer (rarely a
/// second, for nodes that joined meanwhile). Each report is answered with
/// its window's total after the whole batch (the syncer sends one report per
/// key and window). Reports of a window whose items have expired are only
/// read.
///
/// **What is exact:** while the items stay in memory, every node's total is
/// counted once and a report sent again changes nothing. Memcached may
/// **evict** items under memory pressure before they expire: an evicted slot
/// loses that node's hits until it reports again (its next report restores
/// its full cumulative total); an evicted membership item hides the slots of
/// the nodes that do not report again in that window (each node re-joins at
/// its next report); an evicted registry makes [`clear`](SyncTarget::clear)
/// miss windows. Give the servers enough memory for the live windows.
///
/// [`clear`](SyncTarget::clear) deletes the slots, membership items and
/// registry of a key; [`reset`](SyncTarget::reset) is the storage's (an
/// error unless `flush_on_reset=true`, which flushes every server).
///
/// ```no_run
/// use std::sync::Arc;
/// use limitstore::MemcachedStorage;
/// use limitstore::write_behind::WriteBehind;
/// let remote = Arc::new(MemcachedStorage::new("memcached://127.0.0.1:11211").unwrap());
/// let node = WriteBehind::builder(remote).node_id("web-1").start().unwrap();
/// ```
impl SyncTarget for MemcachedStorage {
    fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
        for r in reports {
            validate_key(r.key)?;
        }
        // Group the reports by the server that holds their key.
        let mut groups: Vec<(&Server, Vec<usize>)> = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            let server = self.route(r.key);
            match groups.iter_mut().find(|(s, _)| std::ptr::eq(*s, server)) {
                Some((_, members)) => members.push(i),
                None => groups.push((server, vec![i])),
            }
        }
        let at = wall_now();
        let mut out = vec![0; reports.len()];
        for (server, indices) in &groups {
            self.sync_on(server, reports, indices, at, &mut out)?;
        }
        Ok(out)
    }

    fn check(&self) -> bool {
        Storage::check(self)
    }

    /// One marker item per server, `wb//incarnation` (named like the
    /// storage's keys; no key's items have that name), created with `add`
    /// and read back; the answer joins the servers' markers, so a restart of
    /// any one server is noticed. A marker Memcached evicts makes the nodes
    /// re-send their totals, which changes nothing; slots evicted while the
    /// marker stays are not noticed (see the eviction note above).
    fn incarnation(&self, candidate: &str) -> Result<Option<String>> {
        let key = self.mkey(INCARNATION);
        let mut markers = Vec::with_capacity(self.servers.len());
        for server in &self.servers {
            match server.run(|c| c.add(&key, candidate, 0)) {
                Ok(()) => {}
                Err(e) if is_key_exists(&e) => {}
                Err(e) => return Err(server.error_as(BACKEND, e)),
            }
            // Gone again only if the server was flushed meanwhile: an empty
            // marker, which the next read replaces.
            markers.push(server.read(|c| c.get::<String>(&key))?.unwrap_or_default());
        }
        Ok(Some(markers.join(",")))
    }

    fn clear(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let server = self.route(key);
        let names = Names::new(key);
        let registry = self.mkey(&names.registry());
        let raw = server.read(|c| c.get::<Vec<u8>>(&registry))?;
        let windows = registered(raw.as_deref());
        let members: Vec<String> = windows
            .iter()
            .map(|&(w, _)| self.mkey(&names.members(w)))
            .collect();
        let got = multi_get(server, &members)?;
        for (&(w, _), item) in windows.iter().zip(&members) {
            for node in entries(got.get(item).map(|i| i.0.as_slice())) {
                let slot = self.mkey(&names.slot(w, &node));
                server.call(|c| c.delete(&slot))?;
            }
            server.call(|c| c.delete(item))?;
        }
        server.call(|c| c.delete(&registry))?;
        Ok(())
    }

    /// The storage's [`reset`](Storage::reset): an error unless the option
    /// `flush_on_reset=true` is set, which flushes every server.
    fn reset(&self) -> Result<Option<u64>> {
        Storage::reset(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_run_into_each_other() {
        let n = Names::new("a/5");
        assert_eq!(n.members(7), "wb/a%2F5/7/nodes");
        assert_eq!(n.slot(7, &escape("x,y")), "wb/a%2F5/7/node/x%2Cy");
        assert_eq!(Names::new("50%").registry(), "wb/50%25/windows");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn lists_drop_repeats_and_empty_entries() {
        assert_eq!(entries(Some(b"a,b,,a,c,")), ["a", "b", "c"]);
        assert!(entries(None).is_empty());
        assert_eq!(registered(Some(b"5:60,6:60,x:1,5:60,")), [(5, 60), (6, 60)]);
    }

    #[test]
    fn expirations_are_relative_up_to_30_days() {
        assert_eq!(exptime_until(1000, 940.5), Some(60));
        assert_eq!(exptime_until(1000, 1000.0), None);
        let far = 2_000_000_000 + MAX_RELATIVE_EXPIRY + 10;
        assert_eq!(exptime_until(far, 2.0e9), Some(far as u32));
        assert_eq!(exptime_until(u64::MAX, 2.0e9), Some(u32::MAX));
    }
}
