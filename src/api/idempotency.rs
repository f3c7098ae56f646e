//! The `Idempotency-Key` layer for POST requests.

use axum::body::Body as HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::extract::{authenticate, content_type, parse_body, read_body};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::accounts::Principal;
use crate::service::idempotency::{self, Begin, MAX_KEY_CHARS};
use crate::store::Scope;

/// Answers a POST that repeats an earlier one (same key, method, path and
/// parameters) with the stored answer and `Idempotent-Replayed: true`; refuses a key
/// reused with other parameters (400) or still in use (409); otherwise lets the
/// request run holding the key, and stores what it answered.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key("idempotency-key") {
        return next.run(req).await;
    }
    let key = req.headers().get("idempotency-key").cloned();
    let mut resp = match run(&state, req, next).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    // Echoed, as Stripe does, so that clients can log which key an answer belongs to.
    if let Some(key) = key {
        resp.headers_mut().insert("idempotency-key", key);
    }
    resp
}

async fn run(state: &AppState, req: Request, next: Next) -> ApiResult<Response> {
    let key = match req.headers().get("idempotency-key").map(HeaderValue::to_str) {
        Some(Ok(k)) if !k.is_empty() && k.chars().count() <= MAX_KEY_CHARS => k.to_owned(),
        _ => {
            return Err(ApiError::invalid(
                "idempotency_key_invalid",
                "Idempotency-Key",
                format!("The Idempotency-Key header must be 1 to {MAX_KEY_CHARS} visible ASCII characters."),
            ));
        }
    };
    let (mut parts, body) = req.into_parts();
    let (scope, stored) = match authenticate(&parts.headers, &mut parts.extensions, state).await? {
        Principal::Platform { scope, .. } => (scope, key.clone()),
        Principal::Operator { operator_id, .. } => match operator_scope(state, parts.uri.path()).await? {
            // An operator's write to a recovery (a payment, say) is kept under the
            // recovery's account, apart from its platform's own keys and other operators'.
            Some(scope) => (scope, format!("{operator_id}:{key}")),
            // Operators act across accounts; their review routes are safe to repeat anyway.
            None => return Ok(next.run(Request::from_parts(parts, body)).await),
        },
    };
    let bytes = read_body(Request::from_parts(parts.clone(), body), super::body_limit(state, &parts)).await?;
    let media = content_type(&parts.headers);
    let upload = match media.as_deref() {
        Some("multipart/form-data") => super::files::upload_fingerprint(&parts.headers, bytes.clone()).await,
        _ => None,
    };
    let fingerprint = fingerprint(parts.method.as_str(), parts.uri.path(), media.as_deref(), upload.as_deref(), &bytes);
    let now = state.clock.now();
    let claim = match idempotency::begin(&state.store, &scope, &stored, &fingerprint, now).await? {
        Begin::Replay { status, body } => return Ok(replay(status, body)),
        Begin::Mismatch => return Err(ApiError::idempotency_mismatch(&key)),
        Begin::InFlight => return Err(ApiError::idempotency_in_use(&key)),
        Begin::Proceed(claim) => claim,
    };
    parts.extensions.insert(claim.clone());
    let resp = next.run(Request::from_parts(parts, HttpBody::from(bytes))).await;
    finish(state, &scope, &claim, resp).await
}

/// The account an operator's request writes in, where the path names it: a recovery's
/// routes (`/v1/recoveries/rec_.../...`). `None` elsewhere, and for a recovery that does
/// not exist (the handler answers its 404).
async fn operator_scope(state: &AppState, path: &str) -> ApiResult<Option<Scope>> {
    let Some(id) = path.strip_prefix("/v1/recoveries/").and_then(|rest| rest.split('/').next()) else {
        return Ok(None);
    };
    if !crate::ids::Kind::Recovery.matches(id) {
        return Ok(None);
    }
    crate::service::recoveries::scope_of(&state.store, id).await
}

/// Stores what the request answered (unless its transaction already did), or frees
/// the key after a server error.
async fn finish(state: &AppState, scope: &Scope, claim: &idempotency::Claim, resp: Response) -> ApiResult<Response> {
    let status = resp.status();
    if status.is_server_error() {
        idempotency::release(&state.store, scope, claim).await?;
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| ApiError::internal(e))?;
    let text = String::from_utf8_lossy(&bytes);
    idempotency::complete_after(&state.store, scope, claim, status.as_u16(), &text).await?;
    Ok(Response::from_parts(parts, HttpBody::from(bytes)))
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// Method, path and parameters, hashed. Parameters are compared parsed (so key order
/// and JSON-versus-form do not matter; an upload's parts by `upload`, its parts in
/// canonical form); a body that does not parse is compared as bytes.
fn fingerprint(method: &str, path: &str, media: Option<&str>, upload: Option<&str>, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    match (upload, parse_body(media, body)) {
        (Some(parts), _) => h.update(parts.as_bytes()),
        (None, Ok(params)) => h.update(params.canonical().as_bytes()),
        (None, Err(_)) => h.update(body),
    }
    hex::encode(h.finalize())
}
