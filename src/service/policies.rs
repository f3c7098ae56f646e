//! Guarantee policies: create, read, update (name, active, metadata), list.

use super::{Call, apply_metadata, check_cursors, found, record_event, record_update};
use crate::domain::event::EventType;
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::domain::policy::Policy;
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::{self, Page, PageRequest, Store, Tx};

/// A new policy's terms, already range-checked at the edge.
#[derive(Debug)]
pub struct NewPolicy {
    pub name: String,
    pub coverage_percentage: i64,
    pub max_coverage_months: i64,
    pub waiting_period_days: i64,
    pub eligible_score_minimum: i64,
    pub deductible_amount: i64,
    pub active: bool,
    pub metadata: Option<MetadataUpdate>,
}

#[derive(Debug, Default)]
pub struct PolicyPatch {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub metadata: Option<MetadataUpdate>,
}

pub async fn create(tx: &mut Tx, call: &Call, input: NewPolicy) -> ApiResult<Policy> {
    let policy = Policy {
        id: Kind::Policy.new_id(),
        name: input.name,
        coverage_percentage: input.coverage_percentage,
        max_coverage_months: input.max_coverage_months,
        waiting_period_days: input.waiting_period_days,
        eligible_score_minimum: input.eligible_score_minimum,
        deductible_amount: input.deductible_amount,
        active: input.active,
        metadata: apply_metadata(&Metadata::new(), input.metadata.as_ref())?,
        livemode: call.scope.livemode,
        created: call.now,
    };
    store::policies::insert(tx, &call.scope, &policy).await?;
    record_event(tx, call, EventType::PolicyCreated, &policy).await?;
    Ok(policy)
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Policy> {
    found(&resource::POLICY, id, store.run(async |conn| store::policies::get(conn, &call.scope, id).await).await?)
}

pub async fn update(tx: &mut Tx, call: &Call, id: &str, input: PolicyPatch) -> ApiResult<Policy> {
    let before = store::policies::get_for_update(tx, &call.scope, id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Policy.object(), id, Some("id")))?;
    let mut after = before.clone();
    if let Some(name) = input.name {
        after.name = name;
    }
    if let Some(active) = input.active {
        after.active = active;
    }
    after.metadata = apply_metadata(&before.metadata, input.metadata.as_ref())?;
    store::policies::update(tx, &call.scope, &after).await?;
    record_update(tx, call, EventType::PolicyUpdated, &before, &after).await?;
    Ok(after)
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, active: Option<bool>) -> ApiResult<Page<Policy>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::POLICY, page).await?;
            Ok(store::policies::list(conn, &call.scope, page, active).await?)
        })
        .await
}
