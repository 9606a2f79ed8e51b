//! [`MongoDbStorage`] as a write-behind remote: one upsert per report, run
//! concurrently, then one query for the totals.

use std::collections::HashMap;

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::aio::AsyncStorage;
use crate::error::{Error, Result};
use crate::mongodb::ops::{self, is_duplicate_key};
use crate::mongodb::{storage_error, MongoDbStorage, UPSERT_RETRIES};
use crate::rt::block_on;
use crate::write_behind::{Report, SyncTarget};

const BACKEND: &str = "mongodb";

/// The `_id` of the incarnation marker's document (never a window's: those
/// start `limitstore-wb/`).
const INCARNATION_ID: &str = "limitstore-wb-incarnation";

/// The `_id` of the document of one key and window.
fn doc_id(key: &str, window: u64) -> String {
    format!("limitstore-wb/{key}/{window}")
}

/// A node id as a field name: `%`, `.` and `$` percent-encoded, so that no
/// id is read as a path or an operator.
fn node_field(node: &str) -> String {
    let mut out = String::with_capacity(node.len() + 2);
    for c in node.chars() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '$' => out.push_str("%24"),
            c => out.push(c),
        }
    }
    out
}

/// The sum of a document's node totals.
fn sum_nodes(document: &Document) -> u64 {
    match document.get("nodes") {
        Some(Bson::Document(nodes)) => nodes
            .keys()
            .filter_map(|node| ops::number(nodes, node).ok().flatten())
            .sum(),
        _ => 0,
    }
}

/// One update: the document, the node's field and total, and when the
/// document may go (one window after its window ends).
struct Update {
    id: String,
    key: String,
    field: String,
    total: i64,
    expire_at: DateTime,
}

/// A MongoDB deployment as the remote of write-behind nodes. Each `(key,
/// window)` is one document of the window collection,
/// `{_id: "limitstore-wb/{key}/{window}", key, nodes: {<node>: total},
/// expireAt}`; a report is an upsert with `$max` on its node's field, so a
/// report sent again after a lost reply changes nothing, and the TTL index
/// removes the document one window after its window ends. A sync runs its
/// upserts concurrently, then reads every document of the batch in one
/// query and answers each report with the sum of its document's node totals.
impl SyncTarget for MongoDbStorage {
    fn sync(&self, reports: &[Report<'_>]) -> Result<Vec<u64>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = reports.iter().map(|r| doc_id(r.key, r.window)).collect();
        let updates: Vec<Update> = reports
            .iter()
            .zip(&ids)
            .filter(|(r, _)| r.total > 0)
            .map(|(r, id)| {
                let end_ms = r
                    .window
                    .saturating_add(2)
                    .saturating_mul(r.expiry)
                    .saturating_mul(1000);
                Update {
                    id: id.clone(),
                    key: r.key.to_owned(),
                    field: format!("nodes.{}", node_field(r.node)),
                    total: i64::try_from(r.total).unwrap_or(i64::MAX),
                    expire_at: DateTime::from_millis(i64::try_from(end_ms).unwrap_or(i64::MAX)),
                }
            })
            .collect();
        let wanted = ids.clone();
        let found = block_on(self.with_windows(move |windows| async move {
            let mut tasks = tokio::task::JoinSet::new();
            for u in updates {
                let windows = windows.clone();
                tasks.spawn(async move {
                    let mut attempt = 0;
                    loop {
                        let result = windows
                            .update_one(
                                doc! { "_id": &u.id },
                                doc! {
                                    "$max": { &u.field: u.total, "expireAt": u.expire_at },
                                    "$setOnInsert": { "key": &u.key },
                                },
                            )
                            .upsert(true)
                            .await;
                        match result {
                            Err(e) if is_duplicate_key(&e) && attempt < UPSERT_RETRIES => {
                                attempt += 1
                            }
                            Err(e) => return Err(storage_error(e)),
                            Ok(_) => return Ok(()),
                        }
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| Error::storage_msg(BACKEND, format!("an update failed: {e}")))??;
            }
            let mut cursor = windows
                .find(doc! { "_id": { "$in": &wanted } })
                .projection(doc! { "nodes": 1 })
                .await
                .map_err(storage_error)?;
            let mut totals = HashMap::new();
            while cursor.advance().await.map_err(storage_error)? {
                let document: Document = cursor.deserialize_current().map_err(storage_error)?;
                if let Ok(id) = document.get_str("_id") {
                    totals.insert(id.to_owned(), sum_nodes(&document));
                }
            }
            Ok(totals)
        }))??;
        Ok(ids
            .iter()
            .map(|id| found.get(id).copied().unwrap_or(0))
            .collect())
    }

    fn check(&self) -> bool {
        block_on(AsyncStorage::check(self)).unwrap_or(false)
    }

    /// The document `{_id: "limitstore-wb-incarnation", marker}` of the
    /// window collection (no `expireAt`, so the TTL index keeps it),
    /// upserted with `$setOnInsert` and read back.
    fn incarnation(&self, candidate: &str) -> Result<Option<String>> {
        let candidate = candidate.to_owned();
        block_on(self.with_windows(move |windows| async move {
            let id = doc! { "_id": INCARNATION_ID };
            let upserted = windows
                .update_one(
                    id.clone(),
                    doc! { "$setOnInsert": { "marker": &candidate } },
                )
                .upsert(true)
                .await;
            match upserted {
                // Another node inserted it at the same instant: it is there.
                Err(e) if !is_duplicate_key(&e) => return Err(storage_error(e)),
                _ => {}
            }
            let found = windows.find_one(id).await.map_err(storage_error)?;
            Ok(found.and_then(|d| d.get_str("marker").ok().map(str::to_owned)))
        }))?
    }

    fn clear(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        block_on(self.with_windows(move |windows| async move {
            windows
                .delete_many(doc! { "key": key, "_id": { "$regex": "^limitstore-wb/" } })
                .await
                .map(drop)
                .map_err(storage_error)
        }))?
    }

    /// Removes every document of both collections, write-behind documents
    /// included (the storage's own [`reset`](AsyncStorage::reset)).
    fn reset(&self) -> Result<Option<u64>> {
        block_on(AsyncStorage::reset(self))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_become_plain_field_names() {
        assert_eq!(node_field("web-1"), "web-1");
        assert_eq!(node_field("a.b$c%d"), "a%2Eb%24c%25d");
    }

    #[test]
    fn totals_sum_every_node() {
        let d = doc! { "nodes": { "a": 3i64, "b": 4i32, "c": 2.0 } };
        assert_eq!(sum_nodes(&d), 9);
        assert_eq!(sum_nodes(&doc! {}), 0);
    }
}
