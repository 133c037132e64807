//! `Cache-Status` (RFC 9211): one header that tells a client, and whoever debugs it, what
//! the cache did with the request and why, under the cache name `fastgate`.

use std::fmt::Write as _;

use super::request::Fwd;
use crate::http::{is_tchar, sf_string};

/// The cache's name in `Cache-Status` (RFC 9211 §2).
pub const CACHE_NAME: &str = "fastgate";

/// What the cache did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A fresh stored response answered.
    Hit,
    /// A stale response answered within stale-while-revalidate; a revalidation runs.
    StaleWhileRevalidate,
    /// The origin failed; a stale response answered within stale-if-error.
    StaleIfError,
    /// The request went to the origin. `fwd_status` is the origin's status when it differs
    /// from the one sent (e.g. a 304 turned into the stored 200).
    Forwarded {
        fwd: Fwd,
        stored: bool,
        fwd_status: Option<u16>,
    },
}

/// RFC 8941 integers have at most 15 digits.
const SF_INTEGER_MAX: i64 = 999_999_999_999_999;

/// An RFC 8941 sf-token: `(ALPHA / "*") *(tchar / ":" / "/")`. A detail that is one is
/// written bare, as RFC 9211's examples do.
fn is_sf_token(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'*')
        && b[1..]
            .iter()
            .all(|&c| is_tchar(c) || c == b':' || c == b'/')
}

/// Appends `; detail=` as an sf-token when it is one, else as an sf-string.
fn push_detail(out: &mut String, detail: &str) {
    out.push_str("; detail=");
    if is_sf_token(detail) {
        out.push_str(detail);
    } else {
        out.push_str(&sf_string(detail));
    }
}

/// The `Cache-Status` value (RFC 9211), e.g. `fastgate; hit; ttl=42`,
/// `fastgate; fwd=miss; stored; ttl=60`, `fastgate; hit; ttl=-3; fwd=stale`,
/// `fastgate; fwd=stale; ttl=-12; detail=stale-if-error`, `fastgate; fwd=bypass`.
/// `ttl` (clamped to an sf-integer) is written when a stored response is involved: hits,
/// stale serves and stored forwards. `detail` is written when given (for stale-if-error it
/// defaults to `stale-if-error`).
pub fn cache_status(outcome: CacheOutcome, ttl_left_s: i64, detail: Option<&str>) -> String {
    let ttl = ttl_left_s.clamp(-SF_INTEGER_MAX, SF_INTEGER_MAX);
    let mut out = String::with_capacity(48);
    out.push_str(CACHE_NAME);
    match outcome {
        CacheOutcome::Hit => {
            let _ = write!(out, "; hit; ttl={ttl}");
        }
        CacheOutcome::StaleWhileRevalidate => {
            let _ = write!(out, "; hit; ttl={ttl}; fwd=stale");
        }
        CacheOutcome::StaleIfError => {
            let _ = write!(out, "; fwd=stale; ttl={ttl}");
            push_detail(&mut out, detail.unwrap_or("stale-if-error"));
            return out;
        }
        CacheOutcome::Forwarded {
            fwd,
            stored,
            fwd_status,
        } => {
            let _ = write!(out, "; fwd={}", fwd.as_str());
            if let Some(s) = fwd_status {
                let _ = write!(out, "; fwd-status={s}");
            }
            if stored {
                let _ = write!(out, "; stored; ttl={ttl}");
            }
        }
    }
    if let Some(d) = detail {
        push_detail(&mut out, d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_status_strings() {
        let fwd = |fwd, stored| CacheOutcome::Forwarded {
            fwd,
            stored,
            fwd_status: None,
        };
        assert_eq!(
            cache_status(CacheOutcome::Hit, 42, None),
            "fastgate; hit; ttl=42"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, true), 60, None),
            "fastgate; fwd=miss; stored; ttl=60"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, false), 60, None),
            "fastgate; fwd=miss"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, false), 0, Some("no freshness information")),
            "fastgate; fwd=miss; detail=\"no freshness information\""
        );
        assert_eq!(
            cache_status(fwd(Fwd::UriMiss, false), 0, Some("set-cookie")),
            "fastgate; fwd=uri-miss; detail=set-cookie"
        );
        assert_eq!(
            cache_status(CacheOutcome::StaleWhileRevalidate, -3, None),
            "fastgate; hit; ttl=-3; fwd=stale"
        );
        assert_eq!(
            cache_status(CacheOutcome::StaleIfError, -12, None),
            "fastgate; fwd=stale; ttl=-12; detail=stale-if-error"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Bypass, false), 0, None),
            "fastgate; fwd=bypass"
        );
        assert_eq!(
            cache_status(fwd(Fwd::UriMiss, false), 0, None),
            "fastgate; fwd=uri-miss"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Request, true), 30, None),
            "fastgate; fwd=request; stored; ttl=30"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Method, false), 0, None),
            "fastgate; fwd=method"
        );
        assert_eq!(
            cache_status(fwd(Fwd::VaryMiss, true), 5, None),
            "fastgate; fwd=vary-miss; stored; ttl=5"
        );
        assert_eq!(
            cache_status(
                CacheOutcome::Forwarded {
                    fwd: Fwd::Stale,
                    stored: true,
                    fwd_status: Some(304)
                },
                60,
                None
            ),
            "fastgate; fwd=stale; fwd-status=304; stored; ttl=60"
        );
        // Details are escaped; non-printables become `_` (crate::http::sf_string); ttl
        // clamped to an sf-integer.
        assert_eq!(
            cache_status(CacheOutcome::Hit, i64::MIN, Some("a \"q\" \\ é\n")),
            "fastgate; hit; ttl=-999999999999999; detail=\"a \\\"q\\\" \\\\ __\""
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, false), 0, Some("")),
            "fastgate; fwd=miss; detail=\"\""
        );
    }
}
