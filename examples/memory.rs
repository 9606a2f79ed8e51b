//! Per-client limits in process, no server: several limits on one client,
//! tested together and spent only when all of them pass.
//!
//! ```text
//! cargo run --example memory
//! ```

use limitstore::{parse_many, storage_from_string, FixedWindowRateLimiter, Options, RateLimiter};

fn main() -> limitstore::Result<()> {
    let admitted = run("memory://")?;
    println!("admitted {admitted} of 20 requests from 203.0.113.7");
    Ok(())
}

/// Sends 20 requests from one client through `5/second; 100/minute` on the
/// storage `uri`; returns how many were admitted.
pub fn run(uri: &str) -> limitstore::Result<u64> {
    let storage = storage_from_string(uri, &Options::new())?;
    let limiter = FixedWindowRateLimiter::new(storage);
    let limits = parse_many("5/second; 100/minute")?;
    let client = ["203.0.113.7"];
    let mut admitted = 0;
    for _ in 0..20 {
        // Test every limit first, so a refusal by one spends none of the others.
        let mut fits = true;
        for item in &limits {
            fits &= limiter.test(item, &client, 1)?;
        }
        if fits {
            for item in &limits {
                limiter.hit(item, &client, 1)?;
            }
            admitted += 1;
        }
    }
    let per_second = limiter.get_window_stats(&limits[0], &client)?;
    println!(
        "{}: {} left, window resets at Unix time {:.0}",
        limits[0], per_second.remaining, per_second.reset_time
    );
    Ok(admitted)
}
