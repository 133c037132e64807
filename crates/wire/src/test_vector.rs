//! One signature pinned to the byte, for the tests of both sides: the wire crate signs it,
//! the edge's signer reproduces it, and the origin's verifier accepts it. Were any side to
//! change how it reads a request, its test would fail here before a deploy failed at once.
//!
//! Not part of the contract's API (hidden from the docs); the key is public.

use crate::base::Signed;
use crate::params::Params;

pub const KEY: &[u8] = b"secret-one";
pub const KEY_ID: &str = "k1";
pub const CREATED: u64 = 1_700_000_000;
pub const EXPIRES: u64 = 1_700_000_030;

pub const METHOD: &str = "GET";
pub const PATH: &str = "/api/user/profile";
pub const QUERY: &str = "a=1&b=two";
/// `Fastgate-Identity` for [`IDENTITY_JSON`].
pub const IDENTITY: &str = "eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0";
pub const IDENTITY_JSON: &str = r#"{"sub":"a@b.c","uid":"u1"}"#;
pub const FLAGS: &str = "new_schema=1";
pub const REQUEST_ID: &str = "req-1";

/// The `@signature-params` value.
pub const PARAMS: &str = r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";alg="hmac-sha256""#;
/// The signature base.
pub const BASE: &str = concat!(
    "\"@method\": GET\n",
    "\"@path\": /api/user/profile\n",
    "\"@query\": ?a=1&b=two\n",
    "\"fastgate-identity\": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0\n",
    "\"fastgate-flags\": new_schema=1\n",
    "\"x-request-id\": req-1\n",
    r#""@signature-params": ("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";alg="hmac-sha256""#,
);
/// The `Signature-Input` header value.
pub const SIGNATURE_INPUT: &str = r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";alg="hmac-sha256""#;
/// The MAC, standard base64.
pub const MAC_BASE64: &str = "t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=";
/// The `Signature` header value.
pub const SIGNATURE: &str = "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:";

/// The covered components of the vector.
pub fn signed() -> Signed<'static> {
    Signed {
        method: METHOD,
        path: PATH,
        query: Some(QUERY),
        identity: IDENTITY,
        flags: FLAGS,
        request_id: REQUEST_ID,
    }
}

/// The parameters of the vector (a 30 s window, inside the origin's limit).
pub fn params() -> Params<'static> {
    Params {
        created: CREATED,
        expires: EXPIRES,
        key_id: KEY_ID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    #[test]
    fn the_vector_is_self_consistent() {
        assert_eq!(URL_SAFE_NO_PAD.encode(IDENTITY_JSON), IDENTITY);
        assert_eq!(SIGNATURE_INPUT, format!("fastgate={PARAMS}"));
        assert_eq!(SIGNATURE, format!("fastgate=:{MAC_BASE64}:"));
        assert!(BASE.ends_with(PARAMS));
    }
}
