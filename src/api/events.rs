//! `/v1/events`

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use super::{check_id, json_body};
use crate::app::AppState;
use crate::domain::event::{Event, EventType};
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::{self, events, webhooks};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list))
        .route("/v1/events/{id}", get(retrieve))
        .route("/v1/events/{id}/resend", post(resend))
}

async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
) -> ApiResult<Json<Event>> {
    check_id(Kind::Event, &id)?;
    Ok(Json(events::retrieve(&state.store, &call, &id).await?))
}

async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Event>>> {
    q.allow(&[LIST_PARAMS, &["type"]].concat())?;
    let page = page_request(&mut q, Kind::Event)?;
    let kind = q.choice("type", EventType::parse, EventType::names)?;
    Ok(render(events::list(&state.store, &call, &page, kind.map(|k| k.as_str().to_owned())).await?, "/v1/events"))
}

/// Queues the event again: to `webhook_endpoint`, or to every endpoint that subscribes.
async fn resend(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Event, &id)?;
    p.allow(&["webhook_endpoint"])?;
    let endpoint = p.id("webhook_endpoint", Kind::WebhookEndpoint)?;
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| webhooks::resend(tx, &call, &id, endpoint).await).await?,
    ))
}
