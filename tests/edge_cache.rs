//! End-to-end: the edge cache (RFC 9111 on the Core Cache API) through Viceroy.
//!
//! Two kinds of origin: the real `fastgate-api` processes for per-user isolation, the 80/20
//! hit ratio and read-after-write (counted from the origins' own request logs), and a small
//! scripted origin ([`TestOrigin`]) whose headers and delays the cache-mechanics tests choose.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use support::{client_from, config_with, header, FixtureServer, StackBuilder};
use xtask::stack::Upstream;

// ---------------------------------------------------------------------------------------------
// A scripted origin
// ---------------------------------------------------------------------------------------------

/// An origin whose answers the tests script by path:
/// - `/t/slow/*`: waits 400 ms, then `max-age=60` (collapsing);
/// - `/t/short/*`, `/u/short/*`: `max-age=1` with an `ETag`, answering a matching
///   `If-None-Match` with 304 (revalidation);
/// - `/t/cookie`, `/t/private`, `/t/nostore`: `max-age=60` plus `Set-Cookie`, or
///   `private`, or `no-store` alone (never stored);
/// - anything else: `max-age=60`.
///
/// Every body carries a serial number, so a test can tell a cached answer from a new one.
struct TestOrigin {
    server: FixtureServer,
    /// `METHOD path [if-none-match]` of every request received.
    received: Arc<Mutex<Vec<String>>>,
}

impl TestOrigin {
    fn start() -> TestOrigin {
        let received = Arc::new(Mutex::new(Vec::new()));
        let serial = Arc::new(AtomicUsize::new(0));
        let seen = received.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let seen = seen.clone();
            let serial = serial.clone();
            async move { scripted(uri, headers, &seen, &serial).await }
        });
        TestOrigin {
            server: FixtureServer::start(2, app),
            received,
        }
    }

    fn upstream(&self) -> Upstream {
        self.server.upstream()
    }

    /// Requests received for exactly `path`.
    fn count(&self, path: &str) -> usize {
        self.lines(path).len()
    }

    fn lines(&self, path: &str) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some(path))
            .cloned()
            .collect()
    }

    fn stop(&mut self) {
        self.server.stop();
    }
}

async fn scripted(
    uri: Uri,
    headers: HeaderMap,
    seen: &Mutex<Vec<String>>,
    serial: &AtomicUsize,
) -> Response {
    let path = uri.path().to_owned();
    let inm = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    seen.lock().unwrap().push(format!("GET {path} {inm}"));
    let n = serial.fetch_add(1, Ordering::SeqCst);
    let etag = format!("\"{}\"", path.replace('/', "_"));
    let mut cache_control = "max-age=60";
    let mut extra: Option<(&str, &str)> = None;
    if path.starts_with("/t/slow/") {
        tokio::time::sleep(Duration::from_millis(400)).await;
    } else if path.starts_with("/t/short/") || path.starts_with("/u/short/") {
        cache_control = "max-age=1";
        if inm == etag {
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            resp.headers_mut()
                .insert("etag", HeaderValue::from_str(&etag).unwrap());
            resp.headers_mut()
                .insert("cache-control", HeaderValue::from_static("max-age=1"));
            return resp;
        }
    } else if path == "/t/cookie" {
        extra = Some(("set-cookie", "session=abc; Path=/"));
    } else if path == "/t/private" {
        cache_control = "private, max-age=60";
    } else if path == "/t/nostore" {
        cache_control = "no-store";
    }
    let body = json!({ "path": path, "serial": n }).to_string();
    let mut resp = ([("content-type", "application/json")], body).into_response();
    let h = resp.headers_mut();
    h.insert("cache-control", HeaderValue::from_static(cache_control));
    h.insert("etag", HeaderValue::from_str(&etag).unwrap());
    if let Some((name, value)) = extra {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// The embedded config plus two public cached routes in front: `/t/` with a 30 s
/// stale-while-revalidate window, `/u/` with only a 60 s stale-if-error window.
fn scripted_config() -> String {
    config_with(|v| {
        let routes = v["routes"].as_array_mut().unwrap();
        routes.insert(
            0,
            json!({"id": "t", "methods": ["GET", "HEAD"], "path": {"prefix": "/t/"},
                   "auth": {"policy": "public"},
                   "cache": {"mode": "public", "stale_while_revalidate_s": 30,
                             "surrogate_keys": ["t"]}}),
        );
        routes.insert(
            1,
            json!({"id": "u", "methods": ["GET", "HEAD"], "path": {"prefix": "/u/"},
                   "auth": {"policy": "public"},
                   "cache": {"mode": "public", "stale_if_error_s": 60}}),
        );
    })
}

fn scripted_stack(origin: &TestOrigin) -> xtask::stack::Stack {
    let backends = vec![
        ("origin_us", origin.upstream()),
        ("origin_eu", origin.upstream()),
        ("origin_ap", origin.upstream()),
    ];
    StackBuilder::new(backends)
        .config_override(scripted_config())
        .start()
}

fn get(client: &reqwest::blocking::Client, url: String) -> (u16, String, Value) {
    let resp = client.get(url).send().unwrap();
    let status = resp.status().as_u16();
    let cache_status = header(&resp, "cache-status");
    let body = resp.json::<Value>().unwrap_or(Value::Null);
    (status, cache_status, body)
}

// ---------------------------------------------------------------------------------------------
// Cache mechanics, on the scripted origin
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_misses_collapse_into_one_origin_request() {
    let origin = TestOrigin::start();
    let stack = scripted_stack(&origin);
    let url = format!("{}/t/slow/collapse", stack.edge_url());
    let start = Arc::new(std::sync::Barrier::new(20));
    let answers: Vec<(u16, String, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (url, start) = (url.clone(), start.clone());
                s.spawn(move || {
                    let client = client_from(1);
                    start.wait();
                    get(&client, url)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(origin.count("/t/slow/collapse"), 1, "{answers:?}");
    let serials: BTreeSet<String> = answers.iter().map(|a| a.2["serial"].to_string()).collect();
    assert_eq!(
        serials.len(),
        1,
        "every caller got the one fetch: {answers:?}"
    );
    assert!(answers.iter().all(|a| a.0 == 200));
    let stored = answers
        .iter()
        .filter(|a| a.1.contains("fwd=miss") && a.1.contains("stored"))
        .count();
    assert_eq!(
        stored, 1,
        "exactly one request filled the entry: {answers:?}"
    );
    assert!(
        answers.iter().filter(|a| a.1.contains("; hit")).count() == 19,
        "{answers:?}"
    );
}

#[test]
fn stale_while_revalidate_answers_from_cache_then_revalidates_conditionally() {
    let origin = TestOrigin::start();
    let stack = scripted_stack(&origin);
    let client = client_from(1);
    let url = format!("{}/t/short/swr", stack.edge_url());
    let (status, cs, first) = get(&client, url.clone());
    assert_eq!(status, 200);
    assert!(
        cs.starts_with("fastgate; fwd=miss") && cs.contains("stored"),
        "{cs}"
    );
    let resp = client.get(url.clone()).send().unwrap();
    let cs = header(&resp, "cache-status");
    assert!(cs.starts_with("fastgate; hit"), "{cs}");
    assert!(header(&resp, "age").parse::<u64>().unwrap() <= 1);
    assert_eq!(resp.json::<Value>().unwrap(), first);
    std::thread::sleep(Duration::from_millis(2200));
    // Stale (max-age=1) but inside the 30 s window: answered at once from the cache...
    let started = Instant::now();
    let resp = client.get(url.clone()).send().unwrap();
    let stale_latency = started.elapsed();
    let (status, cs) = (resp.status().as_u16(), header(&resp, "cache-status"));
    // `Age` counts from the origin's answer: stored ~2.2 s ago.
    let age: u64 = header(&resp, "age").parse().unwrap();
    assert!((2..=4).contains(&age), "age {age}");
    let stale: Value = resp.json().unwrap();
    assert_eq!(status, 200);
    assert!(cs.contains("hit") && cs.contains("fwd=stale"), "{cs}");
    assert_eq!(stale, first, "the stale copy is what was served");
    // ... and then refreshed in the background with the stored ETag: a 304.
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.count("/t/short/swr") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = origin.lines("/t/short/swr");
    assert_eq!(lines.len(), 2, "one background revalidation: {lines:?}");
    assert!(
        lines[1].ends_with("\"_t_short_swr\""),
        "conditional: {lines:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let (_, cs, fresh) = get(&client, url);
    assert!(
        cs.starts_with("fastgate; hit"),
        "refreshed entry is fresh again: {cs}"
    );
    assert_eq!(fresh, first, "a 304 keeps the stored body");
    assert!(
        stale_latency < Duration::from_millis(1500),
        "{stale_latency:?}"
    );
    assert!(stack.edge_log().contains("\"event\":\"revalidate\""));
}

#[test]
fn stale_if_error_serves_the_copy_when_every_origin_is_down() {
    let mut origin = TestOrigin::start();
    let stack = scripted_stack(&origin);
    let client = client_from(1);
    let cached = format!("{}/u/short/sie", stack.edge_url());
    let (status, cs, first) = get(&client, cached.clone());
    assert_eq!(status, 200, "{cs}");
    assert!(cs.contains("stored"), "{cs}");
    origin.stop();
    std::thread::sleep(Duration::from_millis(2200));
    let (status, cs, body) = get(&client, cached);
    assert_eq!(status, 200, "{cs}");
    assert!(cs.contains("fwd=stale"), "{cs}");
    assert_eq!(body, first);
    let resp = client
        .get(format!("{}/u/short/never-cached", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(header(&resp, "content-type"), "application/problem+json");
    assert!(header(&resp, "cache-status").starts_with("fastgate; fwd=miss"));
    assert_eq!(header(&resp, "retry-after"), "5");
    let problem: Value = resp.json().unwrap();
    assert_eq!(problem["status"], 503);
}

#[test]
fn private_no_store_and_set_cookie_are_never_served_from_cache() {
    let origin = TestOrigin::start();
    let stack = scripted_stack(&origin);
    let client = client_from(1);
    for path in ["/t/cookie", "/t/private", "/t/nostore"] {
        let mut serials = BTreeSet::new();
        for _ in 0..3 {
            let (status, cs, body) = get(&client, format!("{}{path}", stack.edge_url()));
            assert_eq!(status, 200);
            assert!(
                !cs.contains("hit") && !cs.contains("stored"),
                "{path}: {cs}"
            );
            serials.insert(body["serial"].to_string());
        }
        assert_eq!(
            origin.count(path),
            3,
            "{path} reached the origin every time"
        );
        assert_eq!(serials.len(), 3, "{path}: every answer was a new one");
    }
    // The control: the same origin's cacheable answer is stored and reused.
    for _ in 0..3 {
        get(&client, format!("{}/t/ok", stack.edge_url()));
    }
    assert_eq!(origin.count("/t/ok"), 1);
    // Routes without a cache policy say so too: `Cache-Status` is on every response.
    let resp = client
        .get(format!("{}/health", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(header(&resp, "cache-status"), "fastgate; fwd=bypass");
    let resp = client
        .get(format!("{}/nowhere", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(header(&resp, "cache-status"), "fastgate; fwd=bypass");
}

// ---------------------------------------------------------------------------------------------
// The real origin: isolation, hit ratio, read-after-write
// ---------------------------------------------------------------------------------------------

struct User {
    email: String,
    id: String,
    token: String,
}

/// The embedded config without the login rate limit (twenty sign-ins from one address).
/// The shipped config, with every rate limit raised: these tests measure the cache, and
/// sign up many users from one address and read at full speed (the config check requires
/// the expensive routes to keep a limit, so they are raised rather than removed).
fn real_origin_config() -> String {
    config_with(|v| {
        for route in v["routes"].as_array_mut().unwrap() {
            if route["rate_limit"].is_object() {
                route["rate_limit"]["limit"] = 100_000.into();
            }
        }
    })
}

fn real_stack() -> xtask::stack::Stack {
    let backends = vec![
        ("origin_us", Upstream::Origin { port: 0 }),
        ("origin_eu", Upstream::Origin { port: 0 }),
        ("origin_ap", Upstream::Origin { port: 0 }),
    ];
    StackBuilder::new(backends)
        .config_override(real_origin_config())
        .origin_env([("RUST_LOG", "info")])
        .start()
}

fn sign_up(client: &reqwest::blocking::Client, edge: &str, n: usize) -> User {
    let email = format!("cache-user-{n}-{}@example.com", fastgate::http::unix_now());
    let signup = client
        .post(format!("{edge}/api/auth/signup"))
        .json(&json!({"email": email, "password": "correct-horse-1", "full_name": format!("User {n}")}))
        .send()
        .unwrap();
    assert_eq!(signup.status().as_u16(), 201);
    let id = signup.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login: Value = client
        .post(format!("{edge}/api/auth/login"))
        .json(&json!({"email": email, "password": "correct-horse-1"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    User { email, id, token }
}

fn authed_get(
    client: &reqwest::blocking::Client,
    url: String,
    user: &User,
) -> (u16, String, Value) {
    let resp = client.get(url).bearer_auth(&user.token).send().unwrap();
    let status = resp.status().as_u16();
    let cs = header(&resp, "cache-status");
    (status, cs, resp.json().unwrap_or(Value::Null))
}

fn upload(client: &reqwest::blocking::Client, edge: &str, user: &User, text: &str) -> String {
    let resp = client
        .post(format!("{edge}/api/uploads"))
        .bearer_auth(&user.token)
        .json(&json!({"content": text}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    resp.json::<Value>().unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn summary_keys(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// GETs the origins logged for paths under `prefix`, across all three.
fn origin_reads(stack: &xtask::stack::Stack, prefix: &str) -> usize {
    ["origin_us", "origin_eu", "origin_ap"]
        .iter()
        .flat_map(|name| {
            stack
                .origin_log(name)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .filter(|l| l["fields"]["message"] == "request")
        .filter(|l| l["span"]["method"] == "GET")
        .filter(|l| {
            l["span"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(prefix))
        })
        .count()
}

/// Waits until the user's summaries, read through the edge, list `key`.
fn wait_for_summary(client: &reqwest::blocking::Client, edge: &str, user: &User, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, list) = authed_get(client, format!("{edge}/api/summaries"), user);
        assert_eq!(status, 200);
        if summary_keys(&list).contains(key) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the summary of {key} never appeared through the edge: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn per_user_caching_isolates_users_reaches_the_origin_rarely_and_reads_its_writes() {
    let stack = real_stack();
    let edge = stack.edge_url();
    let client = client_from(1);
    let users: Vec<User> = (0..20).map(|n| sign_up(&client, &edge, n)).collect();

    // Isolation: two users interleave reads of the per-user routes 100 times.
    let (a, b) = (&users[0], &users[1]);
    let key_a = upload(
        &client,
        &edge,
        a,
        "Alpha owns this document. It is about alpacas.",
    );
    let key_b = upload(
        &client,
        &edge,
        b,
        "Beta owns this document. It is about beetles.",
    );
    wait_for_summary(&client, &edge, a, &key_a);
    wait_for_summary(&client, &edge, b, &key_b);
    let mut hits = 0;
    for i in 0..100 {
        for (me, my_key, other_key) in [(a, &key_a, &key_b), (b, &key_b, &key_a)] {
            let path = if i % 2 == 0 {
                "/api/user/profile"
            } else {
                "/api/summaries"
            };
            let (status, cs, body) = authed_get(&client, format!("{edge}{path}"), me);
            assert_eq!(status, 200, "{cs} {body}");
            hits += usize::from(cs.contains("; hit"));
            if path == "/api/user/profile" {
                assert_eq!(body["email"], me.email.as_str(), "{cs}");
            } else {
                let keys = summary_keys(&body);
                assert!(
                    keys.contains(my_key) && !keys.contains(other_key),
                    "{cs} {body}"
                );
            }
        }
    }
    assert!(
        hits >= 190,
        "per-user entries are hits after the first read: {hits}"
    );

    // Read-after-write: every read after an upload returns the new summary, although the
    // list was cached just before.
    for (n, user) in users.iter().enumerate().take(10) {
        let (_, _, before) = authed_get(&client, format!("{edge}/api/summaries"), user);
        let key = upload(
            &client,
            &edge,
            user,
            &format!("Write number {n}. It must be seen."),
        );
        assert!(!summary_keys(&before).contains(&key));
        wait_for_summary(&client, &edge, user, &key);
        for _ in 0..3 {
            let (_, cs, list) = authed_get(&client, format!("{edge}/api/summaries"), user);
            assert!(summary_keys(&list).contains(&key), "{cs} {list}");
        }
    }

    // 80/20 read/write workload over 20 users: how many reads reach the origin.
    let reads_before = origin_reads(&stack, "/api/user") + origin_reads(&stack, "/api/summaries");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut reads, mut writes) = (0usize, 0usize);
    let mut read_latency: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for i in 0..1500 {
        let user = &users[(next() % 20) as usize];
        if next() % 100 < 80 {
            reads += 1;
            let path = match next() % 3 {
                0 => "/api/user/profile".to_owned(),
                1 => "/api/summaries".to_owned(),
                _ => format!("/api/user/{}", users[(next() % 20) as usize].id),
            };
            let started = Instant::now();
            let (status, cs, body) = authed_get(&client, format!("{edge}{path}"), user);
            let took = started.elapsed();
            assert_eq!(status, 200, "{path}: {cs} {body}");
            let kind = if cs.contains("; hit") { "hit" } else { "miss" };
            read_latency.entry(kind).or_default().push(took);
            if path == "/api/user/profile" {
                assert_eq!(body["email"], user.email.as_str());
            }
        } else {
            writes += 1;
            let resp = if next() % 4 == 0 {
                client
                    .post(format!("{edge}/api/uploads"))
                    .bearer_auth(&user.token)
                    .json(&json!({"content": format!("Workload write {i}. Short.")}))
                    .send()
                    .unwrap()
            } else {
                client
                    .post(format!("{edge}/api/process"))
                    .bearer_auth(&user.token)
                    .json(&json!({"id": format!("job-{i}"), "payload": {"n": i}}))
                    .send()
                    .unwrap()
            };
            assert!(resp.status().is_success(), "{}", resp.status());
        }
    }
    let reached =
        origin_reads(&stack, "/api/user") + origin_reads(&stack, "/api/summaries") - reads_before;
    let fraction = reached as f64 / reads as f64;
    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let hit_p50 = p50(read_latency.entry("hit").or_default());
    let miss_p50 = p50(read_latency.entry("miss").or_default());
    println!(
        "edge cache workload: {reads} reads, {writes} writes, {reached} reads reached the origin \
         ({:.1}%); p50 hit {hit_p50:?}, p50 miss {miss_p50:?}",
        fraction * 100.0
    );
    assert!(reads >= 1100 && writes >= 250, "{reads}/{writes}");
    assert!(
        fraction <= 0.20,
        "{:.1}% of reads reached the origin",
        fraction * 100.0
    );
}

// ---------------------------------------------------------------------------------------------
// What leaves the edge: private answers, and CORS the edge owns
// ---------------------------------------------------------------------------------------------

/// Defect 7: per-user data left the edge without `private` when the cache was bypassed
/// (a client's `no-store`) and through the `/v1` alias. Every answer on a per-user route,
/// and every answer to an authenticated caller that the origin did not mark shareable,
/// leaves `private`: hit, miss, bypass, 304, error.
#[test]
fn per_user_answers_leave_private_however_they_were_produced() {
    let stack = real_stack();
    let edge = stack.edge_url();
    let client = client_from(1);
    let user = sign_up(&client, &edge, 0);
    let send = |path: &str, headers: &[(&str, &str)], token: Option<&str>| {
        let mut req = client.get(format!("{edge}{path}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().unwrap()
    };
    let token = Some(user.token.as_str());
    let no_store = [("cache-control", "no-store")];

    // Bypass: the client's no-store; the origin said `max-age=300`.
    let resp = send("/api/user/profile", &no_store, token);
    assert_eq!(resp.status().as_u16(), 200);
    assert!(header(&resp, "cache-status").contains("fwd=bypass"));
    assert_eq!(header(&resp, "cache-control"), "private, max-age=300");
    let etag = header(&resp, "etag");
    assert!(!etag.is_empty());

    // The alias: its own route has no cache policy, but the caller authenticated.
    let resp = send("/v1/user/profile", &[], token);
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "cache-control"), "private, max-age=300");

    // A miss that is stored, then a hit.
    for expected in ["fwd=miss", "hit"] {
        let resp = send("/api/user/profile", &[], token);
        assert!(header(&resp, "cache-status").contains(expected));
        assert!(header(&resp, "cache-control").starts_with("private, max-age="));
    }

    // A 304, from the origin (bypass) and from the cache (hit).
    let inm = [
        ("if-none-match", etag.as_str()),
        ("cache-control", "no-store"),
    ];
    let resp = send("/api/user/profile", &inm, token);
    assert_eq!(resp.status().as_u16(), 304);
    assert!(header(&resp, "cache-control").starts_with("private"));
    let resp = send("/api/user/profile", &inm[..1], token);
    assert_eq!(resp.status().as_u16(), 304);
    assert!(header(&resp, "cache-control").starts_with("private"));

    // An error the edge answers itself.
    let resp = send("/api/user/profile", &[], None);
    assert_eq!(resp.status().as_u16(), 401);
    assert!(header(&resp, "cache-control").starts_with("private"));

    // The control: what the origin marked `public` stays public.
    let resp = send(&format!("/api/user/{}", user.id), &[], token);
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "cache-control"), "public, max-age=300");
}

/// Issue 14: where the edge owns CORS, the origin's own CORS answer passed through: an
/// origin that mirrors any `Origin` with credentials granted what the edge's policy
/// refuses. Now the origin's `Access-Control-*` fields are dropped there, and `Vary`
/// names `Origin` once.
#[test]
fn the_origins_cors_answer_never_leaves_where_the_edge_owns_cors() {
    let backends = vec![
        ("origin_us", Upstream::Origin { port: 0 }),
        ("origin_eu", Upstream::Origin { port: 0 }),
        ("origin_ap", Upstream::Origin { port: 0 }),
    ];
    // Origins that mirror every `Origin`, with credentials.
    let stack = StackBuilder::new(backends)
        .config_override(real_origin_config())
        .origin_env([("ALLOWED_ORIGINS", "*")])
        .start();
    let edge = stack.edge_url();
    let client = client_from(1);
    let user = sign_up(&client, &edge, 0);
    let send = |path: &str, origin: &str| {
        client
            .get(format!("{edge}{path}"))
            .bearer_auth(&user.token)
            .header("origin", origin)
            .send()
            .unwrap()
    };
    let all = |resp: &reqwest::blocking::Response, name: &str| -> Vec<String> {
        resp.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let vary_origins = |resp: &reqwest::blocking::Response| {
        all(resp, "vary")
            .iter()
            .flat_map(|v| v.split(',').map(|m| m.trim().to_ascii_lowercase()))
            .filter(|m| m == "origin" || m.starts_with("access-control-"))
            .collect::<Vec<_>>()
    };
    // The control: on a route without an edge policy the origin's answer stands, so these
    // origins really do mirror an unknown origin.
    let resp = send("/openapi.json", "https://evil.example");
    assert_eq!(
        all(&resp, "access-control-allow-origin"),
        ["https://evil.example"]
    );

    let config: Value = serde_json::from_str(fastgate::config::EMBEDDED).unwrap();
    let expose: Vec<&str> = config["cors"]["web"]["expose_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let expose = expose.join(", ");
    let profile = format!("/api/user/{}", user.id);
    for path in ["/api/user/profile", profile.as_str(), "/v1/user/profile"] {
        let resp = send(path, "https://evil.example");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        for name in resp.headers().keys() {
            assert!(
                !name.as_str().starts_with("access-control-"),
                "{path}: {name} leaked to an origin the policy refuses"
            );
        }
        assert_eq!(vary_origins(&resp), ["origin"], "{path}");

        let resp = send(path, "http://localhost:4321");
        assert_eq!(
            all(&resp, "access-control-allow-origin"),
            ["http://localhost:4321"],
            "{path}"
        );
        assert_eq!(all(&resp, "access-control-allow-credentials"), ["true"]);
        assert_eq!(
            all(&resp, "access-control-expose-headers"),
            [expose.as_str()],
            "{path}: the edge's list, not the origin's"
        );
        assert_eq!(vary_origins(&resp), ["origin"], "{path}");
    }
}
