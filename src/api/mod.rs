//! The HTTP API: one module and `router()` per resource, plus the extractors and
//! middleware they share. Handlers parse, call a service, render.

pub mod claims;
pub mod customers;
pub mod events;
pub mod extract;
pub mod files;
pub mod guarantees;
pub mod health;
pub mod idempotency;
pub mod input;
pub mod list;
pub mod observe;
pub mod openapi;
pub mod params;
pub mod payouts;
pub mod policies;
pub mod rate_limit;
pub mod recoveries;
pub mod reset;
pub mod review;
pub mod test_clocks;
pub mod webhook_endpoints;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::app::AppState;
use crate::domain::event::API_VERSION;
use crate::error::{ApiError, ApiResult, ConnectionLostMark};
use crate::ids::Kind;
use crate::metrics::Metrics;
use extract::RequestId;

/// Every route of the API with its OpenAPI document, which is served at
/// `/v1/openapi.json`. Routes and document come from the same `routes!` lists, so
/// neither can have what the other lacks.
pub fn routes() -> Router<AppState> {
    let (router, document) = routes_and_document();
    let json: Arc<str> = document.to_string().into();
    router
        .route("/v1/openapi.json", axum::routing::get(move || serve_document(json.clone())))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The OpenAPI document served at `/v1/openapi.json` (the tests check responses
/// against it).
pub fn document() -> serde_json::Value {
    routes_and_document().1
}

fn routes_and_document() -> (Router<AppState>, serde_json::Value) {
    use utoipa::OpenApi;
    let (router, doc) = utoipa_axum::router::OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(customers::router())
        .merge(policies::router())
        .merge(guarantees::router())
        .merge(claims::router())
        .merge(review::router())
        .merge(events::router())
        .merge(payouts::router())
        .merge(recoveries::router())
        .merge(webhook_endpoints::router())
        .merge(files::router())
        .merge(reset::router())
        .merge(test_clocks::router())
        .split_for_parts();
    let mut doc = doc;
    doc.paths.add_path_operation(
        "/v1/openapi.json",
        vec![utoipa::openapi::HttpMethod::Get],
        utoipa::openapi::path::OperationBuilder::new()
            .summary(Some("This document (OpenAPI 3.1)"))
            .operation_id(Some("GetOpenApiDocument"))
            .tag("Health")
            .security(utoipa::openapi::security::SecurityRequirement::default())
            .response(
                "200",
                utoipa::openapi::ResponseBuilder::new().description("The OpenAPI document").content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new().schema(Some(utoipa::openapi::ObjectBuilder::new())).build(),
                ),
            )
            .build(),
    );
    let mut value = serde_json::to_value(&doc).expect("the document serialises");
    openapi::finish(&mut value);
    (router, value)
}

async fn serve_document(json: Arc<str>) -> Response {
    let mut resp = (StatusCode::OK, json.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The `expand` of a request about an object of type `root` (`list`: a list of them),
/// checked against the registry's expandable fields.
pub(crate) fn expand_paths(
    expand: Option<Vec<openapi::ExpandPath>>,
    root: &str,
    list: bool,
) -> ApiResult<Vec<Vec<String>>> {
    let paths: Vec<String> = expand.unwrap_or_default().into_iter().map(|p| p.0).collect();
    let resource = crate::resource::by_object(root)
        .ok_or_else(|| ApiError::internal(format!("{root} is not in the resource registry")))?;
    crate::service::expand::parse(&paths, resource, list)
}

/// A 200 with a JSON body serialised already (by `service::write_json`).
pub(crate) fn json_body(body: String) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A path id of the wrong kind or shape names no object: 404, as for an unknown id.
pub(crate) fn check_id(kind: Kind, id: &str) -> ApiResult<()> {
    if kind.matches(id) { Ok(()) } else { Err(ApiError::no_such(kind.object(), id, Some("id"))) }
}

/// The checks of a request about the object at a path: its id (`check_id`), then its
/// `expand` (`expand_paths`); the paths to expand.
pub(crate) fn object_paths(
    kind: Kind,
    id: &str,
    expand: Option<Vec<openapi::ExpandPath>>,
) -> ApiResult<Vec<Vec<String>>> {
    check_id(kind, id)?;
    expand_paths(expand, kind.object(), false)
}

/// A write's answer: `op` in one transaction with the idempotency record
/// (`service::write_json`), its result as a 200.
pub(crate) async fn write<T: serde::Serialize>(
    state: &AppState,
    call: &crate::service::Call,
    op: impl AsyncFnOnce(&mut crate::store::Tx) -> ApiResult<T>,
) -> ApiResult<Response> {
    Ok(json_body(crate::service::write_json(&state.store, call, op).await?))
}

/// A write of one object, answered as the object's view.
pub(crate) async fn write_view<T: crate::views::Render>(
    state: &AppState,
    call: &crate::service::Call,
    op: impl AsyncFnOnce(&mut crate::store::Tx) -> ApiResult<T>,
) -> ApiResult<Response> {
    write(state, call, async |tx| op(tx).await.map(|o| o.view())).await
}

/// A write of one object, answered with the fields in `paths` expanded, read in the
/// same transaction.
pub(crate) async fn write_expanded<T: crate::views::Render>(
    state: &AppState,
    call: &crate::service::Call,
    paths: &[Vec<String>],
    op: impl AsyncFnOnce(&mut crate::store::Tx) -> ApiResult<T>,
) -> ApiResult<Response> {
    write(state, call, async |tx| {
        let object = op(tx).await?;
        crate::service::expand::apply(tx, &call.scope, object, paths).await
    })
    .await
}

/// `write_expanded` of a write that made its object and rendered it for its event
/// (`service::Recorded`): with nothing to expand, those bytes are the answer.
pub(crate) async fn write_recorded<T: crate::views::Render>(
    state: &AppState,
    call: &crate::service::Call,
    paths: &[Vec<String>],
    op: impl AsyncFnOnce(&mut crate::store::Tx) -> ApiResult<crate::service::Recorded<T>>,
) -> ApiResult<Response> {
    write(state, call, async |tx| {
        let recorded = op(tx).await?;
        if paths.is_empty() {
            return Ok(crate::service::expand::Expanded::Rendered(recorded.view));
        }
        crate::service::expand::apply(tx, &call.scope, recorded.object, paths).await
    })
    .await
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::route_not_found(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

/// Gives each request its `req_` id (in the response header, in the extensions for
/// events, and in the log span), stamps the API version, and turns any bare error
/// status from a lower layer (the timeout) into the error body. Panics get theirs from
/// `panic_response`. Logs the request once it is answered, in one line (request id,
/// method, route template, account, status, latency; never the raw path, which a
/// client could have put anything in) and counts it in `metrics`.
pub async fn request_context(State(metrics): State<Metrics>, mut req: Request, next: Next) -> Response {
    let request_id = Kind::Request.new_id();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = tracing::field::Empty,
        account_id = tracing::field::Empty
    );
    // Nobody to tell the route and account to (metrics off, `info` not logged): none.
    let facts = (metrics.is_on() || !span.is_disabled()).then(|| observe::RequestFacts::new(span.clone()));
    if let Some(facts) = &facts {
        req.extensions_mut().insert(facts.clone());
    }
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error()) && !resp.headers().contains_key(header::CONTENT_TYPE) {
        // In the span, so that the error's log line carries the request id.
        resp = span.in_scope(|| bare_status_error(status).into_response());
    }
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", v);
    }
    headers.insert("casapay-version", HeaderValue::from_static(API_VERSION));
    // Answers carry keys, secrets and tenants' personal data: no cache may keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let elapsed = started.elapsed();
    let status = resp.status();
    let route = facts.as_ref().map_or(crate::metrics::UNMATCHED_ROUTE, |f| f.route_template());
    metrics.http_request(method.as_str(), route, status.as_u16(), elapsed.as_secs_f64());
    if route == crate::metrics::UNMATCHED_ROUTE {
        span.record("route", tracing::field::display(route));
    }
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), elapsed_us = elapsed.as_micros() as u64, "request finished")
    });
    resp
}

/// Runs a request a second time, once, when it failed on a broken store connection
/// before its transaction committed (a database restart or failover breaks every
/// pooled connection at once). Nothing of the first run was kept, and no request does
/// I/O outside its transaction, so the second run is the only one that counts. The
/// store is told first, so the second run gets a fresh connection. Inside the
/// request timeout, which bounds both runs and the body read.
/// Uploads are left alone: their bodies may be large, so they are read once, by the
/// handler, which retries its own write (`api::files`).
pub async fn retry_on_connection_loss(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if files::is_upload(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // A request without a body (most reads) has nothing to buffer.
    let bytes = if axum::body::HttpBody::is_end_stream(&body) {
        axum::body::Bytes::new()
    } else {
        match extract::read_body_of(&parts.headers, body, body_limit(&state, &parts)).await {
            Ok(bytes) => bytes,
            Err(e) => return e.into_response(),
        }
    };
    let first = next.clone().run(Request::from_parts(parts.clone(), axum::body::Body::from(bytes.clone()))).await;
    if first.extensions().get::<ConnectionLostMark>().is_none() {
        return first;
    }
    state.store.note_connection_lost();
    tracing::info!("store connection lost before commit; running the request again on a fresh connection");
    let second = next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await;
    if second.extensions().get::<ConnectionLostMark>().is_some() {
        state.store.note_connection_lost();
    }
    second
}

/// The largest body a request may send: the file limit (and its framing) for an
/// upload, `max_body_bytes` for every other route.
pub(crate) fn body_limit(state: &AppState, parts: &axum::http::request::Parts) -> usize {
    if files::is_upload(&parts.method, parts.uri.path()) {
        files::upload_body_limit(&state.config)
    } else {
        state.config.max_body_bytes
    }
}

/// The answer to a panic in a handler or a layer below `CatchPanicLayer`: a 500 with
/// the error body, logged once (in the request's span) with the panic's message.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::internal(format!("panicked: {message}")).into_response()
}

fn bare_status_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => ApiError::timeout(),
        s if s.is_server_error() => ApiError::internal(format!("a lower layer answered {s}")),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::bad_request("The request body is too large."),
        s => ApiError::bad_request(format!("The request could not be handled ({s}).")),
    }
}
