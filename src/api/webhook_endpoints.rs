//! `/v1/webhook_endpoints`

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, Platform};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render};
use super::openapi::{DeletedWebhookEndpoint, Errors, ExpandQuery, IdPath, List, NoParams};
use super::{check_id, expand_paths, object_paths, write, write_view};
use crate::app::AppState;
use crate::domain::Patch;
use crate::domain::UnixTime;
use crate::domain::metadata::{self, MetadataUpdate};
use crate::domain::webhook::{
    EnabledEvents, EndpointDescription, EndpointUrl, RateLimit, SignatureScheme, WebhookAttempt, WebhookEndpoint,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::{Kind, WebhookAttemptId, WebhookEndpointId};
use crate::service::webhooks;
use crate::views::{Render, WebhookAttemptView, WebhookEndpointView};
use crate::webhooks::ssrf::check_url;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(recover))
        .routes(routes!(attempts))
}

/// `POST /v1/webhook_endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/webhooks/casapay", "enabled_events": ["claim.approved", "claim.denied"],
    "description": "Claim decisions"}))]
pub struct WebhookEndpointCreate {
    #[schema(inline)]
    pub url: EndpointUrl,
    #[schema(inline)]
    pub enabled_events: EnabledEvents,
    #[schema(inline)]
    pub description: Option<EndpointDescription>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    /// `hmac_sha256` (the default: a shared secret) or `ed25519` (a public key to verify with).
    pub signature_scheme: Option<SignatureScheme>,
    #[schema(inline)]
    pub rate_limit: Option<RateLimit>,
}

/// `POST /v1/webhook_endpoints/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointUpdate {
    #[schema(inline)]
    pub url: Option<EndpointUrl>,
    #[schema(inline)]
    pub enabled_events: Option<EnabledEvents>,
    /// `""` clears it.
    #[serde(default)]
    #[schema(inline)]
    pub description: Patch<EndpointDescription>,
    pub disabled: Option<bool>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    /// `""` removes the limit.
    #[serde(default)]
    #[schema(inline)]
    pub rate_limit: Patch<RateLimit>,
}

/// `POST /v1/webhook_endpoints/:id/recover`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": 1_708_819_200}))]
pub struct WebhookEndpointRecover {
    /// Deliveries created at or after this time (unix seconds) that failed for good are queued again.
    pub since: UnixTime,
}

/// A URL the server may send to (see `webhooks::ssrf`).
fn checked_url(state: &AppState, url: EndpointUrl) -> ApiResult<String> {
    let url = url.into_string();
    check_url(&url, &state.egress).map_err(|e| ApiError::invalid("url_invalid", "url", capitalise(&e.to_string())))?;
    Ok(url)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Create a webhook endpoint; the answer carries its `secret`, once.
#[utoipa::path(post, path = "/v1/webhook_endpoints", tag = "Webhook endpoints", request_body(content((WebhookEndpointCreate = "application/json"), (WebhookEndpointCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new endpoint, with its secret", body = WebhookEndpointView), Errors))]
async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Input(input): Input<WebhookEndpointCreate>,
) -> ApiResult<Response> {
    let input = webhooks::NewEndpoint {
        url: checked_url(&state, input.url)?,
        enabled_events: input.enabled_events.into_vec(),
        description: input.description.map(EndpointDescription::into_string),
        metadata: input.metadata,
        signature_scheme: input.signature_scheme.unwrap_or(SignatureScheme::HmacSha256),
        rate_limit: input.rate_limit.map(RateLimit::get),
    };
    write(&state, &call, async |tx| {
        webhooks::create(tx, &call, input).await.map(|e| WebhookEndpointView::with_secret(&e))
    })
    .await
}

/// Retrieve a webhook endpoint.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}", tag = "Webhook endpoints", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The endpoint", body = WebhookEndpointView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<WebhookEndpointView>> {
    object_paths(Kind::WebhookEndpoint, &id, q.expand)?;
    Ok(Json(webhooks::retrieve(&state.store, &call, &id).await?.view()))
}

/// Update a webhook endpoint.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}", tag = "Webhook endpoints", params(IdPath), request_body(content((WebhookEndpointUpdate = "application/json"), (WebhookEndpointUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated endpoint", body = WebhookEndpointView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<WebhookEndpointUpdate>,
) -> ApiResult<Response> {
    check_id(Kind::WebhookEndpoint, &id)?;
    let input = webhooks::EndpointPatch {
        url: input.url.map(|u| checked_url(&state, u)).transpose()?,
        enabled_events: input.enabled_events.map(EnabledEvents::into_vec),
        description: match input.description {
            Patch::Absent => None,
            Patch::Clear => Some(None),
            Patch::Set(d) => Some(Some(d.into_string())),
        },
        disabled: input.disabled,
        metadata: input.metadata,
        rate_limit: match input.rate_limit {
            Patch::Absent => None,
            Patch::Clear => Some(None),
            Patch::Set(r) => Some(Some(r.get())),
        },
    };
    write_view(&state, &call, async |tx| webhooks::update(tx, &call, &id, input).await).await
}

/// Delete a webhook endpoint.
#[utoipa::path(delete, path = "/v1/webhook_endpoints/{id}", tag = "Webhook endpoints", params(IdPath),
    responses((status = 200, description = "Deleted", body = DeletedWebhookEndpoint), Errors))]
async fn delete(State(state): State<AppState>, Platform(call): Platform, PathId(id): PathId) -> ApiResult<Json<Value>> {
    check_id(Kind::WebhookEndpoint, &id)?;
    webhooks::delete(&state.store, &call, &id).await?;
    Ok(Json(json!({"id": id, "object": WebhookEndpoint::OBJECT, "deleted": true})))
}

/// A new secret; each secret it replaced in the last 24 hours keeps signing beside it until 24 hours after its rotation.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/rotate_secret", tag = "Webhook endpoints", params(IdPath),
    responses((status = 200, description = "The endpoint, with its new secret", body = WebhookEndpointView), Errors))]
async fn rotate_secret(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(NoParams {}): Input<NoParams>,
) -> ApiResult<Response> {
    check_id(Kind::WebhookEndpoint, &id)?;
    write(&state, &call, async |tx| {
        webhooks::rotate_secret(tx, &call, &id).await.map(|e| WebhookEndpointView::with_secret(&e))
    })
    .await
}

/// What a recovery queued again.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct WebhookEndpointRecovery {
    /// `webhook_endpoint_recovery`.
    #[schema(value_type = String)]
    pub object: &'static str,
    pub webhook_endpoint: String,
    pub since: i64,
    /// How many deliveries were queued again.
    pub deliveries: i64,
}

/// Queue again every delivery to the endpoint that failed for good since `since`: each starts its retry schedule
/// from the first attempt.
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/recover", tag = "Webhook endpoints", params(IdPath),
    request_body(content((WebhookEndpointRecover = "application/json"), (WebhookEndpointRecover = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "How many deliveries were queued again", body = WebhookEndpointRecovery), Errors))]
async fn recover(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<WebhookEndpointRecover>,
) -> ApiResult<Response> {
    check_id(Kind::WebhookEndpoint, &id)?;
    let since = input.since.get();
    write(&state, &call, async |tx| {
        let deliveries = webhooks::recover(tx, &call, &id, since).await?;
        Ok(WebhookEndpointRecovery {
            object: "webhook_endpoint_recovery",
            webhook_endpoint: id.clone(),
            since,
            deliveries: deliveries as i64,
        })
    })
    .await
}

list_query! {
    /// `GET /v1/webhook_endpoints`.
    WebhookEndpointList, WebhookEndpointId {}
}

list_query! {
    /// `GET /v1/webhook_endpoints/:id/attempts`.
    AttemptList, WebhookAttemptId {}
}

/// List webhook endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhook_endpoints", tag = "Webhook endpoints", params(WebhookEndpointList),
    responses((status = 200, description = "A page of endpoints", body = List<WebhookEndpointView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<WebhookEndpointList>,
) -> ApiResult<Json<ListBody<WebhookEndpointView>>> {
    let page = q.page()?;
    expand_paths(q.expand, WebhookEndpoint::OBJECT, true)?;
    Ok(render(webhooks::list(&state.store, &call, &page).await?, "/v1/webhook_endpoints"))
}

/// The delivery attempts to an endpoint, newest first.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}/attempts", tag = "Webhook endpoints", params(IdPath, AttemptList),
    responses((status = 200, description = "A page of attempts", body = List<WebhookAttemptView>), Errors))]
async fn attempts(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    QueryInput(q): QueryInput<AttemptList>,
) -> ApiResult<Json<ListBody<WebhookAttemptView>>> {
    check_id(Kind::WebhookEndpoint, &id)?;
    let page = q.page()?;
    expand_paths(q.expand, WebhookAttempt::OBJECT, true)?;
    let attempts = webhooks::attempts(&state.store, &call, &id, &page).await?;
    Ok(render(attempts, format!("/v1/webhook_endpoints/{id}/attempts")))
}
