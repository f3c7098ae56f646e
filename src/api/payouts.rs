//! `/v1/payouts` (read-only)

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::check_id;
use super::extract::{PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use crate::app::AppState;
use crate::domain::payout::Payout;
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::review;
use crate::store::payouts::PayoutFilters;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/payouts", get(list)).route("/v1/payouts/{id}", get(retrieve))
}

async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
) -> ApiResult<Json<Payout>> {
    check_id(Kind::Payout, &id)?;
    Ok(Json(review::retrieve_payout(&state.store, &call, &id).await?))
}

async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Payout>>> {
    q.allow(&[LIST_PARAMS, &["claim", "guarantee"]].concat())?;
    let page = page_request(&mut q, Kind::Payout)?;
    let filters = PayoutFilters { claim: q.id("claim", Kind::Claim)?, guarantee: q.id("guarantee", Kind::Guarantee)? };
    Ok(render(review::list_payouts(&state.store, &call, &page, filters).await?, "/v1/payouts"))
}
