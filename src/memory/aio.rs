//! The memory engine's asynchronous twin: every call answers in place (its
//! futures are ready at the first poll), and a hit answers the window it
//! leaves from the same lookup.

use super::MemoryStorage;
use crate::aio::inline::{answer_in_place, WindowedHit};
use crate::clock::Clock;
use crate::error::Result;
use crate::storage::{FixedWindow, LimitKey, MovingWindow, SlidingWindow};

impl<C: Clock> WindowedHit for MemoryStorage<C> {
    fn windowed(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, FixedWindow)> {
        self.incr_within_and_window(key, expiry, elastic_expiry, amount, limit)
    }

    fn windowed_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, FixedWindow)> {
        self.incr_within_and_window_key(key, expiry, elastic_expiry, amount, limit)
    }

    fn moving_windowed(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, MovingWindow)> {
        self.acquire_entry_and_window(key, limit, expiry, amount)
    }

    fn moving_windowed_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, MovingWindow)> {
        self.acquire_entry_and_window_key(key, limit, expiry, amount)
    }

    fn sliding_windowed(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, SlidingWindow)> {
        self.acquire_sliding_window_entry_and_window(key, limit, expiry, amount)
    }

    fn sliding_windowed_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, SlidingWindow)> {
        self.acquire_sliding_window_entry_and_window_key(key, limit, expiry, amount)
    }
}

answer_in_place!([C: Clock] MemoryStorage<C>);
