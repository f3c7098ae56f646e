use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::metadata::Metadata;
use crate::domain::recovery::{Installment, InstallmentStatus, PLAN_INTERVAL, Plan, Recovery, RecoveryStatus};

/// What the tenant owes the provider once a claim is paid (subrogation).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Recovery)]
pub struct RecoveryView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    /// The paid claim.
    pub claim: String,
    pub guarantee: String,
    /// The tenant (`cus_`) who owes it.
    pub tenant: String,
    pub currency: String,
    /// The payout's amount: what the tenant owes.
    pub amount: i64,
    pub amount_recovered: i64,
    /// `amount` less `amount_recovered`.
    pub amount_remaining: i64,
    pub status: RecoveryStatus,
    /// The repayment plan, or null before one is set.
    pub plan: Option<RecoveryPlanView>,
    /// Why the rest was written off, or null.
    pub written_off_reason: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

/// A monthly repayment plan of what remained when it was set.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RecoveryPlan)]
pub struct RecoveryPlanView {
    /// 1 to 24.
    pub installments: i64,
    /// Always `month`.
    #[schema(value_type = String)]
    pub interval: &'static str,
    /// The installments, oldest first.
    pub schedule: Vec<RecoveryInstallmentView>,
}

/// One installment of a plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RecoveryInstallment)]
pub struct RecoveryInstallmentView {
    /// Unix seconds, as every date of the API; the same day of each month as the first
    /// (or the month's last day when it is shorter), at the same time of day.
    pub due_date: Timestamp,
    /// An even share of the plan; the last installment takes the remainder.
    pub amount: i64,
    pub amount_paid: i64,
    pub status: InstallmentStatus,
}

impl From<&Recovery> for RecoveryView {
    fn from(r: &Recovery) -> Self {
        RecoveryView {
            id: r.id.clone(),
            object: Recovery::OBJECT,
            claim: r.claim.clone(),
            guarantee: r.guarantee.clone(),
            tenant: r.tenant.clone(),
            currency: r.currency.clone(),
            amount: r.amount,
            amount_recovered: r.amount_recovered,
            amount_remaining: r.remaining(),
            status: r.status,
            plan: r.plan.as_ref().map(RecoveryPlanView::from),
            written_off_reason: r.written_off_reason.clone(),
            metadata: r.metadata.clone(),
            livemode: r.livemode,
            created: r.created,
        }
    }
}

impl From<&Plan> for RecoveryPlanView {
    fn from(p: &Plan) -> Self {
        RecoveryPlanView {
            installments: p.installments,
            interval: PLAN_INTERVAL,
            schedule: p.schedule.iter().map(RecoveryInstallmentView::from).collect(),
        }
    }
}

impl From<&Installment> for RecoveryInstallmentView {
    fn from(i: &Installment) -> Self {
        RecoveryInstallmentView { due_date: i.due_date, amount: i.amount, amount_paid: i.amount_paid, status: i.status }
    }
}
