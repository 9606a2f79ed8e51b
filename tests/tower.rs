//! The tower layer over real HTTP: the example's axum router served on
//! loopback, a hyper client binding distinct loopback addresses as distinct
//! clients; limits, headers and stored counts checked against each other;
//! two server instances sharing one real Redis; Redis paused with SIGSTOP
//! under each fail policy.
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/axum.rs"]
mod example;
mod servers;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use limitstore::aio::{async_limiter_for, async_storage_from_string, AsyncStorage};
use limitstore::tower::{FailPolicy, Failure, Header, RateLimitLayer};
use limitstore::{parse, MemoryStorage, Options, Strategy};
use servers::{Config, Server};
use tower::ServiceExt;

/// Serves `layer` behind the example's routes on a free loopback port.
async fn serve(layer: RateLimitLayer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = example::app(layer).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A client whose connections come from `from` (any 127.0.0.0/8 address).
fn client(from: &str) -> Client<HttpConnector, Empty<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(from.parse::<IpAddr>().unwrap()));
    Client::builder(TokioExecutor::new()).build(connector)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn send(
    client: &Client<HttpConnector, Empty<Bytes>>,
    method: Method,
    addr: SocketAddr,
    path: &str,
) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(client: &Client<HttpConnector, Empty<Bytes>>, addr: SocketAddr, path: &str) -> Answer {
    send(client, Method::GET, addr, path).await
}

/// `"<name>";r=<remaining>;t=<seconds>` of a `RateLimit` field.
fn service_limit(field: &str) -> (String, u64, u64) {
    let mut parts = field.split(';');
    let name = parts.next().unwrap().trim_matches('"').to_owned();
    let mut param = |key: &str| {
        let part = parts.next().unwrap_or_else(|| panic!("{field}"));
        part.strip_prefix(key).unwrap().parse::<u64>().unwrap()
    };
    let r = param("r=");
    let t = param("t=");
    (name, r, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_limit_then_429_with_the_stored_counts_in_the_headers() {
    let storage = Arc::new(MemoryStorage::new());
    let layer = RateLimitLayer::builder(storage.clone())
        .limits("5/minute")
        .legacy_headers(true)
        .build()
        .unwrap();
    let addr = serve(layer.clone()).await;
    let limiter = async_limiter_for(Strategy::FixedWindow, storage.clone()).unwrap();
    let item = parse("5/minute").unwrap();
    let alice = client("127.0.0.1");
    for n in 1..=5u64 {
        let answer = get(&alice, addr, "/").await;
        assert_eq!(answer.status, StatusCode::OK, "request {n}");
        assert_eq!(answer.body, "hello\n");
        assert_eq!(
            answer.header("ratelimit-policy"),
            "\"5 per 1 minute\";q=5;w=60"
        );
        let (name, remaining, reset) = service_limit(answer.header("ratelimit"));
        assert_eq!(name, "5 per 1 minute");
        assert_eq!(remaining, 5 - n);
        let stats = limiter
            .get_window_stats(&item, &["127.0.0.1", "*"])
            .await
            .unwrap();
        assert_eq!(stats.remaining, remaining, "request {n}");
        let left = stats.reset_time - storage.unix_now();
        assert!(
            (reset as f64 - left).abs() <= 1.0,
            "t={reset}, {left} s left"
        );
        assert!((59..=60).contains(&reset), "{reset}");
        assert_eq!(answer.header("x-ratelimit-limit"), "5");
        assert_eq!(
            answer.header("x-ratelimit-remaining"),
            remaining.to_string()
        );
        assert_eq!(answer.header("retry-after"), "");
    }
    let refused = get(&alice, addr, "/").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let (_, remaining, reset) = service_limit(refused.header("ratelimit"));
    assert_eq!(remaining, 0);
    assert_eq!(refused.header("retry-after"), reset.to_string());
    assert!(refused.body.contains("5 per 1 minute"), "{}", refused.body);
    let reset_at: f64 = refused.header("x-ratelimit-reset").parse().unwrap();
    assert!((reset_at - storage.unix_now() - reset as f64).abs() <= 1.0);
    // A refused fixed-window hit counts, as in `limits`.
    assert_eq!(
        limitstore::Storage::get(&*storage, "LIMITER/127.0.0.1/*/5/1/minute").unwrap(),
        6
    );

    // Another client is counted apart.
    let bob = get(&client("127.0.0.2"), addr, "/").await;
    assert_eq!(bob.status, StatusCode::OK);
    assert_eq!(service_limit(bob.header("ratelimit")).1, 4);
    let stats = layer.stats();
    assert_eq!((stats.admitted, stats.refused), (6, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_routes_exemptions_and_several_limits() {
    let storage = Arc::new(MemoryStorage::new());
    let layer = example::layer(storage.clone()).unwrap();
    let addr = serve(layer.clone()).await;
    let c = client("127.0.0.3");
    // `/health` is exempt: no headers, no counting.
    for _ in 0..20 {
        let health = get(&c, addr, "/health").await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(health.header("ratelimit"), "");
    }
    // `/login` has its own 3/minute, apart from `/`.
    for n in 0..3 {
        let login = send(&c, Method::POST, addr, "/login").await;
        assert_eq!(login.status, StatusCode::OK, "login {n}");
        assert_eq!(
            login.header("ratelimit-policy"),
            "\"3 per 1 minute\";q=3;w=60"
        );
    }
    let login = send(&c, Method::POST, addr, "/login").await;
    assert_eq!(login.status, StatusCode::TOO_MANY_REQUESTS);

    // `/` has 10/minute and 2/second: the third request in one second is
    // refused by the second limit and does not consume the first.
    let minute = parse("10/minute").unwrap();
    let limiter = async_limiter_for(Strategy::FixedWindow, storage.clone()).unwrap();
    let ids = ["127.0.0.3", "*"];
    let mut admitted = 0;
    let start = Instant::now();
    loop {
        let answer = get(&c, addr, "/").await;
        assert_eq!(
            answer.header("ratelimit-policy"),
            "\"10 per 1 minute\";q=10;w=60, \"2 per 1 second\";q=2;w=1"
        );
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            let (name, remaining, _) = service_limit(answer.header("ratelimit"));
            assert_eq!((name.as_str(), remaining), ("2 per 1 second", 0));
            break;
        }
        admitted += 1;
        assert!(admitted <= 2, "more than 2 admitted in a second");
    }
    if start.elapsed() < Duration::from_millis(900) {
        assert_eq!(admitted, 2);
        let stats = limiter.get_window_stats(&minute, &ids).await.unwrap();
        assert_eq!(
            stats.remaining,
            10 - admitted,
            "the refusal consumed the minute"
        );
    }
    assert_eq!(layer.stats().exempt, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_limit_is_the_one_with_least_left() {
    let storage = Arc::new(MemoryStorage::new());
    let layer = RateLimitLayer::builder(storage.clone())
        .strategy(Strategy::MovingWindow)
        .limits("100/hour;3/minute")
        .build()
        .unwrap();
    let addr = serve(layer).await;
    let c = client("127.0.0.4");
    for left in [2, 1, 0] {
        let answer = get(&c, addr, "/").await;
        assert_eq!(answer.status, StatusCode::OK);
        let (name, remaining, _) = service_limit(answer.header("ratelimit"));
        assert_eq!((name.as_str(), remaining), ("3 per 1 minute", left));
    }
    let refused = get(&c, addr, "/").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // Tested first, the refusal took nothing from the hour.
    let limiter = async_limiter_for(Strategy::MovingWindow, storage).unwrap();
    let hour = parse("100/hour").unwrap();
    let stats = limiter
        .get_window_stats(&hour, &["127.0.0.4", "*"])
        .await
        .unwrap();
    assert_eq!(stats.remaining, 97);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keys_unkeyed_requests_and_the_refusal_hook() {
    let layer = RateLimitLayer::builder(Arc::new(MemoryStorage::new()))
        .limits("1/minute")
        .key(Header::new("x-api-key").unwrap())
        .refusal(|refusal, mut response| {
            *response.body_mut() = format!("{{\"key\":\"{}\"}}", refusal.key);
            response
        })
        .build()
        .unwrap();
    let app = example::app(layer.clone());
    let request = |key: Option<&str>| {
        let mut builder = Request::builder().uri("/");
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    };
    let first = app.clone().oneshot(request(Some("k1"))).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = app.clone().oneshot(request(Some("k1"))).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = second.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"{\"key\":\"k1\"}");
    let other = app.clone().oneshot(request(Some("k2"))).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let unkeyed = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(unkeyed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(layer.stats().unkeyed, 1);
}

#[test]
fn bad_configurations_are_errors() {
    let storage = || Arc::new(MemoryStorage::new()) as Arc<dyn AsyncStorage>;
    let cases = [
        RateLimitLayer::builder(storage()).build(),
        RateLimitLayer::builder(storage())
            .limits("ten per minute")
            .build(),
        RateLimitLayer::builder(storage())
            .limits("1/minute")
            .route("/x", "")
            .build(),
        RateLimitLayer::builder(
            async_storage_from_string("async+memory://", &Options::new()).unwrap(),
        )
        .limits("0/minute")
        .build(),
    ];
    for case in cases {
        let e = case.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                limitstore::ErrorKind::Configuration
                    | limitstore::ErrorKind::Parse
                    | limitstore::ErrorKind::InvalidArgument
            ),
            "{e}"
        );
    }
}

/// Two server instances over two storages on one real Redis share the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_limit_through_redis() {
    let redis = Server::redis(Config::default());
    let uri = format!(
        "async+{}?key_prefix={}",
        redis.url(),
        servers::unique_prefix("tower")
    );
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let storage = async_storage_from_string(&uri, &Options::new()).unwrap();
        let layer = RateLimitLayer::builder(storage)
            .strategy(Strategy::SlidingWindowCounter)
            .limits("7/minute")
            .build()
            .unwrap();
        addrs.push(serve(layer).await);
    }
    let c = client("127.0.0.6");
    let mut admitted = 0;
    for n in 0..12 {
        let answer = get(&c, addrs[n % 2], "/").await;
        if answer.status == StatusCode::OK {
            admitted += 1;
            assert_eq!(service_limit(answer.header("ratelimit")).1, 7 - admitted);
        } else {
            assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(answer.header("retry-after").parse::<u64>().unwrap() >= 1);
        }
    }
    assert_eq!(admitted, 7);
}

/// Redis stopped with SIGSTOP: every request is answered within the
/// deadline, as the fail policy says, and counted; after SIGCONT decisions
/// come from Redis again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_is_answered_within_the_deadline_by_the_fail_policy() {
    let redis = Server::redis(Config::default());
    let uri = format!(
        "async+{}?key_prefix={}",
        redis.url(),
        servers::unique_prefix("tower-pause")
    );
    let deadline = Duration::from_millis(200);
    let failures = Arc::new(AtomicU64::new(0));
    let mut layers = Vec::new();
    for policy in [FailPolicy::Open, FailPolicy::Closed, FailPolicy::Fallback] {
        let storage = async_storage_from_string(&uri, &Options::new()).unwrap();
        let failures = failures.clone();
        let layer = RateLimitLayer::builder(storage)
            .limits("3/minute")
            .deadline(deadline)
            .on_storage_failure(policy)
            .on_failure(move |failure| {
                assert!(matches!(failure, Failure::Timeout(_) | Failure::Storage(_)));
                failures.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        let addr = serve(layer.clone()).await;
        layers.push((policy, layer, addr));
    }
    // Healthy: decisions come from Redis (headers present).
    for (_, _, addr) in &layers {
        let answer = get(&client("127.0.0.7"), *addr, "/").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_ne!(answer.header("ratelimit"), "");
    }

    redis.signal("STOP");
    for (policy, layer, addr) in &layers {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let addr = *addr;
            tasks.push(tokio::spawn(async move {
                let c = client(&format!("127.0.1.{}", i + 1));
                let started = Instant::now();
                let answer = get(&c, addr, "/").await;
                (answer.status, started.elapsed())
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            let (status, took) = task.await.unwrap();
            assert!(
                took < deadline + Duration::from_millis(400),
                "{policy:?}: answered after {took:?}"
            );
            statuses.push(status);
        }
        let expected = match policy {
            FailPolicy::Closed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        };
        assert!(
            statuses.iter().all(|s| *s == expected),
            "{policy:?}: {statuses:?}"
        );
        let stats = layer.stats();
        assert_eq!(
            stats.timeouts + stats.storage_errors,
            8,
            "{policy:?}: {stats:?}"
        );
        match policy {
            FailPolicy::Open => assert_eq!(stats.failed_open, 8),
            FailPolicy::Closed => assert_eq!(stats.failed_closed, 8),
            FailPolicy::Fallback => assert_eq!(stats.fallbacks, 8),
        }
    }
    // The fallback limits on its own meanwhile: one client, 3/minute.
    let (_, _, fallback) = &layers[2];
    let c = client("127.0.2.1");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&c, *fallback, "/").await.status);
    }
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
    assert!(failures.load(Ordering::Relaxed) >= 28);

    redis.signal("CONT");
    for (_, _, addr) in &layers {
        let c = client("127.0.3.1");
        servers::wait_until(
            "Redis answers the layer again",
            Duration::from_secs(10),
            || {
                let answer = futures_block(get(&c, *addr, "/"));
                answer.status == StatusCode::OK && !answer.header("ratelimit").is_empty()
            },
        );
    }
}

/// Runs `future` to completion from inside a `wait_until` closure.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// The example's layer over `writebehind+redis://`, as its `LIMITSTORE_URI`
/// selects: answers from the node's memory, and the hits reach Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_runs_on_write_behind_over_redis() {
    let redis = Server::redis(Config::default());
    let prefix = servers::unique_prefix("tower-wb");
    let uri = format!(
        "writebehind+{}?key_prefix={prefix}&sync_interval=0.05",
        redis.url()
    );
    let storage = async_storage_from_string(&uri, &Options::new()).unwrap();
    let addr = serve(example::layer(storage).unwrap()).await;
    let c = client("127.0.4.1");
    let statuses = [
        get(&c, addr, "/").await.status,
        get(&c, addr, "/").await.status,
    ];
    assert_eq!(statuses, [StatusCode::OK; 2]);
    let mut conn = redis.connection();
    servers::wait_until("the hits reach Redis", Duration::from_secs(10), || {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut conn)
            .unwrap();
        keys.iter().any(|k| !k.ends_with(":wb-incarnation"))
    });
}
