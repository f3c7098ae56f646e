//! HTTP tests of the whole server: one binary, a real server per test.

mod contract;
mod support;

mod cli;
mod concurrency;
mod console;
mod conventions;
mod engine;
mod errors;
mod files;
mod hardening;
mod integrator_tools;
mod isolation;
mod lists;
mod metrics;
mod money;
mod network;
mod openapi;
mod quickstart;
mod receiver;
mod recoveries;
mod resources;
mod review;
mod store_conformance;
mod stripe_compat;
mod test_clocks;
mod trigger;
mod webhooks;
mod wire;
