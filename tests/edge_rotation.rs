//! End-to-end: the ES256 key rotation of `docs/OPERATIONS.md`, step by step as written, on
//! a running stack under load. No request fails, and no process is restarted: the origins
//! follow their key directory, the edge follows the origins' JWKS.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{client_from, config_with, sign_up, three_origins, StackBuilder};
use xtask::stack::{Secrets, Stack};

/// Short JWKS lifetimes, so that the test waits seconds, not the production minutes; no
/// rate limit on the profile, which the load reads from one address.
fn config() -> String {
    config_with(|v| {
        v["auth"]["jwks"] = json!({"ttl_s": 2, "refresh_interval_s": 1, "max_stale_s": 2,
                                   "verified_ttl_s": 2});
        for route in v["routes"].as_array_mut().unwrap() {
            if route["id"] == "user-profile" {
                route.as_object_mut().unwrap().remove("rate_limit");
            }
        }
    })
}

fn login(stack: &Stack) -> String {
    login_at(&stack.edge_url())
}

fn login_at(base: &str) -> String {
    let body: Value = client_from(1)
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "rot@example.com", "password": "correct-horse-1"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["access_token"].as_str().expect("a token").to_owned()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn profile_status(stack: &Stack, token: &str) -> u16 {
    profile_status_at(&stack.edge_url(), token)
}

fn profile_status_at(base: &str, token: &str) -> u16 {
    client_from(1)
        .get(format!("{base}/api/user/profile"))
        .bearer_auth(token)
        .header("cache-control", "no-store")
        .send()
        .map_or(0, |r| r.status().as_u16())
}

/// The number of keys every origin publishes, when they agree.
fn published_keys(stack: &Stack) -> Option<usize> {
    let counts: Vec<usize> = ["origin_us", "origin_eu", "origin_ap"]
        .iter()
        .map(|name| {
            let addr = stack.origin_addr(name).unwrap();
            reqwest::blocking::get(format!("http://{addr}/.well-known/jwks.json"))
                .and_then(|r| r.json::<Value>())
                .map_or(0, |v| v["keys"].as_array().map_or(0, Vec::len))
        })
        .collect();
    counts.windows(2).all(|w| w[0] == w[1]).then(|| counts[0])
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the profile with the newest token, through the current edge, until stopped;
/// counts what failed.
struct Load {
    base: Arc<Mutex<String>>,
    token: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(stack: &Stack, token: String) -> Load {
        let base = Arc::new(Mutex::new(stack.edge_url()));
        let token = Arc::new(Mutex::new(token));
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (b, t) = (base.clone(), token.clone());
        let (s, n, f) = (stop.clone(), sent.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let client = client_from(1);
            while !s.load(Ordering::SeqCst) {
                let bearer = t.lock().unwrap().clone();
                let url = format!("{}/api/user/profile", b.lock().unwrap());
                let status = client
                    .get(&url)
                    .bearer_auth(bearer)
                    .header("cache-control", "no-store")
                    .send()
                    .map_or(0, |r| r.status().as_u16());
                n.fetch_add(1, Ordering::SeqCst);
                if status != 200 {
                    f.fetch_add(1, Ordering::SeqCst);
                    eprintln!("load: {status}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Load {
            base,
            token,
            stop,
            sent,
            failed,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        (
            self.sent.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

fn pem_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    names.sort();
    names
}

#[test]
fn es256_rotation_as_the_ops_guide_writes_it_fails_no_request_and_restarts_nothing() {
    let (stack, spec) = StackBuilder::new(three_origins())
        .config_override(config())
        .origin_env(vec![("JWT_ALGORITHM", "ES256")])
        .start_with_spec();
    let pids = stack.pids();
    sign_up(&stack.edge_url(), 1, "rot@example.com");
    let old = login(&stack);
    assert_eq!(profile_status(&stack, &old), 200);
    let keys_dir = spec.data_dir.join("jwt-keys");
    assert_eq!(pem_files(&keys_dir), ["0001.pem"]);
    let load = Load::start(&stack, old.clone());

    // Step 1: add the new key with the guide's command; the origins pick it up by themselves.
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-out"])
        .arg(keys_dir.join("0002.pem"))
        .status()
        .expect("running openssl");
    assert!(status.success());
    wait_for("every origin to publish two keys", || {
        published_keys(&stack) == Some(2)
    });
    let new = login(&stack);
    assert_ne!(kid(&new), kid(&old), "the newest key signs");
    assert_eq!(profile_status(&stack, &new), 200, "a new-key token passes");
    assert_eq!(profile_status(&stack, &old), 200, "an old-key token passes");
    *load.token.lock().unwrap() = new.clone();

    // Step 2: remove the old key; its tokens stop passing within the JWKS lifetime.
    std::fs::remove_file(keys_dir.join("0001.pem")).unwrap();
    wait_for("every origin to publish one key", || {
        published_keys(&stack) == Some(1)
    });
    wait_for("the edge to refuse the removed key", || {
        profile_status(&stack, &old) == 401
    });
    assert_eq!(profile_status(&stack, &new), 200);

    let (sent, failed) = load.stop();
    eprintln!("rotation under load: {sent} requests, {failed} failed");
    assert!(sent > 20, "the load ran ({sent} requests)");
    assert_eq!(failed, 0, "no request failed during the rotation");
    assert_eq!(stack.pids(), pids, "no process was restarted");
}

/// The identity signing key's three steps, with the Secret Store update done the local way:
/// Viceroy reads its store at start, so the switch is a second edge started on the updated
/// store, and the clients move to it (as a POP would after the entry changes). The guide's
/// minute between steps 2 and 3 is for requests the old edge signed still in flight; here
/// they all moved, so a second stands in for it.
#[test]
fn identity_key_rotation_as_the_ops_guide_writes_it_fails_no_request() {
    let (mut stack, spec) = StackBuilder::new(three_origins())
        .config_override(config())
        .start_with_spec();
    let old_edge = stack.edge_url();
    sign_up(&old_edge, 1, "rot@example.com");
    let token = login(&stack);
    let load = Load::start(&stack, token.clone());
    let old = spec.secrets.clone();
    let new = Secrets {
        identity_key_id: "k-rotated".into(),
        jwt_hs256_key: old.jwt_hs256_key.clone(),
        ..Secrets::generate().unwrap()
    };
    let entry = |s: &Secrets| format!("{}:{}", s.identity_key_id, s.identity_key);

    // Step 1: deploy the origins with both keys (a rolling restart).
    let both = format!("{},{}", entry(&old), entry(&new));
    stack
        .rolling_restart_with(&[("FASTGATE_IDENTITY_KEYS", &both)])
        .unwrap();
    // Step 2: the edge signs with the new key.
    stack.write_edge_secrets(&new).unwrap();
    let new_edge = format!(
        "http://{}",
        stack.start_other_edge(&spec, &spec.wasm).unwrap()
    );
    assert_eq!(profile_status_at(&new_edge, &token), 200);
    *load.base.lock().unwrap() = new_edge.clone();
    std::thread::sleep(Duration::from_secs(1));
    // Step 3: deploy the origins with the new key only.
    let only_new = entry(&new);
    stack
        .rolling_restart_with(&[("FASTGATE_IDENTITY_KEYS", &only_new)])
        .unwrap();

    assert_eq!(profile_status_at(&new_edge, &token), 200);
    assert_ne!(
        profile_status_at(&old_edge, &token),
        200,
        "the retired key is no longer trusted"
    );
    let (sent, failed) = load.stop();
    eprintln!("identity rotation under load: {sent} requests, {failed} failed");
    assert!(sent > 20, "the load ran ({sent} requests)");
    assert_eq!(failed, 0, "no request failed during the rotation");
}
