use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::customer::Customer;
use crate::domain::metadata::Metadata;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Customer)]
pub struct CustomerView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The tenant's guarantee score, 0..=100, or none yet.
    pub score: Option<i64>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
    /// The id of the test clock the customer lives on, or null (the wall clock).
    pub test_clock: Option<String>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        CustomerView {
            id: c.id.clone(),
            object: Customer::OBJECT,
            name: c.name.clone(),
            email: c.email.clone(),
            score: c.score,
            metadata: c.metadata.clone(),
            livemode: c.livemode,
            created: c.created,
            test_clock: c.test_clock.clone(),
        }
    }
}
