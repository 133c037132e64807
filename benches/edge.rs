//! Per-phase cost of the edge library, natively: `cargo bench --bench edge`.
//!
//! Token verification per algorithm (HS256, ES256, RS256), route planning, and config
//! parsing. divan reports the median of many samples.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use divan::Bencher;
use fastgate::auth::{self, AuthConfig, Issuer, JwkKey, JwksError, KeySource};
use fastgate::config::{Config, EMBEDDED};
use fastgate::geo::ClientGeo;
use fastgate::plan::{Gateway, RequestFacts};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use rsa::traits::PublicKeyParts;
use serde_json::json;

fn main() {
    divan::main();
}

const SECRET: &[u8] = b"bench-hs256-secret-0123456789abcdef";

struct Keys(Vec<JwkKey>);

impl KeySource for Keys {
    fn hs256_secret(&mut self, _: &str) -> Option<Vec<u8>> {
        Some(SECRET.to_vec())
    }
    fn jwks(&mut self, _: &Issuer, _: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
        Ok(Some(self.0.clone()))
    }
}

struct Fixture {
    config: AuthConfig,
    keys: Keys,
    hs256: String,
    es256: String,
    rs256: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixture() -> Fixture {
    let claims = json!({"sub": "a@b.c", "uid": "u", "iss": "iss", "aud": "aud",
                        "iat": now(), "exp": now() + 3600, "scope": "read write"});
    let ec = p256::SecretKey::random(&mut rand_core::OsRng);
    let mut ec_jwk: serde_json::Value =
        serde_json::from_str(&ec.public_key().to_jwk_string()).unwrap();
    ec_jwk["kid"] = "ec".into();
    let rsa = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let rsa_jwk = json!({"kty": "RSA", "kid": "rsa",
        "n": URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be())});
    let jwks = json!({"keys": [ec_jwk, rsa_jwk]}).to_string();
    let sign = |alg, kid: Option<&str>, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, &claims, key).unwrap()
    };
    let ec_pem = ec.to_pkcs8_pem(Default::default()).unwrap();
    let rsa_pem = rsa.to_pkcs8_pem(Default::default()).unwrap();
    Fixture {
        config: serde_json::from_value(json!({"issuers": [{"iss": "iss", "audience": "aud",
            "hs256_secret": "k", "jwks": {"backends": ["b"], "path": "/j", "algorithms": ["ES256", "RS256"]}}]}))
        .unwrap(),
        keys: Keys(auth::parse_jwks(jwks.as_bytes()).unwrap()),
        hs256: sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET)),
        es256: sign(Algorithm::ES256, Some("ec"), &EncodingKey::from_ec_pem(ec_pem.as_bytes()).unwrap()),
        rs256: sign(Algorithm::RS256, Some("rsa"), &EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap()),
    }
}

#[divan::bench(args = ["HS256", "ES256", "RS256"])]
fn verify_token(bencher: Bencher, alg: &str) {
    let mut f = fixture();
    let token = match alg {
        "HS256" => f.hs256.clone(),
        "ES256" => f.es256.clone(),
        _ => f.rs256.clone(),
    };
    let t = now();
    bencher
        .bench_local(|| auth::verify(divan::black_box(&token), &f.config, &mut f.keys, t).unwrap());
}

/// What every request pays before forwarding: classify, normalise, route, rewrite,
/// sanitise, select (no token).
#[divan::bench]
fn plan_request(bencher: Bencher) {
    let gateway = Gateway::new(Config::embedded().unwrap());
    let headers = vec![
        ("host", "api.example.com"),
        ("user-agent", "bench"),
        ("accept", "application/json"),
        ("x-forwarded-for", "6.6.6.6"),
        ("authorization", "Bearer x"),
    ];
    let facts = RequestFacts {
        method: "GET",
        path: "/v1/user/profile",
        query: Some("a=1&b=2"),
        headers,
        client_ip: Some("192.0.2.1".parse().unwrap()),
        tls: true,
        geo: ClientGeo {
            country: Some("DE".into()),
            continent: Some("EU".into()),
        },
    };
    bencher.bench_local(|| gateway.plan(divan::black_box(&facts)));
}

/// An authenticated GET as the adapter would describe it.
fn authenticated_get<'a>(
    path: &'a str,
    query: Option<&'a str>,
    authorization: &'a str,
) -> RequestFacts<'a> {
    RequestFacts {
        method: "GET",
        path,
        query,
        headers: vec![
            ("host", "api.example.com"),
            ("authorization", authorization),
        ],
        client_ip: Some("192.0.2.1".parse().unwrap()),
        tls: true,
        geo: ClientGeo::default(),
    }
}

/// Where a cold ES256 check spends its time, for the report's profile of that target: the
/// bare `p256` ECDSA verification the check rests on (SHA-256 of the signing input plus the
/// double scalar multiplication), and decoding the JWK's point into a verifying key. What
/// `verify_token/ES256` costs beyond the first is base64url, JSON, key lookup and claims.
#[divan::bench(args = ["p256_verify", "key_decode"])]
fn es256_parts(bencher: Bencher, part: &str) {
    use p256::ecdsa::signature::Verifier as _;
    // Its own key and token: the shared fixture also generates an RSA key, which would
    // swamp a sampled profile of this benchmark.
    let ec = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = ec.to_pkcs8_pem(Default::default()).unwrap();
    let claims = json!({"sub": "a@b.c", "iss": "iss", "aud": "aud", "exp": now() + 3600});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature =
        p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    let point = ec.public_key().to_encoded_point(false).as_bytes().to_vec();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    match part {
        "p256_verify" => bencher.bench_local(|| {
            key.verify(divan::black_box(signing_input.as_bytes()), &signature)
                .unwrap()
        }),
        _ => bencher.bench_local(|| {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(divan::black_box(&point)).unwrap()
        }),
    }
}

/// Route planning plus HS256 verification: the edge's library work on an authenticated GET.
#[divan::bench]
fn plan_and_verify_hs256(bencher: Bencher) {
    let gateway = Gateway::new(Config::embedded().unwrap());
    let mut f = fixture();
    let auth_header = format!("Bearer {}", f.hs256);
    let facts = authenticated_get("/api/user/profile", None, &auth_header);
    let t = now();
    bencher.bench_local(|| {
        let plan = gateway.plan(divan::black_box(&facts));
        let token = auth::extract_token(Some(&auth_header), None, None);
        (
            plan,
            auth::verify(token.unwrap().unwrap(), &f.config, &mut f.keys, t).unwrap(),
        )
    });
}

/// Loading the embedded config: paid once per instance (a reused sandbox keeps it; see
/// `whole_request`), and again whenever the Config Store's text changes.
#[divan::bench]
fn config_load_embedded() -> Config {
    fastgate::config::load(divan::black_box(None::<&str>), None)
        .unwrap()
        .config
}

/// A token whose signature verified before (the edge remembers it in its cache, as Envoy's
/// jwt_authn JWT cache does): every check but the signature, plus the digest.
#[divan::bench(args = ["ES256", "RS256"])]
fn verify_token_remembered(bencher: Bencher, alg: &str) {
    struct Remembering(Keys, std::collections::HashSet<[u8; 32]>);
    impl KeySource for Remembering {
        fn hs256_secret(&mut self, name: &str) -> Option<Vec<u8>> {
            self.0.hs256_secret(name)
        }
        fn jwks(&mut self, i: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
            self.0.jwks(i, refresh)
        }
        fn signature_known_good(&mut self, digest: &[u8; 32]) -> bool {
            self.1.contains(digest)
        }
        fn remember_good_signature(&mut self, digest: &[u8; 32], _: u64) {
            self.1.insert(*digest);
        }
    }
    let f = fixture();
    let token = if alg == "ES256" { f.es256 } else { f.rs256 };
    let mut keys = Remembering(f.keys, Default::default());
    let t = now();
    auth::verify(&token, &f.config, &mut keys, t).unwrap();
    bencher
        .bench_local(|| auth::verify(divan::black_box(&token), &f.config, &mut keys, t).unwrap());
}

/// Route matching alone, against the embedded table (a template route near the end).
#[divan::bench]
fn route_match(bencher: Bencher) {
    let config = Config::embedded().unwrap();
    let headers = [("host", "api.example.com")];
    let input = fastgate::route::RouteInput {
        method: "GET",
        path: "/api/user/7c9e6679-7425-40de-944b-e07fc1f90ae7",
        host: Some("api.example.com"),
        headers: &headers,
    };
    bencher.bench_local(|| {
        fastgate::route::match_route(&config.routes, divan::black_box(&input)).unwrap()
    });
}

/// The `/v1/*` → `/api/*` rewrite alone.
#[divan::bench]
fn rewrite_v1(bencher: Bencher) {
    let config = Config::embedded().unwrap();
    let rewrite = config
        .routes
        .iter()
        .find(|r| r.id == "v1-compat")
        .and_then(|r| r.rewrite.clone())
        .unwrap();
    bencher.bench_local(|| {
        rewrite
            .apply(divan::black_box("/v1/user/profile"), Some("a=1&b=2"))
            .unwrap()
    });
}

/// The cache key of a per-user read with a query (SHA-256 over the key material).
#[divan::bench]
fn cache_key(bencher: Bencher) {
    let settings = fastgate::cache::CacheSettings::default();
    bencher.bench_local(|| {
        fastgate::cache::cache_key(
            "GET",
            divan::black_box("/api/summaries"),
            Some("page=2&utm_source=x&sort=asc"),
            &[("flags", Some("new_schema=1"))],
            Some("alice@example.com"),
            &settings,
        )
    });
}

/// The edge library's work on an authenticated, cached read once it has its config: plan
/// the route, verify the HS256 token, build the cache request (key, lookup, surrogate keys).
fn plan_verify_key(
    gateway: &Gateway,
    facts: &RequestFacts<'_>,
    auth_header: &str,
    f: &mut Fixture,
    t: u64,
) -> Option<fastgate::plan::CacheRequest> {
    let plan = gateway.plan(divan::black_box(facts));
    let token = auth::extract_token(Some(auth_header), None, None);
    let verified = auth::verify(token.unwrap().unwrap(), &f.config, &mut f.keys, t).unwrap();
    let Ok(forward) = plan.next else {
        unreachable!()
    };
    gateway.cache_request(
        &forward,
        "GET",
        |_| None,
        Some(verified.sub.as_str()),
        "new_schema=0",
    )
}

/// [`plan_verify_key`] alone, the config at hand.
#[divan::bench]
fn route_verify_hs256_cache_key(bencher: Bencher) {
    let gateway = Gateway::new(Config::embedded().unwrap());
    let mut f = fixture();
    let auth_header = format!("Bearer {}", f.hs256);
    let facts = authenticated_get("/api/summaries", Some("page=2"), &auth_header);
    let t = now();
    bencher.bench_local(|| plan_verify_key(&gateway, &facts, &auth_header, &mut f, t));
}

/// The library's whole per-request work on an authenticated cached read, config included:
/// the instance's config (compiled on the instance's first request, then kept while the
/// Config Store's text is unchanged, rechecked once a second), then [`plan_verify_key`].
#[divan::bench]
fn whole_request(bencher: Bencher) {
    let mut config = fastgate::config::InstanceCache::new();
    let compile = |c: Option<&str>, f: Option<&str>| {
        fastgate::config::load(c, f).map(|loaded| Gateway::new(loaded.config))
    };
    config
        .get_or_compile(None, None, std::time::Instant::now(), compile)
        .unwrap();
    let mut f = fixture();
    let auth_header = format!("Bearer {}", f.hs256);
    let facts = authenticated_get("/api/summaries", Some("page=2"), &auth_header);
    let t = now();
    bencher.bench_local(|| {
        let now = std::time::Instant::now();
        let gateway = match config.recent(now) {
            Some(gateway) => gateway,
            None => config
                .get_or_compile(divan::black_box(None), None, now, compile)
                .unwrap(),
        };
        plan_verify_key(&gateway, &facts, &auth_header, &mut f, t)
    });
}

/// Choosing the config with an override in the Config Store (parse and validate the
/// override, plus a flags entry).
#[divan::bench]
fn config_load_override(bencher: Bencher) {
    let mut v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
    v["version"] = "override".into();
    let text = v.to_string();
    let flags = r#"{"new_schema": {"percent": 10}}"#;
    bencher.bench_local(|| {
        fastgate::config::load(Some(divan::black_box(&text)), Some(flags)).unwrap()
    });
}
