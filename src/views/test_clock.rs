use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::test_clock::{TestClock, TestClockStatus};

/// A test clock: the simulated time its customers and their objects live at.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TestClock)]
pub struct TestClockView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    /// The clock's time: what its objects see as "now".
    pub frozen_time: Timestamp,
    pub status: TestClockStatus,
    pub name: Option<String>,
    /// When the clock and its objects are deleted (30 days after `created`, real time).
    pub deletes_after: Timestamp,
    /// Always false: clocks exist in test mode only.
    pub livemode: bool,
    pub created: Timestamp,
}

impl From<&TestClock> for TestClockView {
    fn from(c: &TestClock) -> Self {
        TestClockView {
            id: c.id.clone(),
            object: TestClock::OBJECT,
            frozen_time: c.frozen_time,
            status: c.status,
            name: c.name.clone(),
            deletes_after: c.deletes_after,
            livemode: c.livemode,
            created: c.created,
        }
    }
}

/// The answer to a delete.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = DeletedTestClock)]
pub struct DeletedTestClockView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub deleted: bool,
}
