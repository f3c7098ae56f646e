//! `/v1/payouts` (read-only)

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, Platform};
use super::input::QueryInput;
use super::list::{ListBody, list_query, render_expanded};
use super::openapi::{Errors, ExpandQuery, IdPath, List};
use super::{expand_paths, object_paths};
use crate::app::AppState;
use crate::domain::payout::Payout;
use crate::error::ApiResult;
use crate::ids::{ClaimId, GuaranteeId, Kind, PayoutId};
use crate::service::expand::Expanded;
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
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<Expanded<PayoutView>>> {
    let paths = object_paths(Kind::Payout, &id, q.expand)?;
    let payout = review::retrieve_payout(&state.store, &call, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &call.scope, payout, &paths).await?))
}

list_query! {
    /// `GET /v1/payouts`.
    PayoutList, PayoutId {
        claim: Option<ClaimId>,
        guarantee: Option<GuaranteeId>,
    }
}

/// List payouts, newest first.
#[utoipa::path(get, path = "/v1/payouts", tag = "Payouts", params(PayoutList),
    responses((status = 200, description = "A page of payouts", body = List<PayoutView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<PayoutList>,
) -> ApiResult<Json<ListBody<Expanded<PayoutView>>>> {
    let page = q.page()?;
    let paths = expand_paths(q.expand, Payout::OBJECT, true)?;
    let filters = PayoutFilters {
        claim: q.claim.map(ClaimId::into_string),
        guarantee: q.guarantee.map(GuaranteeId::into_string),
    };
    let found = review::list_payouts(&state.store, &call, &page, filters).await?;
    render_expanded(&state.store, &call.scope, found, &paths, "/v1/payouts").await
}
