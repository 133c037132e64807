//! Backend health shared across requests. Instances are short-lived and many, so a
//! failed backend's down-mark lives in the platform cache; an expired mark elects exactly
//! one request (the one the cache hands the update obligation to) as the half-open probe.

use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey, Transaction};
use fastly_sys::fastly_backend::{self, BackendHealth};

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

/// One entry that exists while any backend may carry a down-mark: a healthy service (the
/// common case) costs one Core Cache read per request for all its backends, instead of a
/// transaction per backend before the send and another read after it.
fn any_mark_key() -> CacheKey {
    CacheKey::from_static(b"fastgate/health/v1/any-mark")
}

/// How long the any-mark entry outlives the mark written with it: longer than any mark
/// can linger, including the re-insertions of half-open probes.
const ANY_MARK_LINGER: Duration = Duration::from_secs(2 * 3600);

/// The platform's own health check of `backend` (a backend with none is `Unknown`, not
/// unhealthy). One hostcall: the SDK's `Backend::from_name` and `is_healthy` make two.
fn platform_says_unhealthy(backend: &str) -> bool {
    const UNHEALTHY: u32 = BackendHealth::Unhealthy as u32;
    let mut health = 0u32;
    // SAFETY: the hostcall reads `backend` and writes one `u32` (read as a plain integer,
    // so a value the enum does not know cannot be undefined behaviour).
    let status = unsafe {
        fastly_backend::is_healthy(
            backend.as_ptr(),
            backend.len(),
            (&mut health as *mut u32).cast::<BackendHealth>(),
        )
    };
    status.is_ok() && health == UNHEALTHY
}

/// What this request read of the shared down-marks.
pub struct Marks {
    /// Whether any backend may carry a mark; when not, no per-backend entry is read.
    any: bool,
}

impl Marks {
    /// One Core Cache read: is any backend marked at all?
    pub fn read() -> Marks {
        Marks {
            any: matches!(cache::lookup(any_mark_key()).execute(), Ok(Some(_))),
        }
    }

    /// What this request may do with `backend`: the platform's health check first, then the
    /// shared down-mark. An expired (stale) mark elects exactly one request, the one the
    /// cache hands the update obligation to, as the half-open probe.
    pub fn health(&self, backend: &str) -> Health {
        if platform_says_unhealthy(backend) {
            return Health::Down;
        }
        if !self.any {
            return Health::Up;
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
                note_any_mark(PROBE_WINDOW);
                Health::Probe
            }
            Some(_) => Health::Down,
        }
    }

    /// Whether `backend` carries a mark (fresh or stale), so a success should clear it.
    pub fn was_marked(&self, backend: &str) -> bool {
        self.any && matches!(cache::lookup(health_key(backend)).execute(), Ok(Some(_)))
    }
}

pub fn mark_down(backend: &str, down_for: Duration) {
    let _ = cache::insert(health_key(backend), down_for)
        .stale_while_revalidate(MARK_LINGER)
        .surrogate_keys([health_surrogate(backend).as_str()])
        .execute()
        .map(|body| body.finish());
    note_any_mark(down_for);
    log_event("backend_marked_down", backend);
}

/// (Re)writes the any-mark entry to outlive a mark fresh for `fresh_for`.
fn note_any_mark(fresh_for: Duration) {
    let _ = cache::insert(any_mark_key(), fresh_for + ANY_MARK_LINGER)
        .execute()
        .map(|body| body.finish());
}

pub fn clear_mark(backend: &str) {
    let _ = fastly::http::purge::purge_surrogate_key(&health_surrogate(backend));
    log_event("backend_readmitted", backend);
}
