//! Rate limiting for HTTP servers as one [`tower`](https://docs.rs/tower)
//! layer (feature `tower`): [`RateLimitLayer`] over any
//! [`AsyncStorage`](crate::aio::AsyncStorage), with key extractors, per-route
//! limits and exemptions, `429 Too Many Requests` with the IETF `RateLimit`
//! headers, and a fail policy with a bounded wait.
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::SocketAddr;
//! use limitstore::aio::async_storage_from_string;
//! use limitstore::tower::RateLimitLayer;
//! use limitstore::Options;
//!
//! let storage = async_storage_from_string("redis://localhost:6379", &Options::new())?;
//! let layer = RateLimitLayer::builder(storage).limits("100/minute").build()?;
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // The default key is the peer address: serve with `ConnectInfo`.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! The layer's deadline is a tokio timer: serve from a tokio runtime with
//! time enabled (as `#[tokio::main]`, axum and hyper servers do).

mod headers;
mod key;
mod layer;

pub use key::{ForwardedFor, Header, IpRange, KeyExtractor, PeerIp, RequestHead};
pub use layer::{
    FailPolicy, Failure, LayerStats, RateLimitLayer, RateLimitLayerBuilder, RateLimitService,
    Refusal,
};
