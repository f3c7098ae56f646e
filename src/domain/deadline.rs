//! The review deadline (SPEC section 4, `review.due_by`): a claim's submission plus
//! five business days, Monday to Friday, in UTC.

use super::{DAY, Timestamp};

/// Business days a claim waits at most for its decision.
pub const REVIEW_BUSINESS_DAYS: u32 = 5;

/// Monday 0 to Sunday 6 (1970-01-01 was a Thursday).
fn weekday(t: Timestamp) -> i64 {
    (t.div_euclid(DAY) + 3).rem_euclid(7)
}

/// `t` plus `days` business days, at the same time of day: each day forward that
/// falls on a Saturday or Sunday does not count.
pub fn add_business_days(t: Timestamp, days: u32) -> Timestamp {
    let mut at = t;
    let mut left = days;
    while left > 0 {
        at += DAY;
        if weekday(at) < 5 {
            left -= 1;
        }
    }
    at
}

/// When the review of a claim submitted at `submitted_at` is due.
pub fn review_due_by(submitted_at: Timestamp) -> Timestamp {
    add_business_days(submitted_at, REVIEW_BUSINESS_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-22, a Monday, at noon.
    const MONDAY_NOON: Timestamp = 1_705_924_800;

    #[test]
    fn five_business_days_skip_the_weekend() {
        assert_eq!(weekday(MONDAY_NOON), 0);
        // Monday to the next Monday; Friday to the next Friday.
        assert_eq!(review_due_by(MONDAY_NOON), MONDAY_NOON + 7 * DAY);
        assert_eq!(review_due_by(MONDAY_NOON + 4 * DAY), MONDAY_NOON + 11 * DAY);
        // Saturday and Sunday: the Friday after.
        assert_eq!(review_due_by(MONDAY_NOON + 5 * DAY), MONDAY_NOON + 11 * DAY);
        assert_eq!(review_due_by(MONDAY_NOON + 6 * DAY), MONDAY_NOON + 11 * DAY);
        assert_eq!(add_business_days(MONDAY_NOON, 0), MONDAY_NOON);
    }
}
