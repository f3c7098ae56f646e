//! Recoveries (SPEC section 6): what the tenant owes the provider once a claim is paid
//! (subrogation), the repayment plan, the payments recorded against it, write-offs.

use super::metadata::Metadata;
use super::review::{civil_from_days, days_from_civil};
use super::{DAY, Timestamp, wire_enum};

wire_enum! {
    /// `open` when the claim is paid; `in_plan` once a plan is set; `recovered` when
    /// nothing remains; `written_off` by an operator.
    RecoveryStatus {
        Open = "open",
        InPlan = "in_plan",
        Recovered = "recovered",
        WrittenOff = "written_off",
    }
}

wire_enum! {
    /// `pending` until paid in full (`paid`) or past its `due_date` unpaid (`missed`).
    InstallmentStatus {
        Pending = "pending",
        Paid = "paid",
        Missed = "missed",
    }
}

wire_enum! {
    /// The steps of a recovery, as its trail records them with who took them.
    RecoveryActionType {
        Opened = "opened",
        PlanSet = "plan_set",
        PaymentRecorded = "payment_recorded",
        InstallmentMissed = "installment_missed",
        WrittenOff = "written_off",
    }
}

super::input::bounded_int!(
    /// How many monthly installments a plan has.
    Installments,
    1,
    24,
    "How many monthly installments, 1 to 24."
);

super::input::bounded_text!(PaymentReference, 255, "The payment's reference (a bank transfer's, say).");
super::input::bounded_text!(WriteOffReason, 1_000, "Why the rest will not be recovered.");

/// The only interval plans have.
pub const PLAN_INTERVAL: &str = "month";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Installment {
    pub due_date: Timestamp,
    pub amount: i64,
    pub amount_paid: i64,
    pub status: InstallmentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub installments: i64,
    pub schedule: Vec<Installment>,
}

impl Plan {
    /// Whether any of the plan was paid: a plan is replaced only while nothing is.
    pub fn has_payments(&self) -> bool {
        self.schedule.iter().any(|i| i.amount_paid > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub id: String,
    pub claim: String,
    pub guarantee: String,
    pub tenant: String,
    pub currency: String,
    /// The payout's amount: what the tenant owes.
    pub amount: i64,
    pub amount_recovered: i64,
    pub status: RecoveryStatus,
    pub plan: Option<Plan>,
    pub written_off_reason: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

/// One step of a recovery, with who took it (`platform`, `automation` or an `op_` id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryAction {
    pub id: String,
    pub recovery: String,
    pub kind: RecoveryActionType,
    pub actor: String,
    pub amount: Option<i64>,
    /// A payment's `paid_at`, or the due date of a missed installment.
    pub at: Option<Timestamp>,
    /// A payment's reference, a write-off's reason, a plan's terms.
    pub message: Option<String>,
    pub livemode: bool,
    pub created: Timestamp,
}

/// A change the recovery's state (or the request's figures) does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// Recovered or written off: nothing more is planned, paid or written off.
    #[error("the recovery is {0}")]
    Closed(RecoveryStatus),
    /// A plan with payments on it stays.
    #[error("the plan has payments recorded against it")]
    PlanHasPayments,
    /// The first installment falls due before now.
    #[error("the first due date is in the past")]
    FirstDueDateInPast,
    /// Each installment must be at least 1.
    #[error("{installments} installments of {remaining} would leave one empty")]
    TooManyInstallments { installments: i64, remaining: i64 },
    /// A payment above what remains.
    #[error("a payment of {amount} is more than the {remaining} remaining")]
    AmountTooLarge { amount: i64, remaining: i64 },
}

/// `ts` moved `months` calendar months later (UTC), at the same time of day. A day that
/// the target month lacks (the 31st, February's 29th) falls on its last day.
pub fn add_months(ts: Timestamp, months: i64) -> Timestamp {
    let (days, secs) = (ts.div_euclid(DAY), ts.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + (month - 1) + months;
    let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    days_from_civil(y, m, day.min(days_in_month(y, m))) * DAY + secs
}

/// 28 to 31.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(year, month, 1)
}

/// `total` in `installments` monthly installments from `first`: split evenly, the
/// remainder on the last; each due date counted from `first` (so a plan from the 31st
/// goes back to the 31st after a shorter month).
pub fn schedule(total: i64, installments: i64, first: Timestamp) -> Vec<Installment> {
    let n = installments.max(1);
    let (each, rest) = (total / n, total % n);
    (0..n)
        .map(|i| Installment {
            due_date: add_months(first, i),
            amount: if i == n - 1 { each + rest } else { each },
            amount_paid: 0,
            status: InstallmentStatus::Pending,
        })
        .collect()
}

/// Spreads `amount` over the installments not yet paid in full, oldest first; returns
/// what did not fit (0 when the schedule had room).
pub fn allocate(schedule: &mut [Installment], amount: i64) -> i64 {
    let mut left = amount;
    for i in schedule.iter_mut() {
        if left == 0 {
            break;
        }
        let open = i.amount - i.amount_paid;
        if open <= 0 {
            continue;
        }
        let take = open.min(left);
        i.amount_paid += take;
        left -= take;
        if i.amount_paid == i.amount {
            i.status = InstallmentStatus::Paid;
        }
    }
    left
}

impl Recovery {
    pub const OBJECT: &'static str = "recovery";

    pub fn remaining(&self) -> i64 {
        self.amount - self.amount_recovered
    }

    fn check_open(&self) -> Result<(), RecoveryError> {
        match self.status {
            RecoveryStatus::Open | RecoveryStatus::InPlan => Ok(()),
            closed => Err(RecoveryError::Closed(closed)),
        }
    }

    /// Sets (or replaces, while nothing of it is paid) a plan of `installments` for what
    /// remains, the first due at `first_due_date`, which may not be before `now`.
    pub fn set_plan(
        &mut self,
        installments: i64,
        first_due_date: Timestamp,
        now: Timestamp,
    ) -> Result<(), RecoveryError> {
        self.check_open()?;
        if self.plan.as_ref().is_some_and(Plan::has_payments) {
            return Err(RecoveryError::PlanHasPayments);
        }
        if first_due_date < now {
            return Err(RecoveryError::FirstDueDateInPast);
        }
        let remaining = self.remaining();
        if installments > remaining {
            return Err(RecoveryError::TooManyInstallments { installments, remaining });
        }
        self.plan = Some(Plan { installments, schedule: schedule(remaining, installments, first_due_date) });
        self.status = RecoveryStatus::InPlan;
        Ok(())
    }

    /// Records a payment of `amount` (at least 1, checked at the edge) against the
    /// oldest installments not paid in full. Returns whether it recovered the rest.
    pub fn record_payment(&mut self, amount: i64) -> Result<bool, RecoveryError> {
        self.check_open()?;
        let remaining = self.remaining();
        if amount > remaining {
            return Err(RecoveryError::AmountTooLarge { amount, remaining });
        }
        if let Some(plan) = &mut self.plan {
            // The plan splits what remained when it was set, and every payment since
            // was at most what remained: it always has room.
            allocate(&mut plan.schedule, amount);
        }
        self.amount_recovered += amount;
        if self.remaining() == 0 {
            self.status = RecoveryStatus::Recovered;
            return Ok(true);
        }
        Ok(false)
    }

    /// An operator writes off what remains.
    pub fn write_off(&mut self, reason: String) -> Result<(), RecoveryError> {
        self.check_open()?;
        self.status = RecoveryStatus::WrittenOff;
        self.written_off_reason = Some(reason);
        Ok(())
    }

    /// Marks `missed` every pending installment whose due date is before `now` and that
    /// is not paid in full; returns their indexes (each is missed once).
    pub fn mark_missed(&mut self, now: Timestamp) -> Vec<usize> {
        if self.status != RecoveryStatus::InPlan {
            return Vec::new();
        }
        let Some(plan) = &mut self.plan else { return Vec::new() };
        let mut missed = Vec::new();
        for (n, i) in plan.schedule.iter_mut().enumerate() {
            if i.status == InstallmentStatus::Pending && i.due_date < now && i.amount_paid < i.amount {
                i.status = InstallmentStatus::Missed;
                missed.push(n);
            }
        }
        missed
    }

    /// The due date of the earliest installment that may still be missed: the engine
    /// looks at the recovery once the time is past it. `None` outside a plan.
    pub fn next_due_date(&self) -> Option<Timestamp> {
        if self.status != RecoveryStatus::InPlan {
            return None;
        }
        self.plan.as_ref()?.schedule.iter().filter(|i| i.status == InstallmentStatus::Pending).map(|i| i.due_date).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-31T09:30:00Z.
    const JAN_31_2024: Timestamp = 1_706_693_400;

    fn ymd(ts: Timestamp) -> (i64, i64, i64, i64) {
        let (y, m, d) = civil_from_days(ts.div_euclid(DAY));
        (y, m, d, ts.rem_euclid(DAY))
    }

    fn recovery(amount: i64) -> Recovery {
        Recovery {
            id: "rec_1".into(),
            claim: "clm_1".into(),
            guarantee: "grt_1".into(),
            tenant: "cus_1".into(),
            currency: "eur".into(),
            amount,
            amount_recovered: 0,
            status: RecoveryStatus::Open,
            plan: None,
            written_off_reason: None,
            metadata: Metadata::new(),
            livemode: false,
            created: JAN_31_2024 - DAY,
        }
    }

    #[test]
    fn an_even_split_puts_the_remainder_on_the_last_installment() {
        let s = schedule(100_000, 3, JAN_31_2024);
        assert_eq!(s.iter().map(|i| i.amount).collect::<Vec<_>>(), [33_333, 33_333, 33_334]);
        assert_eq!(s.iter().map(|i| i.amount).sum::<i64>(), 100_000);
        assert!(s.iter().all(|i| i.amount_paid == 0 && i.status == InstallmentStatus::Pending));
        let even = schedule(120_000, 12, JAN_31_2024);
        assert!(even.iter().all(|i| i.amount == 10_000));
        let one = schedule(7, 1, JAN_31_2024);
        assert_eq!((one.len(), one[0].amount, one[0].due_date), (1, 7, JAN_31_2024));
        let tiny = schedule(24, 24, JAN_31_2024);
        assert!(tiny.iter().all(|i| i.amount == 1));
        let odd = schedule(25, 24, JAN_31_2024);
        assert_eq!((odd[0].amount, odd[23].amount), (1, 2));
    }

    #[test]
    fn monthly_due_dates_fall_on_the_last_day_of_short_months_and_go_back_to_the_31st() {
        let s = schedule(600, 6, JAN_31_2024);
        let dates: Vec<_> = s.iter().map(|i| ymd(i.due_date)).collect();
        let t = 9 * 3600 + 1800;
        assert_eq!(
            dates,
            [
                (2024, 1, 31, t),
                (2024, 2, 29, t),
                (2024, 3, 31, t),
                (2024, 4, 30, t),
                (2024, 5, 31, t),
                (2024, 6, 30, t)
            ]
        );
    }

    #[test]
    fn leap_years_and_the_turn_of_the_year() {
        // 2023-12-31 (not a leap year ahead), then into 2024 (a leap year).
        let dec_31_2023 = days_from_civil(2023, 12, 31) * DAY;
        let dates: Vec<_> = (0..3).map(|k| ymd(add_months(dec_31_2023, k))).collect();
        assert_eq!(dates, [(2023, 12, 31, 0), (2024, 1, 31, 0), (2024, 2, 29, 0)]);
        // February of a common year has 28 days; 1900 was not a leap year, 2000 was.
        assert_eq!(ymd(add_months(days_from_civil(2025, 1, 29) * DAY, 1)), (2025, 2, 28, 0));
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        // A leap day moves to the 28th of a common year, and back to the 29th in the next leap year.
        let feb_29 = days_from_civil(2024, 2, 29) * DAY;
        assert_eq!(ymd(add_months(feb_29, 12)), (2025, 2, 28, 0));
        assert_eq!(ymd(add_months(feb_29, 48)), (2028, 2, 29, 0));
        // 24 months from the last timestamp the API takes stays representable.
        let last = crate::domain::TIMESTAMP_RANGE.1;
        assert_eq!(ymd(add_months(last, 23)), (10001, 11, 30, DAY - 1));
    }

    #[test]
    fn payments_go_to_the_oldest_installments_first() {
        let mut s = schedule(300, 3, JAN_31_2024);
        assert_eq!(allocate(&mut s, 150), 0);
        assert_eq!(
            s.iter().map(|i| (i.amount_paid, i.status)).collect::<Vec<_>>(),
            [(100, InstallmentStatus::Paid), (50, InstallmentStatus::Pending), (0, InstallmentStatus::Pending)]
        );
        s[1].status = InstallmentStatus::Missed;
        assert_eq!(allocate(&mut s, 60), 0);
        assert_eq!(
            (s[1].amount_paid, s[1].status),
            (100, InstallmentStatus::Paid),
            "a missed one paid in full is paid"
        );
        assert_eq!(s[2].amount_paid, 10);
        assert_eq!(allocate(&mut s, 100), 10, "what does not fit is handed back");
        assert!(s.iter().all(|i| i.status == InstallmentStatus::Paid));
    }

    #[test]
    fn a_plan_splits_what_remains_and_is_replaced_only_while_unpaid() {
        let mut r = recovery(100_000);
        r.record_payment(10_000).unwrap();
        assert_eq!(r.status, RecoveryStatus::Open);
        r.set_plan(3, JAN_31_2024, JAN_31_2024).unwrap();
        assert_eq!(r.status, RecoveryStatus::InPlan);
        let plan = r.plan.clone().unwrap();
        assert_eq!(plan.schedule.iter().map(|i| i.amount).collect::<Vec<_>>(), [30_000, 30_000, 30_000]);
        assert_eq!(r.next_due_date(), Some(JAN_31_2024));
        r.set_plan(2, JAN_31_2024 + DAY, JAN_31_2024).unwrap();
        assert_eq!(r.plan.as_ref().unwrap().installments, 2, "replaced while nothing of it is paid");
        r.record_payment(1).unwrap();
        let before = r.clone();
        assert_eq!(r.set_plan(6, JAN_31_2024 + DAY, JAN_31_2024), Err(RecoveryError::PlanHasPayments));
        assert_eq!(r, before, "a refused step changes nothing");

        let mut r = recovery(100_000);
        assert_eq!(r.set_plan(3, JAN_31_2024 - 1, JAN_31_2024), Err(RecoveryError::FirstDueDateInPast));
        let mut small = recovery(5);
        assert_eq!(
            small.set_plan(6, JAN_31_2024, JAN_31_2024),
            Err(RecoveryError::TooManyInstallments { installments: 6, remaining: 5 })
        );
        r.write_off("Tenant insolvent.".into()).unwrap();
        assert_eq!(r.set_plan(3, JAN_31_2024, JAN_31_2024), Err(RecoveryError::Closed(RecoveryStatus::WrittenOff)));
        assert_eq!(r.next_due_date(), None);
    }

    #[test]
    fn payments_never_exceed_what_remains_and_the_last_recovers_it() {
        let mut r = recovery(1_000);
        r.set_plan(2, JAN_31_2024, JAN_31_2024).unwrap();
        assert_eq!(r.record_payment(1_001), Err(RecoveryError::AmountTooLarge { amount: 1_001, remaining: 1_000 }));
        assert_eq!(r.amount_recovered, 0);
        assert!(!r.record_payment(400).unwrap());
        assert_eq!((r.amount_recovered, r.remaining()), (400, 600));
        assert!(r.record_payment(600).unwrap());
        assert_eq!((r.status, r.remaining()), (RecoveryStatus::Recovered, 0));
        assert!(r.plan.as_ref().unwrap().schedule.iter().all(|i| i.status == InstallmentStatus::Paid));
        assert_eq!(r.record_payment(1), Err(RecoveryError::Closed(RecoveryStatus::Recovered)));
        assert_eq!(r.write_off("x".into()), Err(RecoveryError::Closed(RecoveryStatus::Recovered)));

        let mut w = recovery(1_000);
        w.write_off("Tenant insolvent.".into()).unwrap();
        assert_eq!(w.record_payment(1), Err(RecoveryError::Closed(RecoveryStatus::WrittenOff)));
        assert_eq!(w.written_off_reason.as_deref(), Some("Tenant insolvent."));
    }

    #[test]
    fn installments_past_due_and_unpaid_are_missed_once() {
        let mut r = recovery(300);
        r.set_plan(3, JAN_31_2024, JAN_31_2024).unwrap();
        assert!(r.mark_missed(JAN_31_2024).is_empty(), "due now is not past due");
        r.record_payment(50).unwrap();
        let feb_29 = add_months(JAN_31_2024, 1);
        assert_eq!(r.mark_missed(feb_29 + 1), vec![0, 1]);
        assert!(r.mark_missed(feb_29 + 1).is_empty(), "once");
        assert_eq!(r.next_due_date(), Some(add_months(JAN_31_2024, 2)));
        r.record_payment(100).unwrap();
        let s = &r.plan.as_ref().unwrap().schedule;
        assert_eq!(
            (s[0].status, s[1].status, s[1].amount_paid),
            (InstallmentStatus::Paid, InstallmentStatus::Missed, 50)
        );
        r.record_payment(50).unwrap();
        assert_eq!(r.mark_missed(i64::MAX), vec![2], "a fully paid installment is never missed");
        assert_eq!(r.next_due_date(), None);
    }

    #[test]
    fn wire_names() {
        assert_eq!(RecoveryStatus::names(), "open, in_plan, recovered, written_off");
        assert_eq!(InstallmentStatus::names(), "pending, paid, missed");
        assert_eq!(Installments::new(0).unwrap_err().code(), "parameter_out_of_range");
        assert!(Installments::new(24).is_ok() && Installments::new(25).is_err());
    }
}
