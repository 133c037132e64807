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
    echo.everywhere()
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
            // `v1-compat` shares the `api` group, so it must carry the same limit.
            if route["id"] == "api" || route["id"] == "v1-compat" {
                route["rate_limit"] =
                    json!({"key": "ip", "limit": 10, "window_s": 1, "group": "api"});
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
        // As a real client would: a 503 with `Retry-After` (the origin's password hashers
        // are all busy, as on a loaded test machine) is tried again.
        let post = |path: &str, body: Value| -> Value {
            for _ in 0..10 {
                let resp = client
                    .post(format!("{base}{path}"))
                    .json(&body)
                    .send()
                    .unwrap();
                if resp.status().as_u16() != 503 {
                    return resp.json().unwrap();
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            panic!("{path}: still 503 after 10 tries");
        };
        let created = post(
            "/api/auth/signup",
            json!({"email": email, "password": "long enough", "full_name": "Flo Flag"}),
        );
        let token = post(
            "/api/auth/login",
            json!({"email": email, "password": "long enough"}),
        );
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

// ---------------------------------------------------------------------------------------------
// Issue 14: one login counter per account, and limits on every route
// ---------------------------------------------------------------------------------------------

/// POSTs a JSON body written by hand (so it may hold what serializers would not write) and
/// returns the response.
fn post_raw(
    client: &reqwest::blocking::Client,
    url: &str,
    body: &str,
) -> reqwest::blocking::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .unwrap()
}

/// Waits, if needed, until `margin_s` seconds of the current minute remain, so a test that
/// counts against a 60-second window sees its requests in one window.
fn away_from_a_minute_boundary(margin_s: u64) {
    let into_minute_ms = (unix_now_ms() % 60_000) as u64;
    if into_minute_ms > (60 - margin_s) * 1000 {
        std::thread::sleep(Duration::from_millis(60_000 - into_minute_ms + 50));
    }
}

/// Defect 2: with the victim's account in the penalty box, no spelling of its email (a
/// display name, Python whitespace, JSON escapes, a duplicate key, a body serde_json would
/// refuse) and neither login path gets a fresh counter: 429 throughout, the right password
/// included. The old key (the raw value, trimmed and lower-cased, per route) answered them.
#[test]
fn the_login_penalty_box_holds_for_every_spelling_and_both_login_paths() {
    let stack = StackBuilder::new(three_origins()).start();
    let base = stack.edge_url();
    let (login, v1_login) = (
        format!("{base}/api/auth/login"),
        format!("{base}/v1/auth/login"),
    );
    let email = format!("victim-{}@example.com", unix_now_ms());
    let password = "the-right-password";
    let signup = client_from(7)
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .unwrap();
    assert_eq!(signup.status(), 201);
    let body = |e: &str, p: &str| json!({"email": e, "password": p}).to_string();
    let attacker = client_from(6);
    away_from_a_minute_boundary(20);
    let opening: Vec<u16> = (0..6)
        .map(|n| {
            let status = post_raw(&attacker, &login, &body(&email, &format!("wrong-{n}"))).status();
            status.as_u16()
        })
        .collect();
    assert_eq!(
        opening,
        [400, 400, 400, 400, 400, 429],
        "5 tries, then the box"
    );

    let mut spellings: Vec<(String, String)> = (1..=8)
        .map(|n| (format!("guess{n} <{email}>"), format!("guess-{n}")))
        .collect();
    spellings.extend([
        (format!("\u{1c}{email}"), "pad-1".to_owned()),
        (format!("{email}\u{1f}\u{1e}\u{1d}"), "pad-2".to_owned()),
        (
            format!("\u{1c}\u{1c}Guess <{email}>\u{1c}"),
            "pad-3".to_owned(),
        ),
        (format!("\"Some One\" <{email}>"), "quoted".to_owned()),
        (email.to_uppercase(), "upper".to_owned()),
        (format!("Final Guess <{email}>"), password.to_owned()),
    ]);
    for (spelling, guess) in &spellings {
        for url in [&login, &v1_login] {
            let resp = post_raw(&attacker, url, &body(spelling, guess));
            assert_eq!(resp.status(), 429, "{url} {spelling:?}");
            assert_eq!(
                header(&resp, "ratelimit-policy").as_deref(),
                Some("\"login\";q=5;w=60"),
                "both paths count in the `login` group"
            );
        }
    }
    let (local, domain) = email.split_once('@').unwrap();
    for raw in [
        format!(
            r#"{{"email": "nobody@example.com", "password": "{password}", "email": "{email}"}}"#
        ),
        format!(r#"{{"email": "{email}", "password": "{password}", "pad": NaN}}"#),
        format!(r#"{{"email": "{email}", "password": "{password}", "pad": "\ud800", "n": 1e999}}"#),
        format!(r#"{{"email": "\u0046inal <{local}\u0040{domain}>", "password": "{password}"}}"#),
        format!(r#"{{"\u0065mail": "\u001c{email}", "password": "{password}"}}"#),
    ] {
        for url in [&login, &v1_login] {
            assert_eq!(post_raw(&attacker, url, &raw).status(), 429, "{url} {raw}");
        }
    }

    // The account is fine, and the origin does read those spellings as the victim: from
    // another address (its own counter) they sign in.
    let other = client_from(8);
    for raw in [
        body(&format!("Final Guess <{email}>"), password),
        format!(r#"{{"email": "\u001c{email}", "password": "{password}", "pad": NaN}}"#),
    ] {
        let resp = post_raw(&other, &v1_login, &raw);
        assert_eq!(resp.status(), 200, "{raw}");
        assert!(resp.json::<Value>().unwrap()["access_token"].is_string());
    }
}

/// What a burst saw: each answer's status and `RateLimit-Policy`, and the epoch seconds
/// it started and ended in.
struct Burst {
    answers: Vec<(u16, Option<String>)>,
    first_s: u128,
    last_s: u128,
}

impl Burst {
    fn admitted(&self) -> usize {
        self.answers.iter().filter(|(s, _)| *s == 200).count()
    }
}

/// Sends `n` authenticated GETs to `url` (`{i}` replaced by a distinct value each time)
/// from `threads` threads at once.
fn burst(url: &str, token: &str, threads: usize, n: usize) -> Burst {
    let first_s = unix_now_ms() / 1000;
    let answers = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let client = client_from(1);
                    (0..n / threads)
                        .map(|i| {
                            let target = url.replace("{i}", &format!("{t}-{i}"));
                            let resp = client.get(target).bearer_auth(token).send().unwrap();
                            (resp.status().as_u16(), header(&resp, "ratelimit-policy"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    Burst {
        answers,
        first_s,
        last_s: unix_now_ms() / 1000,
    }
}

/// Defect 3: `/v1/*` had no limit (120 requests to `/v1/user/profile` were all 200). It
/// now counts in the `api` group, the same counter as `/api/*`.
#[test]
fn the_v1_alias_is_limited_in_the_group_of_the_api_it_rewrites_to() {
    let echo = EchoServer::start();
    let (stack, spec) = StackBuilder::new(echo_backends(&echo)).start_with_spec();
    let claims = json!({"sub": "burst", "iss": "fastgate-origin", "aud": "fastgate", "exp": unix_now() + 120});
    let token = hs256(&spec.secrets.jwt_hs256_key, &claims);
    let base = stack.edge_url();

    let b = burst(&format!("{base}/v1/user/profile"), &token, 6, 120);
    let windows = b.last_s - b.first_s + 1;
    let (ok, limited) = (
        b.admitted(),
        b.answers.iter().filter(|(s, _)| *s == 429).count(),
    );
    assert_eq!(ok + limited, 120, "{:?}", b.answers);
    assert!(
        ok as u128 <= 50 * windows,
        "{ok} admitted in {windows} windows"
    );
    if windows <= 2 {
        assert!(limited >= 20, "{limited} refused in {windows} windows");
    }
    for (_, policy) in &b.answers {
        assert_eq!(policy.as_deref(), Some("\"api\";q=50;w=1"));
    }

    // One counter: 45 requests through `/api/`, then 45 through `/v1/`.
    std::thread::sleep(Duration::from_millis(
        1000 - (unix_now_ms() % 1000) as u64 + 20,
    ));
    let api = burst(&format!("{base}/api/items/{{i}}"), &token, 3, 45);
    let v1 = burst(&format!("{base}/v1/items/{{i}}"), &token, 3, 45);
    let windows = v1.last_s - api.first_s + 1;
    let ok = api.admitted() + v1.admitted();
    assert!(
        ok as u128 <= 50 * windows,
        "{ok} admitted in {windows} windows"
    );
    if windows == 1 {
        assert_eq!(ok, 50, "one counter for /api/ and /v1/");
    }
    for (status, policy) in api.answers.iter().chain(&v1.answers) {
        assert!(matches!(status, 200 | 429), "{status}");
        assert_eq!(policy.as_deref(), Some("\"api\";q=50;w=1"));
    }
}

/// Defect 3: signup (an argon2id hash per call) had no limit; 15 from one address were all
/// 201. Now 5 per minute per client, then a 5-minute penalty box, on both paths.
#[test]
fn signup_is_limited_per_client_address() {
    let stack = StackBuilder::new(three_origins()).start();
    let base = stack.edge_url();
    let client = client_from(6);
    let run = unix_now_ms();
    let signup = |client: &reqwest::blocking::Client, path: &str, n: usize| {
        client
            .post(format!("{base}{path}"))
            .json(&json!({"email": format!("s{n}-{run}@example.com"), "password": "long enough"}))
            .send()
            .unwrap()
    };
    away_from_a_minute_boundary(20);
    let statuses: Vec<u16> = (0..15)
        .map(|n| signup(&client, "/api/auth/signup", n).status().as_u16())
        .collect();
    assert_eq!(&statuses[..5], [201; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], [429; 10], "{statuses:?}");
    let resp = signup(&client, "/v1/auth/signup", 15);
    assert_eq!(resp.status(), 429, "the alias shares the box");
    let retry: u32 = header(&resp, "retry-after").unwrap().parse().unwrap();
    assert!((250..=300).contains(&retry), "the penalty box: {retry}");
    assert_eq!(
        header(&resp, "ratelimit-policy").as_deref(),
        Some("\"signup\";q=5;w=60")
    );
    assert_eq!(
        signup(&client_from(7), "/api/auth/signup", 16).status(),
        201
    );
}
