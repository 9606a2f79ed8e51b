//! limitstore: rate-limit storage for servers.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod error;
pub mod memory;
pub mod rush;
pub mod storage;
mod sync;

pub use clock::{Clock, CoarseClock, FakeClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use memory::{MemoryStorage, MemoryStorageBuilder};
pub use storage::{
    register_storage, storage_from_string, Location, MovingWindow, MovingWindowSupport,
    OptionValue, Options, SlidingWindow, SlidingWindowCounterSupport, Storage, StorageFactory,
    StorageUri, TimestampedSlidingWindow,
};
