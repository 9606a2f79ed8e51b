//! The write-behind storage over the embedded remote: the shared suite in
//! write-through mode, and what write-behind promises on its own (rebasing,
//! convergence, exactly-once delivery across failures, lifecycle, policies).

#[macro_use]
mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::Subject;
use limitstore::write_behind::{
    FailurePolicy, MemoryRemote, Report, SyncTarget, WriteBehind, WriteBehindHandle,
};
use limitstore::{
    Clock, ErrorKind, FakeClock, FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimitItem,
    RateLimiter, SlidingWindowCounterRateLimiter, SlidingWindowCounterSupport, Storage,
};

const HOUR: Duration = Duration::from_secs(3600);

/// The window index of the fake clock's start for windows of `expiry` seconds.
fn window0(expiry: u64) -> u64 {
    FakeClock::DEFAULT_UNIX_ORIGIN as u64 / expiry
}

fn node(
    remote: &Arc<MemoryRemote>,
    id: &str,
    clock: &FakeClock,
    interval: Duration,
) -> WriteBehindHandle {
    WriteBehind::builder(remote.clone())
        .node_id(id)
        .clock(clock.clone())
        .sync_interval(interval)
        .start()
        .unwrap()
}

fn write_through_subject() -> Subject {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let storage = node(&remote, "suite", &clock, Duration::ZERO);
    Subject {
        storage: Arc::new(storage),
        advance: Box::new(move |d| clock.advance(d)),
        slack: 0.0,
        lacks: &[],
    }
}

/// The shared suite, in write-through mode: no moving windows, and elastic
/// expiry refused (the suite asserts both refusals).
mod suite {
    use super::*;
    storage_suite!(write_through_subject; lacks: [MovingWindow, ElasticExpiry]; skip: []);
}

fn write_behind_subject() -> Subject {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let storage = node(&remote, "suite", &clock, HOUR);
    Subject {
        storage: Arc::new(storage),
        advance: Box::new(move |d| clock.advance(d)),
        slack: 0.0,
        lacks: &[],
    }
}

/// The shared suite on one node in write-behind mode (nothing synced while
/// it runs): a lone node answers like a local store.
mod suite_write_behind {
    use super::*;
    storage_suite!(write_behind_subject; lacks: [MovingWindow, ElasticExpiry]; skip: []);
}

#[test]
fn elastic_expiry_is_refused_and_moving_windows_are_unsupported() {
    let s = write_through_subject();
    let e = s.storage.incr("k", 10, true, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.storage.get("k").unwrap(), 0);
    assert!(s.storage.moving_window().is_none());
    let e = MovingWindowRateLimiter::new(s.storage.clone()).unwrap_err();
    assert!(e.is_configuration(), "{e}");
    // The elastic strategy is refused when it is built, not on every hit.
    assert!(!s.storage.elastic_expiry());
    let Err(e) = limitstore::FixedWindowElasticExpiryRateLimiter::new(s.storage.clone()) else {
        panic!("refused at construction")
    };
    assert!(e.is_configuration(), "{e}");
}

#[test]
fn counts_rebase_on_the_global_value() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let w = window0(60);
    // Another node already reported 10 hits in this window.
    let other = Report {
        key: "k",
        window: w,
        expiry: 60,
        node: "b",
        total: 10,
    };
    remote.sync(&[other]).unwrap();
    let a = node(&remote, "a", &clock, HOUR);
    assert_eq!(a.incr("k", 60, false, 1).unwrap(), 1);
    a.flush().unwrap();
    assert_eq!(a.get("k").unwrap(), 11);
    assert_eq!(a.incr("k", 60, false, 2).unwrap(), 13);
    remote.sync(&[Report { total: 15, ..other }]).unwrap();
    a.flush().unwrap();
    assert_eq!(a.get("k").unwrap(), 18);
    assert_eq!(remote.total("k", w), 18);
    assert_eq!(remote.slot("k", w, "a"), 3);
}

/// A limiter hands the node its key as parts, which a hit on a window the
/// node already counts only hashes; a caller holding the key string counts
/// in the same window, and the remote gets one slot under the string, at
/// key lengths on both sides of the parts' 128-byte stack buffer.
#[test]
fn a_limiter_and_its_key_string_count_in_the_same_window() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = Arc::new(node(&remote, "a", &clock, HOUR));
    let limiter = limitstore::FixedWindowRateLimiter::new(Arc::clone(&a));
    let item = RateLimitItem::per_minute(6).unwrap();
    let w = window0(60);
    let long = "x".repeat(200);
    for ids in [vec!["user", "1"], vec![long.as_str()]] {
        let key = item.key_for(&ids);
        assert!(limiter.hit(&item, &ids, 2).unwrap());
        assert_eq!(a.incr(&key, 60, false, 1).unwrap(), 3);
        assert!(limiter.hit(&item, &ids, 3).unwrap());
        assert!(!limiter.hit(&item, &ids, 1).unwrap());
        assert_eq!(a.get(&key).unwrap(), 7);
        a.flush().unwrap();
        assert_eq!(remote.total(&key, w), 7);
        assert_eq!(remote.slot(&key, w, "a"), 7);
    }
}

#[test]
fn two_nodes_sharing_a_key_converge_after_sync() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    let b = node(&remote, "b", &clock, HOUR);
    for _ in 0..4 {
        a.incr("k", 60, false, 1).unwrap();
    }
    for _ in 0..6 {
        b.incr("k", 60, false, 1).unwrap();
    }
    assert_eq!((a.get("k").unwrap(), b.get("k").unwrap()), (4, 6));
    a.flush().unwrap();
    b.flush().unwrap();
    assert_eq!(b.get("k").unwrap(), 10);
    // `a` synced before `b` had reported; nothing new is pending on `a`,
    // so it learns the total at its next hit's sync.
    assert_eq!(a.get("k").unwrap(), 4);
    assert_eq!(a.incr("k", 60, false, 1).unwrap(), 5);
    a.flush().unwrap();
    assert_eq!(a.get("k").unwrap(), 11);
    b.incr("k", 60, false, 1).unwrap();
    b.flush().unwrap();
    assert_eq!(b.get("k").unwrap(), 12);
    assert_eq!(remote.total("k", window0(60)), 12);
}

#[test]
fn pending_hits_survive_failed_syncs_and_are_delivered_exactly_once() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    let w = window0(60);
    remote.fail_next(3);
    for i in 0..5 {
        a.incr("k", 60, false, 1).unwrap();
        a.incr(&format!("other-{i}"), 60, false, 1).unwrap();
        let res = a.flush();
        assert_eq!(res.is_err(), i < 3, "flush {i}: {res:?}");
    }
    let st = a.stats();
    assert_eq!(st.errors, 3);
    assert_eq!(st.pending_keys, 0, "the fourth flush delivered everything");
    assert_eq!(remote.total("k", w), 5);

    // Pending state is per key, however many hits wait.
    remote.set_down(true);
    for _ in 0..1000 {
        a.incr("k", 60, false, 1).unwrap();
    }
    for _ in 0..3 {
        assert!(a.flush().is_err());
    }
    assert_eq!(a.stats().pending_keys, 1);
    assert!(a.stats().failing_for.is_some());
    remote.set_down(false);

    // The remote applies the write but the reply is lost: re-sending the
    // same cumulative total counts nothing twice.
    remote.fail_next_after_apply(2);
    assert!(a.flush().is_err());
    assert_eq!(remote.total("k", w), 1005);
    assert!(a.flush().is_err());
    assert_eq!(a.stats().pending_keys, 1);
    a.flush().unwrap();
    assert_eq!(remote.total("k", w), 1005);
    assert_eq!(a.get("k").unwrap(), 1005);
    assert_eq!(a.stats().pending_keys, 0);
    assert!(a.stats().failing_for.is_none());
    for i in 0..5 {
        assert_eq!(remote.total(&format!("other-{i}"), w), 1);
    }
}

#[test]
fn several_writers_through_repeated_failures_total_exactly() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let nodes: Vec<_> = (0..3)
        .map(|i| {
            WriteBehind::builder(remote.clone())
                .node_id(format!("n{i}"))
                .clock(clock.clone())
                .sync_interval(HOUR)
                .batch_size(2)
                .start()
                .unwrap()
        })
        .collect();
    let mut accepted = 0u64;
    for round in 0..60u64 {
        for (i, n) in nodes.iter().enumerate() {
            for k in 0..(round % 4 + i as u64) {
                n.incr(&format!("key-{}", k % 3), 60, false, 1 + k % 2)
                    .unwrap();
                accepted += 1 + k % 2;
            }
            match round % 5 {
                0 => remote.fail_next(1),
                1 => remote.fail_next_after_apply(1),
                2 => remote.fail_next_after_apply(3),
                _ => {}
            }
            let _ = n.flush();
        }
    }
    for n in &nodes {
        n.flush().unwrap();
        assert_eq!(n.stats().pending_keys, 0);
    }
    let w = window0(60);
    let total: u64 = (0..3).map(|k| remote.total(&format!("key-{k}"), w)).sum();
    assert_eq!(total, accepted);
    assert!(nodes.iter().map(|n| n.stats().errors).sum::<u64>() > 20);
}

#[test]
fn dropping_the_handle_flushes_and_joins() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    let storage = a.storage();
    a.incr("k", 60, false, 3).unwrap();
    assert_eq!(remote.total("k", window0(60)), 0);
    drop(a);
    assert_eq!(remote.total("k", window0(60)), 3);
    // The storage still answers after its syncer stopped.
    assert_eq!(storage.get("k").unwrap(), 3);
}

#[test]
fn the_syncer_thread_syncs_and_retries_with_backoff() {
    let remote = Arc::new(MemoryRemote::new());
    let a = WriteBehind::builder(remote.clone())
        .node_id("a")
        .sync_interval(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(400))
        .start()
        .unwrap();
    let wait_until = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let (w, _) = a.incr_in_window("k", 3600, 2).unwrap();
    wait_until("first sync", &|| remote.total("k", w) == 2);
    remote.set_down(true);
    a.incr("k", 3600, false, 3).unwrap();
    wait_until("errors", &|| a.stats().errors >= 3);
    let calls = remote.calls();
    std::thread::sleep(Duration::from_millis(150));
    // Backing off (80 ms, 160 ms, ...): far fewer than one call per 10 ms interval.
    assert!(
        remote.calls() - calls <= 3,
        "{} calls",
        remote.calls() - calls
    );
    assert_eq!(a.stats().pending_keys, 1);
    remote.set_down(false);
    wait_until("recovery", &|| remote.total("k", w) == 5);
    wait_until("pending drained", &|| a.stats().pending_keys == 0);
    assert!(a.stats().syncs >= 2);
    assert!(a.stats().sync_lag.is_some());
}

#[test]
fn fail_closed_refuses_hits_after_the_grace_period() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let closed = WriteBehind::builder(remote.clone())
        .node_id("closed")
        .clock(clock.clone())
        .sync_interval(HOUR)
        .failure_policy(FailurePolicy::Closed)
        .grace(Duration::from_secs(1))
        .start()
        .unwrap();
    let open = node(&remote, "open", &clock, HOUR);
    remote.set_down(true);
    assert!(!closed.check());
    closed.incr("k", 60, false, 1).unwrap();
    open.incr("k", 60, false, 1).unwrap();
    assert!(closed.flush().is_err());
    assert!(open.flush().is_err());
    clock.advance(Duration::from_millis(500));
    assert_eq!(closed.incr("k", 60, false, 1).unwrap(), 2, "within grace");
    clock.advance(Duration::from_secs(1));
    let e = closed.incr("k", 60, false, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(format!("{e:#}").contains("unreachable"), "{e:#}");
    assert!(e.is_retryable(), "{e:#}");
    let sw = closed.sliding_window().unwrap();
    assert!(sw.acquire_sliding_window_entry("s", 5, 60, 1).is_err());
    assert_eq!(closed.get("k").unwrap(), 2, "reads answer locally");
    assert_eq!(
        open.incr("k", 60, false, 1).unwrap(),
        2,
        "fail open keeps counting"
    );
    remote.set_down(false);
    closed.flush().unwrap();
    open.flush().unwrap();
    // `closed` synced before `open` delivered; its next hit's sync rebases it.
    assert_eq!(closed.incr("k", 60, false, 1).unwrap(), 3);
    closed.flush().unwrap();
    assert_eq!(closed.get("k").unwrap(), 5);
    assert_eq!(remote.total("k", window0(60)), 5);
}

#[test]
fn write_through_fail_closed_errors_and_fail_open_answers_locally() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let closed = WriteBehind::builder(remote.clone())
        .node_id("c")
        .clock(clock.clone())
        .sync_interval(Duration::ZERO)
        .failure_policy(FailurePolicy::Closed)
        .grace(Duration::ZERO)
        .start()
        .unwrap();
    let open = node(&remote, "o", &clock, Duration::ZERO);
    assert_eq!(closed.incr("k", 60, false, 1).unwrap(), 1);
    assert_eq!(open.incr("k", 60, false, 1).unwrap(), 2);
    remote.set_down(true);
    clock.advance(Duration::from_millis(1));
    assert_eq!(open.incr("k", 60, false, 1).unwrap(), 3);
    assert!(closed.incr("k", 60, false, 1).is_err());
    clock.advance(Duration::from_millis(1));
    assert!(closed.incr("k", 60, false, 1).is_err());
    remote.set_down(false);
    // Hits answered during the outage are delivered; the refused call whose
    // write may have reached the remote stays counted, once.
    open.flush().unwrap();
    closed.flush().unwrap();
    assert_eq!(remote.total("k", window0(60)), 4);
    assert_eq!(closed.incr("k", 60, false, 1).unwrap(), 5);
}

#[test]
fn write_through_is_exact_across_nodes_under_concurrency() {
    let remote = Arc::new(MemoryRemote::new().with_latency(Duration::from_micros(50)));
    let nodes: Vec<_> = (0..4)
        .map(|i| {
            WriteBehind::builder(remote.clone())
                .node_id(format!("n{i}"))
                .sync_interval(Duration::ZERO)
                .start()
                .unwrap()
        })
        .collect();
    let barrier = Barrier::new(100);
    let admitted: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..100)
            .map(|t| {
                let (n, barrier) = (&nodes[t % 4], &barrier);
                s.spawn(move || {
                    barrier.wait();
                    n.incr("conc", 3600, false, 1).unwrap() <= 5
                })
            })
            .collect();
        hs.into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(admitted, 5);
    let (w, count) = nodes[0].incr_in_window("conc", 3600, 1).unwrap();
    assert_eq!(count, 101);
    assert_eq!(remote.total("conc", w), 101);
}

#[test]
fn windows_roll_over_and_late_hits_of_the_old_window_are_still_delivered() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    let w = window0(10);
    a.incr("k", 10, false, 4).unwrap();
    assert_eq!(a.get_expiry("k").unwrap(), ((w + 1) * 10) as f64);
    clock.advance(Duration::from_secs(10));
    assert_eq!(a.get("k").unwrap(), 0);
    assert_eq!(a.get_expiry("k").unwrap(), 0.0);
    assert_eq!(a.incr("k", 10, false, 1).unwrap(), 1);
    a.flush().unwrap();
    assert_eq!((remote.total("k", w), remote.total("k", w + 1)), (4, 1));
    // Old windows are dropped locally once synced and over.
    clock.advance(Duration::from_secs(30));
    a.incr("k", 10, false, 1).unwrap();
    a.flush().unwrap();
    assert_eq!(a.stats().keys, 1);
}

#[test]
fn sliding_window_counter_limits_across_nodes() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    let b = node(&remote, "b", &clock, HOUR);
    let la = SlidingWindowCounterRateLimiter::new(a.storage()).unwrap();
    let lb = SlidingWindowCounterRateLimiter::new(b.storage()).unwrap();
    let item = RateLimitItem::per_minute(10).unwrap();
    for _ in 0..6 {
        assert!(la.hit(&item, &["u"], 1).unwrap());
    }
    a.flush().unwrap();
    let mut admitted_b = 0;
    while lb.hit(&item, &["u"], 1).unwrap() {
        admitted_b += 1;
    }
    // `b` does not know of `a`'s hits until it syncs: it admits 10 alone.
    assert_eq!(admitted_b, 10);
    b.flush().unwrap();
    // `a` still counts 6: one more fits in its view, and its sync rebases it.
    assert!(la.hit(&item, &["u"], 1).unwrap());
    a.flush().unwrap();
    assert!(!la.hit(&item, &["u"], 1).unwrap());
    // One window later the 17 weigh fully as the previous window.
    clock.advance(Duration::from_secs(60));
    let key = item.key_for(&["u"]);
    let sw = a.get_sliding_window(&key, 60).unwrap();
    assert_eq!((sw.previous_count, sw.current_count), (17, 0));
    // The fake clock starts 20 s into an epoch-aligned minute.
    assert!((sw.previous_expires_in - 40.0).abs() < 1e-6, "{sw:?}");
    let sw = b.get_sliding_window(&key, 60).unwrap();
    assert_eq!(sw.previous_count, 16);
    assert!(!lb.hit(&item, &["u"], 1).unwrap());
}

#[test]
fn clear_and_reset_reach_the_remote() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    a.incr("x", 60, false, 2).unwrap();
    a.incr("y", 60, false, 3).unwrap();
    a.flush().unwrap();
    a.clear("x").unwrap();
    assert_eq!(a.get("x").unwrap(), 0);
    assert_eq!(remote.total("x", window0(60)), 0);
    assert_eq!(a.reset().unwrap(), Some(1));
    assert_eq!(remote.total("y", window0(60)), 0);
    assert_eq!(a.stats().keys, 0);
    assert_eq!(a.unix_now(), clock.unix_now());
}

mod tune {
    use std::ops::ControlFlow;
    use std::time::Duration;

    use limitstore::write_behind::tune::{run_tune, TuneConfig, TuneMode};

    #[test]
    fn a_break_keeps_the_finished_intervals_and_stops_the_one_under_way() {
        let mut config = TuneConfig::default();
        config.modes = vec![TuneMode::Interval];
        config.nodes = 2;
        config.limit = 50;
        config.duration = Duration::from_millis(300);
        config.intervals = vec![
            Duration::ZERO,
            Duration::from_millis(5),
            Duration::from_secs(1),
        ];
        let started = std::time::Instant::now();
        let report = run_tune(&config, &mut |p| {
            if p.index == 1 && p.done > 0.4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert!(report.interrupted);
        assert_eq!(report.rows.len(), 1, "{report}");
        assert_eq!(report.rows[0].interval, Duration::ZERO);
        // The third interval never ran; the second stopped early.
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert!(report.to_svg().starts_with("<svg"));
    }

    #[test]
    fn a_tiny_rate_or_a_huge_one_ends_on_time() {
        for rate in [1e-300, 1e-3, 1e9] {
            let mut config = TuneConfig::default();
            config.nodes = 2;
            config.limit = 10;
            config.duration = Duration::from_millis(100);
            config.rate = Some(rate);
            config.intervals = vec![Duration::from_millis(10)];
            let started = std::time::Instant::now();
            let report = run_tune(&config, &mut |_| ControlFlow::Continue(())).unwrap();
            assert!(started.elapsed() < Duration::from_secs(2), "{rate}");
            assert!(
                report.rows[0].attempts >= 2,
                "{rate}: one hit per node at least"
            );
        }
    }

    #[test]
    fn tune_report_is_consistent() {
        let mut config = TuneConfig::default();
        config.nodes = 3;
        config.limit = 40;
        config.window = 1;
        config.duration = Duration::from_millis(1200);
        config.intervals = vec![
            Duration::ZERO,
            Duration::from_millis(20),
            Duration::from_secs(2),
        ];
        config.latency = Duration::from_micros(50);
        let mut ticks = 0;
        let report = run_tune(&config, &mut |p| {
            assert!((0.0..=1.0).contains(&p.done));
            ticks += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(ticks > 3);
        // Write-through once, then every mode at each positive interval.
        let runs: Vec<(Duration, TuneMode)> =
            report.rows.iter().map(|r| (r.interval, r.mode)).collect();
        let ms = Duration::from_millis;
        let mut expected = vec![(Duration::ZERO, TuneMode::Interval)];
        for interval in [ms(20), ms(2000)] {
            expected.extend(TuneMode::ALL.iter().map(|&m| (interval, m)));
        }
        assert_eq!(runs, expected);
        assert!(!report.interrupted);
        for r in &report.rows {
            assert!(r.admitted <= r.attempts, "{r:?}");
            assert!(r.windows >= 2, "1.2 s spans two 1 s windows: {r:?}");
            assert!(r.p50 <= r.p99, "{r:?}");
            assert!(r.remote_ops_per_sec > 0.0, "{r:?}");
            let capacity = (config.limit * r.windows) as f64;
            assert!((r.over_pct - 100.0 * r.over_admitted as f64 / capacity).abs() < 1e-9);
            // Budget split admits within claims the remote granted
            // atomically: never past the limit while each node syncs within
            // every window. At an interval past the window, a node's first
            // hits in a window can come from its unclaimed opening share,
            // ⌊limit / (nodes + 1)⌋ each, and no further.
            if r.mode != TuneMode::Interval {
                if r.interval < Duration::from_secs(1) {
                    assert_eq!(r.over_admitted, 0, "{report}");
                } else {
                    let opening = config.limit / (config.nodes as u64 + 1);
                    assert!(
                        r.worst_window_over <= config.nodes as u64 * opening,
                        "{report}"
                    );
                }
            }
        }
        // Write-through is exact: nothing beyond the limit, nothing refused
        // below it, and each full window admits the limit.
        let exact = &report.rows[0];
        assert_eq!(
            (exact.over_admitted, exact.under_admitted, exact.bound),
            (0, 0, 0),
            "{exact:?}"
        );
        assert!(exact.admitted >= config.limit, "{exact:?}");
        // An interval longer than the run: each node admits the limit alone.
        let blind = &report.rows[4];
        assert_eq!((blind.interval, blind.mode), (ms(2000), TuneMode::Interval));
        assert!(blind.worst_window_over >= config.limit, "{blind:?}");
        assert!(blind.worst_window_over <= 2 * config.limit, "{blind:?}");
        assert!(blind.within_bound(), "{blind:?}");
        // Fewer remote calls per hit as the interval grows.
        assert!(
            blind.remote_ops_per_sec < exact.remote_ops_per_sec,
            "{report}"
        );
        let table = report.to_string();
        for name in ["write-through", "interval", "split", "split+max"] {
            assert!(table.contains(name), "{table}");
        }
        let svg = report.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // The bound, then over and under for each of the three modes.
        assert_eq!(svg.matches("<polyline").count(), 7);
    }

    #[test]
    fn the_chart_ticks_at_round_values() {
        let mut config = TuneConfig::default();
        config.nodes = 3;
        config.limit = 40;
        config.duration = Duration::from_millis(300);
        config.intervals = vec![Duration::from_millis(50)];
        config.modes = vec![TuneMode::Interval];
        let report = run_tune(&config, &mut |_| ControlFlow::Continue(())).unwrap();
        let svg = report.to_svg();
        let ticks: Vec<f64> = svg
            .split("text-anchor=\"end\">")
            .skip(1)
            .map(|t| t[..t.find('%').unwrap()].parse().unwrap())
            .collect();
        assert!(ticks.len() >= 2, "{svg}");
        let step = ticks[1] - ticks[0];
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
            "{ticks:?}"
        );
    }
}

#[test]
fn remote_load_follows_keys_and_syncs_not_hits() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = WriteBehind::builder(remote.clone())
        .node_id("a")
        .clock(clock.clone())
        .sync_interval(HOUR)
        .batch_size(4)
        .start()
        .unwrap();
    for sync in 0..10 {
        for hit in 0..10_000u32 {
            a.incr(&format!("key-{}", hit % 10), 60, false, 1).unwrap();
        }
        a.flush().unwrap();
        // 10 keys in batches of 4: 3 round trips per sync.
        assert_eq!(remote.calls(), 3 * (sync + 1));
    }
    let st = a.stats();
    assert_eq!((st.remote_calls, st.reports_sent, st.syncs), (30, 100, 10));
    assert_eq!(remote.total("key-3", window0(60)), 10_000);
    // A key cleared while queued, then hit again, is reported once.
    a.incr("twice", 60, false, 1).unwrap();
    a.clear("twice").unwrap();
    a.incr("twice", 60, false, 1).unwrap();
    assert_eq!(a.stats().pending_keys, 2);
    a.flush().unwrap();
    assert_eq!(a.stats().reports_sent, 101);
    assert_eq!(remote.total("twice", window0(60)), 1);
}

/// With the remote down, more than `batch_size` keys pending and threads
/// creating new keys, a sync pass that fails re-queues the untouched keys
/// while hits go on: no lock is taken in two orders, so every hit finishes.
#[test]
fn an_outage_with_many_new_keys_does_not_deadlock() {
    let remote = Arc::new(MemoryRemote::new());
    remote.set_down(true);
    let node = Arc::new(
        WriteBehind::builder(remote.clone())
            .node_id("a")
            .sync_interval(Duration::from_millis(1))
            .batch_size(100)
            .start()
            .unwrap(),
    );
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..2 {
        let (node, done) = (node.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let (first, _) = node.incr_in_window(&format!("k{t}/0"), 3600, 1).unwrap();
            for i in 1..40_000 {
                node.incr(&format!("k{t}/{i}"), 3600, false, 1).unwrap();
            }
            done.send(first).unwrap();
        });
    }
    let windows: Vec<u64> = (0..2)
        .map(|_| {
            done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("hits finish while the remote is down")
        })
        .collect();
    assert!(node.stats().errors > 0, "the remote was down");
    remote.set_down(false);
    node.flush().unwrap();
    // Every key was delivered once the remote came back.
    for (t, w) in [(0, windows[0]), (1, windows[1])] {
        assert_eq!(remote.total(&format!("k{t}/0"), w), 1);
    }
}

/// A node of `max_entries` keys over a remote that is down: new keys
/// beyond the bound are answered by the failure policy and counted as
/// unrecorded, the table stays at its bound, and every recorded hit is
/// delivered once the remote is back.
#[test]
fn an_outage_flood_stays_within_max_entries_and_counts_what_it_could_not_record() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    remote.set_down(true);
    let node = Arc::new(
        WriteBehind::builder(remote.clone())
            .node_id("a")
            .clock(clock.clone())
            .sync_interval(Duration::from_secs(3600))
            .max_entries(1000)
            .start()
            .unwrap(),
    );
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let node = node.clone();
            std::thread::spawn(move || {
                (0..2500)
                    .map(|i| node.incr(&format!("k{t}/{i}"), 60, false, 1).unwrap())
                    .filter(|&count| count == 1)
                    .count()
            })
        })
        .collect();
    let answered: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // Open: every hit is answered as its key's only hit.
    assert_eq!(answered, 5000);
    let stats = node.stats();
    assert_eq!(stats.keys, 1000, "{stats:?}");
    assert_eq!(stats.unrecorded_hits, 4000, "{stats:?}");
    // A key the node holds still counts.
    let held = (0..2)
        .flat_map(|t| (0..2500).map(move |i| format!("k{t}/{i}")))
        .find(|k| node.get(k).unwrap() == 1)
        .unwrap();
    assert_eq!(node.incr(&held, 60, false, 1).unwrap(), 2);
    remote.set_down(false);
    node.flush().unwrap();
    let w = window0(60);
    let delivered: u64 = (0..2)
        .flat_map(|t| (0..2500).map(move |i| format!("k{t}/{i}")))
        .map(|k| remote.total(&k, w))
        .sum();
    assert_eq!(delivered, 1001, "every recorded hit reached the remote");
    // Closed: a hit that cannot be recorded is an error, not an admission.
    let closed = WriteBehind::builder(remote.clone())
        .node_id("b")
        .clock(clock.clone())
        .sync_interval(Duration::from_secs(3600))
        .failure_policy(FailurePolicy::Closed)
        .max_entries(1)
        .start()
        .unwrap();
    remote.set_down(true);
    closed.incr("c1", 60, false, 1).unwrap();
    let e = closed.incr("c2", 60, false, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert_eq!(closed.stats().unrecorded_hits, 1);
    remote.set_down(false);
}

/// A key hit through an outage longer than its windows holds a few
/// windows, not one per window of the outage: a window whose remote slots
/// expired a window ago (they live until one window after the window ends)
/// is dropped, its undelivered hits counted in `Stats::forgotten_hits`;
/// the windows the remote still holds are delivered exactly.
#[test]
fn an_outage_longer_than_a_window_keeps_only_windows_the_remote_still_holds() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let a = node(&remote, "a", &clock, HOUR);
    remote.set_down(true);
    let w0 = window0(2);
    for i in 0..20 {
        for n in 1..=3 {
            assert_eq!(a.incr("k", 2, false, 1).unwrap(), n, "window {i}");
        }
        clock.advance(Duration::from_secs(2));
    }
    // The first hit of window w0 + 19 dropped windows up to w0 + 16.
    let stats = a.stats();
    assert_eq!(stats.forgotten_hits, 17 * 3, "{stats:?}");
    assert_eq!(stats.keys, 1);
    remote.set_down(false);
    a.flush().unwrap();
    assert_eq!(remote.total("k", w0 + 19), 3);
    assert_eq!(a.stats().pending_keys, 0);
    assert_eq!(a.stats().forgotten_hits, 17 * 3, "nothing live was dropped");
    // A node that syncs drops nothing.
    let other = node(&remote, "b", &clock, HOUR);
    for _ in 0..10 {
        other.incr("k2", 2, false, 1).unwrap();
        other.flush().unwrap();
        clock.advance(Duration::from_secs(2));
    }
    assert_eq!(other.stats().forgotten_hits, 0);
}

/// A full table makes room for a new key once older keys' windows are over
/// and delivered: nothing is left unrecorded in normal operation.
#[test]
fn windows_that_end_make_room_for_new_keys() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let node = WriteBehind::builder(remote.clone())
        .node_id("a")
        .clock(clock.clone())
        .sync_interval(Duration::from_secs(3600))
        .max_entries(10)
        .start()
        .unwrap();
    for i in 0..10 {
        node.incr(&format!("old{i}"), 1, false, 1).unwrap();
    }
    node.flush().unwrap();
    // Two windows later the old keys hold nothing live.
    clock.advance(Duration::from_secs(3));
    for i in 0..10 {
        assert_eq!(node.incr(&format!("new{i}"), 1, false, 1).unwrap(), 1);
    }
    let stats = node.stats();
    assert_eq!((stats.keys, stats.unrecorded_hits), (10, 0), "{stats:?}");
}

/// An embedded remote that forgets everything (as a server restarted
/// without persistence): the node re-sends every window at its next pass,
/// keys never hit again included, and counts the loss.
#[test]
fn a_remote_that_forgot_gets_every_window_again() {
    let clock = FakeClock::new();
    let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
    let node = WriteBehind::builder(remote.clone())
        .node_id("a")
        .clock(clock.clone())
        .sync_interval(HOUR)
        .batch_size(64)
        .start()
        .unwrap();
    for i in 0..1000u64 {
        node.incr(&format!("key-{i}"), 60, false, 1 + i % 4)
            .unwrap();
    }
    node.flush().unwrap();
    let totals = |remote: &MemoryRemote| -> u64 {
        (0..1000u64)
            .map(|i| remote.total(&format!("key-{i}"), window0(60)))
            .sum()
    };
    let accepted: u64 = (0..1000u64).map(|i| 1 + i % 4).sum();
    assert_eq!(totals(&remote), accepted);
    remote.forget();
    assert_eq!(totals(&remote), 0);
    // The next pass finds the new marker, queues every window again and
    // delivers them.
    node.flush().unwrap();
    assert_eq!(totals(&remote), accepted);
    assert_eq!(node.stats().remote_data_losses, 1);
    assert_eq!(node.stats().pending_keys, 0);
    // The local view did not move.
    assert_eq!(node.get("key-3").unwrap(), 4);
    // A remote that keeps its data is not re-sent anything.
    let reports = remote.reports();
    node.flush().unwrap();
    assert_eq!(remote.reports(), reports);
}

/// Budget split, step by step: nodes on one fake clock and one embedded
/// remote, each round every node hits, then every node syncs (the syncer's
/// own passes are an hour apart, so the test drives them all).
mod budget_split {
    use super::*;
    use limitstore::write_behind::Budget;

    fn split_node(remote: &Arc<MemoryRemote>, id: &str, clock: &FakeClock) -> WriteBehindHandle {
        WriteBehind::builder(remote.clone())
            .node_id(id)
            .clock(clock.clone())
            .sync_interval(HOUR)
            .early_sync_gap(HOUR)
            .budget_split(true)
            .start()
            .unwrap()
    }

    fn split_nodes(
        remote: &Arc<MemoryRemote>,
        clock: &FakeClock,
        n: usize,
    ) -> Vec<WriteBehindHandle> {
        (0..n)
            .map(|i| split_node(remote, &format!("n{i}"), clock))
            .collect()
    }

    /// One round: node `i` tries `wants[i]` hits of 1 against `limit` on
    /// key `k` (60 s windows), then every node syncs. Returns the admitted.
    fn round(nodes: &[WriteBehindHandle], wants: &[u64], limit: u64) -> u64 {
        let mut admitted = 0;
        for (node, &want) in nodes.iter().zip(wants) {
            for _ in 0..want {
                admitted += u64::from(node.hit_in_window("k", 60, limit, 1).unwrap().1);
            }
        }
        for node in nodes {
            node.flush().unwrap();
        }
        admitted
    }

    /// Rounds of `wants` until the window's admissions stop growing (at
    /// most 40); asserts the total never passes `limit` and returns it.
    fn fill(nodes: &[WriteBehindHandle], wants: &[u64], limit: u64) -> u64 {
        let mut total = 0;
        let mut idle = 0;
        for _ in 0..40 {
            let got = round(nodes, wants, limit);
            total += got;
            assert!(total <= limit, "{total} of {limit}");
            idle = if got == 0 { idle + 1 } else { 0 };
            if idle == 3 {
                break;
            }
        }
        total
    }

    /// Rounds as [`fill`]'s, with every node's hits made by two threads at
    /// once, on a fixed window and on a sliding window counter: hits on a
    /// granted share are admitted under the shard's shared lock, and no
    /// race admits past the share, the limit, or what the remote counts.
    #[test]
    fn threads_racing_on_granted_shares_never_pass_the_limit() {
        let clock = FakeClock::new();
        let now = clock.unix_now();
        clock.advance(Duration::from_secs_f64(60.0 - now % 60.0));
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let nodes = split_nodes(&remote, &clock, 3);
        let item = RateLimitItem::per_minute(900).unwrap();
        let sliding: Vec<SlidingWindowCounterRateLimiter> = nodes
            .iter()
            .map(|n| SlidingWindowCounterRateLimiter::new(n.storage() as Arc<dyn Storage>).unwrap())
            .collect();
        // Fixed-window hits alternate between a limiter (the key as parts)
        // and the key string: one window.
        let fixed_item = RateLimitItem::per_minute(900).unwrap().with_namespace("F");
        let fixed_key = fixed_item.key_for(&["f"]);
        let fixed_limiters: Vec<FixedWindowRateLimiter> = nodes
            .iter()
            .map(|n| FixedWindowRateLimiter::new(n.storage() as Arc<dyn Storage>))
            .collect();
        let (mut fixed_total, mut sliding_total) = (0u64, 0u64);
        for _ in 0..40 {
            let (fixed, slid) = std::thread::scope(|scope| {
                let hitters: Vec<_> = (0..nodes.len() * 2)
                    .map(|t| {
                        let (node, limiter, item) = (&nodes[t / 2], &sliding[t / 2], &item);
                        let (fixed_limiter, fixed_item) = (&fixed_limiters[t / 2], &fixed_item);
                        let fixed_key = fixed_key.as_str();
                        scope.spawn(move || {
                            let (mut fixed, mut slid) = (0u64, 0u64);
                            for i in 0..40 {
                                let admitted = if i % 2 == 0 {
                                    node.hit_in_window(fixed_key, 60, 900, 1).unwrap().1
                                } else {
                                    fixed_limiter.hit(fixed_item, &["f"], 1).unwrap()
                                };
                                fixed += u64::from(admitted);
                                slid += u64::from(limiter.hit(item, &["s"], 1).unwrap());
                            }
                            (fixed, slid)
                        })
                    })
                    .collect();
                hitters
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            });
            fixed_total += fixed;
            sliding_total += slid;
            assert!(
                fixed_total <= 900 && sliding_total <= 900,
                "{fixed_total}, {sliding_total}"
            );
            for node in &nodes {
                node.flush().unwrap();
            }
        }
        let window = (clock.unix_now() / 60.0) as u64;
        assert_eq!(fixed_total, 900);
        assert_eq!(remote.total(&fixed_key, window), 900);
        assert_eq!(sliding_total, 900);
        let key = item.key_for(&["s"]);
        assert_eq!(remote.total(&key, window), 900);
    }

    #[test]
    fn shares_fill_the_limit_and_never_pass_it() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let nodes = split_nodes(&remote, &clock, 4);
        for window in 0..3 {
            let total = fill(&nodes, &[60; 4], 1000);
            assert_eq!(total, 1000, "window {window}");
            assert_eq!(remote.total("k", window0(60) + window), 1000);
            clock.advance(Duration::from_secs(60));
        }
        // Without budget split the same rounds admit past the limit: the
        // assertion above can fail.
        let plain: Vec<WriteBehindHandle> = (0..4)
            .map(|i| node(&remote, &format!("p{i}"), &clock, HOUR))
            .collect();
        let mut total = 0;
        for _ in 0..10 {
            total += round(&plain, &[60; 4], 1000);
        }
        assert!(total > 1000, "{total}");
    }

    #[test]
    fn skewed_demand_gets_what_the_quiet_nodes_leave() {
        // Rounds of 20 minutes in a day-long window: a node's claim is
        // capped at twice what it asked for since its last grant, so the
        // quiet nodes leave the rest to the busy one.
        const DAY: u64 = 86_400;
        let clock = FakeClock::new();
        let now = clock.unix_now() as u64;
        clock.advance(Duration::from_secs(DAY - now % DAY));
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let nodes = split_nodes(&remote, &clock, 4);
        let mut per = [0u64; 4];
        let mut total = 0;
        for _ in 0..60 {
            for (i, node) in nodes.iter().enumerate() {
                let want = if i == 0 { 90 } else { 3 };
                for _ in 0..want {
                    let ok = node.hit_in_window("k", DAY, 1000, 1).unwrap().1;
                    per[i] += u64::from(ok);
                    total += u64::from(ok);
                }
            }
            for node in &nodes {
                node.flush().unwrap();
            }
            assert!(total <= 1000);
            clock.advance(HOUR / 3);
        }
        // The busy node got all the quiet ones did not use, and the quiet
        // ones were not starved: 3 a round (after their first, answered
        // by the first sync) until the window was full.
        assert_eq!(total, 1000, "{per:?}");
        assert!(per[1..].iter().all(|&p| p >= 45), "{per:?}");
    }

    #[test]
    fn a_node_joining_mid_window_gets_a_share_within_the_limit() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let mut nodes = split_nodes(&remote, &clock, 3);
        let mut total = 0;
        for _ in 0..3 {
            total += round(&nodes, &[30; 3], 500);
        }
        nodes.push(split_node(&remote, "late", &clock));
        let mut late = 0;
        for _ in 0..20 {
            for (i, node) in nodes.iter().enumerate() {
                for _ in 0..30 {
                    let ok = node.hit_in_window("k", 60, 500, 1).unwrap().1;
                    total += u64::from(ok);
                    late += u64::from(ok && i == 3);
                }
            }
            for node in &nodes {
                node.flush().unwrap();
            }
            assert!(total <= 500, "{total}");
        }
        assert_eq!(total, 500);
        assert!(late > 0, "the new node was let in");
    }

    #[test]
    fn a_node_that_stops_leaves_no_more_than_its_claim_unused() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let nodes = split_nodes(&remote, &clock, 4);
        let mut total = round(&nodes, &[20; 4], 400) + round(&nodes, &[20; 4], 400);
        // Node 3 stops; the others keep asking.
        total += fill(&nodes, &[20, 20, 20, 0], 400);
        assert!(total <= 400, "{total}");
        // What node 3 claimed but never used stays reserved for it: at most
        // its demand-capped share, twice its 20 hits a round.
        assert!(total >= 400 - 40, "{total}");
    }

    #[test]
    fn a_limit_smaller_than_the_node_count_is_never_passed() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let nodes = split_nodes(&remote, &clock, 4);
        for window in 0..2 {
            assert_eq!(fill(&nodes, &[1; 4], 2), 2, "window {window}");
            clock.advance(Duration::from_secs(60));
        }
    }

    #[test]
    fn a_hit_larger_than_a_share_is_granted_when_it_fits() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let (a, b) = (
            split_node(&remote, "a", &clock),
            split_node(&remote, "b", &clock),
        );
        // Nothing known yet: refused, and asked for.
        assert!(!a.hit_in_window("k", 60, 100, 60).unwrap().1);
        a.flush().unwrap();
        assert!(a.hit_in_window("k", 60, 100, 60).unwrap().1);
        a.flush().unwrap();
        // Node a reported its 60 and claimed a share of the 40 left:
        // 60 + ⌊40 / 2⌋. For b 20 are left: a hit of 60 never fits, one of
        // 20 does.
        for _ in 0..3 {
            assert!(!b.hit_in_window("k", 60, 100, 60).unwrap().1);
            b.flush().unwrap();
        }
        assert!(b.hit_in_window("k", 60, 100, 20).unwrap().1);
        // The first was refused for want of share, the others by the count.
        assert_eq!(b.stats().share_refusals, 1);
        b.flush().unwrap();
        assert_eq!(remote.total("k", window0(60)), 80);
        // What a claimed and did not use is still a's.
        assert!(a.hit_in_window("k", 60, 100, 20).unwrap().1);
        assert!(!a.hit_in_window("k", 60, 100, 1).unwrap().1);
    }

    /// A hit that fits the limit but not a granted claim is refused on the
    /// shard's shared lock: the refusal is counted, the hit is asked for,
    /// and the next sync grants it.
    #[test]
    fn a_refusal_on_a_granted_claim_is_counted_and_granted_next() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let (a, b) = (
            split_node(&remote, "a", &clock),
            split_node(&remote, "b", &clock),
        );
        // Each node's first hit claims a share (the hit waits for it).
        let mut admitted = 0;
        for node in [&b, &a] {
            admitted += u64::from(node.hit_in_window("k", 60, 100, 1).unwrap().1);
            node.flush().unwrap();
            assert!(node.hit_in_window("k", 60, 100, 1).unwrap().1);
            node.flush().unwrap();
            admitted += 1;
        }
        // a holds a granted claim now: hits within it are admitted, and the
        // first past it is refused for want of share.
        let refused = a.stats().share_refusals;
        while a.hit_in_window("k", 60, 100, 1).unwrap().1 {
            admitted += 1;
            assert!(admitted < 100, "{admitted}");
        }
        assert_eq!(a.stats().share_refusals, refused + 1);
        for more in 2..4 {
            assert!(!a.hit_in_window("k", 60, 100, 30).unwrap().1);
            assert_eq!(a.stats().share_refusals, refused + more);
        }
        a.flush().unwrap();
        assert!(a.hit_in_window("k", 60, 100, 30).unwrap().1);
        a.flush().unwrap();
        assert_eq!(remote.total("k", window0(60)), admitted + 30);
    }

    #[test]
    fn sliding_window_counters_keep_the_weighted_limit_across_nodes() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let nodes = split_nodes(&remote, &clock, 3);
        let sliding = |n: &WriteBehindHandle| n.storage().sliding_window().is_some();
        assert!(nodes.iter().all(sliding));
        let limiter: Vec<SlidingWindowCounterRateLimiter> = nodes
            .iter()
            .map(|n| SlidingWindowCounterRateLimiter::new(n.storage() as Arc<dyn Storage>).unwrap())
            .collect();
        let item = RateLimitItem::per_minute(90).unwrap();
        // Start the window at its beginning.
        let now = clock.unix_now();
        clock.advance(Duration::from_secs_f64(60.0 - now % 60.0));
        // Ten hits on each node, then every node syncs: the admitted.
        let round = || {
            let mut admitted = 0;
            for l in &limiter {
                for _ in 0..10 {
                    admitted += u64::from(l.hit(&item, &["u"], 1).unwrap());
                }
            }
            for n in &nodes {
                n.flush().unwrap();
            }
            admitted
        };
        let mut current = 0;
        for _ in 0..20 {
            current += round();
            assert!(current <= 90);
        }
        assert_eq!(current, 90);
        // A third into the next window the previous one weighs two thirds.
        clock.advance(Duration::from_secs(80));
        let mut next = 0;
        for _ in 0..20 {
            next += round();
            let weighted = 90.0 * 2.0 / 3.0 + next as f64;
            assert!(weighted <= 90.0 + 1e-9, "{next}");
        }
        assert!(next >= 25, "{next}");
    }

    /// A remote that keeps no claims.
    #[derive(Debug)]
    struct NoShares(MemoryRemote);

    impl SyncTarget for NoShares {
        fn sync(&self, reports: &[Report<'_>]) -> limitstore::Result<Vec<u64>> {
            self.0.sync(reports)
        }
        fn check(&self) -> bool {
            self.0.check()
        }
        fn clear(&self, key: &str) -> limitstore::Result<()> {
            self.0.clear(key)
        }
        fn reset(&self) -> limitstore::Result<Option<u64>> {
            self.0.reset()
        }
    }

    #[test]
    fn a_remote_that_keeps_no_claims_is_refused_when_the_node_is_built() {
        let remote = Arc::new(NoShares(MemoryRemote::new()));
        let report = Report {
            key: "k",
            window: 1,
            expiry: 60,
            node: "a",
            total: 1,
        };
        let err = remote
            .sync_shares(&[report], &[Budget::default()])
            .unwrap_err();
        assert!(err.is_configuration(), "{err}");
        let err = WriteBehind::builder(remote.clone())
            .budget_split(true)
            .start()
            .unwrap_err();
        assert!(err.is_configuration(), "{err}");
        // Write-through is exact without shares, so it is built.
        let through = WriteBehind::builder(remote)
            .budget_split(true)
            .sync_interval(Duration::ZERO)
            .start()
            .unwrap();
        assert!(!through.is_budget_split());
    }

    #[test]
    fn during_an_outage_shares_hold_until_the_grace_period_then_the_policy_decides() {
        let clock = FakeClock::new();
        let remote = Arc::new(MemoryRemote::with_clock(clock.clone()));
        let node = WriteBehind::builder(remote.clone())
            .node_id("a")
            .clock(clock.clone())
            .sync_interval(HOUR)
            .early_sync_gap(HOUR)
            .grace(Duration::from_secs(5))
            .budget_split(true)
            .start()
            .unwrap();
        let other = split_node(&remote, "b", &clock);
        // Both learn the key; node a holds a share of what is left.
        for n in [&node, &other] {
            n.hit_in_window("k", 600, 100, 1).unwrap();
            n.flush().unwrap();
        }
        let admitted = |n: &WriteBehindHandle, tries: u32| {
            (0..tries)
                .filter(|_| n.hit_in_window("k", 600, 100, 1).unwrap().1)
                .count() as u64
        };
        remote.set_down(true);
        // Within the grace period: no more than the share.
        let within = admitted(&node, 100);
        assert!(node.flush().is_err());
        assert!(within < 60, "{within}");
        clock.advance(Duration::from_secs(6));
        assert!(node.flush().is_err());
        // Past it, fail-open: the node admits as if alone, up to the limit.
        let past = admitted(&node, 100);
        assert!(within + past >= 90, "{within} + {past}");
        remote.set_down(false);
        node.flush().unwrap();
    }

    #[test]
    fn early_syncs_are_at_most_one_per_gap() {
        let remote = Arc::new(MemoryRemote::new());
        let node = WriteBehind::builder(remote)
            .node_id("a")
            .sync_interval(Duration::from_secs(10))
            .early_sync_gap(Duration::from_millis(50))
            .budget_split(true)
            .start()
            .unwrap();
        let start = Instant::now();
        let mut admitted = 0;
        while start.elapsed() < Duration::from_millis(500) {
            admitted += u64::from(node.hit_in_window("k", 3600, 1_000_000, 1).unwrap().1);
        }
        let early = node.stats().early_syncs;
        assert!((2..=12).contains(&early), "{early} early syncs");
        assert!(admitted > 0);
    }

    #[test]
    fn uri_options_turn_it_on() {
        use limitstore::{storage_from_string, Options};
        let s = storage_from_string(
            "writebehind+memory://?budget_split=true&max_unsynced=5&early_sync_gap=0.01&node_id=a",
            &Options::new(),
        )
        .unwrap();
        let item = RateLimitItem::per_minute(10).unwrap();
        let limiter = limitstore::FixedWindowRateLimiter::new(s);
        let mut admitted = 0;
        let start = Instant::now();
        while admitted < 10 && start.elapsed() < Duration::from_secs(5) {
            admitted += u32::from(limiter.hit(&item, &["u"], 1).unwrap());
        }
        assert_eq!(admitted, 10);
        assert!(!limiter.hit(&item, &["u"], 1).unwrap());
        for bad in ["max_unsynced=0", "budget_split=maybe"] {
            let err = storage_from_string(&format!("writebehind+memory://?{bad}"), &Options::new())
                .unwrap_err();
            assert!(err.is_configuration(), "{bad}: {err}");
        }
    }
}
