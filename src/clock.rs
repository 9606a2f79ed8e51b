//! Time sources.
//!
//! Every piece of window logic reads time through a [`Clock`], never through
//! `SystemTime::now()`, so tests can drive time with a [`FakeClock`] instead of
//! sleeping. A clock reports monotonic nanoseconds since its own origin and the
//! wall-clock time of that origin, from which wall-clock timestamps (as returned
//! by [`Storage::get_expiry`](crate::Storage::get_expiry)) are derived.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The clock a [`MemoryStorage`](crate::MemoryStorage) reads unless told
/// otherwise: the coarse clock, whose millisecond resolution matches the
/// engine's (windows and timestamps are kept in milliseconds).
pub type DefaultClock = CoarseClock;

/// A source of monotonic time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Nanoseconds elapsed since this clock's origin. Never decreases.
    fn now(&self) -> u64;

    /// Wall-clock time of the origin, in seconds since the Unix epoch.
    fn unix_origin(&self) -> f64;

    /// The current wall-clock time in seconds since the Unix epoch.
    fn unix_now(&self) -> f64 {
        self.to_unix(self.now())
    }

    /// Converts a reading of [`now`](Clock::now) into Unix seconds.
    fn to_unix(&self, nanos: u64) -> f64 {
        self.unix_origin() + nanos as f64 / 1e9
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
    fn unix_origin(&self) -> f64 {
        (**self).unix_origin()
    }
}

/// The wall clock, in Unix seconds: the one place the crate reads
/// `SystemTime` (clocks anchor their origin to it; remote backends, whose
/// windows live on a server, stamp their operations with it).
pub(crate) fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The real clock: the CPU's time-stamp counter through `quanta`, anchored to
/// the wall clock once at construction.
///
/// Each [`now`](Clock::now) costs one TSC read (about 10 ns).
#[derive(Clone)]
pub struct SystemClock {
    clock: quanta::Clock,
    origin: quanta::Instant,
    unix_origin: f64,
}

impl SystemClock {
    /// Creates a clock whose origin is now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.now();
        SystemClock {
            clock,
            origin,
            unix_origin: wall_now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SystemClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemClock")
            .field("unix_origin", &self.unix_origin)
            .finish()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> u64 {
        self.clock
            .now()
            .saturating_duration_since(self.origin)
            .as_nanos() as u64
    }
    fn unix_origin(&self) -> f64 {
        self.unix_origin
    }
}

/// A cheaper, coarser real clock: reads a timestamp that a background thread
/// (`quanta`'s upkeep thread, shared by the whole process) refreshes every
/// millisecond. A read costs about 2 ns instead of 10 ns, at the price of up to
/// one millisecond of lag, which no window of a second or more can notice.
#[derive(Clone)]
pub struct CoarseClock {
    inner: SystemClock,
    upkeep: bool,
}

static UPKEEP: OnceLock<Option<quanta::Handle>> = OnceLock::new();

impl CoarseClock {
    /// Starts (once per process) the upkeep thread and returns a clock reading it.
    /// If the thread cannot be started the clock falls back to precise reads.
    pub fn new() -> Self {
        let upkeep = UPKEEP
            .get_or_init(|| quanta::Upkeep::new(Duration::from_millis(1)).start().ok())
            .is_some();
        CoarseClock {
            inner: SystemClock::new(),
            upkeep,
        }
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CoarseClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoarseClock")
            .field("upkeep", &self.upkeep)
            .field("unix_origin", &self.inner.unix_origin)
            .finish()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> u64 {
        if self.upkeep {
            let recent = self.inner.clock.recent();
            // Before the first upkeep tick `recent` may still lag the origin.
            recent
                .saturating_duration_since(self.inner.origin)
                .as_nanos() as u64
        } else {
            self.inner.now()
        }
    }
    fn unix_origin(&self) -> f64 {
        self.inner.unix_origin
    }
}

/// A manual clock for tests: time only moves when told to. Clones share the
/// same time, so a test keeps one handle and gives another to the storage.
///
/// ```
/// use limitstore::{Clock, FakeClock};
/// use std::time::Duration;
/// let clock = FakeClock::new();
/// let seen_by_storage = clock.clone();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(seen_by_storage.now(), 2_000_000_000);
/// ```
#[derive(Clone)]
pub struct FakeClock {
    nanos: Arc<AtomicU64>,
    unix_origin: f64,
}

impl FakeClock {
    /// The wall-clock time a new fake clock starts at (2023-11-14T22:13:20Z).
    pub const DEFAULT_UNIX_ORIGIN: f64 = 1_700_000_000.0;

    /// A clock at zero whose origin is [`DEFAULT_UNIX_ORIGIN`](Self::DEFAULT_UNIX_ORIGIN).
    pub fn new() -> Self {
        Self::with_unix_origin(Self::DEFAULT_UNIX_ORIGIN)
    }

    /// A clock at zero whose origin is the given Unix time in seconds.
    pub fn with_unix_origin(unix_origin: f64) -> Self {
        FakeClock {
            nanos: Arc::new(AtomicU64::new(0)),
            unix_origin,
        }
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Moves time to `since_origin`, which must not be earlier than now
    /// (a monotonic clock never goes back); earlier values are ignored.
    pub fn set(&self, since_origin: Duration) {
        let t = u64::try_from(since_origin.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(t, Ordering::SeqCst);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeClock")
            .field("nanos", &self.nanos.load(Ordering::Relaxed))
            .field("unix_origin", &self.unix_origin)
            .finish()
    }
}

impl Clock for FakeClock {
    #[inline]
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
    fn unix_origin(&self) -> f64 {
        self.unix_origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_near_wall_time() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!((c.unix_now() - wall_now()).abs() < 1.0);
    }

    #[test]
    fn coarse_clock_advances() {
        let c = CoarseClock::new();
        let a = c.now();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now() > a);
        assert!((c.unix_now() - wall_now()).abs() < 1.0);
    }

    #[test]
    fn fake_clock_moves_only_forward() {
        let c = FakeClock::new();
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), 1_500_000_000);
        c.set(Duration::from_secs(1));
        assert_eq!(c.now(), 1_500_000_000);
        assert_eq!(c.unix_now(), FakeClock::DEFAULT_UNIX_ORIGIN + 1.5);
    }
}
