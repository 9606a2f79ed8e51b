//! MongoDB storage (cargo feature `mongodb`): [`MongoDbStorage`], for
//! `mongodb://` and `mongodb+srv://` URIs.
//!
//! The storage is natively asynchronous (it implements
//! [`AsyncStorage`] with moving-window and sliding-window-counter support);
//! [`storage_from_string`](crate::storage_from_string) wraps it in
//! [`Bridged`](crate::aio::Bridged) for the synchronous API, and
//! [`async_storage_from_string`](crate::aio::async_storage_from_string)
//! (`async+mongodb://...`) returns it as it is. The driver's connections and
//! background tasks, and every operation, run on a small runtime owned by
//! this crate, so the storage works from any thread and from any executor.
//!
//! Documents follow Python `limits`' `MongoDBStorage`, so a Python service
//! and a Rust service pointed at the same database share their limits:
//!
//! | collection | document | used by |
//! | --- | --- | --- |
//! | `counters` | `{_id: key, count, expireAt}` | fixed window |
//! | `windows` | `{_id: key, entries: [unix seconds, newest first], expireAt}` | moving window |
//! | `windows` | `{_id: key, previousCount, currentCount, expireAt, _acquired}` | sliding window counter |
//!
//! Both collections get a TTL index on `expireAt` (`expireAfterSeconds: 0`),
//! created on the first write. The server's TTL sweep runs only once a
//! minute, so every read treats a document whose `expireAt` has passed as
//! absent, and every write restarts it.
//!
//! Each operation is one single-document command (`findAndModify` with an
//! update pipeline, or `update` with `$push`/`$slice` and a filter that
//! checks the entry `limit - amount` back), so counts are exact under any
//! concurrency: the server applies each update atomically. The one race the
//! server leaves to the client, two upserts of a new document colliding on
//! `_id`, is retried here rather than reported as a refusal.
//!
//! **Clocks.** Times written and compared are the client's (this
//! process's): window ends and moving-window entries, as `limits` writes
//! them. `limits` compares against the server's `$$NOW` instead; using one
//! clock keeps a client's windows consistent however far the server's clock
//! is off. Clients sharing a database should keep their clocks in sync
//! (NTP), and the server's too, since its TTL sweep removes documents by its
//! own clock.
//!
//! Options (URI query or [`Options`]); every other option is a driver
//! option (`replicaSet`, `tls`, `authSource`, `readPreference`, ...) and is
//! passed on to it; the driver refuses unknown or malformed ones, which
//! makes them configuration errors here:
//!
//! | option | meaning | default |
//! | --- | --- | --- |
//! | `database_name` | database of the two collections | `limits` |
//! | `counter_collection_name` | fixed-window collection | `counters` |
//! | `window_collection_name` | moving- and sliding-window collection | `windows` |
//! | `serverSelectionTimeoutMS` | how long a call waits for a usable server | 5000 |
//! | `connectTimeoutMS` | how long opening one connection may take | 2000 |
//! | `socketTimeoutMS` | how long a call waits for its reply once a server is selected | 5000 |
//!
//! A call therefore fails with an [`ErrorKind::Storage`](crate::ErrorKind::Storage)
//! error after at most `serverSelectionTimeoutMS + socketTimeoutMS` when the
//! server is down or hangs, and [`check`](AsyncStorage::check) (a `ping`)
//! returns false within the same bound.
//!
//! A moving window keeps one entry per admitted hit in one document, which
//! MongoDB caps at 16 MiB: limits above [`MAX_WINDOW_ENTRIES`] are
//! refused as invalid arguments.
//!
//! ```no_run
//! use limitstore::{storage_from_string, Options};
//! let storage = storage_from_string(
//!     "mongodb://localhost:27017/?serverSelectionTimeoutMS=1000",
//!     &Options::new().with("database_name", "myapp"),
//! )
//! .unwrap();
//! assert_eq!(storage.incr("user:1", 60, false, 1).unwrap(), 1);
//! let mw = storage.moving_window().unwrap();
//! assert!(mw.acquire_entry("user:1", 10, 60, 1).unwrap());
//! ```

mod config;
pub(crate) mod ops;
mod target;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_COUNTER_COLLECTION, DEFAULT_DATABASE_NAME,
    DEFAULT_SERVER_SELECTION_TIMEOUT, DEFAULT_SOCKET_TIMEOUT, DEFAULT_WINDOW_COLLECTION,
};

use self::config::MongoConfig;
use crate::aio::{
    AsyncMovingWindowSupport, AsyncSlidingWindowCounterSupport, AsyncStorage, BoxFuture,
};
use crate::clock::wall_now;
use crate::error::{Error, Result};
use crate::rt::{block_on, runtime};
use crate::storage::{
    validate_acquire, validate_amount, validate_expiry, validate_key, MovingWindow, Options,
    SlidingWindow, StorageUri,
};

/// The backend name in error messages.
const BACKEND: &str = "mongodb";

/// The largest moving-window limit on MongoDB: 2^19 entries (one document
/// holds them all, about 9 MiB of the 16 MiB MongoDB allows), below the
/// crate-wide [`MAX_MOVING_WINDOW_LIMIT`](crate::MAX_MOVING_WINDOW_LIMIT).
pub const MAX_WINDOW_ENTRIES: u64 = 1 << 19;

/// How many times an upsert that lost the race to insert a new document is
/// retried (each retry finds the document the winner inserted).
pub(crate) const UPSERT_RETRIES: usize = 3;

pub(crate) fn storage_error(e: mongodb::error::Error) -> Error {
    Error::storage(BACKEND, e)
}

/// Polls two futures together on the current task; both outputs.
async fn both<A: IntoFuture, B: IntoFuture>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (
        std::pin::pin!(a.into_future()),
        std::pin::pin!(b.into_future()),
    );
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// What every operation needs, shared with the tasks that run them.
struct Inner {
    client: Client,
    counters: Collection<Document>,
    windows: Collection<Document>,
    /// Set once both TTL indexes exist.
    indexes: tokio::sync::OnceCell<()>,
    config: MongoConfig,
}

impl Inner {
    /// `findAndModify` of the document `key` with the update pipeline
    /// `pipeline()` (built afresh per attempt, for its `now`), upsert, and
    /// the new document's `field`. An upsert that lost the race to insert
    /// is retried: it then finds the winner's document.
    async fn upsert(
        &self,
        collection: &Collection<Document>,
        key: &str,
        pipeline: impl Fn() -> Vec<Document>,
        field: &str,
    ) -> Result<Document> {
        let mut attempt = 0;
        loop {
            let result = collection
                .find_one_and_update(ops::by_id(key), pipeline())
                .upsert(true)
                .return_document(ReturnDocument::After)
                .projection(doc! { field: 1 })
                .await;
            match result {
                Err(e) if ops::is_duplicate_key(&e) && attempt < UPSERT_RETRIES => attempt += 1,
                Err(e) => return Err(storage_error(e)),
                Ok(Some(doc)) => return Ok(doc),
                Ok(None) => {
                    return Err(Error::storage_msg(
                        BACKEND,
                        format!("the upsert of `{key}` returned no document"),
                    ))
                }
            }
        }
    }

    /// The counter document of `key` if its window has not ended, with
    /// `field` only.
    async fn live_counter(&self, key: &str, field: &str) -> Result<Option<Document>> {
        self.counters
            .find_one(ops::live(key, DateTime::now()))
            .projection(doc! { field: 1 })
            .await
            .map_err(storage_error)
    }

    /// The first document `pipeline` yields on the window collection.
    async fn aggregate_one(&self, pipeline: Vec<Document>) -> Result<Option<Document>> {
        let mut cursor = self
            .windows
            .aggregate(pipeline)
            .await
            .map_err(storage_error)?;
        if !cursor.advance().await.map_err(storage_error)? {
            return Ok(None);
        }
        cursor
            .deserialize_current()
            .map(Some)
            .map_err(storage_error)
    }

    async fn ensure_indexes(&self) -> Result<()> {
        self.indexes
            .get_or_try_init(|| async {
                let index = || {
                    IndexModel::builder()
                        .keys(doc! { "expireAt": 1 })
                        .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                        .build()
                };
                let (a, b) = both(
                    self.counters.create_index(index()),
                    self.windows.create_index(index()),
                )
                .await;
                a.map_err(storage_error)?;
                b.map_err(storage_error)?;
                Ok::<_, Error>(())
            })
            .await
            .map(|_| ())
    }
}

/// Rate-limit storage on MongoDB (or a server that speaks its protocol).
///
/// URIs: `mongodb://[user:password@]host[:port][,host[:port]...][/authdb][?options]`
/// and `mongodb+srv://[user:password@]host[/authdb][?options]` (hosts from
/// DNS SRV records, resolved at construction). See the
/// [module docs](crate::mongodb) for the options, the documents and the
/// timeouts.
///
/// This type is an [`AsyncStorage`]; wrap it in
/// [`Bridged`](crate::aio::Bridged) for the synchronous
/// [`Storage`](crate::Storage) API (as
/// [`storage_from_string`](crate::storage_from_string) does). Construction
/// does not connect: the first call does, and creates the TTL indexes.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use limitstore::aio::AsyncStorage;
/// use limitstore::MongoDbStorage;
///
/// let storage = MongoDbStorage::new("mongodb://localhost:27017").unwrap();
/// assert_eq!(storage.incr("user:1", 60, false, 1).await.unwrap(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct MongoDbStorage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MongoDbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoDbStorage")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MongoDbStorage {
    /// Builds a storage from a URI string (options from its query string).
    pub fn new(uri: &str) -> Result<Self> {
        Self::from_uri(&StorageUri::parse(uri)?, &Options::new())
    }

    /// Builds a storage from a parsed URI and options (the options win over
    /// the URI's query string). A malformed URI or option is a configuration
    /// error; so is a `mongodb+srv` name that does not resolve.
    pub fn from_uri(uri: &StorageUri, options: &Options) -> Result<Self> {
        let mut merged = options.clone();
        for (k, v) in &uri.query {
            merged.insert_default(k, v.as_str());
        }
        let config = MongoConfig::parse(uri, &merged)?;
        let connection_string =
            mongodb::options::ConnectionString::parse(&config.connection_string)
                .map_err(|e| Error::configuration(format!("{BACKEND}: {e}")))?;
        let srv_timeout = config.server_selection_timeout.max(config.connect_timeout);
        // The client spawns its monitors on the runtime it is created in:
        // create it on this crate's, which lives as long as the process.
        let client = block_on(async {
            // Resolves `mongodb+srv` names; plain hosts need no I/O.
            let mut client_options =
                tokio::time::timeout(srv_timeout, ClientOptions::parse(connection_string))
                    .await
                    .map_err(|_| {
                        Error::configuration(format!(
                            "{BACKEND}: resolving the SRV records took longer than {srv_timeout:?}"
                        ))
                    })?
                    .map_err(|e| Error::configuration(format!("{BACKEND}: {e}")))?;
            client_options.server_selection_timeout = Some(config.server_selection_timeout);
            client_options.connect_timeout = Some(config.connect_timeout);
            if client_options.app_name.is_none() {
                client_options.app_name = Some("limitstore".to_owned());
            }
            Client::with_options(client_options)
                .map_err(|e| Error::configuration(format!("{BACKEND}: {e}")))
        })??;
        let database = client.database(&config.database);
        Ok(MongoDbStorage {
            inner: Arc::new(Inner {
                counters: database.collection(&config.counters),
                windows: database.collection(&config.windows),
                client,
                indexes: tokio::sync::OnceCell::new(),
                config,
            }),
        })
    }

    /// The database holding the two collections.
    pub fn database_name(&self) -> &str {
        &self.inner.config.database
    }

    /// The fixed-window collection.
    pub fn counter_collection_name(&self) -> &str {
        &self.inner.config.counters
    }

    /// The moving- and sliding-window collection.
    pub fn window_collection_name(&self) -> &str {
        &self.inner.config.windows
    }

    /// The longest a call may take before it fails with a storage error:
    /// `serverSelectionTimeoutMS + socketTimeoutMS`.
    pub fn call_timeout(&self) -> Duration {
        self.inner.config.call_timeout()
    }

    /// Runs `op` on this crate's runtime within the call timeout.
    fn run<T, F, Fut>(&self, op: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let limit = self.call_timeout();
        let task = op(self.inner.clone());
        async move {
            let handle = runtime()?.spawn(async move {
                match tokio::time::timeout(limit, task).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::storage_timeout(
                        BACKEND,
                        format!("no reply within {limit:?}"),
                    )),
                }
            });
            handle.await.map_err(|e| {
                Error::storage_msg(BACKEND, format!("the operation's task failed: {e}"))
            })?
        }
    }
}

impl MongoDbStorage {
    /// Runs `op` on the window collection (its TTL index ensured), on this
    /// crate's runtime within the call timeout: for remotes built on this
    /// storage, such as the write-behind sync target.
    pub(crate) fn with_windows<T, F, Fut>(
        &self,
        op: F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce(Collection<Document>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |inner| async move {
            inner.ensure_indexes().await?;
            op(inner.windows.clone()).await
        })
    }
}

impl AsyncStorage for MongoDbStorage {
    fn incr<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
    ) -> BoxFuture<'a, Result<u64>> {
        let checked = validate_key(key)
            .and(validate_expiry(expiry))
            .and(validate_amount(amount));
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            inner.ensure_indexes().await?;
            let pipeline = || ops::incr_pipeline(DateTime::now(), expiry, elastic_expiry, amount);
            let doc = inner
                .upsert(&inner.counters, &key, pipeline, "count")
                .await?;
            ops::number(&doc, "count")?
                .ok_or_else(|| Error::storage_msg(BACKEND, "the upsert returned no count"))
        });
        Box::pin(async move {
            checked?;
            op.await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64>> {
        let checked = validate_key(key);
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            let doc = inner.live_counter(&key, "count").await?;
            Ok(match doc {
                Some(d) => ops::number(&d, "count")?.unwrap_or(0),
                None => 0,
            })
        });
        Box::pin(async move {
            checked?;
            op.await
        })
    }

    fn get_expiry<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<f64>> {
        let checked = validate_key(key);
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            let doc = inner.live_counter(&key, "expireAt").await?;
            ops::expiry_from(doc)
        });
        Box::pin(async move {
            checked?;
            op.await
        })
    }

    fn check(&self) -> BoxFuture<'_, bool> {
        let op = self.run(|inner| async move {
            inner
                .client
                .database(&inner.config.database)
                .run_command(doc! { "ping": 1 })
                .await
                .map_err(storage_error)
        });
        Box::pin(async move { op.await.is_ok() })
    }

    fn reset(&self) -> BoxFuture<'_, Result<Option<u64>>> {
        let op = self.run(|inner| async move {
            let (a, b) = both(
                inner.counters.delete_many(doc! {}),
                inner.windows.delete_many(doc! {}),
            )
            .await;
            let removed =
                a.map_err(storage_error)?.deleted_count + b.map_err(storage_error)?.deleted_count;
            Ok(Some(removed))
        });
        Box::pin(op)
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        let checked = validate_key(key);
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            let (a, b) = both(
                inner.counters.delete_one(ops::by_id(&key)),
                inner.windows.delete_one(ops::by_id(&key)),
            )
            .await;
            a.map_err(storage_error)?;
            b.map_err(storage_error)?;
            Ok(())
        });
        Box::pin(async move {
            checked?;
            op.await
        })
    }

    fn moving_window(&self) -> Option<&dyn AsyncMovingWindowSupport> {
        Some(self)
    }

    fn sliding_window(&self) -> Option<&dyn AsyncSlidingWindowCounterSupport> {
        Some(self)
    }
}

impl AsyncMovingWindowSupport for MongoDbStorage {
    fn acquire_entry<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let checked = validate_acquire(key, limit, MAX_WINDOW_ENTRIES, expiry, amount);
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            inner.ensure_indexes().await?;
            let now = wall_now();
            let filter = ops::acquire_filter(&key, limit, expiry, amount, now);
            let update = ops::acquire_update(limit, expiry, amount, now);
            match inner
                .windows
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => Ok(true),
                // The filter refused the document, so the upsert tried to
                // insert a second one with its `_id`; or a concurrent upsert
                // inserted it first. The document exists now either way
                // (short of a `clear` in between, which refuses this one
                // call): the same update without upsert tells the two apart.
                Err(e) if ops::is_duplicate_key(&e) => {
                    let result = inner
                        .windows
                        .update_one(filter, update)
                        .await
                        .map_err(storage_error)?;
                    Ok(result.matched_count == 1)
                }
                Err(e) => Err(storage_error(e)),
            }
        });
        Box::pin(async move {
            if !checked? {
                return Ok(false);
            }
            op.await
        })
    }

    fn get_moving_window<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
    ) -> BoxFuture<'a, Result<MovingWindow>> {
        let checked = validate_key(key)
            .and(validate_expiry(expiry))
            .and(crate::storage::validate_limit(limit, MAX_WINDOW_ENTRIES));
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            let now = wall_now();
            let first = inner
                .aggregate_one(ops::moving_window_pipeline(&key, limit, expiry, now))
                .await?;
            ops::moving_window_from(first, now)
        });
        Box::pin(async move {
            checked?;
            op.await
        })
    }
}

impl AsyncSlidingWindowCounterSupport for MongoDbStorage {
    fn get_sliding_window<'a>(
        &'a self,
        key: &'a str,
        expiry: u64,
    ) -> BoxFuture<'a, Result<SlidingWindow>> {
        let checked = validate_key(key).and(validate_expiry(expiry));
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            let now = DateTime::now();
            let first = inner
                .aggregate_one(ops::sliding_view_pipeline(&key, now, expiry))
                .await?;
            ops::sliding_window_from(first, now, expiry)
        });
        Box::pin(async move {
            checked?;
            op.await
        })
    }

    fn acquire_sliding_window_entry<'a>(
        &'a self,
        key: &'a str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        let checked = validate_acquire(key, limit, crate::MAX_AMOUNT, expiry, amount);
        let key = key.to_owned();
        let op = self.run(move |inner| async move {
            inner.ensure_indexes().await?;
            let pipeline = || ops::sliding_acquire_pipeline(DateTime::now(), limit, expiry, amount);
            let doc = inner
                .upsert(&inner.windows, &key, pipeline, "_acquired")
                .await?;
            doc.get_bool("_acquired")
                .map_err(|_| Error::storage_msg(BACKEND, "the upsert returned no `_acquired`"))
        });
        Box::pin(async move {
            if !checked? {
                return Ok(false);
            }
            op.await
        })
    }

    fn clear_sliding_window<'a>(&'a self, key: &'a str, _expiry: u64) -> BoxFuture<'a, Result<()>> {
        // One document holds both windows, as in `limits`, whose
        // `clear_sliding_window` is `clear`.
        AsyncStorage::clear(self, key)
    }
}
