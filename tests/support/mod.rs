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
use xtask::stack::{free_port, Stack, StackSpec, Upstream};

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
        origin_env: Vec::new(),
    };
    Stack::start(&spec).expect("starting the stack")
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
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = axum::Router::new().fallback(echo);
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
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::Address(self.addr)
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

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<serde_json::Value> {
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
