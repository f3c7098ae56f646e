//! `/v1/guarantees`

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render_expanded};
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::guarantee::{Guarantee, GuaranteeStatus};
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::{self, expand, guarantees};
use crate::store::guarantees::GuaranteeFilters;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/guarantees", post(create).get(list))
        .route("/v1/guarantees/{id}", get(retrieve).post(update))
        .route("/v1/guarantees/{id}/cancel", post(cancel))
}

async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Response> {
    p.allow(&["policy", "tenant", "coverage_amount", "currency", "start_date", "end_date", "metadata"])?;
    let paths = expand_param(&mut p, Guarantee::OBJECT, false)?;
    let input = guarantees::NewGuarantee {
        policy: p.req_id("policy", Kind::Policy)?,
        tenant: p.req_id("tenant", Kind::Customer)?,
        coverage_amount: p.req_amount("coverage_amount")?,
        currency: p.req_currency("currency")?,
        start_date: p.req_int("start_date")?,
        end_date: p.req_int("end_date")?,
        metadata: p.metadata()?,
    };
    let body = service::write_json(&state.store, &call, async |tx| {
        let g = guarantees::create(tx, &call, input).await?;
        expand::apply(tx, &call.scope, &g, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<Value>> {
    check_id(Kind::Guarantee, &id)?;
    q.allow(&[])?;
    let paths = expand_param(&mut q, Guarantee::OBJECT, false)?;
    let g = guarantees::retrieve(&state.store, &call, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &call.scope, &g, &paths).await?))
}

async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Guarantee, &id)?;
    p.allow(&["end_date", "metadata"])?;
    let paths = expand_param(&mut p, Guarantee::OBJECT, false)?;
    let input = guarantees::GuaranteePatch { end_date: p.int("end_date")?, metadata: p.metadata()? };
    let body = service::write_json(&state.store, &call, async |tx| {
        let g = guarantees::update(tx, &call, &id, input).await?;
        expand::apply(tx, &call.scope, &g, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

async fn cancel(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Guarantee, &id)?;
    p.allow(&[])?;
    let paths = expand_param(&mut p, Guarantee::OBJECT, false)?;
    let body = service::write_json(&state.store, &call, async |tx| {
        let g = guarantees::cancel(tx, &call, &id).await?;
        expand::apply(tx, &call.scope, &g, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Value>>> {
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
