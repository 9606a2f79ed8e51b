//! The scheme registry and [`storage_from_string`].
//!
//! Built-in schemes are resolved here; custom storages register their own
//! scheme at run time with [`register_storage`], as `limits`' custom backends
//! do with `STORAGE_SCHEME`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::{Options, Storage, StorageUri};
use crate::error::{Error, Result};

/// Builds a storage from a parsed URI and its options (query parameters
/// already merged in; explicit options win over the query).
pub type StorageFactory =
    Arc<dyn Fn(&StorageUri, &Options) -> Result<Arc<dyn Storage>> + Send + Sync>;

fn custom() -> &'static RwLock<HashMap<String, StorageFactory>> {
    static CUSTOM: OnceLock<RwLock<HashMap<String, StorageFactory>>> = OnceLock::new();
    CUSTOM.get_or_init(Default::default)
}

/// The schemes of the seed's table and the backend each one needs.
const BUILTIN: &[(&str, &str)] = &[
    ("memory", "memory"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis+unix", "redis"),
    ("valkey", "redis"),
    ("valkeys", "redis"),
    ("valkey+unix", "redis"),
    ("redis+cluster", "redis"),
    ("valkey+cluster", "redis"),
    ("redis+sentinel", "redis"),
    ("valkey+sentinel", "redis"),
    ("memcached", "memcached"),
    ("mongodb", "mongodb"),
    ("mongodb+srv", "mongodb"),
    ("etcd", "etcd"),
];

/// The custom factory registered for `scheme`, if any.
pub(crate) fn custom_factory(scheme: &str) -> Option<StorageFactory> {
    custom().read().get(scheme).cloned()
}

/// The backend a built-in scheme (without `async+`) needs, if it is one.
pub(crate) fn builtin_backend(scheme: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|&(_, backend)| backend)
}

/// Parses `uri` and merges its query into `options` (explicit options win).
pub(crate) fn parse_with_options(uri: &str, options: &Options) -> Result<(StorageUri, Options)> {
    let parsed = StorageUri::parse(uri)?;
    parsed.check_unique_query()?;
    let mut merged = options.clone();
    for (k, v) in &parsed.query {
        merged.insert_default(k, v.as_str());
    }
    Ok((parsed, merged))
}

/// The configuration error for a scheme whose backend this build lacks.
pub(crate) fn not_built(scheme: &str, backend: &str) -> Error {
    Error::configuration(format!(
        "storage scheme `{scheme}` needs the {backend} backend, which is not supported by this build"
    ))
}

/// Registers a storage under `scheme`, so that `storage_from_string("scheme://...")`
/// builds it. A registration replaces an earlier one of the same scheme and
/// takes precedence over a built-in scheme.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::{register_storage, storage_from_string, MemoryStorage, Options, Storage};
///
/// register_storage("tinymem", |_uri, _opts| {
///     Ok(Arc::new(MemoryStorage::builder().max_entries(16).build()) as Arc<dyn Storage>)
/// })
/// .unwrap();
/// let s = storage_from_string("tinymem://", &Options::new()).unwrap();
/// assert_eq!(s.incr("k", 60, false, 1).unwrap(), 1);
/// ```
pub fn register_storage<F>(scheme: &str, factory: F) -> Result<()>
where
    F: Fn(&StorageUri, &Options) -> Result<Arc<dyn Storage>> + Send + Sync + 'static,
{
    let probe = StorageUri::parse(&format!("{scheme}://"))?;
    if probe.scheme != scheme || scheme.starts_with("async+") {
        return Err(Error::configuration(format!(
            "`{scheme}` is not a valid storage scheme name"
        )));
    }
    custom().write().insert(probe.scheme, Arc::new(factory));
    Ok(())
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
    if parsed
        .scheme
        .starts_with(crate::write_behind::SCHEME_PREFIX)
    {
        return crate::write_behind::from_uri(&parsed, &merged);
    }
    let (base, is_async) = parsed.base_scheme();
    let Some(backend) = builtin_backend(base) else {
        return Err(Error::configuration(format!(
            "unknown storage scheme `{}`",
            parsed.scheme
        )));
    };
    if is_async {
        return Err(Error::configuration(format!(
            "`{}` names an asynchronous storage: build it with \
             `aio::async_storage_from_string`, or use the synchronous scheme `{base}`",
            parsed.scheme
        )));
    }
    match backend {
        "memory" => Ok(Arc::new(crate::memory::MemoryStorage::from_uri(
            &parsed, &merged,
        )?)),
        #[cfg(feature = "redis")]
        "redis" => crate::redis::from_uri(&parsed, &merged),
        #[cfg(feature = "memcached")]
        "memcached" => crate::memcached::from_uri(&parsed, &merged),
        #[cfg(feature = "etcd")]
        "etcd" => crate::etcd::from_uri(&parsed, &merged),
        #[cfg(feature = "mongodb")]
        "mongodb" => Ok(Arc::new(crate::aio::Bridged::new(Arc::new(
            crate::mongodb::from_uri(&parsed, &merged)?,
        )))),
        other => Err(not_built(base, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_scheme_is_known() {
        for (scheme, backend) in BUILTIN {
            let res = storage_from_string(&format!("{scheme}://localhost:1"), &Options::new());
            match res {
                // Remote storages connect lazily, so a compiled backend builds.
                Ok(_) => assert!(
                    *scheme == "memory"
                        || (cfg!(feature = "redis") && *backend == "redis")
                        || (cfg!(feature = "memcached") && *backend == "memcached")
                        || (cfg!(feature = "etcd") && *backend == "etcd")
                        || (cfg!(feature = "mongodb") && *scheme == "mongodb"),
                    "{scheme}"
                ),
                Err(e) => {
                    assert!(e.is_configuration());
                    assert!(!e.message().contains("unknown"), "{e}");
                }
            }
            let e = storage_from_string(&format!("async+{scheme}://localhost:1"), &Options::new())
                .unwrap_err();
            assert!(
                e.is_configuration() && e.message().contains("asynchronous"),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_scheme_and_bad_names() {
        let e = storage_from_string("nope://x", &Options::new()).unwrap_err();
        assert!(e.message().contains("unknown storage scheme"));
        assert!(register_storage("Bad Scheme", |_, _| unreachable!()).is_err());
        assert!(register_storage("async+x", |_, _| unreachable!()).is_err());
    }
}
