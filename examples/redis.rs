//! Two server instances sharing one quota through Redis, in the key layout
//! of Python `limits` (`LIMITS:LIMITER/...`), so Python services on the same
//! server count against the same limit.
//!
//! ```text
//! cargo run --example redis -- redis://127.0.0.1:6379
//! ```
//!
//! It writes only the keys of its own namespace (`limitstore-example`) and
//! clears them at the end.

use limitstore::{
    storage_from_string, MovingWindowRateLimiter, Options, RateLimitItem, RateLimiter,
};

fn main() -> limitstore::Result<()> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let (a, b) = run(&uri)?;
    println!("instance A admitted {a}, instance B admitted {b}: 10 in all");
    Ok(())
}

/// Two storages on the same Redis (as two processes would have), 8 hits
/// each on one moving-window limit of 10 per minute; returns what each
/// admitted.
pub fn run(uri: &str) -> limitstore::Result<(u64, u64)> {
    let item = RateLimitItem::per_minute(10)?.with_namespace("limitstore-example");
    let instance = || -> limitstore::Result<MovingWindowRateLimiter> {
        MovingWindowRateLimiter::new(storage_from_string(uri, &Options::new())?)
    };
    let (a, b) = (instance()?, instance()?);
    let user = ["user", "alice"];
    let (mut admitted_a, mut admitted_b) = (0, 0);
    for _ in 0..8 {
        admitted_a += u64::from(a.hit(&item, &user, 1)?);
        admitted_b += u64::from(b.hit(&item, &user, 1)?);
    }
    println!("key: LIMITS:{}", item.key_for(&user));
    a.clear(&item, &user)?;
    Ok((admitted_a, admitted_b))
}
