//! Backend health shared across requests. Every request is a fresh Wasm instance, so a
//! failed backend's down-mark lives in the platform cache; an expired mark elects exactly
//! one request (the one the cache hands the update obligation to) as the half-open probe.

use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey, Transaction};
use fastly::experimental::{BackendExt, BackendHealth};
use fastly::Backend;

use super::telemetry::log_event;

/// How long one half-open probe has to finish before another request may probe.
const PROBE_WINDOW: Duration = Duration::from_secs(5);
/// How long a down-mark lingers (stale) after it expires, so a probe can be elected.
const MARK_LINGER: Duration = Duration::from_secs(3600);

/// What this request may do with a backend.
pub enum Health {
    Up,
    Down,
    /// The down-mark expired and this request was elected to try the backend.
    Probe,
}

fn health_key(backend: &str) -> CacheKey {
    CacheKey::from(format!("fastgate/health/v1/{backend}"))
}

fn health_surrogate(backend: &str) -> String {
    format!("fastgate-health-{backend}")
}

/// Reads the shared down-mark. Every request is a fresh Wasm instance, so the mark
/// lives in the platform cache. An expired (stale) mark elects exactly one request, the
/// one the cache hands the update obligation to, as the half-open probe.
pub fn health(backend: &str) -> Health {
    if let Ok(b) = Backend::from_name(backend) {
        if matches!(b.is_healthy(), Ok(BackendHealth::Unhealthy)) {
            return Health::Down;
        }
    }
    let Ok(tx) = Transaction::lookup(health_key(backend)).execute() else {
        return Health::Up;
    };
    match tx.found() {
        None => {
            let _ = tx.cancel_insert_or_update();
            Health::Up
        }
        Some(found) if !found.is_stale() => Health::Down,
        Some(_) if tx.must_insert_or_update() => {
            // Hold the mark for the probe's duration so others keep skipping.
            let _ = tx
                .insert(PROBE_WINDOW)
                .stale_while_revalidate(MARK_LINGER)
                .surrogate_keys([health_surrogate(backend).as_str()])
                .execute()
                .map(|body| body.finish());
            Health::Probe
        }
        Some(_) => Health::Down,
    }
}

pub fn was_marked(backend: &str) -> bool {
    matches!(cache::lookup(health_key(backend)).execute(), Ok(Some(_)))
}

pub fn mark_down(backend: &str, down_for: Duration) {
    let _ = cache::insert(health_key(backend), down_for)
        .stale_while_revalidate(MARK_LINGER)
        .surrogate_keys([health_surrogate(backend).as_str()])
        .execute()
        .map(|body| body.finish());
    log_event("backend_marked_down", backend);
}

pub fn clear_mark(backend: &str) {
    let _ = fastly::http::purge::purge_surrogate_key(&health_surrogate(backend));
    log_event("backend_readmitted", backend);
}
