//! The origin's edge-signature check over real HTTP: a
//! real `fastgate-api` process with enforcement on and two keys, and requests signed here
//! through the `fastgate_wire` contract the edge signs with (its pinned test vector proves
//! those bytes; this checks the origin end to end).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{random_word, sign_up, temp_dir, Origin, PASSWORD};
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

    /// Signs `method path_and_query` and returns the request with the edge's headers.
    fn request(&self, client: &Client, base: &str, method: Method, pq: &str) -> RequestBuilder {
        let (path, query) = match pq.split_once('?') {
            Some((p, q)) => (p, q),
            None => (pq, ""),
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let components = Components {
            method: method.as_str(),
            path,
            query: Some(query),
            identity: &self.identity,
            flags: &self.flags,
            request_id: &request_id,
        };
        let params = Params {
            created: self.created,
            expires: self.expires,
            key_id: self.key.0,
        };
        let signed = fastgate_wire::sign(&components, self.key.1.as_bytes(), &params);
        client
            .request(method, format!("{base}{pq}"))
            .header("fastgate-identity", &self.identity)
            .header("fastgate-flags", &self.flags)
            .header("x-request-id", request_id)
            .header("signature-input", signed.input)
            .header("signature", signed.signature)
    }

    /// Sends a signed GET of `path_and_query`.
    async fn get(&self, client: &Client, base: &str, pq: &str) -> Response {
        self.request(client, base, Method::GET, pq)
            .send()
            .await
            .unwrap()
    }
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

    // Sign-up is public: a signed anonymous request.
    let email = format!("edge.{}@example.com", random_word(10));
    let signup = Signed::anonymous().request(&client, base, Method::POST, "/api/auth/signup");
    let uid = sign_up(signup, &email, Some("Ada Lovelace")).await;
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
    let login = Signed::anonymous().request(&client, base, Method::POST, "/api/auth/login");
    let token = common::log_in(login, &email, PASSWORD).await;
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
