//! `Idempotency-Key` on `POST /api/uploads` and `POST /api/process`, against real origin
//! processes and a real database (SQLite by default, PostgreSQL with `TEST_DATABASE_URL`):
//! two origins share the database, so a retry that lands on the other one is replayed too,
//! and a claim left by a dead process is taken over while a live one's is not.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{new_account, random_word, temp_dir, Origin};
use fastgate_api::db::Db;
use fastgate_api::http::idempotency::{
    fingerprint, unix_now, Begin, IdempotencyStore, StoredResponse, HEARTBEAT_FORGET,
    IN_PROGRESS_DETAIL, IN_PROGRESS_LEASE, MISMATCH_DETAIL, OWNER_STALE_AFTER,
};
use fastgate_api::Settings;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

/// Two origins on one database (no upload worker: only the queued jobs are counted), a
/// handle on that database, a client and two accounts (email, token), made once because
/// argon2 in a debug build is slow. Scenarios count the jobs they add, not all jobs.
struct Stack {
    a: Origin,
    b: Origin,
    db: Db,
    client: reqwest::Client,
    users: [(String, String); 2],
    dir: std::path::PathBuf,
}

impl Stack {
    async fn start(database_url: Option<String>) -> Stack {
        let dir = temp_dir("idempotency");
        let mut env: Vec<(&str, &str)> = vec![("FASTGATE_WORKER", "0")];
        if let Some(url) = &database_url {
            env.push(("DATABASE_URL", url));
        }
        let (mut a, mut b) = (
            Origin::spawn("origin_a", &dir, &env),
            Origin::spawn("origin_b", &dir, &env),
        );
        a.wait_ready("origin_a");
        b.wait_ready("origin_b");
        let settings =
            Settings::from_lookup("test".into(), dir.clone(), database_url, |_| None).unwrap();
        let db = Db::connect(&settings).await.unwrap();
        let client = reqwest::Client::new();
        let users = tokio::join!(account(&client, &a.url), account(&client, &b.url));
        Stack {
            users: [users.0, users.1],
            a,
            b,
            db,
            client,
            dir,
        }
    }

    /// The first account, as `(email, token)`.
    fn user(&self) -> (&str, &str) {
        (&self.users[0].0, &self.users[0].1)
    }

    /// A POST of `body` (JSON text, sent byte for byte) to `path` on `base`.
    fn post(&self, base: &str, path: &str, token: &str, body: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
    }

    async fn jobs_of(&self, email: &str) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE user_id = $1")
            .bind(email)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn items_with(&self, id: &str) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM items WHERE data LIKE $1")
            .bind(format!("%\"id\":\"{id}\"%"))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Writes a key's row directly, as another process would have left it (one from
    /// before claims had owners: no owner).
    async fn put_row(&self, email: &str, key: &str, print: &str, state: &str, expires_at: i64) {
        self.put_owned_row(email, key, print, state, expires_at, None)
            .await;
    }

    /// As [`Stack::put_row`], the claim owned by `owner`.
    async fn put_owned_row(
        &self,
        email: &str,
        key: &str,
        print: &str,
        state: &str,
        expires_at: i64,
        owner: Option<&str>,
    ) {
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, state, claim_token, \
             owner, status, content_type, body, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 'elsewhere', $5, 202, 'application/json', $6, $7, $8)",
        )
        .bind(email)
        .bind(key)
        .bind(print)
        .bind(state)
        .bind(owner)
        .bind(br#"{"stale":true}"#.to_vec())
        .bind(unix_now() - 10)
        .bind(expires_at)
        .execute(&self.db.pool)
        .await
        .unwrap();
    }

    /// Sets `owner`'s heartbeat to `age_ms` ago (negative: in the future, alive for the
    /// whole test).
    async fn beat_as(&self, owner: &str, age_ms: i64) {
        sqlx::query(
            "INSERT INTO origin_heartbeats (owner, seen_at) VALUES ($1, $2) \
             ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(owner)
        .bind(now_ms() - age_ms)
        .execute(&self.db.pool)
        .await
        .unwrap();
    }

    /// The state and owner of a key's row.
    async fn row_of(&self, email: &str, key: &str) -> (String, Option<String>) {
        let row: (String, Option<String>) = sqlx::query_as(
            "SELECT state, owner FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        )
        .bind(email)
        .bind(key)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        row
    }
}

/// Unix milliseconds (the database runs on this host in these tests, so its clock is this).
fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap()
}

/// A new account on `base`; returns its email (the key scope) and token.
async fn account(client: &reqwest::Client, base: &str) -> (String, String) {
    let email = format!("idem.{}@example.com", random_word(10));
    let token = new_account(client, base, &email).await;
    (email, token)
}

/// Status, the `Idempotency-Replayed` header and the body of an answer.
async fn answer(r: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let r = r.send().await.unwrap();
    let replayed = r
        .headers()
        .get("idempotency-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), replayed, r.text().await.unwrap())
}

fn detail(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap()["detail"].clone()
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The first answer is stored; the same request again (on the other origin, the key in its
/// bare form) gets it back, marked, and nothing runs twice.
async fn replay_returns_the_stored_answer_once(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let key = new_key();
    let body = r#"{"content":"First sentence here. A second one."}"#;
    let first = s.post(&s.a.url, "/api/uploads", token, body);
    let first = answer(first.header("Idempotency-Key", format!("\"{key}\""))).await;
    assert_eq!((first.0, first.1.as_deref()), (202, None), "{}", first.2);
    let again = s.post(&s.b.url, "/api/uploads", token, body);
    let r = again.header("Idempotency-Key", &key).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(r.headers()["idempotency-replayed"], "true");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), first.2, "the same upload key");
    assert_eq!(s.jobs_of(email).await, jobs + 1);

    // A key is for one request: /api/process needs another.
    let key = new_key();
    let id = format!("idem-{}", random_word(12));
    let body = json!({"id": id, "payload": {"n": 1}}).to_string();
    for (base, replayed) in [(&s.a.url, None), (&s.b.url, Some("true"))] {
        let r = s.post(base, "/api/process", token, &body);
        let got = answer(r.header("Idempotency-Key", &key)).await;
        assert_eq!((got.0, got.1.as_deref()), (200, replayed), "{}", got.2);
        assert_eq!(got.2, r#"{"status":"ok"}"#);
    }
    assert_eq!(s.items_with(&id).await, 1);
}

/// A key already used for one request refuses another: another body, or another path.
async fn a_key_reused_for_another_request_is_refused(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let key = new_key();
    let body = r#"{"content":"Original content."}"#;
    let r = s.post(&s.a.url, "/api/uploads", token, body);
    assert_eq!(answer(r.header("Idempotency-Key", &key)).await.0, 202);
    for (path, other) in [
        ("/api/uploads", r#"{"content":"Other content."}"#),
        ("/api/process", body),
    ] {
        let r = s.post(&s.b.url, path, token, other);
        let (status, replayed, text) = answer(r.header("Idempotency-Key", &key)).await;
        assert_eq!((status, replayed), (422, None), "{path}: {text}");
        assert_eq!(detail(&text), json!(MISMATCH_DETAIL));
    }
    assert_eq!(s.jobs_of(email).await, jobs + 1);
}

/// A key whose first request has not finished: 409 and nothing runs. Once with the row put
/// there by hand (deterministic), once with real requests racing on both origins.
async fn a_key_in_progress_is_a_conflict(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let key = new_key();
    let body = r#"{"content":"Held in progress."}"#;
    let print = fingerprint(&Method::POST, "/api/uploads", body.as_bytes());
    s.put_row(email, &key, &print, "in_progress", unix_now() + 60)
        .await;
    let r = s.post(&s.a.url, "/api/uploads", token, body);
    let r = r.header("Idempotency-Key", &key).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(detail(&r.text().await.unwrap()), json!(IN_PROGRESS_DETAIL));
    assert_eq!(s.jobs_of(email).await, jobs);

    let key = new_key();
    let racers = (0..8).map(|i| {
        let base = if i % 2 == 0 { &s.a.url } else { &s.b.url };
        let r = s.post(base, "/api/uploads", token, body);
        tokio::spawn(answer(r.header("Idempotency-Key", &key)))
    });
    let mut uploads = Vec::new();
    for racer in racers.collect::<Vec<_>>() {
        match racer.await.unwrap() {
            (202, _, text) => uploads.push(text),
            (409, _, text) => assert_eq!(detail(&text), json!(IN_PROGRESS_DETAIL)),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(!uploads.is_empty());
    assert!(uploads.iter().all(|u| u == &uploads[0]), "{uploads:?}");
    let added = s.jobs_of(email).await - jobs;
    assert_eq!(added, 1, "one upload for 8 racing requests");
}

/// A claim whose owner's heartbeat is stale (or gone) belonged to a process that died with
/// the request: the same request again takes it over at once, runs once and is recorded as
/// this origin's. The same key for another request is still refused.
async fn a_dead_owners_claim_is_taken_over(s: &Stack) {
    let (email, token) = s.user();
    let body = r#"{"content":"Its origin died with it."}"#;
    let print = fingerprint(&Method::POST, "/api/uploads", body.as_bytes());
    let lease_left = unix_now() + 200;
    let stale = ms(OWNER_STALE_AFTER) + 1_000;
    let dead = format!("origin_dead-{}", random_word(8));
    s.beat_as(&dead, stale).await;
    let gone = format!("origin_gone-{}", random_word(8));
    for owner in [&dead, &gone] {
        let jobs = s.jobs_of(email).await;
        let key = new_key();
        s.put_owned_row(email, &key, &print, "in_progress", lease_left, Some(owner))
            .await;
        let other = s.post(&s.a.url, "/api/uploads", token, r#"{"content":"Another."}"#);
        let (status, _, text) = answer(other.header("Idempotency-Key", &key)).await;
        assert_eq!(status, 422, "{owner}: {text}");
        let r = s.post(&s.a.url, "/api/uploads", token, body);
        let (status, replayed, text) = answer(r.header("Idempotency-Key", &key)).await;
        assert_eq!((status, replayed), (202, None), "{owner}: {text}");
        assert_eq!(s.jobs_of(email).await, jobs + 1, "{owner}");
        let (state, now_owner) = s.row_of(email, &key).await;
        assert_eq!(state, "completed");
        assert!(now_owner.unwrap().starts_with("origin_a-"));
        let r = s.post(&s.b.url, "/api/uploads", token, body);
        let (status, replayed, again) = answer(r.header("Idempotency-Key", &key)).await;
        assert_eq!(
            (status, replayed.as_deref(), again),
            (202, Some("true"), text)
        );
        assert_eq!(s.jobs_of(email).await, jobs + 1, "{owner}");
    }
}

/// A claim whose owner still beats is a request in flight: 409 with `Retry-After`, and
/// nothing runs. Once that owner stops beating (it died), the same request goes through.
async fn a_live_owners_claim_is_a_conflict_until_it_dies(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let key = new_key();
    let body = r#"{"content":"Still running elsewhere."}"#;
    let print = fingerprint(&Method::POST, "/api/uploads", body.as_bytes());
    let owner = format!("origin_live-{}", random_word(8));
    s.beat_as(&owner, -60_000).await;
    s.put_owned_row(
        email,
        &key,
        &print,
        "in_progress",
        unix_now() + 200,
        Some(&owner),
    )
    .await;
    for base in [&s.a.url, &s.b.url] {
        let r = s.post(base, "/api/uploads", token, body);
        let r = r.header("Idempotency-Key", &key).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 409);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(detail(&r.text().await.unwrap()), json!(IN_PROGRESS_DETAIL));
    }
    assert_eq!(s.jobs_of(email).await, jobs);
    assert_eq!(
        s.row_of(email, &key).await.1.as_deref(),
        Some(owner.as_str())
    );

    s.beat_as(&owner, ms(OWNER_STALE_AFTER) + 1).await;
    let r = s.post(&s.b.url, "/api/uploads", token, body);
    let (status, replayed, text) = answer(r.header("Idempotency-Key", &key)).await;
    assert_eq!((status, replayed), (202, None), "{text}");
    assert_eq!(s.jobs_of(email).await, jobs + 1);
}

/// The heartbeats themselves: every origin process beats under its own owner id, a store
/// keeps its claims while it lives (beyond the staleness bound) and loses them once it is
/// dropped (its heartbeat thread stops), and long-stale heartbeat rows are purged.
async fn heartbeats_keep_claims_alive(s: &Stack) {
    let owners: Vec<(String, i64)> =
        sqlx::query_as("SELECT owner, seen_at FROM origin_heartbeats ORDER BY owner")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    for name in ["origin_a-", "origin_b-"] {
        let (_, seen_at) = owners.iter().find(|(o, _)| o.starts_with(name)).unwrap();
        assert!(
            now_ms() - seen_at < ms(OWNER_STALE_AFTER),
            "{name}: {owners:?}"
        );
    }

    let ttl = Duration::from_secs(3600);
    let (doomed, other) = (
        IdempotencyStore::new(&s.db, ttl, "doomed"),
        IdempotencyStore::new(&s.db, ttl, "other"),
    );
    assert_ne!(doomed.owner(), other.owner());
    let (user, key, print) = (
        format!("beat-{}", random_word(8)),
        new_key(),
        "b".repeat(64),
    );
    let claimed = doomed.begin(&user, &key, &print, unix_now()).await.unwrap();
    assert!(matches!(claimed, Begin::Claimed(_)), "{claimed:?}");
    let past_bound = OWNER_STALE_AFTER + Duration::from_millis(700);
    tokio::time::sleep(past_bound).await;
    let held = other.begin(&user, &key, &print, unix_now()).await.unwrap();
    assert!(
        matches!(held, Begin::InProgress),
        "a live owner beats: {held:?}"
    );
    drop(doomed);
    tokio::time::sleep(past_bound).await;
    let taken = other.begin(&user, &key, &print, unix_now()).await.unwrap();
    assert!(
        matches!(taken, Begin::Claimed(_)),
        "a dead owner's claim: {taken:?}"
    );

    let forgotten = format!("origin_forgotten-{}", random_word(8));
    s.beat_as(&forgotten, ms(HEARTBEAT_FORGET) + 1_000).await;
    other.purge(unix_now()).await.unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT owner FROM origin_heartbeats")
        .fetch_all(&s.db.pool)
        .await
        .unwrap();
    assert!(!left.contains(&forgotten), "{left:?}");
    assert!(left.iter().any(|o| o == other.owner()), "{left:?}");
}

/// Malformed keys are a 400 naming the header, before anything runs.
async fn malformed_keys_are_refused(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let body = r#"{"content":"Never stored."}"#;
    let long = "k".repeat(256);
    for values in [
        vec!["\"unterminated"],
        vec!["two words"],
        vec!["\"\""],
        vec!["\"key\";param=1"],
        vec![long.as_str()],
        vec!["a", "b"],
    ] {
        let mut r = s.post(&s.a.url, "/api/uploads", token, body);
        for v in &values {
            r = r.header("Idempotency-Key", *v);
        }
        let (status, _, text) = answer(r).await;
        assert_eq!(status, 400, "{values:?}: {text}");
        let detail = detail(&text);
        assert!(
            detail.as_str().unwrap().contains("Idempotency-Key"),
            "{detail}"
        );
    }
    assert_eq!(s.jobs_of(email).await, jobs);
}

/// The same key from two users is two keys.
async fn keys_are_scoped_per_user(s: &Stack) {
    let key = new_key();
    let body = r#"{"content":"Same words, two owners."}"#;
    let mut answers = Vec::new();
    for (email, token) in &s.users {
        let jobs = s.jobs_of(email).await;
        let r = s.post(&s.a.url, "/api/uploads", token, body);
        let (status, replayed, text) = answer(r.header("Idempotency-Key", &key)).await;
        assert_eq!((status, replayed), (202, None), "{text}");
        assert_eq!(s.jobs_of(email).await, jobs + 1);
        answers.push(text);
    }
    assert_ne!(answers[0], answers[1]);
}

/// An expired row counts as absent: the request runs and the key is taken over; purging
/// removes expired rows only.
async fn expired_rows_are_ignored(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let key = new_key();
    let body = r#"{"content":"Fresh again."}"#;
    let print = fingerprint(&Method::POST, "/api/uploads", body.as_bytes());
    s.put_row(email, &key, &print, "completed", unix_now() - 1)
        .await;
    let r = s.post(&s.a.url, "/api/uploads", token, body);
    let (status, replayed, text) = answer(r.header("Idempotency-Key", &key)).await;
    assert_eq!((status, replayed), (202, None), "{text}");
    assert!(!text.contains("stale"), "{text}");
    assert_eq!(s.jobs_of(email).await, jobs + 1);
    let r = s.post(&s.b.url, "/api/uploads", token, body);
    let (status, replayed, again) = answer(r.header("Idempotency-Key", &key)).await;
    assert_eq!(
        (status, replayed.as_deref(), again),
        (202, Some("true"), text)
    );

    let gone = new_key();
    s.put_row(email, &gone, &print, "completed", unix_now() - 1)
        .await;
    let store = IdempotencyStore::new(&s.db, Duration::from_secs(60), "test");
    assert!(store.purge(unix_now()).await.unwrap() >= 1);
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM idempotency_keys WHERE user_id = $1 AND key IN ($2, $3)",
    )
    .bind(email)
    .bind(&key)
    .bind(&gone)
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(left, [key], "the live key stays, the expired one goes");
}

/// Validation errors (a 4xx the same body always gets) are stored and replayed; without a
/// valid caller nothing is stored and the handler answers as without the header.
async fn client_errors_are_replayed_and_anonymous_requests_untouched(s: &Stack) {
    let (email, token) = s.user();
    let jobs = s.jobs_of(email).await;
    let key = new_key();
    let mut seen = None;
    for base in [&s.a.url, &s.b.url] {
        let r = s.post(base, "/api/uploads", token, "{}");
        let (status, replayed, text) = answer(r.header("Idempotency-Key", &key)).await;
        assert_eq!(status, 422, "{text}");
        assert_eq!(replayed.is_some(), seen.is_some());
        assert_eq!(detail(&text)[0]["type"], "missing");
        seen.get_or_insert(text.clone());
        assert_eq!(Some(&text), seen.as_ref());
    }
    let r = s.post(
        &s.a.url,
        "/api/uploads",
        "not-a-token",
        "{\"content\":\"x\"}",
    );
    let (status, _, text) = answer(r.header("Idempotency-Key", &key)).await;
    assert_eq!(status, 401, "{text}");
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(email)
            .bind(&key)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(rows, 1, "only the 422 is stored");
    assert_eq!(s.jobs_of(email).await, jobs);
}

/// The store on its own: a released key can be claimed again, and a claim whose lease ran
/// out is taken over, after which the first claim can no longer complete.
async fn claims_release_and_lease(s: &Stack) {
    let store = IdempotencyStore::new(&s.db, Duration::from_secs(3600), "test");
    let (user, key, print) = (
        format!("store-{}", random_word(8)),
        new_key(),
        "f".repeat(64),
    );
    let now = unix_now();
    let Begin::Claimed(first) = store.begin(&user, &key, &print, now).await.unwrap() else {
        panic!("a new key is claimed");
    };
    assert!(matches!(
        store.begin(&user, &key, &print, now).await.unwrap(),
        Begin::InProgress
    ));
    store.release(&first).await.unwrap();
    let Begin::Claimed(first) = store.begin(&user, &key, &print, now).await.unwrap() else {
        panic!("a released key is claimed again");
    };
    let later = now + i64::try_from(IN_PROGRESS_LEASE.as_secs()).unwrap();
    let Begin::Claimed(second) = store.begin(&user, &key, &print, later).await.unwrap() else {
        panic!("a claim past its lease is taken over");
    };
    let stored = |body: &'static str| StoredResponse {
        status: reqwest::StatusCode::ACCEPTED,
        content_type: None,
        location: Some(reqwest::header::HeaderValue::from_static("/there")),
        body: body.into(),
    };
    store
        .complete(&first, &stored("late"), later)
        .await
        .unwrap();
    assert!(matches!(
        store.begin(&user, &key, &print, later).await.unwrap(),
        Begin::InProgress
    ));
    store.complete(&second, &stored("ok"), later).await.unwrap();
    match store.begin(&user, &key, &print, later).await.unwrap() {
        Begin::Replay(got) => assert_eq!(got, stored("ok")),
        other => panic!("expected a replay, got {other:?}"),
    }
}

async fn all(database_url: Option<String>) {
    let s = Stack::start(database_url).await;
    replay_returns_the_stored_answer_once(&s).await;
    a_key_reused_for_another_request_is_refused(&s).await;
    a_key_in_progress_is_a_conflict(&s).await;
    a_dead_owners_claim_is_taken_over(&s).await;
    a_live_owners_claim_is_a_conflict_until_it_dies(&s).await;
    heartbeats_keep_claims_alive(&s).await;
    malformed_keys_are_refused(&s).await;
    keys_are_scoped_per_user(&s).await;
    expired_rows_are_ignored(&s).await;
    client_errors_are_replayed_and_anonymous_requests_untouched(&s).await;
    claims_release_and_lease(&s).await;
    let dir = s.dir.clone();
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_sqlite() {
    all(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_postgres() {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => all(Some(url)).await,
        None => {
            assert!(
                std::env::var("FASTGATE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FASTGATE_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
            );
            eprintln!("TEST_DATABASE_URL not set: PostgreSQL idempotency test not run");
        }
    }
}
