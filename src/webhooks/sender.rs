//! Sending one webhook: the URL check, the signed POST and what the receiver answered.
//! Leasing, retries and the attempts log are the delivery steps' (`service::delivery`).

use std::time::{Duration, Instant};

use super::signing::signature_headers;
use super::ssrf::{EgressPolicy, check_url};
use crate::domain::webhook::{RESPONSE_BODY_LIMIT, WebhookEndpoint};

/// What one attempt came to, before it is written down.
#[derive(Debug)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub retry_after: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// The outbound side of the dispatcher: the guarded HTTP client and the egress policy
/// that every endpoint URL is checked against before each attempt.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    egress: EgressPolicy,
}

impl Sender {
    pub fn new(egress: EgressPolicy, timeout: Duration) -> Self {
        Sender { client: super::ssrf::client(egress, timeout), egress }
    }

    /// POSTs `body` (the event `event_id`) to the endpoint, signed with its active
    /// secrets at `timestamp`. A URL the egress policy refuses is a failed attempt
    /// that sends nothing.
    pub async fn send(&self, endpoint: &WebhookEndpoint, event_id: &str, timestamp: i64, body: Vec<u8>) -> Outcome {
        match check_url(&endpoint.url, &self.egress) {
            Err(e) => Outcome {
                status_code: None,
                retry_after: None,
                latency_ms: 0,
                error: Some(e.to_string()),
                response_body: None,
            },
            Ok(url) => {
                let secrets = endpoint.signing.active_secrets(timestamp);
                let signatures = signature_headers(&secrets, event_id, timestamp, &body);
                let mut request = self
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", event_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signatures.webhook_signature);
                if let Some(stripe_scheme) = signatures.casapay_signature {
                    request = request.header("casapay-signature", stripe_scheme);
                }
                let request = request.body(body);
                send(request).await
            }
        }
    }
}

/// Enough of a body to decode its first `RESPONSE_BODY_LIMIT` bytes whole: a character
/// that starts within them ends at most three bytes past them.
const READ_LIMIT: usize = RESPONSE_BODY_LIMIT + 3;

/// Sends one request and reads what the attempts log keeps of the answer.
async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    match request.send().await {
        Err(e) => Outcome {
            status_code: None,
            retry_after: None,
            latency_ms: started.elapsed().as_millis() as i64,
            error: Some(describe(&e)),
            response_body: None,
        },
        Ok(mut resp) => {
            let latency_ms = started.elapsed().as_millis() as i64;
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut body = Vec::new();
            let mut error = None;
            while body.len() < READ_LIMIT {
                match resp.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(describe(&e));
                        break;
                    }
                }
            }
            body.truncate(READ_LIMIT);
            // Invalid UTF-8 becomes U+FFFD here; the record cuts the text to the limit.
            let text = String::from_utf8_lossy(&body).into_owned();
            let error = error.or_else(|| (!(200..300).contains(&status)).then(|| format!("HTTP {status}")));
            Outcome { status_code: Some(status), retry_after, latency_ms, error, response_body: Some(text) }
        }
    }
}

/// A short, secret-free description of a transport error.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() { kind.to_owned() } else { format!("{kind}: {cause}") }
}
