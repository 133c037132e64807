//! Errors the edge itself generates, as RFC 9457 `application/problem+json`.

use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem detail. `instance` carries the request id so a user's report can be
/// matched to the edge's log line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub instance: String,
}

/// The kinds of error the edge answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    CorsDenied,
    TooManyRequests,
    Unavailable,
    NotFound,
    MethodNotAllowed,
    BadGateway,
    Internal,
}

impl ProblemKind {
    fn parts(self) -> (&'static str, &'static str, u16) {
        match self {
            ProblemKind::BadRequest => ("bad-request", "Bad Request", 400),
            ProblemKind::Unauthorized => ("unauthorized", "Unauthorized", 401),
            ProblemKind::Forbidden => ("forbidden", "Forbidden", 403),
            ProblemKind::CorsDenied => ("cors-denied", "Forbidden", 403),
            ProblemKind::TooManyRequests => ("rate-limited", "Too Many Requests", 429),
            ProblemKind::Unavailable => ("unavailable", "Service Unavailable", 503),
            ProblemKind::NotFound => ("not-found", "Not Found", 404),
            ProblemKind::MethodNotAllowed => ("method-not-allowed", "Method Not Allowed", 405),
            ProblemKind::BadGateway => ("bad-gateway", "Bad Gateway", 502),
            ProblemKind::Internal => ("internal", "Internal Server Error", 500),
        }
    }
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>, request_id: &str) -> Self {
        let (slug, title, status) = kind.parts();
        Problem {
            kind: format!("https://fastgate.dev/problems/{slug}"),
            title,
            status,
            detail: detail.into(),
            instance: format!("urn:fastgate:request:{request_id}"),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_follows_rfc_9457() {
        let p = Problem::new(ProblemKind::BadGateway, "origin_eu unreachable", "abc");
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["status"], 502);
        assert_eq!(v["title"], "Bad Gateway");
        assert_eq!(v["type"], "https://fastgate.dev/problems/bad-gateway");
        assert_eq!(v["instance"], "urn:fastgate:request:abc");
        assert_eq!(v["detail"], "origin_eu unreachable");
    }
}
