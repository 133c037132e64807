//! End-to-end: CORS at the edge, rate limits, feature flags, observability, and the shape
//! of every error the edge generates.

mod support;

use std::time::{Duration, Instant};

use fastgate::http::unix_now;
use serde_json::{json, Value};
use support::{
    client_from, config_with, dead_address, hs256, open_api_routes, three_origins, EchoServer,
    StackBuilder,
};

const ALLOWED: &str = "http://localhost:4321";

fn header(resp: &reqwest::blocking::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn echo_backends(echo: &EchoServer) -> Vec<(&'static str, xtask::stack::Upstream)> {
    vec![
        ("origin_us", echo.upstream()),
        ("origin_eu", echo.upstream()),
        ("origin_ap", echo.upstream()),
    ]
}

#[test]
fn preflights_are_answered_at_the_edge_and_responses_decorated() {
    let echo = EchoServer::start();
    let stack = StackBuilder::new(echo_backends(&echo))
        .config_override(config_with(open_api_routes))
        .start();
    let client = client_from(1);
    let url = format!("{}/api/process", stack.edge_url());
    let resp = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", ALLOWED)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert!(header(&resp, "access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(header(&resp, "vary").unwrap().contains("Origin"));
    assert_eq!(
        echo.count("OPTIONS", "/"),
        0,
        "the preflight reached the origin"
    );

    let resp = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/problem+json")
    );
    assert!(header(&resp, "access-control-allow-origin").is_none());
    assert_eq!(echo.count("OPTIONS", "/"), 0);

    // An actual cross-origin request: decorated for an allowed origin, never for another,
    // and `Vary: Origin` either way so no cache mixes the two.
    let resp = client
        .get(format!("{}/api/items", stack.edge_url()))
        .header("origin", ALLOWED)
        .send()
        .unwrap();
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    assert!(header(&resp, "vary").unwrap().contains("Origin"));
    let resp = client
        .get(format!("{}/api/items", stack.edge_url()))
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert!(header(&resp, "access-control-allow-origin").is_none());
    assert!(header(&resp, "vary").unwrap().contains("Origin"));
}

#[test]
fn rate_limits_refuse_with_429_and_admit_the_next_window() {
    let echo = EchoServer::start();
    let config = config_with(|v| {
        open_api_routes(v);
        for route in v["routes"].as_array_mut().unwrap() {
            if route["id"] == "api" {
                route["rate_limit"] = json!({"key": "ip", "limit": 10, "window_s": 1});
            }
        }
    });
    let stack = StackBuilder::new(echo_backends(&echo))
        .config_override(config)
        .start();
    let client = client_from(3);
    let url = format!("{}/api/burst", stack.edge_url());
    // Start right after a window boundary so the burst sits in one window.
    let ms = (unix_now_ms() % 1000) as u64;
    std::thread::sleep(Duration::from_millis((1000 - ms) % 1000 + 20));
    let started = Instant::now();
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..50 {
        let resp = client.get(&url).send().unwrap();
        match resp.status().as_u16() {
            200 => {
                ok += 1;
                assert!(header(&resp, "ratelimit").is_some());
            }
            429 => {
                limited += 1;
                let retry: u32 = header(&resp, "retry-after").unwrap().parse().unwrap();
                assert!((1..=1).contains(&retry), "retry-after {retry}");
                assert_eq!(
                    header(&resp, "ratelimit-policy").as_deref(),
                    Some("\"api\";q=10;w=1")
                );
                assert_eq!(
                    header(&resp, "content-type").as_deref(),
                    Some("application/problem+json")
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let elapsed = started.elapsed();
    if elapsed < Duration::from_millis(950) {
        assert_eq!(
            (ok, limited),
            (10, 40),
            "one window, burst took {elapsed:?}"
        );
    } else {
        assert!(ok <= 20 && limited >= 30, "{ok} admitted over {elapsed:?}");
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        client.get(&url).send().unwrap().status(),
        200,
        "next window admitted"
    );
    eprintln!("rate limit: 50 requests in {elapsed:?}: {ok} admitted, {limited} refused");
}

fn unix_now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn login_brute_force_is_limited_per_ip_and_email() {
    let stack = StackBuilder::new(three_origins()).start();
    let client = client_from(4);
    let login = |email: &str| {
        client
            .post(format!("{}/api/auth/login", stack.edge_url()))
            .json(&json!({"email": email, "password": "wrong-password"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let statuses: Vec<u16> = (0..6).map(|_| login("victim@example.com")).collect();
    assert_eq!(
        statuses,
        [400, 400, 400, 400, 400, 429],
        "5 tries per minute"
    );
    assert_eq!(
        login("someone-else@example.com"),
        400,
        "another email is its own bucket"
    );
}

#[test]
fn flipping_new_schema_in_the_config_store_flips_the_shape() {
    let shape = |flags: Option<&str>| {
        let mut builder = StackBuilder::new(three_origins());
        if let Some(flags) = flags {
            builder = builder.flags(flags.to_owned());
        }
        let stack = builder.start();
        let client = client_from(1);
        let base = stack.edge_url();
        let email = format!("flag-{}@example.com", unix_now_ms());
        let created: Value = client
            .post(format!("{base}/api/auth/signup"))
            .json(&json!({"email": email, "password": "long enough", "full_name": "Flo Flag"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let token: Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": "long enough"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        client
            .get(format!(
                "{base}/api/user/{}",
                created["id"].as_str().unwrap()
            ))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
    };
    let v1 = shape(None);
    assert_eq!(v1["full_name"], "Flo Flag");
    assert!(v1.get("schema").is_none());
    let v2 = shape(Some(r#"{"new_schema": {"enabled": true}}"#));
    assert_eq!(v2["schema"], 2);
    assert_eq!(v2["name"], json!({"first": "Flo", "last": "Flag"}));
}

#[test]
fn every_edge_error_is_problem_json_and_requests_are_observable() {
    let echo = EchoServer::start();
    let config = config_with(|v| {
        v["backends"]["down"] = json!({"region": "test"});
        v["backends"]["jwks_down"] = json!({"region": "test"});
        v["auth"]["issuers"].as_array_mut().unwrap().push(json!({
            "iss": "jwks-down", "audience": "fastgate",
            "jwks": {"backends": ["jwks_down"], "path": "/jwks", "algorithms": ["ES256"]}}));
        let routes = v["routes"].as_array_mut().unwrap();
        routes.insert(
            0,
            json!({"id": "limited", "path": {"exact": "/api/limited"},
            "auth": {"policy": "public"}, "rate_limit": {"key": "ip", "limit": 1, "window_s": 60}}),
        );
        routes.insert(
            0,
            json!({"id": "dead", "path": {"exact": "/api/dead"},
            "backends": ["down"], "auth": {"policy": "public"}}),
        );
        routes.insert(
            0,
            json!({"id": "admin", "path": {"exact": "/api/admin"},
            "auth": {"policy": "required", "scopes": ["admin"]}}),
        );
    });
    let mut backends = echo_backends(&echo);
    backends.push(("down", dead_address()));
    backends.push(("jwks_down", dead_address()));
    let (stack, spec) = StackBuilder::new(backends)
        .config_override(config)
        .start_with_spec();
    let base = stack.edge_url();
    let client = client_from(5);
    let claims =
        json!({"sub": "s", "iss": "fastgate-origin", "aud": "fastgate", "exp": unix_now() + 60});
    let valid = hs256(&spec.secrets.jwt_hs256_key, &claims);
    let es_header = base64_url(r#"{"alg":"ES256","kid":"k"}"#);
    let es_claims = base64_url(
        &json!({"sub": "s", "iss": "jwks-down", "aud": "fastgate", "exp": unix_now() + 60})
            .to_string(),
    );
    let jwks_down = format!("{es_header}.{es_claims}.c2ln");
    let _ = client.get(format!("{base}/api/limited")).send().unwrap();
    let cases: Vec<(u16, reqwest::blocking::RequestBuilder)> = vec![
        (400, client.get(format!("{base}/api/a%zz"))),
        (401, client.get(format!("{base}/api/user/profile"))),
        (
            401,
            client
                .get(format!("{base}/api/user/profile"))
                .bearer_auth("not.a.token"),
        ),
        (
            403,
            client.get(format!("{base}/api/admin")).bearer_auth(&valid),
        ),
        (
            403,
            client
                .request(reqwest::Method::OPTIONS, format!("{base}/api/x"))
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "GET"),
        ),
        (404, client.get(format!("{base}/nowhere"))),
        (405, client.delete(format!("{base}/health"))),
        (429, client.get(format!("{base}/api/limited"))),
        (502, client.get(format!("{base}/api/dead"))),
        (
            503,
            client
                .get(format!("{base}/api/user/profile"))
                .bearer_auth(&jwks_down),
        ),
    ];
    for (status, request) in cases {
        let resp = request.send().unwrap();
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(
            header(&resp, "content-type").as_deref(),
            Some("application/problem+json"),
            "{status}"
        );
        let id = header(&resp, "x-request-id").unwrap();
        let p: Value = resp.json().unwrap();
        assert_eq!(p["status"], status);
        for field in ["type", "title", "detail"] {
            assert!(
                p[field].as_str().is_some_and(|s| !s.is_empty()),
                "{status}: {field} in {p}"
            );
        }
        assert_eq!(
            p["instance"],
            format!("urn:fastgate:request:{id}"),
            "{status}"
        );
    }

    // Observability: Server-Timing on responses, the request id reaches the origin, and
    // one JSON log line per request with the agreed fields and no token.
    let resp = client
        .get(format!("{base}/api/user/profile"))
        .bearer_auth(&valid)
        .header("x-request-id", "obs-1")
        .send()
        .unwrap();
    let timing = header(&resp, "server-timing").unwrap();
    assert!(
        timing.contains("auth;dur=") && timing.contains("origin;dur="),
        "{timing}"
    );
    assert_eq!(header(&resp, "x-request-id").as_deref(), Some("obs-1"));
    let log = stack.edge_log();
    assert!(!log.contains(&valid), "a token reached the log");
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == "obs-1")
        .unwrap();
    for field in [
        "route",
        "backend",
        "attempts",
        "country",
        "continent",
        "cache",
        "status",
        "bytes",
        "timings_us",
    ] {
        assert!(line.get(field).is_some(), "{field} missing from {line}");
    }
    assert_eq!(line["country"], "BR");
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
