//! Differential target: the memory engine against a reference model of
//! `limits`' storage semantics, op by op, on a fake clock.
//!
//! The model is deliberately naive: a `HashMap` of counters with their
//! expiry, a newest-first list of timestamps per moving-window key (checked
//! at `limit - amount` as `limits` does), and epoch-aligned sliding-window
//! buckets `key/index` weighted `floor(previous * remaining / expiry) + current`.
//!
//! Where the engine's documented contract differs from `limits`, the model
//! follows the contract and says so:
//! - a moving-window entry stamped `t` stops counting at `t + expiry`
//!   (`limits` still counts it at that instant), as fixed windows do in both;
//! - moving-window timestamps are whole milliseconds of the clock;
//! - `get_moving_window` looks at most `limit` entries back;
//! - `clear(key)` also removes the key's sliding window;
//! - a counter is refused past 2^62 rather than growing without bound;
//! - one expiry per key for each window kind (a strategy's key names its
//!   item, so a key never sees two windows); the fixed-window counters take
//!   any expiry.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use limitstore::storage::validate_expiry;
use limitstore::{
    ErrorKind, FakeClock, MemoryStorage, MovingWindow, MovingWindowSupport, SlidingWindow,
    SlidingWindowCounterSupport, Storage, MAX_AMOUNT, MAX_EXPIRY, MAX_KEY_LEN,
    MAX_MOVING_WINDOW_LIMIT,
};

const NANOS: u64 = 1_000_000_000;
const NANOS_PER_MS: u64 = 1_000_000;
/// The largest sliding-window limit the engine accepts.
pub const MAX_SLIDING_LIMIT: u64 = (1 << 48) - 1;
/// Counters are refused past this.
pub const MAX_COUNT: u64 = 1 << 47;

/// Unix origins the fake clock may start at (whole seconds): today, the
/// epoch, either side of 2^31 s (2038) and just before 2^32 s (2106).
pub const ORIGINS: &[u64] = &[
    1_700_000_000,
    0,
    (1 << 31) - 3,
    (1 << 31) + 5,
    (1 << 32) - 4,
    1,
];

/// The keys: valid ones (empty, NUL and non-ASCII bytes, the longest
/// allowed) and one a byte too long.
fn keys() -> &'static [String; 6] {
    static KEYS: OnceLock<[String; 6]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            "a".to_owned(),
            "b".to_owned(),
            "\0ü€/x".to_owned(),
            String::new(),
            "k".repeat(MAX_KEY_LEN),
            "k".repeat(MAX_KEY_LEN + 1),
        ]
    })
}

/// The moving-window expiry of each valid key.
const MOVING_EXPIRY: [u64; 5] = [1, 3, 5, 2, MAX_EXPIRY];
/// The sliding-window expiry of each valid key.
const SLIDING_EXPIRY: [u64; 5] = [1, 2, 5, 3, MAX_EXPIRY];

/// Values at and past every limit, and zero.
const SPECIAL: &[u64] = &[
    0,
    0,
    0,
    MAX_AMOUNT,
    MAX_AMOUNT + 1,
    MAX_EXPIRY,
    MAX_EXPIRY + 1,
    MAX_MOVING_WINDOW_LIMIT,
    MAX_MOVING_WINDOW_LIMIT + 1,
    MAX_SLIDING_LIMIT,
    MAX_SLIDING_LIMIT + 1,
    MAX_COUNT,
    u64::MAX,
];

/// A key index: mostly the four short keys, sometimes the longest valid
/// one or the one too long.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Key(u8);

impl Key {
    fn index(self) -> usize {
        match self.0 % 32 {
            30 => 4,
            31 => 5,
            n => usize::from(n % 4),
        }
    }
    fn name(self) -> &'static str {
        &keys()[self.index()]
    }
}

/// A number argument: usually in its small range, sometimes zero or huge.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Num(u8);

impl Num {
    fn resolve(self, low: u64, high: u64) -> u64 {
        let special = 256 - SPECIAL.len();
        match usize::from(self.0).checked_sub(special) {
            Some(i) => SPECIAL[i],
            None => low + u64::from(self.0) % (high - low + 1),
        }
    }

    /// An expiry for a key whose windows have a fixed expiry: that expiry,
    /// or an invalid one.
    fn window_expiry(self, fixed: Option<u64>) -> u64 {
        let v = self.resolve(1, 5);
        match fixed {
            Some(fixed) if validate_expiry(v).is_ok() => fixed,
            _ => v,
        }
    }
}

/// One operation on the storage.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// `incr(key, expiry 1..=5, elastic, amount 1..=20)`.
    Incr {
        key: Key,
        expiry: Num,
        elastic: bool,
        amount: Num,
    },
    /// `get(key)`.
    Get { key: Key },
    /// `get_expiry(key)`.
    GetExpiry { key: Key },
    /// `acquire_entry(key, limit 1..=8, expiry, amount 1..=8)`.
    AcquireEntry {
        key: Key,
        limit: Num,
        expiry: Num,
        amount: Num,
    },
    /// `get_moving_window(key, limit 1..=8, expiry)`.
    GetMovingWindow { key: Key, limit: Num, expiry: Num },
    /// `acquire_sliding_window_entry(key, limit 1..=8, expiry, amount 1..=8)`.
    AcquireSliding {
        key: Key,
        limit: Num,
        expiry: Num,
        amount: Num,
    },
    /// `get_sliding_window(key, expiry)`.
    GetSliding { key: Key, expiry: Num },
    /// `clear_sliding_window(key, expiry)`.
    ClearSliding { key: Key },
    /// `clear(key)`.
    Clear { key: Key },
    /// `reset()`.
    Reset,
    /// Moves the clock 0..3000 ms forward.
    Advance { ms: u16 },
}

/// One opcode byte (modulo 11, in the order of [`Op`]'s variants), then the
/// variant's fields, one byte each (two for `Advance`).
impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.arbitrary::<u8>()? % 11 {
            0 => Op::Incr {
                key: u.arbitrary()?,
                expiry: u.arbitrary()?,
                elastic: u.arbitrary()?,
                amount: u.arbitrary()?,
            },
            1 => Op::Get {
                key: u.arbitrary()?,
            },
            2 => Op::GetExpiry {
                key: u.arbitrary()?,
            },
            3 => Op::AcquireEntry {
                key: u.arbitrary()?,
                limit: u.arbitrary()?,
                expiry: u.arbitrary()?,
                amount: u.arbitrary()?,
            },
            4 => Op::GetMovingWindow {
                key: u.arbitrary()?,
                limit: u.arbitrary()?,
                expiry: u.arbitrary()?,
            },
            5 => Op::AcquireSliding {
                key: u.arbitrary()?,
                limit: u.arbitrary()?,
                expiry: u.arbitrary()?,
                amount: u.arbitrary()?,
            },
            6 => Op::GetSliding {
                key: u.arbitrary()?,
                expiry: u.arbitrary()?,
            },
            7 => Op::ClearSliding {
                key: u.arbitrary()?,
            },
            8 => Op::Clear {
                key: u.arbitrary()?,
            },
            9 => Op::Reset,
            _ => Op::Advance { ms: u.arbitrary()? },
        })
    }
}

/// One fuzz input: the clock's origin and the operations.
#[derive(Debug, Clone)]
pub struct Input {
    /// Index into [`ORIGINS`].
    pub origin: u8,
    /// Applied in order.
    pub ops: Vec<Op>,
}

impl Input {
    /// Decodes an input: the origin byte, then operations until the bytes
    /// run out (a truncated last operation reads zeros).
    pub fn decode(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        let origin = u.arbitrary().unwrap_or(0);
        let mut ops = Vec::new();
        while !u.is_empty() {
            match u.arbitrary() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        Input { origin, ops }
    }
}

/// The model's error: the call's arguments are out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

type R<T> = Result<T, Invalid>;

fn check_key(key: &str) -> R<()> {
    (key.len() <= MAX_KEY_LEN).then_some(()).ok_or(Invalid)
}

fn check_range(v: u64, max: u64) -> R<()> {
    (1..=max).contains(&v).then_some(()).ok_or(Invalid)
}

/// Moving-window entries of one key, newest first, as (timestamp ms, how many).
#[derive(Debug, Default, Clone)]
struct Log {
    runs: Vec<(u64, u64)>,
    newest_ms: u64,
    longest_expiry_ms: u64,
}

impl Log {
    /// The timestamp of the entry `index` places behind the newest.
    fn at(&self, mut index: u64) -> Option<u64> {
        for &(ts, n) in &self.runs {
            if index < n {
                return Some(ts);
            }
            index -= n;
        }
        None
    }
}

/// The reference model.
#[derive(Debug)]
pub struct Model {
    origin_s: u64,
    now: u64,
    /// key -> (count, expires at, clock nanos)
    counters: HashMap<String, (u64, u64)>,
    logs: HashMap<String, Log>,
    /// (key, window index on the Unix time line) -> count
    buckets: HashMap<(String, u64), u64>,
    /// key -> expiry of its sliding window, seconds
    sliding_expiry: HashMap<String, u64>,
}

impl Model {
    /// An empty model whose clock starts at Unix time `origin_s`.
    pub fn new(origin_s: u64) -> Self {
        Model {
            origin_s,
            now: 0,
            counters: HashMap::new(),
            logs: HashMap::new(),
            buckets: HashMap::new(),
            sliding_expiry: HashMap::new(),
        }
    }

    fn to_unix(&self, nanos: u64) -> f64 {
        self.origin_s as f64 + nanos as f64 / 1e9
    }

    fn unix_nanos(&self) -> u64 {
        self.origin_s * NANOS + self.now
    }

    /// Moves time forward.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms * NANOS_PER_MS;
    }

    fn live_counter(&self, key: &str) -> Option<(u64, u64)> {
        self.counters
            .get(key)
            .copied()
            .filter(|&(_, expires)| expires > self.now)
    }

    /// `Storage::incr`.
    pub fn incr(&mut self, key: &str, expiry: u64, elastic: bool, amount: u64) -> R<u64> {
        check_key(key)?;
        check_range(expiry, MAX_EXPIRY)?;
        check_range(amount, MAX_AMOUNT)?;
        let window_end = self.now + expiry * NANOS;
        let (count, expires) = match self.live_counter(key) {
            None => (amount, window_end),
            Some((count, expires)) => {
                let count = count + amount;
                if count > MAX_COUNT {
                    return Err(Invalid);
                }
                (count, if elastic { window_end } else { expires })
            }
        };
        self.counters.insert(key.to_owned(), (count, expires));
        Ok(count)
    }

    /// `Storage::get`.
    pub fn get(&self, key: &str) -> R<u64> {
        check_key(key)?;
        Ok(self.live_counter(key).map_or(0, |(c, _)| c))
    }

    /// `Storage::get_expiry`.
    pub fn get_expiry(&self, key: &str) -> R<f64> {
        check_key(key)?;
        Ok(self
            .live_counter(key)
            .map_or(0.0, |(_, expires)| self.to_unix(expires)))
    }

    fn now_ms(&self) -> u64 {
        self.now / NANOS_PER_MS
    }

    /// `MovingWindowSupport::acquire_entry`.
    pub fn acquire_entry(&mut self, key: &str, limit: u64, expiry: u64, amount: u64) -> R<bool> {
        check_key(key)?;
        check_range(expiry, MAX_EXPIRY)?;
        check_range(amount, MAX_AMOUNT)?;
        check_range(limit, MAX_MOVING_WINDOW_LIMIT)?;
        if amount > limit {
            return Ok(false);
        }
        let now_ms = self.now_ms();
        let expiry_ms = expiry * 1000;
        let log = self.logs.entry(key.to_owned()).or_default();
        if let Some(ts) = log.at(limit - amount) {
            // Inside the window while `ts >= now - expiry`, as in `limits`.
            if ts + expiry_ms >= now_ms {
                return Ok(false);
            }
        }
        log.runs.insert(0, (now_ms, amount));
        log.newest_ms = now_ms;
        log.longest_expiry_ms = log.longest_expiry_ms.max(expiry_ms);
        Ok(true)
    }

    /// `MovingWindowSupport::get_moving_window`.
    pub fn get_moving_window(&self, key: &str, limit: u64, expiry: u64) -> R<MovingWindow> {
        check_key(key)?;
        check_range(expiry, MAX_EXPIRY)?;
        check_range(limit, MAX_MOVING_WINDOW_LIMIT)?;
        let (now_ms, expiry_ms) = (self.now_ms(), expiry * 1000);
        let mut count = 0;
        let mut oldest = None;
        if let Some(log) = self.logs.get(key) {
            'runs: for &(ts, n) in &log.runs {
                if ts + expiry_ms < now_ms {
                    break;
                }
                for _ in 0..n {
                    if count == limit {
                        break 'runs;
                    }
                    count += 1;
                    oldest = Some(ts);
                }
            }
        }
        let start = oldest.map_or(self.to_unix(self.now), |ms| self.to_unix(ms * NANOS_PER_MS));
        Ok(MovingWindow { start, count })
    }

    /// (window length in nanos, current index, nanos elapsed in it, previous, current)
    fn sliding_state(&self, key: &str, expiry: u64) -> (u64, u64, u64, u64, u64) {
        let window = expiry * NANOS;
        let t = self.unix_nanos();
        let (index, elapsed) = (t / window, t % window);
        let bucket = |i: u64| self.buckets.get(&(key.to_owned(), i)).copied().unwrap_or(0);
        let previous = index.checked_sub(1).map_or(0, bucket);
        (window, index, elapsed, previous, bucket(index))
    }

    /// `SlidingWindowCounterSupport::acquire_sliding_window_entry`.
    pub fn acquire_sliding(&mut self, key: &str, limit: u64, expiry: u64, amount: u64) -> R<bool> {
        check_key(key)?;
        check_range(expiry, MAX_EXPIRY)?;
        check_range(amount, MAX_AMOUNT)?;
        check_range(limit, MAX_SLIDING_LIMIT)?;
        if amount > limit {
            return Ok(false);
        }
        let (window, index, elapsed, previous, current) = self.sliding_state(key, expiry);
        let weighted = (u128::from(previous) * u128::from(window - elapsed) / u128::from(window))
            as u64
            + current;
        if weighted + amount > limit {
            return Ok(false);
        }
        *self.buckets.entry((key.to_owned(), index)).or_default() += amount;
        self.sliding_expiry.insert(key.to_owned(), expiry);
        Ok(true)
    }

    /// `SlidingWindowCounterSupport::get_sliding_window`.
    pub fn get_sliding(&self, key: &str, expiry: u64) -> R<SlidingWindow> {
        check_key(key)?;
        check_range(expiry, MAX_EXPIRY)?;
        let (window, _, elapsed, previous, current) = self.sliding_state(key, expiry);
        let remaining = Duration::from_nanos(window - elapsed).as_secs_f64();
        Ok(SlidingWindow {
            previous_count: previous,
            previous_expires_in: if previous == 0 { 0.0 } else { remaining },
            current_count: current,
            current_expires_in: remaining + expiry as f64,
        })
    }

    /// `SlidingWindowCounterSupport::clear_sliding_window`.
    pub fn clear_sliding(&mut self, key: &str) -> R<()> {
        check_key(key)?;
        self.buckets.retain(|(k, _), _| k != key);
        self.sliding_expiry.remove(key);
        Ok(())
    }

    /// `Storage::clear`.
    pub fn clear(&mut self, key: &str) -> R<()> {
        check_key(key)?;
        self.counters.remove(key);
        self.logs.remove(key);
        self.clear_sliding(key)
    }

    /// `Storage::reset`: how many keys still held something, per kind.
    pub fn reset(&mut self) -> R<Option<u64>> {
        let now = self.now;
        let counters = self.counters.values().filter(|(_, e)| *e > now).count();
        let logs = self
            .logs
            .values()
            .filter(|l| (l.newest_ms + l.longest_expiry_ms + 1) * NANOS_PER_MS > now)
            .count();
        let sliding = self
            .sliding_expiry
            .keys()
            .filter(|key| {
                let (_, _, _, previous, current) =
                    self.sliding_state(key, self.sliding_expiry[*key]);
                previous + current > 0
            })
            .count();
        self.counters.clear();
        self.logs.clear();
        self.buckets.clear();
        self.sliding_expiry.clear();
        Ok(Some((counters + logs + sliding) as u64))
    }
}

/// Compares one result of the engine with the model's.
fn same<T: PartialEq + std::fmt::Debug>(
    step: usize,
    op: &Op,
    engine: limitstore::Result<T>,
    model: R<T>,
) {
    match (engine, model) {
        (Ok(e), Ok(m)) => assert_eq!(e, m, "step {step}: {op:?}: engine vs model"),
        (Err(e), Err(Invalid)) => assert_eq!(
            e.kind(),
            ErrorKind::InvalidArgument,
            "step {step}: {op:?}: {e}"
        ),
        (e, m) => panic!("step {step}: {op:?}: engine {e:?}, model {m:?}"),
    }
}

/// Applies `input` to a fresh engine and a fresh model, asserting that they
/// agree after every operation.
pub fn run(input: &Input) {
    let origin_s = ORIGINS[usize::from(input.origin) % ORIGINS.len()];
    let clock = FakeClock::with_unix_origin(origin_s as f64);
    let storage = MemoryStorage::builder().clock(clock.clone()).build();
    let mut model = Model::new(origin_s);
    for (step, op) in input.ops.iter().enumerate() {
        apply(step, op, &storage, &clock, &mut model);
    }
}

fn fixed(expiries: &[u64; 5], key: Key) -> Option<u64> {
    expiries.get(key.index()).copied()
}

fn apply(step: usize, op: &Op, s: &MemoryStorage<FakeClock>, clock: &FakeClock, m: &mut Model) {
    match *op {
        Op::Incr {
            key,
            expiry,
            elastic,
            amount,
        } => {
            let (k, e, a) = (key.name(), expiry.resolve(1, 5), amount.resolve(1, 20));
            same(step, op, s.incr(k, e, elastic, a), m.incr(k, e, elastic, a));
        }
        Op::Get { key } => same(step, op, s.get(key.name()), m.get(key.name())),
        Op::GetExpiry { key } => same(step, op, s.get_expiry(key.name()), m.get_expiry(key.name())),
        Op::AcquireEntry {
            key,
            limit,
            expiry,
            amount,
        } => {
            let k = key.name();
            let e = expiry.window_expiry(fixed(&MOVING_EXPIRY, key));
            let (l, a) = (limit.resolve(1, 8), amount.resolve(1, 8));
            same(
                step,
                op,
                s.acquire_entry(k, l, e, a),
                m.acquire_entry(k, l, e, a),
            );
        }
        Op::GetMovingWindow { key, limit, expiry } => {
            let k = key.name();
            let e = expiry.window_expiry(fixed(&MOVING_EXPIRY, key));
            let l = limit.resolve(1, 8);
            same(
                step,
                op,
                s.get_moving_window(k, l, e),
                m.get_moving_window(k, l, e),
            );
        }
        Op::AcquireSliding {
            key,
            limit,
            expiry,
            amount,
        } => {
            let k = key.name();
            let e = expiry.window_expiry(fixed(&SLIDING_EXPIRY, key));
            let (l, a) = (limit.resolve(1, 8), amount.resolve(1, 8));
            same(
                step,
                op,
                s.acquire_sliding_window_entry(k, l, e, a),
                m.acquire_sliding(k, l, e, a),
            );
        }
        Op::GetSliding { key, expiry } => {
            let k = key.name();
            let e = expiry.window_expiry(fixed(&SLIDING_EXPIRY, key));
            same(step, op, s.get_sliding_window(k, e), m.get_sliding(k, e));
        }
        Op::ClearSliding { key } => {
            let k = key.name();
            let e = fixed(&SLIDING_EXPIRY, key).unwrap_or(1);
            same(step, op, s.clear_sliding_window(k, e), m.clear_sliding(k));
        }
        Op::Clear { key } => same(step, op, s.clear(key.name()), m.clear(key.name())),
        Op::Reset => same(step, op, s.reset(), m.reset()),
        Op::Advance { ms } => {
            let ms = u64::from(ms % 3000);
            clock.advance(Duration::from_millis(ms));
            m.advance(ms);
        }
    }
}
