//! Guarantees: create (with the policy's rules), read, update, cancel, list.

use super::{Call, Recorded, apply_metadata, check_cursors, record_created, record_update, test_clocks};
use crate::domain::event::EventType;
use crate::domain::guarantee::{self, Guarantee, GuaranteeError, GuaranteeStep};
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::domain::money::{Amount, Currency};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::guarantees::GuaranteeFilters;
use crate::store::{self, Page, PageRequest, Store, Tx};

#[derive(Debug)]
pub struct NewGuarantee {
    pub policy: String,
    pub tenant: String,
    pub coverage_amount: Amount,
    pub currency: Currency,
    pub start_date: i64,
    pub end_date: i64,
    pub metadata: Option<MetadataUpdate>,
}

#[derive(Debug, Default)]
pub struct GuaranteePatch {
    pub end_date: Option<i64>,
    pub metadata: Option<MetadataUpdate>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::no_such(Kind::Guarantee.object(), id, Some("id"))
}

/// The API's answer to a change the guarantee's state refuses.
pub(crate) fn guarantee_error(e: GuaranteeError) -> ApiError {
    match e {
        GuaranteeError::Status { step: GuaranteeStep::Cancel, from } => ApiError::state(
            "guarantee_not_cancellable",
            format!("Only a pending or active guarantee can be cancelled; this one is {from}."),
        ),
        GuaranteeError::Status { step: GuaranteeStep::ChangeEndDate, from } => ApiError::invalid(
            "guarantee_not_modifiable",
            "end_date",
            format!("The end_date of a guarantee can only change while it is pending or active; this one is {from}."),
        ),
        GuaranteeError::EndDateEarlier => {
            ApiError::invalid("invalid_dates", "end_date", "The end_date of a guarantee can only be moved later.")
        }
        // The engine and the review only take these steps when they are due and fit:
        // reaching them is a bug.
        GuaranteeError::Status { .. } | GuaranteeError::TooEarly(_) | GuaranteeError::ExceedsRemaining { .. } => {
            ApiError::internal(e)
        }
    }
}

pub async fn create(tx: &mut Tx, call: &Call, input: NewGuarantee) -> ApiResult<Recorded<Guarantee>> {
    // The policy, and the tenant with its time (its test clock's, if it lives on one),
    // in one read; a missing tenant or policy is told in its turn below.
    let (policy, tenant) = store::guarantees::policy_and_tenant(tx, &call.scope, &input.policy, &input.tenant).await?;
    let now = test_clocks::write_time(call, tenant.as_ref().and_then(|(_, clock)| clock.as_ref()))?;
    if input.end_date <= input.start_date {
        return Err(ApiError::invalid("invalid_dates", "end_date", "The end_date must be after the start_date."));
    }
    if input.end_date <= now {
        return Err(ApiError::invalid("invalid_dates", "end_date", "The end_date must be in the future."));
    }
    let policy = policy.ok_or_else(|| ApiError::no_such(Kind::Policy.object(), &input.policy, Some("policy")))?;
    if !policy.active {
        return Err(ApiError::invalid(
            "policy_inactive",
            "policy",
            format!("The guarantee policy {} is not active and takes no new guarantees.", policy.id),
        ));
    }
    let (tenant, _) =
        tenant.ok_or_else(|| ApiError::no_such(Kind::Customer.object(), &input.tenant, Some("tenant")))?;
    if !policy.admits(tenant.score) {
        return Err(ApiError::invalid(
            "tenant_not_eligible",
            "tenant",
            format!(
                "The tenant {} is not eligible for this policy: its score must be at least {}.",
                tenant.id, policy.eligible_score_minimum
            ),
        ));
    }
    let coverage_amount = input.coverage_amount.get();
    let total_coverage = guarantee::total_coverage(coverage_amount, policy.max_coverage_months);
    let g = Guarantee {
        id: Kind::Guarantee.new_id(),
        status: guarantee::initial_status(input.start_date, now),
        policy: policy.id,
        tenant: tenant.id,
        coverage_amount,
        total_coverage,
        currency: input.currency.as_str().to_owned(),
        start_date: input.start_date,
        end_date: input.end_date,
        claims_filed: 0,
        claims_paid: 0,
        claims_reserved: 0,
        claims_recovered: 0,
        cancelled_at: None,
        metadata: apply_metadata(&Metadata::new(), input.metadata.as_ref())?,
        livemode: call.scope.livemode,
        created: now,
    };
    store::guarantees::insert(tx, &call.scope, &g).await?;
    record_created(tx, call, EventType::GuaranteeCreated, g).await
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Guarantee> {
    store.run(async |conn| store::guarantees::get(conn, &call.scope, id).await).await?.ok_or_else(|| not_found(id))
}

pub async fn update(tx: &mut Tx, call: &Call, id: &str, input: GuaranteePatch) -> ApiResult<Guarantee> {
    let (before, clock) =
        store::guarantees::get_for_update_with_clock(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))?;
    test_clocks::write_time(call, clock.as_ref())?;
    let mut after = before.clone();
    if let Some(end_date) = input.end_date {
        after.change_end_date(end_date).map_err(guarantee_error)?;
    }
    after.metadata = apply_metadata(&before.metadata, input.metadata.as_ref())?;
    store::guarantees::update(tx, &call.scope, &after).await?;
    record_update(tx, call, EventType::GuaranteeUpdated, &before, &after).await?;
    Ok(after)
}

pub async fn cancel(tx: &mut Tx, call: &Call, id: &str) -> ApiResult<Guarantee> {
    let (before, clock) =
        store::guarantees::get_for_update_with_clock(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))?;
    let now = test_clocks::write_time(call, clock.as_ref())?;
    let mut after = before.clone();
    after.cancel(now).map_err(guarantee_error)?;
    store::guarantees::update(tx, &call.scope, &after).await?;
    record_update(tx, call, EventType::GuaranteeCancelled, &before, &after).await?;
    Ok(after)
}

pub async fn list(
    store: &Store,
    call: &Call,
    page: &PageRequest,
    filters: GuaranteeFilters,
) -> ApiResult<Page<Guarantee>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::GUARANTEE, page).await?;
            Ok(store::guarantees::list(conn, &call.scope, page, filters).await?)
        })
        .await
}
