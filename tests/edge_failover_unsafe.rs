//! End-to-end: failover of unsafe requests, through the real Wasm under Viceroy.
//!
//! - A POST with an `Idempotency-Key` moves on to the next backend after an ambiguous
//!   failure (the origin died with the request, or took it and hung up), with its body
//!   intact; the same POST without a key is never sent twice.
//! - While a backend is marked down, POSTs go to the next backend, and once its mark
//!   expires the edge probes it with its own `GET /health`: no client POST is the probe.
//! - With real origins on one database: a keyed upload whose origin is killed mid-request
//!   is retried on another origin, which takes over the dead process's claim of the key
//!   (the edge waiting out the 409s while the dead process's heartbeat is still fresh),
//!   and the upload is stored once. A 409 to a client's first attempt is passed on.

mod support;

use std::time::{Duration, Instant};

use fastgate_wire::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{
    client_from, config_with, open_api_routes, sign_up, Account, BlackHole, EchoServer,
    StackBuilder,
};
use xtask::stack::{Stack, StackSpec, Upstream};

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
        req = req.header(IDEMPOTENCY_KEY_HEADER, key);
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
    let sent_key = seen["headers"][IDEMPOTENCY_KEY_HEADER].clone();
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

/// The origins' SQLite database, read and written by the test as another process would.
struct Database {
    rt: tokio::runtime::Runtime,
    pool: sqlx::AnyPool,
}

impl Database {
    fn open(spec: &StackSpec) -> Database {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}/fastgate.db", spec.data_dir.display());
        let pool = rt.block_on(sqlx::AnyPool::connect(&url)).unwrap();
        Database { rt, pool }
    }

    fn execute(&self, sql: &str) {
        self.rt
            .block_on(sqlx::raw_sql(sql).execute(&self.pool))
            .unwrap();
    }

    fn jobs_of(&self, user: &str) -> i64 {
        let count = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE user_id = $1").bind(user);
        self.rt.block_on(count.fetch_one(&self.pool)).unwrap()
    }

    /// The state and owner of a key's row, if any.
    fn claim_of(&self, key: &str) -> Option<(String, Option<String>)> {
        let row =
            sqlx::query_as("SELECT state, owner FROM idempotency_keys WHERE key = $1").bind(key);
        self.rt.block_on(row.fetch_optional(&self.pool)).unwrap()
    }

    /// A claim of `key` by `owner`, in progress, as the origin writes it, and the owner's
    /// heartbeat `age_ms` ago by the database's clock (the same host's here).
    fn put_claim(&self, user: &str, key: &str, print: &str, owner: &str, age_ms: i64) {
        let now = i64::try_from(fastgate::http::unix_now()).unwrap();
        let claim = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, state, claim_token, \
             owner, created_at, expires_at) VALUES ($1, $2, $3, 'in_progress', 'ghost', $4, \
             $5, $6)",
        )
        .bind(user)
        .bind(key)
        .bind(print)
        .bind(owner)
        .bind(now)
        .bind(now + 300);
        let beat = sqlx::query("INSERT INTO origin_heartbeats (owner, seen_at) VALUES ($1, $2)")
            .bind(owner)
            .bind(now_ms() - age_ms);
        self.rt.block_on(async {
            claim.execute(&self.pool).await.unwrap();
            beat.execute(&self.pool).await.unwrap();
        });
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// The origin's fingerprint of a request: hex SHA-256 of method, path and body.
fn fingerprint(path: &str, body: &str) -> String {
    let digest = Sha256::digest(format!("POST\n{path}\n{body}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Real origins as origin_us and origin_eu on one SQLite database; origin_ap is `ap`. Rate
/// limits are lifted: every request of a test comes from one address.
fn real_origins(ap: Upstream) -> (Stack, StackSpec) {
    let config = config_with(|v| {
        for route in v["routes"].as_array_mut().unwrap() {
            route.as_object_mut().unwrap().remove("rate_limit");
        }
        v["failover"]["down_for_s"] = DOWN_FOR_S.into();
    });
    StackBuilder::new(vec![
        ("origin_us", Upstream::Origin { port: 0 }),
        ("origin_eu", Upstream::Origin { port: 0 }),
        ("origin_ap", ap),
    ])
    .config_override(config)
    .start_with_spec()
}

/// A keyed upload of `body` through the edge at `base`, as request `id`.
fn upload(
    base: &str,
    client: &reqwest::blocking::Client,
    token: &str,
    (id, key): (&str, &str),
    body: &str,
) -> reqwest::blocking::Response {
    client
        .post(format!("{base}/api/uploads"))
        .bearer_auth(token)
        .header("x-request-id", id)
        .header("content-type", "application/json")
        .header(IDEMPOTENCY_KEY_HEADER, key)
        .body(body.to_owned())
        .send()
        .unwrap()
}

/// The edge's `idempotency_conflict_wait` events for request `id`.
fn conflict_waits(stack: &Stack, id: &str) -> usize {
    json_lines(&stack.edge_log())
        .into_iter()
        .filter(|l| l["event"] == "idempotency_conflict_wait")
        .filter(|l| {
            l["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!(" to {id},")))
        })
        .count()
}

#[test]
fn a_keyed_upload_whose_origin_was_killed_mid_request_is_stored_once() {
    let ap = EchoServer::named("origin_ap");
    let (mut stack, spec) = real_origins(ap.upstream());
    let client = client_from(GERMANY);
    let email = format!("idem-{}@example.com", now_ms());
    let Account { email, token, .. } = sign_up(&stack.edge_url(), GERMANY, &email);
    let (base, db) = (stack.edge_url(), Database::open(&spec));
    let key = "killed-mid-request";
    // origin_eu's insert of the job stalls inside its transaction (a trigger that never
    // ends) while origin_eu holds the claim, so it is killed mid-request, the key claimed.
    db.execute(&format!(
        "CREATE TABLE burn (n INTEGER); \
         WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) \
         INSERT INTO burn SELECT n FROM c; \
         CREATE TRIGGER stall_on_eu BEFORE INSERT ON jobs WHEN EXISTS (SELECT 1 \
         FROM idempotency_keys WHERE key = '{key}' AND owner LIKE 'origin_eu-%') \
         BEGIN SELECT COUNT(*) FROM burn a, burn b, burn c, burn d; END;"
    ));
    let body = r#"{"content":"Written once, although its origin died."}"#;
    let sent = std::thread::scope(|scope| {
        let sending = scope.spawn(|| upload(&base, &client, &token, ("killed-1", key), body));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !db
            .claim_of(key)
            .is_some_and(|(_, owner)| owner.is_some_and(|o| o.starts_with("origin_eu-")))
        {
            assert!(Instant::now() < deadline, "origin_eu never claimed the key");
            std::thread::sleep(Duration::from_millis(10));
        }
        stack.kill_origin("origin_eu").unwrap();
        sending.join().unwrap()
    });

    assert_eq!(sent.status(), 202);
    assert_eq!(
        header(&sent, "fastgate-origin").as_deref(),
        Some("origin_us")
    );
    let first: Value = sent.json().unwrap();
    let tried = attempts(&stack, "killed-1");
    assert_eq!(tried[0], "origin_eu", "{tried}");
    assert!(
        tried.as_array().unwrap().contains(&json!("origin_us")),
        "{tried}"
    );
    let (state, owner) = db.claim_of(key).unwrap();
    assert_eq!(state, "completed");
    assert!(owner.unwrap().starts_with("origin_us-"));
    assert_eq!(db.jobs_of(&email), 1, "stored exactly once");

    // The client's own retry with the key gets the stored answer, and nothing runs again.
    let again = upload(&base, &client, &token, ("killed-2", key), body);
    assert_eq!(again.status(), 202);
    assert_eq!(
        header(&again, IDEMPOTENCY_REPLAYED_HEADER).as_deref(),
        Some("true")
    );
    assert_eq!(again.json::<Value>().unwrap(), first);
    assert_eq!(db.jobs_of(&email), 1);
}

#[test]
fn the_edges_own_retry_waits_out_a_dead_claim_and_a_first_409_is_passed_on() {
    let hole = BlackHole::start();
    let (stack, spec) = real_origins(hole.upstream());
    // Signed up from the US: a POST without a key is not retried past the black hole.
    let email = format!("idem-{}@example.com", now_ms());
    let Account { email, token, .. } = sign_up(&stack.edge_url(), US, &email);
    let client = client_from(JAPAN);
    let (base, db) = (stack.edge_url(), Database::open(&spec));
    let body = r#"{"content":"Claimed by a process that has just died."}"#;
    let print = fingerprint("/api/uploads", body);

    // The key is held by a process that beat a moment ago and died. The first attempt (to
    // origin_ap, which takes the request and hangs up) fails ambiguously; the retry on
    // origin_us meets the claim while its owner still looks alive, is answered 409, and
    // the edge waits and sends again until the claim is taken over.
    db.put_claim(&email, "just-died", &print, "origin_ghost-1", 0);
    let started = Instant::now();
    let resp = upload(&base, &client, &token, ("waited-1", "just-died"), body);
    assert_eq!(resp.status(), 202, "{:?}", resp.text());
    assert!(started.elapsed() < Duration::from_secs(10));
    let tried = attempts(&stack, "waited-1");
    let tried = tried.as_array().unwrap();
    assert_eq!(
        tried[..2],
        [json!("origin_ap"), json!("origin_us")],
        "{tried:?}"
    );
    assert!(tried.len() >= 3, "{tried:?}");
    assert!(
        conflict_waits(&stack, "waited-1") >= 1,
        "{}",
        stack.edge_log()
    );
    assert_eq!(hole.count("POST /api/uploads HTTP/1.1"), 1);
    assert_eq!(db.jobs_of(&email), 1, "stored exactly once");

    // A claim whose owner is alive, met by the client's first attempt: a concurrent
    // duplicate. The 409 and its Retry-After reach the client at once, sent to one origin.
    db.put_claim(&email, "in-flight", &print, "origin_ghost-2", -60_000);
    let started = Instant::now();
    let resp = upload(
        &base,
        &client_from(US),
        &token,
        ("first-1", "in-flight"),
        body,
    );
    assert_eq!(resp.status(), 409);
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(attempts(&stack, "first-1"), json!(["origin_us"]));
    assert_eq!(conflict_waits(&stack, "first-1"), 0);
    assert_eq!(db.jobs_of(&email), 1);
}

/// A route whose origin does not say it honours `Idempotency-Key` gets no keyed retry: a
/// key sent to a handler that ignores it would make the retry a second write.
#[test]
fn a_keyed_post_is_not_retried_on_a_route_that_does_not_honour_the_key() {
    let hole = BlackHole::start();
    let eu = EchoServer::named("origin_eu");
    let config = config_with(|v| {
        open_api_routes(v);
        let routes = v["routes"].as_array_mut().unwrap();
        let api = routes.iter().position(|r| r["id"] == "api").unwrap();
        routes.insert(
            api,
            serde_json::json!({"id": "no-key", "path": {"exact": "/api/no-key"},
                "methods": ["POST"], "auth": {"policy": "public"}}),
        );
    });
    let stack = StackBuilder::new(vec![
        ("origin_us", hole.upstream()),
        ("origin_eu", eu.upstream()),
        ("origin_ap", eu.upstream()),
    ])
    .config_override(config)
    .start();
    let url = format!("{}/api/no-key", stack.edge_url());
    let body = order_body("unhonoured");
    let resp = post(
        &client_from(US),
        &url,
        "unhonoured-1",
        Some("key-u-1"),
        &body,
    );
    assert_eq!(resp.status(), 502);
    assert_eq!(hole.count("POST /api/no-key HTTP/1.1"), 1);
    assert_eq!(
        eu.count("POST", "/api/no-key"),
        0,
        "retried on a route without the opt-in"
    );
}
