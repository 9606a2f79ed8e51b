// The cases of `tests/strategies.rs`, included once per API: each module
// that includes them defines `make` (a limiter of a strategy over a memory
// storage) and `make_dyn` (over any storage).

fn storage() -> (FakeClock, Arc<Mem>) {
    let clock = FakeClock::new();
    let storage = Arc::new(MemoryStorage::builder().clock(clock.clone()).build());
    (clock, storage)
}

fn advance_ms(clock: &FakeClock, ms: u64) {
    clock.advance(Duration::from_millis(ms));
}

fn limiter(strategy: Strategy, storage: &Arc<Mem>) -> Box<dyn RateLimiter> {
    make(strategy, storage)
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "expected {expected}, got {actual}"
    );
}

fn hits(limiter: &dyn RateLimiter, item: &RateLimitItem, ids: &[&str], n: usize) -> usize {
    (0..n)
        .filter(|_| limiter.hit(item, ids, 1).unwrap())
        .count()
}

// ---------------------------------------------------------------- fixed window

#[test]
fn fixed_window_remaining_and_reset_time() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::FixedWindow, &storage);
    let item = parse("10/minute").unwrap();
    let start = clock.unix_now();

    let empty = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(empty.remaining, 10);
    assert_close(empty.reset_time, start);

    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    advance_ms(&clock, 1_500);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 9);
    assert_close(stats.reset_time, start + 60.0);

    assert_eq!(hits(&limiter, &item, &["k"], 9), 9);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 0);
    assert_close(stats.reset_time, start + 60.0);
}

#[test]
fn fixed_window_refuses_beyond_the_limit_and_counts_refusals() {
    let (_clock, storage) = storage();
    let limiter = make(Strategy::FixedWindow, &storage);
    let item = parse("5/minute").unwrap();
    assert_eq!(hits(&limiter, &item, &["k"], 8), 5);
    // Like `limits`, a refused hit still increments the counter.
    assert_eq!(storage.get(&item.key_for(&["k"])).unwrap(), 8);
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        0
    );
    // Other identities and other limits are separate counters.
    assert!(limiter.hit(&item, &["other"], 1).unwrap());
    assert!(limiter.hit(&parse("6/minute").unwrap(), &["k"], 1).unwrap());
}

#[test]
fn fixed_window_expires_after_the_window() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::FixedWindow, &storage);
    let item = parse("2 per 10 seconds").unwrap();
    let start = clock.unix_now();
    assert_eq!(hits(&limiter, &item, &["k"], 3), 2);

    advance_ms(&clock, 9_999);
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());

    advance_ms(&clock, 1);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 2);
    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 1);
    assert_close(stats.reset_time, start + 20.0);
}

#[test]
fn fixed_window_multiple_cost() {
    let (_clock, storage) = storage();
    let limiter = make(Strategy::FixedWindow, &storage);
    let item = parse("10/minute").unwrap();
    assert!(limiter.hit(&item, &["k"], 5).unwrap());
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        5
    );
    assert!(limiter.hit(&item, &["k"], 4).unwrap());
    assert!(!limiter.hit(&item, &["k"], 2).unwrap());
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        0
    );
    assert!(limiter.hit(&item, &["fresh"], 10).unwrap());
    assert!(!limiter.hit(&item, &["fresh"], 1).unwrap());
}

#[test]
fn fixed_window_test_does_not_consume() {
    let (_clock, storage) = storage();
    let limiter = make(Strategy::FixedWindow, &storage);
    let item = parse("10/minute").unwrap();
    for _ in 0..20 {
        assert!(limiter.test(&item, &["k"], 1).unwrap());
    }
    assert!(limiter.test(&item, &["k"], 10).unwrap());
    assert_eq!(hits(&limiter, &item, &["k"], 8), 8);
    assert!(limiter.test(&item, &["k"], 2).unwrap());
    assert!(!limiter.test(&item, &["k"], 3).unwrap());
    assert!(limiter.hit(&item, &["k"], 2).unwrap());
    assert!(!limiter.test(&item, &["k"], 1).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
}

#[test]
fn elastic_expiry_pushes_the_reset_out() {
    let (clock, storage) = storage();
    let elastic = make(Strategy::FixedWindowElasticExpiry, &storage);
    let fixed = make(Strategy::FixedWindow, &storage);
    let item = parse("2 per 10 seconds").unwrap();
    let start = clock.unix_now();

    assert!(elastic.hit(&item, &["e"], 1).unwrap());
    assert!(fixed.hit(&item, &["f"], 1).unwrap());
    assert_close(
        elastic.get_window_stats(&item, &["e"]).unwrap().reset_time,
        start + 10.0,
    );

    advance_ms(&clock, 5_000);
    assert!(elastic.hit(&item, &["e"], 1).unwrap());
    assert!(fixed.hit(&item, &["f"], 1).unwrap());
    let stats = elastic.get_window_stats(&item, &["e"]).unwrap();
    assert_eq!(stats.remaining, 0);
    assert_close(stats.reset_time, start + 15.0);
    assert_close(
        fixed.get_window_stats(&item, &["f"]).unwrap().reset_time,
        start + 10.0,
    );

    // 10 s after the first hit: the fixed window is over, the elastic one is
    // not, and the refused hit pushes it out again.
    advance_ms(&clock, 5_000);
    assert!(fixed.hit(&item, &["f"], 1).unwrap());
    assert!(!elastic.hit(&item, &["e"], 1).unwrap());
    assert_close(
        elastic.get_window_stats(&item, &["e"]).unwrap().reset_time,
        start + 20.0,
    );

    advance_ms(&clock, 9_000);
    assert!(!elastic.test(&item, &["e"], 1).unwrap());
    advance_ms(&clock, 1_000);
    assert!(elastic.test(&item, &["e"], 1).unwrap());
    assert!(elastic.hit(&item, &["e"], 1).unwrap());
    assert_eq!(
        elastic.get_window_stats(&item, &["e"]).unwrap().remaining,
        1
    );
}

// --------------------------------------------------------------- moving window

#[test]
fn moving_window_admits_again_only_as_old_entries_leave() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::MovingWindow, &storage);
    let item = parse("5 per 10 seconds").unwrap();
    // One hit a second for five seconds: t = 0, 1, 2, 3, 4.
    for _ in 0..5 {
        assert!(limiter.hit(&item, &["k"], 1).unwrap());
        advance_ms(&clock, 1_000);
    }
    // t = 5 .. 9.5: still five in the window.
    for _ in 0..10 {
        assert!(!limiter.hit(&item, &["k"], 1).unwrap());
        advance_ms(&clock, 500);
    }
    // t = 10.5: the hit of t = 0 has left, exactly one slot is free.
    advance_ms(&clock, 500);
    assert!(limiter.test(&item, &["k"], 1).unwrap());
    assert!(!limiter.test(&item, &["k"], 2).unwrap());
    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
    // t = 11.5: the hit of t = 1 has left.
    advance_ms(&clock, 1_000);
    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
    // t = 14.5: t = 2, 3, 4 have left.
    advance_ms(&clock, 3_000);
    assert!(limiter.hit(&item, &["k"], 3).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
}

#[test]
fn moving_window_reset_time_is_the_oldest_entry_plus_expiry() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::MovingWindow, &storage);
    let item = parse("5 per 10 seconds").unwrap();
    let start = clock.unix_now();

    let empty = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(empty.remaining, 5);
    assert_close(empty.reset_time, start + 10.0);

    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    advance_ms(&clock, 2_000);
    assert!(limiter.hit(&item, &["k"], 2).unwrap());
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 2);
    assert_close(stats.reset_time, start + 10.0);

    // t = 10.5: the first entry has left; the oldest is now the pair at t = 2.
    advance_ms(&clock, 8_500);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 3);
    assert_close(stats.reset_time, start + 12.0);
}

#[test]
fn moving_window_multiple_cost_and_test() {
    let (_clock, storage) = storage();
    let limiter = make(Strategy::MovingWindow, &storage);
    let item = parse("10/minute").unwrap();
    assert!(limiter.test(&item, &["k"], 10).unwrap());
    assert!(limiter.hit(&item, &["k"], 7).unwrap());
    assert!(limiter.test(&item, &["k"], 3).unwrap());
    assert!(!limiter.test(&item, &["k"], 4).unwrap());
    // A refused hit adds nothing.
    assert!(!limiter.hit(&item, &["k"], 4).unwrap());
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        3
    );
    assert!(limiter.hit(&item, &["k"], 3).unwrap());
    assert!(!limiter.test(&item, &["k"], 1).unwrap());
}

// ------------------------------------------------------- sliding window counter

#[test]
fn sliding_window_weights_the_previous_window() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::SlidingWindowCounter, &storage);
    let item = parse("10 per 10 seconds").unwrap();
    assert_eq!(hits(&limiter, &item, &["k"], 12), 10);

    // Half a window into the next window, the previous ten weigh five.
    advance_ms(&clock, 15_000);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 5);
    assert!(limiter.test(&item, &["k"], 5).unwrap());
    assert!(!limiter.test(&item, &["k"], 6).unwrap());
    assert_eq!(hits(&limiter, &item, &["k"], 10), 5);
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        0
    );

    // 2.5 s later the previous window weighs 2.5 (counted as 2), the current 5.
    advance_ms(&clock, 2_500);
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        3
    );
    assert_eq!(hits(&limiter, &item, &["k"], 10), 3);

    // Two windows later nothing weighs any more.
    advance_ms(&clock, 20_000);
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        10
    );
    assert_eq!(hits(&limiter, &item, &["k"], 12), 10);
}

#[test]
fn sliding_window_reset_time() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::SlidingWindowCounter, &storage);
    let item = parse("10 per 10 seconds").unwrap();
    let start = clock.unix_now();

    let empty = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(empty.remaining, 10);
    assert_close(empty.reset_time, start);

    // Hits in the current window only count until that window ends.
    advance_ms(&clock, 2_000);
    assert_eq!(hits(&limiter, &item, &["k"], 10), 10);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 0);
    assert_close(stats.reset_time, start + 10.0);

    // In the next window the previous ten drop by one every 10 / 10 = 1 s.
    advance_ms(&clock, 8_250);
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    // Weighted 10 * 9.75 / 10 = 9.75, so one hit is free now ...
    assert_eq!(stats.remaining, 1);
    // ... and the next one frees up when the weight falls below 9.
    assert_close(stats.reset_time, start + 11.0);
    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 0);
    assert_close(stats.reset_time, start + 11.0);

    // Just past the reset time one more hit fits.
    advance_ms(&clock, 1_000);
    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
}

#[test]
fn sliding_window_reset_at_a_window_start() {
    let (clock, storage) = storage();
    let limiter = make(Strategy::SlidingWindowCounter, &storage);
    let item = parse("3 per 10 seconds").unwrap();
    let start = clock.unix_now();
    // The clock sits exactly on a window boundary.
    assert!(limiter.hit(&item, &["k"], 1).unwrap());
    let stats = limiter.get_window_stats(&item, &["k"]).unwrap();
    assert_eq!(stats.remaining, 2);
    assert_close(stats.reset_time, start + 10.0);
}

#[test]
fn sliding_window_multiple_cost_and_test() {
    let (_clock, storage) = storage();
    let limiter = make(Strategy::SlidingWindowCounter, &storage);
    let item = parse("10/minute").unwrap();
    assert!(limiter.test(&item, &["k"], 10).unwrap());
    assert!(limiter.hit(&item, &["k"], 6).unwrap());
    assert!(limiter.test(&item, &["k"], 4).unwrap());
    assert!(!limiter.test(&item, &["k"], 5).unwrap());
    assert!(!limiter.hit(&item, &["k"], 5).unwrap());
    assert_eq!(
        limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
        4
    );
    assert!(limiter.hit(&item, &["k"], 4).unwrap());
    assert!(!limiter.hit(&item, &["k"], 1).unwrap());
}

// ------------------------------------------------------------- every strategy

#[test]
fn clear_removes_the_state() {
    for strategy in Strategy::ALL {
        let (_clock, storage) = storage();
        let limiter = limiter(strategy, &storage);
        let item = parse("3/minute").unwrap();
        assert_eq!(hits(&*limiter, &item, &["k", "x"], 5), 3, "{strategy}");
        assert!(limiter.hit(&item, &["other"], 1).unwrap());
        assert_eq!(
            limiter
                .get_window_stats(&item, &["k", "x"])
                .unwrap()
                .remaining,
            0,
            "{strategy}"
        );

        limiter.clear(&item, &["k", "x"]).unwrap();
        assert_eq!(
            limiter
                .get_window_stats(&item, &["k", "x"])
                .unwrap()
                .remaining,
            3,
            "{strategy}"
        );
        assert!(limiter.test(&item, &["k", "x"], 3).unwrap(), "{strategy}");
        assert_eq!(hits(&*limiter, &item, &["k", "x"], 5), 3, "{strategy}");
        // Other identities are untouched.
        assert_eq!(
            limiter
                .get_window_stats(&item, &["other"])
                .unwrap()
                .remaining,
            2,
            "{strategy}"
        );
    }
}

#[test]
fn cost_above_the_amount_is_refused_without_counting() {
    for strategy in Strategy::ALL {
        let (_clock, storage) = storage();
        let limiter = limiter(strategy, &storage);
        let item = parse("5/minute").unwrap();
        assert!(!limiter.hit(&item, &["k"], 6).unwrap(), "{strategy}");
        assert!(!limiter.test(&item, &["k"], 6).unwrap(), "{strategy}");
        assert!(
            !limiter.hit(&item, &["k"], MAX_AMOUNT).unwrap(),
            "{strategy}"
        );
        assert_eq!(
            limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
            5,
            "{strategy}"
        );
        assert!(limiter.hit(&item, &["k"], 5).unwrap(), "{strategy}");
    }
}

#[test]
fn decide_answers_as_hit_then_stats() {
    // `decide` on one identity against `hit` + `get_window_stats` on its
    // twin, through windows rolling over, with costs that fit, costs that
    // do not fit what is left, and a cost above the limit.
    for strategy in Strategy::ALL {
        let (clock, storage) = storage();
        let limiter = limiter(strategy, &storage);
        let item = parse("6 per 10 seconds").unwrap();
        let costs = [1, 2, 7, 3, 1, 1, 6, 2, 1];
        for (step, cost) in costs.into_iter().cycle().take(60).enumerate() {
            let decision = limiter.decide(&item, &["decided"], cost).unwrap();
            let admitted = limiter.hit(&item, &["hit"], cost).unwrap();
            let stats = limiter.get_window_stats(&item, &["hit"]).unwrap();
            let at = format!("{strategy}, step {step}, cost {cost}");
            assert_eq!(decision.admitted, admitted, "{at}");
            assert_eq!(decision.limit, 6, "{at}");
            assert_eq!(decision.remaining, stats.remaining, "{at}");
            assert_close(decision.reset_time, stats.reset_time);
            advance_ms(&clock, 700 + 300 * (step as u64 % 3));
        }
    }
    // What the first decisions leave, independently of `hit`.
    let (_clock, storage) = storage();
    let limiter = limiter(Strategy::FixedWindow, &storage);
    let item = parse("5/minute").unwrap();
    let first = limiter.decide(&item, &["k"], 2).unwrap();
    assert!(first.admitted);
    assert_eq!((first.limit, first.remaining), (5, 3));
    assert!(!limiter.decide(&item, &["k"], 4).unwrap().admitted);
    let refused = limiter.decide(&item, &["k"], 6).unwrap();
    assert!(!refused.admitted);
    assert_eq!(refused.remaining, 0, "the refused hit of 4 counted, as in limits");
}

#[test]
fn cost_zero_or_too_large_is_an_invalid_argument() {
    for strategy in Strategy::ALL {
        let (_clock, storage) = storage();
        let limiter = limiter(strategy, &storage);
        let item = parse("5/minute").unwrap();
        for cost in [0, MAX_AMOUNT + 1, u64::MAX] {
            let e = limiter.hit(&item, &["k"], cost).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{strategy} {cost}");
            let e = limiter.test(&item, &["k"], cost).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{strategy} {cost}");
        }
        assert_eq!(
            limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
            5,
            "{strategy}"
        );
    }
}

#[test]
fn identities_and_namespaces_are_separate() {
    for strategy in Strategy::ALL {
        let (_clock, storage) = storage();
        let limiter = limiter(strategy, &storage);
        let item = parse("1/minute").unwrap();
        let other_ns = item.clone().with_namespace("other");
        assert!(limiter.hit(&item, &["a", "b"], 1).unwrap(), "{strategy}");
        assert!(!limiter.hit(&item, &["a", "b"], 1).unwrap(), "{strategy}");
        assert!(limiter.hit(&item, &["a", "c"], 1).unwrap(), "{strategy}");
        assert!(limiter.hit(&item, &["a"], 1).unwrap(), "{strategy}");
        assert!(
            limiter.hit(&other_ns, &["a", "b"], 1).unwrap(),
            "{strategy}"
        );
    }
}

#[test]
fn every_strategy_resets_after_its_window() {
    for strategy in Strategy::ALL {
        let (clock, storage) = storage();
        let limiter = limiter(strategy, &storage);
        let item = parse("4 per 10 seconds").unwrap();
        assert_eq!(hits(&*limiter, &item, &["k"], 6), 4, "{strategy}");
        // Two windows on even the sliding window counter has forgotten.
        advance_ms(&clock, 20_001);
        assert_eq!(
            limiter.get_window_stats(&item, &["k"]).unwrap().remaining,
            4,
            "{strategy}"
        );
        assert_eq!(hits(&*limiter, &item, &["k"], 6), 4, "{strategy}");
    }
}

#[test]
fn strategy_names_round_trip() {
    for strategy in Strategy::ALL {
        assert_eq!(strategy.to_string().parse::<Strategy>().unwrap(), strategy);
    }
    assert_eq!(
        "fixed-window".parse::<Strategy>().unwrap(),
        Strategy::FixedWindow
    );
    assert_eq!(
        "sliding-window-counter".parse::<Strategy>().unwrap(),
        Strategy::SlidingWindowCounter
    );
    let e = "leaky-bucket".parse::<Strategy>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Configuration);
}

// ------------------------------------------- storages without the capabilities

/// A storage with fixed-window counters only, like `limits`' memcached.
#[derive(Debug)]
struct CountersOnly(Mem);

impl Storage for CountersOnly {
    fn incr(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
    ) -> limitstore::Result<u64> {
        self.0.incr(key, expiry, elastic_expiry, amount)
    }
    fn get(&self, key: &str) -> limitstore::Result<u64> {
        self.0.get(key)
    }
    fn get_expiry(&self, key: &str) -> limitstore::Result<f64> {
        self.0.get_expiry(key)
    }
    fn check(&self) -> bool {
        true
    }
    fn reset(&self) -> limitstore::Result<Option<u64>> {
        self.0.reset()
    }
    fn clear(&self, key: &str) -> limitstore::Result<()> {
        self.0.clear(key)
    }
    fn unix_now(&self) -> f64 {
        self.0.unix_now()
    }
}

#[test]
fn strategies_needing_a_capability_fail_at_construction() {
    let (_clock, mem) = storage();
    let storage = Arc::new(CountersOnly(Arc::try_unwrap(mem).unwrap()));

    let dynamic: Arc<dyn Storage> = storage;
    for strategy in [Strategy::MovingWindow, Strategy::SlidingWindowCounter] {
        let e = make_dyn(strategy, Arc::clone(&dynamic)).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{strategy}");
        assert!(e.message().contains(strategy.name()), "{e}");
    }

    // The fixed window strategies need nothing more.
    let item = parse("2/minute").unwrap();
    for strategy in [Strategy::FixedWindow, Strategy::FixedWindowElasticExpiry] {
        let limiter = make_dyn(strategy, Arc::clone(&dynamic)).unwrap();
        assert_eq!(hits(&*limiter, &item, &[strategy.name()], 3), 2);
    }
    let fixed = make_dyn(Strategy::FixedWindow, dynamic).unwrap();
    assert_eq!(
        fixed
            .get_window_stats(&item, &["fixed-window"])
            .unwrap()
            .remaining,
        0
    );
}
