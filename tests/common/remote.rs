//! Checks for write-behind remotes ([`SyncTarget`]s), the same for each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use limitstore::write_behind::{Report, SyncTarget, WriteBehind};
use limitstore::Storage;

/// A window long enough that a test never crosses its end.
const EXPIRY: u64 = 24 * 3600;

fn window_now() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now / EXPIRY
}

/// The global total of `key` in `window`, read with a zero report.
pub fn total(remote: &dyn SyncTarget, key: &str, window: u64) -> u64 {
    let read = Report {
        key,
        window,
        expiry: EXPIRY,
        node: "reader",
        total: 0,
    };
    remote.sync(&[read]).unwrap()[0]
}

/// One batch over many keys (on a Cluster: many hash slots) answers each
/// report with its own key's total, and sending it again changes nothing.
pub fn batches_answer_per_key_and_repeat_harmlessly(remote: &dyn SyncTarget, tag: &str) {
    let keys: Vec<String> = (0..40).map(|i| format!("{tag}-batch-{i}")).collect();
    let window = window_now();
    let reports = |node: &'static str, base: u64| -> Vec<Report<'_>> {
        keys.iter()
            .enumerate()
            .map(|(i, key)| Report {
                key,
                window,
                expiry: EXPIRY,
                node,
                total: base + i as u64,
            })
            .collect()
    };
    let first = remote.sync(&reports("a", 1)).unwrap();
    assert_eq!(first, (1..=40).collect::<Vec<u64>>());
    // Again: idempotent.
    assert_eq!(remote.sync(&reports("a", 1)).unwrap(), first);
    // A second node adds its own slot.
    let both = remote.sync(&reports("b", 10)).unwrap();
    let want: Vec<u64> = (0..40).map(|i| (1 + i) + (10 + i)).collect();
    assert_eq!(both, want);
    remote.clear(&keys[0]).unwrap();
    assert_eq!(total(remote, &keys[0], window), 0);
    assert_eq!(total(remote, &keys[1], window), 2 + 11);
}

/// Several write-behind nodes, each hit by its own threads on many keys,
/// syncing every few milliseconds: once every node is dropped (which
/// flushes), the remote holds exactly the hits the nodes accepted.
pub fn several_writers_total_exactly(remote: Arc<dyn SyncTarget>, tag: &str) {
    let keys: Vec<String> = (0..16).map(|i| format!("{tag}-key-{i}")).collect();
    let window_before = window_now();
    let nodes: Vec<_> = (0..3)
        .map(|n| {
            WriteBehind::builder(Arc::clone(&remote))
                .node_id(format!("{tag}-node-{n}"))
                .sync_interval(Duration::from_millis(5))
                .start()
                .unwrap()
        })
        .collect();
    let accepted: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let (node, keys) = (&nodes[t % 3], &keys);
                s.spawn(move || {
                    let mut accepted = 0;
                    for i in 0..300 {
                        let key = &keys[(i * 7 + t) % keys.len()];
                        if node.incr(key, EXPIRY, false, 1).unwrap() <= u64::MAX / 2 {
                            accepted += 1;
                        }
                    }
                    accepted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(accepted, 6 * 300);
    drop(nodes);
    assert_eq!(total_since(&*remote, &keys, window_before), accepted);
}

/// The global totals of `keys` summed over `window_before` and, if the
/// clock has moved on to the next window since, that one too.
fn total_since(remote: &dyn SyncTarget, keys: &[String], window_before: u64) -> u64 {
    let mut windows = vec![window_before];
    if window_now() != window_before {
        windows.push(window_now());
    }
    keys.iter()
        .flat_map(|k| windows.iter().map(move |&w| (k, w)))
        .map(|(k, w)| total(remote, k, w))
        .sum()
}

/// `writebehind+…` URIs at `sync_interval=0`: two write-through nodes see
/// each other's hits, and an option neither the node nor the remote knows is
/// a configuration error. `uri(node_id)` is a node's URI (query included);
/// `bad` is one with an unknown option.
pub fn write_through_nodes_share_hits(uri: impl Fn(&str) -> String, bad: &str) {
    use limitstore::{storage_from_string, Options};
    let node = |id: &str| storage_from_string(&uri(id), &Options::new()).unwrap();
    let (a, b) = (node("a"), node("b"));
    assert_eq!(a.incr("wb", 60, false, 2).unwrap(), 2);
    assert_eq!(b.incr("wb", 60, false, 3).unwrap(), 5);
    assert_eq!(a.incr("wb", 60, false, 1).unwrap(), 6);
    let e = storage_from_string(bad, &Options::new()).unwrap_err();
    assert!(e.is_configuration(), "{e}");
}

/// Budget split on `remote`: a remote that [shares budgets](SyncTarget::shares_budgets)
/// answers a seeded sequence of share reports from three nodes that keep to
/// their claims exactly as the embedded remote does (the rule applied in
/// one step with the report), and the claims of a window never sum past its
/// limit; one that does not share budgets refuses both `sync_shares` and a
/// budget-split node, with a configuration error.
pub fn budget_shares(remote: Arc<dyn SyncTarget>, tag: &str) {
    use limitstore::write_behind::{Budget, MemoryRemote};
    if !remote.shares_budgets() {
        let report = Report {
            key: tag,
            window: window_now(),
            expiry: EXPIRY,
            node: "a",
            total: 1,
        };
        let budget = Budget {
            limit: 10,
            ..Budget::default()
        };
        let err = remote.sync_shares(&[report], &[budget]).unwrap_err();
        assert!(err.is_configuration(), "{err}");
        let err = WriteBehind::builder(remote)
            .budget_split(true)
            .start()
            .unwrap_err();
        assert!(err.is_configuration(), "{err}");
        return;
    }
    let reference = MemoryRemote::new();
    let window = window_now();
    let keys: Vec<String> = (0..3).map(|i| format!("{tag}-share-{i}")).collect();
    let nodes = ["a", "b", "c"];
    let limit = 50;
    // Per key and node: (used, claim) as the node knows them.
    let mut state = vec![[(0u64, 0u64); 3]; keys.len()];
    let mut seed: u64 = 0x5eed_2026;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..150 {
        let k = next(keys.len() as u64) as usize;
        let n = next(3) as usize;
        let (used, claim) = state[k][n];
        // A node that keeps to its claim uses some of what it holds.
        let total = used + next(claim.saturating_sub(used) + 1);
        let budget = Budget {
            limit,
            want: next(4),
            demand: next(3) * 5,
            nodes: next(4),
        };
        let report = Report {
            key: &keys[k],
            window,
            expiry: EXPIRY,
            node: nodes[n],
            total,
        };
        let got = remote.sync_shares(&[report], &[budget]).unwrap();
        let want = reference.sync_shares(&[report], &[budget]).unwrap();
        assert_eq!(got, want, "{report:?} {budget:?}");
        state[k][n] = (total, got[0].allowed);
        let claimed: u64 = state[k].iter().map(|&(u, c)| u.max(c)).sum();
        assert!(claimed <= limit, "claims {:?} of {limit}", state[k]);
        // A plain sync counts the nodes' totals only, not their claims.
        let used: u64 = state[k].iter().map(|&(u, _)| u).sum();
        assert_eq!(self::total(&*remote, &keys[k], window), used);
    }
    for key in &keys {
        remote.clear(key).unwrap();
    }
}

/// A remote that lost its data is made whole by a node over it: the
/// remote keeps an [incarnation marker](SyncTarget::incarnation) (created
/// once, then answered as stored); a node delivers hits on 300 keys, then
/// `forget` makes the remote lose them (a restart without persistence, or
/// a wipe through another client); the node's next pass sees the marker
/// changed and re-sends every window, so each key's remote total is back
/// without another hit, and a pass over the intact remote sends nothing
/// again.
pub fn a_remote_that_forgot_is_made_whole(
    remote: Arc<dyn SyncTarget>,
    tag: &str,
    forget: &mut dyn FnMut(),
) {
    let marker = remote.incarnation("first").unwrap();
    let marker = marker.expect("every backend's remote keeps a marker");
    assert_eq!(remote.incarnation("second").unwrap(), Some(marker));

    let node = WriteBehind::builder(Arc::clone(&remote))
        .node_id(format!("{tag}-node"))
        .sync_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("{tag}-forgot-{i}")).collect();
    let accepted = |i: usize| 1 + i as u64 % 5;
    for (i, key) in keys.iter().enumerate() {
        node.incr(key, EXPIRY, false, accepted(i)).unwrap();
    }
    flush_until_delivered(&node);
    let window = window_now();
    let totals = || -> Vec<u64> { keys.iter().map(|k| total(&*remote, k, window)).collect() };
    let expected: Vec<u64> = (0..keys.len()).map(accepted).collect();
    assert_eq!(totals(), expected);
    assert_eq!(node.stats().remote_data_losses, 0);

    forget();
    let forgotten = totals().iter().filter(|&&t| t == 0).count();
    assert!(forgotten > 0, "the remote forgot");
    flush_until_delivered(&node);
    assert_eq!(
        totals(),
        expected,
        "every key is whole again, none hit again"
    );
    assert_eq!(node.stats().remote_data_losses, 1, "{:?}", node.stats());
    // An intact remote: nothing to notice.
    flush_until_delivered(&node);
    assert_eq!(node.stats().remote_data_losses, 1);
    assert_eq!(totals(), expected);
}

/// A node over a remote that stops answering (`stall`: its server
/// stopped with `SIGSTOP`) keeps answering hits from memory while its
/// syncer waits on the remote: for 1.5 s, 200 keys are hit again and
/// again, each hit within 250 ms (the remote's calls wait far longer), and
/// the node's stats stay readable. Once `resume` lets the server go on,
/// the remote holds exactly the hits the node accepted, before and during
/// the stall.
pub fn a_stalled_remote_holds_up_no_hit_and_loses_none(
    remote: Arc<dyn SyncTarget>,
    tag: &str,
    stall: &mut dyn FnMut(),
    resume: &mut dyn FnMut(),
) {
    let node = WriteBehind::builder(Arc::clone(&remote))
        .node_id(format!("{tag}-stall-node"))
        .sync_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("{tag}-stall-{i}")).collect();
    let window_before = window_now();
    for key in &keys {
        node.incr(key, EXPIRY, false, 1).unwrap();
    }
    flush_until_delivered(&node);

    stall();
    let (started, mut slowest, mut during) = (Instant::now(), Duration::ZERO, 0);
    while started.elapsed() < Duration::from_millis(1500) {
        for key in &keys {
            let hit = Instant::now();
            node.incr(key, EXPIRY, false, 1).unwrap();
            slowest = slowest.max(hit.elapsed());
            during += 1;
        }
        let _ = node.stats();
        std::thread::sleep(Duration::from_millis(10));
    }
    let pending = node.stats().pending_keys;
    resume();
    assert!(
        slowest < Duration::from_millis(250),
        "slowest hit {slowest:?}"
    );
    assert!(pending > 0, "the stalled remote held the hits back");

    flush_until_delivered(&node);
    let delivered = total_since(&*remote, &keys, window_before);
    assert_eq!(delivered, keys.len() as u64 + during);
}

/// `flush` until a pass succeeds (a restarted server's first call may find
/// its old connection broken, a server let go on after a stop may still
/// be answering what queued up meanwhile); bounded at 20 s.
fn flush_until_delivered(node: &WriteBehind) {
    let (started, mut last) = (Instant::now(), None);
    while started.elapsed() < Duration::from_secs(20) {
        match node.flush() {
            Ok(()) if node.stats().pending_keys == 0 => return,
            Ok(()) => last = None,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no pass delivered everything in 20 s: {last:?}");
}
