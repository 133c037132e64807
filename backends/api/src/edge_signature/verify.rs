//! The checks, in the order that gives the cheapest refusal first: the signature's shape,
//! its algorithm, its key, its validity window, then the MAC over the request as received,
//! and only then the identity it vouches for. The body (its digest) and the nonce are
//! checked after this, by the middleware, only for a request whose MAC is good: a request
//! without one never makes the origin read its body or write to the nonce store.

use axum::http::{HeaderMap, HeaderName, Method, Uri};
use fastgate_wire::{
    signature_base, Covered, EdgeIdentity, Signed, ALGORITHM, CLOCK_SKEW_SECS,
    CONTENT_DIGEST_HEADER, FLAGS_HEADER, IDENTITY_HEADER, MAX_WINDOW_SECS, REQUEST_ID_HEADER,
};

use super::error::SignatureError;
use super::keys::IdentityKeys;
use super::parse::{
    parse_signature, parse_signature_input, SignatureParams, SIGNATURE, SIGNATURE_INPUT,
};

pub(super) const IDENTITY: HeaderName = HeaderName::from_static(IDENTITY_HEADER);
pub(super) const FLAGS: HeaderName = HeaderName::from_static(FLAGS_HEADER);
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
const CONTENT_DIGEST: HeaderName = HeaderName::from_static(CONTENT_DIGEST_HEADER);

/// Checks edge signatures against a key set.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: IdentityKeys,
}

/// What a good signature vouches for, and what the checks after the MAC need.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The caller the edge asserted.
    pub identity: EdgeIdentity,
    /// The `Content-Digest` value the signature covers: the body must hash to it. `None`
    /// when the signature covers no body, and then the request must have none.
    pub content_digest: Option<String>,
    /// The signature's nonce (16 bytes of base64url, checked by the parser).
    pub nonce: String,
    /// The signature's `expires`.
    pub expires: u64,
}

impl Verifier {
    pub fn new(keys: IdentityKeys) -> Self {
        Self { keys }
    }

    /// Verifies the request's signature at unix time `now` and returns what it vouches for.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Verified, SignatureError> {
        // The edge signs only the methods it forwards, spelled exactly (the contract's
        // rule); anything else never came through it.
        if !fastgate_wire::method::is_forwarded(method.as_str()) {
            return Err(SignatureError::Method(method.as_str().to_owned()));
        }
        let input = dictionary_header(headers, SIGNATURE_INPUT)?;
        let signature = dictionary_header(headers, SIGNATURE)?;
        let params = parse_signature_input(&input)?;
        let mac = parse_signature(&signature)?;
        let (key, covered) = self.check_params(&params, now)?;

        let identity = single_header(headers, IDENTITY)?;
        let content_digest = match covered {
            Covered::WithBody => Some(single_header(headers, CONTENT_DIGEST)?),
            Covered::Bodiless => None,
        };
        let signed = Signed {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            identity,
            flags: single_header(headers, FLAGS)?,
            request_id: single_header(headers, REQUEST_ID)?,
            content_digest,
        };
        fastgate_wire::verify(key, &signature_base(&signed, &params.raw), &mac)
            .map_err(|_| SignatureError::Mismatch)?;
        Ok(Verified {
            identity: EdgeIdentity::decode(identity)?,
            content_digest: content_digest.map(str::to_owned),
            nonce: params.nonce,
            expires: params.expires,
        })
    }

    /// Everything about the parameters: the components, algorithm, key and window. Returns
    /// the key the MAC must verify with and which covered list the signature uses.
    fn check_params(
        &self,
        params: &SignatureParams,
        now: u64,
    ) -> Result<(&[u8], Covered), SignatureError> {
        let covered =
            Covered::from_components(&params.covered).ok_or(SignatureError::CoveredComponents)?;
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
        Ok((key, covered))
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
    use fastgate_wire::test_vector::{self, GET, POST};
    use fastgate_wire::{content_digest, signature_value};

    const NOW: u64 = test_vector::CREATED;
    const PARAMS: &str = GET.params;
    const NONCE: &str = GET.nonce;

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
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created={created};expires={expires};nonce="{NONCE}";keyid="{kid}""#
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
            content_digest: None,
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
        verifier()
            .verify(&r.method, &r.uri, &r.headers, now)
            .map(|v| v.identity)
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
        assert_eq!(base, GET.base);
        let r = good();
        assert_eq!(r.headers["signature"], GET.signature);
        assert_eq!(
            GET.signature,
            "fastgate=:OZTu9NWRoMjR2WeOt3Bdmgfhg53l2cUXbeu6jfMJtcM=:"
        );
        assert_eq!(r.headers["signature-input"], format!("fastgate={PARAMS}"));
        assert_eq!(r.headers["signature-input"], GET.signature_input);
        // No query and an empty query both give a bare "?"; an empty flags value keeps its space.
        let b = signature_base(&components("POST", "/x", None, "e30", "", "r"), "()");
        assert!(b.contains("\"@query\": ?\n"));
        assert!(b.contains("\"fastgate-flags\": \n"));
        assert_eq!(
            b,
            signature_base(&components("POST", "/x", Some(""), "e30", "", "r"), "()")
        );
    }

    /// The headers of a pinned vector, built from the shared vector alone, not from this
    /// module's signer.
    fn vector_headers(v: &test_vector::Vector) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("fastgate-identity", test_vector::IDENTITY),
            ("fastgate-flags", v.flags),
            ("x-request-id", v.request_id),
            ("signature-input", v.signature_input),
            ("signature", v.signature),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if let Some(digest) = v.content_digest {
            headers.insert(CONTENT_DIGEST, HeaderValue::from_static(digest));
        }
        headers
    }

    fn verify_vector(
        v: &test_vector::Vector,
        headers: &HeaderMap,
    ) -> Result<Verified, SignatureError> {
        let uri: Uri = v.target().parse().unwrap();
        let method: Method = v.method.parse().unwrap();
        verifier().verify(&method, &uri, headers, test_vector::CREATED)
    }

    #[test]
    fn the_pinned_vectors_verify() {
        for v in [GET, POST] {
            let verified = verify_vector(&v, &vector_headers(&v)).unwrap();
            let id = &verified.identity;
            assert_eq!(id.subject(), Some("a@b.c"));
            assert_eq!(id.uid.as_deref(), Some("u1"));
            assert_eq!(*id, EdgeIdentity::decode(test_vector::IDENTITY).unwrap());
            assert_eq!(verified.nonce, v.nonce);
            assert_eq!(verified.expires, test_vector::EXPIRES);
            assert_eq!(verified.content_digest.as_deref(), v.content_digest);
        }
    }

    #[test]
    fn a_method_the_edge_never_forwards_is_refused_first() {
        let uri: Uri = GET.target().parse().unwrap();
        for m in ["get", "Get", "CONNECT", "TRACE", "PROPFIND"] {
            let method: Method = m.parse().unwrap();
            let refused =
                verifier().verify(&method, &uri, &vector_headers(&GET), test_vector::CREATED);
            assert_eq!(refused, Err(SignatureError::Method(m.to_owned())), "{m}");
        }
    }

    #[test]
    fn a_signature_over_a_body_needs_its_digest_header() {
        let mut headers = vector_headers(&POST);
        headers.remove(CONTENT_DIGEST);
        assert_eq!(
            verify_vector(&POST, &headers),
            Err(SignatureError::MissingHeader(CONTENT_DIGEST))
        );
        // Another body's digest in place of the signed one: the MAC no longer matches.
        let mut headers = vector_headers(&POST);
        let other = content_digest(b"{\"id\":\"item-2\"}");
        headers.insert(CONTENT_DIGEST, HeaderValue::from_str(&other).unwrap());
        assert_eq!(
            verify_vector(&POST, &headers),
            Err(SignatureError::Mismatch)
        );
        let mut headers = vector_headers(&POST);
        headers.append(CONTENT_DIGEST, HeaderValue::from_str(&other).unwrap());
        assert_eq!(
            verify_vector(&POST, &headers),
            Err(SignatureError::RepeatedHeader(CONTENT_DIGEST))
        );
        // The body's signature passed off as a bodiless one (its list and digest line cut):
        // the parameters are part of the base, so the MAC no longer matches.
        let mut headers = vector_headers(&POST);
        let cut = POST.signature_input.replace(r#" "content-digest""#, "");
        headers.insert(SIGNATURE_INPUT, HeaderValue::from_str(&cut).unwrap());
        assert_eq!(
            verify_vector(&POST, &headers),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn signature_params_are_used_verbatim() {
        // Non-canonical spacing is still valid RFC 8941; the base uses the bytes as sent.
        let p = format!(
            r#"( "@method"  "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");  created={NOW};expires={};nonce="{NONCE}";keyid="k1""#,
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
        let unpadded = format!("fastgate=:{}:", GET.mac_base64.trim_end_matches('='));
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
            only_k2
                .verify(&r.method, &r.uri, &r.headers, NOW)
                .map(|v| v.identity),
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
            r#"fastgate="@method";created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id";created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030"#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=-1;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid=k1"#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";tag="x""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1" junk"#,
            r#"fastgate=("@method""@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path";req "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1.5;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1", fastgate=("@method");created=1"#,
            r#"Fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1""#,
        ];
        assert_refused(SIGNATURE_INPUT, &bad, |err| {
            matches!(
                err,
                SignatureError::MalformedInput(_)
                    | SignatureError::MissingLabel(_)
                    | SignatureError::RepeatedLabel(_)
            )
        });
        // Other covered components (fewer, more, another order, the digest elsewhere) are
        // refused.
        for covered in [
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags")"#,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "@authority")"#,
            r#"("@path" "@method" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")"#,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "content-digest" "x-request-id")"#,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest" "content-digest")"#,
            r#"("content-digest")"#,
            r#"()"#,
        ] {
            let p = format!(
                r#"{covered};created={NOW};expires={};nonce="{NONCE}";keyid="k1""#,
                NOW + 10
            );
            let r = sign_p("secret-one", &p);
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::CoveredComponents),
                "{covered}"
            );
        }
        // Parameters may come in any order; the base uses them verbatim.
        let p = format!(
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");keyid="k1";alg="hmac-sha256";nonce="{NONCE}";expires={};created={NOW}"#,
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
