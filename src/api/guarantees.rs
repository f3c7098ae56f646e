//! `/v1/guarantees`

use super::openapi::{
    Errors, ExpandOnly, ExpandQuery, GuaranteeCreate, GuaranteeFilters as GuaranteeQuery, GuaranteeUpdate, IdPath,
    List, ListQuery,
};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::expand::Expanded;
use axum::Json;
use axum::response::Response;

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render_expanded};
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::TIMESTAMP_RANGE;
use crate::domain::guarantee::{Guarantee, GuaranteeStatus};
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::{self, expand, guarantees};
use crate::store::guarantees::GuaranteeFilters;
use crate::views::GuaranteeView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, update)).routes(routes!(cancel))
}

/// Guarantee a tenant's rent on a policy's terms.
#[utoipa::path(post, path = "/v1/guarantees", tag = "Guarantees", request_body(content((GuaranteeCreate = "application/json"), (GuaranteeCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new guarantee (`policy`, `tenant` expandable)", body = GuaranteeView), Errors))]
async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Response> {
    let paths = expand_param(&mut p, Guarantee::OBJECT, false)?;
    p.allow(&["policy", "tenant", "coverage_amount", "currency", "start_date", "end_date", "metadata"])?;
    let input = guarantees::NewGuarantee {
        policy: p.req_id("policy", Kind::Policy)?,
        tenant: p.req_id("tenant", Kind::Customer)?,
        coverage_amount: p.req_amount("coverage_amount")?,
        currency: p.req_currency("currency")?,
        start_date: p.req_int_in("start_date", TIMESTAMP_RANGE)?,
        end_date: p.req_int_in("end_date", TIMESTAMP_RANGE)?,
        metadata: p.metadata()?,
    };
    let body = service::write_json(&state.store, &call, async |tx| {
        let g = guarantees::create(tx, &call, input).await?;
        expand::apply(tx, &call.scope, g, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

/// Retrieve a guarantee.
#[utoipa::path(get, path = "/v1/guarantees/{id}", tag = "Guarantees", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The guarantee", body = GuaranteeView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<Expanded<GuaranteeView>>> {
    check_id(Kind::Guarantee, &id)?;
    let paths = expand_param(&mut q, Guarantee::OBJECT, false)?;
    q.allow(&[])?;
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
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Guarantee, &id)?;
    let paths = expand_param(&mut p, Guarantee::OBJECT, false)?;
    p.allow(&["end_date", "metadata"])?;
    let input =
        guarantees::GuaranteePatch { end_date: p.int_in("end_date", TIMESTAMP_RANGE)?, metadata: p.metadata()? };
    let body = service::write_json(&state.store, &call, async |tx| {
        let g = guarantees::update(tx, &call, &id, input).await?;
        expand::apply(tx, &call.scope, g, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

/// Cancel a pending or active guarantee.
#[utoipa::path(post, path = "/v1/guarantees/{id}/cancel", tag = "Guarantees", params(IdPath), request_body(content((ExpandOnly = "application/json"), (ExpandOnly = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The cancelled guarantee", body = GuaranteeView), Errors))]
async fn cancel(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Guarantee, &id)?;
    let paths = expand_param(&mut p, Guarantee::OBJECT, false)?;
    p.allow(&[])?;
    let body = service::write_json(&state.store, &call, async |tx| {
        let g = guarantees::cancel(tx, &call, &id).await?;
        expand::apply(tx, &call.scope, g, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

/// List guarantees, newest first.
#[utoipa::path(get, path = "/v1/guarantees", tag = "Guarantees", params(ListQuery, GuaranteeQuery),
    responses((status = 200, description = "A page of guarantees", body = List<GuaranteeView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Expanded<GuaranteeView>>>> {
    q.allow(&[LIST_PARAMS, &["status", "tenant", "policy"]].concat())?;
    let page = page_request(&mut q, Kind::Guarantee)?;
    let paths = expand_param(&mut q, Guarantee::OBJECT, true)?;
    let filters = GuaranteeFilters {
        status: q.choice("status", GuaranteeStatus::parse, GuaranteeStatus::names)?,
        tenant: q.id("tenant", Kind::Customer)?,
        policy: q.id("policy", Kind::Policy)?,
    };
    let found = guarantees::list(&state.store, &call, &page, filters).await?;
    render_expanded(&state.store, &call.scope, found, &paths, "/v1/guarantees").await
}
