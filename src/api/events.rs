//! `/v1/events`

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::check_id;
use super::extract::{PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use crate::app::AppState;
use crate::domain::event::{Event, EventType};
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::events;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", get(list)).route("/v1/events/{id}", get(retrieve))
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
