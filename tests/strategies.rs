//! The strategies over the memory storage, after `limits`' `tests/test_strategy.py`,
//! run twice: through the synchronous limiters and through the asynchronous
//! ones (driven to completion here), which must decide alike.
//! Time is a `FakeClock` (origin 1_700_000_000, a multiple of 10 s), so
//! every window edge is exact and nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use limitstore::storage::MAX_AMOUNT;
use limitstore::{
    parse, Clock, ErrorKind, FakeClock, MemoryStorage, RateLimitItem, RateLimiter, Storage,
    Strategy,
};

type Mem = MemoryStorage<FakeClock>;

/// Through `limiter_for` and the synchronous limiters.
mod sync_api {
    use super::*;
    use limitstore::limiter_for;

    fn make(strategy: Strategy, storage: &Arc<Mem>) -> Box<dyn RateLimiter> {
        limiter_for(strategy, Arc::clone(storage) as Arc<dyn Storage>).unwrap()
    }

    fn make_dyn(
        strategy: Strategy,
        storage: Arc<dyn Storage>,
    ) -> limitstore::Result<Box<dyn RateLimiter>> {
        limiter_for(strategy, storage)
    }

    include!("strategies/cases.rs");
}

/// Through `async_limiter_for` and the asynchronous limiters: the memory
/// engine's own asynchronous API, or `Blocking` over another storage.
#[cfg(feature = "async")]
mod async_api {
    use super::*;
    // `AsyncStorage` stays unnamed: in scope, its methods would clash with
    // `Storage`'s in the cases.
    use limitstore::aio::{async_limiter_for, AsyncRateLimiter, Blocking};
    use limitstore::WindowStats;

    /// An asynchronous limiter answering the synchronous API, each call
    /// driven to completion on a current-thread runtime.
    struct Driven(Box<dyn AsyncRateLimiter>);

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        thread_local! {
            static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
        }
        RT.with(|rt| rt.block_on(future))
    }

    impl RateLimiter for Driven {
        fn hit(&self, item: &RateLimitItem, ids: &[&str], cost: u64) -> limitstore::Result<bool> {
            block_on(self.0.hit(item, ids, cost))
        }
        fn test(&self, item: &RateLimitItem, ids: &[&str], cost: u64) -> limitstore::Result<bool> {
            block_on(self.0.test(item, ids, cost))
        }
        fn get_window_stats(
            &self,
            item: &RateLimitItem,
            ids: &[&str],
        ) -> limitstore::Result<WindowStats> {
            block_on(self.0.get_window_stats(item, ids))
        }
        fn clear(&self, item: &RateLimitItem, ids: &[&str]) -> limitstore::Result<()> {
            block_on(self.0.clear(item, ids))
        }
        fn decide(
            &self,
            item: &RateLimitItem,
            ids: &[&str],
            cost: u64,
        ) -> limitstore::Result<limitstore::Decision> {
            block_on(self.0.decide(item, ids, cost))
        }
    }

    fn make(strategy: Strategy, storage: &Arc<Mem>) -> Box<dyn RateLimiter> {
        let storage = Arc::clone(storage) as Arc<dyn limitstore::aio::AsyncStorage>;
        Box::new(Driven(async_limiter_for(strategy, storage).unwrap()))
    }

    fn make_dyn(
        strategy: Strategy,
        storage: Arc<dyn Storage>,
    ) -> limitstore::Result<Box<dyn RateLimiter>> {
        let storage = Arc::new(Blocking::new(storage)) as Arc<dyn limitstore::aio::AsyncStorage>;
        let limiter = async_limiter_for(strategy, storage)?;
        Ok(Box::new(Driven(limiter)) as Box<dyn RateLimiter>)
    }

    include!("strategies/cases.rs");
}
