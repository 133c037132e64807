//! End-to-end: token checks at the edge and the signed identity the origin enforces.

mod support;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fastgate::http::unix_now;
use serde_json::{json, Value};
use support::{
    client_from, config_with, hs256, jwks_document, three_origins, EcKey, EchoServer, JwksServer,
    StackBuilder,
};
use xtask::stack::{Stack, StackSpec, Upstream};

const TEST_ISS: &str = "test-issuer";

/// Adds a test issuer whose JWKS comes from `jwks_test`, and two echo-backed routes:
/// `/api/whoami` (any valid token) and `/api/admin` (needs the `admin` scope).
fn auth_config(jwks: Value) -> String {
    config_with(|v| {
        v["backends"]["jwks_test"] = json!({"region": "test"});
        v["backends"]["echo"] = json!({"region": "test"});
        v["auth"]["issuers"].as_array_mut().unwrap().push(json!({
            "iss": TEST_ISS, "audience": "fastgate",
            "jwks": {"backends": ["jwks_test"], "path": "/.well-known/jwks.json", "algorithms": ["ES256"]}
        }));
        v["auth"]["jwks"] = jwks;
        let routes = v["routes"].as_array_mut().unwrap();
        let api = routes.iter().position(|r| r["id"] == "api").unwrap();
        routes.insert(
            api,
            json!({"id": "admin", "path": {"exact": "/api/admin"},
            "backends": ["echo"], "auth": {"policy": "required", "scopes": ["admin"]}}),
        );
        routes.insert(
            api,
            json!({"id": "whoami", "path": {"exact": "/api/whoami"},
            "backends": ["echo"]}),
        );
    })
}

struct AuthStack {
    stack: Stack,
    spec: StackSpec,
    echo: EchoServer,
    jwks: JwksServer,
}

fn start(keys: &[&EcKey], jwks_cache: Value, origin_env: Vec<(&str, &str)>) -> AuthStack {
    let jwks = JwksServer::start(jwks_document(keys));
    let (stack, spec, echo) = start_with_jwks(jwks.upstream(), jwks_cache, origin_env);
    AuthStack {
        stack,
        spec,
        echo,
        jwks,
    }
}

/// A stack whose test issuer's JWKS comes from `jwks`.
fn start_with_jwks(
    jwks: Upstream,
    jwks_cache: Value,
    origin_env: Vec<(&str, &str)>,
) -> (Stack, StackSpec, EchoServer) {
    let echo = EchoServer::start();
    let mut backends = three_origins();
    backends.push(("jwks_test", jwks));
    backends.push(("echo", echo.upstream()));
    let (stack, spec) = StackBuilder::new(backends)
        .config_override(auth_config(jwks_cache))
        .origin_env(origin_env)
        .start_with_spec();
    (stack, spec, echo)
}

fn claims(iss: &str) -> Value {
    json!({"sub": "carol@example.com", "uid": "7b0c1f4e-0000-4000-8000-000000000001",
           "iss": iss, "aud": "fastgate", "iat": unix_now(), "exp": unix_now() + 600})
}

fn get(s: &AuthStack, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut req = client_from(1).get(format!("{}{path}", s.stack.edge_url()));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().unwrap()
}

fn www_authenticate(resp: &reqwest::blocking::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[test]
fn origin_issued_tokens_pass_and_the_origin_trusts_only_the_signed_identity() {
    let s = start(
        &[],
        json!({}),
        vec![("JWT_ALGORITHM", "ES256"), ("JWT_ACCEPT", "HS256,ES256")],
    );
    let client = client_from(1);
    let base = s.stack.edge_url();
    let signup = client
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"email": "dora@example.com", "password": "correct horse", "full_name": "Dora E"}))
        .send()
        .unwrap();
    assert_eq!(signup.status(), 201);
    let uid = signup.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login: Value = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": "dora@example.com", "password": "correct horse"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let es256 = login["access_token"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&es256).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);

    // ES256 (keys from the origin's JWKS) and HS256 (key from the Secret Store) both pass.
    let resp = get(&s, "/api/user/profile", Some(&es256));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["email"], "dora@example.com");
    let mut c = claims("fastgate-origin");
    c["sub"] = "dora@example.com".into();
    c["uid"] = uid.clone().into();
    let hs = hs256(&s.spec.secrets.jwt_hs256_key, &c);
    let resp = get(&s, "/api/user/profile", Some(&hs));
    assert_eq!(resp.status(), 200);

    // What the origin receives: the verified identity, signed.
    let seen: Value = get(&s, "/api/whoami", Some(&es256)).json().unwrap();
    let identity = seen["headers"]["fastgate-identity"][0].as_str().unwrap();
    let identity: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(identity)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(identity["sub"], "dora@example.com");
    assert_eq!(identity["uid"], uid.as_str());
    assert_eq!(identity["iss"], "fastgate-origin");
    assert!(seen["headers"]["signature-input"][0]
        .as_str()
        .unwrap()
        .contains(&format!("keyid=\"{}\"", s.spec.secrets.identity_key_id)));

    // No token: RFC 6750 challenge without an error code, FastAPI's detail.
    let resp = get(&s, "/api/user/profile", None);
    assert_eq!(resp.status(), 401);
    assert_eq!(www_authenticate(&resp), r#"Bearer realm="fastgate""#);
    assert_eq!(resp.json::<Value>().unwrap()["detail"], "Not authenticated");

    // Bypassing the edge: the origin refuses even a valid token without the signature.
    let direct = format!(
        "http://{}/api/user/profile",
        s.stack.origin_addr("origin_us").unwrap()
    );
    let resp = client
        .get(direct)
        .header("authorization", format!("Bearer {es256}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[test]
fn attacks_die_at_the_edge_and_never_reach_the_origin() {
    let key = EcKey::generate("k1");
    let s = start(&[&key], json!({}), vec![]);
    let secret = s.spec.secrets.jwt_hs256_key.clone();
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let valid = key.sign(&claims(TEST_ISS));
    let (h, p, sig) = {
        let mut parts = valid.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let with = |k: &str, v: Value| {
        let mut c = claims(TEST_ISS);
        c[k] = v;
        key.sign(&c)
    };
    let mut tampered_sig = sig.clone();
    tampered_sig.replace_range(0..2, if sig.starts_with("AA") { "BB" } else { "AA" });
    let mut admin = claims(TEST_ISS);
    admin["sub"] = "admin@example.com".into();
    let mut crit_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    crit_header.crit = Some(vec!["exp".into()]);
    let attacks: Vec<(&str, String)> = vec![
        ("alg none", format!("{}.{p}.", b64(r#"{"alg":"none"}"#))),
        (
            "HS256 with the ES256 public key as secret",
            hs256(&key.jwk.to_string(), &claims("fastgate-origin")),
        ),
        (
            "HS256 with the public key, issuer without HS256",
            hs256(&key.jwk.to_string(), &claims(TEST_ISS)),
        ),
        ("expired", with("exp", json!(unix_now() - 120))),
        ("nbf beyond leeway", with("nbf", json!(unix_now() + 120))),
        ("wrong iss", with("iss", json!("evil-issuer"))),
        ("wrong aud", with("aud", json!("someone-else"))),
        (
            "tampered payload",
            format!("{h}.{}.{sig}", b64(&admin.to_string())),
        ),
        ("tampered signature", format!("{h}.{p}.{tampered_sig}")),
        ("kid with path characters", {
            let evil = EcKey::generate("../../../etc/passwd");
            evil.sign(&claims(TEST_ISS))
        }),
        ("9 KiB token", format!("{h}.{}.{sig}", "A".repeat(9 * 1024))),
        ("non-base64 segments", "a$b.c%d.e!f".to_owned()),
        ("header not JSON", format!("{}.{p}.{sig}", b64("not json"))),
        (
            "unknown crit",
            jsonwebtoken::encode(
                &crit_header,
                &claims("fastgate-origin"),
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap(),
        ),
    ];
    for (name, token) in &attacks {
        let resp = get(&s, "/api/whoami", Some(token));
        assert_eq!(resp.status(), 401, "{name}");
        let challenge = www_authenticate(&resp);
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let body = resp.text().unwrap();
        assert!(!body.contains(token.as_str()), "{name}: token echoed");
        assert!(
            body.contains(r#""detail":"Invalid token""#),
            "{name}: {body}"
        );
    }
    assert_eq!(
        s.echo.count("GET", "/api/whoami"),
        0,
        "an attack reached the origin"
    );

    // The genuine token passes; a missing scope is a 403, not a 401.
    assert_eq!(get(&s, "/api/whoami", Some(&valid)).status(), 200);
    assert_eq!(s.echo.count("GET", "/api/whoami"), 1);
    let resp = get(&s, "/api/admin", Some(&valid));
    assert_eq!(resp.status(), 403);
    assert!(www_authenticate(&resp).contains(r#"error="insufficient_scope", scope="admin""#));
    let scoped = with("scope", json!("read admin"));
    assert_eq!(get(&s, "/api/admin", Some(&scoped)).status(), 200);
}

#[test]
fn unknown_kids_cost_at_most_one_jwks_fetch_per_interval() {
    let key = EcKey::generate("k1");
    let s = start(&[&key], json!({"refresh_interval_s": 30}), vec![]);
    assert_eq!(
        get(&s, "/api/whoami", Some(&key.sign(&claims(TEST_ISS)))).status(),
        200
    );
    assert_eq!(s.jwks.fetch_count(), 1);
    for i in 0..100 {
        let stranger = EcKey::generate(&format!("unknown-{i}"));
        let resp = get(&s, "/api/whoami", Some(&stranger.sign(&claims(TEST_ISS))));
        assert_eq!(resp.status(), 401);
        assert!(www_authenticate(&resp).contains("unknown key id"));
    }
    assert_eq!(
        s.jwks.fetch_count(),
        2,
        "one refresh in the interval, then the negative answer is cached"
    );
}

#[test]
fn rotated_keys_pass_after_one_refresh_and_old_keys_keep_passing() {
    let old = EcKey::generate("2026-10");
    let new = EcKey::generate("2026-11");
    let s = start(&[&old], json!({}), vec![]);
    assert_eq!(
        get(&s, "/api/whoami", Some(&old.sign(&claims(TEST_ISS)))).status(),
        200
    );
    s.jwks.set(jwks_document(&[&old, &new]));
    assert_eq!(
        get(&s, "/api/whoami", Some(&new.sign(&claims(TEST_ISS)))).status(),
        200
    );
    assert_eq!(
        get(&s, "/api/whoami", Some(&old.sign(&claims(TEST_ISS)))).status(),
        200
    );
    assert_eq!(s.jwks.fetch_count(), 2);
}

#[test]
fn an_unreachable_jwks_uses_the_last_good_set_then_fails_closed() {
    let key = EcKey::generate("k1");
    let mut s = start(
        &[&key],
        json!({"ttl_s": 1, "refresh_interval_s": 1, "max_stale_s": 3}),
        vec![],
    );
    let token = key.sign(&claims(TEST_ISS));
    assert_eq!(get(&s, "/api/whoami", Some(&token)).status(), 200);
    s.jwks.stop();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        get(&s, "/api/whoami", Some(&token)).status(),
        200,
        "stale set in use"
    );
    std::thread::sleep(Duration::from_millis(3500));
    let resp = get(&s, "/api/whoami", Some(&token));
    assert_eq!(resp.status(), 503, "past the hard maximum age");
    let p: Value = resp.json().unwrap();
    assert_eq!(p["status"], 503);
}

/// `n` different tokens from `key` (a remembered signature never stands in for another).
fn tokens(key: &EcKey, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut c = claims(TEST_ISS);
            c["jti"] = format!("{tag}-{i}").into();
            key.sign(&c)
        })
        .collect()
}

/// Sends one `/api/whoami` per token, all at once; each answer's status and latency.
fn burst(stack: &Stack, tokens: &[String]) -> Vec<(u16, Duration)> {
    let url = format!("{}/api/whoami", stack.edge_url());
    let start = Barrier::new(tokens.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = tokens
            .iter()
            .map(|token| {
                let (url, start) = (&url, &start);
                s.spawn(move || {
                    let client = client_from(1);
                    start.wait();
                    let began = Instant::now();
                    let resp = client.get(url).bearer_auth(token).send().unwrap();
                    (resp.status().as_u16(), began.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Issue 14: a burst on a cold cache, and a burst of a newly rotated `kid`, each cost one
/// JWKS fetch (a Core Cache transaction: the request holding the obligation fetches, the
/// others wait for its insert). Before, the cold burst fetched once per request, and the
/// rotated burst's requests that lost the race to the refresh marker answered 401.
#[test]
fn jwks_fetches_are_single_flight_on_a_cold_cache_and_on_an_unknown_kid() {
    let k1 = EcKey::generate("k1");
    let k2 = EcKey::generate("k2");
    let jwks = JwksServer::start_slow(jwks_document(&[&k1]), Duration::from_millis(600));
    let (stack, _spec, _echo) =
        start_with_jwks(jwks.upstream(), json!({"refresh_interval_s": 30}), vec![]);
    let cold = burst(&stack, &tokens(&k1, 10, "cold"));
    assert!(cold.iter().all(|(status, _)| *status == 200), "{cold:?}");
    assert_eq!(jwks.fetch_count(), 1, "one fetch for the cold burst");

    jwks.set(jwks_document(&[&k1, &k2]));
    let rotated = burst(&stack, &tokens(&k2, 10, "rotated"));
    assert!(
        rotated.iter().all(|(status, _)| *status == 200),
        "{rotated:?}"
    );
    assert_eq!(jwks.fetch_count(), 2, "one refresh for the new kid");
}

/// Issue 14: a stale JWKS answers at once while the one request the cache obliges
/// refreshes it. Before, every request on a stale set fetched it again, synchronously.
#[test]
fn a_stale_jwks_answers_at_once_while_one_request_refreshes_it() {
    let key = EcKey::generate("k1");
    let slow = Duration::from_millis(2000);
    let jwks = JwksServer::start_slow(jwks_document(&[&key]), slow);
    let (stack, _spec, _echo) = start_with_jwks(
        jwks.upstream(),
        json!({"ttl_s": 1, "max_stale_s": 60}),
        vec![],
    );
    let warm = burst(&stack, &tokens(&key, 1, "warm"));
    assert_eq!(warm[0].0, 200);
    std::thread::sleep(Duration::from_millis(1500));
    let stale = burst(&stack, &tokens(&key, 8, "stale"));
    assert!(stale.iter().all(|(status, _)| *status == 200), "{stale:?}");
    assert_eq!(jwks.fetch_count(), 2, "one refresh: {stale:?}");
    let quick = stale.iter().filter(|(_, took)| *took < slow / 2).count();
    assert!(quick >= 7, "only the refreshing request waits: {stale:?}");
}

/// Defect 10: a token whose key was removed from the JWKS kept passing for up to twice
/// `ttl_s`, because its remembered signature lived `ttl_s` from its last check. Now the
/// memory ends when the cached set that vouched for it goes stale, and the refreshed set
/// decides.
#[test]
fn a_removed_key_stops_counting_when_the_set_that_listed_it_goes_stale() {
    let key = EcKey::generate("k1");
    let successor = EcKey::generate("k2");
    let s = start(
        &[&key],
        json!({"ttl_s": 4, "refresh_interval_s": 1, "max_stale_s": 60, "verified_ttl_s": 300}),
        vec![],
    );
    let first = tokens(&key, 1, "first");
    assert_eq!(get(&s, "/api/whoami", Some(&first[0])).status(), 200);
    let fetched_at = Instant::now();
    // Checked 2.5 s into the set's 4 s: remembered for what is left of it (1 s), not 4 s.
    std::thread::sleep(Duration::from_millis(2500));
    let late = tokens(&key, 1, "late");
    assert_eq!(get(&s, "/api/whoami", Some(&late[0])).status(), 200);
    assert_eq!(get(&s, "/api/whoami", Some(&late[0])).status(), 200);
    s.jwks.set(jwks_document(&[&successor]));
    // Past the set's TTL (and long before 2.5 s + 4 s): the refreshed set lacks the key.
    std::thread::sleep(Duration::from_millis(5200).saturating_sub(fetched_at.elapsed()));
    let resp = get(&s, "/api/whoami", Some(&late[0]));
    assert_eq!(resp.status(), 401, "the removed key still counted");
    assert!(www_authenticate(&resp).contains("unknown key id"));
    assert!(
        fetched_at.elapsed() < Duration::from_millis(6300),
        "too slow to tell"
    );
    assert_eq!(get(&s, "/api/whoami", Some(&first[0])).status(), 401);
    assert_eq!(
        get(&s, "/api/whoami", Some(&successor.sign(&claims(TEST_ISS)))).status(),
        200
    );
}
