//! One Memcached server: a pool of binary-protocol connections of the
//! `memcache` crate, opened lazily and thrown away after a connection-level
//! error.
//!
//! The `memcache` crate's own pool never notices a broken connection (its
//! connection manager's `has_broken` is always false), and a connection
//! whose reply was cut off by a timeout would hand that late reply to the
//! next command. So after any I/O, parse or protocol error the whole pool of
//! that server is dropped; the next call opens fresh connections. This is
//! also how the storage recovers from a server restart: the first call on a
//! stale connection fails, later calls reconnect.
//!
//! The pool is built with `r2d2` directly rather than with
//! `memcache::ClientBuilder`, whose `build` connects at once (and blocks up
//! to the connect timeout when the server is down) and validates every
//! checkout with an extra `version` round trip.

use std::sync::Arc;

use memcache::{Client, CommandError, ConnectionManager, MemcacheError, Url};
use parking_lot::RwLock;

use super::config::{MemcachedConfig, Target};
use crate::error::{io_timed_out, Error, Result};

pub(crate) const BACKEND: &str = "memcached";

/// A lazily connected server.
pub(crate) struct Server {
    target: Target,
    url: Url,
    config: Arc<MemcachedConfig>,
    client: RwLock<Option<Arc<Client>>>,
}

/// Whether `err` means the connection that produced it (and its siblings)
/// must not be used again.
fn is_connection_error(err: &MemcacheError) -> bool {
    matches!(
        err,
        MemcacheError::IOError(_) | MemcacheError::ParseError(_) | MemcacheError::ServerError(_)
    ) || matches!(
        err,
        MemcacheError::CommandError(CommandError::Unknown(_) | CommandError::InvalidCommand)
    )
}

impl Server {
    pub(crate) fn new(target: Target, config: Arc<MemcachedConfig>) -> Result<Self> {
        let url = Url::parse(&target.url(config.timeout)).map_err(|e| {
            Error::configuration(format!("memcached server `{}`: {e}", target.name()))
        })?;
        Ok(Server {
            target,
            url,
            config,
            client: RwLock::new(None),
        })
    }

    /// The server's name (`host:port` or socket path).
    pub(crate) fn name(&self) -> String {
        self.target.name()
    }

    fn build(&self) -> std::result::Result<Arc<Client>, MemcacheError> {
        let pool = r2d2::Pool::builder()
            .max_size(self.config.max_connections)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(self.config.connect_timeout)
            .build_unchecked(ConnectionManager::new(self.url.clone()));
        Ok(Arc::new(Client::with_pools(vec![pool])?))
    }

    fn client(&self) -> std::result::Result<Arc<Client>, MemcacheError> {
        if let Some(c) = self.client.read().as_ref() {
            return Ok(c.clone());
        }
        let mut slot = self.client.write();
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.build()?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Drops `client`'s pool, unless it was replaced already.
    fn discard(&self, client: &Arc<Client>) {
        let mut slot = self.client.write();
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            *slot = None;
        }
    }

    fn error(&self, err: MemcacheError) -> Error {
        self.error_as(BACKEND, err)
    }

    /// A client error of this server, as `backend` reports it; an I/O
    /// timeout (the client does not expose it as a source) is marked so.
    pub(crate) fn error_as(&self, backend: &str, err: MemcacheError) -> Error {
        let timed_out = matches!(&err, MemcacheError::IOError(io) if io_timed_out(io));
        let e = Error::storage(&format!("{backend} {}", self.name()), err);
        if timed_out {
            e.timed_out()
        } else {
            e
        }
    }

    /// Runs `f` on this server; a connection-level error drops the pool.
    pub(crate) fn run<T>(
        &self,
        f: impl Fn(&Client) -> std::result::Result<T, MemcacheError>,
    ) -> std::result::Result<T, MemcacheError> {
        let client = self.client()?;
        let result = f(&client);
        if let Err(e) = &result {
            if is_connection_error(e) {
                self.discard(&client);
            }
        }
        result
    }

    /// [`run`](Self::run), with the error as this crate's.
    pub(crate) fn call<T>(
        &self,
        f: impl Fn(&Client) -> std::result::Result<T, MemcacheError>,
    ) -> Result<T> {
        self.run(f).map_err(|e| self.error(e))
    }

    /// Like [`call`](Self::call), for commands without side effects: one
    /// retry on fresh connections after a connection-level error (a stale
    /// connection after a server restart).
    pub(crate) fn read<T>(
        &self,
        f: impl Fn(&Client) -> std::result::Result<T, MemcacheError>,
    ) -> Result<T> {
        match self.run(&f) {
            Err(e) if is_connection_error(&e) => self.call(f),
            other => other.map_err(|e| self.error(e)),
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("target", &self.target.name())
            .field("connected", &self.client.read().is_some())
            .finish()
    }
}
