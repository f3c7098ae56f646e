//! `/v1/claims`

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::check_id;
use super::extract::{Body, Operator, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use super::params::Params;
use crate::app::AppState;
use crate::domain::claim::{self, Claim, ClaimReason, ClaimStatus, DenialReason, Evidence};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::review::{self, Verdict};
use crate::service::{self, Call, claims};
use crate::store::Scope;
use crate::store::claims::ClaimFilters;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/claims", post(create).get(list))
        .route("/v1/claims/{id}", get(retrieve).post(update))
        .route("/v1/claims/{id}/approve", post(operator_approve))
        .route("/v1/claims/{id}/deny", post(operator_deny))
        .route("/v1/test_helpers/claims/{id}/approve", post(helper_approve))
        .route("/v1/test_helpers/claims/{id}/deny", post(helper_deny))
}

/// `amount` of an approval: optional, and never more than the computed maximum.
fn approve_verdict(p: &mut Params) -> ApiResult<Verdict> {
    p.allow(&["amount"])?;
    let amount = if p.contains("amount") { Some(p.req_amount("amount")?.get()) } else { None };
    Ok(Verdict::Approve { amount })
}

fn deny_verdict(p: &mut Params, required: bool) -> ApiResult<Verdict> {
    p.allow(&["denial_reason"])?;
    let reason = p.choice("denial_reason", DenialReason::parse, DenialReason::names)?;
    if required && reason.is_none() {
        return Err(ApiError::missing("denial_reason"));
    }
    Ok(Verdict::Deny { reason })
}

/// The call of an operator: its scope is the claim's, found by the service.
fn operator_call(op: &Operator) -> Call {
    Call {
        scope: Scope { account_id: String::new(), livemode: false },
        now: op.now,
        request_id: op.request_id.clone(),
        idempotency_key: None,
    }
}

async fn operator_review(state: &AppState, op: Operator, id: &str, verdict: Verdict) -> ApiResult<Json<Claim>> {
    check_id(Kind::Claim, id)?;
    tracing::info!(operator_key = %op.key_id, claim = %id, ?verdict, "operator review");
    let call = operator_call(&op);
    let claim =
        service::write(&state.store, async |tx| review::review_by_hand(tx, None, &call, id, verdict).await).await?;
    Ok(Json(claim))
}

async fn operator_approve(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    let verdict = approve_verdict(&mut p)?;
    operator_review(&state, op, &id, verdict).await
}

async fn operator_deny(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    let verdict = deny_verdict(&mut p, true)?;
    operator_review(&state, op, &id, verdict).await
}

/// Test helpers force an outcome in test mode; live keys do not see them.
async fn helper_review(state: &AppState, call: Call, id: &str, verdict: Verdict) -> ApiResult<Json<Claim>> {
    if call.scope.livemode {
        return Err(ApiError::route_not_found("POST", &format!("/v1/test_helpers/claims/{id}")));
    }
    check_id(Kind::Claim, id)?;
    let scope = call.scope.clone();
    let claim =
        service::write(&state.store, async |tx| review::review_by_hand(tx, Some(&scope), &call, id, verdict).await)
            .await?;
    Ok(Json(claim))
}

async fn helper_approve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    if call.scope.livemode {
        return helper_review(&state, call, &id, Verdict::Approve { amount: None }).await;
    }
    let verdict = approve_verdict(&mut p)?;
    helper_review(&state, call, &id, verdict).await
}

async fn helper_deny(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    if call.scope.livemode {
        return helper_review(&state, call, &id, Verdict::Deny { reason: None }).await;
    }
    let verdict = deny_verdict(&mut p, false)?;
    helper_review(&state, call, &id, verdict).await
}

async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Json<Claim>> {
    p.allow(&["guarantee", "amount", "currency", "reason", "evidence", "metadata"])?;
    let guarantee = p.req_id("guarantee", Kind::Guarantee)?;
    let amount = p.req_amount("amount")?;
    let currency = p.req_currency("currency")?;
    let reason =
        p.choice("reason", ClaimReason::parse, ClaimReason::names)?.ok_or_else(|| ApiError::missing("reason"))?;
    let mut ev = p.req_object("evidence")?;
    ev.allow(&["invoice_id", "due_date", "description"])?;
    let invoice_id = ev.req_string("invoice_id")?;
    if invoice_id.chars().count() > claim::INVOICE_ID_MAX_CHARS {
        return Err(ApiError::invalid(
            "invalid_string_length",
            "evidence[invoice_id]",
            format!("Invalid evidence[invoice_id]: must be at most {} characters.", claim::INVOICE_ID_MAX_CHARS),
        ));
    }
    let evidence = Evidence {
        invoice_id,
        due_date: ev.req_int("due_date")?,
        description: ev.bounded_string("description", claim::DESCRIPTION_MAX_CHARS)?,
    };
    let input = claims::NewClaim { guarantee, amount, currency, reason, evidence, metadata: p.metadata()? };
    let created = service::write(&state.store, async |tx| claims::create(tx, &call, input).await).await?;
    Ok(Json(created))
}

async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
) -> ApiResult<Json<Claim>> {
    check_id(Kind::Claim, &id)?;
    Ok(Json(claims::retrieve(&state.store, &call, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    check_id(Kind::Claim, &id)?;
    p.allow(&["metadata"])?;
    let metadata = p.metadata()?;
    let updated =
        service::write(&state.store, async |tx| claims::update_metadata(tx, &call, &id, metadata).await).await?;
    Ok(Json(updated))
}

async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Claim>>> {
    q.allow(&[LIST_PARAMS, &["guarantee", "status"]].concat())?;
    let page = page_request(&mut q, Kind::Claim)?;
    let filters = ClaimFilters {
        guarantee: q.id("guarantee", Kind::Guarantee)?,
        status: q.choice("status", ClaimStatus::parse, ClaimStatus::names)?,
    };
    Ok(render(claims::list(&state.store, &call, &page, filters).await?, "/v1/claims"))
}
