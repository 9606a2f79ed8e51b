//! The `writebehind+<scheme>://` URI wrapper.

use std::sync::Arc;

use super::syncer::{FailurePolicy, WriteBehindHandle};
use super::target::SyncTarget;
use super::WriteBehind;
use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// The scheme prefix that wraps a remote in a write-behind node:
/// `writebehind+memory://?sync_interval=0.05&node_id=a`.
pub const SCHEME_PREFIX: &str = "writebehind+";

const OPTIONS: &[&str] = &[
    "sync_interval",
    "node_id",
    "batch_size",
    "failure_policy",
    "grace",
    "max_entries",
    "budget_split",
    "max_unsynced",
    "early_sync_gap",
    "incarnation_marker",
];

/// Splits `options` into the write-behind node's and the remote's.
fn split(options: &Options) -> (Options, Options) {
    let (mut node, mut remote) = (Options::new(), Options::new());
    for name in options.names() {
        let value = options.get(name).cloned().expect("listed name");
        if OPTIONS.contains(&name) {
            node.insert(name, value);
        } else {
            remote.insert(name, value);
        }
    }
    (node, remote)
}

/// The started write-behind node of a `writebehind+` URI, reconciling with
/// the remote `target` builds from the URI without its prefix (and the
/// options that are not the node's).
pub(crate) fn handle_from_uri(
    uri: &StorageUri,
    options: &Options,
    target: impl FnOnce(&StorageUri, &Options) -> Result<Arc<dyn SyncTarget>>,
) -> Result<WriteBehindHandle> {
    let Some(inner) = uri.scheme.strip_prefix(SCHEME_PREFIX) else {
        return Err(Error::configuration(format!(
            "`{}` is not a write-behind scheme",
            uri.scheme
        )));
    };
    // The query is already merged into `options`; the remote gets the
    // options that are not the node's, and a URI without query.
    let (options, remote_options) = split(options);
    let options = &options;
    let inner_uri = StorageUri {
        scheme: inner.to_owned(),
        raw: uri.raw.replacen(SCHEME_PREFIX, "", 1),
        query: Vec::new(),
        ..uri.clone()
    };
    let target = target(&inner_uri, &remote_options)?;
    let mut builder = WriteBehind::builder(target);
    if let Some(interval) = options.get_secs("sync_interval")? {
        builder = builder.sync_interval(interval);
    }
    if let Some(node) = options.get_str("node_id")? {
        builder = builder.node_id(node);
    }
    if let Some(n) = options.get_u64("batch_size")? {
        if n == 0 {
            return Err(Error::configuration(
                "option `batch_size` must be at least 1",
            ));
        }
        builder = builder.batch_size(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(policy) = options.get_str("failure_policy")? {
        builder = builder.failure_policy(policy.parse::<FailurePolicy>()?);
    }
    if let Some(grace) = options.get_secs("grace")? {
        builder = builder.grace(grace);
    }
    if let Some(n) = options.get_u64("max_entries")? {
        if n == 0 {
            return Err(Error::configuration(
                "option `max_entries` must be at least 1",
            ));
        }
        builder = builder.max_entries(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(on) = options.get_bool("budget_split")? {
        builder = builder.budget_split(on);
    }
    if let Some(n) = options.get_u64("max_unsynced")? {
        if n == 0 {
            return Err(Error::configuration(
                "option `max_unsynced` must be at least 1",
            ));
        }
        builder = builder.max_unsynced(n);
    }
    if let Some(gap) = options.get_secs("early_sync_gap")? {
        builder = builder.early_sync_gap(gap);
    }
    if let Some(on) = options.get_bool("incarnation_marker")? {
        builder = builder.incarnation_marker(on);
    }
    builder.start()
}

#[cfg(test)]
mod tests {
    use crate::storage::Options;
    use crate::storage_from_string;
    use crate::{limiter_for, Strategy};

    #[test]
    fn wrapper_scheme_builds_a_node() {
        let s = storage_from_string(
            "writebehind+memory://?sync_interval=0&node_id=a&failure_policy=closed&grace=1&batch_size=10&max_entries=100",
            &Options::new(),
        )
        .unwrap();
        assert_eq!(s.incr("k", 60, false, 2).unwrap(), 2);
        assert_eq!(s.get("k").unwrap(), 2);
        assert!(s.sliding_window().is_some());
        assert!(s.moving_window().is_none());
        // Strategies that need what the node lacks are refused when built.
        assert!(!s.elastic_expiry());
        for strategy in [Strategy::MovingWindow, Strategy::FixedWindowElasticExpiry] {
            let Err(e) = limiter_for(strategy, s.clone()) else {
                panic!("{strategy} refused")
            };
            assert!(e.is_configuration(), "{e}");
        }
        #[cfg(feature = "async")]
        {
            let a = crate::aio::async_storage_from_string("writebehind+memory://", &Options::new())
                .unwrap();
            let Err(e) = crate::aio::async_limiter_for(Strategy::FixedWindowElasticExpiry, a)
            else {
                panic!("refused")
            };
            assert!(e.is_configuration(), "{e}");
        }
    }

    #[test]
    fn bad_wrapper_uris_are_configuration_errors() {
        for bad in [
            "writebehind+nosuch://",
            "writebehind+nosuch://localhost:1",
            "writebehind+memory://?latency=soon",
            "writebehind+memory://host:1",
            "writebehind+memory://?sync_interval=soon",
            "writebehind+memory://?failure_policy=maybe",
            "writebehind+memory://?batch_size=0",
            "writebehind+memory://?max_entries=0",
            "writebehind+memory://?node_id=",
            "writebehind+memory://?colour=blue",
        ] {
            let e = storage_from_string(bad, &Options::new()).unwrap_err();
            assert!(e.is_configuration(), "{bad}: {e}");
        }
    }
}
