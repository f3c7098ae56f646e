use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::claim::{
    ActionType, Approval, Claim, ClaimAction, ClaimReason, ClaimReview, ClaimStatus, DenialReason, Evidence,
    StatusTransitions,
};
use crate::domain::metadata::Metadata;
use crate::domain::review::{Check, CheckResult};

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

/// How the claim is reviewed and was decided.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ClaimReview)]
pub struct ClaimReviewView {
    /// One entry per rule of the automated review, in order, with the figures it used.
    pub checks: Vec<CheckView>,
    /// `automation`, an operator's `op_` id, `test_helper`, or null while undecided.
    pub decided_by: Option<String>,
    /// The review deadline: `status_transitions.submitted_at` plus 5 business days
    /// (Monday to Friday, UTC).
    pub due_by: Option<Timestamp>,
    /// Approvals recorded while a second operator's approval is needed (four eyes).
    pub approvals: Vec<ApprovalView>,
    /// The open request for more evidence, or null.
    pub evidence_requested: Option<String>,
    /// The deciding operator's note (required with `denial_reason: other`), or null.
    pub note: Option<String>,
}

/// One rule of the automated review as applied to the claim.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ClaimCheck)]
pub struct CheckView {
    /// The rule, named by the denial reason it guards against.
    pub rule: String,
    pub result: CheckResult,
    /// What the rule compared, with its figures.
    pub message: String,
}

/// An operator's approval, recorded while a second one is needed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ClaimApproval)]
pub struct ApprovalView {
    /// The approving operator's `op_` id.
    pub operator: String,
    pub amount: i64,
    pub created: Timestamp,
}

/// One step of a claim's review: its audit trail, for operators.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ClaimAction)]
pub struct ClaimActionView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// `automation`, `platform`, `test_helper` or an operator's `op_` id.
    pub actor: String,
    pub message: Option<String>,
    pub amount: Option<i64>,
    pub created: Timestamp,
}

impl From<&ClaimAction> for ClaimActionView {
    fn from(a: &ClaimAction) -> Self {
        ClaimActionView {
            id: a.id.clone(),
            object: ClaimAction::OBJECT,
            kind: a.kind,
            actor: a.actor.clone(),
            message: a.message.clone(),
            amount: a.amount,
            created: a.created,
        }
    }
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
        ClaimReviewView {
            checks: r.checks.iter().map(CheckView::from).collect(),
            decided_by: r.decided_by.clone(),
            due_by: r.due_by,
            approvals: r.approvals.iter().map(ApprovalView::from).collect(),
            evidence_requested: r.evidence_requested.clone(),
            note: r.note.clone(),
        }
    }
}

impl From<&Check> for CheckView {
    fn from(c: &Check) -> Self {
        CheckView { rule: c.rule.clone(), result: c.result, message: c.message.clone() }
    }
}

impl From<&Approval> for ApprovalView {
    fn from(a: &Approval) -> Self {
        ApprovalView { operator: a.operator.clone(), amount: a.amount, created: a.created }
    }
}
