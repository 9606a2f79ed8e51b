//! [`AsyncStorage`] for the storages that never wait: the memory engine and
//! the write-behind storage answer every call from memory, so their futures
//! are ready at the first poll and need no thread hand-off. Each of them
//! implements it in its own module with [`answer_in_place!`], and says how
//! it answers a hit with the window it leaves through [`WindowedHit`].

use super::BoxFuture;
use crate::error::Result;
use crate::storage::{
    moving_windows, sliding_counters, FixedWindow, LimitKey, MovingWindow, MovingWindowSupport,
    SlidingWindow, SlidingWindowCounterSupport, Storage,
};

/// A future ready at its first poll.
pub(crate) fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// Implements [`AsyncStorage`](super::AsyncStorage) and its moving- and
/// sliding-window twins for a [`WindowedHit`] storage by answering each call
/// in place: `answer_in_place!([generics] Type)`.
macro_rules! answer_in_place {
    ([$($generics:tt)*] $ty:ty) => {
        const _: () = {
            use $crate::aio::inline::{ready, WindowedHit};
            use $crate::aio::{
                AsyncMovingWindowSupport, AsyncSlidingWindowCounterSupport, AsyncStorage, BoxFuture,
            };
            use $crate::error::Result;
            use $crate::storage::{
                moving_windows, sliding_counters, FixedWindow, LimitKey, MovingWindow,
                SlidingWindow, Storage,
            };

            /// Answers in place: every future is ready at its first poll.
            impl<$($generics)*> AsyncStorage for $ty {
                fn incr<'a>(
                    &'a self,
                    key: &'a str,
                    expiry: u64,
                    elastic_expiry: bool,
                    amount: u64,
                ) -> BoxFuture<'a, Result<u64>> {
                    ready(Storage::incr(self, key, expiry, elastic_expiry, amount))
                }

                fn incr_within<'a>(
                    &'a self,
                    key: &'a str,
                    expiry: u64,
                    elastic_expiry: bool,
                    amount: u64,
                    limit: u64,
                ) -> BoxFuture<'a, Result<bool>> {
                    ready(Storage::incr_within(
                        self,
                        key,
                        expiry,
                        elastic_expiry,
                        amount,
                        limit,
                    ))
                }

                fn incr_within_and_window<'a>(
                    &'a self,
                    key: &'a str,
                    expiry: u64,
                    elastic_expiry: bool,
                    amount: u64,
                    limit: u64,
                ) -> BoxFuture<'a, Result<(bool, FixedWindow)>> {
                    ready(self.windowed(key, expiry, elastic_expiry, amount, limit))
                }

                fn incr_within_key<'a>(
                    &'a self,
                    key: LimitKey<'a>,
                    expiry: u64,
                    elastic_expiry: bool,
                    amount: u64,
                    limit: u64,
                ) -> BoxFuture<'a, Result<bool>> {
                    ready(Storage::incr_within_key(
                        self,
                        key,
                        expiry,
                        elastic_expiry,
                        amount,
                        limit,
                    ))
                }

                fn incr_within_and_window_key<'a>(
                    &'a self,
                    key: LimitKey<'a>,
                    expiry: u64,
                    elastic_expiry: bool,
                    amount: u64,
                    limit: u64,
                ) -> BoxFuture<'a, Result<(bool, FixedWindow)>> {
                    ready(self.windowed_key(key, expiry, elastic_expiry, amount, limit))
                }

                fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64>> {
                    ready(Storage::get(self, key))
                }

                fn get_expiry<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<f64>> {
                    ready(Storage::get_expiry(self, key))
                }

                fn check(&self) -> BoxFuture<'_, bool> {
                    ready(Storage::check(self))
                }

                fn reset(&self) -> BoxFuture<'_, Result<Option<u64>>> {
                    ready(Storage::reset(self))
                }

                fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
                    ready(Storage::clear(self, key))
                }

                fn unix_now(&self) -> f64 {
                    Storage::unix_now(self)
                }

                fn elastic_expiry(&self) -> bool {
                    Storage::elastic_expiry(self)
                }

                fn moving_window(&self) -> Option<&dyn AsyncMovingWindowSupport> {
                    Storage::moving_window(self).map(|_| self as _)
                }

                fn sliding_window(&self) -> Option<&dyn AsyncSlidingWindowCounterSupport> {
                    Storage::sliding_window(self).map(|_| self as _)
                }
            }

            impl<$($generics)*> AsyncMovingWindowSupport for $ty {
                fn acquire_entry<'a>(
                    &'a self,
                    key: &'a str,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<bool>> {
                    ready(
                        moving_windows(self)
                            .and_then(|w| w.acquire_entry(key, limit, expiry, amount)),
                    )
                }

                fn get_moving_window<'a>(
                    &'a self,
                    key: &'a str,
                    limit: u64,
                    expiry: u64,
                ) -> BoxFuture<'a, Result<MovingWindow>> {
                    ready(
                        moving_windows(self).and_then(|w| w.get_moving_window(key, limit, expiry)),
                    )
                }

                fn acquire_entry_and_window<'a>(
                    &'a self,
                    key: &'a str,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<(bool, MovingWindow)>> {
                    ready(self.moving_windowed(key, limit, expiry, amount))
                }

                fn acquire_entry_key<'a>(
                    &'a self,
                    key: LimitKey<'a>,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<bool>> {
                    ready(
                        moving_windows(self)
                            .and_then(|w| w.acquire_entry_key(key, limit, expiry, amount)),
                    )
                }

                fn acquire_entry_and_window_key<'a>(
                    &'a self,
                    key: LimitKey<'a>,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<(bool, MovingWindow)>> {
                    ready(self.moving_windowed_key(key, limit, expiry, amount))
                }
            }

            impl<$($generics)*> AsyncSlidingWindowCounterSupport for $ty {
                fn get_sliding_window<'a>(
                    &'a self,
                    key: &'a str,
                    expiry: u64,
                ) -> BoxFuture<'a, Result<SlidingWindow>> {
                    ready(sliding_counters(self).and_then(|c| c.get_sliding_window(key, expiry)))
                }

                fn acquire_sliding_window_entry<'a>(
                    &'a self,
                    key: &'a str,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<bool>> {
                    ready(sliding_counters(self).and_then(|c| {
                        c.acquire_sliding_window_entry(key, limit, expiry, amount)
                    }))
                }

                fn acquire_sliding_window_entry_and_window<'a>(
                    &'a self,
                    key: &'a str,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<(bool, SlidingWindow)>> {
                    ready(self.sliding_windowed(key, limit, expiry, amount))
                }

                fn acquire_sliding_window_entry_key<'a>(
                    &'a self,
                    key: LimitKey<'a>,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<bool>> {
                    ready(sliding_counters(self).and_then(|c| {
                        c.acquire_sliding_window_entry_key(key, limit, expiry, amount)
                    }))
                }

                fn acquire_sliding_window_entry_and_window_key<'a>(
                    &'a self,
                    key: LimitKey<'a>,
                    limit: u64,
                    expiry: u64,
                    amount: u64,
                ) -> BoxFuture<'a, Result<(bool, SlidingWindow)>> {
                    ready(self.sliding_windowed_key(key, limit, expiry, amount))
                }

                fn clear_sliding_window<'a>(
                    &'a self,
                    key: &'a str,
                    expiry: u64,
                ) -> BoxFuture<'a, Result<()>> {
                    ready(sliding_counters(self).and_then(|c| c.clear_sliding_window(key, expiry)))
                }
            }
        };
    };
}
pub(crate) use answer_in_place;

/// A hit and the window it leaves, on a storage that answers in place: by
/// default the hit, then the reads (`get` and `get_expiry`,
/// `get_moving_window`, `get_sliding_window`); the memory engine answers
/// each from one lookup.
pub(crate) trait WindowedHit: Storage {
    /// `incr_within` on `key`, and the counter as the hit leaves it.
    fn windowed(
        &self,
        key: &str,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, FixedWindow)> {
        fixed_hit(self, key, expiry, elastic_expiry, amount, limit)
    }

    /// [`windowed`](Self::windowed) on the key given as its parts.
    fn windowed_key(
        &self,
        key: LimitKey<'_>,
        expiry: u64,
        elastic_expiry: bool,
        amount: u64,
        limit: u64,
    ) -> Result<(bool, FixedWindow)> {
        key.with_str(|key| self.windowed(key, expiry, elastic_expiry, amount, limit))
    }

    /// `acquire_entry` on `key`, and the moving window as it leaves it.
    fn moving_windowed(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, MovingWindow)> {
        moving_windows(self).and_then(|w| moving_hit(w, key, limit, expiry, amount))
    }

    /// [`moving_windowed`](Self::moving_windowed) on the key given as its parts.
    fn moving_windowed_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, MovingWindow)> {
        key.with_str(|key| self.moving_windowed(key, limit, expiry, amount))
    }

    /// `acquire_sliding_window_entry` on `key`, and the counters as it
    /// leaves them.
    fn sliding_windowed(
        &self,
        key: &str,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, SlidingWindow)> {
        sliding_counters(self).and_then(|c| sliding_hit(c, key, limit, expiry, amount))
    }

    /// [`sliding_windowed`](Self::sliding_windowed) on the key given as its parts.
    fn sliding_windowed_key(
        &self,
        key: LimitKey<'_>,
        limit: u64,
        expiry: u64,
        amount: u64,
    ) -> Result<(bool, SlidingWindow)> {
        key.with_str(|key| self.sliding_windowed(key, limit, expiry, amount))
    }
}

/// `incr_within`, then the counter's count and expiry, on a synchronous
/// storage.
pub(super) fn fixed_hit<S: Storage + ?Sized>(
    storage: &S,
    key: &str,
    expiry: u64,
    elastic_expiry: bool,
    amount: u64,
    limit: u64,
) -> Result<(bool, FixedWindow)> {
    let within = storage.incr_within(key, expiry, elastic_expiry, amount, limit)?;
    let (count, expires_at) = (storage.get(key)?, storage.get_expiry(key)?);
    Ok((within, FixedWindow { count, expires_at }))
}

/// `acquire_entry`, then the window, on a synchronous storage.
pub(super) fn moving_hit(
    windows: &dyn MovingWindowSupport,
    key: &str,
    limit: u64,
    expiry: u64,
    amount: u64,
) -> Result<(bool, MovingWindow)> {
    let acquired = windows.acquire_entry(key, limit, expiry, amount)?;
    Ok((acquired, windows.get_moving_window(key, limit, expiry)?))
}

/// `acquire_sliding_window_entry`, then the counters, on a synchronous storage.
pub(super) fn sliding_hit(
    counters: &dyn SlidingWindowCounterSupport,
    key: &str,
    limit: u64,
    expiry: u64,
    amount: u64,
) -> Result<(bool, SlidingWindow)> {
    let acquired = counters.acquire_sliding_window_entry(key, limit, expiry, amount)?;
    Ok((acquired, counters.get_sliding_window(key, expiry)?))
}
