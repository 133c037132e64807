//! The config's typed shape: the file as written ([`ConfigFile`]) and the compiled
//! [`Config`] the phases read. Serde does the parsing, with `deny_unknown_fields` so a typo
//! is an error naming the field, never a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::cache::CacheSettings;
use crate::cors::CorsPolicy;
use crate::flags::FlagSpec;
use crate::geo::GeoMap;
use crate::release::{StaticPolicy, StaticSettings};

use super::Limits;
use crate::route::{Route, RouteSpec};

/// A named origin backend. The name must match a backend declared to the platform
/// (`fastly.toml` locally, the service's backends in production).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Free-form region label, used in logs and docs.
    pub region: String,
}

/// How hard the edge tries other backends when one fails.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Failover {
    /// Most backends one request may try (the first attempt included).
    pub max_attempts: u8,
    /// Overall budget for all attempts of one request; no new attempt starts after it.
    pub deadline_ms: u64,
    /// How long a failed backend is skipped by later requests before a probe re-admits it.
    pub down_for_s: u32,
    /// Default time one attempt may wait for the response headers (routes may override).
    pub attempt_timeout_ms: u64,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            max_attempts: 3,
            deadline_ms: 15_000,
            down_for_s: 10,
            attempt_timeout_ms: 10_000,
        }
    }
}

/// Which counter enforces route rate limits.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Limiter {
    /// Counters in the platform's Core Cache: exact, and enforced under Viceroy too.
    #[default]
    CoreCache,
    /// Fastly Edge Rate Limiting (production; a no-op stub under Viceroy).
    Erl,
}

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    pub(super) version: String,
    pub(super) backends: BTreeMap<String, Backend>,
    pub(super) geo: GeoMap,
    pub(super) routes: Vec<RouteSpec>,
    #[serde(default)]
    pub(super) failover: Failover,
    pub(super) auth: AuthConfig,
    /// Feature flags evaluated at the edge and sent to the origin in `Fastgate-Flags`.
    #[serde(default)]
    pub(super) flags: BTreeMap<String, FlagSpec>,
    /// Named CORS policies; routes refer to one by name (a route group).
    #[serde(default)]
    pub(super) cors: BTreeMap<String, CorsPolicy>,
    #[serde(default)]
    pub(super) rate_limiter: Limiter,
    /// The origin's expensive handlers, as `"<METHOD> <path>"`: a route that can reach one
    /// must have a `rate_limit`, or be named in `unlimited_routes` (`validate/coverage.rs`).
    /// Absent: login, signup, query, uploads and process. `[]` turns the check off.
    #[serde(default)]
    pub(super) expensive_paths: Option<Vec<String>>,
    /// Routes left without a rate limit on purpose although they reach an expensive path:
    /// route id → why.
    #[serde(default)]
    pub(super) unlimited_routes: BTreeMap<String, String>,
    /// Settings shared by every cached route (the per-route policy is the route's `cache`).
    #[serde(default)]
    pub(super) cache: CacheSettings,
    /// Fastly log endpoint for the per-request JSON line; absent: stdout (Viceroy prints it,
    /// and on Fastly it reaches log tailing).
    #[serde(default)]
    pub(super) log_endpoint: Option<String>,
    /// How much of a request the edge reads before refusing it (`limits.rs`).
    #[serde(default)]
    pub(super) limits: Limits,
    /// How static routes serve the release's files (`crate::release`).
    #[serde(default, rename = "static")]
    pub(super) static_files: StaticSettings,
}

/// A validated, compiled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Operator-chosen label of this config revision; surfaced in logs and headers.
    pub version: String,
    /// FNV-1a 64 of the config file's bytes as written: tells two
    /// revisions with the same label apart, and is the same for the edge and
    /// `cargo xtask config check` for the same file (see `load.rs`).
    pub hash: String,
    pub backends: BTreeMap<String, Backend>,
    pub geo: GeoMap,
    pub routes: Vec<Route>,
    pub failover: Failover,
    pub auth: AuthConfig,
    pub flags: BTreeMap<String, FlagSpec>,
    pub cors: BTreeMap<String, CorsPolicy>,
    pub rate_limiter: Limiter,
    pub cache: CacheSettings,
    pub log_endpoint: Option<String>,
    pub limits: Limits,
    /// The `static` section, compiled.
    pub static_policy: StaticPolicy,
}
