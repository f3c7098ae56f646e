//! HTTP tests of the whole server: one binary, a real server per test.

mod support;

mod cli;
mod concurrency;
mod conventions;
mod engine;
mod errors;
mod hardening;
mod isolation;
mod lists;
mod money;
mod network;
mod openapi;
mod quickstart;
mod receiver;
mod resources;
mod store_conformance;
mod stripe_compat;
mod test_clocks;
mod webhooks;
mod wire;
