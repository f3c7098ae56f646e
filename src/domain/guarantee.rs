//! Guarantees: one tenant's rent, covered on a policy's terms between two dates.

use super::metadata::Metadata;
use super::{DAY, Timestamp, wire_enum};

wire_enum! {
    /// `pending` until `start_date`, then `active`; `expired` after `end_date`;
    /// `claimed` once paid claims used the whole `total_coverage`; `cancelled` on request.
    GuaranteeStatus {
        Pending = "pending",
        Active = "active",
        Claimed = "claimed",
        Expired = "expired",
        Cancelled = "cancelled",
    }
}

/// Claims for rent that fell due while covered may still be filed this long after expiry.
pub const CLAIM_GRACE_AFTER_EXPIRY: i64 = 60 * DAY;

#[derive(Debug, Clone)]
pub struct Guarantee {
    pub id: String,
    pub status: GuaranteeStatus,
    pub policy: String,
    pub tenant: String,
    pub coverage_amount: i64,
    pub total_coverage: i64,
    pub currency: String,
    pub start_date: Timestamp,
    pub end_date: Timestamp,
    pub claims_filed: i64,
    pub claims_paid: i64,
    /// Approved claims not yet paid; part of the coverage they may not use twice.
    pub claims_reserved: i64,
    /// What was recovered from the tenant on its paid claims (coverage is not restored).
    pub claims_recovered: i64,
    pub cancelled_at: Option<Timestamp>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

/// The lifecycle steps of a guarantee, for the errors that refuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuaranteeStep {
    Activate,
    Expire,
    Cancel,
    ChangeEndDate,
}

impl std::fmt::Display for GuaranteeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GuaranteeStep::Activate => "activate",
            GuaranteeStep::Expire => "expire",
            GuaranteeStep::Cancel => "be cancelled",
            GuaranteeStep::ChangeEndDate => "change its end_date",
        })
    }
}

/// A change the guarantee's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GuaranteeError {
    /// `step` is not allowed while the guarantee is `from`.
    #[error("a {from} guarantee cannot {step}")]
    Status { step: GuaranteeStep, from: GuaranteeStatus },
    /// Activation before `start_date`, or expiry before `end_date`.
    #[error("too early to {0}")]
    TooEarly(GuaranteeStep),
    /// The end date moves later only.
    #[error("the end_date can only be moved later")]
    EndDateEarlier,
    /// A reservation larger than the coverage left.
    #[error("cannot reserve {amount}: {remaining} of the coverage is left")]
    ExceedsRemaining { amount: i64, remaining: i64 },
}

impl Guarantee {
    pub const OBJECT: &'static str = "guarantee";

    /// What is left to pay out: the total less what was paid and what is approved.
    pub fn remaining(&self) -> i64 {
        self.total_coverage - self.claims_paid - self.claims_reserved
    }

    fn refuse(&self, step: GuaranteeStep) -> GuaranteeError {
        GuaranteeError::Status { step, from: self.status }
    }

    /// `pending` -> `active`, once `start_date` has come.
    pub fn activate(&mut self, now: Timestamp) -> Result<(), GuaranteeError> {
        let due = self.start_date;
        self.timed_step(GuaranteeStep::Activate, GuaranteeStatus::Pending, GuaranteeStatus::Active, due, now)
    }

    /// `active` -> `expired`, once `end_date` has come.
    pub fn expire(&mut self, now: Timestamp) -> Result<(), GuaranteeError> {
        let due = self.end_date;
        self.timed_step(GuaranteeStep::Expire, GuaranteeStatus::Active, GuaranteeStatus::Expired, due, now)
    }

    /// The clock's steps: `from` -> `to` once `due` has come.
    fn timed_step(
        &mut self,
        step: GuaranteeStep,
        from: GuaranteeStatus,
        to: GuaranteeStatus,
        due: Timestamp,
        now: Timestamp,
    ) -> Result<(), GuaranteeError> {
        if self.status != from {
            return Err(self.refuse(step));
        }
        if now < due {
            return Err(GuaranteeError::TooEarly(step));
        }
        self.status = to;
        Ok(())
    }

    /// `pending` or `active` -> `cancelled`, at `now`.
    pub fn cancel(&mut self, now: Timestamp) -> Result<(), GuaranteeError> {
        if !matches!(self.status, GuaranteeStatus::Pending | GuaranteeStatus::Active) {
            return Err(self.refuse(GuaranteeStep::Cancel));
        }
        self.status = GuaranteeStatus::Cancelled;
        self.cancelled_at = Some(now);
        Ok(())
    }

    /// Moves the end date later, while pending or active; the same date is no change.
    pub fn change_end_date(&mut self, end_date: Timestamp) -> Result<(), GuaranteeError> {
        if end_date == self.end_date {
            return Ok(());
        }
        if !matches!(self.status, GuaranteeStatus::Pending | GuaranteeStatus::Active) {
            return Err(self.refuse(GuaranteeStep::ChangeEndDate));
        }
        if end_date < self.end_date {
            return Err(GuaranteeError::EndDateEarlier);
        }
        self.end_date = end_date;
        Ok(())
    }

    /// Sets `amount` aside for an approved claim until its payout settles, so no other
    /// claim can use it.
    pub fn reserve(&mut self, amount: i64) -> Result<(), GuaranteeError> {
        let remaining = self.remaining();
        if amount > remaining {
            return Err(GuaranteeError::ExceedsRemaining { amount, remaining });
        }
        self.claims_reserved += amount;
        Ok(())
    }

    /// A payout of `amount` reserved on this guarantee settled: paid (the amount moves
    /// from reserved to paid) or failed (the reservation is released). Returns whether
    /// the coverage is now used up and the guarantee became `claimed` (a cancelled one
    /// stays cancelled).
    pub fn settle_payout(&mut self, amount: i64, paid: bool) -> bool {
        self.claims_reserved -= amount;
        if paid {
            self.claims_paid += amount;
        }
        let claimable =
            matches!(self.status, GuaranteeStatus::Pending | GuaranteeStatus::Active | GuaranteeStatus::Expired);
        if claimable && self.claims_paid >= self.total_coverage {
            self.status = GuaranteeStatus::Claimed;
            return true;
        }
        false
    }
}

/// `coverage_amount` x the policy's `max_coverage_months`. Both are bounded
/// (99,999,999 x 60), so the product fits an i64 with room to spare.
pub fn total_coverage(coverage_amount: i64, max_coverage_months: i64) -> i64 {
    coverage_amount * max_coverage_months
}

/// The status a new guarantee starts in.
pub fn initial_status(start_date: Timestamp, now: Timestamp) -> GuaranteeStatus {
    if start_date > now { GuaranteeStatus::Pending } else { GuaranteeStatus::Active }
}

/// Why a claim cannot be filed on a guarantee right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotClaimable {
    NotStarted,
    Cancelled,
    Claimed,
    ExpiredTooLongAgo,
}

/// A claim may be filed while the guarantee is active, and up to 60 days after its
/// end. Judged on the dates as well as the stored status, so a scheduler that is a
/// few seconds behind never changes the answer.
pub fn check_claimable(
    status: GuaranteeStatus,
    start_date: Timestamp,
    end_date: Timestamp,
    now: Timestamp,
) -> Result<(), NotClaimable> {
    match status {
        GuaranteeStatus::Cancelled => Err(NotClaimable::Cancelled),
        GuaranteeStatus::Claimed => Err(NotClaimable::Claimed),
        GuaranteeStatus::Pending | GuaranteeStatus::Active | GuaranteeStatus::Expired => {
            // Saturating: end dates are bounded at the edge, but a stored one may predate it.
            if now < start_date {
                Err(NotClaimable::NotStarted)
            } else if now >= end_date.saturating_add(CLAIM_GRACE_AFTER_EXPIRY) {
                Err(NotClaimable::ExpiredTooLongAgo)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metadata::Metadata;

    const START: Timestamp = 1_706_140_800;
    const END: Timestamp = START + 365 * DAY;

    fn guarantee(status: GuaranteeStatus) -> Guarantee {
        Guarantee {
            id: "grt_1".into(),
            status,
            policy: "gpol_1".into(),
            tenant: "cus_1".into(),
            coverage_amount: 120_000,
            total_coverage: 1_440_000,
            currency: "eur".into(),
            start_date: START,
            end_date: END,
            claims_filed: 0,
            claims_paid: 0,
            claims_reserved: 0,
            claims_recovered: 0,
            cancelled_at: None,
            metadata: Metadata::new(),
            livemode: false,
            created: START - DAY,
        }
    }

    use GuaranteeStatus::{Active, Cancelled, Claimed, Expired, Pending};

    #[test]
    fn a_pending_guarantee_activates_from_its_start() {
        let mut g = guarantee(Pending);
        assert_eq!(g.activate(START - 1), Err(GuaranteeError::TooEarly(GuaranteeStep::Activate)));
        assert_eq!(g.status, Pending);
        g.activate(START).unwrap();
        assert_eq!(g.status, Active);
        for from in [Active, Expired, Cancelled, Claimed] {
            let mut g = guarantee(from);
            assert_eq!(g.activate(END), Err(GuaranteeError::Status { step: GuaranteeStep::Activate, from }));
            assert_eq!(g.status, from);
        }
    }

    #[test]
    fn an_active_guarantee_expires_at_its_end() {
        let mut g = guarantee(Active);
        assert_eq!(g.expire(END - 1), Err(GuaranteeError::TooEarly(GuaranteeStep::Expire)));
        g.expire(END).unwrap();
        assert_eq!(g.status, Expired);
        for from in [Pending, Expired, Cancelled, Claimed] {
            let mut g = guarantee(from);
            assert_eq!(g.expire(END + 1), Err(GuaranteeError::Status { step: GuaranteeStep::Expire, from }));
            assert_eq!(g.status, from);
        }
    }

    #[test]
    fn pending_and_active_guarantees_cancel() {
        for from in [Pending, Active] {
            let mut g = guarantee(from);
            g.cancel(START + 5).unwrap();
            assert_eq!((g.status, g.cancelled_at), (Cancelled, Some(START + 5)));
        }
        for from in [Expired, Cancelled, Claimed] {
            let mut g = guarantee(from);
            assert_eq!(g.cancel(START + 5), Err(GuaranteeError::Status { step: GuaranteeStep::Cancel, from }));
            assert_eq!((g.status, g.cancelled_at), (from, None));
        }
    }

    #[test]
    fn the_end_date_moves_later_while_pending_or_active() {
        for from in [Pending, Active] {
            let mut g = guarantee(from);
            g.change_end_date(END + DAY).unwrap();
            assert_eq!(g.end_date, END + DAY);
            assert_eq!(g.change_end_date(END), Err(GuaranteeError::EndDateEarlier));
            assert_eq!(g.end_date, END + DAY);
        }
        for from in [Expired, Cancelled, Claimed] {
            let mut g = guarantee(from);
            let refused = GuaranteeError::Status { step: GuaranteeStep::ChangeEndDate, from };
            assert_eq!(g.change_end_date(END + DAY), Err(refused));
            assert_eq!(g.change_end_date(END - DAY), Err(refused), "the status is judged first");
            assert_eq!(g.change_end_date(END), Ok(()), "the same date is no change, in any status");
            assert_eq!(g.end_date, END);
        }
    }

    #[test]
    fn reservations_fit_in_the_remaining_coverage() {
        let mut g = Guarantee { claims_paid: 1_000_000, ..guarantee(Active) };
        g.reserve(400_000).unwrap();
        assert_eq!((g.claims_reserved, g.remaining()), (400_000, 40_000));
        let err = g.reserve(40_001).unwrap_err();
        assert_eq!(err, GuaranteeError::ExceedsRemaining { amount: 40_001, remaining: 40_000 });
        assert_eq!(g.claims_reserved, 400_000);
        g.reserve(40_000).unwrap();
        assert_eq!(g.remaining(), 0);
    }

    #[test]
    fn settled_payouts_move_the_reservation_and_a_used_up_guarantee_is_claimed() {
        let mut g = Guarantee { claims_reserved: 1_440_000, ..guarantee(Active) };
        assert!(!g.settle_payout(440_000, false), "a failed payout releases its amount");
        assert_eq!((g.claims_reserved, g.claims_paid, g.remaining()), (1_000_000, 0, 440_000));
        assert!(!g.settle_payout(400_000, true));
        assert_eq!((g.claims_reserved, g.claims_paid, g.status), (600_000, 400_000, Active));
        g.reserve(440_000).unwrap();
        assert!(!g.settle_payout(600_000, true));
        assert!(g.settle_payout(440_000, true), "the payout that uses up the coverage");
        assert_eq!((g.claims_reserved, g.claims_paid, g.status), (0, 1_440_000, Claimed));

        for from in [Pending, Expired] {
            let mut g = Guarantee { claims_reserved: 1_440_000, ..guarantee(from) };
            assert!(g.settle_payout(1_440_000, true));
            assert_eq!(g.status, Claimed);
        }
        let mut g = Guarantee { claims_reserved: 1_440_000, ..guarantee(Cancelled) };
        assert!(!g.settle_payout(1_440_000, true), "a cancelled guarantee stays cancelled");
        assert_eq!((g.status, g.claims_paid), (Cancelled, 1_440_000));
    }

    #[test]
    fn total_coverage_is_amount_times_months() {
        assert_eq!(total_coverage(120_000, 12), 1_440_000);
        assert_eq!(total_coverage(99_999_999, 60), 5_999_999_940);
    }

    #[test]
    fn status_at_creation() {
        assert_eq!(initial_status(100, 99), GuaranteeStatus::Pending);
        assert_eq!(initial_status(100, 100), GuaranteeStatus::Active);
        assert_eq!(initial_status(100, 101), GuaranteeStatus::Active);
    }

    #[test]
    fn claimable_window() {
        use GuaranteeStatus::*;
        let (start, end) = (1_000, 1_000 + 365 * DAY);
        assert_eq!(check_claimable(Active, start, end, start), Ok(()));
        assert_eq!(check_claimable(Pending, start, end, start - 1), Err(NotClaimable::NotStarted));
        assert_eq!(check_claimable(Pending, start, end, start), Ok(()));
        assert_eq!(check_claimable(Expired, start, end, end + 59 * DAY), Ok(()));
        assert_eq!(check_claimable(Expired, start, end, end + 60 * DAY), Err(NotClaimable::ExpiredTooLongAgo));
        assert_eq!(check_claimable(Cancelled, start, end, start + 1), Err(NotClaimable::Cancelled));
        assert_eq!(check_claimable(Claimed, start, end, start + 1), Err(NotClaimable::Claimed));
    }

    #[test]
    fn the_claim_window_does_not_wrap_at_the_end_of_i64() {
        // `end_date + 60 days` wrapped to a date in the distant past: never claimable.
        assert_eq!(check_claimable(GuaranteeStatus::Active, 1_000, i64::MAX, 2_000), Ok(()));
        let max = crate::domain::TIMESTAMP_RANGE.1;
        assert_eq!(check_claimable(GuaranteeStatus::Expired, 1_000, max, max), Ok(()));
    }

    #[test]
    fn status_names_round_trip() {
        for s in GuaranteeStatus::ALL {
            assert_eq!(GuaranteeStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(GuaranteeStatus::parse("Active"), None);
    }
}
