//! The payout rail: where money leaves. The shipped rail records the payout as paid
//! at once; a bank integration implements the same trait.

use std::future::Future;
use std::pin::Pin;

use crate::domain::payout::Payout;

/// What the rail did with a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailOutcome {
    /// Sent; the money arrives at `arrival_date`.
    Paid { arrival_date: i64 },
    /// Refused for good (closed account, say): the claim's coverage is released.
    Failed { reason: String },
}

pub type RailFuture<'a> = Pin<Box<dyn Future<Output = Result<RailOutcome, String>> + Send + 'a>>;

/// Sends payouts.
///
/// `pay` must be idempotent on `payout.id`: the engine calls it outside any
/// transaction, under a lease on the payout, and records the answer afterwards. If the
/// process dies (or its lease runs out) between the call and that record, the lease
/// expires and the same payout is sent again, by this replica or another, with the same
/// id and amount; the rail must then answer as it did the first time without paying
/// twice (a bank's idempotency key set to the payout id, say). Two calls for one payout
/// may even overlap, when a lease runs out while its call is still in flight.
///
/// An `Err` means "not known yet": nothing is recorded, the lease is given back and the
/// payout is sent again at the next step. So is a call that has not answered within the
/// engine's rail timeout. `Failed` is for good: the claim's coverage is released.
pub trait PayoutRail: Send + Sync + 'static {
    fn pay<'a>(&'a self, payout: &'a Payout, now: i64) -> RailFuture<'a>;
}

/// The shipped rail: every payout is paid on the spot.
#[derive(Debug, Default, Clone, Copy)]
pub struct InstantRail;

impl PayoutRail for InstantRail {
    fn pay<'a>(&'a self, _payout: &'a Payout, now: i64) -> RailFuture<'a> {
        Box::pin(async move { Ok(RailOutcome::Paid { arrival_date: now }) })
    }
}
