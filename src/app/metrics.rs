//! `GET /metrics`: the store's metrics in Prometheus' text format, on the API's
//! listener or, with `CASAPAY_METRICS_LISTEN`, on one of its own.
//!
//! No key is asked for, as for `/healthz`: Prometheus scrapes without one, and the
//! figures are counts over the whole process (no account, key or path is a label).
//! What they do tell (traffic and claim volumes) is for the operators of the
//! service: where the API's address is public, serve them on a private address with
//! `CASAPAY_METRICS_LISTEN`.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use super::server;
use crate::store::Store;

/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer to a scrape: the pool's counts are read now (no query), the rest was
/// recorded as it happened or set by the sampler.
pub(crate) fn scrape(store: &Store) -> Response {
    let (in_use, idle) = store.pool_connections();
    store.metrics().set_pool(in_use, idle);
    match store.metrics().render() {
        Some(text) => {
            let mut resp = (StatusCode::OK, text).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            resp
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) async fn scrape_handler(State(state): State<super::AppState>) -> Response {
    scrape(&state.store)
}

/// Serves `/metrics` alone on `listener` (any other path: 404) until `shutdown`
/// resolves, with the connection timeouts of the API.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    config: Arc<super::ApiConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", axum::routing::get(move || std::future::ready(scrape(&store))))
        .fallback(|| std::future::ready(StatusCode::NOT_FOUND));
    let timeouts = server::Timeouts {
        header_read: config.header_read_timeout,
        idle: config.idle_timeout,
        shutdown_grace: config.shutdown_grace,
    };
    server::run(listener, router, timeouts, shutdown).await
}
