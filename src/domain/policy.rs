//! Guarantee policies: the terms that guarantees are written on.

use super::Timestamp;
use super::metadata::Metadata;

/// Bounds of the policy terms, inclusive.
pub const COVERAGE_PERCENTAGE: (i64, i64) = (1, 100);
pub const MAX_COVERAGE_MONTHS: (i64, i64) = (1, 60);
pub const WAITING_PERIOD_DAYS: (i64, i64) = (0, 365);
pub const ELIGIBLE_SCORE_MINIMUM: (i64, i64) = (0, 100);
pub const DEDUCTIBLE_AMOUNT: (i64, i64) = (0, 99_999_999);

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

/// The policy terms that may not change after creation, for the error that says so.
pub const FIXED_TERMS: &[&str] = &[
    "coverage_percentage",
    "max_coverage_months",
    "waiting_period_days",
    "eligible_score_minimum",
    "deductible_amount",
];

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
