//! The end-to-end harness: real origin processes, real Viceroy running the real Wasm, and
//! real HTTP from a client bound to a chosen loopback address (which `fastly.toml` maps to
//! a country). Everything is torn down when the [`xtask::stack::Stack`] drops, including
//! when a test panics.
//!
//! [`StackBuilder`] starts a stack the way a test needs it; the peers a test puts behind
//! the edge (an echo origin, a JWKS endpoint, a scripted origin of the test's own) are
//! axum apps on a [`FixtureServer`]; [`tokens`] signs what the edge will verify.

// Every test binary compiles this module and uses a part of it (and of its re-exports).
#![allow(dead_code, unused_imports)]

mod fixture;
mod peers;
mod stack;
mod tokens;
pub mod webdriver;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use xtask::stack::{free_port, Upstream};

pub use fixture::FixtureServer;
pub use peers::{BlackHole, EchoServer, JwksServer};
pub use stack::StackBuilder;
pub use tokens::{hs256, jwks_document, EcKey};

/// The embedded gateway config, edited: how ops would derive an override.
pub fn config_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED).unwrap();
    edit(&mut v);
    v.to_string()
}

/// Makes the `api` and `v1-compat` routes public: for tests whose origin is an echo server
/// and who are not about authentication.
pub fn open_api_routes(v: &mut serde_json::Value) {
    for route in v["routes"].as_array_mut().unwrap() {
        if route["id"] == "api" || route["id"] == "v1-compat" {
            route["auth"] = serde_json::json!({"policy": "public"});
        }
    }
}

/// Sends a request with a raw, un-normalised target (HTTP clients would resolve `..`
/// themselves) and returns the status code and the whole response text.
pub fn raw_request(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    (status, text)
}

/// A scratch directory under the target dir, fresh for each call (`<prefix>-<name>-…`).
pub fn scratch(prefix: &str, name: &str) -> std::path::PathBuf {
    let dir = xtask::workspace_root().join("target/tmp").join(format!(
        "{prefix}-{name}-{}-{}",
        std::process::id(),
        free_port().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A response field's value as text (empty when absent or not text).
pub fn header(resp: &reqwest::blocking::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the edge answers with `release` (each instance reads the pointer at most
/// once a second).
pub fn wait_for_release(base: &str, host: Option<&str>, release: &str) {
    let client = client_from(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut req = client.get(format!("{base}/health"));
        if let Some(host) = host {
            req = req.header("host", host);
        }
        let got = req.send().map(|r| header(&r, "fastgate-release"));
        if got.as_deref().ok() == Some(release) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "release {release} never served: {got:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The three named origins, each a real `fastgate-api` process.
pub fn three_origins() -> Vec<(&'static str, Upstream)> {
    ["origin_us", "origin_eu", "origin_ap"]
        .into_iter()
        .map(|name| (name, Upstream::Origin { port: 0 }))
        .collect()
}

/// An address nothing listens on: an origin that is down.
pub fn dead_address() -> Upstream {
    Upstream::Address(SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())))
}

/// An HTTP client whose connections come from `127.0.0.<last>`, i.e. from the location
/// that `fastly.toml`'s geolocation table gives that address.
pub fn client_from(last: u8) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the client")
}

/// A user signed up and logged in through the edge.
pub struct Account {
    pub email: String,
    pub id: String,
    pub token: String,
}

/// Signs `email` up through the edge at `base`, from `127.0.0.<from>`, and logs in.
pub fn sign_up(base: &str, from: u8, email: &str) -> Account {
    let client = client_from(from);
    let creds = serde_json::json!({"email": email, "password": "correct-horse-1"});
    let mut signup = creds.clone();
    signup["full_name"] = "Test User".into();
    let resp = client
        .post(format!("{base}/api/auth/signup"))
        .json(&signup)
        .send()
        .expect("signing up");
    assert_eq!(resp.status(), 201, "sign-up through the edge");
    let user: serde_json::Value = resp.json().expect("a sign-up answer");
    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&creds)
        .send()
        .and_then(reqwest::blocking::Response::json)
        .expect("logging in");
    Account {
        email: email.to_owned(),
        id: user["id"].as_str().expect("an id").to_owned(),
        token: login["access_token"].as_str().expect("a token").to_owned(),
    }
}
