//! `/healthz` (the process answers) and `/readyz` (the store answers too).

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "Health", security(()), responses((status = 200, description = "Alive", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process answers and its store is reachable.
#[utoipa::path(get, path = "/readyz", tag = "Health", security(()),
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "The store is unreachable", body = Object)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ping = tokio::time::timeout(std::time::Duration::from_secs(5), state.store.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ok", "store": "ok"}))),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "store": "unreachable"}))),
    }
}
