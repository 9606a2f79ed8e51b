//! The I/O runtime this crate owns: it drives the asynchronous clients
//! (Redis's async storages, MongoDB, etcd) for callers that are not in a
//! runtime of their own, and the synchronous [`Bridged`](crate::aio::Bridged)
//! storages.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The runtime that drives bridged storages and the clients they own: two
/// worker threads named `limitstore-io`, started on first use.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("limitstore-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::configuration(format!("cannot start the I/O runtime: {e}")))
}

/// Runs `future` to completion on [`runtime`] and returns its output.
///
/// Called from a thread that is itself inside a tokio runtime (where blocking
/// on another runtime is forbidden), the future is driven from a short-lived
/// helper thread instead; async callers should use the async API.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(rt.block_on(future));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| rt.block_on(future))
            .join()
            .map_err(|_| Error::storage_msg("I/O runtime", "a storage call panicked"))
    })
}
