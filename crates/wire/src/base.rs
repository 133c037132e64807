//! The signature base (RFC 9421 §2.5): the exact bytes the HMAC covers. The edge builds it
//! from what it sends upstream and the origin from what it received, so any difference in
//! how the two read a request (a decoded path, a dropped `?`, a re-cased header) is a
//! signature mismatch rather than a silent disagreement.

use crate::headers::CONTENT_DIGEST_HEADER;

/// The covered components of a request without a body, exactly and in this order.
pub const COVERED_COMPONENTS: [&str; 6] = [
    "@method",
    "@path",
    "@query",
    "fastgate-identity",
    "fastgate-flags",
    "x-request-id",
];

/// The covered components of a request with a body: [`COVERED_COMPONENTS`], then
/// `content-digest` (RFC 9530), which binds the body's bytes to the signature.
pub const COVERED_WITH_BODY: [&str; 7] = with_digest(COVERED_COMPONENTS);

const fn with_digest(covered: [&'static str; 6]) -> [&'static str; 7] {
    let mut out = [CONTENT_DIGEST_HEADER; 7];
    let mut i = 0;
    while i < covered.len() {
        out[i] = covered[i];
        i += 1;
    }
    out
}

/// Which of the two covered lists a signature uses; the origin refuses any other list, and
/// refuses a list that does not fit the body it received (see [`Covered::for_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covered {
    /// No body: [`COVERED_COMPONENTS`].
    Bodiless,
    /// A non-empty body: [`COVERED_WITH_BODY`].
    WithBody,
}

impl Covered {
    /// The list a request must be signed with: a body, and only a body, is bound by its
    /// digest. An empty body counts as no body (the edge sends none).
    #[inline]
    pub const fn for_body(has_body: bool) -> Self {
        if has_body {
            Covered::WithBody
        } else {
            Covered::Bodiless
        }
    }

    /// The component names, in order.
    #[inline]
    pub const fn components(self) -> &'static [&'static str] {
        match self {
            Covered::Bodiless => &COVERED_COMPONENTS,
            Covered::WithBody => &COVERED_WITH_BODY,
        }
    }

    /// Which list `names` is exactly, if either.
    pub fn from_components<S: AsRef<str>>(names: &[S]) -> Option<Self> {
        [Covered::Bodiless, Covered::WithBody]
            .into_iter()
            .find(|c| {
                names
                    .iter()
                    .map(AsRef::as_ref)
                    .eq(c.components().iter().copied())
            })
    }

    /// The list serialized as the RFC 8941 inner list that opens the `@signature-params`
    /// value (a test keeps the two in step).
    #[inline]
    pub(crate) const fn inner_list(self) -> &'static str {
        match self {
            Covered::Bodiless => {
                r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")"#
            }
            Covered::WithBody => {
                r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest")"#
            }
        }
    }
}

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
    /// The `Content-Digest` value as sent (see [`crate::content_digest`]) when the request
    /// has a body; `None` when it has none.
    pub content_digest: Option<&'a str>,
}

impl Signed<'_> {
    /// The covered list these components are signed under.
    #[inline]
    pub fn covered(&self) -> Covered {
        Covered::for_body(self.content_digest.is_some())
    }
}

/// The signature base: one `"name": value` line per covered component, then
/// `"@signature-params"`, joined by `\n` with no trailing newline:
///
/// ```text
/// "@method": POST
/// "@path": /api/process
/// "@query": ?
/// "fastgate-identity": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0
/// "fastgate-flags":
/// "x-request-id": req-2
/// "content-digest": sha-256=:c5y/S6tpmm8d6wIEzNq2KVnzuo1+1MUH0MEgyHf7HvQ=:
/// "@signature-params": ("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest");created=1700000000;expires=1700000030;nonce="8PHy8_T19vf4-fr7_P3-_w";keyid="k1";alg="hmac-sha256"
/// ```
///
/// - An empty path is `/` (RFC 9421 §2.2.6).
/// - No query and an empty query (a bare `?`) both give `"@query": ?` (RFC 9421 §2.2.7).
/// - An empty `Fastgate-Flags` gives `"fastgate-flags": ` with the space kept.
/// - The `"content-digest"` line is there only for a request with a body.
/// - `signature_params` is the `Signature-Input` member value after `fastgate=`, byte for
///   byte as sent (see [`crate::Params::serialize`]).
///
/// [`crate::test_vector`] pins the signatures of the example above and of a GET.
#[inline]
pub fn signature_base(s: &Signed<'_>, signature_params: &str) -> String {
    let path = if s.path.is_empty() { "/" } else { s.path };
    let mut base = format!(
        "\"@method\": {}\n\"@path\": {path}\n\"@query\": ?{}\n\"fastgate-identity\": {}\n\"fastgate-flags\": {}\n\"x-request-id\": {}\n",
        s.method,
        s.query.unwrap_or(""),
        s.identity,
        s.flags,
        s.request_id,
    );
    if let Some(digest) = s.content_digest {
        base.push_str(&format!("\"{CONTENT_DIGEST_HEADER}\": {digest}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {signature_params}"));
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vector::{self, GET, POST};

    #[test]
    fn covered_lists_serialize_the_components() {
        for covered in [Covered::Bodiless, Covered::WithBody] {
            let quoted: Vec<String> = covered
                .components()
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect();
            assert_eq!(covered.inner_list(), format!("({})", quoted.join(" ")));
            assert_eq!(
                Covered::from_components(covered.components()),
                Some(covered)
            );
        }
        // The body list is the bodiless one plus the digest, so neither can pass for the other.
        assert_eq!(COVERED_WITH_BODY[..6], COVERED_COMPONENTS);
        assert_eq!(COVERED_WITH_BODY[6], "content-digest");
        assert_eq!(Covered::from_components(&COVERED_WITH_BODY[..5]), None);
        assert_eq!(Covered::from_components::<&str>(&[]), None);
        let reordered = ["@path", "@method", "@query", "fastgate-identity"];
        assert_eq!(Covered::from_components(&reordered), None);
        assert_eq!(Covered::for_body(true), Covered::WithBody);
        assert_eq!(Covered::for_body(false), Covered::Bodiless);
    }

    #[test]
    fn base_matches_the_documented_examples() {
        for v in [GET, POST] {
            assert_eq!(
                signature_base(&v.signed(), v.params),
                v.base,
                "{}",
                v.method
            );
        }
        assert_eq!(
            signature_base(&GET.signed(), GET.params),
            format!(
                "\"@method\": GET\n\"@path\": /api/user/profile\n\"@query\": ?a=1&b=two\n\
                 \"fastgate-identity\": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0\n\
                 \"fastgate-flags\": new_schema=1\n\"x-request-id\": req-1\n\
                 \"@signature-params\": {}",
                GET.params
            )
        );
        assert_eq!(
            signature_base(&POST.signed(), POST.params),
            format!(
                "\"@method\": POST\n\"@path\": /api/process\n\"@query\": ?\n\
                 \"fastgate-identity\": {}\n\"fastgate-flags\": \n\"x-request-id\": req-2\n\
                 \"content-digest\": sha-256=:c5y/S6tpmm8d6wIEzNq2KVnzuo1+1MUH0MEgyHf7HvQ=:\n\
                 \"@signature-params\": {}",
                test_vector::IDENTITY,
                POST.params
            )
        );
        assert_eq!(GET.signed().covered(), Covered::Bodiless);
        assert_eq!(POST.signed().covered(), Covered::WithBody);
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
            content_digest: None,
        };
        let b = signature_base(&s, "()");
        assert!(b.contains("\"@query\": ?\n"));
        assert!(b.contains("\"fastgate-flags\": \n"));
        assert!(!b.contains("content-digest"));
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
        // A digest adds its line after the request id and before the parameters.
        let with_body = Signed {
            content_digest: Some("sha-256=:AA==:"),
            ..s
        };
        assert!(signature_base(&with_body, "()").ends_with(
            "\"x-request-id\": r\n\"content-digest\": sha-256=:AA==:\n\"@signature-params\": ()"
        ));
    }
}
