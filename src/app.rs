//! Wiring: the shared state, the router with its middleware, and the server loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::api::rate_limit::{AuthFailures, RateLimitConfig, RateLimits};
use crate::clock::Clock;
use crate::service::accounts::KeyCache;
use crate::store::Store;
use crate::webhooks::ssrf::EgressPolicy;

pub mod metrics;
mod server;

/// Most keys the key cache holds at once.
const KEY_CACHE_CAPACITY: usize = 10_000;

/// Limits and settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bodies larger than this are answered 413 (but uploads, below).
    pub max_body_bytes: usize,
    /// Uploaded files (`POST /v1/files`) larger than this are answered 413; the
    /// upload's body may be this and a little more (`api::files::upload_body_limit`).
    pub max_file_bytes: usize,
    /// Requests running longer than this are answered 503 (and their transaction
    /// rolled back). Reading the body counts: a body still arriving then is cut off.
    pub request_timeout: Duration,
    /// A connection that takes longer than this to send a request's headers (from
    /// their first byte, or from being accepted for its first request) is closed.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// On shutdown, how long the requests in flight have to finish before their
    /// connections are closed.
    pub shutdown_grace: Duration,
    /// Requests per second per key.
    pub rate_limits: RateLimitConfig,
    /// How long an authenticated key is trusted without a lookup: a key revoked
    /// elsewhere stops working within this time. Zero looks every key up.
    pub key_cache_ttl: Duration,
    /// Failed authentications a second allowed per client address (bursts of
    /// [`AUTH_FAILURE_BURST`]); beyond it, 429 without a key lookup. 0 turns it off.
    pub auth_failures_per_second: u32,
    /// Approvals of this amount (minor units) or more need two different operators
    /// (`CASAPAY_REVIEW_SECOND_APPROVAL_AMOUNT`); 0 turns four eyes off.
    pub second_approval_amount: i64,
    /// The review console's settings.
    pub console: ConsoleConfig,
    /// Whether `GET /metrics` is served with the API (when the store's metrics are on);
    /// false when it has a listener of its own (`CASAPAY_METRICS_LISTEN`).
    pub metrics_route: bool,
}

/// The review console's sessions.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// How long a sign-in lasts (`CASAPAY_CONSOLE_SESSION_SECS`).
    pub session_seconds: i64,
    /// Mark the session cookie `Secure` on every answer, not only behind a proxy
    /// that says `X-Forwarded-Proto: https` (`CASAPAY_CONSOLE_SECURE_COOKIE`).
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { session_seconds: 8 * 3600, secure_cookie: false }
    }
}

/// SPEC section 4: approvals of 500,000 minor units or more need two operators.
pub const DEFAULT_SECOND_APPROVAL_AMOUNT: i64 = 500_000;

/// Failed authentications an address may make at once before its allowance applies.
pub const AUTH_FAILURE_BURST: u32 = 20;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1_048_576,
            max_file_bytes: crate::domain::file::DEFAULT_MAX_FILE_BYTES,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            rate_limits: RateLimitConfig::default(),
            key_cache_ttl: Duration::from_secs(1),
            auth_failures_per_second: 5,
            second_approval_amount: DEFAULT_SECOND_APPROVAL_AMOUNT,
            console: ConsoleConfig::default(),
            metrics_route: true,
        }
    }
}

/// What every handler can reach, behind one `Arc`: the middlewares and extractors
/// clone it several times per request, and a clone of its fields one by one (the
/// store's own `Arc`s among them) was 8% of the server's CPU on a retrieve.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ApiConfig>,
    /// What webhook URLs may point at.
    pub egress: EgressPolicy,
    pub rate_limits: Arc<RateLimits>,
    /// Failed authentications per client address.
    pub auth_failures: Arc<AuthFailures>,
    /// Keys that authenticated recently.
    pub keys: Arc<KeyCache>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: ApiConfig) -> Self {
        AppState(Arc::new(Shared {
            store,
            clock,
            rate_limits: Arc::new(RateLimits::new(config.rate_limits)),
            auth_failures: Arc::new(AuthFailures::new(config.auth_failures_per_second, AUTH_FAILURE_BURST)),
            keys: Arc::new(KeyCache::new(config.key_cache_ttl, KEY_CACHE_CAPACITY)),
            config: Arc::new(config),
            egress: EgressPolicy::default(),
        }))
    }

    /// This state with webhook URLs guarded by `egress`.
    pub fn with_egress(mut self, egress: EgressPolicy) -> Self {
        Arc::make_mut(&mut self.0).egress = egress;
        self
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    let metrics = state.store.metrics().clone();
    let mut routes = crate::api::routes().merge(crate::console::router());
    // Not an API operation (nor in the OpenAPI document): for Prometheus.
    if state.config.metrics_route && metrics.is_on() {
        routes = routes.route("/metrics", axum::routing::get(self::metrics::scrape_handler));
    }
    let routes = routes
        // After every route: the route template for the request's log line and metrics.
        .route_layer(tower::util::MapRequestLayer::new(crate::api::observe::note_route))
        .with_state(state.clone());
    // Around the whole router, not through `Router::layer`, which wraps each route in
    // every layer: a request then cloned that stack of boxed services, a box per layer,
    // and each `from_fn` layer cloned the part below it again (12% of a retrieve's
    // instructions). Here a request clones it once, unboxed. The first layer is the
    // outermost.
    let layered = tower::ServiceBuilder::new()
        // Outermost, so that every reader of the body (the idempotency layer reads it
        // outside the timeout below) stops at the same deadline.
        .layer(tower::util::MapRequestLayer::new(move |req| crate::api::extract::body_deadline(req, timeout)))
        .layer(axum::middleware::from_fn_with_state(metrics, crate::api::request_context))
        .layer(CatchPanicLayer::custom(crate::api::panic_response))
        // Outside the timeout, so that a request cut off by it still frees its key.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::api::idempotency::layer))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(axum::middleware::from_fn_with_state(state, crate::api::retry_on_connection_loss))
        .service(routes);
    Router::new().fallback_service(layered)
}

/// Serves `app(state)` on `listener` until `shutdown` resolves; then stops accepting,
/// lets the requests in flight finish, closes idle connections, and after
/// `state.config.shutdown_grace` closes whatever remains. Connections are closed
/// after `header_read_timeout` without a request's headers and after `idle_timeout`
/// without a request.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeouts = server::Timeouts {
        header_read: state.config.header_read_timeout,
        idle: state.config.idle_timeout,
        shutdown_grace: state.config.shutdown_grace,
    };
    server::run(listener, app(state), timeouts, shutdown).await
}

#[cfg(test)]
mod tests {
    use axum::extract::Request;
    use axum::http::header;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::api::{panic_response, request_context};

    /// Answers that a lower layer made without the error body (a panic, a bare status)
    /// get it, and their one log line carries the request id. (Here rather than in
    /// `api`, whose files must register no route outside the document.)
    async fn boom() -> StatusCode {
        panic!("boom")
    }

    #[test]
    fn panics_and_bare_statuses_are_logged_once_in_the_request_span() {
        let app = Router::new()
            .route("/panic", get(boom))
            .route("/bare", get(|| async { StatusCode::BAD_GATEWAY }))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::from_fn_with_state(crate::metrics::Metrics::off(), request_context));
        for (path, cause) in [("/panic", "cause=panicked: boom"), ("/bare", "cause=a lower layer answered 502")] {
            let (resp, log) = crate::error::capture_logs(|| {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let req = Request::builder().uri(path).body(axum::body::Body::empty()).unwrap();
                rt.block_on(app.clone().oneshot(req)).unwrap()
            });
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json", "{path}: Stripe's error body");
            let request_id = resp.headers()["request-id"].to_str().unwrap();
            let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
            assert_eq!(errors.len(), 1, "{path}: {log}");
            assert!(errors[0].contains(&format!("request_id={request_id}")), "{path}: {log}");
            assert!(errors[0].contains(cause) && errors[0].contains("location=src/api/mod.rs:"), "{path}: {log}");
        }
    }
}
