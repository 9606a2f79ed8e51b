//! Storage URIs: `scheme://[user[:password]@]host[:port][,host[:port]...][/path][?query]`.
//!
//! Several comma-separated locations are allowed (Redis Cluster, Sentinel,
//! memcached pools), IPv6 hosts are written in brackets (`[::1]:6379`), and a
//! unix socket is given as the path of a URI without host
//! (`redis+unix:///run/redis.sock`).

use std::fmt;

use crate::error::{Error, Result};

/// One `host[:port]` of a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// What stands in for a secret in messages: [`redact`] and
/// [`StorageUri::redacted`].
pub const REDACTED: &str = "***";

/// Whether an option or query parameter named `name` carries a secret
/// (`password`, `tlsCertificateKeyFilePassword`, `secret`, `token`, ...).
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "credential"]
        .iter()
        .any(|word| name.contains(word))
}

/// `text`, a storage URI that need not parse, with its secrets replaced by
/// [`REDACTED`]: the password of the user information and the value of
/// every query parameter whose name says it is a secret. Every message
/// this crate writes about a URI goes through it.
///
/// ```
/// use limitstore::storage::redact;
/// assert_eq!(redact("redis://user:s3cr3t@127.0.0.1:bad"), "redis://user:***@127.0.0.1:bad");
/// assert_eq!(redact("mongodb://h/?password=s3cr3t&w=1"), "mongodb://h/?password=***&w=1");
/// assert_eq!(redact("memory://"), "memory://");
/// ```
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        // Not a URI at all; it may still be a secret someone mistyped.
        return REDACTED.to_owned();
    };
    // The user information ends at the last `@` before the query, even
    // where a password holds a `/` it should have percent-encoded.
    let (head, tail) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    let mut out = format!("{scheme}://");
    let hosts = match head.rfind('@') {
        Some(at) => {
            let (userinfo, hosts) = head.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:{REDACTED}")),
                None => out.push_str(userinfo),
            }
            hosts
        }
        None => head,
    };
    out.push_str(hosts);
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((t, f)) => (t, Some(f)),
        None => (tail, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_name(k) => format!("{k}={REDACTED}"),
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A parsed storage URI.
///
/// ```
/// use limitstore::StorageUri;
/// let uri = StorageUri::parse("redis+sentinel://:secret@h1:26379,[::1]:26380/mymaster?db=2").unwrap();
/// assert_eq!(uri.scheme, "redis+sentinel");
/// assert_eq!(uri.password.as_deref(), Some("secret"));
/// assert_eq!(uri.locations.len(), 2);
/// assert_eq!(uri.locations[1].host, "::1");
/// assert_eq!(uri.path.as_deref(), Some("mymaster"));
/// assert_eq!(uri.query, vec![("db".to_string(), "2".to_string())]);
/// ```
///
/// Its `Debug` output and [`redacted`](Self::redacted) hide the password and
/// secret query parameters; `raw` and `password` keep them for the backends
/// that connect with them.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageUri {
    /// The text the URI was parsed from.
    pub raw: String,
    /// The scheme, lower-cased (`redis`, `async+redis`, `redis+cluster`, ...).
    pub scheme: String,
    /// User name, percent-decoded.
    pub username: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
    /// Zero or more `host[:port]` locations.
    pub locations: Vec<Location>,
    /// The path without its leading `/` for network URIs; the full path
    /// (with `/`) for URIs without a host, such as unix sockets.
    pub path: Option<String>,
    /// Query parameters in order, percent-decoded.
    pub query: Vec<(String, String)>,
}

impl fmt::Debug for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<(&str, &str)> = self
            .query
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_name(k) { REDACTED } else { v };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("StorageUri")
            .field("raw", &self.redacted())
            .field("scheme", &self.scheme)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("locations", &self.locations)
            .field("path", &self.path)
            .field("query", &query)
            .finish()
    }
}

fn bad(uri: &str, why: impl fmt::Display) -> Error {
    Error::configuration(format!(
        "unable to parse storage uri `{}`: {why}",
        redact(uri)
    ))
}

fn percent_decode(uri: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                // Two hex digits exactly: `from_str_radix` alone would also
                // take a sign (`%+1`).
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad(uri, "bad percent-encoding"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(uri, "percent-encoding is not UTF-8"))
}

fn parse_location(uri: &str, text: &str) -> Result<Location> {
    if text.is_empty() {
        return Err(bad(uri, "empty host"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| bad(uri, "unclosed `[` in IPv6 host"))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad(uri, "unexpected text after an IPv6 host"))?,
            ),
        };
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad(uri, "missing host in a location"));
    }
    // A `:` in a host outside brackets is a second port (`h:6379:6379`) or
    // an unbracketed IPv6 address.
    let bracketed = text.starts_with('[');
    if host
        .chars()
        .any(|c| c.is_whitespace() || "/?#@[]".contains(c) || (c == ':' && !bracketed))
    {
        return Err(bad(uri, "invalid host"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            // Digits only: `parse` alone would also take a sign (`:+6379`).
            Some(p)
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(uri, "invalid port"))?,
        ),
    };
    Ok(Location {
        host: host.to_owned(),
        port,
    })
}

impl StorageUri {
    /// Parses a storage URI. Any malformation is a configuration error.
    pub fn parse(text: &str) -> Result<StorageUri> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad(text, "expected `scheme://...`"))?;
        let scheme = scheme.to_ascii_lowercase();
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !valid_scheme {
            return Err(bad(text, format!("invalid scheme `{scheme}`")));
        }
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (rest, query_text) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (u, None),
                };
                let user = Some(percent_decode(text, user)?).filter(|s| !s.is_empty());
                let pass = pass.map(|p| percent_decode(text, p)).transpose()?;
                (user, pass)
            }
        };
        let locations = if hosts.is_empty() {
            Vec::new()
        } else {
            hosts
                .split(',')
                .map(|l| parse_location(text, l.trim()))
                .collect::<Result<Vec<_>>>()?
        };
        let path = match path {
            None | Some("") | Some("/") => None,
            Some(p) if locations.is_empty() => Some(percent_decode(text, p)?),
            Some(p) => Some(percent_decode(text, &p[1..])?),
        };
        let mut query = Vec::new();
        for pair in query_text
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(text, k)?;
            if k.is_empty() {
                return Err(bad(text, "empty query parameter name"));
            }
            query.push((k, percent_decode(text, v)?));
        }
        Ok(StorageUri {
            raw: text.to_owned(),
            scheme,
            username,
            password,
            locations,
            path,
            query,
        })
    }

    /// The URI as written, with its secrets replaced by [`REDACTED`]
    /// (see [`redact`]): the form every message uses.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }

    /// Fails when a query parameter is given twice: which value would win
    /// is a guess (`memory://?max_entries=10&max_entries=20`). MongoDB
    /// URIs are exempt: their driver gives repeated keys a meaning
    /// (`readPreferenceTags`).
    pub fn check_unique_query(&self) -> Result<()> {
        let scheme = self.base_scheme().0;
        let scheme = scheme.strip_prefix("writebehind+").unwrap_or(scheme);
        if scheme.starts_with("mongodb") {
            return Ok(());
        }
        for (i, (k, _)) in self.query.iter().enumerate() {
            if self.query[..i].iter().any(|(seen, _)| seen == k) {
                return Err(Error::configuration(format!(
                    "`{}`: query parameter `{k}` is given twice",
                    self.redacted()
                )));
            }
        }
        Ok(())
    }

    /// The scheme without an `async+` prefix, and whether it had one.
    pub fn base_scheme(&self) -> (&str, bool) {
        match self.scheme.strip_prefix("async+") {
            Some(s) => (s, true),
            None => (&self.scheme, false),
        }
    }

    /// The first location, or a configuration error saying one is needed.
    pub fn require_location(&self) -> Result<&Location> {
        self.locations
            .first()
            .ok_or_else(|| bad(&self.raw, "missing host or port"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_examples() {
        let u = StorageUri::parse("memory://").unwrap();
        assert_eq!(u.scheme, "memory");
        assert!(u.locations.is_empty() && u.path.is_none());

        let u = StorageUri::parse("redis://:password@localhost:6379/1").unwrap();
        assert_eq!(u.password.as_deref(), Some("password"));
        assert_eq!(u.username, None);
        assert_eq!(u.locations[0].port, Some(6379));
        assert_eq!(u.path.as_deref(), Some("1"));

        let u = StorageUri::parse("redis+cluster://localhost:7000,localhost:7001").unwrap();
        assert_eq!(u.locations.len(), 2);

        let u = StorageUri::parse("redis+unix:///tmp/redis.sock?db=3").unwrap();
        assert!(u.locations.is_empty());
        assert_eq!(u.path.as_deref(), Some("/tmp/redis.sock"));
        assert_eq!(u.query[0], ("db".into(), "3".into()));

        let u = StorageUri::parse("async+redis://localhost").unwrap();
        assert_eq!(u.base_scheme(), ("redis", true));

        let u = StorageUri::parse("mongodb://u%40x:p%3Aw@[::1]:27017/db").unwrap();
        assert_eq!(u.username.as_deref(), Some("u@x"));
        assert_eq!(u.password.as_deref(), Some("p:w"));
        assert_eq!(u.locations[0].to_string(), "[::1]:27017");
    }

    #[test]
    fn rejects_malformed_uris() {
        for bad in [
            "",
            "redis",
            "redis:/localhost",
            "://localhost",
            "1redis://x",
            "re dis://x",
            "redis://localhost:notaport",
            "redis://localhost:70000",
            "redis://localhost:0",
            "redis://:6379",
            "redis://[::1",
            "redis://[::1]x",
            "redis://a,,b",
            "redis://x?=1",
            "redis://%zz@x",
            "redis://h%ff:1@x",
            "redis://u%+1@x",
            "redis://u%-1@x",
            "redis://x?k=%+f",
            "redis://h:+6379",
            "redis://[::1]:+1",
            "redis://localhost:6379:6379",
            "redis://::1:6379",
        ] {
            let e = StorageUri::parse(bad).unwrap_err();
            assert!(e.is_configuration(), "{bad}: {e}");
        }
    }
}
