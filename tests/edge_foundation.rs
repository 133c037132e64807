//! End-to-end: the edge Wasm under Viceroy in front of real origins.

mod support;

use serde_json::Value;
use support::{client_from, dead_address, three_origins, EchoServer, StackBuilder};

fn header<'a>(resp: &'a reqwest::blocking::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[test]
fn every_mapped_location_reaches_its_origin_and_unmapped_uses_the_default() {
    let stack = StackBuilder::new(three_origins()).start();
    // (loopback address, expected origin, location fastly.toml gives the address)
    let cases = [
        (1, "origin_us", "US/NA"),
        (2, "origin_eu", "DE/EU"),
        (3, "origin_ap", "JP/AS"),
        (4, "origin_ap", "AU/OC"),
        (5, "origin_us", "BR/SA"),
        (9, "origin_us", "no geo record: default"),
    ];
    for (last, origin, place) in cases {
        let resp = client_from(last)
            .get(format!("{}/health", stack.edge_url()))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "127.0.0.{last} ({place})");
        assert_eq!(
            header(&resp, "fastgate-origin"),
            Some(origin),
            "127.0.0.{last} ({place})"
        );
        assert!(header(&resp, "x-request-id").is_some());
        let body: Value = resp.json().unwrap();
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
    // The unmapped address must have been routed by the default list, not by accident.
    let log = stack.edge_log();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["client_ip"] == "127.0.0.9")
        .unwrap_or_else(|| panic!("no log line for 127.0.0.9 in:\n{log}"));
    assert_eq!(line["geo_level"], "default");
    assert_eq!(line["country"], Value::Null);
    assert_eq!(line["backend"], "origin_us");
}

#[test]
fn method_path_query_body_and_headers_arrive_intact_and_forwarding_is_rebuilt() {
    let echo = EchoServer::start();
    let stack = StackBuilder::new(echo.everywhere())
        .open_api_routes()
        .start();
    let client = client_from(1);
    let body = "{\"name\":\"Zoë\",\"n\":[1,2,3]}";
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let resp = client
            .request(
                method.parse().unwrap(),
                format!("{}/api/items/a%20b/c?z=1&a=2&a=3&empty=", stack.edge_url()),
            )
            .header("content-type", "application/json")
            .header("authorization", "Bearer abc.def.ghi")
            .header("x-custom", "kept")
            .header("accept-language", "de-DE")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-host", "evil.example")
            .header("forwarded", "for=6.6.6.6;proto=https")
            .header("x-real-ip", "6.6.6.6")
            .header("fastgate-identity", "forged")
            .header("x-fastgate-admin", "1")
            .header("connection", "x-hop")
            .header("x-hop", "must-not-pass")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        let request_id = header(&resp, "x-request-id").unwrap().to_owned();
        let seen: Value = resp.json().unwrap();
        assert_eq!(seen["method"], method);
        assert_eq!(seen["path"], "/api/items/a%20b/c");
        assert_eq!(seen["query"], "z=1&a=2&a=3&empty=");
        assert_eq!(seen["body"], body);
        let h = &seen["headers"];
        assert_eq!(h["content-type"], serde_json::json!(["application/json"]));
        assert_eq!(
            h["authorization"],
            serde_json::json!(["Bearer abc.def.ghi"])
        );
        assert_eq!(h["x-custom"], serde_json::json!(["kept"]));
        assert_eq!(h["accept-language"], serde_json::json!(["de-DE"]));
        // Rebuilt from the real client address, never the client's claim.
        assert_eq!(h["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
        assert_eq!(h["x-forwarded-proto"], serde_json::json!(["http"]));
        let forwarded = h["forwarded"][0].as_str().unwrap();
        assert!(
            forwarded.starts_with("for=127.0.0.1;proto=http"),
            "{forwarded}"
        );
        assert_ne!(h["x-forwarded-host"], serde_json::json!(["evil.example"]));
        for gone in ["x-real-ip", "x-fastgate-admin", "x-hop"] {
            assert!(h.get(gone).is_none(), "{gone} reached the origin: {h}");
        }
        // The forged identity is replaced by ours (anonymous here), and signed.
        assert_eq!(h["fastgate-identity"], serde_json::json!(["e30"]));
        assert!(h["signature"][0]
            .as_str()
            .unwrap()
            .starts_with("fastgate=:"));
        assert_eq!(h["x-request-id"], serde_json::json!([request_id]));
    }
    // A GET keeps its query and an inbound, well-formed request id is reused end to end.
    let resp = client
        .get(format!(
            "{}/api/search?q=caf%C3%A9&page=2",
            stack.edge_url()
        ))
        .header("x-request-id", "trace-42")
        .send()
        .unwrap();
    assert_eq!(header(&resp, "x-request-id"), Some("trace-42"));
    let seen: Value = resp.json().unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["query"], "q=caf%C3%A9&page=2");
    assert_eq!(
        seen["headers"]["x-request-id"],
        serde_json::json!(["trace-42"])
    );
}

#[test]
fn a_down_origin_gives_502_problem_json() {
    let stack = StackBuilder::new(vec![
        ("origin_us", dead_address()),
        ("origin_eu", dead_address()),
        ("origin_ap", dead_address()),
    ])
    .open_api_routes()
    .start();
    for last in [1, 2, 3] {
        let resp = client_from(last)
            .post(format!("{}/api/process", stack.edge_url()))
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 502);
        assert_eq!(
            header(&resp, "content-type"),
            Some("application/problem+json")
        );
        let id = header(&resp, "x-request-id").unwrap().to_owned();
        let p: Value = resp.json().unwrap();
        assert_eq!(p["status"], 502);
        assert_eq!(p["title"], "Bad Gateway");
        assert!(p["type"].as_str().unwrap().starts_with("https://"));
        assert!(p["detail"].as_str().unwrap().contains("origin_"));
        assert_eq!(p["instance"], format!("urn:fastgate:request:{id}"));
    }
}

#[test]
fn unknown_routes_and_methods_are_answered_at_the_edge() {
    let stack = StackBuilder::new(vec![
        ("origin_us", dead_address()),
        ("origin_eu", dead_address()),
        ("origin_ap", dead_address()),
    ])
    .start();
    let client = client_from(1);
    let resp = client
        .get(format!("{}/nope", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        header(&resp, "content-type"),
        Some("application/problem+json")
    );
    let resp = client
        .delete(format!("{}/health", stack.edge_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 405);
    // RFC 9110 §15.5.6: a 405 says which methods the path does allow.
    assert_eq!(header(&resp, "allow"), Some("GET, HEAD"));
    let p: Value = resp.json().unwrap();
    assert_eq!(p["title"], "Method Not Allowed");
}

#[test]
fn dropping_the_stack_leaves_no_process_behind() {
    let stack = StackBuilder::new(three_origins()).start();
    let pids = stack.pids();
    assert_eq!(pids.len(), 4);
    drop(stack);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived teardown"
        );
    }
}
