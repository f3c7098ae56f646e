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

/// Sends payouts. `pay` must be idempotent on `payout.id`: after a crash between the
/// rail's answer and the commit that records it, the same payout is sent again, and
/// the rail must answer as before without paying twice. An `Err` means "not known
/// yet": the payout stays pending and is tried again.
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
