//! Rate-limit strings, items and keys, after `limits`' parser and item tests.

use std::collections::HashSet;

use limitstore::storage::{MAX_AMOUNT, MAX_EXPIRY};
use limitstore::{parse, parse_many, ErrorKind, Granularity, RateLimitItem};

fn rate(amount: u64, multiples: u64, g: Granularity) -> RateLimitItem {
    RateLimitItem::new(amount, multiples, g).unwrap()
}

#[test]
fn single_items() {
    let cases: &[(&str, u64, u64, Granularity)] = &[
        ("10/minute", 10, 1, Granularity::MINUTE),
        ("1/second", 1, 1, Granularity::SECOND),
        ("1/2 seconds", 1, 2, Granularity::SECOND),
        ("10 per minute", 10, 1, Granularity::MINUTE),
        ("10 PER MINUTE", 10, 1, Granularity::MINUTE),
        ("10 Per Minutes", 10, 1, Granularity::MINUTE),
        ("5/hour", 5, 1, Granularity::HOUR),
        ("3 per 2 hours", 3, 2, Granularity::HOUR),
        ("500/7days", 500, 7, Granularity::DAY),
        ("1/month", 1, 1, Granularity::MONTH),
        ("12 per 3 months", 12, 3, Granularity::MONTH),
        ("1000/year", 1000, 1, Granularity::YEAR),
        ("  7 / 3 seconds  ", 7, 3, Granularity::SECOND),
        ("7/3seconds", 7, 3, Granularity::SECOND),
        ("007/01 second", 7, 1, Granularity::SECOND),
    ];
    for &(s, amount, multiples, g) in cases {
        let item = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(item.amount(), amount, "{s}");
        assert_eq!(item.multiples(), multiples, "{s}");
        assert_eq!(item.granularity(), g, "{s}");
        assert_eq!(item.namespace(), "LIMITER", "{s}");
        assert_eq!(s.parse::<RateLimitItem>().unwrap(), item, "{s}");
    }
}

#[test]
fn expiries() {
    assert_eq!(parse("1/second").unwrap().get_expiry(), 1);
    assert_eq!(parse("1/2 seconds").unwrap().get_expiry(), 2);
    assert_eq!(parse("10/minute").unwrap().get_expiry(), 60);
    assert_eq!(parse("3 per 2 hours").unwrap().get_expiry(), 7_200);
    assert_eq!(parse("1/day").unwrap().get_expiry(), 86_400);
    assert_eq!(parse("500/7days").unwrap().get_expiry(), 604_800);
    assert_eq!(parse("1/month").unwrap().get_expiry(), 2_592_000);
    assert_eq!(parse("1/year").unwrap().get_expiry(), 31_104_000);
}

#[test]
fn many_items() {
    assert_eq!(
        parse_many("100 per hour;1000 per day").unwrap(),
        vec![
            rate(100, 1, Granularity::HOUR),
            rate(1000, 1, Granularity::DAY)
        ]
    );
    let items = parse_many("100/day, 500/7days").unwrap();
    assert_eq!(
        items,
        vec![
            rate(100, 1, Granularity::DAY),
            rate(500, 7, Granularity::DAY)
        ]
    );
    assert_eq!(items[1].get_expiry(), 604_800);
    assert_eq!(
        parse_many("5 per 3 hours | 2/second").unwrap(),
        vec![
            rate(5, 3, Granularity::HOUR),
            rate(2, 1, Granularity::SECOND)
        ]
    );
    assert_eq!(
        parse_many("1/second,2/minute;3/hour|4/day").unwrap(),
        vec![
            rate(1, 1, Granularity::SECOND),
            rate(2, 1, Granularity::MINUTE),
            rate(3, 1, Granularity::HOUR),
            rate(4, 1, Granularity::DAY),
        ]
    );
    assert_eq!(parse_many("10/minute").unwrap().len(), 1);
}

#[test]
fn parse_returns_the_first_of_many() {
    assert_eq!(
        parse("100 per hour;1000 per day").unwrap(),
        rate(100, 1, Granularity::HOUR)
    );
    // The rest must still be valid.
    assert_eq!(
        parse("100 per hour;1000 per fortnight").unwrap_err().kind(),
        ErrorKind::Parse
    );
}

#[test]
fn errors_are_parse_errors() {
    let too_big = format!("{}/second", u128::from(u64::MAX) + 1);
    let huge_amount = format!("{}/second", MAX_AMOUNT + 1);
    let long_window = format!("1/{} seconds", MAX_EXPIRY + 1);
    let overflowing_window = format!("1/{} years", u64::MAX);
    let bad: Vec<&str> = vec![
        "10/fortnight",
        "",
        "   ",
        "abc",
        "10/",
        "/minute",
        "0/minute",
        "10 minute",
        "10//minute",
        "10 pr minute",
        "10/minute,",
        ",10/minute",
        "10/minute;;1/second",
        "10/minute 5/second",
        "1/second:;2/minute",
        "10/0 seconds",
        "-1/minute",
        "1.5/minute",
        "10/minute!",
        "ten/minute",
        "10 per",
        "10 per 5",
        &too_big,
        &huge_amount,
        &long_window,
        &overflowing_window,
        "99999999999999999999999999/minute",
        "1/99999999999999999999999999 minutes",
    ];
    for s in bad {
        match parse_many(s) {
            Ok(items) => panic!("`{s}` parsed as {items:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Parse, "`{s}`: {e}"),
        }
        assert_eq!(parse(s).unwrap_err().kind(), ErrorKind::Parse, "`{s}`");
    }
}

#[test]
fn error_messages_name_the_problem() {
    let e = parse("10/fortnight").unwrap_err();
    assert!(e.message().contains("no granularity matched"), "{e}");
    assert!(e.message().contains("fortnight"), "{e}");
    let e = parse("abc").unwrap_err();
    assert!(e.message().contains("couldn't parse"), "{e}");
}

#[test]
fn largest_values_parse() {
    let item = parse(&format!("{MAX_AMOUNT}/second")).unwrap();
    assert_eq!(item.amount(), MAX_AMOUNT);
    let item = parse(&format!("1/{MAX_EXPIRY} seconds")).unwrap();
    assert_eq!(item.get_expiry(), MAX_EXPIRY);
}

#[test]
fn key_layout() {
    let item = parse("10/minute").unwrap();
    assert_eq!(
        item.key_for(&["user1", "GET /x"]),
        "LIMITER/user1/GET /x/10/1/minute"
    );
    assert_eq!(item.key_for(&[]), "LIMITER/10/1/minute");
    assert_eq!(
        parse("500/7days").unwrap().key_for(&["k"]),
        "LIMITER/k/500/7/day"
    );
    let ns = parse("3 per 2 hours").unwrap().with_namespace("api");
    assert_eq!(ns.key_for(&["a", "b", "c"]), "api/a/b/c/3/2/hour");
    assert_eq!(ns.namespace(), "api");
    let owned = RateLimitItem::per_second(1)
        .unwrap()
        .with_namespace(String::from("tenant-7"));
    assert_eq!(owned.key_for(&["x"]), "tenant-7/x/1/1/second");
}

#[test]
fn write_key_matches_key_for_and_reuses_the_buffer() {
    let item = parse("100/day").unwrap();
    let mut buf = String::with_capacity(64);
    for ids in [&["a"][..], &["bb", "cc"][..], &[][..]] {
        buf.clear();
        item.write_key(ids, &mut buf);
        assert_eq!(buf, item.key_for(ids));
    }
    let capacity = buf.capacity();
    buf.clear();
    item.write_key(&["a"], &mut buf);
    assert_eq!(buf.capacity(), capacity);
}

#[test]
fn display_is_limits_repr() {
    assert_eq!(parse("10/minute").unwrap().to_string(), "10 per 1 minute");
    assert_eq!(parse("1/2 seconds").unwrap().to_string(), "1 per 2 second");
    assert_eq!(parse("500/7days").unwrap().to_string(), "500 per 7 day");
    assert_eq!(Granularity::HOUR.to_string(), "hour");
}

#[test]
fn equality_ignores_the_namespace_and_hash_agrees() {
    let a = parse("10/minute").unwrap();
    let b = parse("10 per 1 minutes").unwrap().with_namespace("other");
    assert_eq!(a, b);
    assert_ne!(a, parse("10/hour").unwrap());
    assert_ne!(a, parse("11/minute").unwrap());
    assert_ne!(a, parse("10/2 minutes").unwrap());
    // Same window length, different unit: different limits, as in `limits`.
    assert_ne!(parse("1/60 seconds").unwrap(), parse("1/minute").unwrap());
    let set: HashSet<RateLimitItem> = [a.clone(), b].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert!(set.contains(&a));
}

#[test]
fn constructors() {
    assert_eq!(
        RateLimitItem::per_second(5).unwrap(),
        parse("5/second").unwrap()
    );
    assert_eq!(
        RateLimitItem::per_minute(5).unwrap(),
        parse("5/minute").unwrap()
    );
    assert_eq!(
        RateLimitItem::per_hour(5).unwrap(),
        parse("5/hour").unwrap()
    );
    assert_eq!(RateLimitItem::per_day(5).unwrap(), parse("5/day").unwrap());
    assert_eq!(
        RateLimitItem::per_month(5).unwrap(),
        parse("5/month").unwrap()
    );
    assert_eq!(
        RateLimitItem::per_year(5).unwrap(),
        parse("5/year").unwrap()
    );
    for e in [
        RateLimitItem::per_minute(0).unwrap_err(),
        RateLimitItem::per_minute(MAX_AMOUNT + 1).unwrap_err(),
        RateLimitItem::new(1, 0, Granularity::DAY).unwrap_err(),
        RateLimitItem::new(1, MAX_EXPIRY, Granularity::MINUTE).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
}

#[test]
fn granularity_lookup() {
    for g in Granularity::ALL {
        assert_eq!(Granularity::from_name(g.name()), Some(g));
        assert_eq!(Granularity::from_name(&format!("{}s", g.name())), Some(g));
        assert_eq!(Granularity::from_name(&g.name().to_uppercase()), Some(g));
    }
    assert_eq!(Granularity::from_name("fortnight"), None);
    assert_eq!(Granularity::from_name("minutess"), None);
    assert_eq!(Granularity::from_name(""), None);
    assert_eq!(Granularity::SECOND.seconds(), 1);
    assert_eq!(Granularity::MINUTE.seconds(), 60);
    assert_eq!(Granularity::HOUR.seconds(), 3_600);
    assert_eq!(Granularity::DAY.seconds(), 86_400);
    assert_eq!(Granularity::MONTH.seconds(), 30 * 86_400);
    assert_eq!(Granularity::YEAR.seconds(), 360 * 86_400);
}
