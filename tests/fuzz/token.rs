//! Token extraction and verification (`fastgate::auth`), through the public API: an issuer
//! configured as the edge configures one (HS256 secret and an ES256 JWKS), and a key
//! source that remembers good asymmetric signatures, as the adapter's does.
//!
//! Inputs: HS256 tokens over generated headers and claims (signed per case), ES256 tokens
//! signed once at start, both mutated by edits; arbitrary text; `Authorization` and
//! `Cookie` values for the extractor.

use std::collections::HashSet;
use std::sync::OnceLock;

use fastgate::auth::{
    extract_token, parse_jwks, verify, AuthConfig, Issuer, JwkKey, JwksError, KeySource,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;
use serde_json::{json, Value};

use crate::harness::{self, apply, edits, text_char, Budget, Edit};

const NOW: u64 = 1_800_000_000;
const LEEWAY: u64 = 30;
const SECRET: &[u8] = b"fuzz-hs256-secret-of-32-bytes-ok";

/// What is built once: the config, the JWKS and a few validly signed ES256 tokens.
struct Fixture {
    config: AuthConfig,
    jwks: Vec<JwkKey>,
    es256: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        use p256::pkcs8::EncodePrivateKey;
        // A fixed key, so a failing case replays with the same signatures.
        let secret = p256::SecretKey::from_slice(&[0x5a; 32]).expect("a valid P-256 scalar");
        let pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = "k1".into();
        jwk["use"] = "sig".into();
        let jwks = parse_jwks(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap();
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let es256 = [
            json!({"sub": "a@b.c", "iss": "iss-1", "aud": "aud-1", "exp": NOW + 600}),
            json!({"sub": "x", "iss": "iss-1", "aud": ["z", "aud-1"], "exp": NOW, "nbf": NOW,
                   "scope": "read write", "roles": ["admin"], "uid": "u-1"}),
        ]
        .iter()
        .map(|claims| jsonwebtoken::encode(&header, claims, &key).unwrap())
        .collect();
        let config = serde_json::from_value(json!({
            "issuers": [{"iss": "iss-1", "audience": "aud-1", "hs256_secret": "hs",
                "jwks": {"backends": ["b"], "path": "/jwks", "algorithms": ["ES256"]}}]
        }))
        .unwrap();
        Fixture {
            config,
            jwks,
            es256,
        }
    })
}

/// The adapter's key source in miniature: the HS256 secret, the JWKS, and the remembered
/// good signatures.
struct Keys {
    jwks: Vec<JwkKey>,
    good: HashSet<[u8; 32]>,
}

impl KeySource for Keys {
    fn hs256_secret(&mut self, name: &str) -> Option<Vec<u8>> {
        (name == "hs").then(|| SECRET.to_vec())
    }
    fn jwks(&mut self, _: &Issuer, _refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
        Ok(Some(self.jwks.clone()))
    }
    fn signature_known_good(&mut self, digest: &[u8; 32]) -> bool {
        self.good.contains(digest)
    }
    fn remember_good_signature(&mut self, digest: &[u8; 32], _ttl_s: u64) {
        self.good.insert(*digest);
    }
}

fn keys() -> Keys {
    Keys {
        jwks: fixture().jwks.clone(),
        good: HashSet::new(),
    }
}

#[derive(Debug, Clone)]
enum Case {
    /// An HS256 token over these header fields and claims, then (maybe) edited.
    Hs256 {
        kid: Option<String>,
        crit: Option<Vec<String>>,
        claims: Value,
        edits: Vec<Edit>,
    },
    /// One of the fixture's ES256 tokens, verified (and so remembered), then edited.
    Es256 { seed: usize, edits: Vec<Edit> },
    /// Anything at all.
    Text(String),
    /// What the extractor is given.
    Extract {
        authorization: Option<String>,
        cookie: Option<String>,
    },
}

/// A claim: usually the first (valid) of `options`, else any of them (the edges of the
/// rules, and wrong types), or absent; so that about half the tokens are valid.
fn claim(options: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    let valid = options[0].clone();
    let value = prop_oneof![6 => Just(valid), 4 => select(options)];
    proptest::option::weighted(0.95, value)
}

fn claims() -> impl Strategy<Value = Value> {
    let sub = claim(vec![
        json!("a@b.c"),
        json!(""),
        json!(5),
        Value::Null,
        json!("é"),
    ]);
    let iss = claim(vec![
        json!("iss-1"),
        json!("iss-2"),
        json!("ISS-1"),
        json!(1),
    ]);
    let aud = claim(vec![
        json!("aud-1"),
        json!("aud-2"),
        json!(["aud-2", "aud-1"]),
        json!([]),
        json!([1, "aud-1"]),
        Value::Null,
    ]);
    let times = |base: u64| {
        vec![
            json!(base + 600),
            json!(base - LEEWAY),
            json!(base - LEEWAY - 1),
            json!(base + LEEWAY),
            json!(base + LEEWAY + 1),
            json!(base as f64 + 0.5),
            json!(base.to_string()),
            json!(-1),
            json!(1e300),
            json!(u64::MAX),
            json!(0),
        ]
    };
    let nbf = proptest::option::weighted(0.3, select(times(NOW)));
    let (exp, nbf) = (claim(times(NOW)), nbf);
    (sub, iss, aud, exp, nbf).prop_map(|(sub, iss, aud, exp, nbf)| {
        let mut c = serde_json::Map::new();
        for (name, v) in [
            ("sub", sub),
            ("iss", iss),
            ("aud", aud),
            ("exp", exp),
            ("nbf", nbf),
        ] {
            if let Some(v) = v {
                c.insert(name.into(), v);
            }
        }
        Value::Object(c)
    })
}

fn token_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => select("ABCDEFabcdefwxyz0123456789-_.=+/ ".chars().collect::<Vec<_>>()),
        1 => text_char(),
    ]
}

fn cases() -> impl Strategy<Value = Case> {
    let kid = proptest::option::weighted(
        0.2,
        select(vec![
            "k1".to_owned(),
            "../x".into(),
            String::new(),
            "a".repeat(129),
        ]),
    );
    let crit = proptest::option::weighted(0.1, select(vec![vec![], vec!["exp".to_owned()]]));
    let maybe_edits = prop_oneof![1 => Just(Vec::new()), 3 => edits(token_char(), 6)];
    let header_value = || {
        proptest::option::of(prop_oneof![
            "(?i)bearer ",
            "(?i)bearer [A-Za-z0-9._~+/=-]{0,12}( [a-z]{0,3})?",
            proptest::collection::vec(text_char(), 0..24).prop_map(|c| c.into_iter().collect()),
        ])
    };
    prop_oneof![
        6 => (kid, crit, claims(), maybe_edits).prop_map(|(kid, crit, claims, edits)| {
            Case::Hs256 { kid, crit, claims, edits }
        }),
        2 => (0..2usize, edits(token_char(), 4)).prop_map(|(seed, edits)| Case::Es256 {
            seed,
            edits,
        }),
        1 => prop_oneof![
            proptest::collection::vec(text_char(), 0..64).prop_map(|c| c.into_iter().collect()),
            "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}",
        ]
        .prop_map(Case::Text),
        1 => (header_value(), header_value()).prop_map(|(authorization, cookie)| {
            Case::Extract { authorization, cookie: cookie.map(|c| format!("a=1; session={c}")) }
        }),
    ]
}

pub fn run(budget: Budget) {
    harness::run("token", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    let config = &fixture().config;
    match case {
        Case::Hs256 {
            kid,
            crit,
            claims,
            edits,
        } => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = kid.clone();
            header.crit = crit.clone();
            let token =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
            let verdict = verify(&token, config, &mut keys(), NOW);
            let expected = header_ok(kid.as_deref(), crit.as_deref()) && claims_ok(&claims);
            prop_assert_eq!(
                verdict.is_ok(),
                expected,
                "verdict {:?} for header kid {:?} crit {:?}, claims {}",
                verdict,
                kid,
                crit,
                claims
            );
            refuses_edits(&token, &edits, &mut keys())
        }
        Case::Es256 { seed, edits } => {
            let token = &fixture().es256[seed];
            let mut keys = keys();
            let first = verify(token, config, &mut keys, NOW);
            prop_assert!(first.is_ok(), "a valid ES256 token was refused: {first:?}");
            refuses_edits(token, &edits, &mut keys)
        }
        Case::Text(text) => {
            let verdict = verify(&text, config, &mut keys(), NOW);
            prop_assert!(verdict.is_err(), "{text:?} was accepted: {verdict:?}");
            Ok(())
        }
        Case::Extract {
            authorization,
            cookie,
        } => check_extract(authorization.as_deref(), cookie.as_deref()),
    }
}

/// Any edit that changes the token gets it refused, remembered original or not.
fn refuses_edits(token: &str, edits: &[Edit], keys: &mut Keys) -> TestCaseResult {
    let edited = apply(token, edits);
    if edited == token {
        return Ok(());
    }
    let verdict = verify(&edited, &fixture().config, keys, NOW);
    prop_assert!(
        verdict.is_err(),
        "edited token accepted: {edited:?}\n(original {token:?}) -> {verdict:?}"
    );
    Ok(())
}

fn header_ok(kid: Option<&str>, crit: Option<&[String]>) -> bool {
    let safe = |k: &str| {
        (1..=128).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    crit.is_none() && kid.is_none_or(safe)
}

/// The claim rules, restated: `iss` exact, `aud` naming ours, a non-empty `sub`, and the
/// NumericDates `exp` (required) and `nbf` against now with the leeway either way.
fn claims_ok(c: &Value) -> bool {
    let numeric = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    };
    let iss = c.get("iss") == Some(&json!("iss-1"));
    let aud = match c.get("aud") {
        Some(Value::String(a)) => a == "aud-1",
        Some(Value::Array(list)) => list.contains(&json!("aud-1")),
        _ => false,
    };
    let sub = c
        .get("sub")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    let exp = c
        .get("exp")
        .and_then(numeric)
        .is_some_and(|e| NOW <= e.saturating_add(LEEWAY));
    let nbf = match c.get("nbf") {
        None => true,
        Some(v) => numeric(v).is_some_and(|n| NOW + LEEWAY >= n),
    };
    iss && aud && sub && exp && nbf
}

fn check_extract(authorization: Option<&str>, cookie: Option<&str>) -> TestCaseResult {
    let found = extract_token(authorization, cookie, Some("session"));
    let bearer = authorization.is_some_and(|a| {
        let scheme = a.trim().split(' ').next().unwrap_or("");
        scheme.eq_ignore_ascii_case("bearer")
    });
    if let Ok(Some(token)) = found {
        prop_assert!(!token.is_empty());
        if bearer {
            let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
            prop_assert!(token.bytes().all(token68), "bearer token {token:?}");
            prop_assert!(authorization.unwrap_or("").contains(token));
        }
    }
    Ok(())
}
