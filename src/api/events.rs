//! `/v1/events`

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, Platform};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render};
use super::openapi::{Errors, ExpandQuery, IdPath, List};
use super::{check_id, expand_paths, object_paths, write_view};
use crate::app::AppState;
use crate::domain::event::{Event, EventType};
use crate::error::ApiResult;
use crate::ids::{EventId, Kind, WebhookEndpointId};
use crate::service::{events, webhooks};
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
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<EventView>> {
    object_paths(Kind::Event, &id, q.expand)?;
    Ok(Json(events::retrieve(&state.store, &call, &id).await?.view()))
}

list_query! {
    /// `GET /v1/events`.
    EventList, EventId {
        /// An event type, such as `claim.approved`.
        #[serde(rename = "type")]
        kind: Option<EventType>,
    }
}

/// `POST /v1/events/:id/resend`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendParams {
    /// Only to this endpoint (default: every endpoint that subscribes).
    #[schema(inline)]
    pub webhook_endpoint: Option<WebhookEndpointId>,
}

/// List events (kept 30 days), newest first.
#[utoipa::path(get, path = "/v1/events", tag = "Events", params(EventList),
    responses((status = 200, description = "A page of events", body = List<EventView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<EventList>,
) -> ApiResult<Json<ListBody<EventView>>> {
    let page = q.page()?;
    expand_paths(q.expand, Event::OBJECT, true)?;
    Ok(render(events::list(&state.store, &call, &page, q.kind.map(|k| k.as_str().to_owned())).await?, "/v1/events"))
}

/// Queues the event again: to `webhook_endpoint`, or to every endpoint that subscribes.
/// Queue the event's delivery again.
#[utoipa::path(post, path = "/v1/events/{id}/resend", tag = "Events", params(IdPath), request_body(content((ResendParams = "application/json"), (ResendParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The event", body = EventView), Errors))]
async fn resend(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<ResendParams>,
) -> ApiResult<Response> {
    check_id(Kind::Event, &id)?;
    let endpoint = input.webhook_endpoint.map(WebhookEndpointId::into_string);
    write_view(&state, &call, async |tx| webhooks::resend(tx, &call, &id, endpoint).await).await
}
