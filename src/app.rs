//! Wiring: the shared state, the router with its middleware, and the server loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::api::rate_limit::{AuthFailures, RateLimitConfig, RateLimits};
use crate::clock::Clock;
use crate::service::accounts::KeyCache;
use crate::store::Store;
use crate::webhooks::ssrf::EgressPolicy;

/// Most keys the key cache holds at once.
const KEY_CACHE_CAPACITY: usize = 10_000;

/// Limits and settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bodies larger than this are answered 413.
    pub max_body_bytes: usize,
    /// Requests running longer than this are answered 503 (and their transaction
    /// rolled back).
    pub request_timeout: Duration,
    /// Requests per second per key.
    pub rate_limits: RateLimitConfig,
    /// How long an authenticated key is trusted without a lookup: a key revoked
    /// elsewhere stops working within this time. Zero looks every key up.
    pub key_cache_ttl: Duration,
    /// Failed authentications a second allowed per client address (bursts of
    /// [`AUTH_FAILURE_BURST`]); beyond it, 429 without a key lookup. 0 turns it off.
    pub auth_failures_per_second: u32,
}

/// Failed authentications an address may make at once before its allowance applies.
pub const AUTH_FAILURE_BURST: u32 = 20;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1_048_576,
            request_timeout: Duration::from_secs(30),
            rate_limits: RateLimitConfig::default(),
            key_cache_ttl: Duration::from_secs(1),
            auth_failures_per_second: 5,
        }
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
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

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: ApiConfig) -> Self {
        AppState {
            store,
            clock,
            rate_limits: Arc::new(RateLimits::new(config.rate_limits)),
            auth_failures: Arc::new(AuthFailures::new(config.auth_failures_per_second, AUTH_FAILURE_BURST)),
            keys: Arc::new(KeyCache::new(config.key_cache_ttl, KEY_CACHE_CAPACITY)),
            config: Arc::new(config),
            egress: EgressPolicy::default(),
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    crate::api::routes()
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::api::retry_on_connection_loss))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        // Outside the timeout, so that a request cut off by it still frees its key.
        .layer(axum::middleware::from_fn_with_state(state, crate::api::idempotency::layer))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(crate::api::request_context))
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Small JSON answers go out at once instead of waiting on Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // Each request knows its client's address: failed authentication is limited by it.
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}
