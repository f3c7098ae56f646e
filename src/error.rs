//! The one error type of the server, rendered as Stripe's error body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Stripe's error `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
/// fix the request; `Internal` keeps its cause for the log and shows nothing of it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A 4xx answer with Stripe's fields.
    #[error("{message}")]
    Client { status: StatusCode, kind: ErrorType, code: Option<&'static str>, message: String, param: Option<String> },
    /// Too many requests with one key: 429 with `Retry-After`.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// The store cannot be reached in time: 503, retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: logged with its cause, answered as a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
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
        ApiError::RateLimited { retry_after_secs }
    }

    pub fn timeout() -> Self {
        ApiError::Unavailable("request timed out".into())
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
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
            ApiError::RateLimited { .. } => (
                ErrorType::RateLimitError,
                Some("rate_limit"),
                "Too many requests hit the API too quickly with this API key. Slow down and retry after the time in the Retry-After header.",
                None,
            ),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "answering 503");
                (ErrorType::ApiError, None, "The service is temporarily unavailable. Please retry the request.", None)
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (ErrorType::ApiError, None, "An unexpected error occurred. Please retry the request.", None)
            }
        };
        let body = serde_json::to_vec(&ErrorBody { error: ErrorFields { kind, code, message, param } })
            .unwrap_or_else(|_| b"{\"error\":{\"type\":\"api_error\"}}".to_vec());
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { retry_after_secs } = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
        }
        resp
    }
}

/// Database error codes that mean "busy, try again": SQLite's BUSY and LOCKED (with
/// their extended codes), PostgreSQL's serialization failure, deadlock and lock timeout.
const RETRYABLE_DB_CODES: &[&str] = &["5", "6", "261", "262", "517", "773", "40001", "40P01", "55P03"];

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::Unavailable(err.to_string())
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|c| RETRYABLE_DB_CODES.contains(&c.as_ref())) => {
                ApiError::Unavailable(err.to_string())
            }
            _ => ApiError::Internal(err.to_string()),
        }
    }
}
