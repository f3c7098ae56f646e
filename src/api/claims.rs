//! `/v1/claims`, the operators' review routes and the test helpers.

use super::openapi::{
    ApproveParams, ClaimCreate, ClaimFilters as ClaimQuery, DenyParams, Errors, ExpandQuery, HelperDenyParams, IdPath,
    List, ListQuery, MetadataUpdate,
};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::expand::Expanded;
use axum::Json;
use axum::response::Response;

use super::extract::{Body, Operator, PathId, Platform, Query, TestHelper};
use super::list::{LIST_PARAMS, ListBody, page_request, render_expanded};
use super::params::Params;
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::TIMESTAMP_RANGE;
use crate::domain::claim::{self, Claim, ClaimReason, ClaimStatus, Evidence, OperatorDenialReason};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::review::{self, Verdict};
use crate::service::{self, Call, claims, expand};
use crate::store::Scope;
use crate::store::claims::ClaimFilters;
use crate::views::{ClaimView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve, update))
        .routes(routes!(operator_approve))
        .routes(routes!(operator_deny))
        .routes(routes!(helper_approve))
        .routes(routes!(helper_deny))
}

/// File a claim against a guarantee. It is reviewed within seconds.
#[utoipa::path(post, path = "/v1/claims", tag = "Claims", request_body(content((ClaimCreate = "application/json"), (ClaimCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The claim, `under_review`", body = ClaimView), Errors))]
async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Response> {
    let paths = expand_param(&mut p, Claim::OBJECT, false)?;
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
        due_date: ev.req_int_in("due_date", TIMESTAMP_RANGE)?,
        description: ev.bounded_string("description", claim::DESCRIPTION_MAX_CHARS)?,
    };
    let input = claims::NewClaim { guarantee, amount, currency, reason, evidence, metadata: p.metadata()? };
    let body = service::write_json(&state.store, &call, async |tx| {
        let c = claims::create(tx, &call, input).await?;
        expand::apply(tx, &call.scope, c, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

/// Retrieve a claim.
#[utoipa::path(get, path = "/v1/claims/{id}", tag = "Claims", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The claim", body = ClaimView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<Expanded<ClaimView>>> {
    check_id(Kind::Claim, &id)?;
    let paths = expand_param(&mut q, Claim::OBJECT, false)?;
    q.allow(&[])?;
    let c = claims::retrieve(&state.store, &call, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &call.scope, c, &paths).await?))
}

/// Update a claim's `metadata`.
#[utoipa::path(post, path = "/v1/claims/{id}", tag = "Claims", params(IdPath), request_body(content((MetadataUpdate = "application/json"), (MetadataUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated claim", body = ClaimView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Claim, &id)?;
    let paths = expand_param(&mut p, Claim::OBJECT, false)?;
    p.allow(&["metadata"])?;
    let metadata = p.metadata()?;
    let body = service::write_json(&state.store, &call, async |tx| {
        let c = claims::update_metadata(tx, &call, &id, metadata).await?;
        expand::apply(tx, &call.scope, c, &paths).await
    })
    .await?;
    Ok(json_body(body))
}

/// List claims, newest first.
#[utoipa::path(get, path = "/v1/claims", tag = "Claims", params(ListQuery, ClaimQuery),
    responses((status = 200, description = "A page of claims", body = List<ClaimView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Expanded<ClaimView>>>> {
    q.allow(&[LIST_PARAMS, &["guarantee", "status"]].concat())?;
    let page = page_request(&mut q, Kind::Claim)?;
    let paths = expand_param(&mut q, Claim::OBJECT, true)?;
    let filters = ClaimFilters {
        guarantee: q.id("guarantee", Kind::Guarantee)?,
        status: q.choice("status", ClaimStatus::parse, ClaimStatus::names)?,
    };
    let found = claims::list(&state.store, &call, &page, filters).await?;
    render_expanded(&state.store, &call.scope, found, &paths, "/v1/claims").await
}

/// `amount` of an approval: optional, and never more than the computed maximum.
fn approve_verdict(p: &mut Params) -> ApiResult<Verdict> {
    p.allow(&["amount"])?;
    let amount = if p.contains("amount") { Some(p.req_amount("amount")?.get()) } else { None };
    Ok(Verdict::Approve { amount })
}

/// `denial_reason` (one of the operators' reasons; `required` for operators, optional
/// for the test helper) and `note` (up to 1,000 characters; required with `other`).
fn deny_verdict(p: &mut Params, required: bool) -> ApiResult<Verdict> {
    p.allow(&["denial_reason", "note"])?;
    let reason = p.choice("denial_reason", OperatorDenialReason::parse, OperatorDenialReason::names)?;
    if required && reason.is_none() {
        return Err(ApiError::missing("denial_reason"));
    }
    // A note of blanks explains nothing: it counts as none.
    let note = p.bounded_string("note", claim::NOTE_MAX_CHARS)?.filter(|n| !n.trim().is_empty());
    if reason.is_some_and(OperatorDenialReason::requires_note) && note.is_none() {
        return Err(ApiError::invalid(
            "parameter_missing",
            "note",
            "Missing required param: note. A claim denied for `other` needs a note that says why.",
        ));
    }
    Ok(Verdict::Deny { reason, note })
}

/// Operators act across accounts: the service finds the claim's own scope.
async fn operator_review(state: &AppState, op: Operator, id: &str, verdict: Verdict) -> ApiResult<Response> {
    check_id(Kind::Claim, id)?;
    // The verdict without the note: free text an operator wrote has no place in logs.
    let (decision, amount, reason) = match &verdict {
        Verdict::Approve { amount } => ("approve", *amount, None),
        Verdict::Deny { reason, .. } => ("deny", None, reason.map(|r| r.as_str())),
    };
    tracing::info!(operator_key = %op.key_id, claim = %id, decision, ?amount, ?reason, "operator review");
    let call = Call {
        scope: Scope { account_id: String::new(), livemode: false },
        now: op.now,
        request_id: op.request_id.clone(),
        idempotency_key: None,
        idempotency: None,
    };
    let body = service::write_json(&state.store, &call, async |tx| {
        review::review_by_hand(tx, None, &call, id, verdict).await.map(|c| c.view())
    })
    .await?;
    Ok(json_body(body))
}

/// Approve a claim under review (operator keys only).
#[utoipa::path(post, path = "/v1/claims/{id}/approve", tag = "Claim review", params(IdPath), request_body(content((ApproveParams = "application/json"), (ApproveParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The approved claim", body = ClaimView), Errors))]
async fn operator_approve(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    let verdict = approve_verdict(&mut p)?;
    operator_review(&state, op, &id, verdict).await
}

/// Deny a claim under review (operator keys only).
#[utoipa::path(post, path = "/v1/claims/{id}/deny", tag = "Claim review", params(IdPath), request_body(content((DenyParams = "application/json"), (DenyParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The denied claim", body = ClaimView), Errors))]
async fn operator_deny(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    let verdict = deny_verdict(&mut p, true)?;
    operator_review(&state, op, &id, verdict).await
}

/// Test helpers force an outcome in test mode; live keys do not see them (`TestHelper`).
async fn helper_review(state: &AppState, call: Call, id: &str, p: &mut Params, approve: bool) -> ApiResult<Response> {
    check_id(Kind::Claim, id)?;
    let verdict = if approve { approve_verdict(p)? } else { deny_verdict(p, false)? };
    let scope = call.scope.clone();
    let body = service::write_json(&state.store, &call, async |tx| {
        review::review_by_hand(tx, Some(&scope), &call, id, verdict).await.map(|c| c.view())
    })
    .await?;
    Ok(json_body(body))
}

/// Test mode: approve a claim under review, to try webhook handling.
#[utoipa::path(post, path = "/v1/test_helpers/claims/{id}/approve", tag = "Claim review", params(IdPath), request_body(content((ApproveParams = "application/json"), (ApproveParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The approved claim", body = ClaimView), Errors))]
async fn helper_approve(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    helper_review(&state, call, &id, &mut p, true).await
}

/// Test mode: deny a claim under review.
#[utoipa::path(post, path = "/v1/test_helpers/claims/{id}/deny", tag = "Claim review", params(IdPath), request_body(content((HelperDenyParams = "application/json"), (HelperDenyParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The denied claim", body = ClaimView), Errors))]
async fn helper_deny(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    helper_review(&state, call, &id, &mut p, false).await
}
