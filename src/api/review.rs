//! The operators' review routes (SPEC section 4): the queue across accounts, a claim
//! with everything needed to decide it, evidence requests and internal notes. Operator
//! keys only: a platform key is refused (403) by the `Operator` extractor.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::claims::operator_call;
use super::extract::{Operator, PathId};
use super::input::{Input, QueryInput};
use super::list::{Limit, ListBody};
use super::openapi::{Errors, IdPath, List};
use super::{check_id, write, write_view};
use crate::app::AppState;
use crate::domain::claim::{Actor, Awaiting, ClaimReason, EvidenceRequestMessage, InternalNote};
use crate::error::{ApiError, ApiResult};
use crate::ids::{AccountId, ClaimId, Kind};
use crate::service::review::{self, ReviewFile};
use crate::store::claims::QueueFilters;
use crate::views::{ClaimActionView, ClaimView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(review_claim))
        .routes(routes!(request_evidence))
        .routes(routes!(add_note))
}

/// `GET /v1/review/claims`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewQueueQuery {
    /// 1 to 100; default 10.
    #[param(inline)]
    pub limit: Option<Limit>,
    /// A claim id from the queue: the page after it.
    #[param(inline)]
    pub starting_after: Option<ClaimId>,
    /// Only claims for this reason.
    #[param(inline)]
    pub reason: Option<ClaimReason>,
    /// Only claims of this account (`acct_...`).
    #[param(inline)]
    pub account: Option<AccountId>,
    /// `true`: only claims past their `review.due_by`; `false`: only those within it.
    pub overdue: Option<bool>,
    /// Only claims waiting for this: `operator` (a first look), `second_approval`
    /// (four eyes) or `evidence` (the platform's answer).
    #[param(inline)]
    pub awaiting: Option<Awaiting>,
}

/// The queue of claims under review that wait for a person, across accounts and
/// modes, oldest `review.due_by` first (operator keys only).
#[utoipa::path(get, path = "/v1/review/claims", tag = "Claim review", params(ReviewQueueQuery),
    responses((status = 200, description = "A page of the queue, oldest deadline first", body = List<ClaimView>), Errors))]
async fn queue(
    State(state): State<AppState>,
    op: Operator,
    QueryInput(q): QueryInput<ReviewQueueQuery>,
) -> ApiResult<Json<ListBody<ClaimView>>> {
    let filters = QueueFilters {
        reason: q.reason,
        account: q.account.map(AccountId::into_string),
        overdue: q.overdue,
        awaiting: q.awaiting,
        now: op.now,
    };
    let limit = q.limit.map_or(10, Limit::get);
    let page = review::queue(&state.store, &filters, limit, q.starting_after.as_ref().map(|id| id.as_str())).await?;
    let data = page.data.iter().map(|(_, c)| c.view()).collect();
    Ok(Json(ListBody::new(data, page.has_more, "/v1/review/claims")))
}

/// A claim as an operator reviews it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReviewClaim)]
pub struct ReviewClaimView {
    /// The claim object, with `guarantee` expanded (and in it `policy` and `tenant`),
    /// `payout` expanded, and `evidence.files` as the file objects.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub claim: serde_json::Map<String, serde_json::Value>,
    /// The audit trail, oldest first, internal notes included.
    pub actions: Vec<ClaimActionView>,
}

/// The review's view of a claim: its JSON tree with the objects it refers to in place.
pub fn review_view(file: &ReviewFile) -> ApiResult<ReviewClaimView> {
    let as_map = |v: serde_json::Value| match v {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(ApiError::internal("a view is not an object")),
    };
    let mut guarantee = as_map(value(&file.guarantee)?)?;
    guarantee.insert("policy".into(), value(&file.policy)?);
    if let Some(tenant) = &file.tenant {
        guarantee.insert("tenant".into(), value(tenant)?);
    }
    let mut claim = as_map(value(&file.claim)?)?;
    claim.insert("guarantee".into(), serde_json::Value::Object(guarantee));
    let files = file.files.iter().map(value).collect::<ApiResult<Vec<_>>>()?;
    let Some(evidence) = claim.get_mut("evidence").and_then(serde_json::Value::as_object_mut) else {
        return Err(ApiError::internal("a claim's view has no evidence"));
    };
    evidence.insert("files".into(), serde_json::Value::Array(files));
    if let Some(payout) = &file.payout {
        claim.insert("payout".into(), value(payout)?);
    }
    Ok(ReviewClaimView { claim, actions: file.actions.iter().map(Render::view).collect() })
}

fn value<T: Render>(object: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(object.view()).map_err(|e| ApiError::internal(e))
}

/// A claim of any account with its guarantee, policy, tenant, payout and evidence
/// files, and its audit trail (operator keys only).
#[utoipa::path(get, path = "/v1/review/claims/{id}", tag = "Claim review", params(IdPath),
    responses((status = 200, description = "The claim, expanded, with its actions", body = ReviewClaimView), Errors))]
async fn review_claim(
    State(state): State<AppState>,
    _op: Operator,
    PathId(id): PathId,
) -> ApiResult<Json<ReviewClaimView>> {
    check_id(Kind::Claim, &id)?;
    let file = review::review_file(&state.store, &id).await?;
    Ok(Json(review_view(&file)?))
}

/// `POST /v1/claims/:id/request_evidence`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestEvidenceParams {
    #[schema(inline)]
    pub message: EvidenceRequestMessage,
}

/// Ask the platform for more evidence on a claim waiting for an operator (operator
/// keys only). Sends `claim.evidence_requested`; the platform answers by updating the
/// claim's `evidence`.
#[utoipa::path(post, path = "/v1/claims/{id}/request_evidence", tag = "Claim review", params(IdPath),
    request_body(content((RequestEvidenceParams = "application/json"), (RequestEvidenceParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The claim, waiting for evidence", body = ClaimView), Errors))]
async fn request_evidence(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Input(p): Input<RequestEvidenceParams>,
) -> ApiResult<Response> {
    check_id(Kind::Claim, &id)?;
    let call = operator_call(&op);
    let by = Actor::Operator(op.operator_id.clone());
    let message = p.message.into_string();
    write_view(&state, &call, async |tx| review::request_evidence(tx, &call, &id, message, &by).await).await
}

/// `POST /v1/claims/:id/notes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteParams {
    #[schema(inline)]
    pub note: InternalNote,
}

/// Add an internal note to a claim's audit trail (operator keys only). Platforms
/// never see notes.
#[utoipa::path(post, path = "/v1/claims/{id}/notes", tag = "Claim review", params(IdPath),
    request_body(content((NoteParams = "application/json"), (NoteParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The note, as a claim action", body = ClaimActionView), Errors))]
async fn add_note(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Input(p): Input<NoteParams>,
) -> ApiResult<Response> {
    check_id(Kind::Claim, &id)?;
    let call = operator_call(&op);
    let by = Actor::Operator(op.operator_id.clone());
    let note = p.note.into_string();
    write(&state, &call, async |tx| review::add_note(tx, &call, &id, note, &by).await.map(|a| a.view())).await
}
