//! Recoveries (SPEC section 6): opened when a claim is paid (by the payout settlement,
//! `review::settle`), then planned, paid and written off by requests, and their
//! installments missed by the engine (`review::miss_due_installments`, and a test
//! clock's advance in `review::advance_guarantees`).
//!
//! Platform keys act in their own account; operator keys in any (the API reads the
//! recovery's scope first, `scope_of`, and calls in it). Every step is recorded with
//! who took it.
//! A write takes the recovery's object time first (its tenant's test clock), then locks
//! the recovery, then its guarantee: the order every writer keeps.

use super::{Call, Outbox, apply_metadata, check_cursors, found, record_update, test_clocks};
use crate::domain::claim::{Actor, Claim};
use crate::domain::event::EventType;
use crate::domain::guarantee::Guarantee;
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::domain::payout::Payout;
use crate::domain::recovery::{Recovery, RecoveryAction, RecoveryActionType, RecoveryError, RecoveryStatus};
use crate::domain::review::date;
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::recoveries::RecoveryFilters;
use crate::store::test_clocks::Holder;
use crate::store::{self, Page, PageRequest, Scope, Store, Tx};

fn not_found(id: &str) -> ApiError {
    ApiError::no_such(Kind::Recovery.object(), id, Some("id"))
}

/// The API's answer to a step the recovery's state or figures refuse.
pub(crate) fn recovery_error(e: RecoveryError) -> ApiError {
    match e {
        RecoveryError::Closed(status) => ApiError::state(
            "recovery_closed",
            format!("This recovery is {status}: nothing more can be planned, paid or written off."),
        ),
        RecoveryError::PlanHasPayments => ApiError::state(
            "recovery_plan_has_payments",
            "The recovery's plan has payments recorded against it: it can no longer be replaced.",
        ),
        RecoveryError::FirstDueDateInPast => ApiError::invalid(
            "first_due_date_in_past",
            "first_due_date",
            "The first_due_date cannot be in the past (by the tenant's test clock, if it has one).",
        ),
        RecoveryError::TooManyInstallments { installments, remaining } => ApiError::invalid(
            "installments_too_many",
            "installments",
            format!("{installments} installments of the {remaining} remaining would leave an installment of 0."),
        ),
        RecoveryError::AmountTooLarge { amount, remaining } => ApiError::invalid(
            "amount_too_large",
            "amount",
            format!("The amount ({amount}) is more than the {remaining} that remains to be recovered."),
        ),
    }
}

/// The recovery a paid claim opens at `at`: the tenant owes the payout's amount.
pub(crate) fn open(at: i64, claim: &Claim, g: &Guarantee, payout: &Payout) -> Recovery {
    Recovery {
        id: Kind::Recovery.new_id(),
        claim: claim.id.clone(),
        guarantee: g.id.clone(),
        tenant: g.tenant.clone(),
        currency: payout.currency.clone(),
        amount: payout.amount,
        amount_recovered: 0,
        status: RecoveryStatus::Open,
        plan: None,
        written_off_reason: None,
        metadata: Metadata::new(),
        livemode: payout.livemode,
        created: at,
    }
}

/// A step of a recovery for its trail, taken at object time `at`.
pub(crate) fn new_action(
    at: i64,
    r: &Recovery,
    kind: RecoveryActionType,
    by: &Actor,
    amount: Option<i64>,
    when: Option<i64>,
    message: Option<String>,
) -> RecoveryAction {
    RecoveryAction {
        id: Kind::RecoveryAction.new_id(),
        recovery: r.id.clone(),
        kind,
        actor: by.as_str().to_owned(),
        amount,
        at: when,
        message,
        livemode: r.livemode,
        created: at,
    }
}

/// Marks `missed` the installments of `r` past due at `at`, each with its event and
/// its action (by `automation`); returns the actions.
pub(crate) fn miss_installments(
    outbox: &mut Outbox,
    call: &Call,
    r: &mut Recovery,
    at: i64,
) -> ApiResult<Vec<RecoveryAction>> {
    let missed = r.mark_missed(at);
    let mut actions = Vec::with_capacity(missed.len());
    for n in missed {
        let Some(i) = r.plan.as_ref().and_then(|p| p.schedule.get(n)).cloned() else { continue };
        outbox.record(call, EventType::RecoveryInstallmentMissed, &*r)?;
        actions.push(new_action(
            at,
            r,
            RecoveryActionType::InstallmentMissed,
            &Actor::Automation,
            Some(i.amount - i.amount_paid),
            Some(i.due_date),
            Some(format!(
                "Installment {} due {} missed: {} of {} paid.",
                n + 1,
                date(i.due_date),
                i.amount_paid,
                i.amount
            )),
        ));
    }
    Ok(actions)
}

/// The recovery's object time (its tenant's test clock's, if any), refusing the write
/// while the clock advances: asked before the recovery is locked.
async fn clocked(tx: &mut Tx, call: &Call, id: &str) -> ApiResult<i64> {
    test_clocks::time_for(tx, call, Holder::Recovery, id).await
}

async fn for_update(tx: &mut Tx, call: &Call, id: &str) -> ApiResult<Recovery> {
    store::recoveries::get_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))
}

async fn act(tx: &mut Tx, call: &Call, action: RecoveryAction) -> ApiResult<()> {
    store::recoveries::insert_actions(tx, &[(&call.scope, &action)]).await?;
    Ok(())
}

/// Sets (or replaces) the monthly plan: `installments` from `first_due_date`.
pub async fn set_plan(
    tx: &mut Tx,
    call: &Call,
    id: &str,
    installments: i64,
    first_due_date: i64,
    by: &Actor,
) -> ApiResult<(Scope, Recovery)> {
    let at = clocked(tx, call, id).await?;
    let before = for_update(tx, call, id).await?;
    let mut after = before.clone();
    after.set_plan(installments, first_due_date, at).map_err(recovery_error)?;
    store::recoveries::update(tx, &call.scope, &after).await?;
    let message = format!("{installments} monthly installments from {}.", date(first_due_date));
    let action = new_action(at, &after, RecoveryActionType::PlanSet, by, Some(after.remaining()), None, Some(message));
    act(tx, call, action).await?;
    record_update(tx, call, EventType::RecoveryUpdated, &before, &after).await?;
    Ok((call.scope.clone(), after))
}

/// A payment from the tenant.
#[derive(Debug)]
pub struct NewPayment {
    pub amount: i64,
    /// When it was paid; default the recovery's time now.
    pub paid_at: Option<i64>,
    pub reference: Option<String>,
}

/// Records a payment against the oldest installments not paid in full; the guarantee's
/// `claims_recovered` grows by it. At zero remaining the recovery is `recovered`. The
/// recovery's row lock orders payments at once: one that no longer fits is refused.
pub async fn record_payment(
    tx: &mut Tx,
    call: &Call,
    id: &str,
    payment: NewPayment,
    by: &Actor,
) -> ApiResult<(Scope, Recovery)> {
    let at = clocked(tx, call, id).await?;
    let before = for_update(tx, call, id).await?;
    let paid_at = payment.paid_at.unwrap_or(at);
    if paid_at > at {
        return Err(ApiError::invalid(
            "paid_at_in_future",
            "paid_at",
            "The paid_at cannot be in the future (by the tenant's test clock, if it has one).",
        ));
    }
    let mut after = before.clone();
    let recovered = after.record_payment(payment.amount).map_err(recovery_error)?;
    store::recoveries::update(tx, &call.scope, &after).await?;
    let mut g = store::guarantees::get_for_update(tx, &call.scope, &after.guarantee)
        .await?
        .ok_or_else(|| ApiError::internal(format!("recovery {} has no guarantee", after.id)))?;
    g.claims_recovered += payment.amount;
    store::guarantees::update(tx, &call.scope, &g).await?;
    let action = new_action(
        at,
        &after,
        RecoveryActionType::PaymentRecorded,
        by,
        Some(payment.amount),
        Some(paid_at),
        payment.reference,
    );
    act(tx, call, action).await?;
    record_update(tx, call, EventType::RecoveryPaymentRecorded, &before, &after).await?;
    if recovered {
        record_update(tx, call, EventType::RecoveryRecovered, &before, &after).await?;
    }
    Ok((call.scope.clone(), after))
}

/// An operator writes off what remains, saying why.
pub async fn write_off(tx: &mut Tx, call: &Call, id: &str, reason: String, by: &Actor) -> ApiResult<(Scope, Recovery)> {
    let at = clocked(tx, call, id).await?;
    let before = for_update(tx, call, id).await?;
    let mut after = before.clone();
    after.write_off(reason.clone()).map_err(recovery_error)?;
    store::recoveries::update(tx, &call.scope, &after).await?;
    let action =
        new_action(at, &after, RecoveryActionType::WrittenOff, by, Some(after.remaining()), None, Some(reason));
    act(tx, call, action).await?;
    record_update(tx, call, EventType::RecoveryWrittenOff, &before, &after).await?;
    Ok((call.scope.clone(), after))
}

/// Updates a recovery's metadata (`recovery.updated`).
pub async fn update(
    tx: &mut Tx,
    call: &Call,
    id: &str,
    metadata: Option<MetadataUpdate>,
) -> ApiResult<(Scope, Recovery)> {
    clocked(tx, call, id).await?;
    let before = for_update(tx, call, id).await?;
    let mut after = before.clone();
    after.metadata = apply_metadata(&before.metadata, metadata.as_ref())?;
    store::recoveries::update(tx, &call.scope, &after).await?;
    record_update(tx, call, EventType::RecoveryUpdated, &before, &after).await?;
    Ok((call.scope.clone(), after))
}

/// The account and mode of a recovery of any account: where an operator's write to it
/// is made (and its idempotency key kept).
pub async fn scope_of(store: &Store, id: &str) -> ApiResult<Option<Scope>> {
    Ok(store.run(async |conn| store::recoveries::scope_of(conn, id).await).await?)
}

/// A recovery in `scope`, or (for operators, `None`) in any account, with its scope.
pub async fn retrieve(store: &Store, scope: Option<&Scope>, id: &str) -> ApiResult<(Scope, Recovery)> {
    match scope {
        Some(scope) => {
            let r = store.run(async |conn| store::recoveries::get(conn, scope, id).await).await?;
            Ok((scope.clone(), found(&resource::RECOVERY, id, r)?))
        }
        None => {
            found(&resource::RECOVERY, id, store.run(async |conn| store::recoveries::get_any(conn, id).await).await?)
        }
    }
}

pub async fn list(
    store: &Store,
    call: &Call,
    page: &PageRequest,
    filters: RecoveryFilters,
) -> ApiResult<Page<Recovery>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::RECOVERY, page).await?;
            Ok(store::recoveries::list(conn, &call.scope, page, filters).await?)
        })
        .await
}

/// The operators' list: recoveries of every account, each with its scope.
pub async fn list_any(
    store: &Store,
    page: &PageRequest,
    filters: RecoveryFilters,
) -> ApiResult<Page<(Scope, Recovery)>> {
    store
        .run(async |conn| {
            for (param, cursor) in [("starting_after", &page.starting_after), ("ending_before", &page.ending_before)] {
                if let Some(id) = cursor
                    && store::recoveries::scope_of(conn, id).await?.is_none()
                {
                    return Err(ApiError::no_such(Kind::Recovery.object(), id, Some(param)));
                }
            }
            Ok(store::recoveries::list_any(conn, page, filters).await?)
        })
        .await
}

/// A claim's recovery (a paid claim's), for the review console.
pub async fn for_claim(store: &Store, scope: &Scope, claim_id: &str) -> ApiResult<Option<Recovery>> {
    Ok(store.run(async |conn| store::recoveries::for_claim(conn, scope, claim_id).await).await?)
}

/// A recovery's trail, oldest first: who planned, paid, wrote off.
pub async fn trail(store: &Store, scope: &Scope, id: &str) -> ApiResult<Vec<RecoveryAction>> {
    Ok(store.run(async |conn| store::recoveries::actions(conn, scope, id).await).await?)
}
