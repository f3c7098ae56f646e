//! `/v1/guarantees`

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, Platform};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render_expanded};
use super::openapi::{Errors, ExpandOnly, ExpandPath, ExpandQuery, IdPath, List};
use super::{expand_paths, object_paths, write_expanded, write_recorded};
use crate::app::AppState;
use crate::domain::UnixTime;
use crate::domain::guarantee::{Guarantee, GuaranteeStatus};
use crate::domain::metadata::{self, MetadataUpdate};
use crate::domain::money::{Amount, Currency};
use crate::error::ApiResult;
use crate::ids::{CustomerId, GuaranteeId, Kind, PolicyId};
use crate::service::expand::Expanded;
use crate::service::{expand, guarantees};
use crate::store::guarantees::GuaranteeFilters;
use crate::views::GuaranteeView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, update)).routes(routes!(cancel))
}

/// `POST /v1/guarantees`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"policy": "gpol_abc123", "tenant": "cus_123456789", "coverage_amount": 120000,
    "currency": "eur", "start_date": 1767225600, "end_date": 1893456000}))]
pub struct GuaranteeCreate {
    #[schema(inline)]
    pub policy: PolicyId,
    #[schema(inline)]
    pub tenant: CustomerId,
    /// Monthly coverage, in the currency's minor unit.
    #[schema(inline)]
    pub coverage_amount: Amount,
    #[schema(inline)]
    pub currency: Currency,
    #[schema(inline)]
    pub start_date: UnixTime,
    #[schema(inline)]
    pub end_date: UnixTime,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// `POST /v1/guarantees/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuaranteeUpdate {
    /// Later than the current end date, while pending or active.
    #[schema(inline)]
    pub end_date: Option<UnixTime>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Guarantee a tenant's rent on a policy's terms.
#[utoipa::path(post, path = "/v1/guarantees", tag = "Guarantees", request_body(content((GuaranteeCreate = "application/json"), (GuaranteeCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new guarantee (`policy`, `tenant` expandable)", body = GuaranteeView), Errors))]
async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Input(input): Input<GuaranteeCreate>,
) -> ApiResult<Response> {
    let paths = expand_paths(input.expand, Guarantee::OBJECT, false)?;
    let input = guarantees::NewGuarantee {
        policy: input.policy.into_string(),
        tenant: input.tenant.into_string(),
        coverage_amount: input.coverage_amount,
        currency: input.currency,
        start_date: input.start_date.get(),
        end_date: input.end_date.get(),
        metadata: input.metadata,
    };
    write_recorded(&state, &call, &paths, async |tx| guarantees::create(tx, &call, input).await).await
}

/// Retrieve a guarantee.
#[utoipa::path(get, path = "/v1/guarantees/{id}", tag = "Guarantees", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The guarantee", body = GuaranteeView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<Expanded<GuaranteeView>>> {
    let paths = object_paths(Kind::Guarantee, &id, q.expand)?;
    let g = guarantees::retrieve(&state.store, &call, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &call.scope, g, &paths).await?))
}

/// Update a guarantee's `metadata`, or move its `end_date` later.
#[utoipa::path(post, path = "/v1/guarantees/{id}", tag = "Guarantees", params(IdPath), request_body(content((GuaranteeUpdate = "application/json"), (GuaranteeUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated guarantee", body = GuaranteeView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<GuaranteeUpdate>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Guarantee, &id, input.expand)?;
    let input = guarantees::GuaranteePatch { end_date: input.end_date.map(UnixTime::get), metadata: input.metadata };
    write_expanded(&state, &call, &paths, async |tx| guarantees::update(tx, &call, &id, input).await).await
}

/// Cancel a pending or active guarantee.
#[utoipa::path(post, path = "/v1/guarantees/{id}/cancel", tag = "Guarantees", params(IdPath), request_body(content((ExpandOnly = "application/json"), (ExpandOnly = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The cancelled guarantee", body = GuaranteeView), Errors))]
async fn cancel(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<ExpandOnly>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Guarantee, &id, input.expand)?;
    write_expanded(&state, &call, &paths, async |tx| guarantees::cancel(tx, &call, &id).await).await
}

list_query! {
    /// `GET /v1/guarantees`.
    GuaranteeList, GuaranteeId {
        status: Option<GuaranteeStatus>,
        tenant: Option<CustomerId>,
        policy: Option<PolicyId>,
    }
}

/// List guarantees, newest first.
#[utoipa::path(get, path = "/v1/guarantees", tag = "Guarantees", params(GuaranteeList),
    responses((status = 200, description = "A page of guarantees", body = List<GuaranteeView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<GuaranteeList>,
) -> ApiResult<Json<ListBody<Expanded<GuaranteeView>>>> {
    let page = q.page()?;
    let paths = expand_paths(q.expand, Guarantee::OBJECT, true)?;
    let filters = GuaranteeFilters {
        status: q.status,
        tenant: q.tenant.map(CustomerId::into_string),
        policy: q.policy.map(PolicyId::into_string),
    };
    let found = guarantees::list(&state.store, &call, &page, filters).await?;
    render_expanded(&state.store, &call.scope, found, &paths, "/v1/guarantees").await
}
