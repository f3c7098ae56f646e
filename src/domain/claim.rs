//! Claims: a landlord's request to be paid for rent the tenant did not pay.

use super::metadata::Metadata;
use super::{Timestamp, wire_enum};

wire_enum! {
    ClaimStatus {
        Submitted = "submitted",
        UnderReview = "under_review",
        Approved = "approved",
        Denied = "denied",
        Paid = "paid",
    }
}

wire_enum! {
    ClaimReason {
        MissedPayment = "missed_payment",
        PartialPayment = "partial_payment",
        LeaseBreak = "lease_break",
        PropertyDamage = "property_damage",
    }
}

wire_enum! {
    /// Every reason a denied claim can show: the automated review's and the operators'.
    DenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
        PeriodLimitReached = "period_limit_reached",
        InsufficientEvidence = "insufficient_evidence",
        NotCovered = "not_covered",
        DuplicateClaim = "duplicate_claim",
        TenantPaid = "tenant_paid",
        FraudSuspected = "fraud_suspected",
        Other = "other",
    }
}

wire_enum! {
    /// The reasons the rules deny a claim for (SPEC section 2); the only ones the
    /// automated review can give.
    AutomatedDenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
        PeriodLimitReached = "period_limit_reached",
    }
}

wire_enum! {
    /// The reasons an operator (or a test helper) may deny a claim for (SPEC section 4):
    /// the automated four and the ones only a person can judge.
    OperatorDenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
        InsufficientEvidence = "insufficient_evidence",
        NotCovered = "not_covered",
        DuplicateClaim = "duplicate_claim",
        TenantPaid = "tenant_paid",
        FraudSuspected = "fraud_suspected",
        Other = "other",
    }
}

impl From<AutomatedDenialReason> for DenialReason {
    fn from(r: AutomatedDenialReason) -> Self {
        use AutomatedDenialReason as A;
        match r {
            A::WaitingPeriod => DenialReason::WaitingPeriod,
            A::OutsideCoveragePeriod => DenialReason::OutsideCoveragePeriod,
            A::CoverageExhausted => DenialReason::CoverageExhausted,
            A::BelowDeductible => DenialReason::BelowDeductible,
            A::PeriodLimitReached => DenialReason::PeriodLimitReached,
        }
    }
}

impl From<OperatorDenialReason> for DenialReason {
    fn from(r: OperatorDenialReason) -> Self {
        use OperatorDenialReason as O;
        match r {
            O::WaitingPeriod => DenialReason::WaitingPeriod,
            O::OutsideCoveragePeriod => DenialReason::OutsideCoveragePeriod,
            O::CoverageExhausted => DenialReason::CoverageExhausted,
            O::BelowDeductible => DenialReason::BelowDeductible,
            O::InsufficientEvidence => DenialReason::InsufficientEvidence,
            O::NotCovered => DenialReason::NotCovered,
            O::DuplicateClaim => DenialReason::DuplicateClaim,
            O::TenantPaid => DenialReason::TenantPaid,
            O::FraudSuspected => DenialReason::FraudSuspected,
            O::Other => DenialReason::Other,
        }
    }
}

impl OperatorDenialReason {
    /// `other` says nothing by itself: the operator must explain it in a note.
    pub fn requires_note(self) -> bool {
        self == OperatorDenialReason::Other
    }
}

pub const DESCRIPTION_MAX_CHARS: usize = 1_000;
/// The most an operator's note may hold.
pub const NOTE_MAX_CHARS: usize = 1_000;
pub const INVOICE_ID_MAX_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub invoice_id: String,
    pub due_date: Timestamp,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusTransitions {
    pub submitted_at: Option<Timestamp>,
    pub under_review_at: Option<Timestamp>,
    pub approved_at: Option<Timestamp>,
    pub denied_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
}

/// How the claim was decided.
// SPEC section 4's `review`: for now only the note; the rule checks, who decided, the
// deadline, the approvals and the evidence request join it here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimReview {
    /// The deciding operator's note (required with `denial_reason: other`), or null.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub guarantee: String,
    pub amount: i64,
    pub amount_approved: Option<i64>,
    pub currency: String,
    pub status: ClaimStatus,
    pub reason: ClaimReason,
    pub evidence: Evidence,
    pub payout: Option<String>,
    pub denial_reason: Option<DenialReason>,
    pub reviewed_at: Option<Timestamp>,
    pub status_transitions: StatusTransitions,
    pub review: ClaimReview,
    /// Automated review passed it to an operator (not rendered).
    pub awaiting_operator: bool,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl Claim {
    pub const OBJECT: &'static str = "claim";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        assert_eq!(ClaimStatus::UnderReview.as_str(), "under_review");
        assert_eq!(ClaimReason::parse("lease_break"), Some(ClaimReason::LeaseBreak));
        assert_eq!(ClaimReason::parse("other"), None);
        assert_eq!(serde_json::to_value(DenialReason::BelowDeductible).unwrap(), serde_json::json!("below_deductible"));
    }

    #[test]
    fn denial_reasons_keep_their_wire_names_across_the_three_lists() {
        for r in AutomatedDenialReason::ALL {
            assert_eq!(DenialReason::from(*r).as_str(), r.as_str());
        }
        for r in OperatorDenialReason::ALL {
            assert_eq!(DenialReason::from(*r).as_str(), r.as_str());
        }
        // Every reason a claim can show comes from one list or the other.
        for r in DenialReason::ALL {
            let known =
                AutomatedDenialReason::parse(r.as_str()).is_some() || OperatorDenialReason::parse(r.as_str()).is_some();
            assert!(known, "{r}");
        }
    }

    #[test]
    fn operator_reasons_are_the_specs() {
        assert_eq!(
            OperatorDenialReason::names(),
            "waiting_period, outside_coverage_period, coverage_exhausted, below_deductible, insufficient_evidence, \
             not_covered, duplicate_claim, tenant_paid, fraud_suspected, other"
        );
        assert_eq!(OperatorDenialReason::parse("period_limit_reached"), None, "the rules' own, not a person's");
        assert_eq!(AutomatedDenialReason::parse("insufficient_evidence"), None);
        assert!(OperatorDenialReason::Other.requires_note());
        assert!(!OperatorDenialReason::FraudSuspected.requires_note());
    }
}
