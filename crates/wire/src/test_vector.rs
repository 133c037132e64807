//! Two signatures pinned to the byte, for the tests of both sides: a GET without a body and
//! a POST with one. The wire crate signs them, the edge's signer reproduces them, and the
//! origin's verifier accepts them. Were any side to change how it reads a request, its test
//! would fail here before a deploy failed at once. The MACs were computed independently of
//! this crate (Python's `hmac`), so they pin the format, not just this code's idea of it.
//!
//! Not part of the contract's API (hidden from the docs); the key is public.

use crate::base::Signed;
use crate::params::Params;

pub const KEY: &[u8] = b"secret-one";
pub const KEY_ID: &str = "k1";
pub const CREATED: u64 = 1_700_000_000;
pub const EXPIRES: u64 = 1_700_000_030;
/// `Fastgate-Identity` for [`IDENTITY_JSON`].
pub const IDENTITY: &str = "eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0";
pub const IDENTITY_JSON: &str = r#"{"sub":"a@b.c","uid":"u1"}"#;

/// One pinned request and its signature.
#[derive(Debug, Clone, Copy)]
pub struct Vector {
    pub method: &'static str,
    pub path: &'static str,
    pub query: Option<&'static str>,
    pub flags: &'static str,
    pub request_id: &'static str,
    /// The body sent, if any.
    pub body: Option<&'static [u8]>,
    /// Its `Content-Digest`.
    pub content_digest: Option<&'static str>,
    pub nonce: &'static str,
    /// The `@signature-params` value.
    pub params: &'static str,
    /// The signature base.
    pub base: &'static str,
    /// The `Signature-Input` header value.
    pub signature_input: &'static str,
    /// The MAC, standard base64.
    pub mac_base64: &'static str,
    /// The `Signature` header value.
    pub signature: &'static str,
}

/// A GET without a body: the bodiless covered list.
pub const GET: Vector = Vector {
    method: "GET",
    path: "/api/user/profile",
    query: Some("a=1&b=two"),
    flags: "new_schema=1",
    request_id: "req-1",
    body: None,
    content_digest: None,
    nonce: "AAECAwQFBgcICQoLDA0ODw",
    params: r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";alg="hmac-sha256""#,
    base: concat!(
        "\"@method\": GET\n",
        "\"@path\": /api/user/profile\n",
        "\"@query\": ?a=1&b=two\n",
        "\"fastgate-identity\": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0\n",
        "\"fastgate-flags\": new_schema=1\n",
        "\"x-request-id\": req-1\n",
        r#""@signature-params": ("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";alg="hmac-sha256""#,
    ),
    signature_input: r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";alg="hmac-sha256""#,
    mac_base64: "OZTu9NWRoMjR2WeOt3Bdmgfhg53l2cUXbeu6jfMJtcM=",
    signature: "fastgate=:OZTu9NWRoMjR2WeOt3Bdmgfhg53l2cUXbeu6jfMJtcM=:",
};

/// A POST with a body: the covered list with `content-digest`, no query, empty flags.
pub const POST: Vector = Vector {
    method: "POST",
    path: "/api/process",
    query: None,
    flags: "",
    request_id: "req-2",
    body: Some(br#"{"id":"item-1","payload":{"a":1}}"#),
    content_digest: Some("sha-256=:c5y/S6tpmm8d6wIEzNq2KVnzuo1+1MUH0MEgyHf7HvQ=:"),
    nonce: "8PHy8_T19vf4-fr7_P3-_w",
    params: r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest");created=1700000000;expires=1700000030;nonce="8PHy8_T19vf4-fr7_P3-_w";keyid="k1";alg="hmac-sha256""#,
    base: concat!(
        "\"@method\": POST\n",
        "\"@path\": /api/process\n",
        "\"@query\": ?\n",
        "\"fastgate-identity\": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0\n",
        "\"fastgate-flags\": \n",
        "\"x-request-id\": req-2\n",
        "\"content-digest\": sha-256=:c5y/S6tpmm8d6wIEzNq2KVnzuo1+1MUH0MEgyHf7HvQ=:\n",
        r#""@signature-params": ("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest");created=1700000000;expires=1700000030;nonce="8PHy8_T19vf4-fr7_P3-_w";keyid="k1";alg="hmac-sha256""#,
    ),
    signature_input: r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest");created=1700000000;expires=1700000030;nonce="8PHy8_T19vf4-fr7_P3-_w";keyid="k1";alg="hmac-sha256""#,
    mac_base64: "aG6kfu2WLGyh4KQ+EiqAFGfCFuxSePDvQFoV+0eaZW0=",
    signature: "fastgate=:aG6kfu2WLGyh4KQ+EiqAFGfCFuxSePDvQFoV+0eaZW0=:",
};

impl Vector {
    /// The covered components of the vector.
    pub fn signed(&self) -> Signed<'static> {
        Signed {
            method: self.method,
            path: self.path,
            query: self.query,
            identity: IDENTITY,
            flags: self.flags,
            request_id: self.request_id,
            content_digest: self.content_digest,
        }
    }

    /// The parameters of the vector (a 30 s window, inside the origin's limit).
    pub fn params(&self) -> Params<'static> {
        Params {
            created: CREATED,
            expires: EXPIRES,
            nonce: self.nonce,
            key_id: KEY_ID,
        }
    }

    /// The request target: the path and, when there is one, `?` and the query.
    pub fn target(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    #[test]
    fn the_vectors_are_self_consistent() {
        assert_eq!(URL_SAFE_NO_PAD.encode(IDENTITY_JSON), IDENTITY);
        for v in [GET, POST] {
            assert_eq!(v.signature_input, format!("fastgate={}", v.params));
            assert_eq!(v.signature, format!("fastgate=:{}:", v.mac_base64));
            assert!(v.base.ends_with(v.params));
            assert!(v.params.contains(&format!("nonce=\"{}\"", v.nonce)));
            assert_eq!(v.body.is_some(), v.content_digest.is_some());
        }
        assert_ne!(GET.nonce, POST.nonce);
    }
}
