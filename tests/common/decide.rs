//! `AsyncRateLimiter::decide` against the two calls it replaces.

use std::sync::Arc;

use limitstore::aio::{async_limiter_for, AsyncStorage};
use limitstore::{parse, Strategy};

/// On `storage`, for every strategy it supports: a sequence of decisions on
/// one identity answers exactly as `hit` followed by `get_window_stats` on a
/// twin identity (reset times within `slack` seconds, the calls being made
/// at slightly different times), admitting the limit and refusing past it.
pub async fn decide_answers_as_hit_then_stats(
    storage: Arc<dyn AsyncStorage>,
    tag: &str,
    slack: f64,
) {
    let item = parse("5/minute").unwrap();
    for strategy in Strategy::ALL {
        let Ok(limiter) = async_limiter_for(strategy, Arc::clone(&storage)) else {
            continue;
        };
        let decided = [tag, "decided", strategy.name()];
        let twin = [tag, "twin", strategy.name()];
        for (step, cost) in [1, 2, 6, 1, 1, 1, 5].into_iter().enumerate() {
            let decision = limiter.decide(&item, &decided, cost).await.unwrap();
            let admitted = limiter.hit(&item, &twin, cost).await.unwrap();
            let stats = limiter.get_window_stats(&item, &twin).await.unwrap();
            let at =
                format!("{strategy} step {step} cost {cost}: {decision:?} vs {admitted} {stats:?}");
            assert_eq!(decision.admitted, admitted, "{at}");
            assert_eq!(decision.limit, 5, "{at}");
            assert_eq!(decision.remaining, stats.remaining, "{at}");
            assert!(
                (decision.reset_time - stats.reset_time).abs() <= slack,
                "{at}"
            );
        }
        // 1 + 2 + 1 + 1 admitted (6 cannot fit), then the window is full.
        let last = limiter.decide(&item, &decided, 1).await.unwrap();
        assert!(!last.admitted, "{strategy}: {last:?}");
        assert_eq!(last.remaining, 0, "{strategy}: {last:?}");
        assert!(last.reset_time > storage.unix_now(), "{strategy}: {last:?}");
        let e = limiter.decide(&item, &decided, 0).await.unwrap_err();
        assert_eq!(e.kind(), limitstore::ErrorKind::InvalidArgument);
    }
}
