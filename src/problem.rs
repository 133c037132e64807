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
    /// Header fields the answer carries besides the body, such as `Allow` on a 405
    /// (RFC 9110 §15.5.6 requires it). Not part of the JSON.
    #[serde(skip)]
    pub headers: Vec<(&'static str, String)>,
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
    Conflict,
    UnprocessableContent,
    ContentTooLarge,
    UriTooLong,
    NotImplemented,
    BadGateway,
    GatewayTimeout,
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
            ProblemKind::Conflict => ("conflict", "Conflict", 409),
            ProblemKind::UnprocessableContent => {
                ("unprocessable-content", "Unprocessable Content", 422)
            }
            ProblemKind::ContentTooLarge => ("content-too-large", "Content Too Large", 413),
            ProblemKind::UriTooLong => ("uri-too-long", "URI Too Long", 414),
            ProblemKind::NotImplemented => ("not-implemented", "Not Implemented", 501),
            ProblemKind::BadGateway => ("bad-gateway", "Bad Gateway", 502),
            ProblemKind::GatewayTimeout => ("gateway-timeout", "Gateway Timeout", 504),
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
            headers: Vec::new(),
        }
    }

    /// The 405 answer: the path exists, but not for this method. `allow` lists the methods
    /// it does accept, and travels as the `Allow` field RFC 9110 §15.5.6 requires.
    pub fn method_not_allowed(method: &str, allow: String, request_id: &str) -> Self {
        let mut p = Self::new(
            ProblemKind::MethodNotAllowed,
            format!("{method} is not allowed on this path"),
            request_id,
        );
        p.headers.push(("allow", allow));
        p
    }

    /// The 501 answer for a method the edge never forwards: unknown, spelled in another
    /// case (methods are case-sensitive, RFC 9110 §9.1), `CONNECT` or `TRACE`.
    pub fn method_not_implemented(request_id: &str) -> Self {
        Self::new(
            ProblemKind::NotImplemented,
            "the edge does not implement this method (methods are case-sensitive: GET, HEAD, \
             POST, PUT, PATCH, DELETE, OPTIONS)",
            request_id,
        )
    }

    /// The 413 answer for a request body over the route's limit.
    pub fn content_too_large(limit: u64, request_id: &str) -> Self {
        Self::new(
            ProblemKind::ContentTooLarge,
            format!("the request body is larger than this route's limit of {limit} bytes"),
            request_id,
        )
    }

    /// The 414 answer for a request target over the configured limit.
    pub fn uri_too_long(limit: usize, request_id: &str) -> Self {
        Self::new(
            ProblemKind::UriTooLong,
            format!("the request target is longer than the limit of {limit} bytes"),
            request_id,
        )
    }

    /// The answer when the edge itself is broken (never the client's fault).
    pub fn internal(request_id: &str) -> Self {
        Self::new(
            ProblemKind::Internal,
            "the edge configuration failed to load",
            request_id,
        )
    }

    /// A refused token: 401, 403, or 503 when the keys could not be had.
    pub fn auth(failure: &crate::auth::AuthFailure, request_id: &str) -> Self {
        let kind = match failure.status() {
            401 => ProblemKind::Unauthorized,
            403 => ProblemKind::Forbidden,
            _ => ProblemKind::Unavailable,
        };
        Self::new(kind, failure.detail(), request_id)
    }

    /// The edge cannot sign for the origin (no identity key in the Secret Store): fail closed.
    pub fn identity_unavailable(request_id: &str) -> Self {
        Self::new(
            ProblemKind::Unavailable,
            "the edge's identity signing key is unavailable",
            request_id,
        )
    }

    /// The 429 answer when a route's rate limit refuses the request.
    pub fn rate_limited(request_id: &str, retry_after_s: u32) -> Self {
        Self::new(
            ProblemKind::TooManyRequests,
            format!("rate limit exceeded; retry after {retry_after_s} s"),
            request_id,
        )
    }

    /// The 502 answer when every candidate backend failed.
    pub fn bad_gateway(request_id: &str, tried: &[String]) -> Self {
        Self::new(
            ProblemKind::BadGateway,
            format!("no origin answered (tried {})", tried.join(", ")),
            request_id,
        )
    }

    /// The 503 answer for a read of a cached route when no origin answered and the cache
    /// holds no copy it may serve: the resource is unavailable for now (`Retry-After`),
    /// which is what Fastly answers for a cached object whose backend is down.
    pub fn origin_unavailable(request_id: &str) -> Self {
        Self::new(
            ProblemKind::Unavailable,
            "no origin answered and the edge cache has no copy to serve",
            request_id,
        )
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

    #[test]
    fn header_fields_travel_beside_the_json_not_in_it() {
        let p = Problem::method_not_allowed("DELETE", "GET, HEAD".into(), "abc");
        assert_eq!(p.status, 405);
        assert_eq!(p.headers, vec![("allow", "GET, HEAD".to_owned())]);
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert!(v.get("headers").is_none(), "{v}");
        assert_eq!(Problem::content_too_large(1, "a").status, 413);
        assert_eq!(Problem::uri_too_long(1, "a").status, 414);
        assert_eq!(Problem::method_not_implemented("a").status, 501);
    }
}
