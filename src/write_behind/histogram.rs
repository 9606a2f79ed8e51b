//! A small log-linear latency histogram (HDR-like, about 3 % precision).

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: u64 = 32;
/// Values below this are counted exactly.
const LINEAR: u64 = 2 * SUB;
const BUCKETS: usize = 60 * SUB as usize;

/// Counts of nanosecond values in buckets whose width is 1/32 of their
/// lower bound (exact below 64 ns).
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    // v >> shift lies in [SUB, 2 * SUB).
    let shift = 63 - v.leading_zeros() as u64 - SUB.trailing_zeros() as u64;
    ((shift + 1) * SUB + ((v >> shift) - SUB)) as usize
}

fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = i / SUB - 1;
    (i % SUB + SUB) << shift
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let v = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(v).min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The lower bound of the bucket holding the `q`-quantile (0 when empty).
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(lower_bound(i));
            }
        }
        Duration::from_nanos(lower_bound(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i == last || i == last + 1 || v > 100_000, "{v}");
            last = i;
            let lo = lower_bound(i);
            assert!(
                lo <= v && (v - lo) as f64 <= v as f64 / 32.0 + 1.0,
                "{v} -> {lo}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for ns in 1..=1000u64 {
            h.record(Duration::from_nanos(ns));
        }
        let mut other = Histogram::new();
        other.record(Duration::from_secs(1));
        h.merge(&other);
        assert_eq!(h.len(), 1001);
        let p50 = h.quantile(0.5).as_nanos() as f64;
        assert!((p50 - 501.0).abs() <= 501.0 / 32.0 + 1.0, "{p50}");
        assert!(h.quantile(1.0) >= Duration::from_millis(900));
        assert_eq!(Histogram::new().quantile(0.99), Duration::ZERO);
    }
}
