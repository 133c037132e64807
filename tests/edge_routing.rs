//! End-to-end: routes, rewrites, redirects, config overrides from the Config Store, and
//! failover across named origins, through the real Wasm under Viceroy.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    client_from, config_with, open_api_routes, raw_request, three_origins, BlackHole, EchoServer,
    StackBuilder,
};

fn header(resp: &reqwest::blocking::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn log_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn named_echoes() -> (EchoServer, EchoServer, EchoServer) {
    (
        EchoServer::named("origin_us"),
        EchoServer::named("origin_eu"),
        EchoServer::named("origin_ap"),
    )
}

#[test]
fn rewrites_redirects_normalisation_and_traversal() {
    let (us, eu, ap) = named_echoes();
    let stack = StackBuilder::new(vec![
        ("origin_us", us.upstream()),
        ("origin_eu", eu.upstream()),
        ("origin_ap", ap.upstream()),
    ])
    .open_api_routes()
    .start();
    let client = client_from(1);
    let base = stack.edge_url();

    // /v1/* is served by /api/* (the compatibility rewrite of the default config).
    let seen: Value = client
        .get(format!("{base}/v1/items/7?x=1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(seen["path"], "/api/items/7");
    assert_eq!(seen["query"], "x=1");

    // Trailing slash: a permanent redirect that keeps the method and the query.
    let resp = client.get(format!("{base}/api/items/?a=1")).send().unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(header(&resp, "location").as_deref(), Some("/api/items?a=1"));

    // Normalisation: `//` collapsed, unreserved escapes decoded, reserved ones kept.
    let (status, text) = raw_request(stack.edge_addr(), "GET", "//api//%7Euser/a%2fb");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""path":"/api/~user/a%2Fb""#), "{text}");

    // Traversal in any spelling is refused at the edge, before any origin sees it.
    let before = us.count("GET", "/");
    for target in [
        "/api/../etc/passwd",
        "/api/%2e%2e/etc/passwd",
        "/v1/.%2E/x",
        "/api/a%zz",
    ] {
        let (status, text) = raw_request(stack.edge_addr(), "GET", target);
        assert_eq!(status, 400, "{target}: {text}");
        assert!(text.contains("application/problem+json"), "{text}");
    }
    assert_eq!(us.count("GET", "/"), before);

    // The active config is visible to ops.
    let resp = client.get(format!("{base}/health")).send().unwrap();
    let config = header(&resp, "fastgate-config").unwrap();
    assert!(config.ends_with("source=override"), "{config}");
    assert!(config.contains("hash="), "{config}");
}

#[test]
fn config_store_override_reroutes_without_a_rebuild_and_bad_overrides_are_ignored() {
    let (us, eu, ap) = named_echoes();
    let backends = || {
        vec![
            ("origin_us", us.upstream()),
            ("origin_eu", eu.upstream()),
            ("origin_ap", ap.upstream()),
        ]
    };
    // Ops' override: a specific route pinned to origin_ap ahead of the catch-all, and the
    // US sent to origin_eu first.
    let override_json = config_with(|v| {
        open_api_routes(v);
        v["version"] = "ops-override-1".into();
        let routes = v["routes"].as_array_mut().unwrap();
        let api = routes.iter().position(|r| r["id"] == "api").unwrap();
        routes.insert(
            api,
            serde_json::json!({"id": "special", "path": {"exact": "/api/special"},
                "backends": ["origin_ap"], "auth": {"policy": "public"}}),
        );
        v["geo"]["countries"]["US"] = serde_json::json!(["origin_eu", "origin_us"]);
    });
    let fetch = |base: &str, path: &str| {
        let resp = client_from(1).get(format!("{base}{path}")).send().unwrap();
        (
            header(&resp, "fastgate-origin").unwrap(),
            header(&resp, "fastgate-config").unwrap(),
        )
    };

    let plain = StackBuilder::new(backends()).open_api_routes().start();
    assert_eq!(fetch(&plain.edge_url(), "/api/special").0, "origin_us");
    drop(plain);

    // Same wasm, Viceroy restarted on another config-store file.
    let overridden = StackBuilder::new(backends())
        .config_override(override_json)
        .start();
    let (origin, config) = fetch(&overridden.edge_url(), "/api/special");
    assert_eq!(
        origin, "origin_ap",
        "route precedence: the specific route wins"
    );
    assert!(
        config.starts_with("ops-override-1;") && config.ends_with("source=override"),
        "{config}"
    );
    assert_eq!(fetch(&overridden.edge_url(), "/api/other").0, "origin_eu");
    drop(overridden);

    // An invalid override (unknown backend) is ignored with a log line naming the field.
    let bad = config_with(|v| {
        open_api_routes(v);
        v["geo"]["default"] = serde_json::json!(["origin_mars"]);
    });
    let stack = StackBuilder::new(backends()).config_override(bad).start();
    let (origin, config) = fetch(&stack.edge_url(), "/health");
    assert_eq!(origin, "origin_us");
    assert!(config.ends_with("source=embedded"), "{config}");
    for _ in 0..5 {
        fetch(&stack.edge_url(), "/health");
    }
    // One line for the override, not one per request it was not used for.
    let log = stack.edge_log();
    let rejections: Vec<_> = log_lines(&log)
        .into_iter()
        .filter(|l| l["event"] == "config_override_rejected")
        .collect();
    assert_eq!(rejections.len(), 1, "{log}");
    let rejected = &rejections[0];
    assert!(
        rejected["detail"]
            .as_str()
            .unwrap()
            .contains("geo.default[0]"),
        "{rejected}"
    );
}

#[test]
fn failover_after_an_origin_dies_loses_no_request() {
    // Breaker open for the whole run, so "origin_eu sees no attempts" is checkable.
    let config = config_with(|v| v["failover"]["down_for_s"] = 120.into());
    let mut stack = StackBuilder::new(three_origins())
        .config_override(config)
        .start();
    let client = client_from(2); // Germany: origin_eu first, then origin_us.
    let url = format!("{}/health", stack.edge_url());
    let mut failures = 0;
    let mut served_by = Vec::new();
    let mut latencies = Vec::new();
    let started = Instant::now();
    for i in 0..300 {
        if i == 100 {
            stack.kill_origin("origin_eu").unwrap();
        }
        let t = Instant::now();
        match client
            .get(&url)
            .header("x-request-id", format!("fo-{i}"))
            .send()
        {
            Ok(resp) if resp.status() == 200 => {
                served_by.push(header(&resp, "fastgate-origin").unwrap_or_default())
            }
            _ => {
                failures += 1;
                served_by.push(String::new());
            }
        }
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    assert_eq!(failures, 0, "failed responses");
    assert!(served_by[..100].iter().all(|o| o == "origin_eu"));
    assert!(
        served_by[100..].iter().all(|o| o == "origin_us"),
        "{:?}",
        &served_by[100..]
    );
    let lines = log_lines(&stack.edge_log());
    let attempts_on_eu: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["request_id"]
                .as_str()
                .and_then(|id| id.strip_prefix("fo-"))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 100)
        })
        .filter(|l| {
            l["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "origin_eu")
        })
        .collect();
    assert_eq!(
        attempts_on_eu.len(),
        1,
        "only the request that found it dead: {attempts_on_eu:?}"
    );
    assert_eq!(attempts_on_eu[0]["request_id"], "fo-100");
    let mut before: Vec<Duration> = latencies[..100].to_vec();
    let mut after: Vec<Duration> = latencies[101..].to_vec();
    before.sort();
    after.sort();
    eprintln!(
        "failover: 300 GETs in {total:?}, 0 failed; p50 before kill {:?}, failover request {:?}, p50 after {:?}",
        before[50], latencies[100], after[after.len() / 2]
    );
}

#[test]
fn a_post_whose_origin_died_mid_request_is_not_sent_twice() {
    let hole = BlackHole::start();
    let (us, eu, ap) = named_echoes();
    let stack = StackBuilder::new(vec![
        ("origin_us", hole.upstream()),
        ("origin_eu", eu.upstream()),
        ("origin_ap", ap.upstream()),
    ])
    .open_api_routes()
    .start();
    let client = client_from(1); // US: origin_us first.
    let resp = client
        .post(format!("{}/api/process", stack.edge_url()))
        .body(r#"{"id":"once"}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(hole.count("POST /api/process HTTP/1.1"), 1);
    let others = eu.count("POST", "/") + ap.count("POST", "/");
    assert_eq!(others, 0, "the POST was replayed on another origin");
    drop(us);
    // A GET is idempotent: the same failure moves on to the next origin.
    let resp = client
        .get(format!("{}/api/x", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_us")
    );
}

#[test]
fn one_half_open_probe_readmits_a_recovered_origin() {
    let config = config_with(|v| v["failover"]["down_for_s"] = 1.into());
    let (mut stack, spec) = StackBuilder::new(three_origins())
        .config_override(config)
        .start_with_spec();
    let client = client_from(2);
    let url = format!("{}/health", stack.edge_url());
    let origin = |id: &str| {
        let resp = client.get(&url).header("x-request-id", id).send().unwrap();
        assert_eq!(resp.status(), 200);
        header(&resp, "fastgate-origin").unwrap()
    };
    assert_eq!(origin("hp-0"), "origin_eu");
    stack.kill_origin("origin_eu").unwrap();
    assert_eq!(origin("hp-1"), "origin_us");
    assert_eq!(origin("hp-2"), "origin_us");
    stack.restart_origin(&spec, "origin_eu").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        origin("hp-3"),
        "origin_eu",
        "the probe goes to the recovered origin"
    );
    assert_eq!(origin("hp-4"), "origin_eu");
    let lines = log_lines(&stack.edge_log());
    let attempts = |id: &str| {
        lines
            .iter()
            .find(|l| l["request_id"] == id)
            .map(|l| l["attempts"].clone())
            .unwrap()
    };
    assert_eq!(
        attempts("hp-2"),
        serde_json::json!(["origin_us"]),
        "breaker open"
    );
    assert_eq!(attempts("hp-3"), serde_json::json!(["origin_eu"]));
}

#[test]
fn a_slow_origin_times_out_and_idempotent_requests_move_on() {
    let slow = EchoServer::slow("origin_us", Duration::from_secs(3));
    let (_, eu, ap) = named_echoes();
    let config = config_with(|v| {
        open_api_routes(v);
        v["failover"]["attempt_timeout_ms"] = 400.into();
    });
    let stack = StackBuilder::new(vec![
        ("origin_us", slow.upstream()),
        ("origin_eu", eu.upstream()),
        ("origin_ap", ap.upstream()),
    ])
    .config_override(config)
    .start();
    let client = client_from(1); // US: the slow origin_us first.
    let t = Instant::now();
    let resp = client
        .get(format!("{}/api/slow", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_eu")
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // A POST may have reached the slow origin: it is not replayed elsewhere.
    let resp = client
        .post(format!("{}/api/slow", stack.edge_url()))
        .header("x-request-id", "slow-post")
        .body("{}")
        .send()
        .unwrap();
    // origin_us is now marked down, so the POST goes to origin_eu directly.
    assert_eq!(resp.status(), 200);
    assert_eq!(
        eu.count("POST", "/api/slow") + ap.count("POST", "/api/slow"),
        1
    );
}
