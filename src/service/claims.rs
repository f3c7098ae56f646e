//! Claims: filing (with the guarantee's rules), reading, metadata updates, lists.

use super::{Call, Recorded, apply_metadata, check_cursors, files, record_created, record_update, test_clocks};
use crate::domain::claim::{
    ActionType, Actor, Claim, ClaimError, ClaimReason, ClaimReview, ClaimStatus, Evidence, StatusTransitions,
};
use crate::domain::event::EventType;
use crate::domain::guarantee::{NotClaimable, check_claimable};
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::domain::money::{Amount, Currency};
use crate::domain::review;
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::claims::ClaimFilters;
use crate::store::test_clocks::Holder;
use crate::store::{self, Page, PageRequest, Store, Tx};

#[derive(Debug)]
pub struct NewClaim {
    pub guarantee: String,
    pub amount: Amount,
    pub currency: Currency,
    pub reason: ClaimReason,
    pub evidence: Evidence,
    pub metadata: Option<MetadataUpdate>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::no_such(Kind::Claim.object(), id, Some("id"))
}

/// The API's answer to a lifecycle step the claim's state refuses.
pub(crate) fn claim_error(e: ClaimError) -> ApiError {
    match e {
        ClaimError::NotUnderReview(status) => ApiError::state(
            "claim_not_under_review",
            format!("Only a claim under review can be changed by its review; this one is {status}: it is decided."),
        ),
        ClaimError::SecondApprovalRequired => ApiError::invalid(
            "second_approval_required",
            "amount",
            "You recorded the first approval of this claim: a second, different operator must approve it.",
        ),
        ClaimError::NotAwaitingOperator => ApiError::state(
            "claim_not_awaiting_operator",
            "This claim is still with the automated review, which decides it within seconds; ask for evidence \
             once it waits for an operator.",
        ),
        // The services check amounts and pick claims by status first: reaching these
        // is a bug, not a request to refuse.
        ClaimError::NotApproved(_) | ClaimError::AmountOutOfRange { .. } => ApiError::internal(e),
    }
}

fn duplicate(invoice_id: &str, existing: &str) -> ApiError {
    ApiError::invalid(
        "duplicate_claim",
        "evidence[invoice_id]",
        format!(
            "A claim for invoice '{}' on this guarantee already exists ({existing}).",
            crate::error::clip(invoice_id)
        ),
    )
}

/// Files a claim. The guarantee row is locked for the rest of the transaction, so
/// concurrent claims on one guarantee are checked one after the other.
pub async fn create(tx: &mut Tx, call: &Call, input: NewClaim) -> ApiResult<Recorded<Claim>> {
    // The guarantee, locked, with its time (its tenant's test clock's, if any).
    let (mut guarantee, clock) = store::guarantees::get_for_update_with_clock(tx, &call.scope, &input.guarantee)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Guarantee.object(), &input.guarantee, Some("guarantee")))?;
    let now = test_clocks::write_time(call, clock.as_ref())?;
    if input.currency.as_str() != guarantee.currency {
        return Err(ApiError::invalid(
            "currency_mismatch",
            "currency",
            format!("The claim's currency ({}) must match the guarantee's ({}).", input.currency, guarantee.currency),
        ));
    }
    if let Err(why) = check_claimable(guarantee.status, guarantee.start_date, guarantee.end_date, now) {
        let message = match why {
            NotClaimable::NotStarted => {
                "The guarantee has not started yet: claims can be filed from its start_date.".to_owned()
            }
            NotClaimable::Cancelled => "The guarantee is cancelled and takes no new claims.".to_owned(),
            NotClaimable::Claimed => "The guarantee's coverage is used up and it takes no new claims.".to_owned(),
            NotClaimable::ExpiredTooLongAgo => {
                "The guarantee expired more than 60 days ago and takes no new claims.".to_owned()
            }
        };
        return Err(ApiError::invalid("guarantee_not_claimable", "guarantee", message));
    }
    if input.evidence.due_date > now {
        return Err(ApiError::invalid(
            "due_date_in_future",
            "evidence[due_date]",
            "The evidence[due_date] cannot be in the future: file the claim once the rent is overdue.",
        ));
    }
    if let Some(existing) = store::claims::find_live_for_invoice(tx, &guarantee.id, &input.evidence.invoice_id).await? {
        return Err(duplicate(&input.evidence.invoice_id, &existing));
    }
    let mut evidence = input.evidence;
    evidence.files = files::add_evidence(tx, call, &[], &evidence.files).await?;
    let claim = Claim {
        id: Kind::Claim.new_id(),
        guarantee: guarantee.id.clone(),
        amount: input.amount.get(),
        amount_approved: None,
        currency: guarantee.currency.clone(),
        // Stored as submitted and taken into review in the same step.
        status: ClaimStatus::UnderReview,
        reason: input.reason,
        evidence,
        payout: None,
        denial_reason: None,
        reviewed_at: None,
        status_transitions: StatusTransitions {
            submitted_at: Some(now),
            under_review_at: Some(now),
            ..StatusTransitions::default()
        },
        review: ClaimReview {
            checks: review::unchecked(),
            due_by: Some(review::due_by(now)),
            ..ClaimReview::default()
        },
        awaiting_operator: false,
        metadata: apply_metadata(&Metadata::new(), input.metadata.as_ref())?,
        livemode: call.scope.livemode,
        created: now,
    };
    // The row lock makes a duplicate unreachable here, but the unique index is the
    // last word: its violation answers `duplicate_claim` too (`error::constraint_error`).
    store::claims::insert(tx, &call.scope, &claim).await?;
    store::files::link_to_claim(tx, &claim.id, &claim.evidence.files).await?;
    guarantee.claims_filed += 1;
    store::guarantees::update(tx, &call.scope, &guarantee).await?;
    let submitted = super::review::new_action(
        now,
        &claim,
        ActionType::Submitted,
        &Actor::Platform,
        Some(format!("{} claim filed for invoice {}.", claim.reason, claim.evidence.invoice_id)),
        Some(claim.amount),
    );
    store::claim_actions::insert(tx, &[(&call.scope, &submitted)]).await?;
    record_created(tx, call, EventType::ClaimSubmitted, claim).await
}

/// What a platform's update adds to a claim's evidence (`evidence[...]`): a new
/// description for now; the evidence files join it here.
#[derive(Debug, Default)]
pub struct EvidenceUpdate {
    pub description: Option<String>,
    /// Evidence files to add (`evidence[files]`), never removing any.
    pub files: Option<Vec<String>>,
}

/// Updates a claim's metadata and, while it is under review, adds to its evidence:
/// new evidence answers an operator's open request (`review.evidence_requested` is
/// cleared). One `claim.updated` event, with what changed.
pub async fn update(
    tx: &mut Tx,
    call: &Call,
    id: &str,
    metadata: Option<MetadataUpdate>,
    evidence: Option<EvidenceUpdate>,
) -> ApiResult<Claim> {
    // Refuses the write while the tenant's test clock advances.
    let at = test_clocks::time_for(tx, call, Holder::Claim, id).await?;
    let before = store::claims::get_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))?;
    let mut after = before.clone();
    after.metadata = apply_metadata(&before.metadata, metadata.as_ref())?;
    if let Some(evidence) = evidence {
        let answered = before.review.evidence_requested.is_some();
        let param =
            if evidence.description.is_none() && evidence.files.is_some() { "evidence[files]" } else { "evidence" };
        after.add_evidence(evidence.description.clone()).map_err(|e| match e {
            ClaimError::NotUnderReview(status) => ApiError::invalid(
                "claim_not_under_review",
                param,
                format!("Evidence can be added only while the claim is under review; this one is {status}."),
            ),
            other => claim_error(other),
        })?;
        if let Some(requested) = &evidence.files {
            after.evidence.files = files::add_evidence(tx, call, &before.evidence.files, requested).await?;
            let added = after.evidence.files.get(before.evidence.files.len()..).unwrap_or_default();
            store::files::link_to_claim(tx, &after.id, added).await?;
        }
        let message = match (&evidence.description, answered) {
            (Some(d), _) => Some(d.clone()),
            (None, true) => Some("The platform answered the request for evidence.".to_owned()),
            (None, false) => None,
        };
        let action = super::review::new_action(at, &after, ActionType::EvidenceAdded, &Actor::Platform, message, None);
        store::claim_actions::insert(tx, &[(&call.scope, &action)]).await?;
    }
    store::claims::update(tx, &call.scope, &after).await?;
    record_update(tx, call, EventType::ClaimUpdated, &before, &after).await?;
    Ok(after)
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Claim> {
    store.run(async |conn| store::claims::get(conn, &call.scope, id).await).await?.ok_or_else(|| not_found(id))
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, filters: ClaimFilters) -> ApiResult<Page<Claim>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::CLAIM, page).await?;
            Ok(store::claims::list(conn, &call.scope, page, filters).await?)
        })
        .await
}
