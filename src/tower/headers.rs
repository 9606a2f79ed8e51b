//! The response fields: `RateLimit-Policy` and `RateLimit` as in
//! draft-ietf-httpapi-ratelimit-headers-10 (Structured Field lists),
//! `Retry-After`, and optionally the legacy `X-RateLimit-*` trio.

use std::fmt::Write as _;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::HeaderMap;

use crate::item::RateLimitItem;
use crate::strategy::Decision;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The policy name of `item`, as a Structured Field string: its text
/// (`"10 per 1 minute"`), which holds no quote or backslash.
pub(crate) fn name(item: &RateLimitItem) -> String {
    format!("\"{item}\"")
}

/// `RateLimit-Policy: "10 per 1 minute";q=10;w=60, ...`: every limit that
/// applies to the request.
pub(crate) fn policy(items: &[RateLimitItem]) -> HeaderValue {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name(item));
        let _ = write!(out, ";q={};w={}", item.amount(), item.get_expiry());
    }
    value(out)
}

/// Whole seconds from `now` until `reset_time`, rounded up (never negative).
pub(crate) fn seconds_until(reset_time: f64, now: f64) -> u64 {
    let left = (reset_time - now).ceil();
    if left.is_nan() || left <= 0.0 {
        0
    } else {
        left as u64
    }
}

/// Adds the fields of the limit that binds (its [`name`], its `decision`)
/// at Unix time `now`: `RateLimit`, `Retry-After` when refused, and the
/// legacy trio when `legacy` (`X-RateLimit-Reset` in Unix seconds, as
/// flask-limiter and GitHub send it).
pub(crate) fn insert(
    headers: &mut HeaderMap,
    name: &str,
    decision: &Decision,
    now: f64,
    legacy: bool,
) {
    let reset = seconds_until(decision.reset_time, now);
    let mut out = String::with_capacity(name.len() + 24);
    out.push_str(name);
    let _ = write!(out, ";r={};t={reset}", decision.remaining);
    headers.insert(RATELIMIT, value(out));
    if !decision.admitted {
        headers.insert(RETRY_AFTER, HeaderValue::from(reset.max(1)));
    }
    if legacy {
        headers.insert(X_LIMIT, HeaderValue::from(decision.limit));
        headers.insert(X_REMAINING, HeaderValue::from(decision.remaining));
        let reset_at = decision.reset_time.max(now).ceil() as u64;
        headers.insert(X_RESET, HeaderValue::from(reset_at));
    }
}

/// Adds `RateLimit-Policy`.
pub(crate) fn insert_policy(headers: &mut HeaderMap, policy: &HeaderValue) {
    headers.insert(RATELIMIT_POLICY, policy.clone());
}

fn value(text: String) -> HeaderValue {
    // Item texts are ASCII digits, letters and spaces; numbers are digits.
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_many;

    #[test]
    fn fields_are_structured_lists() {
        let items = parse_many("10/minute;1000 per 2 hours").unwrap();
        assert_eq!(
            policy(&items),
            "\"10 per 1 minute\";q=10;w=60, \"1000 per 2 hour\";q=1000;w=7200"
        );
        let mut headers = HeaderMap::new();
        let decision = Decision::new(
            false,
            &items[0],
            crate::WindowStats {
                reset_time: 100.2,
                remaining: 0,
            },
        );
        insert(&mut headers, &name(&items[0]), &decision, 58.5, true);
        assert_eq!(headers["ratelimit"], "\"10 per 1 minute\";r=0;t=42");
        assert_eq!(headers["retry-after"], "42");
        assert_eq!(headers["x-ratelimit-limit"], "10");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert_eq!(headers["x-ratelimit-reset"], "101");
    }

    #[test]
    fn reset_is_rounded_up_and_never_negative() {
        assert_eq!(seconds_until(10.0, 10.0), 0);
        assert_eq!(seconds_until(10.01, 10.0), 1);
        assert_eq!(seconds_until(5.0, 10.0), 0);
        assert_eq!(seconds_until(f64::NAN, 10.0), 0);
        assert_eq!(seconds_until(1e30, 0.0), u64::MAX);
    }
}
