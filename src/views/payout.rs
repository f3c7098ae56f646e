use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::payout::{Payout, PayoutStatus};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Payout)]
pub struct PayoutView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub amount: i64,
    pub currency: String,
    pub claim: String,
    pub guarantee: String,
    pub status: PayoutStatus,
    /// When the money arrives (or arrived); set once the rail has taken the payout.
    pub arrival_date: Option<Timestamp>,
    pub livemode: bool,
    pub created: Timestamp,
}

impl From<&Payout> for PayoutView {
    fn from(p: &Payout) -> Self {
        PayoutView {
            id: p.id.clone(),
            object: Payout::OBJECT,
            amount: p.amount,
            currency: p.currency.clone(),
            claim: p.claim.clone(),
            guarantee: p.guarantee.clone(),
            status: p.status,
            arrival_date: p.arrival_date,
            livemode: p.livemode,
            created: p.created,
        }
    }
}
