use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::guarantee::{Guarantee, GuaranteeStatus};
use crate::domain::metadata::Metadata;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Guarantee)]
pub struct GuaranteeView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub status: GuaranteeStatus,
    pub policy: String,
    pub tenant: String,
    pub coverage_amount: i64,
    pub total_coverage: i64,
    pub remaining_coverage: i64,
    pub currency: String,
    pub start_date: Timestamp,
    pub end_date: Timestamp,
    pub claims_filed: i64,
    pub claims_paid: i64,
    /// What was recovered from the tenant on the guarantee's paid claims (`recovery` objects); it does not
    /// restore the coverage.
    pub claims_recovered: i64,
    pub cancelled_at: Option<Timestamp>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl From<&Guarantee> for GuaranteeView {
    fn from(g: &Guarantee) -> Self {
        GuaranteeView {
            id: g.id.clone(),
            object: Guarantee::OBJECT,
            status: g.status,
            policy: g.policy.clone(),
            tenant: g.tenant.clone(),
            coverage_amount: g.coverage_amount,
            total_coverage: g.total_coverage,
            // Derived, never stored: what approved claims have not reserved or used.
            remaining_coverage: g.remaining(),
            currency: g.currency.clone(),
            start_date: g.start_date,
            end_date: g.end_date,
            claims_filed: g.claims_filed,
            claims_paid: g.claims_paid,
            claims_recovered: g.claims_recovered,
            cancelled_at: g.cancelled_at,
            metadata: g.metadata.clone(),
            livemode: g.livemode,
            created: g.created,
        }
    }
}
