//! Peers a test puts behind the edge in place of a real origin: an echo origin that
//! answers with what it received, a JWKS endpoint under the test's control, and a black
//! hole that takes a request and never answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use xtask::stack::Upstream;

use super::FixtureServer;

/// A peer that reads a request, records its request line, and hangs up without answering:
/// an origin that died after receiving the request.
pub struct BlackHole {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
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

/// A test-only origin that answers every request with what it received, as JSON. It lives
/// in the test harness, so no debug endpoint ships in the product.
pub struct EchoServer {
    server: FixtureServer,
    /// `METHOD /path` of every request received.
    received: Arc<Mutex<Vec<String>>>,
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
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        let app = axum::Router::new()
            .fallback(echo)
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    seen.lock()
                        .unwrap()
                        .push(format!("{} {}", req.method(), req.uri().path()));
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
        EchoServer {
            server: FixtureServer::start(1, app),
            received,
        }
    }

    pub fn upstream(&self) -> Upstream {
        self.server.upstream()
    }

    /// The three named backends, all of them this server.
    pub fn everywhere(&self) -> Vec<(&'static str, Upstream)> {
        ["origin_us", "origin_eu", "origin_ap"]
            .into_iter()
            .map(|name| (name, self.upstream()))
            .collect()
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
    server: FixtureServer,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub fn start(document: String) -> JwksServer {
        Self::start_slow(document, Duration::ZERO)
    }

    /// A JWKS endpoint that takes `delay` to answer each fetch (a slow origin).
    pub fn start_slow(document: String, delay: Duration) -> JwksServer {
        let document = Arc::new(Mutex::new(document));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                count.fetch_add(1, Ordering::SeqCst);
                let doc = doc.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let body = doc.lock().unwrap().clone();
                    ([("content-type", "application/json")], body)
                }
            }),
        );
        // Concurrent fetches of a slow endpoint must not queue behind one another.
        let workers = if delay.is_zero() { 1 } else { 4 };
        JwksServer {
            server: FixtureServer::start(workers, app),
            document,
            fetches,
        }
    }

    pub fn upstream(&self) -> Upstream {
        self.server.upstream()
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn set(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    /// Stops serving (the JWKS source goes down).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}
