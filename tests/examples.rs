//! The usage examples of `examples/` run as tests, on the storages they
//! are written for (a real Redis started here for the Redis ones).
#![cfg(feature = "redis")]

#[macro_use]
mod servers;

#[allow(dead_code)]
#[path = "../examples/memory.rs"]
mod memory_example;
#[allow(dead_code)]
#[path = "../examples/redis.rs"]
mod redis_example;
#[allow(dead_code)]
#[path = "../examples/write_behind.rs"]
mod write_behind_example;

use servers::{Config, Server};

#[test]
fn memory_example_admits_the_tighter_limit() {
    assert_eq!(memory_example::run("memory://").unwrap(), 5);
}

#[test]
fn write_behind_example_delivers_every_hit() {
    assert_eq!(write_behind_example::run("memory://").unwrap(), (60, 60));
}

#[test]
fn redis_examples_share_one_quota_and_leave_nothing_behind() {
    require_or_skip!("redis-server");
    let server = Server::redis(Config::default());
    let (a, b) = redis_example::run(&server.url()).unwrap();
    assert_eq!(a + b, 10, "{a} + {b}");
    assert_eq!(memory_example::run(&server.url()).unwrap(), 5);
    assert_eq!(write_behind_example::run(&server.url()).unwrap(), (60, 60));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*limitstore-example*")
        .query(&mut server.connection())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}
