//! The table of built-in backends, above every backend: the schemes that
//! name each one, the cargo feature it needs, what it can do beyond fixed
//! windows, and how to build its synchronous storage, its asynchronous
//! storage and its write-behind target. [`storage_from_string`],
//! [`async_storage_from_string`](crate::aio::async_storage_from_string),
//! `writebehind+` URIs and
//! [`sync_target_from_string`](crate::write_behind::sync_target_from_string)
//! read it, and so does the CLI through [`backend_of`]; no other place
//! lists schemes.

use std::sync::Arc;

#[cfg(feature = "async")]
use crate::aio::{AsyncStorage, Blocking};
use crate::error::{Error, Result};
use crate::storage::{
    custom_factory, parse_with_options, Capability, Options, Storage, StorageUri,
};
use crate::write_behind::{self, SyncTarget, SCHEME_PREFIX};

type Build<T> = fn(&StorageUri, &Options) -> Result<Arc<T>>;

/// The constructors of a backend that this build contains.
pub(crate) struct Constructors {
    /// The synchronous storage.
    sync: Build<dyn Storage>,
    /// The asynchronous storage (native, or the synchronous one on tokio's
    /// blocking pool).
    #[cfg(feature = "async")]
    async_: Build<dyn AsyncStorage>,
    /// The storage as a write-behind remote.
    target: Build<dyn SyncTarget>,
}

/// One row of the table.
pub(crate) struct Backend {
    /// The backend's name, which is also its cargo feature (but `memory`).
    pub(crate) name: &'static str,
    /// The URI schemes that name it (without `async+` or `writebehind+`).
    pub(crate) schemes: &'static [&'static str],
    /// What its storage supports beyond fixed windows (checked against the
    /// storages by the tests below).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) capabilities: &'static [Capability],
    /// Its constructors; `None` when this build lacks its feature.
    build: Option<Constructors>,
}

const ALL: &[Capability] = &[
    Capability::MovingWindow,
    Capability::SlidingWindowCounter,
    Capability::ElasticExpiry,
];
const REDIS: &[&str] = &[
    "redis",
    "rediss",
    "redis+unix",
    "valkey",
    "valkeys",
    "valkey+unix",
];

/// Every built-in backend, one row per storage type.
fn table() -> [Backend; 7] {
    [
        Backend {
            name: "memory",
            schemes: &["memory"],
            capabilities: ALL,
            build: Some(Constructors {
                sync: |u, o| Ok(Arc::new(crate::MemoryStorage::from_uri(u, o)?)),
                #[cfg(feature = "async")]
                async_: |u, o| Ok(Arc::new(crate::MemoryStorage::from_uri(u, o)?)),
                target: |u, o| Ok(Arc::new(write_behind::MemoryRemote::from_uri(u, o)?)),
            }),
        },
        Backend {
            name: "redis",
            schemes: REDIS,
            capabilities: ALL,
            build: redis::standalone(),
        },
        Backend {
            name: "redis",
            schemes: &["redis+cluster", "valkey+cluster"],
            capabilities: ALL,
            build: redis::cluster(),
        },
        Backend {
            name: "redis",
            schemes: &["redis+sentinel", "valkey+sentinel"],
            capabilities: ALL,
            build: redis::sentinel(),
        },
        Backend {
            name: "memcached",
            schemes: &["memcached"],
            capabilities: &[Capability::SlidingWindowCounter, Capability::ElasticExpiry],
            build: memcached(),
        },
        Backend {
            name: "mongodb",
            schemes: &["mongodb", "mongodb+srv"],
            capabilities: ALL,
            build: mongodb(),
        },
        Backend {
            name: "etcd",
            schemes: &["etcd"],
            capabilities: &[Capability::ElasticExpiry],
            build: etcd(),
        },
    ]
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    #[cfg(feature = "async")]
    use crate::redis::{AsyncRedisClusterStorage, AsyncRedisSentinelStorage, AsyncRedisStorage};
    use crate::redis::{RedisClusterStorage, RedisSentinelStorage, RedisStorage};

    pub(super) fn standalone() -> Option<Constructors> {
        Some(Constructors {
            sync: |u, o| Ok(Arc::new(RedisStorage::from_uri(u, o)?)),
            #[cfg(feature = "async")]
            async_: |u, o| Ok(Arc::new(AsyncRedisStorage::from_uri(u, o)?)),
            target: |u, o| Ok(Arc::new(RedisStorage::from_uri(u, o)?)),
        })
    }

    pub(super) fn cluster() -> Option<Constructors> {
        Some(Constructors {
            sync: |u, o| Ok(Arc::new(RedisClusterStorage::from_uri(u, o)?)),
            #[cfg(feature = "async")]
            async_: |u, o| Ok(Arc::new(AsyncRedisClusterStorage::from_uri(u, o)?)),
            target: |u, o| Ok(Arc::new(RedisClusterStorage::from_uri(u, o)?)),
        })
    }

    pub(super) fn sentinel() -> Option<Constructors> {
        Some(Constructors {
            sync: |u, o| Ok(Arc::new(RedisSentinelStorage::from_uri(u, o)?)),
            #[cfg(feature = "async")]
            async_: |u, o| Ok(Arc::new(AsyncRedisSentinelStorage::from_uri(u, o)?)),
            target: |u, o| Ok(Arc::new(RedisSentinelStorage::from_uri(u, o)?)),
        })
    }
}

#[cfg(not(feature = "redis"))]
mod redis {
    use super::Constructors;

    pub(super) fn standalone() -> Option<Constructors> {
        None
    }

    pub(super) fn cluster() -> Option<Constructors> {
        None
    }

    pub(super) fn sentinel() -> Option<Constructors> {
        None
    }
}

fn memcached() -> Option<Constructors> {
    #[cfg(feature = "memcached")]
    {
        use crate::memcached::MemcachedStorage;
        Some(Constructors {
            sync: |u, o| Ok(Arc::new(MemcachedStorage::from_uri(u, o)?)),
            #[cfg(feature = "async")]
            async_: |u, o| {
                let blocking = Arc::new(MemcachedStorage::from_uri(u, o)?) as Arc<dyn Storage>;
                Ok(Arc::new(Blocking::new(blocking)))
            },
            target: |u, o| Ok(Arc::new(MemcachedStorage::from_uri(u, o)?)),
        })
    }
    #[cfg(not(feature = "memcached"))]
    None
}

fn mongodb() -> Option<Constructors> {
    #[cfg(feature = "mongodb")]
    {
        use crate::mongodb::MongoDbStorage;
        Some(Constructors {
            sync: |u, o| {
                let native = Arc::new(MongoDbStorage::from_uri(u, o)?);
                Ok(Arc::new(crate::aio::Bridged::new(native)))
            },
            async_: |u, o| Ok(Arc::new(MongoDbStorage::from_uri(u, o)?)),
            target: |u, o| Ok(Arc::new(MongoDbStorage::from_uri(u, o)?)),
        })
    }
    #[cfg(not(feature = "mongodb"))]
    None
}

fn etcd() -> Option<Constructors> {
    #[cfg(feature = "etcd")]
    {
        use crate::etcd::EtcdStorage;
        Some(Constructors {
            sync: |u, o| {
                let native = Arc::new(EtcdStorage::from_uri(u, o)?);
                Ok(Arc::new(crate::aio::Bridged::new(native)))
            },
            async_: |u, o| Ok(Arc::new(EtcdStorage::from_uri(u, o)?)),
            target: |u, o| Ok(Arc::new(EtcdStorage::from_uri(u, o)?)),
        })
    }
    #[cfg(not(feature = "etcd"))]
    None
}

/// The backend `scheme` (without `async+`) names, built in this build;
/// a configuration error for an unknown scheme or a backend left out.
fn built(scheme: &str, raw_scheme: &str) -> Result<Constructors> {
    let backend = table()
        .into_iter()
        .find(|b| b.schemes.contains(&scheme))
        .ok_or_else(|| Error::configuration(format!("unknown storage scheme `{raw_scheme}`")))?;
    backend.build.ok_or_else(|| {
        Error::configuration(format!(
            "storage scheme `{scheme}` needs the {} backend, which is not supported by this build",
            backend.name
        ))
    })
}

/// The built-in backend a storage URI's scheme names — `"memory"`,
/// `"redis"` (every Redis and Valkey variant), `"memcached"`, `"mongodb"` or
/// `"etcd"` — looking through `async+` and `writebehind+`, whether or not
/// this build contains it; `None` for any other scheme (a custom one).
///
/// ```
/// use limitstore::{backend_of, StorageUri};
/// let uri = StorageUri::parse("writebehind+valkey+cluster://h:7000").unwrap();
/// assert_eq!(backend_of(&uri), Some("redis"));
/// assert_eq!(backend_of(&StorageUri::parse("async+memory://").unwrap()), Some("memory"));
/// assert_eq!(backend_of(&StorageUri::parse("mine://").unwrap()), None);
/// ```
pub fn backend_of(uri: &StorageUri) -> Option<&'static str> {
    let scheme = uri
        .scheme
        .strip_prefix(SCHEME_PREFIX)
        .unwrap_or(&uri.scheme);
    let scheme = scheme.strip_prefix("async+").unwrap_or(scheme);
    table()
        .into_iter()
        .find(|b| b.schemes.contains(&scheme))
        .map(|b| b.name)
}

/// Builds a storage from a URI such as `"memory://"` or `"redis://localhost:6379"`.
///
/// Query parameters become options; `options` given here override them.
/// An unknown scheme, a malformed URI or a bad option is a
/// [configuration error](crate::ErrorKind::Configuration); so is a scheme of
/// a backend that this build does not contain.
///
/// ```
/// use limitstore::{storage_from_string, Options};
/// let storage = storage_from_string("memory://?max_entries=1000", &Options::new()).unwrap();
/// assert_eq!(storage.incr("key", 60, false, 2).unwrap(), 2);
/// assert!(storage_from_string("bogus://", &Options::new()).unwrap_err().is_configuration());
/// ```
pub fn storage_from_string(uri: &str, options: &Options) -> Result<Arc<dyn Storage>> {
    let (parsed, merged) = parse_with_options(uri, options)?;
    if let Some(factory) = custom_factory(&parsed.scheme) {
        return factory(&parsed, &merged);
    }
    if parsed.scheme.starts_with(SCHEME_PREFIX) {
        return Ok(Arc::new(write_behind_node(&parsed, &merged)?));
    }
    let (base, is_async) = parsed.base_scheme();
    let constructors = built(base, &parsed.scheme)?;
    if is_async {
        return Err(Error::configuration(format!(
            "`{}` names an asynchronous storage: build it with \
             `aio::async_storage_from_string`, or use the synchronous scheme `{base}`",
            parsed.scheme
        )));
    }
    (constructors.sync)(&parsed, &merged)
}

/// Builds an asynchronous storage from a URI such as `"async+memory://"` or
/// `"async+redis://localhost:6379"`. The `async+` prefix is optional: every
/// scheme [`storage_from_string`](crate::storage_from_string) knows is
/// accepted, and its options are the same.
///
/// Backends with an asynchronous client are driven natively; a blocking
/// backend (Memcached, or a custom storage registered only with
/// [`register_storage`](crate::register_storage)) runs on tokio's blocking
/// pool through [`Blocking`](crate::aio::Blocking).
///
/// ```
/// use limitstore::aio::async_storage_from_string;
/// use limitstore::Options;
/// assert!(async_storage_from_string("async+memory://?max_entries=10", &Options::new()).is_ok());
/// let e = async_storage_from_string("async+bogus://", &Options::new()).unwrap_err();
/// assert!(e.is_configuration());
/// ```
#[cfg(feature = "async")]
pub fn async_storage_from_string(uri: &str, options: &Options) -> Result<Arc<dyn AsyncStorage>> {
    let (parsed, merged) = parse_with_options(uri, options)?;
    let (base, _) = parsed.base_scheme();
    let base = base.to_owned();
    if let Some(factory) = crate::aio::custom_async_factory(&base) {
        return factory(&parsed, &merged);
    }
    if let Some(factory) = custom_factory(&base) {
        return Ok(Arc::new(Blocking::new(factory(&parsed, &merged)?)));
    }
    let raw_scheme = parsed.raw.split("://").next().unwrap_or(&base).to_owned();
    // The backends see the URI under its synchronous scheme name.
    let parsed = StorageUri {
        scheme: base.clone(),
        ..parsed
    };
    if base.starts_with(SCHEME_PREFIX) {
        return Ok(Arc::new(write_behind_node(&parsed, &merged)?));
    }
    (built(&base, &raw_scheme)?.async_)(&parsed, &merged)
}

/// The started node of a `writebehind+<scheme>://` URI, reconciling with
/// the target of `<scheme>`.
fn write_behind_node(
    uri: &StorageUri,
    options: &Options,
) -> Result<write_behind::WriteBehindHandle> {
    write_behind::handle_from_uri(uri, options, target)
}

/// The write-behind target of `uri` (its scheme without `writebehind+`).
fn target(uri: &StorageUri, options: &Options) -> Result<Arc<dyn SyncTarget>> {
    let scheme = uri.scheme.as_str();
    match built(scheme, scheme) {
        Ok(constructors) => (constructors.target)(uri, options),
        Err(_) => {
            let supported: Vec<&str> = table()
                .into_iter()
                .filter(|b| b.build.is_some())
                .flat_map(|b| b.schemes.iter().copied())
                .collect();
            Err(Error::configuration(format!(
                "storage scheme `{scheme}` cannot be a write-behind remote in this build \
                 (supported: {})",
                supported.join(", ")
            )))
        }
    }
}

/// Builds the remote a write-behind node reconciles through from a storage
/// URI: `memory://` is a fresh [`MemoryRemote`](crate::write_behind::MemoryRemote) (option `latency`, in
/// seconds, injects a round-trip delay); `redis://` and its variants are a
/// [`RedisStorage`](crate::RedisStorage), a Cluster or a Sentinel
/// deployment (with the `redis` feature); `etcd://` an
/// `EtcdStorage` (feature `etcd`); `memcached://` a
/// `MemcachedStorage` (feature `memcached`).
/// Schemes whose storage cannot act as a [`SyncTarget`](crate::write_behind::SyncTarget) are configuration
/// errors.
///
/// ```
/// use limitstore::Options;
/// use limitstore::write_behind::sync_target_from_string;
/// let remote = sync_target_from_string("memory://?latency=0.0001", &Options::new()).unwrap();
/// assert!(remote.check());
/// assert!(sync_target_from_string("nosuch://localhost:1", &Options::new()).unwrap_err().is_configuration());
/// ```
pub fn sync_target_from_string(uri: &str, options: &Options) -> Result<Arc<dyn SyncTarget>> {
    let (parsed, merged) = parse_with_options(uri, options)?;
    target(
        &StorageUri {
            query: Vec::new(),
            ..parsed
        },
        &merged,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scheme is named once, and every built backend's storage, sync
    /// and async, has the capabilities its row declares (remote storages connect lazily,
    /// so they build without a server).
    #[test]
    fn the_table_is_what_the_storages_do() {
        let mut seen = std::collections::HashSet::new();
        for backend in table() {
            for scheme in backend.schemes {
                assert!(seen.insert(*scheme), "{scheme} listed twice");
                if backend.build.is_none() {
                    let e =
                        storage_from_string(&format!("{scheme}://localhost:1"), &Options::new())
                            .unwrap_err();
                    assert!(e.message().contains("not supported by this build"), "{e}");
                    continue;
                }
                let uri = match *scheme {
                    "memory" => "memory://".to_owned(),
                    s if s.ends_with("+unix") => format!("{s}:///nonexistent/redis.sock"),
                    s if s.ends_with("+sentinel") => format!("{s}://localhost:1/mymaster"),
                    s => format!("{s}://localhost:1"),
                };
                let storage = match storage_from_string(&uri, &Options::new()) {
                    Ok(storage) => storage,
                    // mongodb+srv resolves its host at construction.
                    Err(_) if *scheme == "mongodb+srv" => continue,
                    // TLS schemes need the `tls` feature.
                    Err(e) if !cfg!(feature = "tls") && e.message().contains("`tls` feature") => {
                        continue
                    }
                    Err(e) => panic!("{scheme}: {e:#}"),
                };
                let has = |c| backend.capabilities.contains(&c);
                assert_eq!(
                    storage.moving_window().is_some(),
                    has(Capability::MovingWindow),
                    "{scheme}"
                );
                assert_eq!(
                    storage.sliding_window().is_some(),
                    has(Capability::SlidingWindowCounter),
                    "{scheme}"
                );
                assert_eq!(
                    storage.elastic_expiry(),
                    has(Capability::ElasticExpiry),
                    "{scheme}"
                );
                #[cfg(feature = "async")]
                {
                    let storage = async_storage_from_string(&uri, &Options::new()).unwrap();
                    assert_eq!(
                        storage.moving_window().is_some(),
                        has(Capability::MovingWindow),
                        "async {scheme}"
                    );
                    assert_eq!(
                        storage.sliding_window().is_some(),
                        has(Capability::SlidingWindowCounter),
                        "async {scheme}"
                    );
                    assert_eq!(
                        storage.elastic_expiry(),
                        has(Capability::ElasticExpiry),
                        "async {scheme}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_scheme_refuses_its_async_form_synchronously() {
        for backend in table() {
            for scheme in backend.schemes {
                let e =
                    storage_from_string(&format!("async+{scheme}://localhost:1"), &Options::new())
                        .unwrap_err();
                assert!(e.is_configuration(), "{e}");
                if backend.build.is_some() {
                    assert!(e.message().contains("asynchronous"), "{e}");
                }
            }
        }
    }

    #[test]
    fn unknown_scheme() {
        let e = storage_from_string("nope://x", &Options::new()).unwrap_err();
        assert!(e.message().contains("unknown storage scheme"));
    }
}
