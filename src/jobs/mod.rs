//! Background work: the claims engine (reviews, payouts, guarantee lifecycle).

pub mod engine;
