//! The floor: the benchmark's four operations served by about the least a server on this
//! project's stack can do per request. axum's router and `axum::serve`, the hand-written
//! transactions (`shared/handwritten.rs`: the statements of `../shared/ceiling/`) over
//! sqlx's PostgreSQL driver with one kept connection per client, JSON in and out by
//! serde_json; the key compared as a string, no validation, no idempotency, no metrics,
//! no logs, no background work. `bash scripts/bench` runs it beside the server on
//! PostgreSQL (`BENCH_FLOOR=0` leaves it out), turn for turn: what is left between the
//! two is the server's own cost, and
//! what is left between the floor and the hand-written transaction is the stack's
//! (HTTP, JSON and the runtime). PostgreSQL only.
//!
//! Started as the benchmark starts the server (`floor serve --listen ADDR ...`), with
//! `DATABASE_URL`, `FLOOR_KEY` (the bearer key it answers) and `FLOOR_ACCOUNT` (whose
//! rows it reads and writes).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use casapay::clock::{Clock, SystemClock};
use serde::Deserialize;
use serde_json::{Value, json};

#[path = "shared/handwritten.rs"]
#[allow(dead_code)] // the benchmark's half of it
mod handwritten;
use handwritten::Connections;

struct Floor {
    pool: Arc<Connections>,
    auth: String,
    account: String,
}

#[derive(Deserialize)]
#[allow(dead_code)] // parsed as the server parses them; the script's values are fixed
struct NewGuarantee {
    policy: String,
    tenant: String,
    coverage_amount: i64,
    currency: String,
    start_date: i64,
    end_date: i64,
}

#[derive(Deserialize)]
struct Evidence {
    invoice_id: String,
    due_date: i64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct NewClaim {
    guarantee: String,
    amount: i64,
    currency: String,
    reason: String,
    evidence: Evidence,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

fn answer(result: Result<Option<Value>, sqlx::Error>) -> Response {
    match result {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The floor's state, for a request whose key is the one it answers (401 otherwise).
struct Authorized(Arc<Floor>);

impl FromRequestParts<Arc<Floor>> for Authorized {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, f: &Arc<Floor>) -> Result<Self, StatusCode> {
        match parts.headers.get(header::AUTHORIZATION) {
            Some(v) if v.as_bytes() == f.auth.as_bytes() => Ok(Authorized(f.clone())),
            _ => Err(StatusCode::UNAUTHORIZED),
        }
    }
}

async fn create_guarantee(Authorized(f): Authorized, Json(g): Json<NewGuarantee>) -> Response {
    let (now, dates) = (SystemClock.now(), (g.start_date, g.end_date));
    let result = f
        .pool
        .with(async |conn| handwritten::create_guarantee(conn, &f.account, now, &g.policy, &g.tenant, dates).await);
    answer(result.await.map(Some))
}

async fn create_claim(Authorized(f): Authorized, Json(c): Json<NewClaim>) -> Response {
    let (now, invoice, due_date) = (SystemClock.now(), &c.evidence.invoice_id, c.evidence.due_date);
    let result = f
        .pool
        .with(async |conn| handwritten::create_claim(conn, &f.account, now, &c.guarantee, invoice, due_date).await);
    answer(result.await.map(Some))
}

async fn retrieve_guarantee(Authorized(f): Authorized, Path(id): Path<String>) -> Response {
    let result = f.pool.with(async |conn| handwritten::retrieve_guarantee(conn, &f.account, &id).await).await;
    answer(result.map(|row| row.as_ref().map(handwritten::guarantee_object)))
}

async fn list_guarantees(Authorized(f): Authorized, Query(q): Query<ListQuery>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    // One more than asked for, to tell whether there are more.
    let result = f.pool.with(async |conn| handwritten::list_guarantees(conn, &f.account, limit + 1).await).await;
    answer(result.map(|rows| {
        let has_more = rows.len() as i64 > limit;
        let data: Vec<Value> = rows.iter().take(limit as usize).map(handwritten::guarantee_object).collect();
        Some(json!({"object": "list", "url": "/v1/guarantees", "has_more": has_more, "data": data}))
    }))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = args.iter().position(|a| a == "--listen").and_then(|i| args.get(i + 1)).expect("--listen ADDR");
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let floor = Arc::new(Floor {
        pool: Connections::connect(&env("DATABASE_URL")).await,
        auth: format!("Bearer {}", env("FLOOR_KEY")),
        account: env("FLOOR_ACCOUNT"),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/guarantees", post(create_guarantee).get(list_guarantees))
        .route("/v1/guarantees/{id}", get(retrieve_guarantee))
        .route("/v1/claims", post(create_claim))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind").tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serve");
}
