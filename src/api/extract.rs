//! Extractors: authentication, request bodies and query strings, path ids.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body as AxumBody, Bytes, HttpBody};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{Extensions, HeaderMap, header, request::Parts};
use base64::Engine;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::params::Params;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::Call;
use crate::service::accounts::{KnownKey, LIVE_KEY_PREFIX, OPERATOR_KEY_PREFIX, Principal, TEST_KEY_PREFIX, hash_key};
use crate::service::idempotency::Claim;

/// The id given to this request, set by the request-id middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A platform caller: a valid secret key. Carries the scope and time of the request.
pub struct Platform(pub Call);

/// An operator caller: a valid operator key.
pub struct Operator {
    pub key_id: String,
    /// The operator (`op_`) the key speaks for: every action is attributed to them.
    pub operator_id: String,
    pub now: i64,
    pub request_id: Option<String>,
    /// The request's `Idempotency-Key`, and the key it holds: only on the routes whose
    /// account the idempotency layer can tell (a recovery's, see `api::idempotency`).
    pub idempotency_key: Option<String>,
    pub idempotency: Option<Claim>,
}

const NO_KEY: &str = "You did not provide an API key. Provide your API key in the Authorization header, \
    using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY') or HTTP Basic auth with the key as the user name.";

/// The key in `Authorization`: `Bearer <key>` or Basic with the key as user name.
fn presented_key(headers: &HeaderMap) -> ApiResult<String> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| ApiError::authentication(NO_KEY))?;
    let value = value.to_str().map_err(|_| ApiError::authentication(NO_KEY))?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::authentication(NO_KEY))?;
        decoded.split_once(':').map(|(user, _)| user.to_owned()).unwrap_or(decoded)
    } else {
        return Err(ApiError::authentication(NO_KEY));
    };
    if key.is_empty() {
        return Err(ApiError::authentication(NO_KEY));
    }
    Ok(key)
}

/// `sk_test_****abcd`: the kind of key and its last four characters, never more.
pub fn mask_key(key: &str) -> String {
    let prefix =
        [TEST_KEY_PREFIX, LIVE_KEY_PREFIX, OPERATOR_KEY_PREFIX].into_iter().find(|p| key.starts_with(p)).unwrap_or("");
    let rest = &key[prefix.len()..];
    let tail: String = if rest.len() > 8 && rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        rest[rest.len() - 4..].to_owned()
    } else {
        String::new()
    };
    format!("{prefix}****{tail}")
}

/// The caller, resolved once per request (the idempotency layer may already have).
#[derive(Debug, Clone)]
struct Authenticated(Principal);

/// Finds who the request's key speaks for and counts the request against the key's
/// rate limit; remembered in the request's extensions.
pub(crate) async fn authenticate(
    headers: &HeaderMap,
    extensions: &mut Extensions,
    state: &AppState,
) -> ApiResult<Principal> {
    if let Some(Authenticated(p)) = extensions.get::<Authenticated>() {
        return Ok(p.clone());
    }
    let key = presented_key(headers)?;
    let now = state.clock.now();
    let hash = hash_key(&key);
    let client = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    // Keys seen valid are looked up as before; any other key from an address over its
    // allowance of failures is refused without a lookup.
    let found = match state.keys.known(&hash, now) {
        KnownKey::Valid(principal) => Some(principal),
        KnownKey::SeenValid => state.keys.look_up(&state.store, &hash, now).await?,
        known @ (KnownKey::Invalid | KnownKey::Unseen) => {
            if let Some(wait) = client.and_then(|ip| state.auth_failures.blocked_for(ip)) {
                return Err(ApiError::auth_throttled(wait.as_secs_f64().ceil() as u64));
            }
            match known {
                KnownKey::Unseen => state.keys.look_up(&state.store, &hash, now).await?,
                _ => None,
            }
        }
    };
    let Some(principal) = found else {
        if let Some(ip) = client {
            state.auth_failures.fail(ip);
        }
        return Err(ApiError::authentication(format!("Invalid API Key provided: {}", mask_key(&key))));
    };
    if let Principal::Platform { scope, .. } = &principal {
        // In the log line of the request, rate-limited or not.
        super::observe::note_account(extensions, &scope.account_id);
    }
    let (key_id, livemode) = match &principal {
        Principal::Platform { scope, key_id } => (key_id, scope.livemode),
        Principal::Operator { key_id, .. } => (key_id, true),
    };
    state
        .rate_limits
        .check(key_id, livemode)
        .map_err(|wait| ApiError::rate_limited(wait.as_secs_f64().ceil() as u64))?;
    extensions.insert(Authenticated(principal.clone()));
    Ok(principal)
}

impl FromRequestParts<AppState> for Platform {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match authenticate(&parts.headers, &mut parts.extensions, state).await? {
            Principal::Platform { scope, .. } => Ok(Platform(platform_call(parts, state, scope))),
            Principal::Operator { .. } => Err(ApiError::permission(
                "Operator keys can only be used for claim review. Use the platform's secret key for this request.",
            )),
        }
    }
}

fn platform_call(parts: &Parts, state: &AppState, scope: crate::store::Scope) -> Call {
    Call {
        scope,
        now: state.clock.now(),
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        idempotency_key: parts.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
        idempotency: parts.extensions.get::<Claim>().cloned(),
    }
}

fn operator(parts: &Parts, state: &AppState, key_id: String, operator_id: String) -> Operator {
    Operator {
        key_id,
        operator_id,
        now: state.clock.now(),
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        idempotency_key: parts.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
        idempotency: parts.extensions.get::<Claim>().cloned(),
    }
}

/// A platform or an operator, on the routes both use: an evidence file is read by its
/// platform (in its own scope) and by operators (in the scope of a claim that names it);
/// a recovery by its platform (own account) and by operators (any).
pub enum Caller {
    Platform(Call),
    Operator(Operator),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        Ok(match authenticate(&parts.headers, &mut parts.extensions, state).await? {
            Principal::Platform { scope, .. } => Caller::Platform(platform_call(parts, state, scope)),
            Principal::Operator { key_id, operator_id } => {
                Caller::Operator(operator(parts, state, key_id, operator_id))
            }
        })
    }
}

/// A platform caller on a test-helper route (`/v1/test_helpers/...`): test keys only.
/// To a live key these routes do not exist: 404 naming the whole path it asked for.
pub struct TestHelper(pub Call);

impl FromRequestParts<AppState> for TestHelper {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let Platform(call) = Platform::from_request_parts(parts, state).await?;
        if call.scope.livemode {
            return Err(ApiError::route_not_found(parts.method.as_str(), parts.uri.path()));
        }
        Ok(TestHelper(call))
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match authenticate(&parts.headers, &mut parts.extensions, state).await? {
            Principal::Operator { key_id, operator_id } => Ok(operator(parts, state, key_id, operator_id)),
            Principal::Platform { .. } => {
                Err(ApiError::permission("This request needs an operator key: platform keys cannot review claims."))
            }
        }
    }
}

/// The media type of a request, lower-cased, without parameters.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).map(|v| {
        let v = v.to_str().unwrap_or("invalid").to_ascii_lowercase();
        v.split(';').next().unwrap_or("").trim().to_owned()
    })
}

/// Reads a request's body, up to `limit` bytes (413 beyond).
pub(crate) async fn read_body(req: Request, limit: usize) -> ApiResult<axum::body::Bytes> {
    let (parts, body) = req.into_parts();
    read_body_of(&parts.headers, body, limit).await
}

/// `read_body` for a request already taken apart: `headers` are its headers.
pub(crate) async fn read_body_of(
    headers: &axum::http::HeaderMap,
    body: AxumBody,
    limit: usize,
) -> ApiResult<axum::body::Bytes> {
    let declared_len =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` fails on the limit, on the request's deadline, or on a broken
        // connection; either way the body cannot be used, and a client that sent too
        // much or too slowly should hear so.
        if caused_by::<http_body_util::LengthLimitError>(&e) {
            ApiError::body_too_large(limit)
        } else if caused_by::<BodyDeadlinePassed>(&e) {
            ApiError::timeout()
        } else {
            ApiError::bad_request("The request body could not be read.")
        }
    })
}

/// Whether `T` is anywhere in the chain of causes of `e`.
pub(crate) fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<T>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Makes the request's body fail once `timeout` has passed since now, whoever reads
/// it. A body that is empty, or arrives whole with the headers, costs nothing more.
pub(crate) fn body_deadline(req: Request, timeout: Duration) -> Request {
    if req.body().is_end_stream() {
        return req;
    }
    let deadline = Instant::now() + timeout;
    req.map(|inner| AxumBody::new(DeadlineBody { inner, deadline, sleep: None }))
}

/// The error of a body read past the request's deadline.
#[derive(Debug)]
pub(crate) struct BodyDeadlinePassed;

impl std::fmt::Display for BodyDeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the request timeout")
    }
}

impl std::error::Error for BodyDeadlinePassed {}

struct DeadlineBody {
    inner: AxumBody,
    deadline: Instant,
    /// Armed the first time the body keeps its reader waiting.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyDeadlinePassed)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Parses a body by its media type: JSON, form, or (with none) whichever it looks like.
pub(crate) fn parse_body(media: Option<&str>, bytes: &[u8]) -> ApiResult<Params> {
    match media {
        Some("application/json") => Params::from_json(bytes),
        Some("application/x-www-form-urlencoded") => Params::from_form(bytes),
        None | Some("") => {
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                Params::from_json(bytes)
            } else {
                Params::from_form(bytes)
            }
        }
        Some(_) if bytes.is_empty() => Ok(Params::empty()),
        Some(other) => Err(ApiError::unsupported_media_type(other)),
    }
}

/// The `:id` of a path. Ids are checked against their kind by the handler.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(PathId(id)),
            Err(_) => Err(ApiError::route_not_found(parts.method.as_str(), parts.uri.path())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_prefix_and_last_four_only() {
        assert_eq!(mask_key("sk_test_4eC39HqLyjWDarjtT1zdp7dc"), "sk_test_****p7dc");
        assert_eq!(mask_key("sk_live_abcdefghijkl"), "sk_live_****ijkl");
        assert_eq!(mask_key("opk_abcdefghijkl"), "opk_****ijkl");
        assert_eq!(mask_key("short"), "****");
        assert_eq!(mask_key("sk_test_<script>alert(1)</script>"), "sk_test_****");
    }

    #[test]
    fn bearer_and_basic_keys() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer sk_test_x".parse().unwrap());
        assert_eq!(presented_key(&h).unwrap(), "sk_test_x");
        // curl -u sk_test_x:
        h.insert(header::AUTHORIZATION, "Basic c2tfdGVzdF94Og==".parse().unwrap());
        assert_eq!(presented_key(&h).unwrap(), "sk_test_x");
        h.insert(header::AUTHORIZATION, "Token abc".parse().unwrap());
        assert!(presented_key(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(presented_key(&h).is_err());
        assert!(presented_key(&HeaderMap::new()).is_err());
    }
}
