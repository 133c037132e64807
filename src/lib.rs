//! fastgate: a SaaS API's front door on Fastly Compute, as a plain library.
//!
//! Every decision lives here and is tested natively. The Wasm adapter (`src/adapter/`, run
//! by `main.rs`) turns a `fastly::Request` into [`plan::RequestFacts`], runs the planning
//! phases ([`plan::Gateway::plan`]) and then the platform phases over one request context,
//! asking this library at each step.

pub mod auth;
pub mod cache;
pub mod config;
pub mod cors;
pub mod failover;
pub mod flags;
pub mod geo;
pub mod http;
pub mod identity;
pub mod path;
pub mod plan;
pub mod problem;
pub mod ratelimit;
pub mod release;
pub mod request_id;
pub mod rewrite;
pub mod route;
pub mod sanitize;
pub mod session;

#[cfg(test)]
mod test_rng;
