//! `StorageUri::parse` and `storage_from_string`: never panic, and every
//! failure is a configuration error.

use limitstore::{storage_from_string, ErrorKind, OptionValue, Options, StorageUri};

/// Prefixes tried in front of a generated query string.
const PREFIXES: &[&str] = &[
    "memory://",
    "MEMORY://",
    "Memory://",
    "async+memory://",
    "memory://localhost",
    "memory:///path",
    "memory://user:pass@",
    "redis://localhost:6379",
    "nosuch://",
];

/// Option names tried, including unknown ones.
const NAMES: &[&str] = &["max_entries", "shards", "bogus", "", "MAX_ENTRIES"];

/// One fuzz input, decoded from text (invalid UTF-8 replaced) by lines:
///
/// 1. a URI, parsed and built as it is;
/// 2. a prefix selector (its first character's code, modulo the number of
///    [`PREFIXES`]) followed by a query string appended to that prefix;
/// 3. and on: options given beside the URIs, `T:name=value` with `T` one of
///    `b` (bool), `i` (i64), `f` (f64) or anything else (string); a name of
///    `#N` stands for [`NAMES`]`[N]`.
#[derive(Debug)]
pub struct Input {
    /// The URI of line 1.
    pub raw: String,
    /// The URI built from line 2.
    pub built: String,
    /// The options.
    pub options: Options,
}

fn option_value(kind: char, text: &str) -> OptionValue {
    match kind {
        'b' => OptionValue::Bool(text == "true"),
        'i' => text
            .parse()
            .map_or_else(|_| OptionValue::Str(text.to_owned()), OptionValue::Int),
        'f' => text
            .parse()
            .map_or_else(|_| OptionValue::Str(text.to_owned()), OptionValue::Float),
        _ => OptionValue::Str(text.to_owned()),
    }
}

impl Input {
    /// Decodes the bytes of one fuzz input.
    pub fn decode(data: &[u8]) -> Self {
        let text = String::from_utf8_lossy(data);
        let mut lines = text.split('\n');
        let raw = lines.next().unwrap_or("").to_owned();
        let second = lines.next().unwrap_or("");
        let mut chars = second.chars();
        let selector = chars.next().map_or(0, |c| c as usize);
        let mut built = PREFIXES[selector % PREFIXES.len()].to_owned();
        let query = chars.as_str();
        if !query.is_empty() {
            built.push('?');
            built.push_str(query);
        }
        let mut options = Options::new();
        for line in lines {
            let mut chars = line.chars();
            let kind = chars.next().unwrap_or('s');
            let rest = chars.as_str().strip_prefix(':').unwrap_or(chars.as_str());
            let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
            let name = name
                .strip_prefix('#')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| NAMES.get(n).copied())
                .unwrap_or(name);
            options.insert(name, option_value(kind, value));
        }
        Input {
            raw,
            built,
            options,
        }
    }
}

fn expect_configuration<T>(what: &str, text: &str, result: limitstore::Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::Configuration,
                "{what}({text:?}) failed with {e}"
            );
            None
        }
    }
}

/// Whether `text` has a `:` followed by ASCII digits that read as `port`.
fn written_port(text: &str, port: u16) -> bool {
    text.split(':').skip(1).any(|after| {
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok() == Some(u64::from(port))
    })
}

fn check_parsed(text: &str) {
    let Some(uri) = expect_configuration("StorageUri::parse", text, StorageUri::parse(text)) else {
        return;
    };
    assert_eq!(uri.raw, text);
    assert!(
        uri.scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && uri
                .scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
        "scheme {:?} of {text:?}",
        uri.scheme
    );
    for location in &uri.locations {
        assert!(!location.host.is_empty(), "empty host in {text:?}");
        assert_ne!(location.port, Some(0), "port 0 in {text:?}");
        if let Some(port) = location.port {
            assert!(
                written_port(text, port),
                "port {port} of {text:?} is not written as `:` and digits"
            );
        }
    }
    assert!(uri.query.iter().all(|(k, _)| !k.is_empty()));
    let (base, is_async) = uri.base_scheme();
    assert_eq!(is_async, uri.scheme.starts_with("async+"));
    assert!(uri.scheme.ends_with(base));
}

fn check_storage(text: &str, options: &Options) {
    let Some(storage) = expect_configuration(
        "storage_from_string",
        text,
        storage_from_string(text, options),
    ) else {
        return;
    };
    // Only the in-process storage is exercised: a remote one would connect
    // to whatever host the input names.
    let in_process = StorageUri::parse(text).is_ok_and(|u| u.scheme == "memory");
    if in_process {
        assert_eq!(storage.incr("fuzz", 1, false, 1).ok(), Some(1), "{text:?}");
    }
}

/// Checks one input.
pub fn run(input: &Input) {
    check_parsed(&input.raw);
    check_storage(&input.raw, &input.options);
    check_parsed(&input.built);
    check_storage(&input.built, &input.options);
    check_storage(&input.built, &Options::new());
}
