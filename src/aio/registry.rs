//! [`async_storage_from_string`] and the registry of asynchronous schemes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::{AsyncStorage, Blocking};
use crate::error::{Error, Result};
use crate::storage::{
    builtin_backend, custom_factory, not_built, parse_with_options, Options, StorageUri,
};

/// Builds an asynchronous storage from a parsed URI and its options.
pub type AsyncStorageFactory =
    Arc<dyn Fn(&StorageUri, &Options) -> Result<Arc<dyn AsyncStorage>> + Send + Sync>;

fn custom() -> &'static RwLock<HashMap<String, AsyncStorageFactory>> {
    static CUSTOM: OnceLock<RwLock<HashMap<String, AsyncStorageFactory>>> = OnceLock::new();
    CUSTOM.get_or_init(Default::default)
}

/// Registers an asynchronous storage under `scheme`, so that
/// `async_storage_from_string("async+scheme://...")` builds it. It takes
/// precedence over a synchronous storage registered with
/// [`register_storage`](crate::register_storage) under the same scheme.
///
/// ```
/// use std::sync::Arc;
/// use limitstore::aio::{async_storage_from_string, register_async_storage, AsyncStorage};
/// use limitstore::{MemoryStorage, Options};
///
/// register_async_storage("tinymem", |_uri, _opts| {
///     Ok(Arc::new(MemoryStorage::builder().max_entries(16).build()) as Arc<dyn AsyncStorage>)
/// })
/// .unwrap();
/// assert!(async_storage_from_string("async+tinymem://", &Options::new()).is_ok());
/// ```
pub fn register_async_storage<F>(scheme: &str, factory: F) -> Result<()>
where
    F: Fn(&StorageUri, &Options) -> Result<Arc<dyn AsyncStorage>> + Send + Sync + 'static,
{
    let probe = StorageUri::parse(&format!("{scheme}://"))?;
    if probe.scheme != scheme || scheme.starts_with("async+") {
        return Err(Error::configuration(format!(
            "`{scheme}` is not a valid storage scheme name (register it without `async+`)"
        )));
    }
    custom().write().insert(probe.scheme, Arc::new(factory));
    Ok(())
}

/// Builds an asynchronous storage from a URI such as `"async+memory://"` or
/// `"async+redis://localhost:6379"`. The `async+` prefix is optional: every
/// scheme [`storage_from_string`](crate::storage_from_string) knows is
/// accepted, and its options are the same.
///
/// Backends with an asynchronous client are driven natively; a blocking
/// backend (Memcached, or a custom storage registered only with
/// [`register_storage`](crate::register_storage)) runs on tokio's blocking
/// pool through [`Blocking`].
///
/// ```
/// use limitstore::aio::async_storage_from_string;
/// use limitstore::Options;
/// assert!(async_storage_from_string("async+memory://?max_entries=10", &Options::new()).is_ok());
/// let e = async_storage_from_string("async+bogus://", &Options::new()).unwrap_err();
/// assert!(e.is_configuration());
/// ```
pub fn async_storage_from_string(uri: &str, options: &Options) -> Result<Arc<dyn AsyncStorage>> {
    let (parsed, merged) = parse_with_options(uri, options)?;
    let (base, _) = parsed.base_scheme();
    let base = base.to_owned();
    let custom_async = custom().read().get(&base).cloned();
    if let Some(factory) = custom_async {
        return factory(&parsed, &merged);
    }
    if let Some(factory) = custom_factory(&base) {
        return Ok(Arc::new(Blocking::new(factory(&parsed, &merged)?)));
    }
    // The backends see the URI under its synchronous scheme name.
    let parsed = StorageUri {
        scheme: base.clone(),
        ..parsed
    };
    if base.starts_with(crate::write_behind::SCHEME_PREFIX) {
        return Ok(Arc::new(crate::write_behind::handle_from_uri(
            &parsed, &merged,
        )?));
    }
    let Some(backend) = builtin_backend(&base) else {
        return Err(Error::configuration(format!(
            "unknown storage scheme `{}`",
            parsed.raw.split("://").next().unwrap_or(&base)
        )));
    };
    match backend {
        "memory" => Ok(Arc::new(crate::memory::MemoryStorage::from_uri(
            &parsed, &merged,
        )?)),
        #[cfg(feature = "redis")]
        "redis" => crate::redis::async_from_uri(&parsed, &merged),
        #[cfg(feature = "memcached")]
        "memcached" => Ok(Arc::new(Blocking::new(crate::memcached::from_uri(
            &parsed, &merged,
        )?))),
        #[cfg(feature = "etcd")]
        "etcd" => Ok(Arc::new(crate::etcd::EtcdStorage::from_uri(
            &parsed, &merged,
        )?)),
        #[cfg(feature = "mongodb")]
        "mongodb" => Ok(Arc::new(crate::mongodb::from_uri(&parsed, &merged)?)),
        other => Err(not_built(&base, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_with_and_without_prefix() {
        for uri in [
            "async+memory://",
            "memory://",
            "async+writebehind+memory://",
        ] {
            async_storage_from_string(uri, &Options::new()).unwrap();
        }
        for uri in [
            "async+bogus://",
            "bogus://",
            "async+://",
            "async+memory://:x",
        ] {
            let e = async_storage_from_string(uri, &Options::new()).unwrap_err();
            assert!(e.is_configuration(), "{uri}: {e}");
        }
        assert!(register_async_storage("async+x", |_, _| unreachable!()).is_err());
    }

    #[test]
    fn sync_registrations_are_served_on_the_blocking_pool() {
        crate::register_storage("aio-registry-sync", |_, _| {
            Ok(Arc::new(crate::MemoryStorage::new()) as Arc<dyn crate::Storage>)
        })
        .unwrap();
        let s = async_storage_from_string("async+aio-registry-sync://", &Options::new()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(s.incr("k", 60, false, 2)).unwrap(), 2);
        assert!(format!("{s:?}").starts_with("Blocking"));
    }
}
