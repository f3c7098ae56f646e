//! Customers: the tenants whose rent is guaranteed.

use super::Timestamp;
use super::metadata::Metadata;

pub const SCORE_MAX: i64 = 100;

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The tenant's guarantee score, 0..=100, or none yet.
    pub score: Option<i64>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl Customer {
    pub const OBJECT: &'static str = "customer";
}
