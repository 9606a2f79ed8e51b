//! Write-behind: each node answers hits from its own memory and reconciles
//! with a shared remote in the background, so a hit costs no round trip.
//!
//! ```text
//! cargo run --example write_behind                                  # an in-process remote
//! cargo run --example write_behind -- redis://127.0.0.1:6379         # a real Redis
//! ```
//!
//! On a real remote it writes only the keys of its own namespace and
//! clears them at the end.

use std::sync::Arc;
use std::time::Duration;

use limitstore::write_behind::{sync_target_from_string, WriteBehind};
use limitstore::{FixedWindowRateLimiter, Options, RateLimitItem, RateLimiter};

fn main() -> limitstore::Result<()> {
    let remote = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    let (admitted, global) = run(&remote)?;
    println!("two nodes admitted {admitted}; the remote counted {global}");
    Ok(())
}

/// Two nodes over the remote `uri`, 30 hits each on `100/minute`, then a
/// flush; returns the hits admitted and the global count a node reads back.
pub fn run(uri: &str) -> limitstore::Result<(u64, u64)> {
    let remote = sync_target_from_string(uri, &Options::new())?;
    let node = |id: &str| {
        WriteBehind::builder(remote.clone())
            .node_id(id)
            .sync_interval(Duration::from_millis(50))
            .start()
            .map(Arc::new)
    };
    let (a, b) = (node("web-1")?, node("web-2")?);
    let item = RateLimitItem::per_minute(100)?.with_namespace("limitstore-example");
    let (la, lb) = (
        FixedWindowRateLimiter::new(a.clone()),
        FixedWindowRateLimiter::new(b.clone()),
    );
    let mut admitted = 0;
    for _ in 0..30 {
        admitted += u64::from(la.hit(&item, &["alice"], 1)?);
        admitted += u64::from(lb.hit(&item, &["alice"], 1)?);
    }
    // Deliver what each node counted. A node learns the others' hits when
    // it syncs: web-2, syncing last, reads back both nodes' totals.
    a.flush()?;
    b.flush()?;
    let global = lb.get_window_stats(&item, &["alice"])?;
    la.clear(&item, &["alice"])?;
    Ok((admitted, item.amount() - global.remaining))
}
