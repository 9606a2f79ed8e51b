//! The tower layer's cost per request over `memory://`: one request through
//! a bare service, and through `RateLimitLayer` around it (peer-IP key,
//! fixed window, `RateLimit` headers added), on one key and on 10k keys.
//!
//! Run with `cargo bench --bench tower --features tower`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use limitstore::tower::RateLimitLayer;
use limitstore::{MemoryStorage, Strategy};
use tower::{service_fn, Layer, Service, ServiceExt};

fn peers(n: usize) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000)))
        .collect()
}

/// `iters` requests from `peers` (round robin) through `service`.
async fn drive<S>(service: &mut S, peers: &[SocketAddr], iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<String>, Error = Infallible>,
{
    let start = Instant::now();
    for i in 0..iters {
        let request = Request::builder()
            .uri("/")
            .extension(peers[i as usize % peers.len()])
            .body(())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        std::hint::black_box(response);
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handler =
        service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let mut group = c.benchmark_group("tower");
    for (name, n) in [("1 key", 1), ("10k keys", 10_000)] {
        let peers = peers(n);
        let mut bare = handler;
        group.bench_function(format!("unlimited, {name}"), |b| {
            b.iter_custom(|iters| rt.block_on(drive(&mut bare, &peers, iters)))
        });
        for strategy in [Strategy::FixedWindow, Strategy::SlidingWindowCounter] {
            let layer = RateLimitLayer::builder(Arc::new(MemoryStorage::new()))
                .strategy(strategy)
                .limits("1000000000/hour")
                .build()
                .unwrap();
            let mut limited = layer.layer(handler);
            group.bench_function(format!("layer {strategy}, {name}"), |b| {
                b.iter_custom(|iters| rt.block_on(drive(&mut limited, &peers, iters)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
