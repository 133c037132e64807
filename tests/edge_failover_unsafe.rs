//! End-to-end: failover of unsafe requests, through the real Wasm under Viceroy.
//!
//! - A POST with an `Idempotency-Key` moves on to the next backend after an ambiguous
//!   failure (the origin died with the request, or took it and hung up), with its body
//!   intact; the same POST without a key is never sent twice.
//! - While a backend is marked down, POSTs go to the next backend, and once its mark
//!   expires the edge probes it with its own `GET /health`: no client POST is the probe.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client_from, config_with, open_api_routes, BlackHole, EchoServer, StackBuilder};
use xtask::stack::{Stack, Upstream};

/// How long a failed backend stays marked down in these tests.
const DOWN_FOR_S: u64 = 2;

/// Germany: origin_eu first, then origin_us.
const GERMANY: u8 = 2;
/// The US: origin_us first, then origin_eu.
const US: u8 = 1;
/// Japan: origin_ap first, then origin_us, then origin_eu.
const JAPAN: u8 = 3;

fn header(resp: &reqwest::blocking::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The backends the edge sent request `id` to, from its log line (which Viceroy may
/// write just after the client has its answer, so this waits for it a little).
fn attempts(stack: &Stack, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = json_lines(&stack.edge_log())
            .into_iter()
            .find(|l| l["request_id"] == id && l.get("attempts").is_some());
        match line {
            Some(line) => return line["attempts"].clone(),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("no log line for {id}:\n{}", stack.edge_log()),
        }
    }
}

/// The edge's `backend_probe` events, as `<backend>: <outcome>, alive=<bool>`.
fn probes(stack: &Stack) -> Vec<String> {
    json_lines(&stack.edge_log())
        .into_iter()
        .filter(|l| l["event"] == "backend_probe")
        .filter_map(|l| l["detail"].as_str().map(str::to_owned))
        .collect()
}

/// `METHOD path` of every request origin `name` logged for request id `id`, in order.
fn origin_requests(stack: &Stack, name: &str, id: &str) -> Vec<String> {
    json_lines(&stack.origin_log(name))
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request" && l["span"]["request_id"] == id)
        .map(|l| {
            let span = &l["span"];
            format!(
                "{} {}",
                span["method"].as_str().unwrap_or("?"),
                span["path"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// A body big enough to take several reads, and different per test.
fn order_body(tag: &str) -> String {
    let items: Vec<String> = (0..2000).map(|i| format!("\"{tag}-item-{i}\"")).collect();
    format!(r#"{{"order":"{tag}","items":[{}]}}"#, items.join(","))
}

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    id: &str,
    key: Option<&str>,
    body: &str,
) -> reqwest::blocking::Response {
    let mut req = client
        .post(url)
        .header("x-request-id", id)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    req.send().unwrap()
}

/// Asserts the echo origin got exactly `body`, bound by its digest, and the key if any.
fn assert_echoed(seen: &Value, body: &str, key: Option<&str>) {
    assert_eq!(seen["method"], "POST");
    assert_eq!(
        seen["body_len"],
        body.len(),
        "the body was not re-sent whole"
    );
    assert_eq!(seen["body"], body);
    let digest = fastgate::identity::content_digest(body.as_bytes());
    assert_eq!(
        seen["headers"]["content-digest"],
        serde_json::json!([digest])
    );
    let sent_key = seen["headers"]["idempotency-key"].clone();
    match key {
        Some(key) => assert_eq!(sent_key, serde_json::json!([key])),
        None => assert!(sent_key.is_null(), "{sent_key}"),
    }
}

/// The three named backends: origin_eu a real origin process (to be killed), the other two
/// echo servers that count what they get.
fn stack_with_real_eu(us: &EchoServer, ap: &EchoServer) -> (Stack, xtask::stack::StackSpec) {
    let config = config_with(|v| {
        open_api_routes(v);
        v["failover"]["down_for_s"] = DOWN_FOR_S.into();
    });
    StackBuilder::new(vec![
        ("origin_us", us.upstream()),
        ("origin_eu", Upstream::Origin { port: 0 }),
        ("origin_ap", ap.upstream()),
    ])
    .config_override(config)
    .start_with_spec()
}

#[test]
fn a_keyed_post_is_the_first_request_after_its_origin_died_and_still_succeeds() {
    let (us, ap) = (
        EchoServer::named("origin_us"),
        EchoServer::named("origin_ap"),
    );
    let (mut stack, _spec) = stack_with_real_eu(&us, &ap);
    let client = client_from(GERMANY);
    let health = client
        .get(format!("{}/health", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(
        header(&health, "fastgate-origin").as_deref(),
        Some("origin_eu")
    );
    stack.kill_origin("origin_eu").unwrap();

    // The first request after the kill: under Viceroy a refused connection is a generic
    // send error, so only the key lets this POST move on.
    let url = format!("{}/api/orders", stack.edge_url());
    let body = order_body("keyed");
    let resp = post(&client, &url, "keyed-1", Some("key-keyed-1"), &body);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_us")
    );
    assert_echoed(&resp.json().unwrap(), &body, Some("key-keyed-1"));
    assert_eq!(
        attempts(&stack, "keyed-1"),
        serde_json::json!(["origin_eu", "origin_us"])
    );

    // origin_eu is now marked down: a POST without a key goes to origin_us directly.
    let body = order_body("plain");
    let resp = post(&client, &url, "plain-1", None, &body);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_us")
    );
    assert_echoed(&resp.json().unwrap(), &body, None);
    assert_eq!(
        attempts(&stack, "plain-1"),
        serde_json::json!(["origin_us"])
    );
    assert_eq!(us.count("POST", "/api/orders"), 2);
    assert_eq!(ap.count("POST", "/"), 0);
}

#[test]
fn posts_skip_a_marked_down_origin_and_the_edge_probes_it_itself() {
    let (us, ap) = (
        EchoServer::named("origin_us"),
        EchoServer::named("origin_ap"),
    );
    let (mut stack, spec) = stack_with_real_eu(&us, &ap);
    let client = client_from(GERMANY);
    let base = stack.edge_url();
    let url = format!("{base}/api/orders");
    stack.kill_origin("origin_eu").unwrap();

    // One GET finds origin_eu dead, moves on, and marks it down.
    let resp = client
        .get(format!("{base}/health"))
        .header("x-request-id", "mark")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        attempts(&stack, "mark"),
        serde_json::json!(["origin_eu", "origin_us"])
    );

    // While it is marked down, POSTs without a key go straight to the next backend.
    for i in 0..3 {
        let id = format!("during-{i}");
        let resp = post(&client, &url, &id, None, &order_body(&id));
        assert_eq!(resp.status(), 200, "{id}");
        assert_eq!(attempts(&stack, &id), serde_json::json!(["origin_us"]));
    }
    assert!(probes(&stack).is_empty(), "{:?}", probes(&stack));

    // The mark expired and origin_eu is still dead: the edge's probe finds out, not the POST.
    std::thread::sleep(Duration::from_millis(DOWN_FOR_S * 1000 + 300));
    let resp = post(&client, &url, "after-1", None, &order_body("after-1"));
    assert_eq!(resp.status(), 200);
    assert_eq!(
        attempts(&stack, "after-1"),
        serde_json::json!(["origin_us"])
    );
    let seen = probes(&stack);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("origin_eu:") && seen[0].ends_with("alive=false"),
        "{seen:?}"
    );

    // origin_eu comes back. Once its new mark expires, the next POST is preceded by the
    // edge's own GET of the health path, and only then sent there.
    stack.restart_origin(&spec, "origin_eu").unwrap();
    std::thread::sleep(Duration::from_millis(DOWN_FOR_S * 1000 + 300));
    let resp = post(&client, &url, "back-1", None, &order_body("back-1"));
    assert_ne!(resp.status(), 502);
    assert_eq!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_eu")
    );
    assert_eq!(attempts(&stack, "back-1"), serde_json::json!(["origin_eu"]));
    assert_eq!(
        origin_requests(&stack, "origin_eu", "back-1"),
        ["GET /health", "POST /api/orders"],
        "the probe is the edge's GET, before the client's POST"
    );
    let seen = probes(&stack);
    assert_eq!(seen.len(), 2, "one probe per expired mark: {seen:?}");
    assert!(seen[1].ends_with("alive=true"), "{seen:?}");

    // Re-admitted: no probe any more.
    let resp = post(&client, &url, "back-2", None, &order_body("back-2"));
    assert_eq!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_eu")
    );
    assert_eq!(attempts(&stack, "back-2"), serde_json::json!(["origin_eu"]));
    assert_eq!(probes(&stack).len(), 2);

    // No client POST ever reached origin_eu while it was marked down or unprobed.
    let posts_on_eu: Vec<Value> = json_lines(&stack.edge_log())
        .into_iter()
        .filter(|l| l["method"] == "POST")
        .filter(|l| {
            l["attempts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|b| b == "origin_eu"))
        })
        .map(|l| l["request_id"].clone())
        .collect();
    assert_eq!(posts_on_eu, ["back-1", "back-2"]);
    assert_eq!(ap.count("POST", "/"), 0);
}

#[test]
fn a_keyed_post_is_retried_after_an_ambiguous_failure_and_an_unkeyed_one_is_not() {
    // Two origins that take the request and hang up without answering; origin_eu answers.
    let (hole_us, hole_ap) = (BlackHole::start(), BlackHole::start());
    let eu = EchoServer::named("origin_eu");
    let stack = StackBuilder::new(vec![
        ("origin_us", hole_us.upstream()),
        ("origin_eu", eu.upstream()),
        ("origin_ap", hole_ap.upstream()),
    ])
    .open_api_routes()
    .start();
    let url = format!("{}/api/orders", stack.edge_url());
    let body = order_body("ambiguous");
    let line = "POST /api/orders HTTP/1.1";

    // Without a key: the origin may have acted on it, so it is not replayed.
    let resp = post(&client_from(US), &url, "nokey-1", None, &body);
    assert_eq!(resp.status(), 502);
    assert_eq!(hole_us.count(line), 1);
    assert_eq!(eu.count("POST", "/"), 0, "replayed without a key");
    assert_eq!(
        attempts(&stack, "nokey-1"),
        serde_json::json!(["origin_us"])
    );

    // With a key (from Japan, whose first backend is the other black hole): the origin
    // deduplicates by the key, so the edge moves on, and the next origin gets the same
    // body, the same key and a digest of that body.
    let resp = post(&client_from(JAPAN), &url, "key-1", Some("order-42"), &body);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "fastgate-origin").as_deref(),
        Some("origin_eu")
    );
    assert_echoed(&resp.json().unwrap(), &body, Some("order-42"));
    assert_eq!(hole_ap.count(line), 1);
    assert_eq!(eu.count("POST", "/api/orders"), 1);
    // origin_us, marked down by the first POST, comes last and is not needed.
    assert_eq!(
        attempts(&stack, "key-1"),
        serde_json::json!(["origin_ap", "origin_eu"])
    );
    assert_eq!(hole_us.count(line), 1);
}
