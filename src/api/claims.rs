//! `/v1/claims`, the operators' review routes and the test helpers.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Operator, PathId, Platform, TestHelper};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render_expanded};
use super::openapi::{Errors, ExpandPath, ExpandQuery, IdPath, List};
use super::{check_id, expand_paths, object_paths, write_expanded, write_recorded, write_view};
use crate::app::AppState;
use crate::domain::UnixTime;
use crate::domain::claim::{
    Actor, Claim, ClaimReason, ClaimStatus, Evidence, EvidenceDescription, InvoiceId, OperatorDenialReason, ReviewNote,
};
use crate::domain::metadata::{self, MetadataUpdate};
use crate::domain::money::{Amount, Currency};
use crate::error::{ApiError, ApiResult};
use crate::ids::{ClaimId, FileId, GuaranteeId, Kind};
use crate::service::expand::Expanded;
use crate::service::review::{self, Reviewer, Verdict};
use crate::service::{Call, claims, expand};
use crate::store::Scope;
use crate::store::claims::ClaimFilters;
use crate::views::ClaimView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve, update))
        .routes(routes!(operator_approve))
        .routes(routes!(operator_deny))
        .routes(routes!(helper_approve))
        .routes(routes!(helper_deny))
}

/// The evidence of a claim.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParam {
    #[schema(inline)]
    pub invoice_id: InvoiceId,
    #[schema(inline)]
    pub due_date: UnixTime,
    #[schema(inline)]
    pub description: Option<EvidenceDescription>,
    /// Evidence files (`POST /v1/files`, purpose `claim_evidence`), at most 20.
    #[schema(max_items = 20)]
    pub files: Option<Vec<FileId>>,
}

/// `POST /v1/claims`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"guarantee": "grt_def456", "amount": 120000, "currency": "eur", "reason": "missed_payment",
    "evidence": {"invoice_id": "inv_abc123", "due_date": 1708732800, "description": "February 2025 rent — unpaid"}}))]
pub struct ClaimCreate {
    #[schema(inline)]
    pub guarantee: GuaranteeId,
    #[schema(inline)]
    pub amount: Amount,
    #[schema(inline)]
    pub currency: Currency,
    pub reason: ClaimReason,
    pub evidence: EvidenceParam,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// `POST /v1/claims/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimUpdate {
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    /// More evidence while the claim is under review; answers an operator's request.
    pub evidence: Option<EvidenceUpdateParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Evidence added to a claim under review: a new description, and files added to those
/// it has (never removed).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceUpdateParam {
    /// Replaces the description.
    #[schema(inline)]
    pub description: Option<EvidenceDescription>,
    /// Evidence files to add (ids already on the claim are kept once); the claim holds at most 20.
    #[schema(max_items = 20)]
    pub files: Option<Vec<FileId>>,
}

/// An approval.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveParams {
    /// At most the computed maximum; default that maximum.
    #[schema(inline)]
    pub amount: Option<Amount>,
}

/// An operator's denial.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyParams {
    pub denial_reason: OperatorDenialReason,
    #[schema(inline)]
    pub note: Option<ReviewNote>,
}

/// A test helper's denial: the reason is optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelperDenyParams {
    pub denial_reason: Option<OperatorDenialReason>,
    #[schema(inline)]
    pub note: Option<ReviewNote>,
}

/// File a claim against a guarantee. It is reviewed within seconds.
#[utoipa::path(post, path = "/v1/claims", tag = "Claims", request_body(content((ClaimCreate = "application/json"), (ClaimCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The claim, `under_review`", body = ClaimView), Errors))]
async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Input(input): Input<ClaimCreate>,
) -> ApiResult<Response> {
    let paths = expand_paths(input.expand, Claim::OBJECT, false)?;
    let evidence = Evidence {
        invoice_id: input.evidence.invoice_id.into_string(),
        due_date: input.evidence.due_date.get(),
        description: input.evidence.description.map(EvidenceDescription::into_string),
        files: file_ids(input.evidence.files),
    };
    let input = claims::NewClaim {
        guarantee: input.guarantee.into_string(),
        amount: input.amount,
        currency: input.currency,
        reason: input.reason,
        evidence,
        metadata: input.metadata,
    };
    write_recorded(&state, &call, &paths, async |tx| claims::create(tx, &call, input).await).await
}

/// Retrieve a claim.
#[utoipa::path(get, path = "/v1/claims/{id}", tag = "Claims", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The claim", body = ClaimView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<Expanded<ClaimView>>> {
    let paths = object_paths(Kind::Claim, &id, q.expand)?;
    let c = claims::retrieve(&state.store, &call, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &call.scope, c, &paths).await?))
}

/// Update a claim's `metadata`, or add evidence (a description, files) while it is under review (which answers an
/// operator's request for evidence).
#[utoipa::path(post, path = "/v1/claims/{id}", tag = "Claims", params(IdPath), request_body(content((ClaimUpdate = "application/json"), (ClaimUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated claim", body = ClaimView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<ClaimUpdate>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Claim, &id, input.expand)?;
    let metadata = input.metadata;
    let evidence = input.evidence.map(|e| claims::EvidenceUpdate {
        description: e.description.map(EvidenceDescription::into_string),
        files: e.files.map(|f| file_ids(Some(f))),
    });
    write_expanded(&state, &call, &paths, async |tx| claims::update(tx, &call, &id, metadata, evidence).await).await
}

fn file_ids(ids: Option<Vec<FileId>>) -> Vec<String> {
    ids.unwrap_or_default().into_iter().map(FileId::into_string).collect()
}

list_query! {
    /// `GET /v1/claims`.
    ClaimList, ClaimId {
        guarantee: Option<GuaranteeId>,
        status: Option<ClaimStatus>,
    }
}

/// List claims, newest first.
#[utoipa::path(get, path = "/v1/claims", tag = "Claims", params(ClaimList),
    responses((status = 200, description = "A page of claims", body = List<ClaimView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<ClaimList>,
) -> ApiResult<Json<ListBody<Expanded<ClaimView>>>> {
    let page = q.page()?;
    let paths = expand_paths(q.expand, Claim::OBJECT, true)?;
    let filters = ClaimFilters { guarantee: q.guarantee.map(GuaranteeId::into_string), status: q.status };
    let found = claims::list(&state.store, &call, &page, filters).await?;
    render_expanded(&state.store, &call.scope, found, &paths, "/v1/claims").await
}

fn approve_verdict(p: ApproveParams) -> Verdict {
    Verdict::Approve { amount: p.amount.map(Amount::get) }
}

/// `note` (required with `other`) with the reason; a note of blanks explains nothing,
/// so it counts as none.
pub(crate) fn deny_verdict(reason: Option<OperatorDenialReason>, note: Option<ReviewNote>) -> ApiResult<Verdict> {
    let note = note.map(ReviewNote::into_string).filter(|n| !n.trim().is_empty());
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
    tracing::info!(operator = %op.operator_id, operator_key = %op.key_id, claim = %id, decision, ?amount, ?reason, "operator review");
    let call = operator_call(&op);
    let reviewer = Reviewer {
        actor: Actor::Operator(op.operator_id.clone()),
        second_approval_amount: state.config.second_approval_amount,
    };
    write_view(state, &call, async |tx| review::review_by_hand(tx, None, &call, id, verdict, &reviewer).await).await
}

/// An operator's request: the claim's scope is found by the service.
pub(crate) fn operator_call(op: &Operator) -> Call {
    Call {
        scope: Scope { account_id: String::new(), livemode: false },
        now: op.now,
        request_id: op.request_id.clone(),
        idempotency_key: None,
        idempotency: None,
    }
}

/// Approve a claim under review (operator keys only).
#[utoipa::path(post, path = "/v1/claims/{id}/approve", tag = "Claim review", params(IdPath), request_body(content((ApproveParams = "application/json"), (ApproveParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The approved claim", body = ClaimView), Errors))]
async fn operator_approve(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Input(p): Input<ApproveParams>,
) -> ApiResult<Response> {
    operator_review(&state, op, &id, approve_verdict(p)).await
}

/// Deny a claim under review (operator keys only).
#[utoipa::path(post, path = "/v1/claims/{id}/deny", tag = "Claim review", params(IdPath), request_body(content((DenyParams = "application/json"), (DenyParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The denied claim", body = ClaimView), Errors))]
async fn operator_deny(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Input(p): Input<DenyParams>,
) -> ApiResult<Response> {
    let verdict = deny_verdict(Some(p.denial_reason), p.note)?;
    operator_review(&state, op, &id, verdict).await
}

/// Test helpers force an outcome in test mode; live keys do not see them (`TestHelper`).
async fn helper_review(state: &AppState, call: Call, id: &str, verdict: Verdict) -> ApiResult<Response> {
    check_id(Kind::Claim, id)?;
    let scope = call.scope.clone();
    let reviewer = Reviewer { actor: Actor::TestHelper, second_approval_amount: 0 };
    write_view(state, &call, async |tx| review::review_by_hand(tx, Some(&scope), &call, id, verdict, &reviewer).await)
        .await
}

/// Test mode: approve a claim under review, to try webhook handling.
#[utoipa::path(post, path = "/v1/test_helpers/claims/{id}/approve", tag = "Claim review", params(IdPath), request_body(content((ApproveParams = "application/json"), (ApproveParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The approved claim", body = ClaimView), Errors))]
async fn helper_approve(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
    Input(p): Input<ApproveParams>,
) -> ApiResult<Response> {
    helper_review(&state, call, &id, approve_verdict(p)).await
}

/// Test mode: deny a claim under review.
#[utoipa::path(post, path = "/v1/test_helpers/claims/{id}/deny", tag = "Claim review", params(IdPath), request_body(content((HelperDenyParams = "application/json"), (HelperDenyParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The denied claim", body = ClaimView), Errors))]
async fn helper_deny(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
    Input(p): Input<HelperDenyParams>,
) -> ApiResult<Response> {
    let verdict = deny_verdict(p.denial_reason, p.note)?;
    helper_review(&state, call, &id, verdict).await
}
