//! The origin's edge-signature check over real HTTP: a
//! real `fastgate-api` process with enforcement on and two keys, and requests signed here
//! through the `fastgate_wire` contract the edge signs with (its pinned test vector proves
//! those bytes; this checks the origin end to end).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{random_word, sign_up, string_field, temp_dir, Origin, PASSWORD};
use fastgate_wire::{Params, Signed as Components};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};

const KEY1: (&str, &str) = ("edge-2024", "first-shared-secret-0123456789abcdef");
const KEY2: (&str, &str) = ("edge-2025", "second-shared-secret-0123456789abcdef");
const RETIRED: (&str, &str) = ("edge-2023", "retired-shared-secret-0123456789abcd");
const REJECTED: &str = "Missing or invalid edge signature";
const PROFILE: &str = "/api/user/profile";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn identity(claims: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
}

/// What the edge adds to a forwarded request.
struct Signed {
    key: (&'static str, &'static str),
    identity: String,
    flags: String,
    created: u64,
    expires: u64,
}

impl Signed {
    fn new(claims: &Value) -> Signed {
        let now = now();
        Signed {
            key: KEY1,
            identity: identity(claims),
            flags: String::new(),
            created: now,
            expires: now + 30,
        }
    }

    fn anonymous() -> Signed {
        Self::new(&json!({}))
    }

    /// Signs `method path_and_query` without a body and returns the request with the edge's
    /// headers.
    fn request(&self, client: &Client, base: &str, method: Method, pq: &str) -> RequestBuilder {
        self.request_with_body(client, base, method, pq, None)
    }

    /// Signs `method path_and_query` with `body` as the edge does: a fresh nonce, and for a
    /// body its `Content-Digest`, covered by the signature.
    fn request_with_body(
        &self,
        client: &Client,
        base: &str,
        method: Method,
        pq: &str,
        body: Option<&[u8]>,
    ) -> RequestBuilder {
        let (path, query) = match pq.split_once('?') {
            Some((p, q)) => (p, q),
            None => (pq, ""),
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let nonce = fastgate_wire::encode_nonce(uuid::Uuid::new_v4().as_bytes());
        let digest = body.map(fastgate_wire::content_digest);
        let components = Components {
            method: method.as_str(),
            path,
            query: Some(query),
            identity: &self.identity,
            flags: &self.flags,
            request_id: &request_id,
            content_digest: digest.as_deref(),
        };
        let params = Params {
            created: self.created,
            expires: self.expires,
            nonce: &nonce,
            key_id: self.key.0,
        };
        let signed = fastgate_wire::sign(&components, self.key.1.as_bytes(), &params);
        let mut request = client
            .request(method, format!("{base}{pq}"))
            .header("fastgate-identity", &self.identity)
            .header("fastgate-flags", &self.flags)
            .header("x-request-id", request_id)
            .header("signature-input", signed.input)
            .header("signature", signed.signature);
        if let (Some(body), Some(digest)) = (body, digest) {
            request = request
                .header("content-type", "application/json")
                .header("content-digest", digest)
                .body(body.to_vec());
        }
        request
    }

    /// Signs `method path_and_query` with `json` as its body.
    fn json(
        &self,
        client: &Client,
        base: &str,
        method: Method,
        pq: &str,
        json: &Value,
    ) -> RequestBuilder {
        let body = json.to_string();
        self.request_with_body(client, base, method, pq, Some(body.as_bytes()))
    }

    /// Sends a signed GET of `path_and_query`.
    async fn get(&self, client: &Client, base: &str, pq: &str) -> Response {
        self.request(client, base, Method::GET, pq)
            .send()
            .await
            .unwrap()
    }
}

/// Signs `email` up through a signed anonymous request, as the edge forwards it; returns
/// the new user's id.
async fn signed_sign_up(client: &Client, base: &str, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"});
    let signup = Signed::anonymous().json(client, base, Method::POST, "/api/auth/signup", &body);
    string_field(signup.send().await.unwrap(), 201, "id").await
}

async fn rejected(r: Response, what: &str) {
    assert_eq!(r.status().as_u16(), 401, "{what}");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": REJECTED}),
        "{what}"
    );
}

/// The origin's own 401 when no identity (verified or bearer) is there.
async fn not_authenticated(r: Response) {
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Not authenticated"})
    );
}

fn enforced_env() -> String {
    format!("{}:{}, {}:{}", KEY1.0, KEY1.1, KEY2.0, KEY2.1)
}

/// A real origin with both test keys, and enforcement `verify` ("true" or "false").
fn start_with_keys(name: &str, dir: &std::path::Path, verify: &str) -> Origin {
    let keys = enforced_env();
    Origin::start(
        name,
        dir,
        &[
            ("FASTGATE_VERIFY_EDGE_SIGNATURE", verify),
            ("FASTGATE_IDENTITY_KEYS", &keys),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn enforced_origin_requires_the_edge_signature() {
    let dir = temp_dir("edge-sig");
    let origin = start_with_keys("origin_signed", &dir, "true");
    let base = origin.url.as_str();
    let client = Client::new();

    // (e) The exempt paths answer without a signature.
    for path in ["/health", "/ready", "/.well-known/jwks.json"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }

    // (a) Anything else without a signature is a 401, before routing, 405 or CORS.
    let preflight = client
        .request(Method::OPTIONS, format!("{base}{PROFILE}"))
        .header("origin", "http://localhost:4321")
        .header("access-control-request-method", "GET");
    for (request, what) in [
        (
            client.get(format!("{base}{PROFILE}")),
            "profile without signature",
        ),
        (client.get(format!("{base}/nope")), "unknown path"),
        (client.delete(format!("{base}/api/query")), "wrong method"),
        (preflight, "CORS preflight"),
    ] {
        rejected(request.send().await.unwrap(), what).await;
    }

    // Sign-up is public: a signed anonymous request (its body covered by the signature).
    let email = format!("edge.{}@example.com", random_word(10));
    let uid = signed_sign_up(&client, base, &email).await;
    let claims = json!({"sub": email, "uid": uid, "iss": "fastgate-origin", "exp": now() + 600, "scopes": [], "roles": ["user"]});

    // (b) A verified identity is trusted: no Authorization header at all.
    let r = Signed::new(&claims).get(&client, base, PROFILE).await;
    assert_eq!(r.status().as_u16(), 200);
    let body = r.json::<Value>().await.unwrap();
    assert_eq!(body["email"], email.as_str());

    // Signed flags are honoured; the query is covered too.
    let mut signed = Signed::new(&claims);
    signed.flags = "new_schema=1".into();
    let r = signed
        .get(&client, base, &format!("/api/user/{uid}?x=1"))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["schema"], 2);

    // An anonymous verified identity falls back to the bearer token, as FastAPI does.
    not_authenticated(Signed::anonymous().get(&client, base, PROFILE).await).await;
    let login = json!({"email": email, "password": PASSWORD});
    let login = Signed::anonymous().json(&client, base, Method::POST, "/api/auth/login", &login);
    let token = string_field(login.send().await.unwrap(), 200, "access_token").await;
    let r = Signed::anonymous()
        .request(&client, base, Method::GET, PROFILE)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A bearer token alone does not get past the check.
    let bearer_only = client.get(format!("{base}{PROFILE}")).bearer_auth(&token);
    rejected(
        bearer_only.send().await.unwrap(),
        "bearer without signature",
    )
    .await;

    // (c) A signature replayed after it expired.
    let mut old = Signed::new(&claims);
    (old.created, old.expires) = (now() - 120, now() - 90);
    rejected(old.get(&client, base, PROFILE).await, "expired signature").await;

    // (d) A tampered identity: signed for one subject, sent with another.
    let signed = Signed::new(&claims);
    let forged = identity(&json!({"sub": "someone.else@example.com", "uid": uid}));
    let mut req = signed
        .request(&client, base, Method::GET, PROFILE)
        .build()
        .unwrap();
    req.headers_mut()
        .insert("fastgate-identity", forged.parse().unwrap());
    rejected(client.execute(req).await.unwrap(), "tampered identity").await;

    // A tampered path: signed for the profile, sent to another user's record.
    let mut req = Signed::new(&claims)
        .request(&client, base, Method::GET, PROFILE)
        .build()
        .unwrap();
    req.url_mut().set_path(&format!("/api/user/{uid}"));
    rejected(client.execute(req).await.unwrap(), "tampered path").await;

    // (f) The second (rotated-in) key works; a key that is no longer listed does not.
    let mut rotated = Signed::new(&claims);
    rotated.key = KEY2;
    let r = rotated.get(&client, base, PROFILE).await;
    assert_eq!(r.status().as_u16(), 200);
    let mut retired = Signed::new(&claims);
    retired.key = RETIRED;
    rejected(retired.get(&client, base, PROFILE).await, "retired key").await;

    // The log says why, and never holds a secret.
    let log = origin.log_text();
    assert!(log.contains("edge signature rejected"), "{log}");
    assert!(log.contains("expired at"), "{log}");
    assert!(log.contains("signature does not match"), "{log}");
    assert!(log.contains("unknown keyid"), "{log}");
    for (_, secret) in [KEY1, KEY2, RETIRED] {
        assert!(!log.contains(secret), "a secret leaked into the log");
    }
}

#[test]
fn enforced_origin_without_keys_refuses_to_start() {
    let dir = temp_dir("edge-nokeys");
    let mut origin = Origin::spawn(
        "origin_nokeys",
        &dir,
        &[("FASTGATE_VERIFY_EDGE_SIGNATURE", "true")],
    );
    let status = origin
        .wait_exit(Duration::from_secs(60))
        .expect("the origin should exit");
    assert!(!status.success());
    let log = origin.log_text();
    assert!(log.contains("FASTGATE_IDENTITY_KEYS is not set"), "{log}");

    // The flag and the env switch both allow a bare run without keys.
    let mut origin = Origin::spawn_with_args(
        "origin_flag",
        &dir,
        &[("FASTGATE_VERIFY_EDGE_SIGNATURE", "true")],
        &["--no-verify-edge-signature"],
    );
    origin.wait_ready("origin_flag");
}

#[tokio::test(flavor = "multi_thread")]
async fn bare_origin_ignores_the_identity_header() {
    let dir = temp_dir("edge-bare");
    // Keys are set, but enforcement is off: nothing is verified, so nothing is trusted.
    let origin = start_with_keys("origin_bare", &dir, "false");
    let base = origin.url.as_str();
    let client = Client::new();
    let email = format!("bare.{}@example.com", random_word(10));
    let signup = client.post(format!("{base}/api/auth/signup"));
    let uid = sign_up(signup, &email, Some("Ada Lovelace")).await;

    // Even a correctly signed identity is ignored without enforcement.
    let claims = json!({"sub": email, "uid": uid});
    not_authenticated(Signed::new(&claims).get(&client, base, PROFILE).await).await;

    // The bearer token counts, and flags are read as sent (a bare dev run).
    let token = common::login(&client, base, &email, PASSWORD).await;
    let r = client
        .get(format!("{base}/api/user/{uid}"))
        .bearer_auth(&token)
        .header("fastgate-identity", identity(&claims))
        .header("fastgate-flags", "new_schema=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["schema"], 2);
}

/// Claims for the user `uid` with `email`, as the edge asserts them.
fn user_claims(email: &str, uid: &str) -> Value {
    json!({"sub": email, "uid": uid, "iss": "fastgate-origin", "exp": now() + 600, "scopes": [], "roles": ["user"]})
}

/// `request` again, byte for byte, as a replaying attacker sends it (to `base`, if given).
fn again(request: &reqwest::Request, base: Option<&str>) -> reqwest::Request {
    let mut copy = request.try_clone().expect("a buffered body");
    if let Some(base) = base {
        let port = reqwest::Url::parse(base).unwrap().port();
        copy.url_mut().set_port(port).unwrap();
    }
    copy
}

async fn ok_processed(r: Response, what: &str) {
    assert_eq!(r.status().as_u16(), 200, "{what}");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

/// Issue 14 defect 6: a signed `POST /api/process` captured once was accepted again
/// within its window, with another body. Now the signature covers the body's digest and
/// its nonce is usable once for a request that changes state.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_write_binds_its_body_and_is_used_once() {
    let dir = temp_dir("edge-replay");
    let origin = start_with_keys("origin_replay", &dir, "true");
    let base = origin.url.as_str();
    let client = Client::new();
    let email = format!("replay.{}@example.com", random_word(10));
    let uid = signed_sign_up(&client, base, &email).await;
    let signer = Signed::new(&user_claims(&email, &uid));
    let body = json!({"id": "item-1", "payload": {"a": 1}});
    let captured = signer
        .json(&client, base, Method::POST, "/api/process", &body)
        .build()
        .unwrap();

    // The captured signature with another body, or with none: refused, and neither uses
    // up the nonce of the request it was taken from.
    let mut tampered = again(&captured, None);
    *tampered.body_mut() = Some(r#"{"id":"item-1","payload":{"a":2}}"#.into());
    rejected(client.execute(tampered).await.unwrap(), "another body").await;
    let mut emptied = again(&captured, None);
    *emptied.body_mut() = None;
    rejected(client.execute(emptied).await.unwrap(), "body removed").await;

    // The request as signed is admitted once; the same bytes again are a replay.
    ok_processed(
        client.execute(again(&captured, None)).await.unwrap(),
        "original",
    )
    .await;
    rejected(
        client.execute(again(&captured, None)).await.unwrap(),
        "replay",
    )
    .await;

    // A signature that covers no body does not admit one.
    let unsigned_body = signer
        .request(&client, base, Method::POST, "/api/process")
        .json(&body);
    rejected(unsigned_body.send().await.unwrap(), "uncovered body").await;

    // A signed GET may be repeated: a read changes nothing, and the edge may send the same
    // read again itself (failover, cache revalidation).
    let read = signer
        .request(&client, base, Method::GET, PROFILE)
        .build()
        .unwrap();
    for _ in 0..2 {
        let r = client.execute(again(&read, None)).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // Every other method is remembered, even one the router refuses afterwards.
    let delete = signer
        .request(&client, base, Method::DELETE, "/api/query")
        .build()
        .unwrap();
    let first = client.execute(again(&delete, None)).await.unwrap();
    assert_eq!(first.status().as_u16(), 405);
    rejected(client.execute(delete).await.unwrap(), "replayed DELETE").await;

    let log = origin.log_text();
    for reason in [
        "content-digest does not match the body received",
        "the signature covers content-digest but the request has no body",
        "already used (a replay)",
        "the request has a body its signature does not cover",
    ] {
        assert!(log.contains(reason), "{reason}: {log}");
    }
    drop(origin);
    let _ = std::fs::remove_dir_all(dir);
}

/// Two origin processes on one database: a write admitted by either is a replay at both.
async fn origins_sharing_a_database_refuse_replays(database_url: Option<&str>) {
    let dir = temp_dir("edge-shared");
    let keys = enforced_env();
    let mut env = vec![
        ("FASTGATE_VERIFY_EDGE_SIGNATURE", "true"),
        ("FASTGATE_IDENTITY_KEYS", keys.as_str()),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
    }
    let mut origins = [
        Origin::spawn("origin_one", &dir, &env),
        Origin::spawn("origin_two", &dir, &env),
    ];
    for (origin, name) in origins.iter_mut().zip(["origin_one", "origin_two"]) {
        origin.wait_ready(name);
    }
    let client = Client::new();
    let (one, two) = (origins[0].url.as_str(), origins[1].url.as_str());
    let email = format!("shared.{}@example.com", random_word(10));
    let uid = signed_sign_up(&client, one, &email).await;
    let signer = Signed::new(&user_claims(&email, &uid));
    for (first, second) in [(one, two), (two, one)] {
        let body = json!({"id": random_word(8), "payload": {}});
        let captured = signer
            .json(&client, first, Method::POST, "/api/process", &body)
            .build()
            .unwrap();
        ok_processed(client.execute(again(&captured, None)).await.unwrap(), first).await;
        let replay = again(&captured, Some(second));
        rejected(
            client.execute(replay).await.unwrap(),
            "replay at the other origin",
        )
        .await;
        rejected(
            client.execute(again(&captured, None)).await.unwrap(),
            "replay at the same origin",
        )
        .await;
    }
    drop(origins);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn origins_sharing_sqlite_refuse_replays() {
    origins_sharing_a_database_refuse_replays(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn origins_sharing_postgres_refuse_replays() {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => origins_sharing_a_database_refuse_replays(Some(&url)).await,
        None => {
            assert!(
                std::env::var("FASTGATE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FASTGATE_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
            );
            eprintln!("TEST_DATABASE_URL not set: PostgreSQL replay test not run");
        }
    }
}
