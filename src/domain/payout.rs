//! Payouts: the money sent to the landlord for an approved claim.

use super::{Timestamp, wire_enum};

wire_enum! {
    PayoutStatus {
        Pending = "pending",
        Paid = "paid",
        Failed = "failed",
    }
}

#[derive(Debug, Clone)]
pub struct Payout {
    pub id: String,
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

impl Payout {
    pub const OBJECT: &'static str = "payout";
}
