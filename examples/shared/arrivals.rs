//! The webhook receiver both benchmarks run: it notes when each object's first
//! event arrived. Included by `bench.rs` and `webhook_bench.rs` with `#[path]`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

/// When the first event about each object (by id) arrived.
pub type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

pub async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(id) = v["data"]["object"]["id"].as_str() {
        arrivals.lock().unwrap().entry(id.to_owned()).or_insert(now);
    }
    StatusCode::NO_CONTENT
}
