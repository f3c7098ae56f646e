//! A webhook receiver for the tests: a real HTTP server on port 0 that records what
//! arrives, verifies both signature schemes with its own code (not the server's), and
//! can be told to fail, hang, answer 410 or 429, or answer with any bytes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooMany(u64),
    /// Never answers.
    Hang,
    /// Answers 200 after this many milliseconds.
    Slow(u64),
    /// Answers 200 once the test calls `release`.
    Held,
    /// Answers this status with exactly these bytes as the body.
    Answer(u16, &'static [u8]),
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub body: Value,
    /// The body's bytes, as signed.
    pub raw_body: Vec<u8>,
    pub headers: HeaderMap,
    /// Which of the receiver's secrets verified each header.
    pub standard_verified_by: Vec<String>,
    pub stripe_verified_by: Vec<String>,
    /// What the receiver answered (None: it hung).
    pub answered: Option<u16>,
}

struct Inner {
    mode: Option<Mode>,
    /// Opened by `release`, for requests that arrived in `Mode::Held`.
    gate: Arc<tokio::sync::Semaphore>,
    secrets: Vec<String>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            mode: Some(Mode::Ok),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            secrets: Vec::new(),
            received: Vec::new(),
        }));
        let app = Router::new().route("/hook", post(handle)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inner }
    }

    /// Lets every request held back by `Mode::Held` (now or later) be answered.
    pub fn release(&self) {
        self.inner.lock().unwrap().gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }

    /// The secrets to verify with (those the server handed out).
    pub fn trust(&self, secrets: &[&str]) {
        self.inner.lock().unwrap().secrets = secrets.iter().map(|s| s.to_string()).collect();
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The requests answered with a 2xx: deliveries that counted.
    pub fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s))).collect()
    }

    /// Waits (with a deadline) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "only {} of {n} requests arrived", got.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], data: &[&[u8]]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    for d in data {
        m.update(d);
    }
    m.finalize().into_bytes().to_vec()
}

/// Standard Webhooks: `v1,<base64>` entries separated by spaces; key = base64 after `whsec_`.
fn verify_standard(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(id), Some(ts), Some(sigs)) =
        (headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature"))
    else {
        return false;
    };
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else { return false };
    let expected = STANDARD.encode(mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
    sigs.to_str().unwrap().split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// Stripe's scheme: `t=...,v1=<hex>,...`; key = the whole secret string.
fn verify_stripe(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("casapay-signature").and_then(|h| h.to_str().ok()) else { return false };
    let t = header.split(',').find_map(|p| p.strip_prefix("t=")).unwrap_or("");
    let expected: String =
        mac(secret.as_bytes(), &[t.as_bytes(), b".", body]).iter().map(|b| format!("{b:02x}")).collect();
    header.split(',').filter_map(|p| p.strip_prefix("v1=")).any(|v| v == expected)
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let (mode, secrets, gate) = {
        let g = inner.lock().unwrap();
        (g.mode.unwrap_or(Mode::Ok), g.secrets.clone(), g.gate.clone())
    };
    let answered = match mode {
        Mode::Ok | Mode::Slow(_) | Mode::Held => Some(200),
        Mode::Status(s) | Mode::Answer(s, _) => Some(s),
        Mode::TooMany(_) => Some(429),
        Mode::Hang => None,
    };
    let record = Received {
        id: headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
        timestamp: headers
            .get("webhook-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw_body: body.to_vec(),
        standard_verified_by: secrets.iter().filter(|s| verify_standard(s, &headers, &body)).cloned().collect(),
        stripe_verified_by: secrets.iter().filter(|s| verify_stripe(s, &headers, &body)).cloned().collect(),
        headers,
        answered,
    };
    inner.lock().unwrap().received.push(record);
    match mode {
        Mode::Hang => std::future::pending::<axum::response::Response>().await,
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (StatusCode::OK, "ok").into_response()
        }
        Mode::Held => {
            let _ = gate.acquire().await;
            (StatusCode::OK, "ok").into_response()
        }
        Mode::Ok => (StatusCode::OK, "ok").into_response(),
        Mode::Status(s) => (StatusCode::from_u16(s).unwrap(), format!("status {s}")).into_response(),
        Mode::Answer(s, body) => (StatusCode::from_u16(s).unwrap(), body).into_response(),
        Mode::TooMany(secs) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response()
        }
    }
}
