//! Webhook sending: signatures, the outbound guard, and the signed POST. The delivery
//! steps are in `service::delivery`, the dispatcher's loop in `jobs::dispatcher`.

pub mod sender;
pub mod signing;
pub mod ssrf;
