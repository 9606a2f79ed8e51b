//! Atomics used by the memory engine's cells and the write-behind node's
//! windows, swappable for `loom`'s under `--cfg limitstore_loom` so their
//! protocols can be model-checked.

#[cfg(limitstore_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(limitstore_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A 128-bit word updated by compare-and-swap as one unit (`cmpxchg16b` on
/// x86-64), so two related 64-bit values change together.
#[cfg(not(limitstore_loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct AtomicU128(portable_atomic::AtomicU128);

#[cfg(not(limitstore_loom))]
impl AtomicU128 {
    pub(crate) fn new(v: u128) -> Self {
        AtomicU128(portable_atomic::AtomicU128::new(v))
    }

    #[inline]
    pub(crate) fn load(&self) -> u128 {
        self.0.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn compare_exchange(&self, current: u128, new: u128) -> Result<u128, u128> {
        self.0
            .compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire)
    }
}

/// Under loom, a 128-bit atomic is modelled by a mutex around the value: each
/// load and each compare-and-swap is one linearizable step, which is what the
/// hardware instruction provides.
#[cfg(limitstore_loom)]
#[derive(Debug)]
pub(crate) struct AtomicU128(loom::sync::Mutex<u128>);

#[cfg(limitstore_loom)]
impl AtomicU128 {
    pub(crate) fn new(v: u128) -> Self {
        AtomicU128(loom::sync::Mutex::new(v))
    }

    pub(crate) fn load(&self) -> u128 {
        *self.0.lock().unwrap()
    }

    pub(crate) fn compare_exchange(&self, current: u128, new: u128) -> Result<u128, u128> {
        let mut v = self.0.lock().unwrap();
        if *v == current {
            *v = new;
            Ok(current)
        } else {
            Err(*v)
        }
    }
}

/// Waits a little in a spin loop (crossbeam's back-off; a yield under loom,
/// which must see every spinning thread give way).
#[derive(Debug, Default)]
pub(crate) struct Spin {
    #[cfg(not(limitstore_loom))]
    backoff: crossbeam_utils::Backoff,
}

impl Spin {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn wait(&self) {
        #[cfg(not(limitstore_loom))]
        self.backoff.snooze();
        #[cfg(limitstore_loom)]
        loom::thread::yield_now();
    }
}
