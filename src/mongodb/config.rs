//! Options of the MongoDB storage (see the [module docs](crate::mongodb)),
//! and the connection string handed to the driver.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::{Options, StorageUri};

/// The database of Python `limits`.
pub const DEFAULT_DATABASE_NAME: &str = "limits";
/// The fixed-window collection of Python `limits`.
pub const DEFAULT_COUNTER_COLLECTION: &str = "counters";
/// The moving- and sliding-window collection of Python `limits`.
pub const DEFAULT_WINDOW_COLLECTION: &str = "windows";
/// Default `serverSelectionTimeoutMS`: how long a call waits for a usable server.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `connectTimeoutMS`: how long opening one connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `socketTimeoutMS`: how long a call waits for its reply once a
/// server was selected.
pub const DEFAULT_SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Options this crate reads itself; every other option goes to the driver.
pub(crate) const OWN_OPTIONS: &[&str] = &[
    "database_name",
    "counter_collection_name",
    "window_collection_name",
];

/// Timeout options (case-insensitive, as the driver's URI options are) that
/// this crate reads itself.
const SERVER_SELECTION_TIMEOUT: &str = "serverSelectionTimeoutMS";
const CONNECT_TIMEOUT: &str = "connectTimeoutMS";
const SOCKET_TIMEOUT: &str = "socketTimeoutMS";

/// The settings of one MongoDB storage, parsed from its URI and options.
#[derive(Clone)]
pub(crate) struct MongoConfig {
    /// `mongodb://...` or `mongodb+srv://...` with the driver's options only.
    pub connection_string: String,
    pub srv: bool,
    pub database: String,
    pub counters: String,
    pub windows: String,
    pub server_selection_timeout: Duration,
    pub connect_timeout: Duration,
    pub socket_timeout: Duration,
}

impl std::fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoConfig")
            .field("srv", &self.srv)
            .field("database", &self.database)
            .field("counters", &self.counters)
            .field("windows", &self.windows)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("socket_timeout", &self.socket_timeout)
            .finish_non_exhaustive()
    }
}

/// Whether `c` may appear unescaped in a query value.
fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~:,".contains(&c)
}

/// Percent-encodes a query key or value (the driver decodes values).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A timeout option in milliseconds, looked up case-insensitively.
fn timeout_ms(options: &Options, name: &str, default: Duration) -> Result<Duration> {
    let mut found = None;
    for key in options.names().filter(|k| k.eq_ignore_ascii_case(name)) {
        if found.is_some() {
            return Err(Error::configuration(format!(
                "option `{name}` is given twice"
            )));
        }
        found = Some(key);
    }
    let Some(key) = found else {
        return Ok(default);
    };
    match options.get_u64(key)? {
        Some(ms) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&Duration::from_millis(ms)) => {
            Ok(Duration::from_millis(ms))
        }
        _ => Err(Error::configuration(format!(
            "option `{key}` must be a whole number of milliseconds between 1 and 3600000"
        ))),
    }
}

fn is_timeout_option(name: &str) -> bool {
    [SERVER_SELECTION_TIMEOUT, CONNECT_TIMEOUT, SOCKET_TIMEOUT]
        .iter()
        .any(|t| name.eq_ignore_ascii_case(t))
}

/// Checks a database name as MongoDB does.
fn database_name(name: String) -> Result<String> {
    if name.is_empty() || name.len() > 63 || name.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(Error::configuration(format!(
            "option `database_name` = `{name}` is not a valid MongoDB database name \
             (1 to 63 characters, none of /\\. \"$)"
        )));
    }
    Ok(name)
}

/// Checks a collection name as MongoDB does.
fn collection_name(option: &str, name: String) -> Result<String> {
    if name.is_empty() || name.contains(['$', '\0']) || name.starts_with("system.") {
        return Err(Error::configuration(format!(
            "option `{option}` = `{name}` is not a valid MongoDB collection name \
             (not empty, no `$`, not starting with `system.`)"
        )));
    }
    Ok(name)
}

impl MongoConfig {
    /// Parses a `mongodb://`, `mongodb+srv://` (or `async+` of either) URI
    /// with `options` (the URI's query already merged in; explicit options
    /// win). Options this crate does not know are handed to the driver,
    /// whose parser refuses unknown or malformed ones.
    pub(crate) fn parse(uri: &StorageUri, options: &Options) -> Result<Self> {
        let (scheme, _) = uri.base_scheme();
        let srv = match scheme {
            "mongodb" => false,
            "mongodb+srv" => true,
            other => {
                return Err(Error::configuration(format!(
                    "`{other}` is not a MongoDB scheme"
                )))
            }
        };
        uri.require_location()?;
        let database = database_name(
            options
                .get_str("database_name")?
                .unwrap_or_else(|| DEFAULT_DATABASE_NAME.to_owned()),
        )?;
        let counters = collection_name(
            "counter_collection_name",
            options
                .get_str("counter_collection_name")?
                .unwrap_or_else(|| DEFAULT_COUNTER_COLLECTION.to_owned()),
        )?;
        let windows = collection_name(
            "window_collection_name",
            options
                .get_str("window_collection_name")?
                .unwrap_or_else(|| DEFAULT_WINDOW_COLLECTION.to_owned()),
        )?;
        if counters == windows {
            return Err(Error::configuration(format!(
                "options `counter_collection_name` and `window_collection_name` \
                 must differ (both are `{counters}`)"
            )));
        }
        let server_selection_timeout = timeout_ms(
            options,
            SERVER_SELECTION_TIMEOUT,
            DEFAULT_SERVER_SELECTION_TIMEOUT,
        )?;
        let connect_timeout = timeout_ms(options, CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)?;
        let socket_timeout = timeout_ms(options, SOCKET_TIMEOUT, DEFAULT_SOCKET_TIMEOUT)?;

        // Everything up to the query, under the synchronous scheme name.
        let rest = uri
            .raw
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let base = rest.split_once('?').map_or(rest, |(r, _)| r);
        let mut query: Vec<String> = Vec::new();
        let mut push = |k: &str, v: &str| query.push(format!("{}={}", encode(k), encode(v)));
        for name in options.names() {
            if OWN_OPTIONS.contains(&name) || is_timeout_option(name) {
                continue;
            }
            let value = options
                .get(name)
                .map(ToString::to_string)
                .unwrap_or_default();
            // A key the URI repeats (`readPreferenceTags`) keeps every
            // occurrence, unless an explicit option replaced it.
            let from_uri: Vec<&str> = uri
                .query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect();
            if from_uri.first() == Some(&value.as_str()) {
                for v in from_uri {
                    push(name, v);
                }
            } else {
                push(name, &value);
            }
        }
        let mut connection_string = format!("{scheme}://{base}");
        if !query.is_empty() {
            if !base.contains('/') {
                connection_string.push('/');
            }
            connection_string.push('?');
            connection_string.push_str(&query.join("&"));
        }
        Ok(MongoConfig {
            connection_string,
            srv,
            database,
            counters,
            windows,
            server_selection_timeout,
            connect_timeout,
            socket_timeout,
        })
    }

    /// The longest one call may take: waiting for a server, then for its reply.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.server_selection_timeout + self.socket_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str, options: &Options) -> Result<MongoConfig> {
        let uri = StorageUri::parse(uri)?;
        let mut merged = options.clone();
        for (k, v) in &uri.query {
            merged.insert_default(k, v.as_str());
        }
        MongoConfig::parse(&uri, &merged)
    }

    #[test]
    fn defaults_are_those_of_limits() {
        let c = parse("mongodb://localhost:27017", &Options::new()).unwrap();
        assert_eq!(c.connection_string, "mongodb://localhost:27017");
        assert_eq!(
            (c.database.as_str(), c.counters.as_str(), c.windows.as_str()),
            ("limits", "counters", "windows")
        );
        assert!(!c.srv);
        assert_eq!(c.call_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn own_options_are_taken_out_and_the_rest_passed_on() {
        let c = parse(
            "async+mongodb://u:p%40ss@h1:1,h2:2/admin?database_name=rl&replicaSet=rs0\
             &readPreference=secondaryPreferred&readPreferenceTags=dc:ny&readPreferenceTags=\
             &serverSelectionTimeoutMS=250#frag",
            &Options::new()
                .with("window_collection_name", "w")
                .with("appName", "my app"),
        )
        .unwrap();
        assert_eq!(c.database, "rl");
        assert_eq!(c.windows, "w");
        assert_eq!(c.server_selection_timeout, Duration::from_millis(250));
        assert_eq!(
            c.connection_string,
            "mongodb://u:p%40ss@h1:1,h2:2/admin?appName=my%20app&readPreference=secondaryPreferred\
             &readPreferenceTags=dc:ny&readPreferenceTags=&replicaSet=rs0"
        );
        let c = parse(
            "mongodb+srv://cluster.example.com?retryWrites=false",
            &Options::new(),
        )
        .unwrap();
        assert!(c.srv);
        assert_eq!(
            c.connection_string,
            "mongodb+srv://cluster.example.com/?retryWrites=false"
        );
        // An explicit option replaces the URI's.
        let c = parse(
            "mongodb://h?socketTimeoutMS=5&appName=a",
            &Options::new()
                .with("appName", "b")
                .with("socketTimeoutMS", 7),
        )
        .unwrap();
        assert_eq!(c.connection_string, "mongodb://h/?appName=b");
        assert_eq!(c.socket_timeout, Duration::from_millis(7));
    }

    #[test]
    fn bad_options_are_configuration_errors() {
        for (uri, options) in [
            ("redis://h", Options::new()),
            ("mongodb://", Options::new()),
            ("mongodb://h?database_name=a.b", Options::new()),
            ("mongodb://h?database_name=", Options::new()),
            (
                "mongodb://h?counter_collection_name=system.x",
                Options::new(),
            ),
            ("mongodb://h?window_collection_name=a$b", Options::new()),
            (
                "mongodb://h?window_collection_name=counters",
                Options::new(),
            ),
            ("mongodb://h?connectTimeoutMS=0", Options::new()),
            ("mongodb://h?connecttimeoutms=soon", Options::new()),
            ("mongodb://h?socketTimeoutMS=99999999", Options::new()),
            (
                "mongodb://h?serverSelectionTimeoutMS=1",
                Options::new().with("serverselectiontimeoutms", 2),
            ),
        ] {
            let e = parse(uri, &options).unwrap_err();
            assert!(e.is_configuration(), "{uri}: {e}");
        }
    }
}
