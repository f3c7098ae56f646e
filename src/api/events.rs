//! `/v1/events`

use super::openapi::{Errors, EventFilters, ExpandQuery, IdPath, List, ListQuery, ResendParams};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::response::Response;

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::event::{Event, EventType};
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::{self, events, webhooks};
use crate::views::{EventView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retrieve)).routes(routes!(resend))
}

/// Retrieve an event.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "Events", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The event", body = EventView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<EventView>> {
    check_id(Kind::Event, &id)?;
    expand_param(&mut q, Event::OBJECT, false)?;
    q.allow(&[])?;
    Ok(Json(events::retrieve(&state.store, &call, &id).await?.view()))
}

/// List events (kept 30 days), newest first.
#[utoipa::path(get, path = "/v1/events", tag = "Events", params(ListQuery, EventFilters),
    responses((status = 200, description = "A page of events", body = List<EventView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<EventView>>> {
    q.allow(&[LIST_PARAMS, &["type"]].concat())?;
    let page = page_request(&mut q, Kind::Event)?;
    expand_param(&mut q, Event::OBJECT, true)?;
    let kind = q.choice("type", EventType::parse, EventType::names)?;
    Ok(render(events::list(&state.store, &call, &page, kind.map(|k| k.as_str().to_owned())).await?, "/v1/events"))
}

/// Queues the event again: to `webhook_endpoint`, or to every endpoint that subscribes.
/// Queue the event's delivery again.
#[utoipa::path(post, path = "/v1/events/{id}/resend", tag = "Events", params(IdPath), request_body(content((ResendParams = "application/json"), (ResendParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The event", body = EventView), Errors))]
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
        service::write_json(&state.store, &call, async |tx| {
            webhooks::resend(tx, &call, &id, endpoint).await.map(|e| e.view())
        })
        .await?,
    ))
}
