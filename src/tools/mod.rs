//! Command-line tools for integrators (`casapay listen`, `casapay trigger`): clients of
//! a running server's API, over HTTP, never of its database.

pub mod client;
pub mod listen;
pub mod trigger;
