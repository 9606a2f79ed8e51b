//! The subcommands, and what they share: how a run ends, Ctrl-C, and the
//! key namespace of its own that each run works under.
//!
//! Every subcommand first checks all of its flags ([`Failure::Usage`], exit
//! code 2, before any output or I/O), then runs. A run writes only keys
//! under a namespace unique to it and deletes only those.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use limitstore::write_behind::SCHEME_PREFIX;
use limitstore::{Error, Options, StorageUri};

pub mod bench;
pub mod tune;

/// How a run that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran to the end.
    Done,
    /// Ctrl-C stopped it; what was finished has been printed.
    Interrupted,
}

/// Why a run failed.
#[derive(Debug)]
pub enum Failure {
    /// A flag is wrong; nothing ran.
    Usage(String),
    /// The run itself failed (a storage error, a file that cannot be written).
    Run(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Run(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => f.write_str(m),
            Failure::Run(e) => write!(f, "{e:#}"),
        }
    }
}

/// A usage failure: `Err(Failure::Usage(..))`.
pub fn usage<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Usage(message.into()))
}

/// A library error met while checking flags, as a usage failure.
pub fn usage_of(flag: &str, e: Error) -> Failure {
    Failure::Usage(format!("{flag}: {e}"))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C set [`interrupted`] instead of killing the process, so a
/// run can print what it finished and delete what it wrote.
pub fn catch_interrupt() {
    // Fails only if a handler is set already, which changes nothing here.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Options that confine a storage URI to the key namespace `tag`, and how
/// to delete what a run wrote there afterwards.
pub struct Scope {
    /// Options passed beside the URI (they win over its query).
    pub options: Options,
    /// How to delete the run's keys.
    pub cleanup: Cleanup,
}

/// How a run deletes what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// The storage lives in this process: dropping it is enough.
    Drop,
    /// The key prefix is the run's own, so `reset` (which deletes only
    /// under the prefix) deletes exactly the run's keys.
    ResetOwnPrefix,
    /// Each key the run wrote is cleared one by one.
    EachKey,
}

/// The scope of a run named `tag` on the storage `uri` (already checked to
/// parse): backends with a key prefix get `{their prefix}:{tag}` (etcd:
/// `{prefix}/{tag}`), whose `reset` deletes nothing else; the others have
/// their keys cleared one by one.
pub fn scope(uri: &StorageUri, tag: &str) -> Scope {
    let given = uri
        .query
        .iter()
        .find(|(k, _)| k == "key_prefix")
        .map(|(_, v)| v.as_str());
    let prefixed = |default: &str, sep: char| Scope {
        options: Options::new().with(
            "key_prefix",
            format!("{}{sep}{tag}", given.unwrap_or(default)),
        ),
        cleanup: Cleanup::ResetOwnPrefix,
    };
    match limitstore::backend_of(uri) {
        Some("memory") => Scope {
            options: Options::new(),
            cleanup: Cleanup::Drop,
        },
        Some("redis") => prefixed("LIMITS", ':'),
        Some("etcd") => prefixed("limits", '/'),
        // A write-behind node keeps an incarnation marker beside the keys,
        // which only a prefix of the run's own would let it delete after.
        _ if uri.scheme.starts_with(SCHEME_PREFIX) => Scope {
            options: Options::new().with("incarnation_marker", false),
            cleanup: Cleanup::EachKey,
        },
        _ => Scope {
            options: Options::new(),
            cleanup: Cleanup::EachKey,
        },
    }
}

/// Parses a storage URI given to `flag`, as a usage failure if it is malformed.
pub fn parse_uri(flag: &str, uri: &str) -> Result<StorageUri, Failure> {
    StorageUri::parse(uri).map_err(|e| usage_of(flag, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix_of(uri: &str) -> (Option<String>, Cleanup) {
        let s = scope(&StorageUri::parse(uri).unwrap(), "run-1");
        (s.options.get_str("key_prefix").unwrap(), s.cleanup)
    }

    #[test]
    fn each_backend_gets_a_namespace_of_its_own() {
        assert_eq!(prefix_of("memory://"), (None, Cleanup::Drop));
        assert_eq!(prefix_of("writebehind+memory://"), (None, Cleanup::Drop));
        for uri in [
            "redis://h",
            "async+rediss://h",
            "writebehind+redis+cluster://h:1",
            "valkey+sentinel://h/m",
        ] {
            assert_eq!(
                prefix_of(uri),
                (Some("LIMITS:run-1".into()), Cleanup::ResetOwnPrefix),
                "{uri}"
            );
        }
        assert_eq!(
            prefix_of("redis://h?key_prefix=app"),
            (Some("app:run-1".into()), Cleanup::ResetOwnPrefix)
        );
        assert_eq!(
            prefix_of("etcd://h:1"),
            (Some("limits/run-1".into()), Cleanup::ResetOwnPrefix)
        );
        for uri in ["memcached://h:1", "mongodb://h", "custom://x"] {
            assert_eq!(prefix_of(uri), (None, Cleanup::EachKey), "{uri}");
            let s = scope(&StorageUri::parse(uri).unwrap(), "run-1");
            assert_eq!(s.options.get_bool("incarnation_marker").unwrap(), None);
            let behind = StorageUri::parse(&format!("writebehind+{uri}")).unwrap();
            let s = scope(&behind, "run-1");
            assert_eq!(s.cleanup, Cleanup::EachKey, "{uri}");
            assert_eq!(
                s.options.get_bool("incarnation_marker").unwrap(),
                Some(false)
            );
        }
    }
}
