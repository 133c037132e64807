//! End-to-end: the edge refuses what it cannot read safely, through the real Wasm under
//! Viceroy, with requests written byte by byte on a raw socket (HTTP clients would fix
//! them up first): header bytes that are not UTF-8, URIs over 8 KiB, encoded separators
//! and control characters, methods in the wrong case, and bodies over the route's limit.
//! Every refusal is problem+json, and none reaches the origin.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use support::{config_with, hs256, open_api_routes, EchoServer, StackBuilder};

/// One answer read off the socket.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn is_problem(&self) -> bool {
        self.header("content-type") == Some("application/problem+json")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }
}

/// Writes `head` (request line and fields, each ending in CRLF; the blank line is added)
/// and then `body` in chunks from another thread, the way a client that does not wait for
/// an early answer would, and reads the answer until the edge closes the connection.
fn send(addr: SocketAddr, head: &[u8], body: Vec<Vec<u8>>) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    let writing = std::thread::spawn(move || {
        // The edge may answer and close before it has read everything: not an error here.
        if writer.write_all(&request).is_err() {
            return;
        }
        for chunk in body {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let _ = writing.join();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A bodiless request: `METHOD target` with the given extra header lines.
fn request(addr: SocketAddr, method: &str, target: &[u8], fields: &[&[u8]]) -> Answer {
    let mut head = Vec::new();
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target);
    head.extend_from_slice(format!(" HTTP/1.1\r\nHost: {addr}\r\n").as_bytes());
    for field in fields {
        head.extend_from_slice(field);
        head.extend_from_slice(b"\r\n");
    }
    send(addr, &head, Vec::new())
}

/// A stack of three echo origins (one shared count), the API routes public, and the
/// cached `user-by-id` route public too so an anonymous request reaches the cache phase.
fn echo_stack(edit: impl FnOnce(&mut Value)) -> (EchoServer, xtask::stack::Stack) {
    let echo = EchoServer::start();
    let config = config_with(|v| {
        open_api_routes(v);
        for route in v["routes"].as_array_mut().unwrap() {
            if route["id"] == "user-by-id" {
                route["auth"] = serde_json::json!({"policy": "public"});
            }
        }
        edit(v);
    });
    let stack = StackBuilder::new(echo.everywhere())
        .config_override(config)
        .start();
    (echo, stack)
}

#[test]
fn header_bytes_that_are_not_utf8_get_a_normal_answer_never_a_500() {
    let (echo, stack) = echo_stack(|_| {});
    let addr = stack.edge_addr();
    let cases: [(&str, &[u8], &[u8], u16); 10] = [
        ("cookie", b"/health", b"Cookie: theme=caf\xe9", 200),
        (
            "bearer, public route",
            b"/health",
            b"Authorization: Bearer caf\xe9",
            200,
        ),
        (
            "bearer, required route",
            b"/api/user/profile",
            b"Authorization: Bearer caf\xe9",
            401,
        ),
        (
            "if-none-match, cached route",
            b"/api/user/7",
            b"If-None-Match: \"caf\xe9\"",
            200,
        ),
        (
            "cache-control, cached route",
            b"/api/user/7",
            b"Cache-Control: caf\xe9",
            200,
        ),
        ("unknown header", b"/api/items", b"X-Unknown: caf\xe9", 200),
        (
            "origin, CORS route",
            b"/api/items",
            b"Origin: https://caf\xe9.example",
            200,
        ),
        ("request id", b"/health", b"X-Request-Id: caf\xe9", 200),
        ("forwarded", b"/health", b"X-Forwarded-For: caf\xe9", 200),
        ("connection", b"/health", b"Connection: caf\xe9", 200),
    ];
    for (what, target, field, want) in cases {
        let a = request(addr, "GET", target, &[field]);
        assert_eq!(a.status, want, "{what}: {} {}", a.head, a.body);
        if a.status >= 400 {
            assert!(a.is_problem(), "{what}: {}", a.head);
        }
    }
    // A non-UTF-8 byte in the query or the Host: refused (by Viceroy's HTTP parser or by
    // the edge), never a 500.
    for target in [
        &b"/health?q=caf\xe9"[..],
        b"/health?q=caf%E9",
        b"/health?q=%00",
    ] {
        let a = request(addr, "GET", target, &[]);
        assert!(a.status < 500, "{target:?}: {} {}", a.head, a.body);
    }
    // A Host that Viceroy accepts but the SDK's URL parser refuses (the SDK panics on it
    // when the proxy phase sets the path) is refused first, with a 400 problem.
    let before = echo.count("GET", "/");
    for host in ["x:99999", "1.2.3.256", "xn--"] {
        let head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\n");
        let a = send(addr, head.as_bytes(), Vec::new());
        assert_eq!(a.status, 400, "{host}: {} {}", a.head, a.body);
        assert!(a.is_problem(), "{host}: {}", a.head);
    }
    assert_eq!(echo.count("GET", "/"), before);
}

/// A bodiless request: method, target and extra field lines.
type Bodiless<'a> = (&'a str, &'a [u8], Vec<&'a [u8]>);

/// Every field a request may carry that the edge, the cache or the origin reads.
const FIELDS: [&str; 36] = [
    "authorization",
    "cookie",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
    "cache-control",
    "pragma",
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "via",
    "connection",
    "te",
    "content-type",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "referer",
    "fastgate-identity",
    "fastgate-flags",
    "signature",
    "signature-input",
    "content-digest",
    "expect",
    "upgrade",
    "x-unknown",
    "host",
];

/// The class behind defect 4, swept: each of [`FIELDS`] with a value that is not UTF-8, on
/// every kind of request the edge treats differently (plain, CORS, cached, an authenticated
/// per-user read, a preflight, a login body), never makes the edge answer 5xx.
#[test]
fn no_field_value_that_is_not_utf8_makes_the_edge_fail() {
    let echo = EchoServer::start();
    let config = config_with(|v| v["auth"]["cookie"] = "session".into());
    let (stack, spec) = StackBuilder::new(echo.everywhere())
        .config_override(config)
        .start_with_spec();
    let addr = stack.edge_addr();
    let now = fastgate::http::unix_now();
    let claims = json!({"sub": "carol@example.com", "uid": "7b0c1f4e-0000-4000-8000-000000000001",
        "iss": "fastgate-origin", "aud": "fastgate", "iat": now, "exp": now + 600});
    let bearer = format!(
        "Authorization: Bearer {}",
        hs256(&spec.secrets.jwt_hs256_key, &claims)
    );
    let origin = "Origin: http://localhost:4321";
    let login = br#"{"email": "carol@example.com", "password": "wrong"}"#;
    for field in FIELDS {
        let bad = [field.as_bytes(), b": caf\xe9 \xff\xfe"].concat();
        let reads: [Bodiless; 5] = [
            ("GET", b"/health", vec![]),
            ("GET", b"/api/items", vec![origin.as_bytes()]),
            ("GET", b"/api/user/profile", vec![bearer.as_bytes()]),
            ("GET", b"/api/summaries", vec![bearer.as_bytes()]),
            (
                "OPTIONS",
                b"/api/items",
                vec![origin.as_bytes(), b"Access-Control-Request-Method: GET"],
            ),
        ];
        for (method, target, mut fields) in reads {
            fields.push(&bad);
            let a = request(addr, method, target, &fields);
            assert!(
                a.status < 500,
                "{field} on {method} {target:?}: {} {}",
                a.head,
                a.body
            );
        }
        let head = [
            format!("POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\n").as_bytes(),
            format!("Content-Length: {}\r\n", login.len()).as_bytes(),
            &bad,
            b"\r\n",
        ]
        .concat();
        let a = send(addr, &head, vec![login.to_vec()]);
        assert!(a.status < 500, "{field} on a login: {} {}", a.head, a.body);
    }
}

#[test]
fn a_uri_over_8_kib_is_read_whole_so_traversal_is_refused_and_over_the_limit_is_414() {
    let (echo, stack) = echo_stack(|_| {});
    let addr = stack.edge_addr();
    let before = echo.count("GET", "/");
    let pad = "a".repeat(9 * 1024);
    for path in [
        "/api/auth/../user/profile",
        "/api/auth/%2e%2e/user/profile",
        "/api/auth/..\\user/profile",
        "/api/auth/..%5Cuser/profile",
    ] {
        let target = format!("{path}?pad={pad}");
        let a = request(addr, "GET", target.as_bytes(), &[]);
        assert_eq!(a.status, 400, "{path}: {} {}", a.head, a.body);
        assert!(a.is_problem(), "{}", a.head);
    }
    assert_eq!(
        echo.count("GET", "/"),
        before,
        "no refused request reached the origin"
    );

    // Read whole, a long harmless URI arrives intact.
    let a = request(addr, "GET", format!("/api/items?pad={pad}").as_bytes(), &[]);
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["query"], format!("pad={pad}"));

    // Over `limits.max_uri_bytes` (16 KiB by default): the edge's 414 problem.
    for len in [20 * 1024, 60 * 1024] {
        let target = format!("/api/items?pad={}", "a".repeat(len));
        let a = request(addr, "GET", target.as_bytes(), &[]);
        assert_eq!(a.status, 414, "{len}: {}", a.head);
        assert!(a.is_problem(), "{}", a.head);
    }
    // Past what an `http::Uri` holds (64 KiB), Viceroy answers 414 itself.
    let target = format!("/api/items?pad={}", "a".repeat(100 * 1024));
    assert_eq!(request(addr, "GET", target.as_bytes(), &[]).status, 414);
    assert_eq!(echo.count("GET", "/"), before + 1);
}

#[test]
fn encoded_separators_and_control_characters_never_reach_the_origin() {
    let (echo, stack) = echo_stack(|_| {});
    let addr = stack.edge_addr();
    let before = echo.count("GET", "/");
    for target in [
        "/api/user/..%5Cprofile",
        "/api/user/..%5cprofile",
        "/api/items/a%00b",
        "/api/items/a%0Ab",
        "/api/items/a%0d%0aX-Injected:%201",
        "/api/items/%C2%85",
        "/api/user/..%2Fprofile",
        "/api/auth/%252e%252e/user/profile",
        "/api/auth/..;/user/profile",
        "/api/%2Fevil.example",
        "/api/items/%C0%AE%C0%AE/x",
    ] {
        let a = request(addr, "GET", target.as_bytes(), &[]);
        assert_eq!(a.status, 400, "{target}: {} {}", a.head, a.body);
        assert!(a.is_problem(), "{target}: {}", a.head);
    }
    assert_eq!(echo.count("GET", "/"), before);
    // An encoded slash inside a segment is kept encoded, as routing saw it.
    let a = request(addr, "GET", b"/api/items/a%2fb", &[]);
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["path"], "/api/items/a%2Fb");
    // A `://` in the query is data: the path is the one sent, the query arrives whole.
    let a = request(
        addr,
        "GET",
        b"/api/items?next=https://x.example/health",
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["path"], "/api/items");
    assert_eq!(a.json()["query"], "next=https://x.example/health");
}

#[test]
fn methods_are_case_sensitive_and_a_405_says_what_is_allowed() {
    let (echo, stack) = echo_stack(|_| {});
    let addr = stack.edge_addr();
    let before = echo.count("GET", "/");
    for (method, target) in [
        ("get", "/api/user/profile"),
        ("Get", "/api/items"),
        ("post", "/api/auth/login"),
        ("TRACE", "/health"),
        ("PROPFIND", "/api/items"),
    ] {
        let a = request(addr, method, target.as_bytes(), &[]);
        assert_eq!(a.status, 501, "{method} {target}: {} {}", a.head, a.body);
        assert!(a.is_problem(), "{}", a.head);
    }
    assert_eq!(echo.count("GET", "/"), before);
    assert_eq!(echo.count("get", "/"), 0);

    for (method, target, allow) in [
        ("DELETE", "/health", "GET, HEAD"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("PUT", "/.well-known/jwks.json", "GET, HEAD"),
        ("OPTIONS", "/ready", "GET, HEAD"),
    ] {
        let a = request(addr, method, target.as_bytes(), &[]);
        assert_eq!(a.status, 405, "{method} {target}: {}", a.head);
        assert!(a.is_problem(), "{}", a.head);
        assert_eq!(
            a.header("allow"),
            Some(allow),
            "{method} {target}: {}",
            a.head
        );
    }
}

/// `POST target` with a body of `len` bytes, declared with `Content-Length` or sent chunked.
fn post(addr: SocketAddr, target: &str, len: usize, chunked: bool) -> Answer {
    let chunk = vec![b'x'; 64 * 1024];
    let mut body = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        if chunked {
            let mut framed = format!("{n:x}\r\n").into_bytes();
            framed.extend_from_slice(&chunk[..n]);
            framed.extend_from_slice(b"\r\n");
            body.push(framed);
        } else {
            body.push(chunk[..n].to_vec());
        }
        left -= n;
    }
    let framing = if chunked {
        body.push(b"0\r\n\r\n".to_vec());
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{framing}\r\n"
    );
    send(addr, head.as_bytes(), body)
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_before_the_origin_sees_it() {
    let (echo, stack) = echo_stack(|v| {
        for route in v["routes"].as_array_mut().unwrap() {
            if route["id"] == "login" {
                route["max_body_bytes"] = 1024.into();
            }
            // Six signups within the limit are sent from one address: room for them.
            if route["rate_limit"]["group"] == "signup" {
                route["rate_limit"]["limit"] = 100.into();
            }
        }
    });
    let addr = stack.edge_addr();
    let big = 2 * 1024 * 1024;
    for chunked in [false, true] {
        for target in ["/api/auth/signup", "/v1/auth/signup", "/api/uploads"] {
            let a = post(addr, target, big, chunked);
            assert_eq!(
                a.status, 413,
                "{target} chunked={chunked}: {} {}",
                a.head, a.body
            );
            assert!(a.is_problem(), "{}", a.head);
        }
        // Just over the default limit, and over a route's own smaller limit (the login
        // route's rate-limit key reads the body: the limit holds before it).
        let a = post(addr, "/api/auth/signup", 1024 * 1024 + 1, chunked);
        assert_eq!(a.status, 413, "chunked={chunked}: {}", a.head);
        let a = post(addr, "/api/auth/login", 2048, chunked);
        assert_eq!(a.status, 413, "chunked={chunked}: {}", a.head);
    }
    assert_eq!(
        echo.count("POST", "/"),
        0,
        "no refused body reached the origin"
    );

    // Within the limit, the body arrives intact however it was framed.
    for chunked in [false, true] {
        for len in [1, 300 * 1024, 1024 * 1024] {
            let a = post(addr, "/api/auth/signup", len, chunked);
            assert_eq!(a.status, 200, "{len} chunked={chunked}: {}", a.head);
            let seen = a.json();
            assert_eq!(seen["body_len"], len, "{len} chunked={chunked}");
            assert_eq!(seen["method"], "POST");
        }
    }
    let a = post(addr, "/api/auth/login", 1024, true);
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["body_len"], 1024);
    assert_eq!(echo.count("POST", "/"), 7);
}
