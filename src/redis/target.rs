//! The Redis storages as write-behind remotes: one Lua script per batch (per
//! hash slot on a Cluster).

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::cluster_routing::Slot;
use redis::Script;

use crate::error::Result;
use crate::redis::RedisStorage;
use crate::redis::{glob_escape, Ops, RedisClusterStorage, RedisSentinelStorage, Topology};
use crate::storage::Storage;
use crate::write_behind::{check_budgets, Budget, Report, Share, SyncTarget};

/// The sync script: per report, `max(stored, total)` in the node's field of
/// the `(key, window)` hash, then the sum of the hash's fields.
static SYNC: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/write_behind_sync.lua")));

/// The hash of one key and window: `{prefix}:wb:{key}/{window}`. Its fields
/// are node ids, its values their cumulative totals.
pub(crate) fn slot_key(prefix: &str, key: &str, window: u64) -> String {
    format!("{prefix}:wb:{key}/{window}")
}

/// The budget-split script: [`SYNC`] plus the claim of
/// [`share_rule`](crate::write_behind::share_rule), kept in the field
/// `NUL + node` of the same hash.
static SHARE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/write_behind_share.lua")));

/// Runs `script` over `reports` once per group of reports whose slot keys
/// `group` puts together (all of them for one server, one hash slot each on
/// a Cluster, where a script's keys must share a slot), with the node id as
/// first argument and `args` adding each report's. Answers in the order of
/// `reports`.
fn run_grouped<T, G, A>(
    ops: &Ops<T>,
    reports: &[Report<'_>],
    group: G,
    script: &Script,
    args: impl Fn(&mut redis::ScriptInvocation<'_>, usize),
) -> Result<Vec<A>>
where
    T: Topology,
    T::Conn: redis::ConnectionLike,
    G: Fn(&str) -> Option<Slot>,
    A: redis::FromRedisValue + Default + Clone,
{
    let Some(first) = reports.first() else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = reports
        .iter()
        .map(|r| slot_key(ops.prefix(), r.key, r.window))
        .collect();
    // Group indices by slot, keeping the reports' order within a group.
    let mut groups: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
    let mut index: HashMap<Option<Slot>, usize> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let slot = group(key);
        let g = *index.entry(slot).or_insert_with(|| {
            groups.push((slot, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let mut answers = vec![A::default(); reports.len()];
    ops.run(|c| {
        for (_, members) in &groups {
            let mut invocation = script.prepare_invoke();
            invocation.arg(first.node);
            for &i in members {
                invocation.key(&keys[i]);
                args(&mut invocation, i);
            }
            let got: Vec<A> = invocation.invoke(c)?;
            for (&i, answer) in members.iter().zip(got) {
                answers[i] = answer;
            }
        }
        Ok(())
    })?;
    Ok(answers)
}

/// When the slots of `r`'s window expire: one window after it ends, in Unix ms.
fn expire_at_ms(r: &Report<'_>) -> u64 {
    r.window
        .saturating_add(2)
        .saturating_mul(r.expiry)
        .saturating_mul(1000)
}

fn sync_grouped<T, G>(ops: &Ops<T>, reports: &[Report<'_>], group: G) -> Result<Vec<u64>>
where
    T: Topology,
    T::Conn: redis::ConnectionLike,
    G: Fn(&str) -> Option<Slot>,
{
    run_grouped(ops, reports, group, &SYNC, |inv, i| {
        let r = &reports[i];
        inv.arg(r.total).arg(expire_at_ms(r));
    })
}

fn share_grouped<T, G>(
    ops: &Ops<T>,
    reports: &[Report<'_>],
    budgets: &[Budget],
    group: G,
) -> Result<Vec<Share>>
where
    T: Topology,
    T::Conn: redis::ConnectionLike,
    G: Fn(&str) -> Option<Slot>,
{
    check_budgets(reports, budgets)?;
    let answers: Vec<(u64, u64, u64)> = run_grouped(ops, reports, group, &SHARE, |inv, i| {
        let (r, b) = (&reports[i], &budgets[i]);
        inv.arg(r.total)
            .arg(expire_at_ms(r))
            .arg(b.limit)
            .arg(b.want)
            .arg(b.demand)
            .arg(b.nodes);
    })?;
    Ok(answers
        .into_iter()
        .map(|(global, nodes, allowed)| Share {
            global,
            nodes,
            allowed,
        })
        .collect())
}

/// Sets the incarnation marker `{prefix}:wb-incarnation` to `candidate`
/// unless it exists, and answers what it holds.
static INCARNATION: LazyLock<Script> = LazyLock::new(|| {
    Script::new("redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])")
});

fn incarnation<T: Topology>(ops: &Ops<T>, candidate: &str) -> Result<Option<String>>
where
    T::Conn: redis::ConnectionLike,
{
    let key = format!("{}:wb-incarnation", ops.prefix());
    ops.run(|c| {
        INCARNATION
            .prepare_invoke()
            .key(&key)
            .arg(candidate)
            .invoke::<Option<String>>(c)
    })
}

/// Deletes every window and slot of `key`, on every primary.
fn clear_slots<T: Topology>(ops: &Ops<T>, key: &str) -> Result<()>
where
    T::Conn: redis::ConnectionLike,
{
    let pattern = format!("{}:wb:{}/*", glob_escape(ops.prefix()), glob_escape(key));
    ops.delete_matching(&pattern).map(drop)
}

macro_rules! sync_target {
    ($ty:ty, $group:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// The slots of `(key, window)` are the fields of the hash
        /// `{key_prefix}:wb:{key}/{window}`, which expires one window after
        /// its window ends. A script applied whose reply was lost is simply
        /// sent again by the syncer: it changes nothing the second time.
        impl SyncTarget for $ty {
            fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
                sync_grouped(self.ops(), reports, $group)
            }

            fn check(&self) -> bool {
                Storage::check(self)
            }

            fn shares_budgets(&self) -> bool {
                true
            }

            /// One script run as for [`sync`](SyncTarget::sync), which
            /// also grants and stores the claim (the hash's field
            /// `NUL + node`).
            fn sync_shares(
                &self,
                reports: &[Report<'_>],
                budgets: &[Budget],
            ) -> Result<Vec<Share>> {
                share_grouped(self.ops(), reports, budgets, $group)
            }

            fn clear(&self, key: &str) -> Result<()> {
                clear_slots(self.ops(), key)
            }

            /// The key `{key_prefix}:wb-incarnation` (on a Cluster, in its
            /// own hash slot: a primary that loses its data is noticed when
            /// it held that slot).
            fn incarnation(&self, candidate: &str) -> Result<Option<String>> {
                incarnation(self.ops(), candidate)
            }

            /// Deletes every key under the prefix, write-behind slots
            /// included (the storage's own [`reset`](Storage::reset)).
            fn reset(&self) -> Result<Option<u64>> {
                Storage::reset(self)
            }
        }
    };
}

sync_target!(
    RedisStorage,
    |_| None,
    "A Redis server as the remote of write-behind nodes: each \
     [`sync`](SyncTarget::sync) is one `EVALSHA` of a script over the batch, on \
     a pooled connection.\n\n```no_run\nuse std::sync::Arc;\nuse limitstore::RedisStorage;\n\
     use limitstore::write_behind::WriteBehind;\nlet remote = Arc::new(RedisStorage::new(\
     \"redis://localhost:6379?socket_timeout=0.5\").unwrap());\nlet node = \
     WriteBehind::builder(remote).node_id(\"web-1\").start().unwrap();\n```"
);
sync_target!(
    RedisSentinelStorage,
    |_| None,
    "The primary a Sentinel deployment names, as the remote of write-behind \
     nodes: each [`sync`](SyncTarget::sync) is one `EVALSHA` on the current \
     primary; after a failover the syncer's retry reaches the new one."
);
sync_target!(
    RedisClusterStorage,
    |key: &str| Some(Slot::for_key(key)),
    "A Redis Cluster as the remote of write-behind nodes: a script's keys must \
     share a hash slot, so each [`sync`](SyncTarget::sync) runs the script once \
     per slot that the batch's `(key, window)` hashes fall in, each on the \
     primary owning that slot."
);
