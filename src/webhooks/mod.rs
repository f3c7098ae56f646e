//! Webhook delivery: signatures, the outbound guard, and the dispatcher.

pub mod dispatcher;
pub mod signing;
pub mod ssrf;
