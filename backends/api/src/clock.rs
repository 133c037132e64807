//! Timestamps in the formats the reference's Python produces.

use chrono::Utc;

/// `datetime.now(timezone.utc).isoformat()`, e.g. `2024-06-01T12:00:00.123456+00:00`.
pub fn iso_now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// `datetime.now(timezone.utc).date().isoformat()`, e.g. `2024-06-01`.
pub fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}
