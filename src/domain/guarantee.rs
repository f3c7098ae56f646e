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
    pub cancelled_at: Option<Timestamp>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl Guarantee {
    pub const OBJECT: &'static str = "guarantee";

    /// What is left to pay out: the total less what was paid and what is approved.
    pub fn remaining(&self) -> i64 {
        self.total_coverage - self.claims_paid - self.claims_reserved
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
