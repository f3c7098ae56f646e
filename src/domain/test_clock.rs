//! Test clocks: simulated time for the objects of test-mode customers (SPEC section 5).
//! A customer created on a clock, and everything under it (guarantees, claims,
//! payouts), lives at the clock's `frozen_time` instead of the wall clock.

use super::{DAY, Timestamp, wire_enum};

wire_enum! {
    /// `ready` at `frozen_time`; `advancing` while the engine applies what falls due
    /// up to the new time; `internal_failure` if that could not finish.
    TestClockStatus {
        Ready = "ready",
        Advancing = "advancing",
        InternalFailure = "internal_failure",
    }
}

/// A clock is deleted this long after it was created (real time), as Stripe's are.
pub const LIFETIME: i64 = 30 * DAY;

/// The furthest one advance may move a clock: five years (of 365 days and a leap day).
pub const MAX_ADVANCE: i64 = 5 * 365 * DAY + 2 * DAY;

super::input::bounded_text!(
    /// A clock's name as a request gives it.
    TestClockName,
    300,
    "A name for the clock, to tell it apart (up to 300 characters)."
);

#[derive(Debug, Clone)]
pub struct TestClock {
    pub id: String,
    pub frozen_time: Timestamp,
    pub status: TestClockStatus,
    pub name: Option<String>,
    pub deletes_after: Timestamp,
    /// While advancing: the time it advances to.
    pub advance_to: Option<Timestamp>,
    pub livemode: bool,
    /// Wall time.
    pub created: Timestamp,
}

/// Why a clock refuses to advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdvanceError {
    #[error("the clock is already advancing")]
    Advancing,
    #[error("the clock failed and can only be deleted")]
    Failed,
    #[error("the new time must be later than the clock's")]
    NotLater,
    #[error("the new time is more than five years ahead")]
    TooFar,
}

impl TestClock {
    pub const OBJECT: &'static str = "test_helpers.test_clock";

    /// Starts an advance to `to`.
    pub fn start_advance(&mut self, to: Timestamp) -> Result<(), AdvanceError> {
        match self.status {
            TestClockStatus::Advancing => return Err(AdvanceError::Advancing),
            TestClockStatus::InternalFailure => return Err(AdvanceError::Failed),
            TestClockStatus::Ready => {}
        }
        if to <= self.frozen_time {
            return Err(AdvanceError::NotLater);
        }
        if to - self.frozen_time > MAX_ADVANCE {
            return Err(AdvanceError::TooFar);
        }
        self.status = TestClockStatus::Advancing;
        self.advance_to = Some(to);
        Ok(())
    }

    /// The advance is done: the clock shows the new time.
    pub fn finish_advance(&mut self) {
        if let Some(to) = self.advance_to.take() {
            self.frozen_time = to;
        }
        self.status = TestClockStatus::Ready;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> TestClock {
        TestClock {
            id: "clock_1".into(),
            frozen_time: 1_708_819_200,
            status: TestClockStatus::Ready,
            name: None,
            deletes_after: 1_708_819_200 + LIFETIME,
            advance_to: None,
            livemode: false,
            created: 1_708_819_200,
        }
    }

    #[test]
    fn an_advance_moves_later_by_at_most_five_years_one_at_a_time() {
        let mut c = clock();
        assert_eq!(c.start_advance(c.frozen_time), Err(AdvanceError::NotLater));
        assert_eq!(c.start_advance(c.frozen_time + MAX_ADVANCE + 1), Err(AdvanceError::TooFar));
        let to = c.frozen_time + MAX_ADVANCE;
        c.start_advance(to).unwrap();
        assert_eq!((c.status, c.frozen_time), (TestClockStatus::Advancing, 1_708_819_200));
        assert_eq!(c.start_advance(to + 1), Err(AdvanceError::Advancing));
        c.finish_advance();
        assert_eq!((c.status, c.frozen_time, c.advance_to), (TestClockStatus::Ready, to, None));
    }
}
