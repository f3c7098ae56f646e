//! Claims: a landlord's request to be paid for rent the tenant did not pay.

use serde::Serialize;

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
    DenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
    }
}

pub const DESCRIPTION_MAX_CHARS: usize = 1_000;
pub const INVOICE_ID_MAX_CHARS: usize = 255;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    pub invoice_id: String,
    pub due_date: Timestamp,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct StatusTransitions {
    pub submitted_at: Option<Timestamp>,
    pub under_review_at: Option<Timestamp>,
    pub approved_at: Option<Timestamp>,
    pub denied_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Claim {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
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
    /// Automated review passed it to an operator (not rendered).
    #[serde(skip)]
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
}
