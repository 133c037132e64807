//! Backend health shared across requests. Instances are short-lived and many, so a
//! failed backend's down-mark lives in the platform cache. When a mark expires, the first
//! request that would send there is elected (the one the cache hands the update obligation
//! to) and the edge probes the backend itself, `GET` on its health path, before that
//! request goes there: a client's request is never the probe.

use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey, Transaction};
use fastly::http::header;
use fastly::Request;
use fastly_sys::fastly_backend::{self, BackendHealth};

use fastgate::failover::{self, BackendState, Checked, Election, MarkAge};

use super::proxy::send_once;
use super::telemetry::log_event;

/// How long one half-open probe has to finish before another request may probe.
const PROBE_WINDOW: Duration = Duration::from_secs(5);
/// How long a down-mark lingers (stale) after it expires, so a probe can be elected.
const MARK_LINGER: Duration = Duration::from_secs(3600);

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

    /// What this request believes of `backend`: the platform's health check first, then
    /// the shared down-mark (one plain lookup; electing a prober waits for [`elect`], when
    /// a request actually reaches the backend).
    pub fn state(&self, backend: &str) -> BackendState {
        if platform_says_unhealthy(backend) {
            return BackendState::Down;
        }
        if !self.any {
            return BackendState::Up;
        }
        let mark = match cache::lookup(health_key(backend)).execute() {
            Ok(Some(found)) => Some(mark_age(found.is_stale())),
            _ => None,
        };
        BackendState::of_mark(mark)
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

fn mark_age(stale: bool) -> MarkAge {
    if stale {
        MarkAge::Stale
    } else {
        MarkAge::Fresh
    }
}

/// Who probes `backend`, whose mark this request saw expired: a transaction on the mark,
/// so one request per [`PROBE_WINDOW`] wins. The winner re-marks the backend for the
/// window before probing, so everyone else keeps skipping it meanwhile. A cache error
/// loses: better a long shot than an unprobed backend for an unsafe request.
pub fn elect(backend: &str) -> Election {
    let Ok(tx) = Transaction::lookup(health_key(backend)).execute() else {
        return Election::Lost;
    };
    let mark = tx.found().map(|found| mark_age(found.is_stale()));
    let obliged = tx.must_insert_or_update();
    let election = failover::elect(mark, obliged);
    match election {
        Election::Won => {
            let _ = tx
                .insert(PROBE_WINDOW)
                .stale_while_revalidate(MARK_LINGER)
                .surrogate_keys([health_surrogate(backend).as_str()])
                .execute()
                .map(|body| body.finish());
            note_any_mark(PROBE_WINDOW);
        }
        _ if obliged => {
            let _ = tx.cancel_insert_or_update();
        }
        _ => {}
    }
    election
}

/// The half-open probe: the edge's own `GET` of the health path on `backend`, carrying the
/// client request's `Host` (the origin may route on it) and request id (so both sides' logs
/// tie the probe to the request it stood in front of). Alive when it ends in anything that
/// would not mark a backend down; dead otherwise. Re-admits or re-marks the backend.
pub fn probe(
    backend: &str,
    template: &Request,
    request_id: &str,
    timeout: Duration,
    down_for: Duration,
) -> Checked {
    let mut url = template.get_url().clone();
    url.set_path(failover::PROBE_PATH);
    url.set_query(None);
    let mut req = Request::get(url);
    if let Some(host) = template.get_header(header::HOST) {
        req.set_header(header::HOST, host.clone());
    }
    req.set_header(fastgate::request_id::HEADER, request_id);
    let (outcome, _) = send_once(req, backend, timeout);
    let alive = !outcome.is_backend_failure();
    log_event(
        "backend_probe",
        &format!("{backend}: {outcome:?}, alive={alive}"),
    );
    if alive {
        clear_mark(backend);
        Checked::Alive
    } else {
        mark_down(backend, down_for);
        Checked::Dead
    }
}
