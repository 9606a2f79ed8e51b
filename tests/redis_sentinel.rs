//! The Redis Sentinel storage against a real primary, replica and Sentinel
//! started here: the shared behavioural suite, and a failover during which
//! hits go on once the Sentinel has promoted the replica.
#![cfg(feature = "redis")]

#[macro_use]
mod common;
#[macro_use]
mod servers;

use std::time::{Duration, Instant};

use common::Subject;
use limitstore::{storage_from_string, Options, RedisSentinelStorage, Storage};
use servers::{wait_until, Config, Server};

const SERVICE: &str = "mymaster";

fn subject() -> Subject {
    let master = Server::redis(Config::default());
    let sentinel = Server::sentinel(SERVICE, master.port, 5000);
    let storage = storage_from_string(
        &format!("redis+sentinel://127.0.0.1:{}/{SERVICE}", sentinel.port),
        &Options::new(),
    )
    .unwrap();
    let servers = (master, sentinel);
    Subject {
        storage,
        advance: Box::new(move |d| {
            let _alive = &servers;
            std::thread::sleep(d)
        }),
        slack: 0.5,
        lacks: &[],
    }
}

mod suite {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server", "redis-sentinel");
        subject
    });
}

fn sentinel_master_port(sentinel: &Server) -> Option<u16> {
    let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(SERVICE)
        .query(&mut sentinel.connection())
        .ok()?;
    addr.map(|(_, port)| port)
}

#[test]
fn service_name_from_path_or_option() {
    require_or_skip!("redis-server", "redis-sentinel");
    let master = Server::redis(Config::default());
    let sentinel = Server::sentinel(SERVICE, master.port, 5000);
    let from_path = RedisSentinelStorage::new(&format!(
        "valkey+sentinel://127.0.0.1:{}/{SERVICE}",
        sentinel.port
    ))
    .unwrap();
    assert_eq!(from_path.service_name(), SERVICE);
    let from_option = storage_from_string(
        &format!("redis+sentinel://127.0.0.1:{}", sentinel.port),
        &Options::new().with("service_name", SERVICE),
    )
    .unwrap();
    assert_eq!(from_path.incr("k", 60, false, 1).unwrap(), 1);
    assert_eq!(from_option.incr("k", 60, false, 1).unwrap(), 2);
    let unknown = RedisSentinelStorage::new(&format!(
        "redis+sentinel://127.0.0.1:{}/nosuchservice",
        sentinel.port
    ))
    .unwrap();
    assert!(unknown.incr("k", 60, false, 1).unwrap_err().is_storage());
    assert!(!unknown.check());
}

#[test]
fn hits_continue_after_a_failover() {
    require_or_skip!("redis-server", "redis-sentinel");
    let mut master = Server::redis(Config::default());
    let replica = Server::redis(Config {
        args: vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ],
        ..Config::default()
    });
    let sentinel = Server::sentinel(SERVICE, master.port, 1000);
    wait_until("the replica to sync", Duration::from_secs(15), || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut replica.connection())
            .unwrap();
        info.contains("master_link_status:up")
    });
    wait_until(
        "the sentinel to know the replica",
        Duration::from_secs(20),
        || {
            let replicas: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
                .arg("REPLICAS")
                .arg(SERVICE)
                .query(&mut sentinel.connection())
                .unwrap();
            replicas
                .iter()
                .any(|r| r.get("flags").is_some_and(|f| f == "slave"))
        },
    );
    let st = storage_from_string(
        &format!(
            "redis+sentinel://127.0.0.1:{}/{SERVICE}?socket_timeout=1&socket_connect_timeout=1",
            sentinel.port
        ),
        &Options::new(),
    )
    .unwrap();
    for i in 1..=10 {
        assert_eq!(st.incr("k", 300, false, 1).unwrap(), i);
    }
    // The replica has the 10 hits before the primary dies.
    wait_until(
        "the replica to have the hits",
        Duration::from_secs(5),
        || {
            let on_replica: Option<u64> = redis::cmd("GET")
                .arg("LIMITS:k")
                .query(&mut replica.connection())
                .unwrap();
            on_replica == Some(10)
        },
    );

    master.kill();
    let killed = Instant::now();
    let mut failures = 0;
    let first = loop {
        match st.incr("k", 300, false, 1) {
            Ok(n) => break n,
            Err(e) => {
                assert!(e.is_storage(), "{e}");
                failures += 1;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no hit succeeded within 30 s of the failover ({failures} failures)"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let switched_after = killed.elapsed();
    assert_eq!(first, 11, "the promoted replica kept the counter");
    assert_eq!(sentinel_master_port(&sentinel), Some(replica.port));
    // After the switch every hit succeeds.
    for i in 12..=40 {
        assert_eq!(st.incr("k", 300, false, 1).unwrap(), i);
    }
    assert!(st
        .moving_window()
        .unwrap()
        .acquire_entry("m", 5, 60, 1)
        .unwrap());
    assert!(st.check());
    eprintln!("failover: first successful hit {switched_after:?} after the kill, {failures} failed calls before");
}

/// The Sentinel's primary as a write-behind remote.
#[test]
fn write_behind_remote_totals_exactly() {
    require_or_skip!("redis-server", "redis-sentinel");
    let master = Server::redis(Config::default());
    let sentinel = Server::sentinel(SERVICE, master.port, 5000);
    let uri = format!("redis+sentinel://127.0.0.1:{}/{SERVICE}", sentinel.port);
    let remote = std::sync::Arc::new(RedisSentinelStorage::new(&uri).unwrap());
    common::remote::batches_answer_per_key_and_repeat_harmlessly(&*remote, "se");
    common::remote::several_writers_total_exactly(remote.clone(), "se");
    common::remote::budget_shares(remote, "se");
    common::remote::write_through_nodes_share_hits(
        |id| format!("writebehind+{uri}?sync_interval=0&node_id={id}"),
        &format!("writebehind+{uri}?colour=blue"),
    );
}
