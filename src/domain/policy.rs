//! Guarantee policies: the terms that guarantees are written on.

use super::Timestamp;
use super::metadata::Metadata;

// The policy terms as requests give them, with their bounds (inclusive).
super::input::bounded_int!(CoveragePercentage, 1, 100, "The share of each claim covered, in percent.");
super::input::bounded_int!(
    MaxCoverageMonths,
    1,
    60,
    "Months of rent covered in all: `total_coverage` is `coverage_amount` times this."
);
super::input::bounded_int!(WaitingPeriodDays, 0, 365, "Days after `start_date` before rent falling due is covered.");
super::input::bounded_int!(
    EligibleScoreMinimum,
    0,
    100,
    "The lowest tenant `score` the policy guarantees (no score counts as 0)."
);
super::input::bounded_int!(
    DeductibleAmount,
    0,
    super::money::Amount::MAX,
    "Taken off each approved claim, in the currency's minor unit."
);
super::input::bounded_text!(PolicyName, 256, "The policy's name.");

/// The terms are fixed once the policy is created; only `name`, `active` and
/// `metadata` change afterwards.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub coverage_percentage: i64,
    pub max_coverage_months: i64,
    pub waiting_period_days: i64,
    pub eligible_score_minimum: i64,
    pub deductible_amount: i64,
    pub active: bool,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl Policy {
    pub const OBJECT: &'static str = "guarantee_policy";

    /// Whether a tenant with this score may be guaranteed; no score counts as 0.
    pub fn admits(&self, score: Option<i64>) -> bool {
        score.unwrap_or(0) >= self.eligible_score_minimum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: i64) -> Policy {
        Policy {
            id: "gpol_1".into(),
            name: "p".into(),
            coverage_percentage: 100,
            max_coverage_months: 12,
            waiting_period_days: 30,
            eligible_score_minimum: min,
            deductible_amount: 0,
            active: true,
            metadata: Metadata::new(),
            livemode: false,
            created: 0,
        }
    }

    #[test]
    fn eligibility_by_score() {
        let p = policy(60);
        assert!(p.admits(Some(80)));
        assert!(p.admits(Some(60)));
        assert!(!p.admits(Some(59)));
        assert!(!p.admits(None));
        assert!(policy(0).admits(None));
    }
}
