use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::metadata::Metadata;
use crate::domain::policy::Policy;

/// The terms are fixed once the policy is created; only `name`, `active` and
/// `metadata` change afterwards.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = GuaranteePolicy)]
pub struct PolicyView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub name: String,
    pub coverage_percentage: i64,
    pub max_coverage_months: i64,
    pub waiting_period_days: i64,
    pub eligible_score_minimum: i64,
    pub deductible_amount: i64,
    pub active: bool,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        PolicyView {
            id: p.id.clone(),
            object: Policy::OBJECT,
            name: p.name.clone(),
            coverage_percentage: p.coverage_percentage,
            max_coverage_months: p.max_coverage_months,
            waiting_period_days: p.waiting_period_days,
            eligible_score_minimum: p.eligible_score_minimum,
            deductible_amount: p.deductible_amount,
            active: p.active,
            metadata: p.metadata.clone(),
            livemode: p.livemode,
            created: p.created,
        }
    }
}
