//! Claim review rules: what automation decides, and the most a claim can be paid.

use super::claim::{ClaimReason, DenialReason};
use super::{DAY, Timestamp};

/// What the review of one claim needs to know.
#[derive(Debug, Clone, Copy)]
pub struct ReviewInput {
    pub reason: ClaimReason,
    pub amount: i64,
    pub due_date: Timestamp,
    pub start_date: Timestamp,
    pub end_date: Timestamp,
    pub waiting_period_days: i64,
    pub coverage_amount: i64,
    pub coverage_percentage: i64,
    pub deductible_amount: i64,
    /// Total coverage less what is paid and what is approved but unpaid.
    pub remaining_coverage: i64,
}

/// The outcome of automated review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve {
        amount: i64,
    },
    Deny(DenialReason),
    /// Nothing to deny, but the reason needs a person: wait for an operator.
    Operator,
}

/// The most this claim can be paid, or why it cannot be paid at all.
///
/// Covered when the due date lies between `start_date + waiting_period_days`
/// (inclusive) and `end_date` (inclusive). The amount is
/// `min(amount, coverage_amount) x coverage_percentage / 100`, rounded down, less the
/// deductible, capped by the remaining coverage.
pub fn max_payable(i: &ReviewInput) -> Result<i64, DenialReason> {
    if i.due_date < i.start_date + i.waiting_period_days * DAY {
        return Err(DenialReason::WaitingPeriod);
    }
    if i.due_date > i.end_date {
        return Err(DenialReason::OutsideCoveragePeriod);
    }
    if i.remaining_coverage <= 0 {
        return Err(DenialReason::CoverageExhausted);
    }
    let covered = i.amount.min(i.coverage_amount) * i.coverage_percentage / 100;
    let after_deductible = covered - i.deductible_amount;
    if after_deductible <= 0 {
        return Err(DenialReason::BelowDeductible);
    }
    Ok(after_deductible.min(i.remaining_coverage))
}

/// Automated review: deny what the rules deny; approve missed and partial payments;
/// pass lease breaks and property damage to an operator.
pub fn decide(i: &ReviewInput) -> Decision {
    match max_payable(i) {
        Err(reason) => Decision::Deny(reason),
        Ok(amount) => match i.reason {
            ClaimReason::MissedPayment | ClaimReason::PartialPayment => Decision::Approve { amount },
            ClaimReason::LeaseBreak | ClaimReason::PropertyDamage => Decision::Operator,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quickstart: start 1706140800, 30 days waiting, 100% of 120000 for 12 months.
    fn quickstart() -> ReviewInput {
        ReviewInput {
            reason: ClaimReason::MissedPayment,
            amount: 120_000,
            due_date: 1_708_732_800,
            start_date: 1_706_140_800,
            end_date: 1_737_676_800,
            waiting_period_days: 30,
            coverage_amount: 120_000,
            coverage_percentage: 100,
            deductible_amount: 0,
            remaining_coverage: 1_440_000,
        }
    }

    #[test]
    fn quickstart_claim_is_approved_in_full() {
        assert_eq!(decide(&quickstart()), Decision::Approve { amount: 120_000 });
    }

    #[test]
    fn waiting_period_boundary_is_inclusive() {
        let on_boundary = ReviewInput { due_date: 1_706_140_800 + 30 * DAY, ..quickstart() };
        assert_eq!(on_boundary.due_date, 1_708_732_800);
        assert!(matches!(decide(&on_boundary), Decision::Approve { .. }));
        let one_second_early = ReviewInput { due_date: 1_708_732_799, ..quickstart() };
        assert_eq!(decide(&one_second_early), Decision::Deny(DenialReason::WaitingPeriod));
        let before_start = ReviewInput { due_date: 1_706_140_000, waiting_period_days: 0, ..quickstart() };
        assert_eq!(decide(&before_start), Decision::Deny(DenialReason::WaitingPeriod));
    }

    #[test]
    fn end_date_boundary_is_inclusive() {
        let on_end = ReviewInput { due_date: 1_737_676_800, ..quickstart() };
        assert!(matches!(decide(&on_end), Decision::Approve { .. }));
        let after = ReviewInput { due_date: 1_737_676_801, ..quickstart() };
        assert_eq!(decide(&after), Decision::Deny(DenialReason::OutsideCoveragePeriod));
    }

    #[test]
    fn percentage_rounds_down_and_deductible_applies() {
        // 80% of min(100001, 120000) = 80000.8 -> 80000, less 5000.
        let i = ReviewInput { amount: 100_001, coverage_percentage: 80, deductible_amount: 5_000, ..quickstart() };
        assert_eq!(max_payable(&i), Ok(75_000));
        // The claimed amount is capped at the monthly coverage first.
        let i = ReviewInput { amount: 500_000, coverage_percentage: 80, ..quickstart() };
        assert_eq!(max_payable(&i), Ok(96_000));
        // 33% of 10 = 3.3 -> 3.
        let i = ReviewInput { amount: 10, coverage_percentage: 33, ..quickstart() };
        assert_eq!(max_payable(&i), Ok(3));
    }

    #[test]
    fn below_deductible_and_exhausted() {
        let i = ReviewInput { amount: 5_000, deductible_amount: 5_000, ..quickstart() };
        assert_eq!(decide(&i), Decision::Deny(DenialReason::BelowDeductible));
        let i = ReviewInput { remaining_coverage: 0, ..quickstart() };
        assert_eq!(decide(&i), Decision::Deny(DenialReason::CoverageExhausted));
        let i = ReviewInput { remaining_coverage: 50_000, ..quickstart() };
        assert_eq!(decide(&i), Decision::Approve { amount: 50_000 }, "capped by what remains");
    }

    #[test]
    fn some_reasons_need_an_operator() {
        for reason in [ClaimReason::LeaseBreak, ClaimReason::PropertyDamage] {
            assert_eq!(decide(&ReviewInput { reason, ..quickstart() }), Decision::Operator);
            let late = ReviewInput { reason, due_date: 1_737_676_801, ..quickstart() };
            assert_eq!(decide(&late), Decision::Deny(DenialReason::OutsideCoveragePeriod), "denials need no operator");
        }
        let partial = ReviewInput { reason: ClaimReason::PartialPayment, ..quickstart() };
        assert!(matches!(decide(&partial), Decision::Approve { .. }));
    }
}
