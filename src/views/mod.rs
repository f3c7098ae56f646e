//! Wire shapes: what responses, events and webhooks show of each object, kept apart
//! from the domain types and their rows. Renaming a field of a domain type or a column
//! changes nothing a client sees; changing a view changes the API, and a future
//! `CasaPay-Version` picks between shapes here, without touching storage.
//!
//! Each view has every field of its object, in the order the API has always sent
//! them, always present (null when there is no value) but for two that are absent
//! when empty, as before: an endpoint's `secret` (shown by create and rotate_secret
//! only) and an event's `data.previous_attributes` (updates only). The OpenAPI
//! document names the views as the objects (`Claim`, not `ClaimView`).
//! `tests/api/wire.golden` pins their bytes.

mod claim;
mod customer;
pub mod diff;
mod event;
mod file;
mod guarantee;
mod payout;
mod policy;
mod recovery;
mod test_clock;
mod webhook;

pub use claim::{
    ApprovalView, CheckView, ClaimActionView, ClaimReviewView, ClaimView, EvidenceView, StatusTransitionsView,
};
pub use customer::CustomerView;
pub use event::{EventDataView, EventRequestView, EventView};
pub use file::FileView;
pub use guarantee::GuaranteeView;
pub use payout::PayoutView;
pub use policy::PolicyView;
pub use recovery::{RecoveryInstallmentView, RecoveryPlanView, RecoveryView};
pub use test_clock::{DeletedTestClockView, TestClockView};
pub use webhook::{WebhookAttemptView, WebhookEndpointView};

/// A domain object and its wire shape: what the generic renderers (expansion, lists,
/// the outbox) call to turn an object into what clients see.
pub trait Render {
    type View: serde::Serialize;

    fn view(&self) -> Self::View;
}

/// `Render` for objects whose view is `From<&object>`.
macro_rules! render {
    ($($domain:ty => $view:ty),+ $(,)?) => {
        $(impl Render for $domain {
            type View = $view;

            fn view(&self) -> $view {
                <$view>::from(self)
            }
        })+
    };
}

render! {
    crate::domain::claim::Claim => ClaimView,
    crate::domain::claim::ClaimAction => ClaimActionView,
    crate::domain::customer::Customer => CustomerView,
    crate::domain::event::Event => EventView,
    crate::domain::file::File => FileView,
    crate::domain::guarantee::Guarantee => GuaranteeView,
    crate::domain::payout::Payout => PayoutView,
    crate::domain::policy::Policy => PolicyView,
    crate::domain::recovery::Recovery => RecoveryView,
    crate::domain::test_clock::TestClock => TestClockView,
    crate::domain::webhook::WebhookEndpoint => WebhookEndpointView,
    crate::domain::webhook::WebhookAttempt => WebhookAttemptView,
}
