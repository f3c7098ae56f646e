//! `/v1/recoveries` (SPEC section 6): what the tenant owes once a claim is paid. Platform
//! keys reach their own account's recoveries, operator keys any account's (the service
//! finds the recovery's scope); writing off is for operators only. Every plan, payment
//! and write-off is recorded with who made it.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::claims::operator_call;
use super::extract::{Caller, Operator, PathId};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render_expanded};
use super::openapi::{Errors, ExpandPath, ExpandQuery, IdPath, List};
use super::{expand_paths, object_paths, write};
use crate::app::AppState;
use crate::domain::UnixTime;
use crate::domain::claim::Actor;
use crate::domain::metadata::{self, MetadataUpdate};
use crate::domain::money::Amount;
use crate::domain::recovery::{Installments, PaymentReference, Recovery, RecoveryStatus, WriteOffReason};
use crate::error::{ApiError, ApiResult};
use crate::ids::{ClaimId, CustomerId, GuaranteeId, Kind, RecoveryId};
use crate::service::expand::{self, Expanded};
use crate::service::{Call, recoveries};
use crate::store::Scope;
use crate::store::recoveries::RecoveryFilters;
use crate::views::RecoveryView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retrieve, update))
        .routes(routes!(plan))
        .routes(routes!(payments))
        .routes(routes!(write_off))
}

/// Who acts on the recovery `id`: the call in the recovery's scope (the platform's own;
/// for an operator the recovery's, read first, which also holds the operator's
/// idempotency key), and the actor the trail records.
async fn acting(state: &AppState, caller: Caller, id: &str) -> ApiResult<(Call, Actor)> {
    match caller {
        Caller::Platform(call) => Ok((call, Actor::Platform)),
        Caller::Operator(op) => Ok((operator_in(state, &op, id).await?, Actor::Operator(op.operator_id))),
    }
}

/// An operator's call in the scope of the recovery `id` (404 if there is none).
async fn operator_in(state: &AppState, op: &Operator, id: &str) -> ApiResult<Call> {
    let scope = recoveries::scope_of(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Recovery.object(), id, Some("id")))?;
    Ok(Call {
        scope,
        idempotency_key: op.idempotency_key.clone(),
        idempotency: op.idempotency.clone(),
        ..operator_call(op)
    })
}

/// A write answered with the recovery, `paths` expanded in the recovery's own scope.
async fn answer(
    state: &AppState,
    call: &Call,
    paths: &[Vec<String>],
    op: impl AsyncFnOnce(&mut crate::store::Tx) -> ApiResult<(Scope, Recovery)>,
) -> ApiResult<Response> {
    write(state, call, async |tx| {
        let (scope, r) = op(tx).await?;
        expand::apply(tx, &scope, r, paths).await
    })
    .await
}

/// Retrieve a recovery.
#[utoipa::path(get, path = "/v1/recoveries/{id}", tag = "Recoveries", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The recovery", body = RecoveryView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<Expanded<RecoveryView>>> {
    let paths = object_paths(Kind::Recovery, &id, q.expand)?;
    let scope = match &caller {
        Caller::Platform(call) => Some(&call.scope),
        Caller::Operator(_) => None,
    };
    let (scope, r) = recoveries::retrieve(&state.store, scope, &id).await?;
    Ok(Json(expand::apply_read(&state.store, &scope, r, &paths).await?))
}

/// `POST /v1/recoveries/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryUpdate {
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Update a recovery's `metadata`.
#[utoipa::path(post, path = "/v1/recoveries/{id}", tag = "Recoveries", params(IdPath), request_body(content((RecoveryUpdate = "application/json"), (RecoveryUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated recovery", body = RecoveryView), Errors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Input(input): Input<RecoveryUpdate>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Recovery, &id, input.expand)?;
    let (call, _) = acting(&state, caller, &id).await?;
    let metadata = input.metadata;
    answer(&state, &call, &paths, async |tx| recoveries::update(tx, &call, &id, metadata).await).await
}

/// `POST /v1/recoveries/:id/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"installments": 6, "first_due_date": 1798761600}))]
pub struct RecoveryPlanParams {
    #[schema(inline)]
    pub installments: Installments,
    /// When the first installment falls due (Unix seconds, not in the past); the others
    /// follow monthly on the same day (the month's last day when it is shorter).
    #[schema(inline)]
    pub first_due_date: UnixTime,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Set a monthly repayment plan for what remains: amounts split evenly, any remainder
/// on the last installment. Replaces the plan while nothing of it is paid.
#[utoipa::path(post, path = "/v1/recoveries/{id}/plan", tag = "Recoveries", params(IdPath), request_body(content((RecoveryPlanParams = "application/json"), (RecoveryPlanParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The recovery, `in_plan`", body = RecoveryView), Errors))]
async fn plan(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Input(p): Input<RecoveryPlanParams>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Recovery, &id, p.expand)?;
    let (call, by) = acting(&state, caller, &id).await?;
    let (installments, first) = (p.installments.get(), p.first_due_date.get());
    answer(&state, &call, &paths, async |tx| recoveries::set_plan(tx, &call, &id, installments, first, &by).await).await
}

/// `POST /v1/recoveries/:id/payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 20000, "reference": "SEPA-123"}))]
pub struct RecoveryPaymentParams {
    /// At most the recovery's `amount_remaining`.
    #[schema(inline)]
    pub amount: Amount,
    /// When the tenant paid (Unix seconds, not in the future); default now.
    #[schema(inline)]
    pub paid_at: Option<UnixTime>,
    #[schema(inline)]
    pub reference: Option<PaymentReference>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Record a payment from the tenant, against the oldest installments not paid in full.
/// At zero remaining the recovery is `recovered`.
#[utoipa::path(post, path = "/v1/recoveries/{id}/payments", tag = "Recoveries", params(IdPath), operation_id = "CreateRecoveryPayment",
    request_body(content((RecoveryPaymentParams = "application/json"), (RecoveryPaymentParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The recovery with the payment recorded", body = RecoveryView), Errors))]
async fn payments(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Input(p): Input<RecoveryPaymentParams>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Recovery, &id, p.expand)?;
    let (call, by) = acting(&state, caller, &id).await?;
    let payment = recoveries::NewPayment {
        amount: p.amount.get(),
        paid_at: p.paid_at.map(UnixTime::get),
        reference: p.reference.map(PaymentReference::into_string),
    };
    answer(&state, &call, &paths, async |tx| recoveries::record_payment(tx, &call, &id, payment, &by).await).await
}

/// `POST /v1/recoveries/:id/write_off`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "The tenant is insolvent: the rest will not be recovered."}))]
pub struct RecoveryWriteOffParams {
    #[schema(inline)]
    pub reason: WriteOffReason,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Write off what remains of a recovery (operator keys only): it will not be recovered.
#[utoipa::path(post, path = "/v1/recoveries/{id}/write_off", tag = "Recoveries", params(IdPath), operation_id = "WriteOffRecovery",
    request_body(content((RecoveryWriteOffParams = "application/json"), (RecoveryWriteOffParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The recovery, `written_off`", body = RecoveryView), Errors))]
async fn write_off(
    State(state): State<AppState>,
    op: Operator,
    PathId(id): PathId,
    Input(p): Input<RecoveryWriteOffParams>,
) -> ApiResult<Response> {
    let paths = object_paths(Kind::Recovery, &id, p.expand)?;
    // A reason of blanks says nothing: it counts as none.
    let reason = p.reason.into_string();
    if reason.trim().is_empty() {
        return Err(ApiError::missing("reason"));
    }
    tracing::info!(operator = %op.operator_id, operator_key = %op.key_id, recovery = %id, "recovery written off");
    let call = operator_in(&state, &op, &id).await?;
    let by = Actor::Operator(op.operator_id.clone());
    answer(&state, &call, &paths, async |tx| recoveries::write_off(tx, &call, &id, reason, &by).await).await
}

list_query! {
    /// `GET /v1/recoveries`.
    RecoveryList, RecoveryId {
        claim: Option<ClaimId>,
        guarantee: Option<GuaranteeId>,
        tenant: Option<CustomerId>,
        status: Option<RecoveryStatus>,
    }
}

/// List recoveries, newest first (an operator key lists every account's).
#[utoipa::path(get, path = "/v1/recoveries", tag = "Recoveries", params(RecoveryList),
    responses((status = 200, description = "A page of recoveries", body = List<RecoveryView>), Errors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryInput(q): QueryInput<RecoveryList>,
) -> ApiResult<Json<ListBody<Expanded<RecoveryView>>>> {
    let page = q.page()?;
    let paths = expand_paths(q.expand, Recovery::OBJECT, true)?;
    let filters = RecoveryFilters {
        claim: q.claim.map(ClaimId::into_string),
        guarantee: q.guarantee.map(GuaranteeId::into_string),
        tenant: q.tenant.map(CustomerId::into_string),
        status: q.status,
    };
    const URL: &str = "/v1/recoveries";
    match caller {
        Caller::Platform(call) => {
            let found = recoveries::list(&state.store, &call, &page, filters).await?;
            render_expanded(&state.store, &call.scope, found, &paths, URL).await
        }
        Caller::Operator(_) => {
            let found = recoveries::list_any(&state.store, &page, filters).await?;
            let data = state
                .store
                .run(async |conn| {
                    let mut data = Vec::with_capacity(found.data.len());
                    for (scope, r) in found.data {
                        data.push(expand::apply(conn, &scope, r, &paths).await?);
                    }
                    Ok::<_, ApiError>(data)
                })
                .await?;
            Ok(Json(ListBody::new(data, found.has_more, URL)))
        }
    }
}
