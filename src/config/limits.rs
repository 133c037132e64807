//! The config's `limits`: how much of a request the edge will read before it refuses it.
//! Every byte the edge reads is memory and time spent before any check has passed, so each
//! read has a ceiling, and the answer above it is a problem, never a truncation:
//!
//! ```json
//! "limits": { "max_uri_bytes": 16384, "max_body_bytes": 1048576 }
//! ```
//!
//! - `max_uri_bytes`: the longest request target (path and query, as sent) the edge reads
//!   whole; longer is answered 414. The raw target is what traversal checks run on, so it is
//!   read at any length up to this, never replaced by the platform's resolved path.
//! - `max_body_bytes`: the largest request body a route accepts unless the route sets its
//!   own `max_body_bytes`; larger is answered 413, with or without a `Content-Length`.

use serde::Deserialize;

use super::FieldError;
use crate::route::MAX_BODY_BYTES_CEILING;

/// The most `max_uri_bytes` may be: the adapter reads the whole target into memory.
const MAX_URI_BYTES_CEILING: usize = 64 * 1024;

/// The request size limits (see the module documentation).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest request target (path and query) in bytes; default 16 KiB.
    pub max_uri_bytes: usize,
    /// Default largest request body in bytes for routes that set none; default 1 MiB.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Both limits within what the edge can hold; the error's field is relative to `limits`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(1024..=MAX_URI_BYTES_CEILING).contains(&self.max_uri_bytes) {
            return Err(FieldError::new(
                "max_uri_bytes",
                format!("must be between 1024 and {MAX_URI_BYTES_CEILING}"),
            ));
        }
        if !(1..=MAX_BODY_BYTES_CEILING).contains(&self.max_body_bytes) {
            return Err(FieldError::new(
                "max_body_bytes",
                format!("must be between 1 and {MAX_BODY_BYTES_CEILING}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, EMBEDDED};
    use super::*;

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Config, String> {
        let mut v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        edit(&mut v);
        Config::parse(&v.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_apply_when_the_config_says_nothing() {
        let c = Config::embedded().unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.limits.max_uri_bytes, 16_384);
        assert_eq!(c.limits.max_body_bytes, 1_048_576);
        let c = with(|v| v["limits"] = serde_json::json!({"max_body_bytes": 10})).unwrap();
        assert_eq!(
            (c.limits.max_uri_bytes, c.limits.max_body_bytes),
            (16_384, 10)
        );
    }

    #[test]
    fn out_of_range_limits_name_the_field() {
        for (limits, field) in [
            (
                serde_json::json!({"max_uri_bytes": 10}),
                "limits.max_uri_bytes",
            ),
            (
                serde_json::json!({"max_uri_bytes": 65537}),
                "limits.max_uri_bytes",
            ),
            (
                serde_json::json!({"max_body_bytes": 0}),
                "limits.max_body_bytes",
            ),
            (
                serde_json::json!({"max_body_bytes": 16_777_217}),
                "limits.max_body_bytes",
            ),
        ] {
            let err = with(|v| v["limits"] = limits.clone()).unwrap_err();
            assert!(err.contains(field), "{limits}: {err}");
        }
        let err = with(|v| v["limits"] = serde_json::json!({"max_header_bytes": 1})).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }
}
