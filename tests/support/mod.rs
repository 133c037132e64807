//! The end-to-end harness: real origin processes, real Viceroy running the real Wasm, and
//! real HTTP from a client bound to a chosen loopback address (which `fastly.toml` maps to
//! a country). Everything is torn down when the [`xtask::stack::Stack`] drops, including
//! when a test panics.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use xtask::stack::{free_port, Secrets, Stack, StackSpec, Upstream};

/// The built Wasm, origin binary and Viceroy. `cargo xtask test` passes them in; a plain
/// `cargo test` builds them into `target/e2e` (a separate target dir, so the nested cargo
/// never waits on the outer one's lock).
pub struct Artifacts {
    pub wasm: PathBuf,
    pub origin_bin: PathBuf,
    pub viceroy: PathBuf,
}

pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let root = xtask::workspace_root();
        let target = root.join("target/e2e");
        let from_env = |var: &str| std::env::var_os(var).map(PathBuf::from);
        let wasm = from_env("FASTGATE_WASM").unwrap_or_else(|| {
            xtask::build::edge_wasm(&root, &target).expect("building the edge wasm")
        });
        let origin_bin = from_env("FASTGATE_ORIGIN_BIN").unwrap_or_else(|| {
            xtask::build::origin_binary(&root, &target).expect("building the origin")
        });
        let viceroy = xtask::tools::ensure_viceroy().expect("viceroy 0.22.0 is required");
        Artifacts {
            wasm,
            origin_bin,
            viceroy,
        }
    })
}

/// Starts a stack whose named backends point where `backends` says.
pub fn start_stack(backends: Vec<(&str, Upstream)>) -> Stack {
    start_stack_with(backends, None).0
}

/// Like [`start_stack`], with a gateway config served from the Config Store; returns the
/// spec too, for [`Stack::restart_origin`].
pub fn start_stack_with(
    backends: Vec<(&str, Upstream)>,
    config_override: Option<String>,
) -> (Stack, StackSpec) {
    start_stack_env(backends, config_override, Vec::new())
}

/// Like [`start_stack_with`], with extra environment for the origin processes.
pub fn start_stack_env(
    backends: Vec<(&str, Upstream)>,
    config_override: Option<String>,
    origin_env: Vec<(&str, &str)>,
) -> (Stack, StackSpec) {
    start_stack_full(backends, config_override, None, origin_env)
}

/// The general form: config and flag overrides in the Config Store, origin environment.
pub fn start_stack_full(
    backends: Vec<(&str, Upstream)>,
    config_override: Option<String>,
    flags_override: Option<String>,
    origin_env: Vec<(&str, &str)>,
) -> (Stack, StackSpec) {
    let a = artifacts();
    let data_dir = std::env::temp_dir().join(format!(
        "fastgate-e2e-data-{}-{}",
        std::process::id(),
        free_port().unwrap()
    ));
    let spec = StackSpec {
        wasm: a.wasm.clone(),
        origin_bin: a.origin_bin.clone(),
        viceroy: a.viceroy.clone(),
        base_manifest: xtask::workspace_root().join("fastly.toml"),
        backends: backends
            .into_iter()
            .map(|(name, up)| (name.to_string(), up))
            .collect(),
        edge_port: 0,
        data_dir,
        inherit_output: false,
        origin_env: origin_env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        config_override,
        flags_override,
        secrets: Secrets::generate().expect("generating secrets"),
    };
    let stack = Stack::start(&spec).expect("starting the stack");
    (stack, spec)
}

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

/// A stack with the API routes public (see [`open_api_routes`]).
pub fn start_open_stack(backends: Vec<(&str, Upstream)>) -> Stack {
    start_stack_with(backends, Some(config_with(open_api_routes))).0
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

/// A peer that reads a request, records its request line, and hangs up without answering:
/// an origin that died after receiving the request.
pub struct BlackHole {
    pub addr: SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = received.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                // Take in everything the client sends (the whole request), then hang up
                // once it has gone quiet waiting for an answer.
                conn.set_read_timeout(Some(Duration::from_millis(300))).ok();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&request);
                if let Some(line) = text.lines().next().filter(|l| !l.is_empty()) {
                    lines.lock().unwrap().push(line.to_owned());
                }
                drop(conn);
            }
        });
        BlackHole { addr, received }
    }

    /// How many received requests had this request line (e.g. `POST /api/process HTTP/1.1`).
    pub fn count(&self, request_line: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == request_line)
            .count()
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::Address(self.addr)
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

/// A test-only origin that answers every request with what it received, as JSON. It lives
/// in the test harness, so no debug endpoint ships in the product.
pub struct EchoServer {
    pub addr: SocketAddr,
    /// `METHOD /path` of every request received.
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        Self::named("echo")
    }

    /// An echo server that answers with `Fastgate-Origin: <name>`, like a real origin.
    pub fn named(name: &'static str) -> EchoServer {
        Self::slow(name, Duration::ZERO)
    }

    /// A named echo server that waits `delay` before answering: an overloaded origin.
    pub fn slow(name: &'static str, delay: Duration) -> EchoServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = received.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = axum::Router::new()
                    .fallback(echo)
                    .layer(axum::middleware::from_fn(
                        move |req: axum::extract::Request, next: axum::middleware::Next| {
                            seen.lock().unwrap().push(format!(
                                "{} {}",
                                req.method(),
                                req.uri().path()
                            ));
                            async move {
                                tokio::time::sleep(delay).await;
                                let mut resp = next.run(req).await;
                                resp.headers_mut().insert(
                                    "fastgate-origin",
                                    axum::http::HeaderValue::from_static(name),
                                );
                                resp
                            }
                        },
                    ));
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        EchoServer {
            addr,
            received,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::Address(self.addr)
    }

    /// How many requests arrived with this method, on any path under `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                l.split_once(' ')
                    .is_some_and(|(m, p)| m == method && p.starts_with(path_prefix))
            })
            .count()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn echo(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<serde_json::Value> {
    let mut h = serde_json::Map::new();
    for (name, value) in &headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match h.get_mut(name.as_str()) {
            Some(serde_json::Value::Array(list)) => list.push(v.into()),
            _ => {
                h.insert(name.as_str().to_owned(), serde_json::json!([v]));
            }
        }
    }
    Json(serde_json::json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": h,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    }))
}

/// A JWKS endpoint under the test's control: serves whatever document it holds now, and
/// counts the fetches.
pub struct JwksServer {
    pub addr: SocketAddr,
    pub document: std::sync::Arc<std::sync::Mutex<String>>,
    pub fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JwksServer {
    pub fn start(document: String) -> JwksServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let document = std::sync::Arc::new(std::sync::Mutex::new(document));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = axum::Router::new().route(
                    "/.well-known/jwks.json",
                    axum::routing::get(move || {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let body = doc.lock().unwrap().clone();
                        async move { ([("content-type", "application/json")], body) }
                    }),
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        JwksServer {
            addr,
            document,
            fetches,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::Address(self.addr)
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    /// Stops serving (the JWKS source goes down).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An ES256 signing key for tests, with its public JWK.
pub struct EcKey {
    pub kid: String,
    pub pem: String,
    pub jwk: serde_json::Value,
}

impl EcKey {
    pub fn generate(kid: &str) -> EcKey {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
        let mut jwk: serde_json::Value =
            serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk["alg"] = "ES256".into();
        EcKey {
            kid: kid.to_owned(),
            pem,
            jwk,
        }
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

/// A JWKS document listing these keys.
pub fn jwks_document(keys: &[&EcKey]) -> String {
    serde_json::json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
        .to_string()
}

/// An HS256 token signed with `secret`.
pub fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
