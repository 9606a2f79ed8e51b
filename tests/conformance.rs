//! Conformance with Python `limits`, checked against the real library.
//!
//! Seeded random sequences of strategy and storage operations (every
//! strategy; costs and raw increments; clock steps from a microsecond to
//! several windows; `clear` and `reset`; keys made hot by two threads) run
//! through `limits` — `tests/conformance/limits_driver.py`, a
//! `MemoryStorage` under a frozen clock — and through the memory engine under
//! a [`FakeClock`], and every answer is compared. The differences this crate
//! intends are [`Allowed`], each one a line of the README's "Differences from
//! `limits`"; any other mismatch fails with the smallest sub-sequence that
//! still shows it.
//!
//! `same_counters_on_one_redis` then runs sequences on one real Redis with
//! each operation sent at random to `limits` or to this crate, and checks
//! every answer against `limits` alone.
//!
//! Python: `$LIMITSTORE_LIMITS_PYTHON` (`limits[redis]==5.8.0`) and
//! `$LIMITSTORE_LIMITS4_PYTHON` (`limits==4.7.3`, the last with elastic
//! expiry), else the venvs `target/limits-venv` and `target/limits4-venv`
//! that `scripts/test.sh` creates. Missing: a failure when `CI=true`, a skip
//! otherwise. `LIMITSTORE_CONFORMANCE_SEQUENCES` (default 300 per strategy)
//! and `LIMITSTORE_CONFORMANCE_SEED` run more or other sequences.

#[cfg(feature = "redis")]
#[macro_use]
mod servers;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use limitstore::{
    limiter_for, parse, FakeClock, MemoryStorage, RateLimitItem, RateLimiter, Storage, Strategy,
};

const ORIGIN: f64 = FakeClock::DEFAULT_UNIX_ORIGIN;
const NANOS: u64 = 1_000_000_000;

// ---------------------------------------------------------------- sequences

/// One operation: a driver command line, and which of the crate's two
/// worker threads runs it (the driver ignores that).
#[derive(Clone, Debug)]
struct Op {
    line: String,
    thread: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fixed,
    Elastic,
    Moving,
    Sliding,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Fixed => "fixed",
            Kind::Elastic => "elastic",
            Kind::Moving => "moving",
            Kind::Sliding => "sliding",
        }
    }

    fn strategy(self) -> Strategy {
        match self {
            Kind::Fixed => Strategy::FixedWindow,
            Kind::Elastic => Strategy::FixedWindowElasticExpiry,
            Kind::Moving => Strategy::MovingWindow,
            Kind::Sliding => Strategy::SlidingWindowCounter,
        }
    }

    /// Whether the strategy keeps a plain counter that `incr`, `get` and
    /// `get_expiry` reach.
    fn counter(self) -> bool {
        matches!(self, Kind::Fixed | Kind::Elastic)
    }

    /// The memory engine keeps fixed and moving windows in whole
    /// milliseconds, the sliding window counter in nanoseconds.
    fn tick_ns(self) -> u64 {
        if self == Kind::Sliding {
            1_000
        } else {
            1_000_000
        }
    }

    /// The rate strings sequences pick from; the last three are large.
    fn items(self, long: bool) -> &'static [&'static str] {
        match (self, long) {
            (_, true) => &["3/hour", "10/hour", "300/hour", "300/day", "10000/day"],
            (Kind::Fixed | Kind::Elastic, false) => &[
                "5/second",
                "3/2_seconds",
                "10/minute",
                "2/hour",
                "300/minute",
                "10000/minute",
                "100000/minute",
            ],
            (Kind::Moving, false) => &[
                "5/second",
                "3/2_seconds",
                "10/minute",
                "2/hour",
                "300/minute",
                "2000/minute",
            ],
            (Kind::Sliding, false) => &[
                "5/second",
                "3/2_seconds",
                "11/5_seconds",
                "10/minute",
                "300/minute",
                "2000/minute",
                "10000/minute",
            ],
        }
    }
}

#[derive(Clone, Debug)]
struct Sequence {
    kind: Kind,
    ops: Vec<Op>,
}

impl Sequence {
    fn text(&self) -> String {
        self.ops
            .iter()
            .map(|op| format!("  [t{}] {}\n", op.thread, op.line))
            .collect()
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

fn item(text: &str) -> RateLimitItem {
    parse(&text.replace('_', " ")).unwrap()
}

/// A random sequence of `kind`. `timed`: with clock steps, `expiry` and
/// `reset` (the frozen-clock run); else only what a real clock cannot
/// change within a run on long windows (the Redis run).
fn generate(seed: u64, kind: Kind, timed: bool) -> Sequence {
    let mut rng = Rng(seed ^ (kind as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let mut pool = kind.items(!timed);
    // A third of the sequences have only large limits: their keys get hot
    // (leased), and raw increments and large costs race the leases.
    let hot = rng.below(3) == 0;
    if hot {
        pool = &pool[pool.len() - 3..];
    }
    let items: Vec<&str> = (0..rng.range(1, 3)).map(|_| *rng.pick(pool)).collect();
    let ids: Vec<String> = (0..rng.range(1, 3)).map(|i| format!("u{i}")).collect();
    let tick = kind.tick_ns();
    let mut ops = Vec::new();
    for _ in 0..rng.range(10, 80) {
        let text = *rng.pick(&items);
        let it = item(text);
        let id = rng.pick(&ids).clone();
        let amount = it.amount();
        let cost = match rng.below(100) {
            0..=59 => 1,
            60..=89 => rng.range(2.min(amount), 6.min(amount)),
            90..=98 => rng.range(1, amount),
            // Counted by `limits` alone (see `Allowed::CostAboveLimit`).
            _ if timed => amount + 1,
            _ => amount,
        };
        let thread = rng.below(2) as usize;
        let roll = rng.below(100);
        let line = match roll {
            0..=35 => format!("hit {text} {id} {cost}"),
            36..=45 => format!("test {text} {id} {cost}"),
            46..=54 => format!("stats {text} {id}"),
            55..=58 => {
                // Hits from the other thread within one millisecond make
                // a large-limit key hot (leased); small limits get a few.
                let n = if amount >= 300 {
                    rng.range(100, 300)
                } else {
                    rng.range(1, 8)
                };
                ops.push(Op {
                    line: format!("burst {text} {id} {n}"),
                    thread: 1,
                });
                continue;
            }
            59..=62 => format!("clear {text} {id}"),
            63..=72 if kind.counter() => {
                let by = match rng.below(if hot { 2 } else { 4 }) {
                    0 => rng.range(1, amount + amount / 2 + 1),
                    _ => rng.range(1, 5),
                };
                format!("incr {text} {id} {by}")
            }
            73..=77 if kind.counter() => format!("get {text} {id}"),
            78..=81 if kind.counter() && timed => format!("expiry {text} {id}"),
            82..=83 if timed => "reset".to_owned(),
            84..=99 if timed => {
                let window = item(rng.pick::<&str>(&items)).get_expiry() * NANOS;
                let ns = match rng.below(10) {
                    0..=2 => rng.range(1, 999) * tick,
                    3..=4 => rng.range(1, window / tick) * tick,
                    5..=6 => window,
                    7 => window - tick,
                    8 => window + tick,
                    _ => rng.range(1, 5 * window / tick) * tick,
                };
                format!("adv {ns}")
            }
            _ => format!("hit {text} {id} {cost}"),
        };
        ops.push(Op { line, thread });
    }
    Sequence { kind, ops }
}

// ---------------------------------------------------------------- the two sides

fn python_for(kind: Kind) -> Option<PathBuf> {
    if kind == Kind::Elastic {
        servers::python("LIMITSTORE_LIMITS4_PYTHON", "limits4-venv", "limits==4.7.3")
    } else {
        servers::python(
            "LIMITSTORE_LIMITS_PYTHON",
            "limits-venv",
            "limits[redis]==5.8.0",
        )
    }
}

/// A running driver, answering one line per command.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Driver {
    fn start(python: &PathBuf) -> Driver {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/limits_driver.py"
        );
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the limits driver");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Driver {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        self.read()
    }

    fn read(&mut self) -> String {
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert!(!answer.is_empty(), "the limits driver exited");
        answer.trim_end().to_owned()
    }

    /// Answers for every op of every sequence, fed in one stream from a
    /// writer thread (so neither pipe fills while the other waits).
    fn run_all(python: &PathBuf, sequences: &[Sequence]) -> Vec<Vec<String>> {
        let mut driver = Driver::start(python);
        let mut input = String::new();
        for seq in sequences {
            input.push_str(&format!("new memory {}\n", seq.kind.name()));
            for op in &seq.ops {
                input.push_str(&op.line);
                input.push('\n');
            }
        }
        let mut stdin = driver.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let answers = sequences
            .iter()
            .map(|seq| {
                assert_eq!(driver.read(), "ok");
                seq.ops.iter().map(|_| driver.read()).collect()
            })
            .collect();
        writer.join().unwrap().unwrap();
        answers
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The crate's side: one storage and limiter, run by two worker threads so
/// keys hit from both get hot.
struct Engine {
    storage: Arc<dyn Storage>,
    limiter: Box<dyn RateLimiter>,
}

impl Engine {
    fn new(kind: Kind, storage: Arc<dyn Storage>) -> Engine {
        let limiter = limiter_for(kind.strategy(), storage.clone()).unwrap();
        Engine { storage, limiter }
    }

    fn apply(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (it, id) = match words.get(1..3) {
            Some([it, id]) => (item(it), [*id]),
            _ => (item("1/second"), [""]),
        };
        let n = || words[3].parse::<u64>().unwrap();
        let answer = match words[0] {
            "hit" => self.limiter.hit(&it, &id, n()).map(bool_text),
            "burst" => (0..n())
                .try_fold(0u64, |k, _| {
                    Ok(k + u64::from(self.limiter.hit(&it, &id, 1)?))
                })
                .map(|k: u64| k.to_string()),
            "test" => self.limiter.test(&it, &id, n()).map(bool_text),
            "stats" => self
                .limiter
                .get_window_stats(&it, &id)
                .map(|s| format!("{:?} {}", s.reset_time, s.remaining)),
            "clear" => self.limiter.clear(&it, &id).map(|()| "ok".to_owned()),
            "incr" => self
                .storage
                .incr(&it.key_for(&id), it.get_expiry(), false, n())
                .map(|c| c.to_string()),
            "get" => self.storage.get(&it.key_for(&id)).map(|c| c.to_string()),
            "expiry" => self
                .storage
                .get_expiry(&it.key_for(&id))
                .map(|e| format!("{e:?}")),
            "reset" => self.storage.reset().map(|_| "ok".to_owned()),
            other => panic!("unknown op {other}"),
        };
        answer.unwrap_or_else(|e| format!("error {:?}", e.kind()))
    }

    /// Whether the sliding window's weighted count for the op's key is a
    /// whole number right now (see [`Allowed::IntegerWeight`]).
    fn integer_weight(&self, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(sliding) = self.storage.sliding_window() else {
            return false;
        };
        let it = item(words[1]);
        let window = it.get_expiry() * NANOS;
        let w = sliding
            .get_sliding_window(&it.key_for(&[words[2]]), it.get_expiry())
            .unwrap();
        let left = (w.previous_expires_in * 1e9).round() as u64;
        w.previous_count > 0 && (w.previous_count * left).is_multiple_of(window)
    }
}

impl Engine {
    /// Whether the op's moving window has its oldest entry exactly
    /// `expiry` before `unix_ns` (see [`Allowed::MovingEdgeRead`]).
    fn moving_edge(&self, line: &str, unix_ns: u64) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        let it = item(words[1]);
        let w = self
            .storage
            .moving_window()
            .unwrap()
            .get_moving_window(&it.key_for(&[words[2]]), it.amount(), it.get_expiry())
            .unwrap();
        let edge = (unix_ns - it.get_expiry() * NANOS) as f64 / 1e9;
        w.count > 0 && (w.start - edge).abs() < 1e-6
    }
}

fn bool_text(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

/// Two threads that run ops on an [`Engine`], one at a time.
struct Workers {
    senders: Vec<mpsc::Sender<(Arc<Engine>, String)>>,
    answers: mpsc::Receiver<String>,
}

impl Workers {
    fn start() -> Workers {
        let (tx, answers) = mpsc::channel();
        let senders = (0..2)
            .map(|_| {
                let (send, recv) = mpsc::channel::<(Arc<Engine>, String)>();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for (engine, line) in recv {
                        if tx.send(engine.apply(&line)).is_err() {
                            break;
                        }
                    }
                });
                send
            })
            .collect();
        Workers { senders, answers }
    }

    fn run(&self, engine: &Arc<Engine>, op: &Op) -> String {
        self.senders[op.thread]
            .send((engine.clone(), op.line.clone()))
            .unwrap();
        self.answers.recv_timeout(Duration::from_secs(30)).unwrap()
    }
}

// ---------------------------------------------------------------- comparing

/// The differences this crate intends; each is a line of the README's
/// "Differences from `limits`".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Allowed {
    /// `get_expiry` of a key with no live window: 0 here; in `limits` "now"
    /// (no key) or the end of the window that ended.
    AbsentExpiry,
    /// A sliding window weight that is exactly a whole number: `limits`'
    /// float arithmetic can land just below it and admit one more.
    IntegerWeight,
    /// A fixed-window cost above the limit: refused here without counting,
    /// counted (and refused) by `limits`. The counts differ from then on, so
    /// the rest of the sequence is not compared.
    CostAboveLimit,
    /// A moving window read (`test`, `get_window_stats`) when its oldest
    /// entry is exactly `expiry` old: `limits`' `MemoryStorage` no longer
    /// counts it there, although its `acquire_entry` and its Redis storage
    /// do; this crate counts it in every read and acquire.
    MovingEdgeRead,
    /// The sliding window counter's reset time exactly at a window's start:
    /// `limits` reports "now" (its modulo is zero there), this crate when
    /// the quota next frees up.
    SlidingResetAtWindowStart,
}

/// What [`judge`] needs to know about the moment of an op.
struct Moment {
    kind: Kind,
    /// The Unix time, in nanoseconds, that both sides see.
    unix_ns: u64,
    /// The crate's sliding window weight for the op's key is a whole number.
    integer_weight: bool,
    /// The crate's moving window for the op's key starts exactly `expiry` ago.
    moving_edge: bool,
}

/// Compares one answer; `Ok(None)` when equal, `Ok(Some(_))` when the
/// difference is an intended one, `Err` when it is a mismatch.
fn judge(op: &str, py: &str, rs: &str, at: &Moment) -> Result<Option<Allowed>, ()> {
    let words: Vec<&str> = op.split_whitespace().collect();
    if at.kind.counter()
        && words[0] == "hit"
        && words[3].parse::<u64>().unwrap() > item(words[1]).amount()
    {
        return Ok(Some(Allowed::CostAboveLimit));
    }
    if py == rs {
        return Ok(None);
    }
    let float = |a: &str| a.parse::<f64>().ok();
    let close = |a: &str, b: &str| match (float(a), float(b)) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-4,
        _ => false,
    };
    let now = at.unix_ns as f64 / 1e9;
    match words[0] {
        "stats" => {
            let (p, r): (Vec<&str>, Vec<&str>) = (py.split(' ').collect(), rs.split(' ').collect());
            if p.len() == 2 && r.len() == 2 && p[1] == r[1] {
                if close(p[0], r[0]) {
                    return Ok(None);
                }
                let window = item(words[1]).get_expiry() * NANOS;
                if at.kind == Kind::Sliding
                    && at.unix_ns.is_multiple_of(window)
                    && close(p[0], &now.to_string())
                    && float(r[0]).is_some_and(|r| r > now)
                {
                    return Ok(Some(Allowed::SlidingResetAtWindowStart));
                }
            }
        }
        "expiry" => {
            if close(py, rs) {
                return Ok(None);
            }
            if rs == "0.0" && float(py).is_some_and(|p| p <= now + 1e-4) {
                return Ok(Some(Allowed::AbsentExpiry));
            }
        }
        _ => {}
    }
    if at.moving_edge && matches!(words[0], "test" | "stats") {
        return Ok(Some(Allowed::MovingEdgeRead));
    }
    if at.integer_weight && matches!(words[0], "hit" | "test" | "stats" | "burst") {
        return Ok(Some(Allowed::IntegerWeight));
    }
    Err(())
}

/// The first mismatch of `seq` given the driver's answers, as
/// (op index, python, rust); counts the allowed differences into `allowed`.
fn first_mismatch(
    workers: &Workers,
    seq: &Sequence,
    answers: &[String],
    allowed: &mut std::collections::HashMap<Allowed, u64>,
) -> Option<(usize, String, String)> {
    let clock = FakeClock::new();
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::builder().clock(clock.clone()).build());
    let engine = Arc::new(Engine::new(seq.kind, storage));
    let origin_ns = ORIGIN as u64 * NANOS;
    let mut elapsed = 0u64;
    for (i, (op, py)) in seq.ops.iter().zip(answers).enumerate() {
        if let Some(ns) = op.line.strip_prefix("adv ") {
            let ns: u64 = ns.parse().unwrap();
            elapsed += ns;
            clock.advance(Duration::from_nanos(ns));
            continue;
        }
        let at = Moment {
            kind: seq.kind,
            unix_ns: origin_ns + elapsed,
            integer_weight: seq.kind == Kind::Sliding
                && !op.line.starts_with("clear")
                && !op.line.starts_with("reset")
                && engine.integer_weight(&op.line),
            moving_edge: seq.kind == Kind::Moving
                && op.line.starts_with(['t', 's'])
                && engine.moving_edge(&op.line, origin_ns + elapsed),
        };
        let rs = workers.run(&engine, op);
        match judge(&op.line, py, &rs, &at) {
            Ok(None) => {}
            Ok(Some(why)) => {
                *allowed.entry(why).or_default() += 1;
                if why == Allowed::CostAboveLimit {
                    return None;
                }
            }
            Err(()) => return Some((i, py.clone(), rs)),
        }
    }
    None
}

/// Drops ops from a mismatching sequence while it still mismatches.
fn shrink(python: &PathBuf, workers: &Workers, mut seq: Sequence) -> Sequence {
    let mut allowed = Default::default();
    let mut i = 0;
    while i < seq.ops.len() {
        let mut candidate = seq.clone();
        candidate.ops.remove(i);
        let answers = Driver::run_all(python, std::slice::from_ref(&candidate)).remove(0);
        if first_mismatch(workers, &candidate, &answers, &mut allowed).is_some() {
            seq = candidate;
        } else {
            i += 1;
        }
    }
    seq
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn differential(kind: Kind) {
    let Some(python) = python_for(kind) else {
        return;
    };
    let count = env_u64("LIMITSTORE_CONFORMANCE_SEQUENCES", 300);
    let base = env_u64("LIMITSTORE_CONFORMANCE_SEED", 0x5EED);
    let sequences: Vec<Sequence> = (0..count)
        .map(|i| {
            generate(
                Rng(base.wrapping_mul(1_000_003).wrapping_add(i)).next(),
                kind,
                true,
            )
        })
        .collect();
    let answers = Driver::run_all(&python, &sequences);
    let workers = Workers::start();
    let mut allowed = std::collections::HashMap::new();
    let ops: usize = sequences.iter().map(|s| s.ops.len()).sum();
    for (seq, answers) in sequences.iter().zip(&answers) {
        if let Some((i, py, rs)) = first_mismatch(&workers, seq, answers, &mut allowed) {
            let small = shrink(&python, &workers, seq.clone());
            panic!(
                "{} differs from limits at op {i} `{}`: limits {py}, limitstore {rs}\n\
                 smallest sequence that still differs:\n{}",
                kind.name(),
                seq.ops[i].line,
                small.text()
            );
        }
    }
    eprintln!(
        "{}: {count} sequences, {ops} ops, equal to limits; intended differences seen: {allowed:?}",
        kind.name()
    );
}

#[test]
fn fixed_window_answers_as_limits() {
    differential(Kind::Fixed);
}

#[test]
fn elastic_expiry_answers_as_limits_4() {
    differential(Kind::Elastic);
}

#[test]
fn moving_window_answers_as_limits() {
    differential(Kind::Moving);
}

#[test]
fn sliding_window_counter_answers_as_limits() {
    differential(Kind::Sliding);
}

/// Sequences on one real Redis, each op sent at random to `limits` or to
/// this crate, answered as `limits` alone answers them (on its memory
/// storage; long windows, no clock steps, so the real clock changes
/// nothing: reset times are not compared, remaining counts are).
#[cfg(feature = "redis")]
#[test]
fn same_counters_on_one_redis() {
    require_or_skip!("redis-server");
    let Some(python) = python_for(Kind::Fixed) else {
        return;
    };
    let server = servers::Server::redis(servers::Config::default());
    let uri = server.url();
    let storage = limitstore::storage_from_string(&uri, &limitstore::Options::new()).unwrap();
    let count = env_u64("LIMITSTORE_CONFORMANCE_SEQUENCES", 300) / 10;
    let base = env_u64("LIMITSTORE_CONFORMANCE_SEED", 0x5EED);
    let mut driver = Driver::start(&python);
    let mut rng = Rng(base);
    let mut ops = 0;
    for kind in [Kind::Fixed, Kind::Moving, Kind::Sliding] {
        let sequences: Vec<Sequence> = (0..count)
            .map(|i| generate(Rng(base.wrapping_add(i)).next(), kind, false))
            .collect();
        let expected = Driver::run_all(&python, &sequences);
        assert_eq!(
            driver.ask(&format!("new redis {} {uri}", kind.name())),
            "ok"
        );
        let engine = Engine::new(kind, storage.clone());
        for (n, (seq, expected)) in sequences.iter().zip(&expected).enumerate() {
            // Identities of their own, so sequences share nothing.
            let tag = format!("-{}{n}", kind.name());
            for (i, (op, want)) in seq.ops.iter().zip(expected).enumerate() {
                let mut words: Vec<String> =
                    op.line.split_whitespace().map(str::to_owned).collect();
                words[2].push_str(&tag);
                let line = words.join(" ");
                let (who, got) = if rng.below(2) == 0 {
                    ("limits", driver.ask(&line))
                } else {
                    ("limitstore", engine.apply(&line))
                };
                let agree = match words[0].as_str() {
                    "stats" => got.split(' ').nth(1) == want.split(' ').nth(1),
                    _ => &got == want,
                };
                assert!(
                    agree,
                    "{} on Redis: op {i} `{line}` answered by {who}: {got}, limits alone: {want}\n\
                     sequence:\n{}",
                    kind.name(),
                    seq.text()
                );
                ops += 1;
            }
        }
    }
    eprintln!("{ops} ops on one Redis, interleaved, as limits answers them");
}
