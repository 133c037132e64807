//! The checks, in the order that gives the cheapest refusal first: the signature's shape,
//! its algorithm, its key, its validity window, then the MAC over the request as received,
//! and only then the identity it vouches for.

use axum::http::{HeaderMap, HeaderName, Method, Uri};
use fastgate_wire::{
    signature_base, EdgeIdentity, Signed, ALGORITHM, CLOCK_SKEW_SECS, COVERED_COMPONENTS,
    FLAGS_HEADER, IDENTITY_HEADER, MAX_WINDOW_SECS, REQUEST_ID_HEADER,
};

use super::error::SignatureError;
use super::keys::IdentityKeys;
use super::parse::{
    parse_signature, parse_signature_input, SignatureParams, SIGNATURE, SIGNATURE_INPUT,
};

pub(super) const IDENTITY: HeaderName = HeaderName::from_static(IDENTITY_HEADER);
pub(super) const FLAGS: HeaderName = HeaderName::from_static(FLAGS_HEADER);
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Checks edge signatures against a key set.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: IdentityKeys,
}

impl Verifier {
    pub fn new(keys: IdentityKeys) -> Self {
        Self { keys }
    }

    /// Verifies the request's signature at unix time `now` and returns the identity it
    /// vouches for.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<EdgeIdentity, SignatureError> {
        let input = dictionary_header(headers, SIGNATURE_INPUT)?;
        let signature = dictionary_header(headers, SIGNATURE)?;
        let params = parse_signature_input(&input)?;
        let mac = parse_signature(&signature)?;
        let key = self.check_params(&params, now)?;

        let identity = single_header(headers, IDENTITY)?;
        let signed = Signed {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            identity,
            flags: single_header(headers, FLAGS)?,
            request_id: single_header(headers, REQUEST_ID)?,
        };
        fastgate_wire::verify(key, &signature_base(&signed, &params.raw), &mac)
            .map_err(|_| SignatureError::Mismatch)?;
        Ok(EdgeIdentity::decode(identity)?)
    }

    /// Everything about the parameters: the components, algorithm, key and window. Returns
    /// the key the MAC must verify with.
    fn check_params(&self, params: &SignatureParams, now: u64) -> Result<&[u8], SignatureError> {
        if params
            .covered
            .iter()
            .map(String::as_str)
            .ne(COVERED_COMPONENTS)
        {
            return Err(SignatureError::CoveredComponents);
        }
        if let Some(alg) = params.alg.as_deref().filter(|a| *a != ALGORITHM) {
            return Err(SignatureError::Algorithm(alg.to_owned()));
        }
        let key = self
            .keys
            .get(&params.keyid)
            .ok_or_else(|| SignatureError::UnknownKeyId(params.keyid.clone()))?;
        let (created, expires) = (params.created, params.expires);
        if expires <= created || expires - created > MAX_WINDOW_SECS {
            return Err(SignatureError::Window { created, expires });
        }
        if created > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(SignatureError::CreatedInFuture { created, now });
        }
        if now > expires.saturating_add(CLOCK_SKEW_SECS) {
            return Err(SignatureError::Expired { expires, now });
        }
        Ok(key)
    }
}

/// The value of a covered header, which must occur exactly once.
fn single_header(headers: &HeaderMap, name: HeaderName) -> Result<&str, SignatureError> {
    let mut values = headers.get_all(&name).iter();
    let value = values
        .next()
        .ok_or_else(|| SignatureError::MissingHeader(name.clone()))?;
    if values.next().is_some() {
        return Err(SignatureError::RepeatedHeader(name));
    }
    value
        .to_str()
        .map_err(|_| SignatureError::HeaderNotAscii(name))
}

/// A structured-field dictionary header; several field lines combine with `, ` (RFC 8941).
fn dictionary_header(headers: &HeaderMap, name: HeaderName) -> Result<String, SignatureError> {
    let values = headers
        .get_all(&name)
        .iter()
        .map(|v| v.to_str())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SignatureError::HeaderNotAscii(name.clone()))?;
    if values.is_empty() {
        return Err(SignatureError::MissingHeader(name));
    }
    Ok(values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use base64::Engine as _;
    use fastgate_wire::{signature_value, test_vector};

    const NOW: u64 = test_vector::CREATED;
    const PARAMS: &str = test_vector::PARAMS;

    fn b64url(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn keys() -> IdentityKeys {
        IdentityKeys::parse("k1:secret-one, k2:secret-two").unwrap()
    }

    fn verifier() -> Verifier {
        Verifier::new(keys())
    }

    /// A request as the edge would forward it, signed with `kid`'s secret.
    struct Req {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
    }

    fn params(created: u64, expires: u64, kid: &str, alg: Option<&str>) -> String {
        let mut p = format!(
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created={created};expires={expires};keyid="{kid}""#
        );
        if let Some(a) = alg {
            p.push_str(&format!(r#";alg="{a}""#));
        }
        p
    }

    fn components<'a>(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        identity: &'a str,
        flags: &'a str,
        request_id: &'a str,
    ) -> Signed<'a> {
        Signed {
            method,
            path,
            query,
            identity,
            flags,
            request_id,
        }
    }

    /// Signs through the wire crate, with any parameters (also ones the edge never sends).
    fn sign(method: &str, uri: &str, identity: &str, secret: &str, params: &str) -> Req {
        let uri: Uri = uri.parse().unwrap();
        let c = components(
            method,
            uri.path(),
            uri.query(),
            identity,
            "new_schema=1",
            "req-1",
        );
        let sig = signature_value(secret.as_bytes(), &signature_base(&c, params));
        let mut headers = HeaderMap::new();
        let mut put = |k: &'static str, v: String| {
            headers.insert(k, HeaderValue::from_str(&v).unwrap());
        };
        put("fastgate-identity", identity.to_owned());
        put("fastgate-flags", "new_schema=1".into());
        put("x-request-id", "req-1".into());
        put("signature-input", format!("fastgate={params}"));
        put("signature", sig);
        Req {
            method: method.parse().unwrap(),
            uri,
            headers,
        }
    }

    fn good() -> Req {
        sign(
            "GET",
            "/api/user/profile?a=1&b=two",
            &b64url(r#"{"sub":"a@b.c","uid":"u1"}"#),
            "secret-one",
            &params(NOW, NOW + 30, "k1", Some(ALGORITHM)),
        )
    }

    /// A GET of `/p` for the anonymous identity, signed with `secret` over `params`.
    fn sign_p(secret: &str, params: &str) -> Req {
        sign("GET", "/p", "e30", secret, params)
    }

    /// The good request with the header `name` set to `value` after signing.
    fn good_with(name: HeaderName, value: &str) -> Req {
        let mut r = good();
        r.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
        r
    }

    fn check(r: &Req, now: u64) -> Result<EdgeIdentity, SignatureError> {
        verifier().verify(&r.method, &r.uri, &r.headers, now)
    }

    /// Sends the good request with each of `values` in the header `name`; each must be
    /// refused with an error `accepted` allows.
    fn assert_refused(name: HeaderName, values: &[&str], accepted: fn(&SignatureError) -> bool) {
        for value in values {
            let err = check(&good_with(name.clone(), value), NOW).unwrap_err();
            assert!(accepted(&err), "{name} {value:?}: {err:?}");
        }
    }

    #[test]
    fn base_and_mac_match_the_documented_vector() {
        let identity = b64url(r#"{"sub":"a@b.c","uid":"u1"}"#);
        assert_eq!(identity, "eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0");
        assert_eq!(identity, test_vector::IDENTITY);
        let base = signature_base(
            &components(
                "GET",
                "/api/user/profile",
                Some("a=1&b=two"),
                &identity,
                "new_schema=1",
                "req-1",
            ),
            PARAMS,
        );
        assert_eq!(
            base,
            format!(
                "\"@method\": GET\n\"@path\": /api/user/profile\n\"@query\": ?a=1&b=two\n\
                 \"fastgate-identity\": {identity}\n\"fastgate-flags\": new_schema=1\n\
                 \"x-request-id\": req-1\n\"@signature-params\": {PARAMS}"
            )
        );
        assert_eq!(base, test_vector::BASE);
        let r = good();
        assert_eq!(r.headers["signature"], test_vector::SIGNATURE);
        assert_eq!(
            test_vector::SIGNATURE,
            "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:"
        );
        assert_eq!(r.headers["signature-input"], format!("fastgate={PARAMS}"));
        assert_eq!(r.headers["signature-input"], test_vector::SIGNATURE_INPUT);
        // No query and an empty query both give a bare "?"; an empty flags value keeps its space.
        let b = signature_base(&components("POST", "/x", None, "e30", "", "r"), "()");
        assert!(b.contains("\"@query\": ?\n"));
        assert!(b.contains("\"fastgate-flags\": \n"));
        assert_eq!(
            b,
            signature_base(&components("POST", "/x", Some(""), "e30", "", "r"), "()")
        );
    }

    #[test]
    fn the_pinned_vector_verifies() {
        // Built from the shared vector alone, not from this module's signer.
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("fastgate-identity", test_vector::IDENTITY),
            ("fastgate-flags", test_vector::FLAGS),
            ("x-request-id", test_vector::REQUEST_ID),
            ("signature-input", test_vector::SIGNATURE_INPUT),
            ("signature", test_vector::SIGNATURE),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let uri: Uri = format!("{}?{}", test_vector::PATH, test_vector::QUERY)
            .parse()
            .unwrap();
        let id = verifier()
            .verify(&Method::GET, &uri, &headers, test_vector::CREATED)
            .unwrap();
        assert_eq!(id.subject(), Some("a@b.c"));
        assert_eq!(id.uid.as_deref(), Some("u1"));
        assert_eq!(id, EdgeIdentity::decode(test_vector::IDENTITY).unwrap());
    }

    #[test]
    fn signature_params_are_used_verbatim() {
        // Non-canonical spacing is still valid RFC 8941; the base uses the bytes as sent.
        let p = format!(
            r#"( "@method"  "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");  created={NOW};expires={};keyid="k1""#,
            NOW + 10
        );
        assert!(check(&sign_p("secret-one", &p), NOW).is_ok());
        // Signed over the canonical form but sent in another: a mismatch.
        let canonical = p.replace("( \"@method\"  ", "(\"@method\" ");
        let mut r = sign_p("secret-one", &canonical);
        r.headers.insert(
            SIGNATURE_INPUT,
            HeaderValue::from_str(&format!("fastgate={p}")).unwrap(),
        );
        assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn unpadded_or_lenient_base64_is_refused() {
        let unpadded = format!(
            "fastgate=:{}:",
            test_vector::MAC_BASE64.trim_end_matches('=')
        );
        assert_eq!(
            check(&good_with(SIGNATURE, &unpadded), NOW),
            Err(SignatureError::MalformedSignature("not standard base64"))
        );
    }

    #[test]
    fn good_signature_yields_the_identity() {
        let id = check(&good(), NOW).unwrap();
        assert_eq!(id.subject(), Some("a@b.c"));
        assert_eq!(id.uid.as_deref(), Some("u1"));
        // Within the skew on both ends, and `alg` may be left out.
        assert!(check(&good(), NOW - CLOCK_SKEW_SECS).is_ok());
        assert!(check(&good(), NOW + 30 + CLOCK_SKEW_SECS).is_ok());
        let r = sign_p("secret-one", &params(NOW, NOW + 60, "k1", None));
        let anon = check(&r, NOW).unwrap();
        assert_eq!((anon.subject(), anon.claims.len()), (None, 0));
    }

    #[test]
    fn key_rotation_accepts_every_listed_key() {
        let r = sign_p("secret-two", &params(NOW, NOW + 10, "k2", Some(ALGORITHM)));
        assert!(check(&r, NOW).is_ok());
        // A kid paired with the other key's secret does not verify.
        let r = sign_p("secret-two", &params(NOW, NOW + 10, "k1", Some(ALGORITHM)));
        assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch));
        // After k1 is retired, its signatures stop passing.
        let only_k2 = Verifier::new(IdentityKeys::parse("k2:secret-two").unwrap());
        let r = good();
        assert_eq!(
            only_k2.verify(&r.method, &r.uri, &r.headers, NOW),
            Err(SignatureError::UnknownKeyId("k1".into()))
        );
    }

    #[test]
    fn tampered_identity_is_refused() {
        for (name, value) in [
            (IDENTITY, b64url(r#"{"sub":"admin@b.c","uid":"u1"}"#)),
            (FLAGS, "new_schema=0".into()),
            (REQUEST_ID, "req-2".into()),
        ] {
            let r = good_with(name, &value);
            assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch), "{value}");
        }
    }

    #[test]
    fn tampered_method_path_or_query_is_refused() {
        for (method, uri) in [
            ("POST", "/api/user/profile?a=1&b=two"),
            ("GET", "/api/user/other?a=1&b=two"),
            ("GET", "/api/user/profile/?a=1&b=two"),
            ("GET", "/api/user/%70rofile?a=1&b=two"),
            ("GET", "/api/user/profile?a=1&b=three"),
            ("GET", "/api/user/profile"),
            ("GET", "/api/user/profile?"),
        ] {
            let mut r = good();
            r.method = method.parse().unwrap();
            r.uri = uri.parse().unwrap();
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::Mismatch),
                "{method} {uri}"
            );
        }
        // A signed bare "?" equals a signed absent query.
        let r = sign_p("secret-one", &params(NOW, NOW + 10, "k1", None));
        let mut with_q = sign(
            "GET",
            "/p?",
            "e30",
            "secret-one",
            &params(NOW, NOW + 10, "k1", None),
        );
        with_q.headers = r.headers.clone();
        assert!(check(&with_q, NOW).is_ok());
    }

    #[test]
    fn time_window_is_enforced() {
        assert_eq!(
            check(&good(), NOW + 30 + CLOCK_SKEW_SECS + 1),
            Err(SignatureError::Expired {
                expires: NOW + 30,
                now: NOW + 36
            })
        );
        assert_eq!(
            check(&good(), NOW - CLOCK_SKEW_SECS - 1),
            Err(SignatureError::CreatedInFuture {
                created: NOW,
                now: NOW - 6
            })
        );
        for (created, expires) in [(NOW, NOW + 61), (NOW, NOW), (NOW, NOW - 1)] {
            let r = sign_p("secret-one", &params(created, expires, "k1", None));
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::Window { created, expires })
            );
        }
        let r = sign_p("secret-one", &params(NOW, NOW + 60, "k1", None));
        assert!(check(&r, NOW).is_ok());
    }

    #[test]
    fn unknown_keyid_and_wrong_alg_are_refused() {
        let r = sign_p("secret-one", &params(NOW, NOW + 10, "k9", None));
        assert_eq!(
            check(&r, NOW),
            Err(SignatureError::UnknownKeyId("k9".into()))
        );
        for alg in ["hmac-sha512", "HMAC-SHA256", "ed25519", ""] {
            let r = sign_p("secret-one", &params(NOW, NOW + 10, "k1", Some(alg)));
            assert_eq!(check(&r, NOW), Err(SignatureError::Algorithm(alg.into())));
        }
    }

    #[test]
    fn missing_or_repeated_headers_are_refused() {
        for name in [
            "fastgate-identity",
            "fastgate-flags",
            "x-request-id",
            "signature",
            "signature-input",
        ] {
            let mut r = good();
            r.headers.remove(name);
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::MissingHeader(HeaderName::from_static(name))),
                "{name}"
            );
        }
        let mut r = good();
        r.headers.append(IDENTITY, HeaderValue::from_static("e30"));
        assert_eq!(
            check(&r, NOW),
            Err(SignatureError::RepeatedHeader(IDENTITY))
        );
        // Another signature alongside ours is fine (a dictionary over several lines).
        let mut r = good();
        r.headers.append(
            SIGNATURE_INPUT,
            HeaderValue::from_static(r#"other=("@method");created=1"#),
        );
        r.headers
            .append(SIGNATURE, HeaderValue::from_static("other=:AAAA:"));
        assert!(check(&r, NOW).is_ok());
    }

    #[test]
    fn malformed_signature_input_is_refused() {
        let bad = [
            "",
            "fastgate",
            "other=(\"@method\");created=1",
            r#"fastgate="@method";created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id";created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030"#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=-1;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid=k1"#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";nonce="x""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1" junk"#,
            r#"fastgate=("@method""@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path";req "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1.5;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1", fastgate=("@method");created=1"#,
            r#"Fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1""#,
        ];
        assert_refused(SIGNATURE_INPUT, &bad, |err| {
            matches!(
                err,
                SignatureError::MalformedInput(_)
                    | SignatureError::MissingLabel(_)
                    | SignatureError::RepeatedLabel(_)
            )
        });
        // Other covered components (fewer, more, another order) are refused.
        for covered in [
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags")"#,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "@authority")"#,
            r#"("@path" "@method" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")"#,
            r#"()"#,
        ] {
            let p = format!(r#"{covered};created={NOW};expires={};keyid="k1""#, NOW + 10);
            let r = sign_p("secret-one", &p);
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::CoveredComponents),
                "{covered}"
            );
        }
        // Parameters may come in any order; the base uses them verbatim.
        let p = format!(
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");keyid="k1";alg="hmac-sha256";expires={};created={NOW}"#,
            NOW + 10
        );
        assert!(check(&sign_p("secret-one", &p), NOW).is_ok());
    }

    #[test]
    fn malformed_signature_is_refused() {
        let malformed = [
            "fastgate=t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=",
            "fastgate=:t3Y_J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:",
            "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:;x=1",
            "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=",
            "other=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:",
        ];
        assert_refused(SIGNATURE, &malformed, |err| {
            matches!(
                err,
                SignatureError::MalformedSignature(_) | SignatureError::MissingLabel(_)
            )
        });
        // Well-formed but wrong, or truncated: a mismatch.
        assert_refused(SIGNATURE, &["fastgate=:AAAA:", "fastgate=::"], |err| {
            *err == SignatureError::Mismatch
        });
    }

    #[test]
    fn signed_but_malformed_identity_is_refused() {
        for identity in [
            "not base64!",
            &b64url("[1]"),
            &b64url(r#"{"sub":1}"#),
            "e30=",
        ] {
            let r = sign(
                "GET",
                "/p",
                identity,
                "secret-one",
                &params(NOW, NOW + 10, "k1", None),
            );
            assert!(
                matches!(check(&r, NOW), Err(SignatureError::Identity(_))),
                "{identity}"
            );
        }
    }
}
