//! A small client of the API for the command-line tools: a base URL, a key, and
//! Stripe's error body turned into a message.

use std::time::Duration;

use serde_json::Value;

/// A client of one server with one key.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// Why a call failed: the server could not be reached, or it answered an error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the API at {base}: {source}")]
    Unreachable { base: String, source: reqwest::Error },
    #[error("{method} {path}: HTTP {status}: {message}")]
    Refused { method: String, path: String, status: u16, message: String },
}

impl CallError {
    /// Trouble that passes: the server unreachable, overloaded (429) or failing (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Unreachable { .. } => true,
            CallError::Refused { status, .. } => *status == 429 || *status >= 500,
        }
    }
}

impl ApiClient {
    pub fn new(base: &str, key: &str) -> Result<ApiClient, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(ApiClient { http, base: base.trim_end_matches('/').to_owned(), key: key.to_owned() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` (with its query); the answer's text.
    pub async fn get_text(&self, path: &str) -> Result<String, CallError> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a form body in bracket notation; the answer as JSON.
    pub async fn post_form(&self, path: &str, form: &[(String, String)]) -> Result<Value, CallError> {
        let body = serde_urlencoded::to_string(form).unwrap_or_default();
        let text = self.send(reqwest::Method::POST, path, Some(body)).await?;
        serde_json::from_str(&text).map_err(|e| CallError::Refused {
            method: "POST".into(),
            path: path.to_owned(),
            status: 200,
            message: format!("the answer is not JSON: {e}"),
        })
    }

    async fn send(&self, method: reqwest::Method, path: &str, form: Option<String>) -> Result<String, CallError> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(form) = form {
            request = request.header("content-type", "application/x-www-form-urlencoded").body(form);
        }
        let unreachable = |source| CallError::Unreachable { base: self.base.clone(), source };
        let answer = request.send().await.map_err(unreachable)?;
        let status = answer.status();
        let text = answer.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(text);
        }
        let body = serde_json::from_str::<Value>(&text).ok();
        let error = body.as_ref().map(|v| &v["error"]);
        let mut message = error
            .and_then(|e| e["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect());
        // The parameter it is about, unless the message names it already.
        if let Some(param) = error.and_then(|e| e["param"].as_str())
            && !message.contains(param)
        {
            message.push_str(&format!(" (param: {param})"));
        }
        Err(CallError::Refused { method: method.to_string(), path: path.to_owned(), status: status.as_u16(), message })
    }
}
