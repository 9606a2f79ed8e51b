//! Bad input of every kind is a typed error, never a panic or an overflow:
//! amounts, expiries, limits, keys, option values, URIs and rate strings.

use std::sync::Arc;

use limitstore::{
    parse, storage_from_string, ErrorKind, FakeClock, FixedWindowRateLimiter, MemoryStorage,
    MovingWindowRateLimiter, MovingWindowSupport, OptionValue, Options, RateLimitItem, RateLimiter,
    SlidingWindowCounterRateLimiter, SlidingWindowCounterSupport, Storage, StorageUri, MAX_AMOUNT,
    MAX_EXPIRY, MAX_KEY_LEN, MAX_MOVING_WINDOW_LIMIT,
};

fn storage() -> (FakeClock, MemoryStorage<FakeClock>) {
    let clock = FakeClock::new();
    (clock.clone(), MemoryStorage::builder().clock(clock).build())
}

fn invalid<T: std::fmt::Debug>(r: limitstore::Result<T>) {
    assert_eq!(
        r.expect_err("expected an error").kind(),
        ErrorKind::InvalidArgument
    );
}

fn configuration<T>(r: limitstore::Result<T>) {
    match r {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Configuration, "{e}"),
    }
}

#[test]
fn zero_and_huge_amounts() {
    let (_, s) = storage();
    for amount in [0, MAX_AMOUNT + 1, u64::MAX] {
        invalid(s.incr("k", 10, false, amount));
        invalid(s.acquire_entry("k", 8, 10, amount));
        invalid(s.acquire_sliding_window_entry("k", 8, 10, amount));
    }
    assert_eq!(s.get("k").unwrap(), 0);
    assert_eq!(s.get_moving_window("k", 8, 10).unwrap().count, 0);
    assert_eq!(s.get_sliding_window("k", 10).unwrap().current_count, 0);
    assert_eq!(s.incr("k", 10, false, MAX_AMOUNT).unwrap(), MAX_AMOUNT);
}

#[test]
fn a_counter_refuses_to_overflow_and_keeps_its_count() {
    let (_, s) = storage();
    let mut last = 0;
    for _ in 0..1000 {
        match s.incr("big", 60, false, MAX_AMOUNT) {
            Ok(count) => {
                assert!(count > last);
                last = count;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidArgument);
                assert_eq!(s.get("big").unwrap(), last);
                return;
            }
        }
    }
    panic!("a counter grew past {last} without an error");
}

#[test]
fn zero_and_absurd_expiries() {
    let (_, s) = storage();
    for expiry in [0, MAX_EXPIRY + 1, u64::MAX] {
        invalid(s.incr("k", expiry, false, 1));
        invalid(s.incr("k", expiry, true, 1));
        invalid(s.acquire_entry("k", 8, expiry, 1));
        invalid(s.get_moving_window("k", 8, expiry));
        invalid(s.acquire_sliding_window_entry("k", 8, expiry, 1));
        invalid(s.get_sliding_window("k", expiry));
    }
    // The longest expiry works everywhere.
    let now = s.unix_now();
    assert_eq!(s.incr("k", MAX_EXPIRY, true, 1).unwrap(), 1);
    let at = s.get_expiry("k").unwrap();
    assert!((at - (now + MAX_EXPIRY as f64)).abs() < 1.0, "{at}");
    assert!(s.acquire_entry("k", 1, MAX_EXPIRY, 1).unwrap());
    assert!(!s.acquire_entry("k", 1, MAX_EXPIRY, 1).unwrap());
    assert!(s
        .acquire_sliding_window_entry("k", 1, MAX_EXPIRY, 1)
        .unwrap());
    assert!(!s
        .acquire_sliding_window_entry("k", 1, MAX_EXPIRY, 1)
        .unwrap());
    let w = s.get_sliding_window("k", MAX_EXPIRY).unwrap();
    assert_eq!(w.current_count, 1);
    assert!(w.current_expires_in.is_finite() && w.current_expires_in > 0.0);
}

#[test]
fn zero_and_huge_limits() {
    let (_, s) = storage();
    for limit in [0, MAX_MOVING_WINDOW_LIMIT + 1, u64::MAX] {
        invalid(s.acquire_entry("k", limit, 10, 1));
        invalid(s.get_moving_window("k", limit, 10));
    }
    for limit in [0, u64::MAX] {
        invalid(s.acquire_sliding_window_entry("k", limit, 10, 1));
    }
    // The largest moving-window limit is accepted.
    assert!(s
        .acquire_entry("k", MAX_MOVING_WINDOW_LIMIT, 10, 3)
        .unwrap());
    let w = s
        .get_moving_window("k", MAX_MOVING_WINDOW_LIMIT, 10)
        .unwrap();
    assert_eq!(w.count, 3);
}

#[test]
fn keys_past_the_maximum_length_are_refused_everywhere() {
    let (_, s) = storage();
    let longest = "k".repeat(MAX_KEY_LEN);
    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    let huge = "k".repeat(1 << 20);
    for key in [&too_long, &huge] {
        invalid(s.incr(key, 10, false, 1));
        invalid(s.get(key));
        invalid(s.get_expiry(key));
        invalid(s.clear(key));
        invalid(s.acquire_entry(key, 8, 10, 1));
        invalid(s.get_moving_window(key, 8, 10));
        invalid(s.acquire_sliding_window_entry(key, 8, 10, 1));
        invalid(s.get_sliding_window(key, 10));
        invalid(s.clear_sliding_window(key, 10));
    }
    assert_eq!(s.incr(&longest, 10, false, 2).unwrap(), 2);
    assert_eq!(s.get(&longest).unwrap(), 2);
    assert!(s.acquire_entry(&longest, 1, 10, 1).unwrap());
    assert!(s.acquire_sliding_window_entry(&longest, 1, 10, 1).unwrap());
    s.clear(&longest).unwrap();
    assert_eq!(s.get(&longest).unwrap(), 0);

    // Through a limiter the key grows by the item's parts: still an error.
    let limiter = FixedWindowRateLimiter::new(Arc::new(s));
    let item = RateLimitItem::per_minute(5).unwrap();
    invalid(limiter.hit(&item, &[&longest], 1));
}

#[test]
fn keys_with_nul_and_non_ascii_bytes_are_distinct_keys() {
    let (_, s) = storage();
    let keys = [
        "a",
        "a\0",
        "a\0b",
        "\0",
        "",
        "ü",
        "u\u{308}",
        "€/x",
        "\u{10FFFF}",
    ];
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(s.incr(key, 10, false, i as u64 + 1).unwrap(), i as u64 + 1);
        assert!(s.acquire_entry(key, 1, 10, 1).unwrap());
        assert!(s.acquire_sliding_window_entry(key, 1, 10, 1).unwrap());
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(s.get(key).unwrap(), i as u64 + 1, "{key:?}");
        assert!(!s.acquire_entry(key, 1, 10, 1).unwrap(), "{key:?}");
        assert!(!s.acquire_sliding_window_entry(key, 1, 10, 1).unwrap());
    }
    s.clear("a\0").unwrap();
    assert_eq!(s.get("a\0").unwrap(), 0);
    assert_eq!(s.get("a").unwrap(), 1);
    assert_eq!(s.get("a\0b").unwrap(), 3);
}

#[test]
fn limiters_refuse_zero_and_huge_costs() {
    let s = Arc::new(storage().1);
    let item = RateLimitItem::per_minute(5).unwrap();
    let limiters: Vec<Box<dyn RateLimiter>> = vec![
        Box::new(FixedWindowRateLimiter::new(Arc::clone(&s))),
        Box::new(MovingWindowRateLimiter::new(Arc::clone(&s)).unwrap()),
        Box::new(SlidingWindowCounterRateLimiter::new(Arc::clone(&s)).unwrap()),
    ];
    for limiter in &limiters {
        for cost in [0, MAX_AMOUNT + 1, u64::MAX] {
            invalid(limiter.hit(&item, &["id"], cost));
            invalid(limiter.test(&item, &["id"], cost));
        }
        // A valid cost above the limit is a refusal, not an error.
        assert!(!limiter.hit(&item, &["id"], MAX_AMOUNT).unwrap());
        assert!(limiter.hit(&item, &["id\0é"], 5).unwrap());
    }
}

#[test]
fn absurd_option_values_are_configuration_errors() {
    let values: Vec<OptionValue> = vec![
        OptionValue::Int(-1),
        OptionValue::Int(0),
        OptionValue::Int(i64::MIN),
        OptionValue::Int(i64::MAX),
        OptionValue::Float(f64::NAN),
        OptionValue::Float(f64::INFINITY),
        OptionValue::Float(-0.5),
        OptionValue::Float(1e300),
        OptionValue::Bool(true),
        OptionValue::Str("".into()),
        OptionValue::Str("-1".into()),
        OptionValue::Str("1e3".into()),
        OptionValue::Str("99999999999999999999999".into()),
        OptionValue::Str("12\0".into()),
        OptionValue::Str("１２".into()),
    ];
    for name in ["max_entries", "shards"] {
        for value in &values {
            let opts = Options::new().with(name, value.clone());
            configuration(storage_from_string("memory://", &opts));
        }
    }
    for query in [
        "memory://?max_entries=0",
        "memory://?max_entries=1099511627777",
        "memory://?max_entries=18446744073709551616",
        "memory://?shards=65537",
        "memory://?shards=-1",
        "memory://?shards=%00",
        "memory://?bogus=1",
        "memory://?=1",
        "memory://?max_entries=%zz",
        "memory://?max_entries=%ff",
        "memory://localhost",
        "memory:///path",
        "async+memory://",
    ] {
        configuration(storage_from_string(query, &Options::new()));
    }
    // At the bounds, the options are accepted.
    let s = storage_from_string("memory://?max_entries=1&shards=65536", &Options::new()).unwrap();
    assert_eq!(s.incr("k", 1, false, 1).unwrap(), 1);
}

#[test]
fn malformed_uris_are_configuration_errors() {
    // Parsed fine, then refused by the memory storage, which takes no host.
    let long_host = format!("memory://{}:1", "h".repeat(1 << 16));
    let many_hosts = format!("memory://{}", vec!["h:1"; 10_000].join(","));
    for uri in [
        "redis://u%+1@x",
        "redis://u%-f@x",
        "redis://x?k=%+1",
        "redis://x?k=%",
        "redis://x?k=%4",
        "redis://%c3%28@x",
        "redis://[::1]:65536",
        "redis://[::1]:+1",
        "redis://h:+6379",
        "redis://h:-1",
        "redis://[]:1",
        "redis://[",
        "redis://h\0:1,",
        "\u{feff}redis://h",
        "rédis://h",
        "redis\0://h",
    ] {
        configuration(StorageUri::parse(uri));
        configuration(storage_from_string(uri, &Options::new()));
    }
    for uri in [long_host.as_str(), many_hosts.as_str()] {
        let parsed = StorageUri::parse(uri).unwrap();
        assert!(!parsed.locations.is_empty());
        configuration(storage_from_string(uri, &Options::new()));
    }
}

#[test]
fn absurd_rate_strings_are_parse_errors() {
    for text in [
        "",
        "0/second",
        "18446744073709551616/second",
        "9007199254740992/second",
        "1/0second",
        "1/18446744073709551616seconds",
        "1/3155760001seconds",
        "1/102years",
        "1/second;",
        "1/second\0",
        "1\0/second",
        "-1/second",
        "+1/second",
        "1.5/second",
        "１/second",
    ] {
        let e = parse(text).expect_err(text);
        assert_eq!(e.kind(), ErrorKind::Parse, "{text:?}: {e}");
    }
    let item = parse(&format!("{MAX_AMOUNT} per {MAX_EXPIRY} seconds")).unwrap();
    assert_eq!(item.amount(), MAX_AMOUNT);
    assert_eq!(item.get_expiry(), MAX_EXPIRY);
}

/// A URI's password, or a secret query parameter, never appears in an
/// error message (`Display` or `Debug`), for every scheme and every way of
/// building a storage from a URI.
#[test]
fn secrets_never_reach_an_error_message() {
    const SECRET: &str = "s3cr3t";
    let schemes = [
        "memory",
        "redis",
        "rediss",
        "redis+unix",
        "valkey",
        "valkeys",
        "valkey+unix",
        "redis+cluster",
        "valkey+cluster",
        "redis+sentinel",
        "valkey+sentinel",
        "memcached",
        "mongodb",
        "mongodb+srv",
        "etcd",
        "nosuch",
    ];
    let mut uris = Vec::new();
    for scheme in schemes {
        for prefix in ["", "async+", "writebehind+"] {
            let s = format!("{prefix}{scheme}");
            uris.extend([
                format!("{s}://user:{SECRET}@127.0.0.1:bad"),
                format!("{s}://user:{SECRET}@127.0.0.1:1?colour=blue"),
                format!("{s}://user:{SECRET}@127.0.0.1:1?socket_timeout=soon"),
                format!("{s}://user:{SECRET}@127.0.0.1:1/a/b/c?db=x"),
                format!("{s}://user:{SECRET}@[::1:1"),
                format!("{s}://user:{SECRET}@127.0.0.1:1?password={SECRET}&x=%zz"),
                format!("{s}://127.0.0.1:1?password={SECRET}&colour=blue"),
                format!("{s}://u:pa/{SECRET}@h:1:2"),
                format!("{s}://:{SECRET}@h,,h"),
            ]);
        }
    }
    let leaks = |what: &str, e: &limitstore::Error| {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(SECRET), "{what}: {shown}");
    };
    for uri in &uris {
        if let Err(e) = storage_from_string(uri, &Options::new()) {
            leaks(uri, &e);
        }
        if let Err(e) = limitstore::aio::async_storage_from_string(uri, &Options::new()) {
            leaks(uri, &e);
        }
        if let Err(e) = limitstore::write_behind::sync_target_from_string(uri, &Options::new()) {
            leaks(uri, &e);
        }
        if let Err(e) = StorageUri::parse(uri) {
            leaks(uri, &e);
        }
        if let Ok(parsed) = StorageUri::parse(uri) {
            assert!(!format!("{parsed:?}").contains(SECRET), "{parsed:?}");
            assert!(!parsed.redacted().contains(SECRET), "{}", parsed.redacted());
        }
        assert!(!limitstore::storage::redact(uri).contains(SECRET), "{uri}");
    }
    // A secret passed as an option beside the URI, with a bad value type.
    let opts = Options::new().with("password", 7).with("colour", "blue");
    for scheme in schemes {
        if let Err(e) = storage_from_string(&format!("{scheme}://127.0.0.1:1"), &opts) {
            leaks(scheme, &e);
        }
    }
}

#[test]
fn a_repeated_query_parameter_or_a_second_port_is_refused() {
    for uri in [
        "memory://?max_entries=10&max_entries=20",
        "writebehind+memory://?sync_interval=1&sync_interval=2",
        "redis://localhost:6379?db=1&db=1",
        "redis://localhost:6379:6379",
    ] {
        configuration(storage_from_string(uri, &Options::new()));
    }
    configuration(limitstore::write_behind::sync_target_from_string(
        "memory://?latency=1&latency=2",
        &Options::new(),
    ));
    // MongoDB gives repeated keys a meaning.
    let uri =
        StorageUri::parse("mongodb://h/?readPreferenceTags=a:1&readPreferenceTags=b:2").unwrap();
    assert!(uri.check_unique_query().is_ok());
}
