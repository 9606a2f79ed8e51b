//! [`RateLimitLayer`] and its service: route, key, decision, response.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::headers;
use super::key::{KeyExtractor, PeerIp, RequestHead};
use crate::aio::{async_limiter_for, AsyncRateLimiter, AsyncStorage, BoxFuture};
use crate::error::{Error, Result};
use crate::item::RateLimitItem;
use crate::memory::MemoryStorage;
use crate::parse::parse_many;
use crate::strategy::{Decision, Strategy};

/// What the layer does when the storage fails or does not answer within
/// the [deadline](RateLimitLayerBuilder::deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailPolicy {
    /// Let the request through, without rate-limit headers (the default,
    /// as flask-limiter's `swallow_errors` and Envoy's `failure_mode_deny:
    /// false`): an outage of the store is not an outage of the service.
    #[default]
    Open,
    /// Answer `503 Service Unavailable`.
    Closed,
    /// Decide on an in-memory limiter of this process instead, with the
    /// same limits and strategy (flask-limiter's `in_memory_fallback`):
    /// each instance then limits on its own until the store is back.
    Fallback,
}

/// Counters of what the layer decided, for metrics. Read them with
/// [`RateLimitLayer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Requests passed on to the inner service after a decision.
    pub admitted: u64,
    /// Requests answered `429 Too Many Requests`.
    pub refused: u64,
    /// Requests exempt from limiting.
    pub exempt: u64,
    /// Requests without a key, answered `500`.
    pub unkeyed: u64,
    /// Decisions the storage failed (an error).
    pub storage_errors: u64,
    /// Decisions the storage did not answer within the deadline.
    pub timeouts: u64,
    /// Failed decisions let through ([`FailPolicy::Open`]).
    pub failed_open: u64,
    /// Failed decisions answered `503` ([`FailPolicy::Closed`]).
    pub failed_closed: u64,
    /// Failed decisions made on the fallback limiter ([`FailPolicy::Fallback`]).
    pub fallbacks: u64,
}

#[derive(Default)]
struct Counters {
    admitted: AtomicU64,
    refused: AtomicU64,
    exempt: AtomicU64,
    unkeyed: AtomicU64,
    storage_errors: AtomicU64,
    timeouts: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    fallbacks: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> LayerStats {
        LayerStats {
            admitted: self.admitted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            exempt: self.exempt.load(Relaxed),
            unkeyed: self.unkeyed.load(Relaxed),
            storage_errors: self.storage_errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            failed_open: self.failed_open.load(Relaxed),
            failed_closed: self.failed_closed.load(Relaxed),
            fallbacks: self.fallbacks.load(Relaxed),
        }
    }
}

/// Why a decision failed, as [`RateLimitLayerBuilder::on_failure`] hooks see it.
#[derive(Debug)]
pub enum Failure<'a> {
    /// The storage answered an error.
    Storage(&'a Error),
    /// The storage did not answer within the deadline.
    Timeout(Duration),
}

/// A refused request, as the [refusal hook](RateLimitLayerBuilder::refusal)
/// sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Refusal {
    /// The key the request counted against.
    pub key: String,
    /// The limit that refused it.
    pub limit: RateLimitItem,
    /// That limit's decision.
    pub decision: Decision,
    /// Seconds until the limit frees up (the `Retry-After` value).
    pub retry_after: u64,
}

type RefusalHook = dyn Fn(&Refusal, Response<String>) -> Response<String> + Send + Sync;
type FailureHook = dyn Fn(&Failure<'_>) + Send + Sync;
type Exemption = dyn Fn(&RequestHead<'_>) -> bool + Send + Sync;

/// A set of limits and the scope their counters live in, with their
/// header texts rendered once.
struct Limits {
    scope: String,
    items: Vec<RateLimitItem>,
    names: Vec<String>,
    policy: HeaderValue,
}

impl Limits {
    fn new(scope: &str, items: Vec<RateLimitItem>) -> Result<Self> {
        if items.is_empty() {
            return Err(Error::configuration(format!("no limits for `{scope}`")));
        }
        Ok(Limits {
            scope: scope.to_owned(),
            names: items.iter().map(headers::name).collect(),
            policy: headers::policy(&items),
            items,
        })
    }
}

/// Builds a [`RateLimitLayer`]; see there. Methods taking text (limits,
/// key headers) keep the first error for [`build`](Self::build).
pub struct RateLimitLayerBuilder {
    storage: Arc<dyn AsyncStorage>,
    strategy: Strategy,
    default: Option<Vec<RateLimitItem>>,
    routes: Vec<(String, Vec<RateLimitItem>)>,
    exempt: Vec<Box<Exemption>>,
    key: Arc<dyn KeyExtractor>,
    deadline: Duration,
    fail: FailPolicy,
    legacy_headers: bool,
    refusal: Option<Box<RefusalHook>>,
    on_failure: Option<Box<FailureHook>>,
    error: Option<Error>,
}

impl fmt::Debug for RateLimitLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayerBuilder")
            .field("storage", &self.storage)
            .field("strategy", &self.strategy)
            .field("default", &self.default)
            .field("routes", &self.routes)
            .field("deadline", &self.deadline)
            .field("fail", &self.fail)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayerBuilder {
    fn note(&mut self, result: Result<()>) {
        if let (Err(e), None) = (result, &self.error) {
            self.error = Some(e);
        }
    }

    /// The strategy (default: [`Strategy::FixedWindow`]); the storage must
    /// support it.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The limits of every request not on a [route](Self::route), as a
    /// [`parse_many`] string (`"10/second;100/minute"`). A request is
    /// admitted only if every one of them admits it.
    pub fn limits(mut self, limits: &str) -> Self {
        let parsed = parse_many(limits).map(|items| self.default = Some(items));
        self.note(parsed);
        self
    }

    /// [`limits`](Self::limits) from items.
    pub fn limit_items(mut self, items: impl IntoIterator<Item = RateLimitItem>) -> Self {
        self.default = Some(items.into_iter().collect());
        self
    }

    /// Other limits for the paths under `prefix` (`"/login"` covers
    /// `/login` and `/login/...`, not `/loginx`), counted apart from the
    /// default limits. The longest matching prefix wins.
    pub fn route(mut self, prefix: &str, limits: &str) -> Self {
        let parsed = parse_many(limits).map(|items| self.routes.push((prefix.to_owned(), items)));
        self.note(parsed);
        self
    }

    /// Exempts the requests `exempt` says yes to (health checks, internal
    /// callers): they pass without touching the storage, and without
    /// rate-limit headers.
    pub fn exempt(
        mut self,
        exempt: impl Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.exempt.push(Box::new(exempt));
        self
    }

    /// Who a request counts against (default: [`PeerIp`]).
    pub fn key(mut self, key: impl KeyExtractor) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// How long a decision may take before the [fail
    /// policy](Self::on_storage_failure) answers instead (default 250 ms).
    /// A request never waits longer for the storage than this.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// What to do when the storage fails or misses the deadline (default
    /// [`FailPolicy::Open`]).
    pub fn on_storage_failure(mut self, policy: FailPolicy) -> Self {
        self.fail = policy;
        self
    }

    /// Called on every failed decision, before the fail policy answers (to
    /// log it, or count it in your metrics).
    pub fn on_failure(mut self, hook: impl Fn(&Failure<'_>) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Box::new(hook));
        self
    }

    /// Also sends `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
    /// `X-RateLimit-Reset` (Unix seconds), as flask-limiter does.
    pub fn legacy_headers(mut self, on: bool) -> Self {
        self.legacy_headers = on;
        self
    }

    /// Shapes the refusal: `hook` gets the refused request's [`Refusal`] and
    /// the response the layer would send (429, its headers, a short text
    /// body) and returns the one to send.
    pub fn refusal(
        mut self,
        hook: impl Fn(&Refusal, Response<String>) -> Response<String> + Send + Sync + 'static,
    ) -> Self {
        self.refusal = Some(Box::new(hook));
        self
    }

    /// The layer; a configuration error when a limit or header did not
    /// parse, when no limits were given, or when the storage lacks the
    /// strategy.
    pub fn build(self) -> Result<RateLimitLayer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let default = self
            .default
            .ok_or_else(|| Error::configuration("the layer has no limits: call `limits`"))?;
        let mut routes = self
            .routes
            .into_iter()
            .map(|(prefix, items)| Limits::new(&prefix, items))
            .collect::<Result<Vec<_>>>()?;
        routes.sort_by_key(|limits| std::cmp::Reverse(limits.scope.len()));
        let limiter = async_limiter_for(self.strategy, Arc::clone(&self.storage))?;
        let fallback = match self.fail {
            FailPolicy::Fallback => Some(async_limiter_for(
                self.strategy,
                Arc::new(MemoryStorage::new()),
            )?),
            _ => None,
        };
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                storage: self.storage,
                limiter,
                fallback,
                default: Limits::new("*", default)?,
                routes,
                exempt: self.exempt,
                key: self.key,
                deadline: self.deadline,
                fail: self.fail,
                legacy_headers: self.legacy_headers,
                refusal: self.refusal,
                on_failure: self.on_failure,
                counters: Counters::default(),
            }),
        })
    }
}

/// A [`tower`](https://docs.rs/tower) layer that rate-limits HTTP requests
/// over any [`AsyncStorage`]: memory, the Redis family, Memcached, MongoDB,
/// etcd, write-behind. Instances sharing one remote storage share their
/// limits.
///
/// For each request it finds the limits (a [route](RateLimitLayerBuilder::route)'s
/// or the default ones), the [key](RateLimitLayerBuilder::key), and decides:
///
/// - one limit: one [`decide`](AsyncRateLimiter::decide) call (one script
///   on Redis);
/// - several: each is [tested](AsyncRateLimiter::test) first, and only if
///   all would admit is each hit, so a limit refusing does not consume the
///   others. Between the test and the hit another request may take the last
///   unit of a later limit; the request is then refused and the earlier
///   hits stay counted.
///
/// An admitted request goes on with `RateLimit-Policy` and `RateLimit`
/// headers (draft-ietf-httpapi-ratelimit-headers-10) added to its response;
/// a refused one gets `429 Too Many Requests` with those, `Retry-After`,
/// and a short text body (see [`refusal`](RateLimitLayerBuilder::refusal)).
/// `RateLimit` reports the binding limit: the refusing one, or the one with
/// the least left.
///
/// Decisions are bounded by the [deadline](RateLimitLayerBuilder::deadline);
/// a failed or late one is answered by the [`FailPolicy`] and counted in
/// [`stats`](Self::stats). The layer never blocks a runtime worker: it only
/// awaits the asynchronous storage API.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use limitstore::tower::{FailPolicy, ForwardedFor, RateLimitLayer};
/// use limitstore::MemoryStorage;
///
/// let layer = RateLimitLayer::builder(Arc::new(MemoryStorage::new()))
///     .limits("10/second;100/minute")
///     .route("/login", "5/minute")
///     .exempt(|request| request.uri().path() == "/health")
///     .key(ForwardedFor::trusting(["10.0.0.0/8"]).unwrap())
///     .deadline(Duration::from_millis(100))
///     .on_storage_failure(FailPolicy::Open)
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("storage", &self.shared.storage)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// Starts a layer over `storage`.
    pub fn builder(storage: Arc<dyn AsyncStorage>) -> RateLimitLayerBuilder {
        RateLimitLayerBuilder {
            storage,
            strategy: Strategy::FixedWindow,
            default: None,
            routes: Vec::new(),
            exempt: Vec::new(),
            key: Arc::new(PeerIp),
            deadline: Duration::from_millis(250),
            fail: FailPolicy::Open,
            legacy_headers: false,
            refusal: None,
            on_failure: None,
            error: None,
        }
    }

    /// What the layer (and every service it made) decided so far.
    pub fn stats(&self) -> LayerStats {
        self.shared.counters.snapshot()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, std::result::Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready serves this request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            match shared.judge(&RequestHead::of(&request)).await {
                Verdict::Pass(report) => {
                    let mut response = inner.call(request).await?;
                    if let Some(report) = report {
                        shared.report(response.headers_mut(), &report);
                    }
                    Ok(response)
                }
                Verdict::Answer(response) => Ok(response.map(ResBody::from)),
            }
        })
    }
}

/// What the layer does with a request.
enum Verdict<'s> {
    /// Pass it on, reporting this decision in the response's fields.
    Pass(Option<Report<'s>>),
    /// Answer it with this response.
    Answer(Response<String>),
}

/// A decision to report: under `limits`, the binding limit `index`.
struct Report<'s> {
    limits: &'s Limits,
    index: usize,
    decision: Decision,
    now: f64,
}

struct Shared {
    storage: Arc<dyn AsyncStorage>,
    limiter: Box<dyn AsyncRateLimiter>,
    fallback: Option<Box<dyn AsyncRateLimiter>>,
    default: Limits,
    routes: Vec<Limits>,
    exempt: Vec<Box<Exemption>>,
    key: Arc<dyn KeyExtractor>,
    deadline: Duration,
    fail: FailPolicy,
    legacy_headers: bool,
    refusal: Option<Box<RefusalHook>>,
    on_failure: Option<Box<FailureHook>>,
    counters: Counters,
}

/// Whether `path` is `prefix` or lies under it.
fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

fn plain(status: StatusCode, body: &str) -> Response<String> {
    let mut response = Response::new(format!("{body}\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Shared {
    fn limits_for(&self, path: &str) -> &Limits {
        self.routes
            .iter()
            .find(|limits| under(path, &limits.scope))
            .unwrap_or(&self.default)
    }

    async fn judge(&self, request: &RequestHead<'_>) -> Verdict<'_> {
        if self.exempt.iter().any(|exempt| exempt(request)) {
            self.counters.exempt.fetch_add(1, Relaxed);
            return Verdict::Pass(None);
        }
        let Some(key) = self.key.extract(request) else {
            self.counters.unkeyed.fetch_add(1, Relaxed);
            return Verdict::Answer(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rate limit: the request has no key",
            ));
        };
        let limits = self.limits_for(request.uri().path());
        let identifiers = [key.as_str(), limits.scope.as_str()];
        let decided = tokio::time::timeout(
            self.deadline,
            decide(&*self.limiter, &limits.items, &identifiers),
        )
        .await;
        let decided = match decided {
            Ok(Ok(decided)) => Ok(decided),
            Ok(Err(e)) => {
                self.counters.storage_errors.fetch_add(1, Relaxed);
                let failure = Failure::Storage(&e);
                self.failed(failure, &limits.items, &identifiers).await
            }
            Err(_) => {
                self.counters.timeouts.fetch_add(1, Relaxed);
                let failure = Failure::Timeout(self.deadline);
                self.failed(failure, &limits.items, &identifiers).await
            }
        };
        let (index, decision) = match decided {
            Ok(decided) => decided,
            Err(verdict) => return verdict,
        };
        let report = Report {
            limits,
            index,
            decision,
            now: self.storage.unix_now(),
        };
        if decision.admitted {
            self.counters.admitted.fetch_add(1, Relaxed);
            return Verdict::Pass(Some(report));
        }
        self.counters.refused.fetch_add(1, Relaxed);
        let item = &limits.items[index];
        let retry_after = headers::seconds_until(decision.reset_time, report.now).max(1);
        let mut response = plain(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many requests: {item}; retry in {retry_after} s"),
        );
        self.report(response.headers_mut(), &report);
        if let Some(hook) = &self.refusal {
            let refusal = Refusal {
                key,
                limit: item.clone(),
                decision,
                retry_after,
            };
            response = hook(&refusal, response);
        }
        Verdict::Answer(response)
    }

    /// Adds the rate-limit fields of `report` to `fields`.
    fn report(&self, fields: &mut HeaderMap, report: &Report<'_>) {
        headers::insert_policy(fields, &report.limits.policy);
        let name = &report.limits.names[report.index];
        headers::insert(
            fields,
            name,
            &report.decision,
            report.now,
            self.legacy_headers,
        );
    }

    /// Answers a failed decision by the fail policy: a decision of the
    /// fallback limiter, or the verdict to give.
    async fn failed(
        &self,
        failure: Failure<'_>,
        items: &[RateLimitItem],
        identifiers: &[&str],
    ) -> std::result::Result<(usize, Decision), Verdict<'static>> {
        if let Some(hook) = &self.on_failure {
            hook(&failure);
        }
        match (&self.fallback, self.fail) {
            (Some(fallback), _) => {
                self.counters.fallbacks.fetch_add(1, Relaxed);
                match decide(&**fallback, items, identifiers).await {
                    Ok(decided) => Ok(decided),
                    // The memory engine fails only on bad arguments; let it
                    // through as the open policy would.
                    Err(_) => Err(Verdict::Pass(None)),
                }
            }
            (None, FailPolicy::Closed) => {
                self.counters.failed_closed.fetch_add(1, Relaxed);
                Err(Verdict::Answer(plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "rate limit storage unavailable",
                )))
            }
            (None, _) => {
                self.counters.failed_open.fetch_add(1, Relaxed);
                Err(Verdict::Pass(None))
            }
        }
    }
}

/// Decides a request under every limit in `items`: the index of the
/// binding limit and its decision. One limit is one `decide`; several are
/// all tested, then all hit, so a refusing limit consumes none of the
/// others.
async fn decide(
    limiter: &dyn AsyncRateLimiter,
    items: &[RateLimitItem],
    identifiers: &[&str],
) -> Result<(usize, Decision)> {
    if let [item] = items {
        return Ok((0, limiter.decide(item, identifiers, 1).await?));
    }
    for (index, item) in items.iter().enumerate() {
        if !limiter.test(item, identifiers, 1).await? {
            let stats = limiter.get_window_stats(item, identifiers).await?;
            return Ok((index, Decision::new(false, item, stats)));
        }
    }
    let mut binding: Option<(usize, Decision)> = None;
    for (index, item) in items.iter().enumerate() {
        let decision = limiter.decide(item, identifiers, 1).await?;
        if !decision.admitted {
            return Ok((index, decision));
        }
        if binding.is_none_or(|(_, b)| decision.remaining < b.remaining) {
            binding = Some((index, decision));
        }
    }
    // `items` is never empty (see `Limits::new`).
    binding.ok_or_else(|| Error::configuration("no limits"))
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn route_prefixes_match_whole_segments() {
        assert!(under("/login", "/login"));
        assert!(under("/login/x", "/login"));
        assert!(!under("/loginx", "/login"));
        assert!(under("/api/v1", "/api/"));
        assert!(under("/anything", "/"));
        assert!(!under("/", "/login"));
    }
}
