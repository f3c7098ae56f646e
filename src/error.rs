//! The one error type of the server, rendered as Stripe's error body.

use std::panic::Location;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::UniqueConstraint;

/// The cause of an internal error, kept whole (its `source()` chain too) for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Stripe's error `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    IdempotencyError,
    RateLimitError,
    ApiError,
}

/// Every error the API can answer with. Client errors carry what the caller needs to
/// fix the request; `Internal` keeps its cause and where it was raised for the log,
/// and shows nothing of them.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A 4xx answer with Stripe's fields.
    #[error("{message}")]
    Client { status: StatusCode, kind: ErrorType, code: Option<&'static str>, message: String, param: Option<String> },
    /// Too many requests with one key, or too many failed authentications from one
    /// client address (`by_address`): 429 with `Retry-After`.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64, by_address: bool },
    /// The store cannot be reached in time: 503, retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The connection to the store broke (a restart, a failover, a terminated
    /// backend) before the request's transaction could commit: nothing it did was
    /// kept, so it may run again on a fresh connection. 503 when it cannot.
    #[error("store connection lost: {0}")]
    ConnectionLost(String),
    /// Anything else: logged once (with the request id, by `into_response`), answered
    /// as a generic 500. Displayed with the cause's whole chain, since log lines print
    /// errors with `%`; for that reason it offers no `source()`, which would print the
    /// cause twice.
    #[error("internal error at {location}: {}", chain(.cause.as_ref()))]
    Internal { cause: Cause, location: &'static Location<'static> },
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn client(
        status: StatusCode,
        kind: ErrorType,
        code: Option<&'static str>,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        ApiError::Client { status, kind, code, message: message.into(), param: param.map(str::to_owned) }
    }

    /// 400 `invalid_request_error` with a code and the offending param.
    pub fn invalid(code: &'static str, param: impl AsRef<str>, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, Some(code), message, Some(param.as_ref()))
    }

    /// 400 for a request that the object's current state forbids (never a 409:
    /// Stripe's SDKs retry those).
    pub fn state(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, Some(code), message, None)
    }

    pub fn missing(param: &str) -> Self {
        Self::invalid("parameter_missing", param, format!("Missing required param: {param}."))
    }

    pub fn unknown(param: &str) -> Self {
        Self::invalid("parameter_unknown", param, format!("Received unknown parameter: {}", clip(param)))
    }

    /// 404 `resource_missing`. `object` is the object name ("guarantee"); `param`
    /// names the request field the id came from, if any.
    pub fn no_such(object: &str, id: &str, param: Option<&str>) -> Self {
        Self::client(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            Some("resource_missing"),
            format!("No such {object}: '{}'", clip(id)),
            param,
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, None, message, None)
    }

    pub fn authentication(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, ErrorType::AuthenticationError, None, message, None)
    }

    pub fn permission(message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, ErrorType::PermissionError, None, message, None)
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::client(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            None,
            format!("Unrecognized request URL ({method}: {}).", clip(path)),
            None,
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::client(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::InvalidRequestError,
            None,
            format!("Unrecognized request method ({method}) for URL {}.", clip(path)),
            None,
        )
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::InvalidRequestError,
            Some("request_too_large"),
            format!("The request body is larger than the limit of {limit} bytes."),
            None,
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::InvalidRequestError,
            Some("unsupported_media_type"),
            format!(
                "Unsupported Content-Type `{}`: send application/json or application/x-www-form-urlencoded.",
                clip(content_type)
            ),
            None,
        )
    }

    /// 413: an uploaded file larger than `CASAPAY_MAX_FILE_BYTES`.
    pub fn file_too_large(limit: usize) -> Self {
        Self::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::InvalidRequestError,
            Some("file_too_large"),
            format!("The file is larger than the limit of {limit} bytes."),
            Some("file"),
        )
    }

    /// 415: an upload sent as anything but `multipart/form-data`.
    pub fn multipart_required(content_type: &str) -> Self {
        Self::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::InvalidRequestError,
            Some("unsupported_media_type"),
            format!(
                "Unsupported Content-Type `{}`: upload files as multipart/form-data (curl -F file=@lease.pdf -F purpose=claim_evidence).",
                clip(content_type)
            ),
            None,
        )
    }

    /// 409: another request with this idempotency key is still running.
    pub fn idempotency_in_use(key: &str) -> Self {
        Self::client(
            StatusCode::CONFLICT,
            ErrorType::InvalidRequestError,
            Some("idempotency_key_in_use"),
            format!(
                "There is currently another in-progress request using this Idempotency-Key ('{}'). \
                 Retry this request once the first one has finished.",
                clip(key)
            ),
            None,
        )
    }

    /// 400: the key was first used with other parameters.
    pub fn idempotency_mismatch(key: &str) -> Self {
        Self::client(
            StatusCode::BAD_REQUEST,
            ErrorType::IdempotencyError,
            None,
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{}' if you meant to execute a different request.",
                clip(key)
            ),
            None,
        )
    }

    /// 429 for a key over its rate limit.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError::RateLimited { retry_after_secs, by_address: false }
    }

    /// 429 for a client address that presented too many invalid keys.
    pub fn auth_throttled(retry_after_secs: u64) -> Self {
        ApiError::RateLimited { retry_after_secs, by_address: true }
    }

    pub fn timeout() -> Self {
        ApiError::Unavailable("request timed out".into())
    }

    /// A 500 for `cause` (an error, or a message), raised here: `#[track_caller]`
    /// records the caller's file and line. Pass it in a closure
    /// (`.map_err(|e| ApiError::internal(e))`): as a function value it would record
    /// a line in `core` instead.
    #[track_caller]
    pub fn internal(cause: impl Into<Cause>) -> Self {
        ApiError::Internal { cause: cause.into(), location: Location::caller() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::ConnectionLost(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request, sent again unchanged, may succeed: a rate limit, a
    /// store outage or timeout, a key still in flight, or a server error (never kept
    /// under its idempotency key). Every other client error would fail the same way.
    pub fn should_retry(&self) -> bool {
        match self {
            ApiError::Client { code, .. } => *code == Some("idempotency_key_in_use"),
            ApiError::RateLimited { .. }
            | ApiError::Unavailable(_)
            | ApiError::ConnectionLost(_)
            | ApiError::Internal { .. } => true,
        }
    }

    /// Whether the request failed because its store connection broke before commit.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, ApiError::ConnectionLost(_))
    }

    pub fn code(&self) -> Option<&'static str> {
        match self {
            ApiError::Client { code, .. } => *code,
            _ => None,
        }
    }
}

/// Echoed user input is cut short so an error message never carries a whole body back.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push_str("...");
        out
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    #[serde(rename = "type")]
    kind: ErrorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (kind, code, message, param) = match &self {
            ApiError::Client { kind, code, message, param, .. } => (*kind, *code, message.as_str(), param.as_deref()),
            ApiError::RateLimited { by_address: false, .. } => (
                ErrorType::RateLimitError,
                Some("rate_limit"),
                "Too many requests hit the API too quickly with this API key. Slow down and retry after the time in the Retry-After header.",
                None,
            ),
            ApiError::RateLimited { by_address: true, .. } => (
                ErrorType::RateLimitError,
                Some("rate_limit"),
                "Too many requests with invalid API keys came from this address. Retry after the time in the Retry-After header.",
                None,
            ),
            ApiError::Unavailable(cause) | ApiError::ConnectionLost(cause) => {
                tracing::warn!(%cause, "answering 503");
                (ErrorType::ApiError, None, "The service is temporarily unavailable. Please retry the request.", None)
            }
            // The one place internal errors are logged: inside the request's span, so
            // the line carries its request id.
            ApiError::Internal { cause, location } => {
                tracing::error!(cause = %chain(cause.as_ref()), %location, "internal error");
                (ErrorType::ApiError, None, "An unexpected error occurred. Please retry the request.", None)
            }
        };
        let body = serde_json::to_vec(&ErrorBody { error: ErrorFields { kind, code, message, param } })
            .unwrap_or_else(|_| b"{\"error\":{\"type\":\"api_error\"}}".to_vec());
        let mut resp = (status, body).into_response();
        let retry = self.should_retry();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Stripe's SDKs retry on this header (and on 409 and 5xx), not on a 429 by its
        // status: say it either way, so that an SDK with retries on does the right thing.
        headers.insert("stripe-should-retry", HeaderValue::from_static(if retry { "true" } else { "false" }));
        match &self {
            ApiError::RateLimited { retry_after_secs, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_secs).max(1)));
            }
            _ if retry => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if self.is_connection_lost() {
            resp.extensions_mut().insert(ConnectionLostMark);
        }
        resp
    }
}

/// On a response whose request failed on a broken store connection, so that the layer
/// that retries such requests can tell them from other 503s.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLostMark;

/// Database error codes that mean "busy, try again": SQLite's BUSY and LOCKED (with
/// their extended codes), PostgreSQL's serialization failure, deadlock and lock timeout.
const RETRYABLE_DB_CODES: &[&str] = &["5", "6", "261", "262", "517", "773", "40001", "40P01", "55P03"];

/// Whether a database error means the connection itself is gone: an I/O or TLS
/// failure, SQLSTATE class 08 (connection exception), or 57P01-57P03 (the server is
/// shutting down, was restarted, or cannot accept connections yet).
pub fn is_connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// `cause: its source: its source's source...`, leaving out a source whose text the
/// message already holds (many errors, sqlx's among them, print their source inside
/// their own message).
pub fn chain(cause: &(dyn std::error::Error + 'static)) -> String {
    let mut out = cause.to_string();
    let mut next = cause.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

/// What a client is told when a write runs into a unique constraint: the one table
/// from constraint to error. Constraints the service checks before writing reach
/// here only in a race the check lost; a constraint missing here guards an invariant
/// no request can break, so its violation is a bug, answered 500 with its cause.
fn constraint_error(constraint: UniqueConstraint) -> Option<ApiError> {
    match constraint {
        UniqueConstraint::ClaimPerInvoice => Some(ApiError::invalid(
            "duplicate_claim",
            "evidence[invoice_id]",
            "A claim for this invoice on this guarantee already exists.",
        )),
        // Only the payout's settlement, under its lease, opens a claim's recovery.
        UniqueConstraint::PayoutPerClaim | UniqueConstraint::ApiKeyHash | UniqueConstraint::RecoveryPerClaim => None,
    }
}

impl From<sqlx::Error> for ApiError {
    /// `#[track_caller]`: the error's location is the `?` that converted it.
    #[track_caller]
    fn from(err: sqlx::Error) -> Self {
        if is_connection_lost(&err) {
            return ApiError::ConnectionLost(err.to_string());
        }
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => ApiError::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if db.code().is_some_and(|c| RETRYABLE_DB_CODES.contains(&c.as_ref())) => {
                ApiError::Unavailable(err.to_string())
            }
            _ => match crate::store::violated_unique(&err).and_then(constraint_error) {
                Some(client) => client,
                None => ApiError::internal(err),
            },
        }
    }
}

impl From<crate::store::CommitError> for ApiError {
    #[track_caller]
    fn from(err: crate::store::CommitError) -> Self {
        // A connection lost during COMMIT leaves its outcome unknown: the request must
        // not run again by itself, whatever the client then decides.
        if is_connection_lost(&err.0) {
            return ApiError::Unavailable(format!("connection lost during commit (outcome unknown): {}", err.0));
        }
        ApiError::from(err.0)
    }
}

/// The log lines written while `f` runs (on this thread), for tests of what is logged.
#[cfg(test)]
pub(crate) fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Shared(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_cause_and_where_they_were_raised() {
        let (e, line) = (ApiError::internal("boom"), line!());
        assert_eq!(e.to_string(), format!("internal error at src/error.rs:{line}:26: boom"));

        fn read() -> ApiResult<()> {
            Err(sqlx::Error::RowNotFound)?
        }
        let ApiError::Internal { cause, location } = read().unwrap_err() else { panic!("internal") };
        assert_eq!((location.file(), location.line()), ("src/error.rs", line!() - 3), "the `?`, not the From impl");
        assert!(cause.downcast_ref::<sqlx::Error>().is_some(), "the cause is the error itself, not its text");

        // Through `map_err` in a closure: the closure's line.
        let (e, line) = ("x".parse::<i64>().map_err(|e| ApiError::internal(e)).unwrap_err(), line!());
        assert!(e.to_string().starts_with(&format!("internal error at src/error.rs:{line}:")), "{e}");
    }

    #[test]
    fn a_cause_is_shown_with_its_sources_each_once() {
        let json = serde_json::from_str::<i64>("x").unwrap_err();
        let json_text = json.to_string();
        // sqlx prints its source inside its own message: not again after it.
        let decode = sqlx::Error::Decode(Box::new(json));
        assert_eq!(chain(&decode), format!("error occurred while decoding: {json_text}"));

        #[derive(Debug, thiserror::Error)]
        #[error("reading the claim")]
        struct Outer(#[source] std::io::Error);
        let outer = Outer(std::io::Error::other("disk gone"));
        assert_eq!(chain(&outer), "reading the claim: disk gone");
    }

    #[test]
    fn an_internal_error_is_logged_once_in_the_span_of_its_request() {
        let (resp, log) = capture_logs(|| {
            let _span = tracing::info_span!("request", request_id = %"req_test1").entered();
            ApiError::internal(std::io::Error::other("disk gone")).into_response()
        });
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        assert!(lines[0].contains("request{request_id=req_test1}"), "{log}");
        assert!(lines[0].contains("cause=disk gone location=src/error.rs:"), "{log}");
    }

    #[test]
    fn connection_errors_are_told_apart_from_other_store_errors() {
        let io = || sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        assert!(ApiError::from(io()).is_connection_lost());
        assert_eq!(ApiError::from(io()).status(), StatusCode::SERVICE_UNAVAILABLE);
        let at_commit = ApiError::from(crate::store::CommitError(io()));
        assert!(!at_commit.is_connection_lost(), "a commit's outcome is unknown: never retried by the server");
        assert_eq!(at_commit.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!ApiError::from(sqlx::Error::PoolTimedOut).is_connection_lost());
        assert_eq!(ApiError::from(sqlx::Error::PoolTimedOut).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::from(sqlx::Error::RowNotFound).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
