//! The documents, filters and update pipelines of the MongoDB storage, and
//! the decoding of what the server returns. Everything here is pure, so the
//! shapes are unit-tested without a server.
//!
//! Layout (that of Python `limits`):
//!
//! - `counters`: `{_id: key, count: Int64, expireAt: Date}`
//! - `windows`, moving window: `{_id: key, entries: [Double, ...], expireAt: Date}`,
//!   entries are hit times in Unix seconds, newest first
//! - `windows`, sliding window counter: `{_id: key, previousCount: Int64,
//!   currentCount: Int64, expireAt: Date, _acquired: Bool}`, where
//!   `expireAt` is the end of the current window plus one window
//!
//! Every time the pipelines compare against is the client's clock, passed
//! in as a literal `now` (see the module docs for why not `$$NOW`).

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::error::{Error, Result};
use crate::storage::{MovingWindow, SlidingWindow};

use super::BACKEND;

/// The MongoDB error code of a duplicate key.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Milliseconds in `expiry` seconds (validated to at most 100 years, so it fits).
fn millis(expiry: u64) -> i64 {
    expiry as i64 * 1000
}

/// The filter of one key.
pub(crate) fn by_id(key: &str) -> Document {
    doc! { "_id": key }
}

/// The filter of one key whose `expireAt` has not passed at `now`.
pub(crate) fn live(key: &str, now: DateTime) -> Document {
    doc! { "_id": key, "expireAt": { "$gte": now } }
}

/// Fixed window: one pipeline update that restarts the window when it has
/// passed (count = amount, new expiry) and adds `amount` otherwise; with
/// `elastic`, every increment sets the expiry to `expiry` from now.
pub(crate) fn incr_pipeline(
    now: DateTime,
    expiry: u64,
    elastic: bool,
    amount: u64,
) -> Vec<Document> {
    let amount = amount as i64;
    let new_expiry = DateTime::from_millis(now.timestamp_millis() + millis(expiry));
    // A missing `expireAt` (a new document) sorts before every date.
    let expired = doc! { "$lt": ["$expireAt", now] };
    let expire_at: Bson = if elastic {
        new_expiry.into()
    } else {
        doc! { "$cond": [expired.clone(), new_expiry, "$expireAt"] }.into()
    };
    vec![doc! {
        "$set": {
            "count": { "$cond": [expired, amount, { "$add": ["$count", amount] }] },
            "expireAt": expire_at,
        }
    }]
}

/// Moving window: the filter that admits `amount` more entries. After adding
/// them, the entry now at index `limit - amount` would be the oldest one
/// kept; it must be absent or lie outside the window.
pub(crate) fn acquire_filter(
    key: &str,
    limit: u64,
    expiry: u64,
    amount: u64,
    now: f64,
) -> Document {
    let boundary = format!("entries.{}", limit - amount);
    doc! { "_id": key, boundary: { "$not": { "$gte": now - expiry as f64 } } }
}

/// Moving window: push `amount` entries at the head, keep the newest `limit`.
pub(crate) fn acquire_update(limit: u64, expiry: u64, amount: u64, now: f64) -> Document {
    let entries = vec![Bson::Double(now); amount as usize];
    let expire_at = DateTime::from_millis((now * 1000.0) as i64 + millis(expiry));
    doc! {
        "$push": { "entries": { "$each": entries, "$position": 0, "$slice": limit as i64 } },
        "$set": { "expireAt": expire_at },
    }
}

/// Moving window: the entries of the first `limit` that are inside the
/// window, as `{min, count}`.
pub(crate) fn moving_window_pipeline(
    key: &str,
    limit: u64,
    expiry: u64,
    now: f64,
) -> Vec<Document> {
    vec![
        doc! { "$match": { "_id": key } },
        doc! { "$project": { "inWindow": { "$filter": {
            "input": { "$slice": [{ "$ifNull": ["$entries", []] }, limit as i64] },
            "as": "entry",
            "cond": { "$gte": ["$$entry", now - expiry as f64] },
        } } } },
        doc! { "$project": { "min": { "$min": "$inWindow" }, "count": { "$size": "$inWindow" } } },
    ]
}

/// Decodes the result of [`moving_window_pipeline`] (`None`: no document).
pub(crate) fn moving_window_from(result: Option<Document>, now: f64) -> Result<MovingWindow> {
    let Some(doc) = result else {
        return Ok(MovingWindow {
            start: now,
            count: 0,
        });
    };
    let count = number(&doc, "count")?.unwrap_or(0);
    let start = match doc.get("min") {
        Some(Bson::Double(t)) if count > 0 => *t,
        Some(Bson::Int64(t)) if count > 0 => *t as f64,
        Some(Bson::Int32(t)) if count > 0 => f64::from(*t),
        _ => now,
    };
    Ok(MovingWindow { start, count })
}

/// Sliding window counter: the conditions on the stored `expireAt` at `now`.
/// `fresh`: no document, or one whose current window ended more than a
/// window ago (both counts are stale); `roll`: the current window ended, so
/// it becomes the previous one.
fn sliding_conditions(now: DateTime, window_ms: i64) -> (Document, Document) {
    let fresh = doc! { "$lte": ["$expireAt", now] };
    let roll = doc! { "$lte": [{ "$subtract": ["$expireAt", now] }, window_ms] };
    (fresh, roll)
}

/// Sliding window counter: the stage that brings a document's windows up to
/// `now`, as `limits` does, except that a document more than two windows
/// old starts afresh (`limits` would carry its stale count over until the
/// TTL sweep removed it).
fn sliding_roll_stage(now: DateTime, window_ms: i64) -> Document {
    let (fresh, roll) = sliding_conditions(now, window_ms);
    let zero = 0_i64;
    doc! { "$set": {
        "previousCount": { "$cond": [fresh.clone(), zero, { "$cond": [
            roll.clone(),
            { "$ifNull": ["$currentCount", zero] },
            { "$ifNull": ["$previousCount", zero] },
        ] }] },
        "currentCount": { "$cond": [fresh.clone(), zero, { "$cond": [
            roll.clone(), zero, { "$ifNull": ["$currentCount", zero] },
        ] }] },
        "expireAt": { "$cond": [
            fresh,
            DateTime::from_millis(now.timestamp_millis() + 2 * window_ms),
            { "$cond": [roll, { "$add": ["$expireAt", window_ms] }, "$expireAt"] },
        ] },
    } }
}

/// Sliding window counter: roll, weigh, and add `amount` to the current
/// window if `floor(previous * weight + current) + amount <= limit`; the
/// outcome is left in `_acquired` (the document `limits` writes).
pub(crate) fn sliding_acquire_pipeline(
    now: DateTime,
    limit: u64,
    expiry: u64,
    amount: u64,
) -> Vec<Document> {
    let window_ms = millis(expiry);
    let amount = amount as i64;
    let next_window_start = DateTime::from_millis(now.timestamp_millis() + window_ms);
    vec![
        sliding_roll_stage(now, window_ms),
        doc! { "$set": { "curWeightedCount": { "$floor": { "$add": [
            { "$multiply": ["$previousCount", { "$divide": [
                { "$max": [0_i64, { "$subtract": ["$expireAt", next_window_start] }] },
                window_ms,
            ] }] },
            "$currentCount",
        ] } } } },
        doc! { "$set": { "_acquired": {
            "$lte": [{ "$add": ["$curWeightedCount", amount] }, limit as i64],
        } } },
        doc! { "$set": { "currentCount": {
            "$cond": ["$_acquired", { "$add": ["$currentCount", amount] }, "$currentCount"],
        } } },
        doc! { "$unset": ["curWeightedCount"] },
    ]
}

/// Sliding window counter: the document as of `now`, rolled but not written.
pub(crate) fn sliding_view_pipeline(key: &str, now: DateTime, expiry: u64) -> Vec<Document> {
    let window_ms = millis(expiry);
    let (fresh, _) = sliding_conditions(now, window_ms);
    vec![
        doc! { "$match": { "_id": key } },
        // Decided before the roll, which gives a stale document a new expiry.
        doc! { "$set": { "fresh": fresh } },
        sliding_roll_stage(now, window_ms),
        doc! { "$project": {
            "fresh": 1, "previousCount": 1, "currentCount": 1, "expireAt": 1,
        } },
    ]
}

/// Decodes the result of [`sliding_view_pipeline`] (evaluated at `now`): the
/// current window ends one window before `expireAt`; the previous one weighs
/// for the part of it still to come.
pub(crate) fn sliding_window_from(
    result: Option<Document>,
    now: DateTime,
    expiry: u64,
) -> Result<SlidingWindow> {
    let empty = SlidingWindow {
        previous_count: 0,
        previous_expires_in: 0.0,
        current_count: 0,
        current_expires_in: 0.0,
    };
    let Some(doc) = result else {
        return Ok(empty);
    };
    // A stale document is one nobody has hit for two windows: nothing counts.
    if doc.get_bool("fresh").unwrap_or(false) {
        return Ok(empty);
    }
    let previous_count = number(&doc, "previousCount")?.unwrap_or(0);
    let current_count = number(&doc, "currentCount")?.unwrap_or(0);
    let expire_at = match doc.get("expireAt") {
        Some(Bson::DateTime(d)) => *d,
        other => {
            return Err(Error::storage_msg(
                BACKEND,
                format!("sliding window document has no date `expireAt`: {other:?}"),
            ))
        }
    };
    let current_expires_in =
        ((expire_at.timestamp_millis() - now.timestamp_millis()) as f64 / 1000.0).max(0.0);
    let previous_expires_in = if previous_count > 0 {
        (current_expires_in - expiry as f64).max(0.0)
    } else {
        0.0
    };
    Ok(SlidingWindow {
        previous_count,
        previous_expires_in,
        current_count,
        current_expires_in,
    })
}

/// A count field: Int64 (ours), Int32 (small counts written by pymongo) or
/// Double (an Int64 sum past 2^63 becomes one). `None` when absent or null.
pub(crate) fn number(doc: &Document, field: &str) -> Result<Option<u64>> {
    match doc.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int64(n)) => Ok(Some((*n).max(0) as u64)),
        Some(Bson::Int32(n)) => Ok(Some((*n).max(0) as u64)),
        Some(Bson::Double(n)) if n.is_finite() => Ok(Some(n.max(0.0) as u64)),
        Some(other) => Err(Error::storage_msg(
            BACKEND,
            format!("field `{field}` holds {other:?}, not a count"),
        )),
    }
}

/// The `expireAt` of a document as Unix seconds, 0 when absent.
pub(crate) fn expiry_from(result: Option<Document>) -> Result<f64> {
    match result.as_ref().and_then(|d| d.get("expireAt")) {
        None | Some(Bson::Null) => Ok(0.0),
        Some(Bson::DateTime(d)) => Ok(d.timestamp_millis() as f64 / 1000.0),
        Some(other) => Err(Error::storage_msg(
            BACKEND,
            format!("field `expireAt` holds {other:?}, not a date"),
        )),
    }
}

/// Whether a driver error is a duplicate-key error (an upsert that lost the
/// race to insert, or whose filter refused an existing document).
pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incr_restarts_an_expired_window_only() {
        let now = DateTime::from_millis(1_000_000);
        let p = incr_pipeline(now, 60, false, 3);
        let set = p[0].get_document("$set").unwrap();
        let expire = set.get_document("expireAt").unwrap();
        let cond = expire.get_array("$cond").unwrap();
        assert_eq!(cond[1], Bson::DateTime(DateTime::from_millis(1_060_000)));
        assert_eq!(cond[2], Bson::String("$expireAt".into()));
        let count = set
            .get_document("count")
            .unwrap()
            .get_array("$cond")
            .unwrap();
        assert_eq!(count[1], Bson::Int64(3));
        let elastic = incr_pipeline(now, 60, true, 3);
        assert_eq!(
            elastic[0].get_document("$set").unwrap().get("expireAt"),
            Some(&Bson::DateTime(DateTime::from_millis(1_060_000)))
        );
    }

    #[test]
    fn acquire_checks_the_entry_limit_minus_amount_back() {
        let f = acquire_filter("k", 10, 60, 3, 1000.0);
        assert_eq!(
            f.get_document("entries.7").unwrap(),
            &doc! { "$not": { "$gte": 940.0 } }
        );
        let u = acquire_update(10, 60, 3, 1000.0);
        let push = u
            .get_document("$push")
            .unwrap()
            .get_document("entries")
            .unwrap();
        assert_eq!(push.get_array("$each").unwrap().len(), 3);
        assert_eq!(push.get_i64("$slice").unwrap(), 10);
        assert_eq!(push.get_i32("$position").unwrap(), 0);
    }

    #[test]
    fn decoding() {
        let w = moving_window_from(Some(doc! { "min": 5.5, "count": 2_i32 }), 9.0).unwrap();
        assert_eq!((w.start, w.count), (5.5, 2));
        let w = moving_window_from(Some(doc! { "min": Bson::Null, "count": 0_i32 }), 9.0).unwrap();
        assert_eq!((w.start, w.count), (9.0, 0));
        assert_eq!(moving_window_from(None, 3.0).unwrap().start, 3.0);

        let now = DateTime::from_millis(100_000);
        let view = doc! {
            "fresh": false, "previousCount": 4_i64, "currentCount": 1_i32,
            "expireAt": DateTime::from_millis(115_000),
        };
        let s = sliding_window_from(Some(view), now, 10).unwrap();
        assert_eq!((s.previous_count, s.current_count), (4, 1));
        assert!((s.current_expires_in - 15.0).abs() < 1e-9);
        assert!((s.previous_expires_in - 5.0).abs() < 1e-9);
        let stale = doc! { "fresh": true, "previousCount": 4_i64, "currentCount": 1_i64 };
        assert_eq!(
            sliding_window_from(Some(stale), now, 10)
                .unwrap()
                .current_count,
            0
        );

        assert_eq!(number(&doc! { "c": 2.0 }, "c").unwrap(), Some(2));
        assert!(number(&doc! { "c": "x" }, "c").unwrap_err().is_storage());
        assert_eq!(expiry_from(None).unwrap(), 0.0);
        assert_eq!(
            expiry_from(Some(doc! { "expireAt": DateTime::from_millis(1500) })).unwrap(),
            1.5
        );
    }
}
