#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "async")]
pub mod aio;
mod backends;
mod clock;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod item;
#[cfg(feature = "memcached")]
pub mod memcached;
mod memory;
#[cfg(feature = "mongodb")]
pub mod mongodb;
mod parse;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "async")]
mod rt;
pub mod rush;
pub mod storage;
mod strategy;
mod sync;
#[cfg(feature = "tower")]
pub mod tower;
pub mod write_behind;

#[cfg(feature = "etcd")]
pub use self::etcd::EtcdStorage;
#[cfg(feature = "memcached")]
pub use self::memcached::MemcachedStorage;
#[cfg(feature = "mongodb")]
pub use self::mongodb::MongoDbStorage;
#[cfg(all(feature = "redis", feature = "async"))]
pub use self::redis::{AsyncRedisClusterStorage, AsyncRedisSentinelStorage, AsyncRedisStorage};
#[cfg(feature = "redis")]
pub use self::redis::{RedisClusterStorage, RedisSentinelStorage, RedisStorage};
pub use backends::{backend_of, storage_from_string};
pub use clock::{Clock, CoarseClock, DefaultClock, FakeClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use item::{Granularity, RateLimitItem, DEFAULT_NAMESPACE};
pub use memory::{MemoryStorage, MemoryStorageBuilder, DEFAULT_MAX_ENTRIES};
pub use parse::{parse, parse_many};
pub use storage::{
    register_storage, FixedWindow, LimitKey, Location, MovingWindow, MovingWindowSupport,
    OptionValue, Options, SlidingWindow, SlidingWindowCounterSupport, Storage, StorageFactory,
    StorageUri, TimestampedSlidingWindow, MAX_AMOUNT, MAX_EXPIRY, MAX_KEY_LEN,
    MAX_MOVING_WINDOW_LIMIT,
};
pub use strategy::{
    limiter_for, Decision, FixedWindowElasticExpiryRateLimiter, FixedWindowRateLimiter,
    MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter, Strategy, WindowStats,
};
