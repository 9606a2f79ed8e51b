//! The moving window: a fixed-size ring of hit timestamps per key.
//!
//! The ring holds the last `capacity` entries (capacity >= limit). Admitting
//! `amount` entries under `limit` checks the entry `limit - amount` places
//! behind the newest, exactly like the list in `limits`' memory storage: if
//! that entry is still inside the window, admitting would put more than
//! `limit` entries in it.
//!
//! Writers reserve slots by compare-and-swap on `head` (after the check), then
//! fill them. Each slot packs the timestamp with a lap tag, so a reader can
//! tell a filled slot from one whose writer is still on its way (it waits a
//! moment) and from one already reused by a newer lap (it starts over).

use crate::sync::{AtomicU64, Ordering, Spin};

const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Timestamps are milliseconds since the clock's origin, in 40 bits (34 years).
pub(crate) const MAX_TIMESTAMP_MS: u64 = (1 << (64 - TAG_BITS)) - 1;

#[derive(Debug)]
pub(crate) struct Ring {
    /// Number of entries ever reserved.
    head: AtomicU64,
    slots: Box<[AtomicU64]>,
    /// Newest timestamp pushed (ms), for the entry's time to live.
    newest: AtomicU64,
    /// Longest expiry used (ms), for the entry's time to live.
    expiry: AtomicU64,
}

enum Slot {
    Filled(u64),
    Pending,
    Overwritten,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Ring {
            head: AtomicU64::new(0),
            slots: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            newest: AtomicU64::new(0),
            expiry: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The lap tag an entry at absolute index `index` is stored with.
    fn tag(&self, index: u64) -> u64 {
        (index / self.capacity() + 1) & TAG_MASK
    }

    fn read(&self, index: u64) -> Slot {
        let word = self.slots[(index % self.capacity()) as usize].load(Ordering::Acquire);
        let want = self.tag(index);
        let have = word & TAG_MASK;
        if have == want {
            Slot::Filled(word >> TAG_BITS)
        } else if have == want.wrapping_sub(1) & TAG_MASK {
            Slot::Pending
        } else {
            Slot::Overwritten
        }
    }

    /// Reads the entry at `index`, waiting for its writer if needed. `None`
    /// if it has already been overwritten by a newer lap.
    fn read_settled(&self, index: u64) -> Option<u64> {
        let spin = Spin::new();
        loop {
            match self.read(index) {
                Slot::Filled(ts) => return Some(ts),
                Slot::Overwritten => return None,
                Slot::Pending => spin.wait(),
            }
        }
    }

    fn write(&self, index: u64, ts: u64) {
        let slot = &self.slots[(index % self.capacity()) as usize];
        let previous_lap = self.tag(index).wrapping_sub(1) & TAG_MASK;
        // The previous occupant of this slot must be in place before we
        // replace it, or its late write could clobber ours.
        let spin = Spin::new();
        while slot.load(Ordering::Acquire) & TAG_MASK != previous_lap {
            spin.wait();
        }
        slot.store((ts << TAG_BITS) | self.tag(index), Ordering::Release);
    }

    /// Admits `amount` entries at `now_ms` if at most `limit` entries would be
    /// at most `expiry_ms` old. Requires `limit <= capacity`.
    pub(crate) fn acquire(&self, now_ms: u64, expiry_ms: u64, limit: u64, amount: u64) -> bool {
        debug_assert!(limit <= self.capacity());
        if amount > limit || amount == 0 {
            return false;
        }
        let now_ms = now_ms.min(MAX_TIMESTAMP_MS);
        let back = limit - amount;
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            if head > back {
                match self.read_settled(head - 1 - back) {
                    Some(ts) if ts.saturating_add(expiry_ms) >= now_ms => return false,
                    Some(_) => {}
                    None => {
                        head = self.head.load(Ordering::Acquire);
                        continue;
                    }
                }
            }
            match self.head.compare_exchange_weak(
                head,
                head + amount,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        for index in head..head + amount {
            self.write(index, now_ms);
        }
        self.newest.fetch_max(now_ms, Ordering::Relaxed);
        self.expiry.fetch_max(expiry_ms, Ordering::Relaxed);
        true
    }

    /// The number of entries at most `expiry_ms` old (looking at most `limit`
    /// back) and the timestamp of the oldest of them.
    pub(crate) fn window(&self, now_ms: u64, expiry_ms: u64, limit: u64) -> (u64, Option<u64>) {
        let head = self.head.load(Ordering::Acquire);
        let depth = limit.min(self.capacity()).min(head);
        let mut count = 0;
        let mut oldest = None;
        for index in (head - depth..head).rev() {
            match self.read_settled(index) {
                Some(ts) if ts.saturating_add(expiry_ms) >= now_ms => {
                    count += 1;
                    oldest = Some(oldest.map_or(ts, |o: u64| o.min(ts)));
                }
                // Entries are pushed in (nearly) time order: the first one
                // outside the window ends the scan.
                _ => break,
            }
        }
        (count, oldest)
    }

    /// A ring of `capacity` slots holding this ring's newest entries. Only
    /// called while no writer can touch `self` (the table's exclusive lock).
    pub(crate) fn grown(&self, capacity: usize) -> Ring {
        let new = Ring::new(capacity);
        let head = self.head.load(Ordering::Acquire);
        let keep = self.capacity().min(head);
        for (i, index) in (head - keep..head).enumerate() {
            if let Some(ts) = self.read_settled(index) {
                new.slots[i].store((ts << TAG_BITS) | new.tag(i as u64), Ordering::Relaxed);
            }
        }
        new.head.store(keep, Ordering::Release);
        new.newest
            .store(self.newest.load(Ordering::Relaxed), Ordering::Relaxed);
        new.expiry
            .store(self.expiry.load(Ordering::Relaxed), Ordering::Relaxed);
        new
    }

    /// When the newest entry has left the window, in milliseconds: an
    /// entry `expiry` old is still inside it, as in `limits`.
    pub(crate) fn expires_at_ms(&self) -> u64 {
        self.newest
            .load(Ordering::Relaxed)
            .saturating_add(self.expiry.load(Ordering::Relaxed))
            .saturating_add(1)
    }
}

#[cfg(all(test, not(limitstore_loom)))]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_inside_the_window() {
        let r = Ring::new(3);
        assert!(r.acquire(0, 1000, 3, 1));
        assert!(r.acquire(100, 1000, 3, 2));
        assert!(!r.acquire(200, 1000, 3, 1));
        assert_eq!(r.window(200, 1000, 3), (3, Some(0)));
        // An entry exactly `expiry` old is still inside the window (as in
        // `limits`: `timestamp >= now - expiry`); the first one leaves after 1000.
        assert!(!r.acquire(1000, 1000, 3, 1));
        assert_eq!(r.window(1000, 1000, 3), (3, Some(0)));
        assert!(r.acquire(1001, 1000, 3, 1));
        assert_eq!(r.window(1001, 1000, 3), (3, Some(100)));
        assert!(!r.acquire(1050, 1000, 3, 1));
        assert_eq!(r.expires_at_ms(), 2002);
    }

    #[test]
    fn amount_larger_than_limit_is_refused() {
        let r = Ring::new(10);
        assert!(!r.acquire(0, 1000, 10, 11));
        assert!(r.acquire(0, 1000, 10, 10));
        assert_eq!(r.window(0, 1000, 10).0, 10);
    }

    #[test]
    fn wraps_many_laps() {
        let r = Ring::new(4);
        for t in 0..1000u64 {
            assert!(r.acquire(t * 300, 1000, 4, 1), "at {t}");
        }
        assert_eq!(r.window(999 * 300, 1000, 4).0, 4);
    }

    #[test]
    fn growing_keeps_the_newest_entries() {
        let r = Ring::new(2);
        for t in 0..5 {
            assert!(r.acquire(t * 10, 1000, 2, 1) || t >= 2);
        }
        let g = r.grown(4);
        assert_eq!(g.window(20, 1000, 4), (2, Some(0)));
        assert!(g.acquire(30, 1000, 4, 2));
        assert!(!g.acquire(30, 1000, 4, 1));
    }
}

#[cfg(all(test, limitstore_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Three threads acquire one entry each on a limit of 2 in a ring that
    /// already went round once: exactly two succeed and the ring then holds
    /// two entries inside the window.
    #[test]
    fn concurrent_acquires_respect_the_limit() {
        loom::model(|| {
            let r = Arc::new(Ring::new(2));
            assert!(r.acquire(0, 10, 2, 2));
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let r = r.clone();
                    thread::spawn(move || r.acquire(100, 10, 2, 1))
                })
                .collect();
            let admitted = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|ok| *ok)
                .count();
            assert_eq!(admitted, 2);
            assert_eq!(r.window(100, 10, 2).0, 2);
        });
    }
}
