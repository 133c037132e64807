//! The origin's work limits (issue 14): a request body costs linear, bounded parsing work;
//! password hashing never runs on more threads than there are cores, and a burst past that
//! is answered 503 with `Retry-After`; and retrieval only ever reads the caller's documents.

mod common;

use std::time::{Duration, Instant};

use common::{new_account, temp_dir, Origin, PASSWORD};
use fastgate_api::db::Db;
use fastgate_api::json::{self, Limits};
use fastgate_api::Settings;
use serde_json::{json, Value};
use sqlx::Row;

/// The attack body of defect 1: a sign-up whose object holds 50,000 distinct keys
/// (about 585 KiB), which took 3.9 s of origin CPU when each key scanned the ones before.
fn fifty_thousand_keys() -> String {
    let mut body = format!(r#"{{"email":"keys@example.com","password":"{PASSWORD}""#);
    for i in 0..50_000 {
        body.push_str(&format!(",\"k{i:06}\":1"));
    }
    body.push('}');
    assert!(
        (580 * 1024..600 * 1024).contains(&body.len()),
        "{}",
        body.len()
    );
    body
}

/// `release` for an optimised build, else a bound generous enough for a debug build on a
/// loaded two-core machine. The quadratic build took seconds even optimised (3.9 s in the
/// report; 22 s here under load), so either bound fails it.
fn bound(release_ms: u64, debug_ms: u64) -> Duration {
    Duration::from_millis(if cfg!(debug_assertions) {
        debug_ms
    } else {
        release_ms
    })
}

/// Held by the tests that time work and by the one that floods the hashers, so a timing
/// is never taken while argon2 runs on every core.
static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The fastest of three runs: the work's cost, not the machine's other load.
fn fastest<T>(mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut best = None;
    let mut out = None;
    for _ in 0..3 {
        let started = Instant::now();
        out = Some(run());
        let took = started.elapsed();
        best = Some(best.map_or(took, |b: Duration| b.min(took)));
    }
    (best.unwrap(), out.unwrap())
}

/// Regression (issue 14, defect 1): with the member cap lifted, all 50,000 keys are built
/// into one object within the bound (a hash index, not a scan per key); with the default
/// limits the same body is refused as over a limit, sooner still.
#[test]
fn fifty_thousand_keys_parse_in_linear_time() {
    let _alone = CPU_HEAVY.blocking_lock();
    let body = fifty_thousand_keys();
    let uncapped = Limits {
        max_object_members: usize::MAX,
        ..Limits::DEFAULT
    };
    let (took, parsed) = fastest(|| json::parse_with(&body, uncapped));
    let parsed = parsed.expect("valid JSON");
    assert_eq!(
        parsed
            .get("k049999")
            .map(json::Value::to_compact)
            .as_deref(),
        Some("1")
    );
    assert!(took < bound(250, 5_000), "50,000 keys took {took:?}");
    eprintln!("50,000 keys: built in {took:?}");
    // As the origin parses it: refused at the 10,001st member, within the acceptance bound.
    let (took, refused) = fastest(|| json::parse(&body));
    assert!(refused.unwrap_err().is_limit());
    assert!(
        took < bound(50, 2_000),
        "refusing 50,000 keys took {took:?}"
    );
    eprintln!("50,000 keys: refused in {took:?}");
}

/// Regression (issue 14, defect 1), end to end: the 50,000-key sign-up is answered 400 in
/// FastAPI's shape within the bound, and the origin goes on answering.
#[tokio::test(flavor = "multi_thread")]
async fn a_fifty_thousand_key_signup_is_refused_quickly() {
    let _alone = CPU_HEAVY.lock().await;
    let dir = temp_dir("limits-keys");
    let origin = Origin::start("origin_limits", &dir, &[]);
    let client = reqwest::Client::new();
    let body = fifty_thousand_keys();
    let send = || {
        client
            .post(format!("{}/api/auth/signup", origin.url))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    send().await.unwrap(); // warm the connection and the process
    let started = Instant::now();
    let r = send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "There was an error parsing the body"})
    );
    assert!(took < bound(50, 3_000), "answered in {took:?}");
    eprintln!("50,000-key sign-up answered in {took:?}");
    let health = client.get(format!("{}/health", origin.url)).send().await;
    assert_eq!(health.unwrap().status().as_u16(), 200);
}

/// A burst of sign-ups bigger than the hashers and their queue: every answer is a 201 or
/// a 503 with `Retry-After` in FastAPI's `{"detail": ...}` shape (never a 500 or a hang),
/// some are refused, and the origin answers normally afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_signup_burst_past_the_hashers_gets_503_with_retry_after() {
    let _alone = CPU_HEAVY.lock().await;
    let dir = temp_dir("limits-argon2");
    let origin = Origin::start("origin_limits", &dir, &[]);
    let client = reqwest::Client::new();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // Every hasher busy, every queue place taken, and as many again refused outright.
    let burst = cores * 9 * 2 + 8;
    let run = common::random_word(8);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..burst {
        let r = client
            .post(format!("{}/api/auth/signup", origin.url))
            .json(&json!({"email": format!("burst{i}.{run}@example.com"), "password": PASSWORD}))
            .send();
        requests.spawn(async move {
            let r = r.await.unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").cloned();
            (status, retry, r.json::<Value>().await.unwrap())
        });
    }
    let answers = requests.join_all().await;
    let mut refused = 0;
    for (status, retry, body) in &answers {
        match status {
            201 => assert!(retry.is_none()),
            503 => {
                refused += 1;
                assert_eq!(retry.as_ref().unwrap(), "1");
                assert!(body["detail"].is_string(), "{body}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(refused > 0, "no 503 among {burst} concurrent sign-ups");
    assert!(refused < burst, "every sign-up was refused");
    let email = format!("after.{run}@example.com");
    new_account(&client, &origin.url, &email).await;
}

/// Uploads `content` for `token` and returns its object key.
async fn upload(client: &reqwest::Client, base: &str, token: &str, content: &str) -> String {
    let r = client
        .post(format!("{base}/api/uploads"))
        .bearer_auth(token)
        .json(&json!({"content": content}))
        .send()
        .await
        .unwrap();
    common::string_field(r, 202, "key").await
}

async fn ask(client: &reqwest::Client, base: &str, token: &str, query: &str) -> Value {
    let r = client
        .post(format!("{base}/api/query"))
        .bearer_auth(token)
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

async fn query_is_scoped_to_the_caller(database_url: Option<String>) {
    let dir = temp_dir("limits-query");
    let mut env = vec![("FASTGATE_WORKER_POLL_MS", "100")];
    if let Some(url) = &database_url {
        env.push(("DATABASE_URL", url));
    }
    let origin = Origin::start("origin_query", &dir, &env);
    let client = reqwest::Client::new();
    let run = common::random_word(10);
    let (alice_word, bob_word) = (format!("zqa{run}"), format!("zqb{run}"));
    let alice = new_account(&client, &origin.url, &format!("alice.{run}@example.com")).await;
    let bob = new_account(&client, &origin.url, &format!("bob.{run}@example.com")).await;
    let alice_text = format!("Alice keeps {alice_word} notes private.");
    let bob_text = format!("Bob files {bob_word} reports daily.");
    upload(&client, &origin.url, &alice, &alice_text).await;
    upload(&client, &origin.url, &bob, &bob_text).await;
    let both = format!("{alice_word} {bob_word}");
    // Wait for the worker: each one's own document shows up in their own answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (a, b) = loop {
        let a = ask(&client, &origin.url, &alice, &both).await;
        let b = ask(&client, &origin.url, &bob, &both).await;
        if a["sources"] != 0 && b["sources"] != 0 {
            break (a, b);
        }
        assert!(
            Instant::now() < deadline,
            "documents never indexed: {a} {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(a, json!({"answer": alice_text, "sources": 1}));
    assert_eq!(b, json!({"answer": bob_text, "sources": 1}));
    // Someone with no uploads finds nothing, not everyone else's.
    let carol = new_account(&client, &origin.url, &format!("carol.{run}@example.com")).await;
    assert_eq!(
        ask(&client, &origin.url, &carol, &both).await,
        json!({"answer": "", "sources": 0})
    );
}

/// Regression (issue 14, `/api/query` scoping): two users' uploads; each one's query, naming
/// words from both documents, answers from their own only.
#[tokio::test(flavor = "multi_thread")]
async fn query_sees_only_the_callers_documents_sqlite() {
    query_is_scoped_to_the_caller(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn query_sees_only_the_callers_documents_postgres() {
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL query scoping not run");
        return;
    };
    query_is_scoped_to_the_caller(Some(url)).await;
}

/// The scoped corpus is read through indexes (the caller's summaries, then each document by
/// its key), never by scanning every user's documents.
#[tokio::test(flavor = "multi_thread")]
async fn the_callers_corpus_is_read_through_indexes() {
    let dir = temp_dir("limits-plan");
    let settings = Settings::from_lookup("test".into(), dir, None, |_| None).unwrap();
    let db = Db::connect(&settings).await.unwrap();
    let plan = format!("EXPLAIN QUERY PLAN {}", fastgate_api::search::CORPUS_OF);
    let rows = sqlx::query(&plan)
        .bind("someone@example.com")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let steps: Vec<String> = rows.iter().map(|r| r.get::<String, _>(3)).collect();
    let plan = steps.join("\n");
    assert!(!plan.contains("SCAN"), "a full scan:\n{plan}");
    assert!(plan.contains("summaries_by_user"), "{plan}");
    assert!(plan.contains("SEARCH d USING INDEX"), "{plan}");
}
