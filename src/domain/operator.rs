//! Operators: the guarantee provider's claims staff, each a named person with keys.

use super::Timestamp;

/// The name `casapay operator-keys create` gives the one operator its keys speak for
/// (keys made without a named person count as one person).
pub const LEGACY_OPERATOR_NAME: &str = "operator";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub created: Timestamp,
    /// Set when disabled: the operator's keys and console sessions stop working.
    pub disabled_at: Option<Timestamp>,
}

impl Operator {
    pub const OBJECT: &'static str = "operator";
}
