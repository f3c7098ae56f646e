use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::claim::{Claim, ClaimReason, ClaimReview, ClaimStatus, DenialReason, Evidence, StatusTransitions};
use crate::domain::metadata::Metadata;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Claim)]
pub struct ClaimView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub guarantee: String,
    pub amount: i64,
    pub amount_approved: Option<i64>,
    pub currency: String,
    pub status: ClaimStatus,
    pub reason: ClaimReason,
    pub evidence: EvidenceView,
    pub payout: Option<String>,
    pub denial_reason: Option<DenialReason>,
    pub reviewed_at: Option<Timestamp>,
    pub status_transitions: StatusTransitionsView,
    pub review: ClaimReviewView,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Evidence)]
pub struct EvidenceView {
    pub invoice_id: String,
    pub due_date: Timestamp,
    pub description: Option<String>,
    /// The ids of the claim's evidence files, in the order they were added.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StatusTransitions)]
pub struct StatusTransitionsView {
    pub submitted_at: Option<Timestamp>,
    pub under_review_at: Option<Timestamp>,
    pub approved_at: Option<Timestamp>,
    pub denied_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
}

/// How the claim was decided.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ClaimReview)]
pub struct ClaimReviewView {
    /// The deciding operator's note (required with `denial_reason: other`), or null.
    pub note: Option<String>,
}

impl From<&Claim> for ClaimView {
    fn from(c: &Claim) -> Self {
        ClaimView {
            id: c.id.clone(),
            object: Claim::OBJECT,
            guarantee: c.guarantee.clone(),
            amount: c.amount,
            amount_approved: c.amount_approved,
            currency: c.currency.clone(),
            status: c.status,
            reason: c.reason,
            evidence: EvidenceView::from(&c.evidence),
            payout: c.payout.clone(),
            denial_reason: c.denial_reason,
            reviewed_at: c.reviewed_at,
            status_transitions: StatusTransitionsView::from(&c.status_transitions),
            review: ClaimReviewView::from(&c.review),
            metadata: c.metadata.clone(),
            livemode: c.livemode,
            created: c.created,
        }
    }
}

impl From<&Evidence> for EvidenceView {
    fn from(e: &Evidence) -> Self {
        EvidenceView {
            invoice_id: e.invoice_id.clone(),
            due_date: e.due_date,
            description: e.description.clone(),
            files: e.files.clone(),
        }
    }
}

impl From<&StatusTransitions> for StatusTransitionsView {
    fn from(t: &StatusTransitions) -> Self {
        StatusTransitionsView {
            submitted_at: t.submitted_at,
            under_review_at: t.under_review_at,
            approved_at: t.approved_at,
            denied_at: t.denied_at,
            paid_at: t.paid_at,
        }
    }
}

impl From<&ClaimReview> for ClaimReviewView {
    fn from(r: &ClaimReview) -> Self {
        ClaimReviewView { note: r.note.clone() }
    }
}
