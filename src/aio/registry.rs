//! [`async_storage_from_string`] and the registry of asynchronous schemes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::AsyncStorage;
use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

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

/// The asynchronous factory registered for `scheme`, if any.
pub(crate) fn custom_async_factory(scheme: &str) -> Option<AsyncStorageFactory> {
    custom().read().get(scheme).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aio::async_storage_from_string;

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
