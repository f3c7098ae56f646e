//! `/v1/guarantees`

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::check_id;
use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use crate::app::AppState;
use crate::domain::guarantee::{Guarantee, GuaranteeStatus};
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::{self, guarantees};
use crate::store::guarantees::GuaranteeFilters;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/guarantees", post(create).get(list))
        .route("/v1/guarantees/{id}", get(retrieve).post(update))
        .route("/v1/guarantees/{id}/cancel", post(cancel))
}

async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Body(mut p): Body,
) -> ApiResult<Json<Guarantee>> {
    p.allow(&["policy", "tenant", "coverage_amount", "currency", "start_date", "end_date", "metadata"])?;
    let input = guarantees::NewGuarantee {
        policy: p.req_id("policy", Kind::Policy)?,
        tenant: p.req_id("tenant", Kind::Customer)?,
        coverage_amount: p.req_amount("coverage_amount")?,
        currency: p.req_currency("currency")?,
        start_date: p.req_int("start_date")?,
        end_date: p.req_int("end_date")?,
        metadata: p.metadata()?,
    };
    let created = service::write(&state.store, async |tx| guarantees::create(tx, &call, input).await).await?;
    Ok(Json(created))
}

async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
) -> ApiResult<Json<Guarantee>> {
    check_id(Kind::Guarantee, &id)?;
    Ok(Json(guarantees::retrieve(&state.store, &call, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Guarantee>> {
    check_id(Kind::Guarantee, &id)?;
    p.allow(&["end_date", "metadata"])?;
    let input = guarantees::GuaranteePatch { end_date: p.int("end_date")?, metadata: p.metadata()? };
    let updated = service::write(&state.store, async |tx| guarantees::update(tx, &call, &id, input).await).await?;
    Ok(Json(updated))
}

async fn cancel(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(p): Body,
) -> ApiResult<Json<Guarantee>> {
    check_id(Kind::Guarantee, &id)?;
    p.allow(&[])?;
    let cancelled = service::write(&state.store, async |tx| guarantees::cancel(tx, &call, &id).await).await?;
    Ok(Json(cancelled))
}

async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Guarantee>>> {
    q.allow(&[LIST_PARAMS, &["status", "tenant", "policy"]].concat())?;
    let page = page_request(&mut q, Kind::Guarantee)?;
    let filters = GuaranteeFilters {
        status: q.choice("status", GuaranteeStatus::parse, GuaranteeStatus::names)?,
        tenant: q.id("tenant", Kind::Customer)?,
        policy: q.id("policy", Kind::Policy)?,
    };
    Ok(render(guarantees::list(&state.store, &call, &page, filters).await?, "/v1/guarantees"))
}
