//! limitstore: rate-limit storage for servers.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod error;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
pub mod storage;
mod sync;

#[cfg(feature = "redis")]
pub use self::redis::{RedisClusterStorage, RedisSentinelStorage, RedisStorage};
pub use clock::{Clock, CoarseClock, FakeClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use memory::{MemoryStorage, MemoryStorageBuilder};
pub use storage::{
    register_storage, storage_from_string, Location, MovingWindow, MovingWindowSupport,
    OptionValue, Options, SlidingWindow, SlidingWindowCounterSupport, Storage, StorageFactory,
    StorageUri, TimestampedSlidingWindow, MAX_AMOUNT, MAX_EXPIRY, MAX_KEY_LEN,
    MAX_MOVING_WINDOW_LIMIT,
};
