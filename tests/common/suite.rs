//! The behavioural suite: what every storage must do, written once.
//!
//! Durations are kept short (windows of one or two seconds) so backends that
//! run on real time can sleep through them; timing assertions leave room for
//! a real server's clock (`Subject::slack`).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use limitstore::{
    limiter_for, ErrorKind, MovingWindowSupport, SlidingWindowCounterSupport, Storage, Strategy,
    MAX_AMOUNT, MAX_EXPIRY,
};

/// A capability beyond fixed windows, which a backend declares it lacks
/// (`storage_suite!(make; lacks: [..])`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Moving windows (`Storage::moving_window`).
    MovingWindow,
    /// Sliding window counters (`Storage::sliding_window`).
    SlidingWindowCounter,
    /// Windows a hit can extend (`Storage::elastic_expiry`).
    ElasticExpiry,
}

/// A storage under test and the means to move its time forward.
pub struct Subject {
    /// The storage, isolated from other tests.
    pub storage: Arc<dyn Storage>,
    /// Moves the storage's time forward: advances a fake clock, or sleeps.
    pub advance: Box<dyn Fn(Duration) + Send + Sync>,
    /// Tolerance, in seconds, for timestamps the storage reports (0 for a fake clock).
    pub slack: f64,
    /// The capabilities the backend declares it lacks; every other one is
    /// asserted present.
    pub lacks: &'static [Capability],
}

impl Subject {
    /// A subject whose time is the real clock: `advance` sleeps.
    pub fn real_time(storage: Arc<dyn Storage>) -> Self {
        Subject {
            storage,
            advance: Box::new(std::thread::sleep),
            slack: 0.5,
            lacks: &[],
        }
    }

    fn declares(&self, capability: Capability) -> bool {
        !self.lacks.contains(&capability)
    }

    /// A strategy needing a capability the backend lacks is refused at
    /// construction, with a configuration error naming the strategy.
    fn assert_refused(&self, strategy: Strategy) {
        let e = limiter_for(strategy, Arc::clone(&self.storage))
            .err()
            .unwrap_or_else(|| panic!("{strategy} over a storage lacking it was built"));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
        assert!(e.message().contains(strategy.name()), "{e}");
    }

    /// The storage's moving windows when it declares them (asserted
    /// present); `None` when it declares none, after asserting that the
    /// storage has none and that the moving-window strategy is refused.
    fn moving(&self) -> Option<&dyn MovingWindowSupport> {
        let declared = self.declares(Capability::MovingWindow);
        let found = self.storage.moving_window();
        assert_eq!(
            found.is_some(),
            declared,
            "moving window support declared: {declared}"
        );
        if !declared {
            self.assert_refused(Strategy::MovingWindow);
        }
        found
    }

    /// As [`moving`](Self::moving), for sliding window counters.
    fn sliding(&self) -> Option<&dyn SlidingWindowCounterSupport> {
        let declared = self.declares(Capability::SlidingWindowCounter);
        let found = self.storage.sliding_window();
        assert_eq!(
            found.is_some(),
            declared,
            "sliding window support declared: {declared}"
        );
        if !declared {
            self.assert_refused(Strategy::SlidingWindowCounter);
        }
        found
    }

    /// Whether the storage extends windows (asserted as declared); when it
    /// does not, the elastic strategy is refused and an elastic `incr`
    /// fails without counting.
    fn elastic(&self) -> bool {
        let declared = self.declares(Capability::ElasticExpiry);
        assert_eq!(
            self.storage.elastic_expiry(),
            declared,
            "elastic expiry declared: {declared}"
        );
        if !declared {
            self.assert_refused(Strategy::FixedWindowElasticExpiry);
            assert!(self.storage.incr("elastic-refused", 1, true, 1).is_err());
            assert_eq!(self.storage.get("elastic-refused").unwrap(), 0);
        }
        declared
    }

    fn advance(&self, by: Duration) {
        (self.advance)(by)
    }

    /// Moves past a boundary `secs` seconds ahead: exactly there for a fake
    /// clock, a little beyond it for real time (server TTLs are not exact).
    fn pass(&self, secs: f64) {
        let extra = if self.slack > 0.0 { 0.1 } else { 0.0 };
        self.advance(Duration::from_secs_f64(secs + extra));
    }
}

fn kind<T: std::fmt::Debug>(r: limitstore::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

pub fn incr_adds_amounts(s: &Subject) {
    let st = &s.storage;
    assert_eq!(st.get("incr").unwrap(), 0);
    assert_eq!(st.incr("incr", 10, false, 1).unwrap(), 1);
    assert_eq!(st.incr("incr", 10, false, 10).unwrap(), 11);
    assert_eq!(st.get("incr").unwrap(), 11);
}

pub fn incr_within_counts_and_compares_with_the_limit(s: &Subject) {
    let st = &s.storage;
    assert!(st.incr_within("within", 1, false, 2, 3).unwrap());
    assert!(st.incr_within("within", 1, false, 1, 3).unwrap());
    // Over the limit: refused, and still counted, as `incr` counts.
    assert!(!st.incr_within("within", 1, false, 1, 3).unwrap());
    assert_eq!(st.get("within").unwrap(), 4);
    assert_eq!(st.incr("within", 1, false, 1).unwrap(), 5);
    // An amount larger than the whole limit is refused.
    assert!(!st.incr_within("within-big", 1, false, 4, 3).unwrap());
    assert_eq!(
        kind(st.incr_within("within", 0, false, 1, 3)),
        ErrorKind::InvalidArgument
    );
    // The window ends as `incr`'s does, and the next hit starts a new one.
    s.pass(1.0);
    assert!(st.incr_within("within", 1, false, 3, 3).unwrap());
    assert_eq!(st.get("within").unwrap(), 3);
}

pub fn keys_are_independent(s: &Subject) {
    let st = &s.storage;
    st.incr("a", 10, false, 3).unwrap();
    st.incr("b", 10, false, 4).unwrap();
    assert_eq!(st.get("a").unwrap(), 3);
    assert_eq!(st.get("b").unwrap(), 4);
    assert_eq!(st.get("c").unwrap(), 0);
}

pub fn counter_expires_after_its_window(s: &Subject) {
    let st = &s.storage;
    assert_eq!(st.incr("exp", 1, false, 1).unwrap(), 1);
    assert_eq!(st.incr("exp", 1, false, 1).unwrap(), 2);
    s.pass(1.0);
    assert_eq!(st.get("exp").unwrap(), 0);
    assert_eq!(st.get_expiry("exp").unwrap(), 0.0);
    // A new window starts at the next increment.
    assert_eq!(st.incr("exp", 1, false, 1).unwrap(), 1);
}

pub fn get_expiry_reports_the_window_end(s: &Subject) {
    let st = &s.storage;
    assert_eq!(st.get_expiry("ge").unwrap(), 0.0);
    let start = st.unix_now();
    st.incr("ge", 10, false, 1).unwrap();
    let at = st.get_expiry("ge").unwrap();
    assert!(
        (at - (start + 10.0)).abs() <= s.slack + 1e-6,
        "expiry {at} vs start {start}"
    );
    // A later increment in the same window does not move it.
    s.advance(Duration::from_millis(300));
    st.incr("ge", 10, false, 1).unwrap();
    let again = st.get_expiry("ge").unwrap();
    assert!((again - at).abs() <= s.slack + 1e-6, "{again} vs {at}");
}

pub fn elastic_expiry_pushes_the_window_out(s: &Subject) {
    if !s.elastic() {
        return;
    }
    let st = &s.storage;
    st.incr("el", 1, true, 1).unwrap();
    st.incr("fx", 1, false, 1).unwrap();
    s.advance(Duration::from_millis(600));
    st.incr("el", 1, true, 1).unwrap();
    st.incr("fx", 1, false, 1).unwrap();
    s.advance(Duration::from_millis(600));
    // 1.2 s after the first hit: the fixed window is over, the elastic one
    // was pushed out by the second hit and still holds both.
    assert_eq!(st.get("fx").unwrap(), 0);
    assert_eq!(st.get("el").unwrap(), 2);
    s.pass(0.4);
    assert_eq!(st.get("el").unwrap(), 0);
}

pub fn clear_removes_counter_and_moving_window(s: &Subject) {
    let st = &s.storage;
    st.incr("clr", 10, false, 5).unwrap();
    st.clear("clr").unwrap();
    assert_eq!(st.get("clr").unwrap(), 0);
    assert_eq!(st.incr("clr", 10, false, 1).unwrap(), 1);
    if let Some(mw) = s.moving() {
        assert!(mw.acquire_entry("clr-mw", 2, 10, 2).unwrap());
        assert!(!mw.acquire_entry("clr-mw", 2, 10, 1).unwrap());
        st.clear("clr-mw").unwrap();
        assert_eq!(mw.get_moving_window("clr-mw", 2, 10).unwrap().count, 0);
        assert!(mw.acquire_entry("clr-mw", 2, 10, 1).unwrap());
    }
    // Clearing a key that does not exist is not an error.
    st.clear("never-seen").unwrap();
}

pub fn reset_removes_everything(s: &Subject) {
    let st = &s.storage;
    for i in 0..10 {
        st.incr(&format!("LIMITER/ns1/{i}"), 60, false, 1).unwrap();
        st.incr(&format!("LIMITER/ns2/{i}"), 60, false, 1).unwrap();
    }
    if let Some(n) = st.reset().unwrap() {
        assert_eq!(n, 20);
    }
    for i in 0..10 {
        assert_eq!(st.get(&format!("LIMITER/ns1/{i}")).unwrap(), 0);
        assert_eq!(st.get(&format!("LIMITER/ns2/{i}")).unwrap(), 0);
    }
}

pub fn check_reports_health(s: &Subject) {
    assert!(s.storage.check());
}

pub fn bad_arguments_are_typed_errors(s: &Subject) {
    let st = &s.storage;
    assert_eq!(
        kind(st.incr("bad", 10, false, 0)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(st.incr("bad", 0, false, 1)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(st.incr("bad", MAX_EXPIRY + 1, false, 1)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(st.incr("bad", 10, false, MAX_AMOUNT + 1)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(st.incr("bad", u64::MAX, false, u64::MAX)),
        ErrorKind::InvalidArgument
    );
    // Nothing was counted by the refused calls.
    assert_eq!(st.get("bad").unwrap(), 0);
    if let Some(mw) = s.moving() {
        assert_eq!(
            kind(mw.acquire_entry("bad", 0, 10, 1)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(mw.acquire_entry("bad", 5, 0, 1)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(mw.acquire_entry("bad", 5, 10, 0)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(mw.acquire_entry("bad", u64::MAX, 10, 1)),
            ErrorKind::InvalidArgument
        );
    }
    if let Some(sw) = s.sliding() {
        assert_eq!(
            kind(sw.acquire_sliding_window_entry("bad", 0, 10, 1)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(sw.acquire_sliding_window_entry("bad", 5, 0, 1)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(sw.acquire_sliding_window_entry("bad", 5, 10, 0)),
            ErrorKind::InvalidArgument
        );
    }
}

pub fn acquire_entry_admits_up_to_the_limit(s: &Subject) {
    let Some(mw) = s.moving() else {
        return;
    };
    for i in 0..5 {
        assert!(mw.acquire_entry("mw", 5, 10, 1).unwrap(), "entry {i}");
    }
    assert!(!mw.acquire_entry("mw", 5, 10, 1).unwrap());
    let w = mw.get_moving_window("mw", 5, 10).unwrap();
    assert_eq!(w.count, 5);
}

pub fn acquire_entry_refuses_amount_over_limit(s: &Subject) {
    let Some(mw) = s.moving() else {
        return;
    };
    assert!(!mw.acquire_entry("mw-big", 10, 10, 11).unwrap());
    assert_eq!(mw.get_moving_window("mw-big", 10, 10).unwrap().count, 0);
    assert!(mw.acquire_entry("mw-big", 10, 10, 10).unwrap());
    assert!(!mw.acquire_entry("mw-big", 10, 10, 1).unwrap());
}

pub fn acquire_entry_large_amounts(s: &Subject) {
    let Some(mw) = s.moving() else {
        return;
    };
    assert!(mw.acquire_entry("mw-large", 30_000, 10, 20_000).unwrap());
    assert!(!mw.acquire_entry("mw-large", 30_000, 10, 10_001).unwrap());
    assert!(mw.acquire_entry("mw-large", 30_000, 10, 10_000).unwrap());
    assert_eq!(
        mw.get_moving_window("mw-large", 30_000, 10).unwrap().count,
        30_000
    );
}

pub fn moving_window_frees_up_as_entries_age(s: &Subject) {
    let Some(mw) = s.moving() else {
        return;
    };
    assert!(mw.acquire_entry("mw-age", 2, 1, 1).unwrap());
    s.advance(Duration::from_millis(500));
    assert!(mw.acquire_entry("mw-age", 2, 1, 1).unwrap());
    assert!(!mw.acquire_entry("mw-age", 2, 1, 1).unwrap());
    // The first entry leaves the window just after one second: an entry
    // exactly a window old is still inside (`limits`' `timestamp >= now -
    // expiry`). Only a fake clock can stand on that instant.
    if s.slack == 0.0 {
        s.pass(0.5);
        assert_eq!(mw.get_moving_window("mw-age", 2, 1).unwrap().count, 2);
        assert!(!mw.acquire_entry("mw-age", 2, 1, 1).unwrap());
        s.advance(Duration::from_millis(1));
    } else {
        s.pass(0.5);
    }
    assert_eq!(mw.get_moving_window("mw-age", 2, 1).unwrap().count, 1);
    assert!(mw.acquire_entry("mw-age", 2, 1, 1).unwrap());
    assert!(!mw.acquire_entry("mw-age", 2, 1, 1).unwrap());
}

pub fn moving_window_start_is_the_oldest_entry(s: &Subject) {
    let Some(mw) = s.moving() else {
        return;
    };
    let empty = mw.get_moving_window("mw-start", 5, 10).unwrap();
    assert_eq!(empty.count, 0);
    assert!((empty.start - s.storage.unix_now()).abs() <= s.slack + 1e-6);
    let first = s.storage.unix_now();
    assert!(mw.acquire_entry("mw-start", 5, 10, 1).unwrap());
    s.advance(Duration::from_millis(400));
    assert!(mw.acquire_entry("mw-start", 5, 10, 2).unwrap());
    let w = mw.get_moving_window("mw-start", 5, 10).unwrap();
    assert_eq!(w.count, 3);
    assert!(
        (w.start - first).abs() <= s.slack + 0.01,
        "{} vs {first}",
        w.start
    );
}

pub fn sliding_window_counts_and_refuses(s: &Subject) {
    let Some(sw) = s.sliding() else {
        return;
    };
    for i in 0..5 {
        assert!(
            sw.acquire_sliding_window_entry("sw", 5, 10, 1).unwrap(),
            "{i}"
        );
    }
    assert!(!sw.acquire_sliding_window_entry("sw", 5, 10, 1).unwrap());
    assert!(!sw
        .acquire_sliding_window_entry("sw-over", 5, 10, 6)
        .unwrap());
    let w = sw.get_sliding_window("sw", 10).unwrap();
    assert_eq!(w.previous_count + w.current_count, 5);
    assert!(w.current_expires_in > 0.0 && w.current_expires_in <= 20.0 + s.slack);
}

pub fn sliding_window_weights_the_previous_window(s: &Subject) {
    let Some(sw) = s.sliding() else {
        return;
    };
    // Backends align windows differently (to the epoch, or to the first
    // hit); a window of 2 s entered at a window start for both: wait for the
    // first-hit alignment to not matter by checking relative behaviour.
    for _ in 0..4 {
        assert!(sw.acquire_sliding_window_entry("swr", 4, 2, 1).unwrap());
    }
    assert!(!sw.acquire_sliding_window_entry("swr", 4, 2, 1).unwrap());
    // Three windows later nothing weighs any more.
    s.pass(6.0);
    let w = sw.get_sliding_window("swr", 2).unwrap();
    assert!(w.weighted_count(2) < 1.0, "{w:?}");
    // Fill a window, then look one and a half windows later: the previous
    // window weighs somewhere strictly between nothing and everything.
    for _ in 0..4 {
        assert!(sw.acquire_sliding_window_entry("swr2", 4, 2, 1).unwrap());
    }
    s.advance(Duration::from_millis(2500));
    let w = sw.get_sliding_window("swr2", 2).unwrap();
    let weighted = w.weighted_count(2);
    assert!(weighted > 0.0 && weighted < 4.0, "{w:?}");
    let mut admitted = 0;
    while sw.acquire_sliding_window_entry("swr2", 4, 2, 1).unwrap() {
        admitted += 1;
        assert!(admitted <= 4);
    }
    assert!(
        (1..=3).contains(&admitted),
        "admitted {admitted} with {w:?}"
    );
}

pub fn clear_sliding_window_removes_both_buckets(s: &Subject) {
    let Some(sw) = s.sliding() else {
        return;
    };
    for _ in 0..3 {
        assert!(sw.acquire_sliding_window_entry("swc", 3, 10, 1).unwrap());
    }
    assert!(!sw.acquire_sliding_window_entry("swc", 3, 10, 1).unwrap());
    sw.clear_sliding_window("swc", 10).unwrap();
    let w = sw.get_sliding_window("swc", 10).unwrap();
    assert_eq!((w.previous_count, w.current_count), (0, 0));
    assert!(sw.acquire_sliding_window_entry("swc", 3, 10, 3).unwrap());
}

const THREADS: usize = 100;

/// Runs `f` on 100 threads released together; returns how many returned true.
fn hammer(f: impl Fn() -> bool + Sync) -> usize {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    f()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread panicked"))
            .filter(|ok| *ok)
            .count()
    })
}

pub fn concurrent_incr_counts_every_hit(s: &Subject) {
    let st = &s.storage;
    let admitted = hammer(|| st.incr("conc-incr", 60, false, 1).unwrap() <= 5);
    assert_eq!(admitted, 5);
    assert_eq!(st.get("conc-incr").unwrap(), THREADS as u64);
}

pub fn concurrent_incr_within_is_exact(s: &Subject) {
    let st = &s.storage;
    let admitted = hammer(|| st.incr_within("conc-within", 60, false, 1, 5).unwrap());
    assert_eq!(admitted, 5);
    assert_eq!(st.get("conc-within").unwrap(), THREADS as u64);
}

pub fn concurrent_acquire_entry_is_exact(s: &Subject) {
    let Some(mw) = s.moving() else {
        return;
    };
    let admitted = hammer(|| mw.acquire_entry("conc-mw", 5, 60, 1).unwrap());
    assert_eq!(admitted, 5);
    assert_eq!(mw.get_moving_window("conc-mw", 5, 60).unwrap().count, 5);
}

pub fn concurrent_sliding_window_is_exact(s: &Subject) {
    let Some(sw) = s.sliding() else {
        return;
    };
    let admitted = hammer(|| {
        sw.acquire_sliding_window_entry("conc-sw", 5, 60, 1)
            .unwrap()
    });
    assert_eq!(admitted, 5);
}
