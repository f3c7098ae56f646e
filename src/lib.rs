//! casapay: a server for the CasaPay rent-guarantee API.
//!
//! Layers: [`api`] (HTTP: parse, call, render) → [`service`] (operations and their
//! transactions) → [`domain`] (types and rules, no I/O) and [`store`] (SQL); [`views`]
//! are the wire shapes that responses, events and webhooks render the domain types in.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod console;
pub mod domain;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod metrics;
pub mod resource;
pub mod service;
pub mod store;
pub mod tools;
pub mod views;
pub mod webhooks;

pub use app::{ApiConfig, AppState, app, serve};
