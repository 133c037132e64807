//! Telemetry: the per-request JSON log line, `Server-Timing`, and event lines.

use std::time::Instant;

/// Writes one log line to the configured Fastly log endpoint, or to stdout.
pub fn write_log(endpoint: Option<&str>, line: &str) {
    use std::io::Write;
    match endpoint.and_then(|name| fastly::log::Endpoint::try_from_name(name).ok()) {
        Some(mut endpoint) => {
            let _ = writeln!(endpoint, "{line}");
        }
        None => println!("{line}"),
    }
}

pub fn log_event(event: &str, detail: &str) {
    let line = serde_json::json!({ "event": event, "detail": detail });
    println!("{line}");
}

/// Logs `detail` once across instances (and within this one): the first request to report
/// it wins a Core Cache transaction on a marker for `event`, `scope` and the detail, and
/// the rest stay quiet while the marker lives. For what stays wrong until ops act (a
/// refused release or override), so a bad push is one line, not one per request.
pub fn log_event_once(event: &str, scope: &str, detail: &str) {
    use fastly::cache::core::{CacheKey, Transaction};
    const QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(86_400);
    thread_local! {
        static LOGGED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let digest = fastgate::release::sha256_hex(format!("{event}\n{scope}\n{detail}").as_bytes());
    if LOGGED.with_borrow(|seen| seen.contains(&digest)) {
        return;
    }
    let first = match Transaction::lookup(CacheKey::from(format!("fastgate/logged/v1/{digest}")))
        .execute()
    {
        Ok(tx) if tx.must_insert_or_update() => {
            let _ = tx.insert(QUIET_FOR).execute().map(|body| body.finish());
            true
        }
        Ok(_) => false,
        Err(_) => true,
    };
    LOGGED.with_borrow_mut(|seen| {
        if seen.len() >= 64 {
            seen.clear();
        }
        seen.push(digest);
    });
    if first {
        log_event(event, detail);
    }
}

pub fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Phase durations, in microseconds; absent when the phase did not run.
#[derive(Default, serde::Serialize)]
pub struct Timings {
    pub auth: Option<u64>,
    /// The cache lookup (a transactional lookup waits while another request fills the key).
    pub cache: Option<u64>,
    pub origin: Option<u64>,
    pub total: u64,
}

impl Timings {
    /// `Server-Timing` (W3C): milliseconds with microsecond precision.
    pub fn server_timing(&self) -> String {
        let mut parts = Vec::with_capacity(3);
        for (name, us) in [
            ("auth", self.auth),
            ("cache", self.cache),
            ("origin", self.origin),
        ] {
            if let Some(us) = us {
                parts.push(format!("{name};dur={:.3}", us as f64 / 1000.0));
            }
        }
        parts.push(format!("edge;dur={:.3}", self.total as f64 / 1000.0));
        parts.join(", ")
    }
}

/// What the proxy and cache phases record as they go: the backends tried, the one that
/// answered, and the phase timings.
#[derive(Default)]
pub struct Trace {
    pub attempts: Vec<String>,
    pub backend: Option<String>,
    pub timings: Timings,
}

/// One JSON line per request on stdout (Viceroy prints it; on Fastly, stdout is the
/// service's log stream). Never a token or a secret.
#[derive(serde::Serialize)]
pub struct LogLine<'a> {
    /// Set on lines that are not the request's own (`revalidate`: a background refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    pub request_id: &'a str,
    pub method: String,
    pub client_ip: Option<std::net::IpAddr>,
    pub country: Option<&'a str>,
    pub continent: Option<&'a str>,
    pub route: Option<&'a str>,
    pub geo_level: Option<&'static str>,
    pub backend: Option<&'a str>,
    pub attempts: &'a [String],
    /// Why authentication failed (the problem detail; never the token).
    pub auth: Option<String>,
    /// The `Cache-Status` (RFC 9211) the response carries.
    pub cache: String,
    pub status: u16,
    /// Response body size, when known.
    pub bytes: Option<u64>,
    pub timings_us: &'a Timings,
}

impl<'a> LogLine<'a> {
    pub fn new(request_id: &'a str, method: String, trace: &'a Trace) -> Self {
        LogLine {
            event: None,
            request_id,
            method,
            client_ip: None,
            country: None,
            continent: None,
            route: None,
            geo_level: None,
            backend: trace.backend.as_deref(),
            attempts: &trace.attempts,
            auth: None,
            cache: String::new(),
            status: 0,
            bytes: None,
            timings_us: &trace.timings,
        }
    }
}
