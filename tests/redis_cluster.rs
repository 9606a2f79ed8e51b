//! The Redis Cluster storage against a real three-primary Cluster started
//! here, plus the shared behavioural suite.
#![cfg(feature = "redis")]

#[macro_use]
mod common;
#[macro_use]
mod servers;

use common::Subject;
use limitstore::{storage_from_string, Options, RedisClusterStorage, Storage};
use servers::Cluster;

fn subject() -> Subject {
    let cluster = Cluster::start();
    let storage = storage_from_string(&cluster.url(), &Options::new()).unwrap();
    Subject {
        storage,
        advance: Box::new(move |d| {
            let _alive = &cluster;
            std::thread::sleep(d)
        }),
        slack: 0.5,
        lacks: &[],
    }
}

mod suite {
    use super::*;
    storage_suite!({
        require_or_skip!("redis-server");
        subject
    });
}

fn keys_on(node: &servers::Server, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut node.connection())
        .unwrap()
}

#[test]
fn keys_spread_over_every_primary_and_reset_clears_them_all() {
    require_or_skip!("redis-server");
    let cluster = Cluster::start();
    let st = RedisClusterStorage::new(&format!("{}?key_prefix=app", cluster.url())).unwrap();
    let other = RedisClusterStorage::new(&cluster.url()).unwrap();
    assert_eq!(st.primaries().unwrap().len(), 3);
    assert!(st.check());
    let mw = st.moving_window().unwrap();
    let sw = st.sliding_window().unwrap();
    for i in 0..100 {
        let key = format!("LIMITER/user/{i}/10/1/minute");
        assert_eq!(st.incr(&key, 60, false, 2).unwrap(), 2);
        assert!(mw.acquire_entry(&format!("mw{i}"), 5, 60, 1).unwrap());
        assert!(sw
            .acquire_sliding_window_entry(&format!("sw{i}"), 5, 60, 1)
            .unwrap());
    }
    other.incr("keep", 60, false, 1).unwrap();
    // Both sliding buckets of a key share a slot, so the roll-over can
    // RENAME one into the other.
    assert_eq!(sw.get_sliding_window("sw7", 60).unwrap().current_count, 1);
    let per_node: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| keys_on(n, "app:*").len())
        .collect();
    assert_eq!(per_node.iter().sum::<usize>(), 300);
    assert!(per_node.iter().all(|&n| n > 50), "{per_node:?}");
    assert_eq!(st.reset().unwrap(), Some(300));
    for node in &cluster.nodes {
        assert!(keys_on(node, "app:*").is_empty());
    }
    assert_eq!(st.get("LIMITER/user/1/10/1/minute").unwrap(), 0);
    assert_eq!(other.get("keep").unwrap(), 1);
}

#[test]
fn a_stopped_cluster_gives_storage_errors() {
    require_or_skip!("redis-server");
    let mut cluster = Cluster::start();
    let st = storage_from_string(
        &format!(
            "{}?socket_timeout=1&socket_connect_timeout=1",
            cluster.url()
        ),
        &Options::new(),
    )
    .unwrap();
    assert_eq!(st.incr("k", 60, false, 1).unwrap(), 1);
    for node in &mut cluster.nodes {
        node.kill();
    }
    let started = std::time::Instant::now();
    let e = st.incr("k", 60, false, 1).unwrap_err();
    assert!(e.is_storage(), "{e}");
    assert!(!st.check());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// The Cluster as a write-behind remote: one script per hash slot.
mod write_behind_remote {
    use super::*;

    #[test]
    fn batches_span_slots_and_several_writers_total_exactly() {
        require_or_skip!("redis-server");
        let cluster = Cluster::start();
        let remote = std::sync::Arc::new(RedisClusterStorage::new(&cluster.url()).unwrap());
        common::remote::batches_answer_per_key_and_repeat_harmlessly(&*remote, "cl");
        common::remote::several_writers_total_exactly(remote.clone(), "cl");
        common::remote::budget_shares(remote.clone(), "cl");
        // The slots live on more than one primary.
        let holding = cluster
            .nodes
            .iter()
            .filter(|n| !keys_on(n, "LIMITS:wb:*").is_empty())
            .count();
        assert!(holding >= 2, "write-behind slots on {holding} primaries");
    }

    #[test]
    fn writebehind_cluster_uri() {
        require_or_skip!("redis-server");
        let cluster = Cluster::start();
        let uri = cluster.url().replacen("redis+", "writebehind+redis+", 1);
        common::remote::write_through_nodes_share_hits(
            |id| format!("{uri}?sync_interval=0&node_id={id}"),
            &format!("{uri}?colour=blue"),
        );
    }
}
