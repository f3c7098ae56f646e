//! `/v1/webhook_endpoints`

use super::openapi::{
    DeletedWebhookEndpoint, Errors, ExpandQuery, IdPath, List, ListQuery, WebhookEndpointCreate, WebhookEndpointUpdate,
};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::response::Response;
use serde_json::{Value, json};

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use super::params::{Params, Patch};
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::webhook::{WebhookAttempt, WebhookEndpoint, check_enabled_events};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::{self, webhooks};
use crate::views::{Render, WebhookAttemptView, WebhookEndpointView};
use crate::webhooks::ssrf::check_url;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(attempts))
}

const URL_MAX: usize = 2048;
const DESCRIPTION_MAX: usize = 5000;

fn url(state: &AppState, p: &mut Params, required: bool) -> ApiResult<Option<String>> {
    let url = match p.bounded_string("url", URL_MAX)? {
        Some(u) => u,
        None if required => return Err(ApiError::missing("url")),
        None => return Ok(None),
    };
    check_url(&url, &state.egress).map_err(|e| ApiError::invalid("url_invalid", "url", capitalise(&e.to_string())))?;
    Ok(Some(url))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn enabled_events(p: &mut Params, required: bool) -> ApiResult<Option<Vec<String>>> {
    if !p.contains("enabled_events") {
        return if required { Err(ApiError::missing("enabled_events")) } else { Ok(None) };
    }
    let events = p.string_list("enabled_events")?;
    check_enabled_events(&events).map_err(|m| ApiError::invalid("parameter_invalid_value", "enabled_events", m))?;
    Ok(Some(events))
}

/// Create a webhook endpoint; the answer carries its `secret`, once.
#[utoipa::path(post, path = "/v1/webhook_endpoints", tag = "Webhook endpoints", request_body(content((WebhookEndpointCreate = "application/json"), (WebhookEndpointCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new endpoint, with its secret", body = WebhookEndpointView), Errors))]
async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Response> {
    p.allow(&["url", "enabled_events", "description", "metadata"])?;
    let input = webhooks::NewEndpoint {
        url: url(&state, &mut p, true)?.unwrap_or_default(),
        enabled_events: enabled_events(&mut p, true)?.unwrap_or_default(),
        description: p.bounded_string("description", DESCRIPTION_MAX)?,
        metadata: p.metadata()?,
    };
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| {
            webhooks::create(tx, &call, input).await.map(|e| WebhookEndpointView::with_secret(&e))
        })
        .await?,
    ))
}

/// Retrieve a webhook endpoint.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}", tag = "Webhook endpoints", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The endpoint", body = WebhookEndpointView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<WebhookEndpointView>> {
    check_id(Kind::WebhookEndpoint, &id)?;
    expand_param(&mut q, WebhookEndpoint::OBJECT, false)?;
    q.allow(&[])?;
    Ok(Json(webhooks::retrieve(&state.store, &call, &id).await?.view()))
}

/// Update a webhook endpoint.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}", tag = "Webhook endpoints", params(IdPath), request_body(content((WebhookEndpointUpdate = "application/json"), (WebhookEndpointUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated endpoint", body = WebhookEndpointView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::WebhookEndpoint, &id)?;
    p.allow(&["url", "enabled_events", "description", "disabled", "metadata"])?;
    let input = webhooks::EndpointPatch {
        url: url(&state, &mut p, false)?,
        enabled_events: enabled_events(&mut p, false)?,
        description: match p.patch_bounded_string("description", DESCRIPTION_MAX)? {
            Patch::Absent => None,
            Patch::Clear => Some(None),
            Patch::Set(d) => Some(Some(d)),
        },
        disabled: p.bool("disabled")?,
        metadata: p.metadata()?,
    };
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| {
            webhooks::update(tx, &call, &id, input).await.map(|e| e.view())
        })
        .await?,
    ))
}

/// Delete a webhook endpoint.
#[utoipa::path(delete, path = "/v1/webhook_endpoints/{id}", tag = "Webhook endpoints", params(IdPath),
    responses((status = 200, description = "Deleted", body = DeletedWebhookEndpoint), Errors))]
async fn delete(State(state): State<AppState>, Platform(call): Platform, PathId(id): PathId) -> ApiResult<Json<Value>> {
    check_id(Kind::WebhookEndpoint, &id)?;
    webhooks::delete(&state.store, &call, &id).await?;
    Ok(Json(json!({"id": id, "object": WebhookEndpoint::OBJECT, "deleted": true})))
}

/// A new secret; the old one signs beside it for 24 hours.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/rotate_secret", tag = "Webhook endpoints", params(IdPath),
    responses((status = 200, description = "The endpoint, with its new secret", body = WebhookEndpointView), Errors))]
async fn rotate_secret(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(p): Body,
) -> ApiResult<Response> {
    check_id(Kind::WebhookEndpoint, &id)?;
    p.allow(&[])?;
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| {
            webhooks::rotate_secret(tx, &call, &id).await.map(|e| WebhookEndpointView::with_secret(&e))
        })
        .await?,
    ))
}

/// List webhook endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhook_endpoints", tag = "Webhook endpoints", params(ListQuery),
    responses((status = 200, description = "A page of endpoints", body = List<WebhookEndpointView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<WebhookEndpointView>>> {
    q.allow(LIST_PARAMS)?;
    let page = page_request(&mut q, Kind::WebhookEndpoint)?;
    expand_param(&mut q, WebhookEndpoint::OBJECT, true)?;
    Ok(render(webhooks::list(&state.store, &call, &page).await?, "/v1/webhook_endpoints"))
}

/// The delivery attempts to an endpoint, newest first.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}/attempts", tag = "Webhook endpoints", params(IdPath, ListQuery),
    responses((status = 200, description = "A page of attempts", body = List<WebhookAttemptView>), Errors))]
async fn attempts(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<WebhookAttemptView>>> {
    check_id(Kind::WebhookEndpoint, &id)?;
    q.allow(LIST_PARAMS)?;
    let page = page_request(&mut q, Kind::WebhookAttempt)?;
    expand_param(&mut q, WebhookAttempt::OBJECT, true)?;
    let attempts = webhooks::attempts(&state.store, &call, &id, &page).await?;
    Ok(render(attempts, format!("/v1/webhook_endpoints/{id}/attempts")))
}
