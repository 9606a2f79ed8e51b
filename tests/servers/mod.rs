//! Real Redis servers for the integration tests.
//!
//! Each server is a child process (`redis-server`, `redis-sentinel`) on a
//! free loopback port with its own temporary directory. It is ready once it
//! answers `PING`; dropping it kills the process, waits until the pid has
//! exited (so a restart on the same port cannot race the dying process) and
//! removes the directory.
//!
//! When a server binary is missing, [`require`] fails the test if the
//! environment says `CI=true`, and otherwise prints a note and lets the test
//! skip itself.
#![allow(dead_code)]

/// Gives a server type with a `process: Process` field the methods of
/// [`Process`].
macro_rules! deref_process {
    ($server:ty) => {
        impl std::ops::Deref for $server {
            type Target = $crate::servers::Process;
            fn deref(&self) -> &Self::Target {
                &self.process
            }
        }

        impl std::ops::DerefMut for $server {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.process
            }
        }
    };
}

pub mod memcached;
#[cfg(feature = "mongodb")]
pub mod mongodb;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[cfg(feature = "etcd")]
pub mod etcd;

/// How long a server may take to answer `PING` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `binary` is on the `PATH`. Missing: a panic when `CI=true`, a
/// note on stderr otherwise (the caller then returns early).
pub fn require(binary: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "`{binary}` is not installed, and CI=true requires every server test to run \
             (`bash scripts/test.sh` installs every server the tests start)"
        );
    }
    eprintln!("note: `{binary}` is not installed; skipping this test");
    false
}

/// Returns early from a test when one of the binaries is missing (see [`require`]).
#[macro_export]
macro_rules! require_or_skip {
    ($($bin:expr),+) => {
        if !($($crate::servers::require($bin))&&+) {
            return;
        }
    };
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback port that is free now and whose Cluster bus port (+10000) is
/// free too. Ports are drawn from 20000..30000, away from the ephemeral range.
pub fn free_port() -> u16 {
    let seed = std::process::id();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + ((seed.wrapping_mul(7919) + n * 13) % 10000) as u16;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
}

/// Sends `signal` (`STOP`, `CONT`, ...) to `pid` with `kill(1)`. A `STOP`
/// takes effect once every thread of the process has seen it: this waits
/// until the process is stopped, so no request sent afterwards is served.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    if signal == "STOP" {
        let stat = format!("/proc/{pid}/stat");
        wait_until("the server to stop", Duration::from_secs(5), || {
            std::fs::read_to_string(&stat)
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .map(|r| r.trim_start().starts_with('T'))
                })
                .unwrap_or(false)
        });
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "limitstore-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends one inline command over a fresh TCP or unix connection and returns
/// the raw reply (good enough for PING, INFO and readiness checks).
pub fn raw_command(addr: &Addr, command: &str) -> std::io::Result<String> {
    fn talk<S: Read + Write>(mut s: S, command: &str) -> std::io::Result<String> {
        s.write_all(format!("{command}\r\n").as_bytes())?;
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
    let timeout = Some(Duration::from_millis(500));
    match addr {
        Addr::Tcp(port) => {
            let s = TcpStream::connect_timeout(
                &(std::net::Ipv4Addr::LOCALHOST, *port).into(),
                Duration::from_millis(500),
            )?;
            s.set_read_timeout(timeout)?;
            talk(s, command)
        }
        Addr::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(path)?;
            s.set_read_timeout(timeout)?;
            talk(s, command)
        }
    }
}

/// Where a server listens for plain-text clients.
#[derive(Debug, Clone)]
pub enum Addr {
    Tcp(u16),
    Unix(PathBuf),
}

/// The Python interpreter of the virtual environment `target/<venv>` (or
/// the one the variable `env` names) that has `package` installed. Missing:
/// a panic when `CI=true`, a note on stderr and `None` otherwise (the test
/// then returns early).
pub fn python(env: &str, venv: &str, package: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os(env).map(PathBuf::from);
    let default =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/{venv}/bin/python"));
    if let Some(found) = from_env.into_iter().chain([default]).find(|p| p.is_file()) {
        return Some(found);
    }
    let how = format!(
        "scripts/test.sh installs it (python3 -m venv target/{venv} && \
         target/{venv}/bin/pip install '{package}')"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Python `{package}` is not installed, and CI=true requires this test to run; {how}");
    }
    eprintln!("note: Python `{package}` is not installed; skipping ({how})");
    None
}

/// The process of a server a test started: signalled, killed and waited
/// for here, and killed when dropped. Each server type holds one and derefs
/// to it, so `server.pid()`, `server.signal("STOP")` and `server.kill()` are
/// written once.
#[derive(Default)]
pub struct Process(Option<Child>);

impl Process {
    /// Holds `child`, the server just spawned; panics if one is running.
    pub fn hold(&mut self, child: Child) {
        assert!(self.0.is_none(), "server already running");
        self.0 = Some(child);
    }

    /// Whether a process is held.
    pub fn is_running(&self) -> bool {
        self.0.is_some()
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0
            .as_mut()
            .expect("server not running")
            .try_wait()
            .unwrap()
    }

    /// The pid of the running server.
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("server not running").id()
    }

    /// Sends a signal (`STOP`, `CONT`, ...); see [`send_signal`].
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Kills the server (SIGKILL) and waits until its pid has exited.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `redis-server` or `redis-sentinel`.
pub struct Server {
    program: String,
    args: Vec<String>,
    process: Process,
    /// The plain TCP port.
    pub port: u16,
    /// The unix socket, when one was asked for.
    pub socket: Option<PathBuf>,
    /// The server's directory (logs, config, certificates).
    pub dir: TempDir,
}

/// How to start a `redis-server`.
#[derive(Default, Clone)]
pub struct Config {
    /// Also listen on a unix socket in the server's directory.
    pub unix_socket: bool,
    /// Extra arguments (`--requirepass x`, `--cluster-enabled yes`, ...).
    pub args: Vec<String>,
}

impl Server {
    /// Starts a `redis-server` on a free port.
    pub fn redis(config: Config) -> Server {
        let dir = TempDir::new("redis");
        let port = free_port();
        let socket = config.unix_socket.then(|| dir.path().join("redis.sock"));
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.path().to_str().unwrap(),
            "--logfile",
            "redis.log",
            "--repl-diskless-sync-delay",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(sock) = &socket {
            args.extend([
                "--unixsocket".to_string(),
                sock.to_str().unwrap().to_string(),
            ]);
        }
        args.extend(config.args);
        let mut server = Server {
            program: "redis-server".into(),
            args,
            process: Process::default(),
            port,
            socket,
            dir,
        };
        server.start();
        server
    }

    /// Starts a `redis-sentinel` on a free port, monitoring `master_port`
    /// as `service` with quorum 1 and a `down_after_ms` failure detector.
    pub fn sentinel(service: &str, master_port: u16, down_after_ms: u64) -> Server {
        let dir = TempDir::new("sentinel");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile sentinel.log\n\
                 sentinel monitor {service} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {service} {down_after_ms}\n\
                 sentinel failover-timeout {service} 10000\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        let mut server = Server {
            program: "redis-sentinel".into(),
            args: vec![conf.to_str().unwrap().to_string()],
            process: Process::default(),
            port,
            socket: None,
            dir,
        };
        server.start();
        server
    }

    fn start(&mut self) {
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program));
        self.process.hold(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // A server with a password answers, too, only not with PONG.
            if raw_command(&Addr::Tcp(self.port), "PING")
                .is_ok_and(|r| r.starts_with("+PONG") || r.starts_with("-NOAUTH"))
            {
                return;
            }
            if let Some(status) = self.process.exited() {
                panic!(
                    "{} on port {} exited with {status}; log:\n{}",
                    self.program,
                    self.port,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} on port {} did not answer PING within {START_TIMEOUT:?}; log:\n{}",
                self.program,
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log file.
    pub fn log(&self) -> String {
        ["redis.log", "sentinel.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .collect()
    }

    /// Starts the server again with the same arguments, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// A plain `redis` crate connection to this server.
    #[cfg(feature = "redis")]
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

deref_process!(Server);

/// A key prefix no other test uses.
pub fn unique_prefix(tag: &str) -> String {
    format!(
        "T-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits until `f` returns true, polling every 50 ms, or panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A three-primary Redis Cluster (no replicas). Slots are assigned and the
/// nodes introduced with plain commands, then every node must report
/// `cluster_state:ok`.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

#[cfg(feature = "redis")]
impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                Server::redis(Config {
                    unix_socket: false,
                    args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                })
            })
            .collect();
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (first, last)) in nodes.iter().zip(ranges) {
            let mut c = node.connection();
            redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .exec(&mut c)
                .unwrap();
        }
        let mut first = nodes[0].connection();
        for other in &nodes[1..] {
            redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(other.port)
                .exec(&mut first)
                .unwrap();
        }
        for node in &nodes {
            wait_until("cluster_state:ok", Duration::from_secs(20), || {
                let mut c = node.connection();
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
                info.contains("cluster_state:ok")
                    && nodes.lines().filter(|l| l.contains("master")).count() == 3
            });
        }
        Cluster { nodes }
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}
