//! Claim review rules: what automation decides, and the most a claim can be paid.

use super::claim::{AutomatedDenialReason, ClaimReason};
use super::{DAY, Timestamp, wire_enum};

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
    /// The claimed amounts of the guarantee's other approved and paid claims due in
    /// the same period as this one (see [`Period`]).
    pub period_used: i64,
}

/// The outcome of automated review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve {
        amount: i64,
    },
    Deny(AutomatedDenialReason),
    /// Nothing to deny, but the reason needs a person: wait for an operator.
    Operator,
}

/// The period `coverage_amount` covers: the calendar month (UTC) of a claim's due
/// date, from its first second to its last, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub first: Timestamp,
    pub last: Timestamp,
}

impl Period {
    /// The calendar month (UTC) that `ts` falls in. Total over every i64: the bounds
    /// of the months at the ends of the range are clamped to it.
    pub fn of(ts: Timestamp) -> Period {
        let (year, month, _) = civil_from_days(ts.div_euclid(DAY));
        let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        let first = i128::from(days_from_civil(year, month, 1)) * i128::from(DAY);
        let next = i128::from(days_from_civil(next_year, next_month, 1)) * i128::from(DAY);
        let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        Period { first: clamp(first), last: clamp(next - 1) }
    }

    pub fn contains(self, ts: Timestamp) -> bool {
        (self.first..=self.last).contains(&ts)
    }
}

/// (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01, in the
/// proleptic Gregorian calendar (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day, counted from 1970-01-01, of a date (the inverse of `civil_from_days`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What is left of the period's `coverage_amount` once the period's other claims
/// have drawn on it: a claim's base is at most this much.
pub fn period_base(amount: i64, coverage_amount: i64, period_used: i64) -> i64 {
    amount.min(coverage_amount.saturating_sub(period_used)).max(0)
}

/// The most this claim can be paid, or why it cannot be paid at all.
///
/// Covered when the due date lies between `start_date + waiting_period_days`
/// (inclusive) and `end_date` (inclusive), and coverage remains. The base is
/// `min(amount, coverage_amount less what the period's other claims used)` (zero:
/// `period_limit_reached`); the amount is `base x coverage_percentage / 100`, rounded
/// down, less the deductible, capped by the remaining coverage.
pub fn max_payable(i: &ReviewInput) -> Result<i64, AutomatedDenialReason> {
    // Saturating: dates are bounded at the edge, but stored rows may predate the bound.
    let waiting_end = i.start_date.saturating_add(i.waiting_period_days.saturating_mul(DAY));
    if i.due_date < waiting_end {
        return Err(AutomatedDenialReason::WaitingPeriod);
    }
    if i.due_date > i.end_date {
        return Err(AutomatedDenialReason::OutsideCoveragePeriod);
    }
    if i.remaining_coverage <= 0 {
        return Err(AutomatedDenialReason::CoverageExhausted);
    }
    let base = period_base(i.amount, i.coverage_amount, i.period_used);
    if base <= 0 {
        return Err(AutomatedDenialReason::PeriodLimitReached);
    }
    // Amounts and percentages are bounded (99,999,999 x 100): no overflow.
    let covered = base * i.coverage_percentage / 100;
    let after_deductible = covered - i.deductible_amount;
    if after_deductible <= 0 {
        return Err(AutomatedDenialReason::BelowDeductible);
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

wire_enum! {
    /// How one rule of the automated review came out for a claim.
    CheckResult {
        Pass = "pass",
        Fail = "fail",
        Skipped = "skipped",
    }
}

/// One rule of SPEC section 2 as applied to a claim, with the figures it used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// The rule, named by the denial reason it guards against.
    pub rule: String,
    pub result: CheckResult,
    pub message: String,
}

/// The rules, in the order [`max_payable`] applies them.
pub const RULES: [AutomatedDenialReason; 5] = [
    AutomatedDenialReason::WaitingPeriod,
    AutomatedDenialReason::OutsideCoveragePeriod,
    AutomatedDenialReason::CoverageExhausted,
    AutomatedDenialReason::PeriodLimitReached,
    AutomatedDenialReason::BelowDeductible,
];

/// `2024-02-24`: a timestamp's UTC date.
pub fn date(ts: Timestamp) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Every rule of the automated review for this claim, in order, each with the figures
/// it used: the rules up to the first that fails pass, that one fails, and the ones
/// after it are skipped (the claim is denied by the first). Agrees with
/// [`max_payable`] by construction: the same figures, the same order.
pub fn checks(i: &ReviewInput) -> Vec<Check> {
    use AutomatedDenialReason as R;
    let waiting_end = i.start_date.saturating_add(i.waiting_period_days.saturating_mul(DAY));
    let base = period_base(i.amount, i.coverage_amount, i.period_used);
    let covered = base.saturating_mul(i.coverage_percentage) / 100;
    let after_deductible = covered.saturating_sub(i.deductible_amount);
    let due = date(i.due_date);
    let mut failed = false;
    RULES
        .iter()
        .map(|&rule| {
            let (pass, message) = match rule {
                R::WaitingPeriod => (
                    i.due_date >= waiting_end,
                    format!(
                        "Due date {due}; the waiting period of {} days from the start date {} ends {} (covered from then on).",
                        i.waiting_period_days,
                        date(i.start_date),
                        date(waiting_end)
                    ),
                ),
                R::OutsideCoveragePeriod => (
                    i.due_date <= i.end_date,
                    format!("Due date {due}; the guarantee covers rent due up to its end date {}.", date(i.end_date)),
                ),
                R::CoverageExhausted => (
                    i.remaining_coverage > 0,
                    format!("Remaining coverage {} (paid and approved claims deducted).", i.remaining_coverage),
                ),
                R::PeriodLimitReached => {
                    let month = &due[..7];
                    (
                        base > 0,
                        format!(
                            "Month {month}: coverage {} per month, {} used by other approved claims; base min({}, {}) = {base}.",
                            i.coverage_amount,
                            i.period_used,
                            i.amount,
                            i.coverage_amount.saturating_sub(i.period_used).max(0)
                        ),
                    )
                }
                R::BelowDeductible => (
                    after_deductible > 0,
                    format!(
                        "{base} x {}% = {covered}, less the deductible {} = {after_deductible}; payable {} (capped by the remaining coverage).",
                        i.coverage_percentage,
                        i.deductible_amount,
                        after_deductible.min(i.remaining_coverage).max(0)
                    ),
                ),
            };
            let result = if failed {
                CheckResult::Skipped
            } else if pass {
                CheckResult::Pass
            } else {
                failed = true;
                CheckResult::Fail
            };
            Check { rule: rule.as_str().to_owned(), result, message }
        })
        .collect()
}

/// The checks of a claim the automated review has not looked at yet.
pub fn unchecked() -> Vec<Check> {
    RULES
        .iter()
        .map(|r| Check {
            rule: r.as_str().to_owned(),
            result: CheckResult::Skipped,
            message: "Not checked yet: the automated review runs within seconds of filing.".to_owned(),
        })
        .collect()
}

/// How many business days a person has to review a claim.
pub const REVIEW_BUSINESS_DAYS: i64 = 5;

/// The review deadline: `submitted_at` plus 5 business days (Monday to Friday, UTC),
/// at the same time of day. From a weekday that is a week later; from a Saturday, the
/// Friday after (6 days); from a Sunday, the Friday after (5 days). The migration
/// that filled in older claims' deadlines computes the same in SQL.
pub fn due_by(submitted_at: Timestamp) -> Timestamp {
    let mut day = submitted_at.div_euclid(DAY);
    let mut counted = 0;
    while counted < REVIEW_BUSINESS_DAYS {
        day += 1;
        if !is_weekend(day) {
            counted += 1;
        }
    }
    submitted_at.saturating_add((day - submitted_at.div_euclid(DAY)) * DAY)
}

/// Saturday or Sunday (UTC), for a day counted from 1970-01-01, a Thursday.
pub fn is_weekend(day: i64) -> bool {
    matches!(day.rem_euclid(7), 2 | 3)
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
            period_used: 0,
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
        assert_eq!(decide(&one_second_early), Decision::Deny(AutomatedDenialReason::WaitingPeriod));
        let before_start = ReviewInput { due_date: 1_706_140_000, waiting_period_days: 0, ..quickstart() };
        assert_eq!(decide(&before_start), Decision::Deny(AutomatedDenialReason::WaitingPeriod));
    }

    #[test]
    fn end_date_boundary_is_inclusive() {
        let on_end = ReviewInput { due_date: 1_737_676_800, ..quickstart() };
        assert!(matches!(decide(&on_end), Decision::Approve { .. }));
        let after = ReviewInput { due_date: 1_737_676_801, ..quickstart() };
        assert_eq!(decide(&after), Decision::Deny(AutomatedDenialReason::OutsideCoveragePeriod));
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
        assert_eq!(decide(&i), Decision::Deny(AutomatedDenialReason::BelowDeductible));
        let i = ReviewInput { remaining_coverage: 0, ..quickstart() };
        assert_eq!(decide(&i), Decision::Deny(AutomatedDenialReason::CoverageExhausted));
        let i = ReviewInput { remaining_coverage: 50_000, ..quickstart() };
        assert_eq!(decide(&i), Decision::Approve { amount: 50_000 }, "capped by what remains");
    }

    #[test]
    fn some_reasons_need_an_operator() {
        for reason in [ClaimReason::LeaseBreak, ClaimReason::PropertyDamage] {
            assert_eq!(decide(&ReviewInput { reason, ..quickstart() }), Decision::Operator);
            let late = ReviewInput { reason, due_date: 1_737_676_801, ..quickstart() };
            assert_eq!(
                decide(&late),
                Decision::Deny(AutomatedDenialReason::OutsideCoveragePeriod),
                "denials need no operator"
            );
        }
        let partial = ReviewInput { reason: ClaimReason::PartialPayment, ..quickstart() };
        assert!(matches!(decide(&partial), Decision::Approve { .. }));
    }

    /// 2024-01-01T00:00:00Z, 2024-02-01, 2024-03-01, 2025-01-01.
    const JAN_2024: i64 = 1_704_067_200;
    const FEB_2024: i64 = 1_706_745_600;
    const MAR_2024: i64 = 1_709_251_200;
    const JAN_2025: i64 = 1_735_689_600;

    #[test]
    fn a_period_is_the_utc_calendar_month() {
        let feb = Period::of(FEB_2024 + 10 * DAY);
        assert_eq!(feb, Period { first: FEB_2024, last: MAR_2024 - 1 });
        // Its first and last seconds belong to it; the seconds around them do not.
        assert_eq!(Period::of(FEB_2024), feb);
        assert_eq!(Period::of(MAR_2024 - 1), feb);
        assert_eq!(Period::of(FEB_2024 - 1), Period { first: JAN_2024, last: FEB_2024 - 1 });
        assert_eq!(Period::of(MAR_2024).first, MAR_2024);
        assert!(feb.contains(FEB_2024) && feb.contains(MAR_2024 - 1));
        assert!(!feb.contains(FEB_2024 - 1) && !feb.contains(MAR_2024));
    }

    #[test]
    fn leap_years_and_the_turn_of_the_year() {
        // 2024 is a leap year: February has 29 days; 2023, 1900 and 2100 have 28; 2000 has 29.
        assert_eq!(Period::of(FEB_2024).last - FEB_2024 + 1, 29 * DAY);
        let feb_2023 = 1_675_209_600;
        assert_eq!(Period::of(feb_2023).last - feb_2023 + 1, 28 * DAY);
        // February 1st of each year (from Python's calendar.timegm) and February's length.
        for (year, first, days) in
            [(1900, -2_206_310_400, 28), (2000, 949_363_200, 29), (2100, 4_105_123_200, 28), (2400, 13_572_144_000, 29)]
        {
            assert_eq!(days_from_civil(year, 2, 1) * DAY, first, "{year}");
            let p = Period::of(first + DAY);
            assert_eq!((p.first, (p.last - p.first + 1) / DAY), (first, days), "{year}");
        }
        // December and January are two periods, a second apart.
        let dec = Period::of(JAN_2025 - 1);
        assert_eq!(dec, Period { first: JAN_2025 - 31 * DAY, last: JAN_2025 - 1 });
        assert_eq!(Period::of(JAN_2025).first, JAN_2025);
        assert_eq!(Period::of(JAN_2025).last, JAN_2025 + 31 * DAY - 1);
    }

    #[test]
    fn periods_over_the_whole_timestamp_range_and_beyond() {
        assert_eq!(Period::of(0), Period { first: 0, last: 31 * DAY - 1 });
        let max = crate::domain::TIMESTAMP_RANGE.1;
        assert_eq!(Period::of(max), Period { first: max + 1 - 31 * DAY, last: max });
        // Dates before 1970 (stored before the bound) and the ends of i64 do not panic.
        assert_eq!(Period::of(-1), Period { first: -31 * DAY, last: -1 });
        assert!(Period::of(i64::MAX).contains(i64::MAX));
        assert!(Period::of(i64::MIN).contains(i64::MIN));
        // Every day of 1969-2030 round-trips through the calendar.
        for day in -365..22_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            assert!(Period::of(day * DAY).contains(day * DAY + DAY - 1));
        }
    }

    #[test]
    fn the_quickstart_claim_has_its_month_to_itself() {
        let q = quickstart();
        // 1708732800 is 2024-02-24: February's period.
        assert_eq!(Period::of(q.due_date), Period { first: FEB_2024, last: MAR_2024 - 1 });
        assert_eq!(max_payable(&q), Ok(120_000));
        // A second claim for February, once the first is approved, gets nothing.
        let second = ReviewInput { period_used: 120_000, remaining_coverage: 1_320_000, ..q };
        assert_eq!(decide(&second), Decision::Deny(AutomatedDenialReason::PeriodLimitReached));
    }

    #[test]
    fn the_period_cap_comes_before_the_percentage_and_the_deductible() {
        // Rent of 100,000 is paid; a top-up claim of 50,000 for the same month has
        // 20,000 of the month's cover left.
        let i = ReviewInput { amount: 50_000, period_used: 100_000, ..quickstart() };
        assert_eq!(max_payable(&i), Ok(20_000));
        // 80% of the 20,000 left, less 5,000.
        let i = ReviewInput { coverage_percentage: 80, deductible_amount: 5_000, ..i };
        assert_eq!(max_payable(&i), Ok(11_000));
        // A month used beyond its cover (claimed amounts above it) leaves nothing.
        let i = ReviewInput { period_used: 250_000, ..quickstart() };
        assert_eq!(max_payable(&i), Err(AutomatedDenialReason::PeriodLimitReached));
        // What little is left may still fall below the deductible.
        let i = ReviewInput { period_used: 119_000, deductible_amount: 1_000, ..quickstart() };
        assert_eq!(max_payable(&i), Err(AutomatedDenialReason::BelowDeductible));
        // No coverage left at all is still `coverage_exhausted`, whatever the month.
        let i = ReviewInput { period_used: 120_000, remaining_coverage: 0, ..quickstart() };
        assert_eq!(max_payable(&i), Err(AutomatedDenialReason::CoverageExhausted));
        // The coverage left caps the result last.
        let i = ReviewInput { period_used: 20_000, remaining_coverage: 30_000, ..quickstart() };
        assert_eq!(max_payable(&i), Ok(30_000));
    }

    #[test]
    fn period_base_never_goes_below_zero() {
        assert_eq!(period_base(120_000, 120_000, 0), 120_000);
        assert_eq!(period_base(500_000, 120_000, 0), 120_000);
        assert_eq!(period_base(50_000, 120_000, 100_000), 20_000);
        assert_eq!(period_base(50_000, 120_000, 120_000), 0);
        assert_eq!(period_base(50_000, 120_000, i64::MAX), 0);
    }

    #[test]
    fn dates_at_the_ends_of_i64_do_not_overflow() {
        let i = ReviewInput { start_date: i64::MAX, waiting_period_days: 365, ..quickstart() };
        assert_eq!(max_payable(&i), Err(AutomatedDenialReason::WaitingPeriod));
        let i = ReviewInput { start_date: i64::MIN, due_date: i64::MIN, waiting_period_days: 0, ..quickstart() };
        assert!(max_payable(&i).is_ok());
    }

    #[test]
    fn checks_agree_with_max_payable_and_show_their_figures() {
        let q = quickstart();
        let c = checks(&q);
        assert_eq!(c.iter().map(|c| c.rule.as_str()).collect::<Vec<_>>(), RULES.map(|r| r.as_str()).to_vec());
        assert!(c.iter().all(|c| c.result == CheckResult::Pass), "{c:?}");
        assert!(c[0].message.contains("2024-02-24") && c[0].message.contains("30 days"), "{}", c[0].message);
        assert!(c[1].message.contains("2025-01-24"), "{}", c[1].message);
        assert!(c[4].message.contains("120000 x 100% = 120000"), "{}", c[4].message);
        // Each denial: the rule that denies fails, the ones before pass, the ones after are skipped.
        let cases = [
            ReviewInput { due_date: 1_708_732_799, ..q },
            ReviewInput { due_date: 1_737_676_801, ..q },
            ReviewInput { remaining_coverage: 0, ..q },
            ReviewInput { period_used: 120_000, ..q },
            ReviewInput { amount: 5_000, deductible_amount: 5_000, ..q },
        ];
        for (i, input) in cases.iter().enumerate() {
            let c = checks(input);
            let denied = max_payable(input).unwrap_err();
            assert_eq!(c[i].rule, denied.as_str());
            assert_eq!(c[i].result, CheckResult::Fail, "{c:?}");
            assert!(c[..i].iter().all(|c| c.result == CheckResult::Pass), "{c:?}");
            assert!(c[i + 1..].iter().all(|c| c.result == CheckResult::Skipped), "{c:?}");
        }
        assert!(unchecked().iter().all(|c| c.result == CheckResult::Skipped) && unchecked().len() == RULES.len());
    }

    #[test]
    fn due_by_is_five_business_days_later() {
        // 2024-01-25 is a Thursday: 5 business days later is Thursday 2024-02-01.
        let thu = 1_706_140_800 + 3_600;
        assert_eq!(date(due_by(thu)), "2024-02-01");
        assert_eq!(due_by(thu) - thu, 7 * DAY, "the same time of day");
        // Friday -> next Friday; Saturday and Sunday -> the Friday after.
        let (fri, sat, sun, mon) = (thu + DAY, thu + 2 * DAY, thu + 3 * DAY, thu + 4 * DAY);
        assert_eq!(due_by(fri), fri + 7 * DAY);
        assert_eq!(due_by(sat), sat + 6 * DAY);
        assert_eq!(due_by(sun), sun + 5 * DAY);
        assert_eq!(date(due_by(sat)), "2024-02-02");
        assert_eq!(date(due_by(sun)), "2024-02-02");
        assert_eq!(due_by(mon), mon + 7 * DAY);
        assert!(is_weekend(2) && is_weekend(3) && !is_weekend(0) && !is_weekend(4));
        // The migration's SQL formula agrees on every day for years.
        for day in 0..3_000 {
            let t = day * DAY + 12_345;
            let sql = t + DAY
                * match (t / DAY) % 7 {
                    2 => 6,
                    3 => 5,
                    _ => 7,
                };
            assert_eq!(due_by(t), sql, "{}", date(t));
            assert!(!is_weekend(due_by(t).div_euclid(DAY)), "never due on a weekend");
        }
    }
}
