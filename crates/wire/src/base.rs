//! The signature base (RFC 9421 §2.5): the exact bytes the HMAC covers. The edge builds it
//! from what it sends upstream and the origin from what it received, so any difference in
//! how the two read a request (a decoded path, a dropped `?`, a re-cased header) is a
//! signature mismatch rather than a silent disagreement.

/// The covered components, exactly and in this order; the origin refuses any other list.
pub const COVERED_COMPONENTS: [&str; 6] = [
    "@method",
    "@path",
    "@query",
    "fastgate-identity",
    "fastgate-flags",
    "x-request-id",
];

/// [`COVERED_COMPONENTS`] serialized as the RFC 8941 inner list that opens the
/// `@signature-params` value (a test keeps the two in step).
pub(crate) const COVERED_LIST: &str =
    r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")"#;

/// The values of the covered components for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    /// The method as sent; case is kept (RFC 9421 §2.2.1: methods are case-sensitive).
    pub method: &'a str,
    /// The request target's path exactly as sent: not decoded or normalised, no query.
    pub path: &'a str,
    /// The raw query as sent, without `?`.
    pub query: Option<&'a str>,
    /// The `Fastgate-Identity` value as sent.
    pub identity: &'a str,
    /// The `Fastgate-Flags` value as sent (may be empty).
    pub flags: &'a str,
    /// The `X-Request-Id` value as sent.
    pub request_id: &'a str,
}

/// The signature base: one `"name": value` line per covered component, then
/// `"@signature-params"`, joined by `\n` with no trailing newline:
///
/// ```text
/// "@method": GET
/// "@path": /api/user/profile
/// "@query": ?a=1&b=two
/// "fastgate-identity": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0
/// "fastgate-flags": new_schema=1
/// "x-request-id": req-1
/// "@signature-params": ("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";alg="hmac-sha256"
/// ```
///
/// - An empty path is `/` (RFC 9421 §2.2.6).
/// - No query and an empty query (a bare `?`) both give `"@query": ?` (RFC 9421 §2.2.7).
/// - An empty `Fastgate-Flags` gives `"fastgate-flags": ` with the space kept.
/// - `signature_params` is the `Signature-Input` member value after `fastgate=`, byte for
///   byte as sent (see [`crate::Params::serialize`]).
///
/// [`crate::test_vector`] pins the signature of the example above.
#[inline]
pub fn signature_base(s: &Signed<'_>, signature_params: &str) -> String {
    let path = if s.path.is_empty() { "/" } else { s.path };
    format!(
        "\"@method\": {}\n\"@path\": {path}\n\"@query\": ?{}\n\"fastgate-identity\": {}\n\"fastgate-flags\": {}\n\"x-request-id\": {}\n\"@signature-params\": {signature_params}",
        s.method,
        s.query.unwrap_or(""),
        s.identity,
        s.flags,
        s.request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vector;

    #[test]
    fn covered_list_serializes_the_components() {
        let quoted: Vec<String> = COVERED_COMPONENTS
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect();
        assert_eq!(COVERED_LIST, format!("({})", quoted.join(" ")));
    }

    #[test]
    fn base_matches_the_documented_example() {
        let base = signature_base(&test_vector::signed(), test_vector::PARAMS);
        assert_eq!(base, test_vector::BASE);
        assert_eq!(
            base,
            format!(
                "\"@method\": GET\n\"@path\": /api/user/profile\n\"@query\": ?a=1&b=two\n\
                 \"fastgate-identity\": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0\n\
                 \"fastgate-flags\": new_schema=1\n\"x-request-id\": req-1\n\
                 \"@signature-params\": {}",
                test_vector::PARAMS
            )
        );
    }

    #[test]
    fn absent_and_empty_query_and_flags_keep_their_shape() {
        let s = Signed {
            method: "POST",
            path: "/x",
            query: None,
            identity: "e30",
            flags: "",
            request_id: "r",
        };
        let b = signature_base(&s, "()");
        assert!(b.contains("\"@query\": ?\n"));
        assert!(b.contains("\"fastgate-flags\": \n"));
        let bare = Signed {
            query: Some(""),
            ..s
        };
        assert_eq!(b, signature_base(&bare, "()"));
        let empty_path = Signed { path: "", ..s };
        assert_eq!(
            signature_base(&empty_path, "()"),
            signature_base(&Signed { path: "/", ..s }, "()")
        );
        // The method is taken as sent.
        let lower = Signed {
            method: "post",
            ..s
        };
        assert!(signature_base(&lower, "()").starts_with("\"@method\": post\n"));
    }
}
