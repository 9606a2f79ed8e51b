//! [`RedisStorage`] as a write-behind remote: one Lua script per batch.
#![cfg(feature = "redis")]

use std::sync::LazyLock;

use redis::{cmd, Script};

use super::target::{Report, SyncTarget};
use crate::error::Result;
use crate::redis::RedisStorage;
use crate::storage::Storage;

/// The sync script: per report, `max(stored, total)` in the node's field of
/// the `(key, window)` hash, then the sum of the hash's fields.
static SYNC: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/sync.lua")));

/// Keys matched by `SCAN` and deleted per `DEL` when clearing a key.
const CLEAR_BATCH: usize = 1000;

/// The hash of one key and window: `{prefix}:wb:{key}/{window}`. Its fields
/// are node ids, its values their cumulative totals.
pub(crate) fn slot_key(prefix: &str, key: &str, window: u64) -> String {
    format!("{prefix}:wb:{key}/{window}")
}

fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Redis server as the remote of write-behind nodes: each
/// [`sync`](SyncTarget::sync) is one `EVALSHA` of a script over the batch,
/// on a pooled connection. The slots of `(key, window)` are the fields of
/// the hash `{key_prefix}:wb:{key}/{window}`, which expires one window
/// after its window ends. A script applied whose reply was lost is simply
/// sent again by the syncer: it changes nothing the second time.
///
/// ```no_run
/// use std::sync::Arc;
/// use limitstore::RedisStorage;
/// use limitstore::write_behind::WriteBehind;
/// let remote = Arc::new(RedisStorage::new("redis://localhost:6379?socket_timeout=0.5").unwrap());
/// let node = WriteBehind::builder(remote).node_id("web-1").start().unwrap();
/// ```
impl SyncTarget for RedisStorage {
    fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
        let Some(first) = reports.first() else {
            return Ok(Vec::new());
        };
        let mut invocation = SYNC.prepare_invoke();
        invocation.arg(first.node);
        for r in reports {
            let expire_at_ms = r
                .window
                .saturating_add(2)
                .saturating_mul(r.expiry)
                .saturating_mul(1000);
            invocation
                .key(slot_key(self.key_prefix(), r.key, r.window))
                .arg(r.total)
                .arg(expire_at_ms);
        }
        self.run(|c| invocation.invoke(c))
    }

    fn check(&self) -> bool {
        Storage::check(self)
    }

    fn clear(&self, key: &str) -> Result<()> {
        let pattern = format!(
            "{}:wb:{}/*",
            glob_escape(self.key_prefix()),
            glob_escape(key)
        );
        self.run(|c| {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(CLEAR_BATCH)
                    .query(c)?;
                if !keys.is_empty() {
                    cmd("DEL").arg(&keys).query::<()>(c)?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        })
    }

    /// Deletes every key under the prefix, write-behind slots included (the
    /// storage's own [`reset`](Storage::reset)).
    fn reset(&self) -> Result<Option<u64>> {
        Storage::reset(self)
    }
}
