//! fastgate: a SaaS API's front door on Fastly Compute, as a plain library.
//!
//! Every decision lives here and is tested natively; `main.rs` is a thin Wasm adapter that
//! turns a `fastly::Request` into [`gateway::RequestFacts`], runs [`gateway::Gateway::plan`]
//! and performs the platform calls the resulting [`gateway::Decision`] asks for.

pub mod auth;
pub mod cache;
pub mod config;
pub mod cors;
pub mod failover;
pub mod flags;
pub mod gateway;
pub mod geo;
pub mod identity;
pub mod path;
pub mod problem;
pub mod ratelimit;
pub mod request_id;
pub mod rewrite;
pub mod route;
pub mod sanitize;

#[cfg(test)]
mod test_rng;
