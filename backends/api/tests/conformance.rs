//! HTTP conformance: the same cases against the Rust origin (SQLite, and PostgreSQL when
//! `TEST_DATABASE_URL` is set) and, when `REFERENCE_URL` is set, against the Python
//! reference. Status and JSON must match; ids, tokens and timestamps are placeholders.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{json_matches, random_word, temp_dir, Origin};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Target {
    Rust,
    Reference,
}

#[derive(Clone, Debug)]
enum Auth {
    None,
    User,
    Header(String),
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    auth: Auth,
    headers: Vec<(&'static str, String)>,
    body: Body,
    status: u16,
    expect: Option<Value>,
    /// Response headers that must be present with this value (or absent for `None`).
    expect_headers: Vec<(&'static str, Option<&'static str>)>,
    rust_only: bool,
    /// Retry until it matches (the worker runs asynchronously).
    eventually: bool,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    status: u16,
    expect: Value,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        auth: Auth::None,
        headers: Vec::new(),
        body: Body::None,
        status,
        expect: Some(expect),
        expect_headers: Vec::new(),
        rust_only: false,
        eventually: false,
    }
}

impl Case {
    fn auth(mut self, a: Auth) -> Self {
        self.auth = a;
        self
    }
    fn user(self) -> Self {
        self.auth(Auth::User)
    }
    fn json(mut self, v: Value) -> Self {
        self.body = Body::Json(v);
        self
    }
    fn raw(mut self, ct: &'static str, b: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Raw(ct, b.into());
        self
    }
    fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.to_owned()));
        self
    }
    fn expect_header(mut self, k: &'static str, v: Option<&'static str>) -> Self {
        self.expect_headers.push((k, v));
        self
    }
    fn rust_only(mut self) -> Self {
        self.rust_only = true;
        self
    }
    fn eventually(mut self) -> Self {
        self.eventually = true;
        self
    }
    fn no_body_check(mut self) -> Self {
        self.expect = None;
        self
    }
}

fn detail(msg: &str) -> Value {
    json!({ "detail": msg })
}

fn err(kind: &str, loc: Value, msg: &str, input: Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input})
}

fn err_ctx(kind: &str, loc: Value, msg: &str, input: Value, ctx: Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input, "ctx": ctx})
}

fn errors(items: Vec<Value>) -> Value {
    json!({ "detail": items })
}

fn json_invalid(pos: usize, error: &str) -> Value {
    errors(vec![err_ctx(
        "json_invalid",
        json!(["body", pos]),
        "JSON decode error",
        json!({}),
        json!({"error": error}),
    )])
}

fn email_error(input: &str, reason: &str) -> Value {
    errors(vec![err_ctx(
        "value_error",
        json!(["body", "email"]),
        &format!("value is not a valid email address: {reason}"),
        json!(input),
        json!({"reason": reason}),
    )])
}

const UNAUTH: &str = "Not authenticated";
const PASSWORD: &str = "correct-horse-1";

/// Per-run facts the cases refer to.
struct Ctx {
    target: Target,
    run: String,
    email: String,
    uid: String,
    word: String,
    content: String,
}

/// A signed HS256 token with the dev secret, shaped for `target` (the reference rejects `aud`).
fn forge(target: Target, sub: &str, exp_offset: i64, secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = match target {
        Target::Rust => {
            json!({"sub": sub, "uid": "x", "iat": now, "exp": now + exp_offset, "iss": "fastgate-origin", "aud": "fastgate"})
        }
        Target::Reference => json!({"sub": sub, "uid": "x", "exp": now + exp_offset}),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn cases(c: &Ctx) -> Vec<Case> {
    let signup = "/api/auth/signup";
    let login = "/api/auth/login";
    let email2 = format!("second.{}@example.com", c.run);
    let upper = format!("Upper.{}@EXAMPLE.COM", c.run);
    let ghost = forge(
        c.target,
        &format!("ghost.{}@example.com", c.run),
        3600,
        "dev-only-secret-change-me",
    );
    let expired = forge(c.target, &c.email, -3600, "dev-only-secret-change-me");
    let wrong = forge(c.target, &c.email, 3600, "not-the-secret");
    let user_v1 = json!({"id": c.uid, "email": c.email, "full_name": "Ada King Lovelace", "joined": "<date>"});
    let user_v2 = json!({"id": c.uid, "contact": {"email": c.email}, "name": {"first": "Ada", "last": "King Lovelace"}, "joined_at": "<date>", "schema": 2});
    let long = "p".repeat(129);
    let summary = fastgate_api::text::summarize(&c.content, 2);
    let body_required = errors(vec![err(
        "missing",
        json!(["body"]),
        "Field required",
        Value::Null,
    )]);
    let not_dict = |input: Value| {
        errors(vec![err(
            "model_attributes_type",
            json!(["body"]),
            "Input should be a valid dictionary or object to extract fields from",
            input,
        )])
    };
    vec![
        // --- liveness, routing
        case("health", "GET", "/health", 200, json!({"status": "ok"})),
        case("health wrong method", "POST", "/health", 405, detail("Method Not Allowed")),
        case("unknown route", "GET", "/nope", 404, detail("Not Found")),
        case("unknown api route", "GET", "/api", 404, detail("Not Found")),
        case("ready", "GET", "/ready", 200, json!({"status": "ready"})).rust_only(),
        case("openapi", "GET", "/openapi.json", 200, json!({})).no_body_check().rust_only(),
        case("docs page", "GET", "/docs", 200, json!({})).no_body_check().rust_only(),
        case("jwks under hs256", "GET", "/.well-known/jwks.json", 200, json!({"keys": []})).rust_only(),
        // --- signup
        case("signup second user", "POST", signup, 201, json!({"id": "<uuid>", "email": email2, "full_name": null}))
            .json(json!({"email": email2, "password": PASSWORD})),
        case("signup duplicate", "POST", signup, 400, detail("The user with this email already exists"))
            .json(json!({"email": c.email, "password": PASSWORD})),
        case("signup normalises domain", "POST", signup, 201,
            json!({"id": "<uuid>", "email": format!("Upper.{}@example.com", c.run), "full_name": null}))
            .json(json!({"email": upper, "password": PASSWORD})),
        case("signup pretty address", "POST", signup, 201,
            json!({"id": "<uuid>", "email": format!("pretty.{}@example.com", c.run), "full_name": "P"}))
            .json(json!({"email": format!("Pretty Name <pretty.{}@example.com>", c.run), "password": PASSWORD, "full_name": "P"})),
        case("signup empty object", "POST", signup, 422, errors(vec![
            err("missing", json!(["body", "email"]), "Field required", json!({})),
            err("missing", json!(["body", "password"]), "Field required", json!({})),
        ])).json(json!({})),
        case("signup missing password", "POST", signup, 422, errors(vec![
            err("missing", json!(["body", "password"]), "Field required", json!({"email": "a@example.com"})),
        ])).json(json!({"email": "a@example.com"})),
        case("signup short password", "POST", signup, 422, errors(vec![err_ctx("string_too_short", json!(["body", "password"]),
            "String should have at least 8 characters", json!("short"), json!({"min_length": 8}))]))
            .json(json!({"email": "a@example.com", "password": "short"})),
        case("signup long password", "POST", signup, 422, errors(vec![err_ctx("string_too_long", json!(["body", "password"]),
            "String should have at most 128 characters", json!(long), json!({"max_length": 128}))]))
            .json(json!({"email": "a@example.com", "password": long})),
        case("signup email without @", "POST", signup, 422, email_error("x", "An email address must have an @-sign."))
            .json(json!({"email": "x", "password": PASSWORD})),
        case("signup email nothing after @", "POST", signup, 422, email_error("a@", "There must be something after the @-sign."))
            .json(json!({"email": "a@", "password": PASSWORD})),
        case("signup email nothing before @", "POST", signup, 422, email_error("@b.com", "There must be something before the @-sign."))
            .json(json!({"email": "@b.com", "password": PASSWORD})),
        case("signup email no period", "POST", signup, 422,
            email_error("a@b", "The part after the @-sign is not valid. It should have a period."))
            .json(json!({"email": "a@b", "password": PASSWORD})),
        case("signup email with space", "POST", signup, 422,
            email_error("a b@c.com", "The email address contains invalid characters before the @-sign: SPACE."))
            .json(json!({"email": "a b@c.com", "password": PASSWORD})),
        case("signup special-use domain", "POST", signup, 422, email_error("a@b.test",
            "The part after the @-sign is a special-use or reserved name that cannot be used with email."))
            .json(json!({"email": "a@b.test", "password": PASSWORD})),
        case("signup wrong types", "POST", signup, 422, errors(vec![
            err("string_type", json!(["body", "email"]), "Input should be a valid string", json!(5)),
            err("string_type", json!(["body", "password"]), "Input should be a valid string", json!(7)),
        ])).json(json!({"email": 5, "password": 7})),
        case("signup several errors", "POST", signup, 422, errors(vec![
            err_ctx("value_error", json!(["body", "email"]), "value is not a valid email address: An email address must have an @-sign.",
                json!("x"), json!({"reason": "An email address must have an @-sign."})),
            err_ctx("string_too_short", json!(["body", "password"]), "String should have at least 8 characters", json!("short"), json!({"min_length": 8})),
            err("string_type", json!(["body", "full_name"]), "Input should be a valid string", json!(5)),
        ])).json(json!({"email": "x", "password": "short", "full_name": 5})),
        case("signup no body", "POST", signup, 422, body_required.clone()),
        case("signup empty json body", "POST", signup, 422, body_required.clone()).raw("application/json", ""),
        case("signup text/plain", "POST", signup, 422, not_dict(json!("{\"email\":\"a@b.com\"}")))
            .raw("text/plain", "{\"email\":\"a@b.com\"}"),
        case("signup array body", "POST", signup, 422, not_dict(json!([1]))).raw("application/json", "[1]"),
        case("signup null body", "POST", signup, 422, not_dict(Value::Null)).raw("application/json", "null"),
        case("signup string body", "POST", signup, 422, not_dict(json!("x"))).raw("application/json", "\"x\""),
        case("json truncated", "POST", signup, 422, json_invalid(9, "Expecting value")).raw("application/json", "{\"email\":"),
        case("json trailing comma", "POST", signup, 422, json_invalid(7, "Expecting property name enclosed in double quotes"))
            .raw("application/json", "{\"a\":1,}"),
        case("json missing colon", "POST", signup, 422, json_invalid(5, "Expecting ':' delimiter")).raw("application/json", "{\"a\" 1}"),
        case("json missing comma", "POST", signup, 422, json_invalid(7, "Expecting ',' delimiter")).raw("application/json", "{\"a\":1 \"b\"}"),
        case("json extra data", "POST", signup, 422, json_invalid(3, "Extra data")).raw("application/json", "{} x"),
        case("json bad escape", "POST", signup, 422, json_invalid(6, "Invalid \\escape")).raw("application/json", "{\"a\":\"\\q\"}"),
        case("json unterminated string", "POST", signup, 422, json_invalid(5, "Unterminated string starting at"))
            .raw("application/json", "{\"a\":\"abc"),
        case("json array trailing comma", "POST", signup, 422, json_invalid(8, "Expecting value")).raw("application/json", "{\"a\":[1,]}"),
        case("json offsets count characters", "POST", signup, 422, json_invalid(8, "Extra data"))
            .raw("application/json", "{\"é\":1 }x"),
        case("body not utf-8", "POST", signup, 400, detail("There was an error parsing the body"))
            .raw("application/json", b"{\"a\":\"\xff\"}".to_vec()),
        // CPython raises RecursionError (past ~1,000 levels) and ValueError (an int over 4,300
        // digits) out of json.loads, which FastAPI answers 400; the origin caps the same way,
        // and sooner for nesting (127 levels) and object size (10,000 members).
        case("json nested past the recursion limit", "POST", signup, 400, detail("There was an error parsing the body"))
            .raw("application/json", format!("{}{}", "[".repeat(5000), "]".repeat(5000))),
        case("json integer over 4300 digits", "POST", signup, 400, detail("There was an error parsing the body"))
            .raw("application/json", format!("{{\"email\":{}}}", "7".repeat(4301))),
        case("json nested 128 levels", "POST", "/api/process", 400, detail("There was an error parsing the body"))
            .rust_only().user().raw("application/json", format!("{{\"id\":\"x\",\"payload\":{}1{}}}", "[".repeat(127), "]".repeat(127))),
        case("json object over 10000 members", "POST", signup, 400, detail("There was an error parsing the body"))
            .rust_only().raw("application/json", format!("{{{}}}", (0..10_001).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>().join(","))),
        case("signup wrong method", "GET", signup, 405, detail("Method Not Allowed")),
        // --- login
        case("login", "POST", login, 200, json!({"access_token": "<token>", "token_type": "bearer"}))
            .json(json!({"email": c.email, "password": PASSWORD})),
        case("login wrong password", "POST", login, 400, detail("Incorrect email or password"))
            .json(json!({"email": c.email, "password": "wrong-password"})),
        case("login unknown email", "POST", login, 400, detail("Incorrect email or password"))
            .json(json!({"email": format!("nobody.{}@example.com", c.run), "password": PASSWORD})),
        case("login empty password", "POST", login, 400, detail("Incorrect email or password"))
            .json(json!({"email": c.email, "password": ""})),
        case("login empty object", "POST", login, 422, errors(vec![
            err("missing", json!(["body", "email"]), "Field required", json!({})),
            err("missing", json!(["body", "password"]), "Field required", json!({})),
        ])).json(json!({})),
        case("login bad email", "POST", login, 422, email_error("nope", "An email address must have an @-sign."))
            .json(json!({"email": "nope", "password": "x"})),
        case("login invalid json", "POST", login, 422, json_invalid(1, "Expecting property name enclosed in double quotes"))
            .raw("application/json", "{bad"),
        case("login wrong method", "GET", login, 405, detail("Method Not Allowed")),
        // --- profile and auth failures
        case("profile without token", "GET", "/api/user/profile", 401, detail(UNAUTH)).expect_header("www-authenticate", Some("Bearer")),
        case("profile basic auth", "GET", "/api/user/profile", 401, detail(UNAUTH)).auth(Auth::Header("Basic abc".into())),
        case("profile lower-case bearer", "GET", "/api/user/profile", 401, detail(UNAUTH)).auth(Auth::Header("bearer abc".into())),
        case("profile garbage token", "GET", "/api/user/profile", 401, detail("Invalid token"))
            .auth(Auth::Header("Bearer abc".into())).expect_header("www-authenticate", Some("Bearer")),
        case("profile expired token", "GET", "/api/user/profile", 401, detail("Invalid token")).auth(Auth::Header(format!("Bearer {expired}"))),
        case("profile wrong secret", "GET", "/api/user/profile", 401, detail("Invalid token")).auth(Auth::Header(format!("Bearer {wrong}"))),
        case("profile", "GET", "/api/user/profile", 200, json!({"email": c.email, "joined": "<date>"})).user(),
        case("profile of unknown user", "GET", "/api/user/profile", 404, detail("User not found")).auth(Auth::Header(format!("Bearer {ghost}"))),
        case("profile wrong method", "DELETE", "/api/user/profile", 405, detail("Method Not Allowed")),
        // --- user by id
        case("user v1", "GET", format!("/api/user/{}", c.uid), 200, user_v1.clone()).user(),
        case("user id without hyphens", "GET", format!("/api/user/{}", c.uid.replace('-', "")), 200, user_v1.clone()).user(),
        case("user bad uuid", "GET", "/api/user/xyz", 422, errors(vec![err_ctx("uuid_parsing", json!(["path", "user_id"]),
            "Input should be a valid UUID, invalid character: found `x` at 0", json!("xyz"), json!({"error": "invalid character: found `x` at 0"}))])).user(),
        case("user short uuid", "GET", "/api/user/0d6c58eb-59e5-4e09-9647-bffe48f19a3", 422, errors(vec![err_ctx("uuid_parsing", json!(["path", "user_id"]),
            "Input should be a valid UUID, invalid group length in group 4: expected 12, found 11", json!("0d6c58eb-59e5-4e09-9647-bffe48f19a3"),
            json!({"error": "invalid group length in group 4: expected 12, found 11"}))])).user(),
        case("user bad uuid without token", "GET", "/api/user/xyz", 401, detail(UNAUTH)),
        case("user unknown", "GET", format!("/api/user/{}", uuid::Uuid::new_v4()), 404, detail("User not found")).user(),
        case("user v2 by flag", "GET", format!("/api/user/{}", c.uid), 200, user_v2.clone()).user().header("fastgate-flags", "new_schema=1,other=0").rust_only(),
        case("user v2 by bare flag", "GET", format!("/api/user/{}", c.uid), 200, user_v2.clone()).user().header("fastgate-flags", "x=1, new_schema").rust_only(),
        case("user v1 when flag off", "GET", format!("/api/user/{}", c.uid), 200, user_v1.clone()).user().header("fastgate-flags", "new_schema=0").rust_only(),
        case("user wrong method", "POST", format!("/api/user/{}", c.uid), 405, detail("Method Not Allowed")).user(),
        // --- process
        case("process", "POST", "/api/process", 200, json!({"status": "ok"})).user().json(json!({"id": "item-1", "payload": {"b": 1, "a": [2]}})),
        case("process default payload", "POST", "/api/process", 200, json!({"status": "ok"})).user().json(json!({"id": "item-2"})),
        case("process without token", "POST", "/api/process", 401, detail(UNAUTH)).json(json!({"id": "x"})),
        case("process invalid json beats auth", "POST", "/api/process", 422, json_invalid(1, "Expecting property name enclosed in double quotes"))
            .raw("application/json", "{bad"),
        case("process auth beats validation", "POST", "/api/process", 401, detail(UNAUTH)).json(json!({})),
        case("process missing id", "POST", "/api/process", 422, errors(vec![err("missing", json!(["body", "id"]), "Field required", json!({}))]))
            .user().json(json!({})),
        case("process empty id and list payload", "POST", "/api/process", 422, errors(vec![
            err_ctx("string_too_short", json!(["body", "id"]), "String should have at least 1 character", json!(""), json!({"min_length": 1})),
            err("dict_type", json!(["body", "payload"]), "Input should be a valid dictionary", json!([1])),
        ])).user().json(json!({"id": "", "payload": [1]})),
        case("process long id", "POST", "/api/process", 422, errors(vec![err_ctx("string_too_long", json!(["body", "id"]),
            "String should have at most 128 characters", json!("i".repeat(129)), json!({"max_length": 128}))]))
            .user().json(json!({"id": "i".repeat(129)})),
        case("process id not a string", "POST", "/api/process", 422, errors(vec![
            err("string_type", json!(["body", "id"]), "Input should be a valid string", json!(12)),
        ])).user().json(json!({"id": 12})),
        // --- uploads, summaries, query
        case("summaries without token", "GET", "/api/summaries", 401, detail(UNAUTH)),
        case("summaries empty", "GET", "/api/summaries", 200, json!([])).auth(Auth::Header(format!("Bearer {ghost}"))),
        case("upload", "POST", "/api/uploads", 202, json!({"status": "processing", "key": "<upload-key>"})).user().json(json!({"content": c.content})),
        case("upload empty content", "POST", "/api/uploads", 422, errors(vec![err_ctx("string_too_short", json!(["body", "content"]),
            "String should have at least 1 character", json!(""), json!({"min_length": 1}))])).user().json(json!({"content": ""})),
        case("upload missing content", "POST", "/api/uploads", 422, errors(vec![err("missing", json!(["body", "content"]), "Field required", json!({"text": "x"}))]))
            .user().json(json!({"text": "x"})),
        case("upload without token", "POST", "/api/uploads", 401, detail(UNAUTH)).json(json!({"content": "x"})),
        case("upload wrong method", "GET", "/api/uploads", 405, detail("Method Not Allowed")),
        case("summaries after upload", "GET", "/api/summaries", 200,
            json!([{"key": "<upload-key>", "summary": summary, "created_at": "<datetime>"}])).user().eventually(),
        case("query finds the uploaded sentence", "POST", "/api/query", 200,
            json!({"answer": format!("The {} ferns grow in deep shade.", c.word), "sources": 1}))
            .user().json(json!({"query": format!("{} what", c.word.to_uppercase())})),
        case("query without matches", "POST", "/api/query", 200, json!({"answer": "", "sources": 0}))
            .user().json(json!({"query": random_word(24)})),
        case("query empty", "POST", "/api/query", 422, errors(vec![err_ctx("string_too_short", json!(["body", "query"]),
            "String should have at least 1 character", json!(""), json!({"min_length": 1}))])).user().json(json!({"query": ""})),
        case("query too long", "POST", "/api/query", 422, errors(vec![err_ctx("string_too_long", json!(["body", "query"]),
            "String should have at most 2000 characters", json!("q".repeat(2001)), json!({"max_length": 2000}))]))
            .user().json(json!({"query": "q".repeat(2001)})),
        case("query not a string", "POST", "/api/query", 422, errors(vec![
            err("string_type", json!(["body", "query"]), "Input should be a valid string", json!(["a"])),
        ])).user().json(json!({"query": ["a"]})),
        case("query without token", "POST", "/api/query", 401, detail(UNAUTH)).json(json!({"query": "x"})),
        // --- CORS
        case("cors preflight allowed", "OPTIONS", "/api/process", 200, Value::Null).no_body_check()
            .header("origin", "http://localhost:4321").header("access-control-request-method", "POST")
            .expect_header("access-control-allow-origin", Some("http://localhost:4321"))
            .expect_header("access-control-allow-credentials", Some("true")),
        case("cors simple request allowed", "GET", "/health", 200, json!({"status": "ok"})).header("origin", "http://localhost:4321")
            .expect_header("access-control-allow-origin", Some("http://localhost:4321")),
        case("cors simple request foreign origin", "GET", "/health", 200, json!({"status": "ok"})).header("origin", "http://evil.example")
            .expect_header("access-control-allow-origin", None),
    ]
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    c: &Case,
) -> (u16, reqwest::header::HeaderMap, String) {
    let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}{}", c.path));
    match &c.auth {
        Auth::None => {}
        Auth::User => req = req.header("authorization", format!("Bearer {token}")),
        Auth::Header(h) => req = req.header("authorization", h),
    }
    for (k, v) in &c.headers {
        req = req.header(*k, v);
    }
    req = match &c.body {
        Body::None => req,
        Body::Json(v) => req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(v).unwrap()),
        Body::Raw(ct, b) => req.header("content-type", *ct).body(b.clone()),
    };
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}

fn check(
    c: &Case,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    text: &str,
) -> Result<(), String> {
    if status != c.status {
        return Err(format!(
            "status {status}, expected {} (body {text})",
            c.status
        ));
    }
    for (k, v) in &c.expect_headers {
        let got = headers.get(*k).and_then(|h| h.to_str().ok());
        if got != *v {
            return Err(format!("header {k}: {got:?}, expected {v:?}"));
        }
    }
    if let Some(expect) = &c.expect {
        let actual: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        json_matches(expect, &actual, "$")?;
        // Compact JSON, as FastAPI's JSONResponse writes it (length is independent of key order).
        let compact = serde_json::to_string(&actual).unwrap_or_default();
        if compact.len() != text.len() {
            return Err(format!("body is not compact JSON: {text}"));
        }
    }
    Ok(())
}

/// Runs every case against `base`; panics listing all failures.
async fn run_suite(base: &str, target: Target) -> usize {
    let client = reqwest::Client::new();
    let run = random_word(10);
    let word = format!("zq{}", random_word(12));
    let content = format!(
        "The {word} ferns grow in deep shade. Ordinary words fill this plain sentence! Shade and ferns and shade again? A closing remark."
    );
    let email = format!("ada.{run}@example.com");
    // Fixture: one user with a full name, logged in.
    let r = client
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"email": email, "password": PASSWORD, "full_name": "Ada King Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "fixture signup");
    let uid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = common::login(&client, base, &email, PASSWORD).await;
    let ctx = Ctx {
        target,
        run,
        email,
        uid,
        word,
        content,
    };

    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases(&ctx) {
        if c.rust_only && target == Target::Reference {
            continue;
        }
        ran += 1;
        let deadline = Instant::now() + Duration::from_secs(if c.eventually { 20 } else { 0 });
        loop {
            let (status, headers, text) = send(&client, base, &token, &c).await;
            match check(&c, status, &headers, &text) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => {
                    failures.push(format!("[{}] {} {}: {e}", c.name, c.method, c.path));
                    break;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed against {target:?} {base}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    ran
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_rust_sqlite() {
    let dir = temp_dir("sqlite");
    let origin = Origin::start("origin_test", &dir, &[("FASTGATE_WORKER_POLL_MS", "100")]);
    let ran = run_suite(&origin.url, Target::Rust).await;
    assert!(ran >= 60, "only {ran} cases");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_rust_postgres() {
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("FASTGATE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "FASTGATE_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
        );
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL conformance not run");
        return;
    };
    let dir = temp_dir("pg");
    let origin = Origin::start(
        "origin_pg",
        &dir,
        &[("DATABASE_URL", &url), ("FASTGATE_WORKER_POLL_MS", "100")],
    );
    let ran = run_suite(&origin.url, Target::Rust).await;
    assert!(ran >= 60, "only {ran} cases");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_reference() {
    let Some(url) = std::env::var("REFERENCE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("REFERENCE_URL not set: reference conformance not run");
        return;
    };
    let ran = run_suite(url.trim_end_matches('/'), Target::Reference).await;
    assert!(ran >= 60, "only {ran} shared cases");
}
