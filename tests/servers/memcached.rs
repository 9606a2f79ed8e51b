//! Real `memcached` servers for the Memcached storage's tests.
//!
//! A server is a child process on a free loopback port (or on a unix socket
//! in its own temporary directory), with UDP off and 64 MB of memory. It is
//! ready once a fresh connection answers `version`; dropping it kills the
//! process and waits until the pid has exited, so a restart on the same
//! port cannot race the dying process.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, TempDir};

const START_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a memcached listens.
#[derive(Debug, Clone)]
pub enum Listen {
    Tcp(u16),
    Unix(PathBuf),
}

/// A running `memcached`.
pub struct Memcached {
    args: Vec<String>,
    process: super::Process,
    /// Where it listens.
    pub listen: Listen,
    /// Its directory (holds the unix socket).
    pub dir: TempDir,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Memcached {
    /// A server on a free loopback TCP port.
    pub fn tcp() -> Memcached {
        let port = free_port();
        Self::start_with(
            [
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-m",
                "64",
            ],
            Listen::Tcp(port),
            TempDir::new("memcached"),
        )
    }

    /// A server listening only on a unix socket (`-s`) in its own directory.
    pub fn unix() -> Memcached {
        let dir = TempDir::new("memcached-unix");
        let socket = dir.path().join("memcached.sock");
        let path = socket.to_str().unwrap().to_string();
        Self::start_with(
            ["-s", &path, "-U", "0", "-m", "64"],
            Listen::Unix(socket),
            dir,
        )
    }

    fn start_with<const N: usize>(args: [&str; N], listen: Listen, dir: TempDir) -> Memcached {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if running_as_root() {
            args.extend(["-u".to_string(), "root".to_string()]);
        }
        let mut server = Memcached {
            args,
            process: super::Process::default(),
            listen,
            dir,
        };
        server.start();
        server
    }

    fn start(&mut self) {
        let child = Command::new("memcached")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start memcached: {e}"));
        self.process.hold(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self
                .command("version\r\n", "\r\n")
                .is_ok_and(|r| r.starts_with("VERSION "))
            {
                return;
            }
            if let Some(status) = self.process.exited() {
                panic!("memcached {:?} exited with {status}", self.listen);
            }
            assert!(
                Instant::now() < deadline,
                "memcached {:?} did not answer `version` within {START_TIMEOUT:?}",
                self.listen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `request` (text protocol) on a fresh connection and reads until
    /// the reply ends with `end`.
    pub fn command(&self, request: &str, end: &str) -> std::io::Result<String> {
        fn talk<S: Read + Write>(mut s: S, request: &str, end: &str) -> std::io::Result<String> {
            s.write_all(request.as_bytes())?;
            let mut reply = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            while !reply.ends_with(end.as_bytes()) {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                reply.extend_from_slice(&buf[..n]);
            }
            Ok(String::from_utf8_lossy(&reply).into_owned())
        }
        match &self.listen {
            Listen::Tcp(port) => {
                let s = TcpStream::connect_timeout(
                    &(std::net::Ipv4Addr::LOCALHOST, *port).into(),
                    IO_TIMEOUT,
                )?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                talk(s, request, end)
            }
            Listen::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                talk(s, request, end)
            }
        }
    }

    /// `stats`, as a map.
    pub fn stats(&self) -> HashMap<String, String> {
        let reply = self.command("stats\r\n", "END\r\n").expect("stats");
        reply
            .lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The number of items stored (`curr_items`).
    pub fn curr_items(&self) -> u64 {
        self.stats()["curr_items"].parse().unwrap()
    }

    /// The value of `key`, read with the text protocol.
    pub fn get(&self, key: &str) -> Option<String> {
        let reply = self
            .command(&format!("get {key}\r\n"), "END\r\n")
            .expect("get");
        let mut lines = reply.split("\r\n");
        let header = lines.next()?;
        header
            .starts_with("VALUE ")
            .then(|| lines.next().unwrap().to_string())
    }

    /// Stores `value` at `key` for `ttl` seconds with the text protocol.
    pub fn set(&self, key: &str, value: &str, ttl: u32) {
        let reply = self
            .command(
                &format!("set {key} 0 {ttl} {}\r\n{value}\r\n", value.len()),
                "\r\n",
            )
            .expect("set");
        assert_eq!(reply, "STORED\r\n");
    }

    /// The storage URI of this server (`memcached://127.0.0.1:port` or
    /// `memcached:///path`), without a query.
    pub fn uri(&self) -> String {
        format!("memcached://{}", self.location())
    }

    /// `127.0.0.1:port`, or the socket path.
    pub fn location(&self) -> String {
        match &self.listen {
            Listen::Tcp(port) => format!("127.0.0.1:{port}"),
            Listen::Unix(path) => path.display().to_string(),
        }
    }

    /// Starts the server again, empty, where it listened before.
    pub fn restart(&mut self) {
        self.kill();
        if let Listen::Unix(path) = &self.listen {
            let _ = std::fs::remove_file(path);
        }
        self.start();
    }
}

deref_process!(Memcached);
