//! The registry of custom schemes: storages of your own register their
//! scheme at run time with [`register_storage`], as `limits`' custom backends
//! do with `STORAGE_SCHEME`. Built-in schemes are the table of
//! `crate::backends`.

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

/// The custom factory registered for `scheme`, if any.
pub(crate) fn custom_factory(scheme: &str) -> Option<StorageFactory> {
    custom().read().get(scheme).cloned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_scheme_names_are_refused() {
        assert!(register_storage("Bad Scheme", |_, _| unreachable!()).is_err());
        assert!(register_storage("async+x", |_, _| unreachable!()).is_err());
    }
}
