//! An axum server limited per client IP by one layer.
//!
//! ```text
//! cargo run --example axum --features axum
//! LIMITSTORE_URI=redis://localhost:6379 cargo run --example axum --features axum
//! LIMITSTORE_URI=writebehind+redis://localhost:6379 cargo run --example axum --features axum
//! curl -i localhost:3000/
//! ```
//!
//! `/` allows 10 requests a minute and 2 a second per IP, `/login` 3 a
//! minute, `/health` is exempt. Responses carry `RateLimit-Policy` and
//! `RateLimit`; refusals are `429` with `Retry-After`. If the storage is
//! down or slower than 100 ms, requests pass (fail open).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use limitstore::aio::{async_storage_from_string, AsyncStorage};
use limitstore::tower::{FailPolicy, RateLimitLayer};
use limitstore::Options;

/// The example's limits over `storage`.
pub fn layer(storage: Arc<dyn AsyncStorage>) -> limitstore::Result<RateLimitLayer> {
    RateLimitLayer::builder(storage)
        .limits("10/minute;2/second")
        .route("/login", "3/minute")
        .exempt(|request| request.uri().path() == "/health")
        .deadline(Duration::from_millis(100))
        .on_storage_failure(FailPolicy::Open)
        .build()
}

/// The example's routes behind `layer`.
pub fn app(layer: RateLimitLayer) -> Router {
    Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/login", post(|| async { "welcome\n" }))
        .route("/health", get(|| async { "ok\n" }))
        .layer(layer)
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("LIMITSTORE_URI").unwrap_or_else(|_| "memory://".to_owned());
    let storage = async_storage_from_string(&uri, &Options::new())?;
    let addr = std::env::var("LIMITSTORE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{addr} with {uri}");
    let app = app(layer(storage)?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
