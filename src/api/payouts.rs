//! `/v1/payouts` (read-only)

use super::openapi::{Errors, ExpandQuery, IdPath, List, ListQuery, PayoutFilters as PayoutQuery};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::expand::Expanded;
use axum::Json;

use super::extract::{PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render_expanded};
use super::{check_id, expand_param};
use crate::app::AppState;
use crate::domain::payout::Payout;
use crate::error::ApiResult;
use crate::ids::Kind;
use crate::service::{expand, review};
use crate::store::payouts::PayoutFilters;
use crate::views::PayoutView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retrieve))
}

/// Retrieve a payout.
#[utoipa::path(get, path = "/v1/payouts/{id}", tag = "Payouts", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The payout", body = PayoutView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<Expanded<PayoutView>>> {
    check_id(Kind::Payout, &id)?;
    let paths = expand_param(&mut q, Payout::OBJECT, false)?;
    q.allow(&[])?;
    let payout = review::retrieve_payout(&state.store, &call, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &call.scope, payout, &paths).await?))
}

/// List payouts, newest first.
#[utoipa::path(get, path = "/v1/payouts", tag = "Payouts", params(ListQuery, PayoutQuery),
    responses((status = 200, description = "A page of payouts", body = List<PayoutView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Expanded<PayoutView>>>> {
    q.allow(&[LIST_PARAMS, &["claim", "guarantee"]].concat())?;
    let page = page_request(&mut q, Kind::Payout)?;
    let paths = expand_param(&mut q, Payout::OBJECT, true)?;
    let filters = PayoutFilters { claim: q.id("claim", Kind::Claim)?, guarantee: q.id("guarantee", Kind::Guarantee)? };
    let found = review::list_payouts(&state.store, &call, &page, filters).await?;
    render_expanded(&state.store, &call.scope, found, &paths, "/v1/payouts").await
}
