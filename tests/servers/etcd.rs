//! A real single-member `etcd` for the integration tests.
//!
//! The member listens on two free loopback ports (client and peer), keeps
//! its data in a fresh directory (under `/dev/shm` where there is one, so
//! its fsyncs cost nothing) and its log in a temporary directory, and is ready once `GET /health` on the client
//! port answers `"health":"true"`. Dropping it kills the process, waits until
//! the pid has exited and removes the directory.
//!
//! The heartbeat is 50 ms (election timeout 500 ms), which brings etcd's
//! shortest lease down to 1 s (it is 15 heartbeats, rounded up to whole
//! seconds; the default heartbeat gives 2 s).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, TempDir};

/// How long etcd may take to report itself healthy.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running single-member etcd cluster.
pub struct Etcd {
    process: super::Process,
    args: Vec<String>,
    /// The client port (`127.0.0.1:port`).
    pub port: u16,
    /// The peer port.
    pub peer_port: u16,
    /// The log's directory (removed on drop).
    pub dir: TempDir,
    /// The data directory (removed on drop).
    pub data: PathBuf,
}

impl Etcd {
    /// Starts `etcd` on free ports.
    pub fn start() -> Etcd {
        let dir = TempDir::new("etcd");
        let shm = Path::new("/dev/shm");
        let data = match shm.is_dir() {
            true => shm.join(dir.path().file_name().unwrap()),
            false => dir.path().join("data"),
        };
        let port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let args: Vec<String> = vec![
            "--name".into(),
            "limitstore".into(),
            "--data-dir".into(),
            data.to_str().unwrap().into(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url,
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone(),
            "--initial-cluster".into(),
            format!("limitstore={peer_url}"),
            "--initial-cluster-state".into(),
            "new".into(),
            "--heartbeat-interval".into(),
            "50".into(),
            "--election-timeout".into(),
            "500".into(),
            "--logger".into(),
            "zap".into(),
            "--log-level".into(),
            "error".into(),
            "--log-outputs".into(),
            dir.path().join("etcd.log").to_str().unwrap().into(),
        ];
        let mut etcd = Etcd {
            process: super::Process::default(),
            args,
            port,
            peer_port,
            dir,
            data,
        };
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        let child = Command::new("etcd")
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        self.process.hold(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.healthy() {
                return;
            }
            if let Some(status) = self.process.exited() {
                panic!(
                    "etcd on port {} exited with {status}; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "etcd on port {} was not healthy within {START_TIMEOUT:?}; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `GET /health` answers `"health":"true"`.
    pub fn healthy(&self) -> bool {
        let talk = || -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(
                &(std::net::Ipv4Addr::LOCALHOST, self.port).into(),
                Duration::from_millis(500),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut reply = String::new();
            s.read_to_string(&mut reply)?;
            Ok(reply)
        };
        talk().is_ok_and(|r| r.contains("\"health\":\"true\""))
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// `etcd://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`, for a raw client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same ports with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

deref_process!(Etcd);

impl Drop for Etcd {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
