//! The MongoDB storage against a real server speaking the MongoDB protocol
//! (SecantusDB, started here): the shared suite through the synchronous and
//! the asynchronous API, the documents Python `limits` reads and writes,
//! options, and a stopped and a hung server.
#![cfg(feature = "mongodb")]

#[macro_use]
mod common;
#[macro_use]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::mongodb::bson::{doc, Bson, DateTime, Document};
use common::Subject;
use limitstore::aio::{async_storage_from_string, AsyncStorage};
use limitstore::{storage_from_string, ErrorKind, MongoDbStorage, Options};
use servers::mongodb::{runtime, shared, MongoServer};

/// A database no other test uses.
fn unique_database(tag: &str) -> String {
    servers::unique_prefix(tag)
}

fn real_time(server: Arc<MongoServer>) -> Box<dyn Fn(Duration) + Send + Sync> {
    Box::new(move |d| {
        let _alive = &server;
        std::thread::sleep(d)
    })
}

/// The synchronous API (`mongodb://`, bridged), in its own database.
fn sync_subject() -> Subject {
    let server = shared();
    let options = Options::new().with("database_name", unique_database("sync"));
    let storage = storage_from_string(&server.uri(), &options).unwrap();
    Subject {
        storage,
        advance: real_time(server),
        slack: 0.5,
        lacks: &[],
    }
}

/// The asynchronous API (`async+mongodb://`, natively async).
fn async_subject() -> Subject {
    let server = shared();
    let options = Options::new().with("database_name", unique_database("async"));
    let storage = async_storage_from_string(&format!("async+{}", server.uri()), &options).unwrap();
    common::via_async(storage, real_time(server), 0.5)
}

/// The shared suite through the synchronous API.
mod sync_api {
    use super::*;
    storage_suite!({
        require_mongo_or_skip!();
        sync_subject
    });
}

/// The shared suite through the asynchronous API.
mod async_api {
    use super::*;
    storage_suite!({
        require_mongo_or_skip!();
        async_subject
    });
}

/// Runs `f` with the driver on the harness runtime.
fn raw<T>(f: impl std::future::Future<Output = T>) -> T {
    runtime().block_on(f)
}

fn raw_doc(server: &MongoServer, db: &str, collection: &str, id: &str) -> Option<Document> {
    let client = server.client();
    raw(async {
        client
            .database(db)
            .collection::<Document>(collection)
            .find_one(doc! { "_id": id })
            .await
            .unwrap()
    })
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn documents_are_those_of_python_limits() {
    require_mongo_or_skip!();
    let server = shared();
    let db = unique_database("layout");
    let st =
        storage_from_string(&server.uri(), &Options::new().with("database_name", &*db)).unwrap();
    let start = now_secs();

    // Fixed window: {_id, count, expireAt}, count an Int64.
    assert_eq!(st.incr("LIMITER/a/1/1/minute", 60, false, 3).unwrap(), 3);
    let d = raw_doc(&server, &db, "counters", "LIMITER/a/1/1/minute").unwrap();
    assert_eq!(d.get("count"), Some(&Bson::Int64(3)));
    let expire_at = d.get_datetime("expireAt").unwrap().timestamp_millis() as f64 / 1000.0;
    assert!(
        (expire_at - (start + 60.0)).abs() < 2.0,
        "{expire_at} vs {start}"
    );
    assert_eq!(d.len(), 3, "{d:?}");

    // Moving window: {_id, entries: [Double, newest first], expireAt}.
    let mw = st.moving_window().unwrap();
    assert!(mw.acquire_entry("mw", 10, 30, 2).unwrap());
    let d = raw_doc(&server, &db, "windows", "mw").unwrap();
    let entries = d.get_array("entries").unwrap();
    assert_eq!(entries.len(), 2);
    let Bson::Double(ts) = entries[0] else {
        panic!("{entries:?}")
    };
    assert!((ts - start).abs() < 2.0, "{ts}");
    let expire_at = d.get_datetime("expireAt").unwrap().timestamp_millis() as f64 / 1000.0;
    assert!((expire_at - (start + 30.0)).abs() < 2.0, "{expire_at}");

    // Sliding window counter: {_id, previousCount, currentCount, expireAt, _acquired}.
    let sw = st.sliding_window().unwrap();
    assert!(sw.acquire_sliding_window_entry("sw", 10, 30, 4).unwrap());
    let d = raw_doc(&server, &db, "windows", "sw").unwrap();
    assert_eq!(d.get("previousCount"), Some(&Bson::Int64(0)));
    assert_eq!(d.get("currentCount"), Some(&Bson::Int64(4)));
    assert_eq!(d.get("_acquired"), Some(&Bson::Boolean(true)));
    assert!(!d.contains_key("curWeightedCount"));
    // The current window ends one window after the first hit; the document
    // lives one more window, while it weighs as the previous one.
    let expire_at = d.get_datetime("expireAt").unwrap().timestamp_millis() as f64 / 1000.0;
    assert!((expire_at - (start + 60.0)).abs() < 2.0, "{expire_at}");

    // TTL indexes on expireAt in both collections.
    let client = server.client();
    for collection in ["counters", "windows"] {
        let indexes: Vec<Document> = raw(async {
            let mut cursor = client
                .database(&db)
                .run_command(doc! { "listIndexes": collection })
                .await
                .unwrap()
                .get_document("cursor")
                .unwrap()
                .get_array("firstBatch")
                .unwrap()
                .clone();
            cursor.retain(|i| {
                i.as_document()
                    .is_some_and(|d| d.get_str("name") == Ok("expireAt_1"))
            });
            cursor
                .into_iter()
                .map(|b| b.as_document().unwrap().clone())
                .collect()
        });
        assert_eq!(indexes.len(), 1, "{collection}: {indexes:?}");
        let ttl = indexes[0].get("expireAfterSeconds").unwrap();
        assert!(
            matches!(ttl, Bson::Int32(0) | Bson::Int64(0) | Bson::Double(0.0)),
            "{ttl:?}"
        );
    }

    // clear() removes the key from both collections.
    st.incr("sw", 60, false, 1).unwrap();
    st.clear("sw").unwrap();
    assert!(raw_doc(&server, &db, "windows", "sw").is_none());
    assert!(raw_doc(&server, &db, "counters", "sw").is_none());
}

#[test]
fn documents_written_by_python_limits_are_shared() {
    require_mongo_or_skip!();
    // What pymongo writes for `limits`: Int32 counts, client-time dates.
    let server = shared();
    let db = unique_database("shared");
    let st =
        storage_from_string(&server.uri(), &Options::new().with("database_name", &*db)).unwrap();
    let now = now_secs();
    let at = |secs: f64| DateTime::from_millis((secs * 1000.0) as i64);
    let client = server.client();
    raw(async {
        let database = client.database(&db);
        database
            .collection::<Document>("counters")
            .insert_many([
                doc! { "_id": "live", "count": 7_i32, "expireAt": at(now + 30.0) },
                doc! { "_id": "stale", "count": 9_i32, "expireAt": at(now - 5.0) },
            ])
            .await
            .unwrap();
        database
            .collection::<Document>("windows")
            .insert_many([
                doc! {
                    "_id": "mw",
                    "entries": [now - 1.0, now - 2.0, now - 100.0],
                    "expireAt": at(now + 30.0),
                },
                doc! {
                    "_id": "sw", "previousCount": 0_i32, "currentCount": 3_i32,
                    "expireAt": at(now + 50.0), "_acquired": true,
                },
                doc! {
                    "_id": "sw-stale", "previousCount": 5_i32, "currentCount": 5_i32,
                    "expireAt": at(now - 1.0), "_acquired": true,
                },
            ])
            .await
            .unwrap();
    });
    assert_eq!(st.get("live").unwrap(), 7);
    assert_eq!(st.incr("live", 30, false, 1).unwrap(), 8);
    // Expired but not yet swept: absent, and the next hit starts afresh.
    assert_eq!(st.get("stale").unwrap(), 0);
    assert_eq!(st.get_expiry("stale").unwrap(), 0.0);
    assert_eq!(st.incr("stale", 30, false, 1).unwrap(), 1);

    let mw = st.moving_window().unwrap();
    let w = mw.get_moving_window("mw", 3, 30).unwrap();
    assert_eq!(w.count, 2);
    assert!((w.start - (now - 2.0)).abs() < 1e-3, "{w:?}");
    assert!(mw.acquire_entry("mw", 3, 30, 1).unwrap());
    assert!(!mw.acquire_entry("mw", 3, 30, 1).unwrap());

    let sw = st.sliding_window().unwrap();
    let w = sw.get_sliding_window("sw", 30).unwrap();
    assert_eq!((w.previous_count, w.current_count), (0, 3));
    assert!((w.current_expires_in - 50.0).abs() < 2.0, "{w:?}");
    assert!(sw.acquire_sliding_window_entry("sw", 4, 30, 1).unwrap());
    assert!(!sw.acquire_sliding_window_entry("sw", 4, 30, 1).unwrap());
    // A document no one hit for two windows counts nothing.
    let w = sw.get_sliding_window("sw-stale", 30).unwrap();
    assert_eq!((w.previous_count, w.current_count), (0, 0), "{w:?}");
    assert!(sw
        .acquire_sliding_window_entry("sw-stale", 1, 30, 1)
        .unwrap());
    let d = raw_doc(&server, &db, "windows", "sw-stale").unwrap();
    assert_eq!(d.get("currentCount"), Some(&Bson::Int64(1)), "{d:?}");
}

#[test]
fn expired_documents_are_swept_by_the_ttl_index() {
    require_mongo_or_skip!();
    let server = shared(); // its TTL monitor runs every second
    let db = unique_database("ttl");
    let st =
        storage_from_string(&server.uri(), &Options::new().with("database_name", &*db)).unwrap();
    assert_eq!(st.incr("k", 1, false, 1).unwrap(), 1);
    assert!(st
        .moving_window()
        .unwrap()
        .acquire_entry("m", 2, 1, 1)
        .unwrap());
    servers::wait_until("the TTL sweep", Duration::from_secs(10), || {
        raw_doc(&server, &db, "counters", "k").is_none()
            && raw_doc(&server, &db, "windows", "m").is_none()
    });
}

#[test]
fn options_choose_the_database_and_collections() {
    require_mongo_or_skip!();
    let server = shared();
    let db = unique_database("names");
    let uri = format!(
        "{}/?database_name={db}&counter_collection_name=fixed&window_collection_name=logs",
        server.uri()
    );
    let st = MongoDbStorage::new(&uri).unwrap();
    assert_eq!(st.database_name(), db);
    assert_eq!(
        (st.counter_collection_name(), st.window_collection_name()),
        ("fixed", "logs")
    );
    let other =
        storage_from_string(&server.uri(), &Options::new().with("database_name", &*db)).unwrap();
    raw(async {
        st.incr("k", 60, false, 2).await.unwrap();
        st.moving_window()
            .unwrap()
            .acquire_entry("k", 5, 60, 1)
            .await
            .unwrap();
    });
    assert!(raw_doc(&server, &db, "fixed", "k").is_some());
    assert!(raw_doc(&server, &db, "logs", "k").is_some());
    // The default collections of the same database are other counters.
    assert_eq!(other.get("k").unwrap(), 0);
    assert_eq!(other.reset().unwrap(), Some(0));
    assert_eq!(raw(st.reset()).unwrap(), Some(2));
}

#[test]
fn bad_uris_and_options_are_configuration_errors() {
    let started = Instant::now();
    for uri in [
        "mongodb://",
        "mongodb://h:notaport",
        "mongodb://h?database_name=a.b",
        "mongodb://h?counter_collection_name=",
        "mongodb://h?noSuchOption=1",
        "mongodb://h?serverSelectionTimeoutMS=-1",
        "mongodb://h?connectTimeoutMS=0",
        "mongodb://h?tls=maybe",
        "mongodb://h?readPreference=nearest-ish",
        "mongodb://h?readPreferenceTags=dc:ny",
        "mongodb://h1,h2?directConnection=true",
        "mongodb+srv://h:27017",
        "mongodb+srv://h1,h2",
        "mongodb+srv://no-such-host.invalid/?serverSelectionTimeoutMS=1000",
    ] {
        let e = storage_from_string(uri, &Options::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{uri}: {e}");
        let e = async_storage_from_string(&format!("async+{uri}"), &Options::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{uri}: {e}");
    }
    let e = storage_from_string(
        "mongodb://h",
        &Options::new().with("window_collection_name", "a$b"),
    )
    .unwrap_err();
    assert!(e.is_configuration(), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Driver options pass through.
    storage_from_string(
        "mongodb://h1:1,h2:2/admin?replicaSet=rs&retryWrites=false&appName=x&w=majority",
        &Options::new().with("maxPoolSize", 4),
    )
    .unwrap();
}

/// Short timeouts: a call may take at most 300 + 300 ms.
const FAST: &str = "serverSelectionTimeoutMS=300&connectTimeoutMS=300&socketTimeoutMS=300";

/// Runs `f`, checks it failed with a storage error within `bound`, and
/// returns how long it took.
fn storage_error_within<T: std::fmt::Debug>(
    what: &str,
    bound: Duration,
    f: impl FnOnce() -> limitstore::Result<T>,
) -> Duration {
    let started = Instant::now();
    let result = f();
    let took = started.elapsed();
    let e = result.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Storage, "{what}: {e}");
    assert!(took < bound, "{what} took {took:?}");
    eprintln!("{what}: storage error after {took:?}: {e}");
    took
}

#[test]
fn a_stopped_server_is_a_storage_error_within_the_timeouts() {
    require_mongo_or_skip!();
    let mut server = MongoServer::start(60.0);
    let uri = format!("{}/?{FAST}", server.uri());
    let st = storage_from_string(&uri, &Options::new()).unwrap();
    let ast = async_storage_from_string(&format!("async+{uri}"), &Options::new()).unwrap();
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    assert_eq!(raw(ast.incr("k", 60, false, 1)).unwrap(), 2);
    server.kill();
    let bound = Duration::from_millis(1500);
    storage_error_within("incr", bound, || st.incr("k", 60, false, 1));
    storage_error_within("get", bound, || st.get("k"));
    storage_error_within("get_expiry", bound, || st.get_expiry("k"));
    storage_error_within("clear", bound, || st.clear("k"));
    storage_error_within("reset", bound, || st.reset());
    let mw = st.moving_window().unwrap();
    storage_error_within("acquire_entry", bound, || mw.acquire_entry("m", 5, 60, 1));
    storage_error_within("get_moving_window", bound, || {
        mw.get_moving_window("m", 5, 60)
    });
    let sw = st.sliding_window().unwrap();
    storage_error_within("acquire_sliding_window_entry", bound, || {
        sw.acquire_sliding_window_entry("s", 5, 60, 1)
    });
    storage_error_within("get_sliding_window", bound, || {
        sw.get_sliding_window("s", 60)
    });
    storage_error_within("async incr", bound, || raw(ast.incr("k", 60, false, 1)));
    let started = Instant::now();
    assert!(!st.check());
    assert!(!raw(ast.check()));
    assert!(started.elapsed() < 2 * bound, "{:?}", started.elapsed());
}

#[test]
fn no_server_at_all_is_a_storage_error_within_the_timeouts() {
    require_mongo_or_skip!();
    // Nothing listens on this port: construction succeeds (it does not
    // connect), every call fails.
    let port = servers::free_port();
    let st = storage_from_string(
        &format!("mongodb://127.0.0.1:{port}/?{FAST}"),
        &Options::new(),
    )
    .unwrap();
    storage_error_within("incr", Duration::from_millis(1500), || {
        st.incr("k", 60, false, 1)
    });
    assert!(!st.check());
}

#[test]
fn a_hung_server_is_a_storage_error_within_the_timeouts() {
    require_mongo_or_skip!();
    let server = MongoServer::start(60.0);
    let st = storage_from_string(&format!("{}/?{FAST}", server.uri()), &Options::new()).unwrap();
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    server.signal("STOP");
    let bound = Duration::from_millis(1500);
    storage_error_within("incr on a hung server", bound, || {
        st.incr("k", 60, false, 1).inspect_err(|e| {
            assert!(e.is_timeout() && e.is_retryable(), "{e:#}");
        })
    });
    storage_error_within("get on a hung server", bound, || st.get("k"));
    let started = Instant::now();
    assert!(!st.check());
    assert!(started.elapsed() < bound);
    // Dropping the server kills the stopped process.
}

#[test]
fn the_async_api_works_from_any_runtime() {
    require_mongo_or_skip!();
    let server = shared();
    let options = Options::new().with("database_name", unique_database("rt"));
    let storage = async_storage_from_string(&format!("async+{}", server.uri()), &options).unwrap();
    // A current-thread runtime without I/O or timers: the storage's work
    // runs on the crate's own runtime.
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    bare.block_on(async {
        assert_eq!(storage.incr("k", 60, false, 2).await.unwrap(), 2);
        assert_eq!(storage.get("k").await.unwrap(), 2);
        let mw = storage.moving_window().unwrap();
        assert!(mw.acquire_entry("m", 1, 60, 1).await.unwrap());
        assert!(!mw.acquire_entry("m", 1, 60, 1).await.unwrap());
        assert!(storage.check().await);
    });
    // Constructing from inside a runtime works too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let uri = server.uri();
    let db = unique_database("rt2");
    rt.block_on(async move {
        let st = storage_from_string(&uri, &Options::new().with("database_name", db)).unwrap();
        // A synchronous call from inside a runtime still completes.
        assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    });
}

#[test]
fn two_clients_racing_on_new_keys_admit_exactly_the_limit() {
    require_mongo_or_skip!();
    // Two storages are two clients (as two processes would be); 50 tasks on
    // each hit the same new keys at once, so the inserts race too.
    let server = shared();
    let options = Options::new().with("database_name", unique_database("race"));
    let uri = format!("async+{}", server.uri());
    let clients: Vec<Arc<dyn AsyncStorage>> = (0..2)
        .map(|_| async_storage_from_string(&uri, &options).unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admitted = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let st = clients[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                let fixed = st.incr("fixed", 60, false, 1).await.unwrap() <= 5;
                let moving = st
                    .moving_window()
                    .unwrap()
                    .acquire_entry("moving", 5, 60, 1)
                    .await
                    .unwrap();
                let sliding = st
                    .sliding_window()
                    .unwrap()
                    .acquire_sliding_window_entry("sliding", 5, 60, 1)
                    .await
                    .unwrap();
                [fixed, moving, sliding]
            }));
        }
        let mut admitted = [0; 3];
        for task in tasks {
            for (n, ok) in admitted.iter_mut().zip(task.await.unwrap()) {
                *n += usize::from(ok);
            }
        }
        admitted
    });
    assert_eq!(admitted, [5, 5, 5]);
    let st = &clients[0];
    assert_eq!(raw(st.get("fixed")).unwrap(), 100);
    let mw = st.moving_window().unwrap();
    assert_eq!(raw(mw.get_moving_window("moving", 5, 60)).unwrap().count, 5);
    let sw = st.sliding_window().unwrap();
    assert_eq!(
        raw(sw.get_sliding_window("sliding", 60))
            .unwrap()
            .current_count,
        5
    );
}

#[test]
fn moving_window_limits_fit_in_one_document() {
    let st = storage_from_string("mongodb://127.0.0.1:1", &Options::new()).unwrap();
    let mw = st.moving_window().unwrap();
    let too_many = limitstore::mongodb::MAX_WINDOW_ENTRIES + 1;
    let e = mw.acquire_entry("k", too_many, 60, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = mw.get_moving_window("k", too_many, 60).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

/// MongoDB as a write-behind remote: `$max` upserts per node, one query for
/// the totals.
mod write_behind_remote {
    use super::*;

    #[test]
    fn batches_and_several_writers_total_exactly() {
        require_mongo_or_skip!();
        let server = shared();
        let uri = format!("{}/?database_name={}", server.uri(), unique_database("wb"));
        let remote = Arc::new(MongoDbStorage::new(&uri).unwrap());
        common::remote::batches_answer_per_key_and_repeat_harmlessly(&*remote, "mo");
        common::remote::several_writers_total_exactly(remote.clone(), "mo");
        common::remote::budget_shares(remote, "mo");
    }

    /// A server of its own stopped (`SIGSTOP`) under a node, then let go on.
    #[test]
    fn a_stalled_server_holds_up_no_hit_and_loses_none() {
        require_mongo_or_skip!();
        let server = MongoServer::start(60.0);
        // Longer timeouts than `FAST`: a pass over 200 keys on this server
        // can take longer than 300 ms on a busy machine.
        let timeouts = "serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&socketTimeoutMS=2000";
        let uri = format!("{}/?{timeouts}", server.uri());
        common::remote::a_stalled_remote_holds_up_no_hit_and_loses_none(
            Arc::new(MongoDbStorage::new(&uri).unwrap()),
            "mo",
            &mut || server.signal("STOP"),
            &mut || server.signal("CONT"),
        );
    }

    /// The node's database wiped by another client.
    #[test]
    fn a_remote_that_forgot_is_made_whole() {
        require_mongo_or_skip!();
        let server = shared();
        let uri = format!("{}/?database_name={}", server.uri(), unique_database("wb"));
        let other = MongoDbStorage::new(&uri).unwrap();
        common::remote::a_remote_that_forgot_is_made_whole(
            Arc::new(MongoDbStorage::new(&uri).unwrap()),
            "mo",
            &mut || {
                limitstore::write_behind::SyncTarget::reset(&other).unwrap();
            },
        );
    }

    #[test]
    fn writebehind_mongodb_uri() {
        require_mongo_or_skip!();
        let server = shared();
        let base = format!(
            "writebehind+{}/?database_name={}",
            server.uri(),
            unique_database("wburi")
        );
        common::remote::write_through_nodes_share_hits(
            |id| format!("{base}&sync_interval=0&node_id={id}"),
            &format!("{base}&colour=blue"),
        );
    }
}
