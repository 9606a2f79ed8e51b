//! A small pool of synchronous connections.
//!
//! The storage API is synchronous and must work from any thread, including
//! threads of an async runtime, so the pool hands out blocking connections of
//! the `redis` crate (never a runtime of its own). At most `max` connections
//! are open at once; a caller that finds none idle and the pool full waits
//! for one to come back, up to the socket timeout.
//!
//! A connection that fails with a connection-level error (I/O, timeout, a
//! closed socket, a demoted primary) is dropped, and so is every idle one:
//! they point at the same server and are most likely broken as well, so the
//! next call connects afresh. This is how the storage recovers from a server
//! restart or a Sentinel failover.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redis::{ConnectionLike, RedisError, RedisResult, ServerErrorKind};

/// Opens connections for a [`Pool`].
pub(crate) trait Connector: Send + Sync {
    /// The connection type.
    type Conn: ConnectionLike + Send;

    /// Opens a new connection, within the configured connect timeout.
    fn connect(&self) -> RedisResult<Self::Conn>;
}

/// Whether `err` means the connection that produced it must not be reused
/// (and that the other idle connections are suspect too).
pub(crate) fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            redis::ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
        // A script whose write hits a demoted primary reports READONLY in its message.
        || err.to_string().contains("READONLY")
}

struct State<T> {
    idle: Vec<T>,
    open: usize,
}

/// A bounded pool of connections made by a [`Connector`].
pub(crate) struct Pool<C: Connector> {
    connector: C,
    state: Mutex<State<C::Conn>>,
    returned: Condvar,
    max: usize,
    wait: Duration,
}

impl<C: Connector> Pool<C> {
    /// A pool of at most `max` connections; a caller waits at most `wait` for one.
    pub(crate) fn new(connector: C, max: usize, wait: Duration) -> Self {
        Pool {
            connector,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            max: max.max(1),
            wait,
        }
    }

    /// The connector.
    pub(crate) fn connector(&self) -> &C {
        &self.connector
    }

    /// Number of idle connections (for tests and debugging).
    pub(crate) fn idle(&self) -> usize {
        self.state.lock().idle.len()
    }

    /// Runs `f` on a pooled connection. A connection-level error drops the
    /// connection and empties the idle list.
    pub(crate) fn run<T>(&self, f: impl FnOnce(&mut C::Conn) -> RedisResult<T>) -> RedisResult<T> {
        let mut lease = self.checkout()?;
        let conn = lease.conn.as_mut().expect("a lease holds its connection");
        let result = f(conn);
        if let Err(err) = &result {
            if is_connection_error(err) {
                lease.conn = None;
                self.drain_idle();
            }
        }
        result
    }

    fn checkout(&self) -> RedisResult<Lease<'_, C>> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                // The slot is counted before connecting; the lease gives it
                // back if connecting fails.
                let mut lease = Lease {
                    pool: self,
                    conn: None,
                };
                lease.conn = Some(self.connector.connect()?);
                return Ok(lease);
            }
            if self.returned.wait_until(&mut state, deadline).timed_out() {
                return Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "connection pool exhausted",
                    format!(
                        "all {} connections stayed busy for {:?}",
                        self.max, self.wait
                    ),
                )));
            }
        }
    }

    fn drain_idle(&self) {
        let drained = {
            let mut state = self.state.lock();
            let drained = std::mem::take(&mut state.idle);
            state.open -= drained.len();
            drained
        };
        if !drained.is_empty() {
            self.returned.notify_all();
        }
        // Closed outside the lock.
        drop(drained);
    }
}

/// A checked-out connection slot; gives the connection (or just the slot)
/// back on drop, also when the caller panicked.
struct Lease<'a, C: Connector> {
    pool: &'a Pool<C>,
    conn: Option<C::Conn>,
}

impl<C: Connector> Drop for Lease<'_, C> {
    fn drop(&mut self) {
        let reusable = self
            .conn
            .take()
            .filter(|c| c.is_open() && !std::thread::panicking());
        let mut state = self.pool.state.lock();
        match reusable {
            Some(conn) => state.idle.push(conn),
            None => state.open -= 1,
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}
