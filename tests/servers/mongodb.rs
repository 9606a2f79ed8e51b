//! A MongoDB-compatible server for the integration tests: SecantusDB (PyPI
//! `secantusdb`), a Python server with an in-memory WiredTiger store.
//!
//! The Python interpreter is `$LIMITSTORE_SECANTUS_PYTHON` (set by
//! `scripts/test.sh`), or else the virtual environment
//! `target/secantus-venv` that the script creates. Each server listens on a
//! free loopback port with `:memory:` storage; it is ready once it answers
//! `ping`. Dropping it kills the process (SIGKILL: the store is throwaway)
//! and waits for it; should the test process die first, the server sees its
//! stdin close and exits by itself.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use ::mongodb::bson::doc;

use super::{free_port, TempDir};

/// The interpreter with `secantusdb` installed.
pub const PYTHON_ENV: &str = "LIMITSTORE_SECANTUS_PYTHON";

/// How long a server may take to answer `ping` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The server, run by `python -c SCRIPT PORT TTL_SWEEP_SECONDS`. The
/// `secantusd-py` command ignores the TTL sweep setting, so the script uses
/// the Python API; it exits when its stdin closes.
///
/// It also fixes one SecantusDB 0.7.0b3 bug: a `findAndModify` upsert
/// (`new: true`) that finds the document a concurrent upsert has just
/// inserted applies its update but answers `value: null`. mongod answers
/// with the document (it retries such an upsert as an update), and the
/// storage relies on that; the patch hands back the post-image the server
/// already captured.
const SCRIPT: &str = r#"
import os, sys, threading
from secantus.server import SecantusDBServer
import secantus.storage as _storage
_update_matching = _storage.Storage.update_matching
def _update_matching_with_post_image(self, *args, **kwargs):
    result = _update_matching(self, *args, **kwargs)
    if (kwargs.get("upsert") and kwargs.get("return_post_images")
            and not result["did_upsert"] and result.get("post_images")):
        result["did_upsert"] = True
    return result
_storage.Storage.update_matching = _update_matching_with_post_image
server = SecantusDBServer(host="127.0.0.1", port=int(sys.argv[1]), storage_path=":memory:",
                          ttl_sweep_seconds=float(sys.argv[2]), enable_test_commands=False)
def orphaned():
    try:
        while sys.stdin.buffer.read(1):
            pass
    finally:
        os._exit(0)
threading.Thread(target=orphaned, daemon=True).start()
server.start()
server.wait()
"#;

/// The Python interpreter to run SecantusDB with, if there is one (see
/// [`super::python`]).
pub fn python() -> Option<PathBuf> {
    super::python(PYTHON_ENV, "secantus-venv", "secantusdb==0.7.0b3")
}

/// Whether SecantusDB can be started. Missing: a panic when `CI=true`, a
/// note on stderr otherwise (the caller then returns early).
pub fn available() -> bool {
    python().is_some()
}

/// Returns early from a test when SecantusDB is missing (see [`available`]).
#[macro_export]
macro_rules! require_mongo_or_skip {
    () => {
        if !$crate::servers::mongodb::available() {
            return;
        }
    };
}

/// A runtime for the test's own driver clients (raw document reads).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A running SecantusDB server.
pub struct MongoServer {
    process: super::Process,
    /// Held open: the server exits when it closes.
    stdin: Option<ChildStdin>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    dir: TempDir,
}

impl MongoServer {
    /// Starts a server whose TTL monitor sweeps every `ttl_sweep_seconds`.
    pub fn start(ttl_sweep_seconds: f64) -> MongoServer {
        let python = python().expect("SecantusDB is not installed");
        let dir = TempDir::new("mongodb");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(port.to_string())
            .arg(ttl_sweep_seconds.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start SecantusDB");
        let stdin = child.stdin.take();
        let mut server = MongoServer {
            process: {
                let mut process = super::Process::default();
                process.hold(child);
                process
            },
            stdin,
            port,
            dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        let client = self.client();
        loop {
            let ping = runtime().block_on(async {
                client
                    .database("admin")
                    .run_command(doc! { "ping": 1 })
                    .await
            });
            if ping.is_ok() {
                return;
            }
            if let Some(status) = self.process.exited() {
                panic!(
                    "SecantusDB on port {} exited with {status}; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "SecantusDB on port {} did not answer ping within {START_TIMEOUT:?}; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `mongodb://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    /// A driver client of this server (on [`runtime`]), with short timeouts.
    pub fn client(&self) -> ::mongodb::Client {
        let uri = format!(
            "{}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000",
            self.uri()
        );
        runtime()
            .block_on(async { ::mongodb::Client::with_uri_str(&uri).await })
            .unwrap()
    }
}

deref_process!(MongoServer);

impl Drop for MongoServer {
    fn drop(&mut self) {
        // Closing its stdin ends the server's read loop, as the kill does.
        self.stdin.take();
        self.process.kill();
    }
}

/// One server (TTL sweep every second) shared by the tests that run at the
/// same time; each test isolates itself in its own database. It stops when
/// the last test holding it ends.
pub fn shared() -> Arc<MongoServer> {
    static SHARED: Mutex<Weak<MongoServer>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(MongoServer::start(1.0));
    *slot = Arc::downgrade(&server);
    server
}
