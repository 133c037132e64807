//! End-to-end: the stack keeps answering while its origins are replaced or crash. A rolling
//! restart ([`xtask::stack::Stack::rolling_restart`]) and a supervised restart after
//! `kill -9` ([`xtask::stack::Stack::supervise`]) must not cost one GET through the edge:
//! in between, the edge fails over to the other origins.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{client_from, config_with, sign_up, three_origins, StackBuilder};
use xtask::stack::Stack;

const ORIGINS: [&str; 3] = ["origin_us", "origin_eu", "origin_ap"];

/// The default config with rate limits out of the way: the load below reads at full speed
/// as one user from few addresses (the config check requires the limits to stay).
fn unlimited_config() -> String {
    config_with(|v| {
        for route in v["routes"].as_array_mut().unwrap() {
            if route["rate_limit"].is_object() {
                route["rate_limit"]["limit"] = 1_000_000.into();
            }
        }
    })
}

/// What the load saw: answers that were 200 with a whole body, and every other outcome.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

/// One load thread: GETs `path` from 127.0.0.`from` (which picks the first origin) until
/// `stop`, each answer read to the end.
fn hammer(edge: &str, from: u8, path: &str, token: Option<&str>, stop: &AtomicBool, t: &Tally) {
    let client = client_from(from);
    let url = format!("{edge}{path}");
    while !stop.load(Ordering::SeqCst) {
        let mut req = client.get(&url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let outcome = req.send().and_then(|resp| {
            let status = resp.status();
            resp.bytes().map(|_| status)
        });
        match outcome {
            Ok(status) if status == 200 => {
                t.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => t.failures.lock().unwrap().push(format!("{path}: {status}")),
            Err(e) => t.failures.lock().unwrap().push(format!("{path}: {e}")),
        }
    }
}

/// Runs GET load through the edge (from the US, Germany and Japan: each origin is someone's
/// first choice) while `during` runs, from half a second before it to half a second after.
fn under_load<T>(edge: &str, token: &str, during: impl FnOnce() -> T) -> (T, Tally) {
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let reads: [(u8, &str, Option<&str>); 5] = [
        (1, "/health", None),
        (2, "/health", None),
        (3, "/openapi.json", None),
        (2, "/api/user/profile", Some(token)),
        (3, "/api/user/profile", Some(token)),
    ];
    let result = std::thread::scope(|s| {
        for (from, path, token) in reads {
            let (stop, tally) = (&stop, &tally);
            s.spawn(move || hammer(edge, from, path, token, stop, tally));
        }
        std::thread::sleep(Duration::from_millis(500));
        // No unwinding before `stop` is set: the scope would wait for the load forever.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(during));
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        result
    });
    match result {
        Ok(value) => (value, tally),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn answers_health(addr: SocketAddr) -> bool {
    reqwest::blocking::Client::new()
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|r| r.status() == 200)
}

/// Three origins without rate limits, the edge's URL, and a signed-up user's token.
fn stack_with_user() -> (Stack, String, String) {
    let stack = StackBuilder::new(three_origins())
        .config_override(unlimited_config())
        .start();
    let edge = stack.edge_url();
    let email = format!("resilience-{}@example.com", fastgate::http::unix_now());
    let token = sign_up(&edge, 1, &email).token;
    (stack, edge, token)
}

#[test]
fn a_rolling_restart_of_the_origins_loses_no_get() {
    let (mut stack, edge, token) = stack_with_user();
    let before = ORIGINS.map(|name| stack.origin_pid(name).unwrap());
    let started = Instant::now();
    let (restarted, tally) = under_load(&edge, &token, || stack.rolling_restart());
    restarted.expect("rolling restart");
    let failures = tally.failures();
    let ok = tally.ok.load(Ordering::Relaxed);
    eprintln!(
        "rolling restart under load: {ok} GETs answered 200, {} failed, in {:?}",
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok > 100, "too little load to prove anything: {ok}");
    for (name, old) in ORIGINS.iter().zip(before) {
        let pid = stack.origin_pid(name).unwrap();
        assert_ne!(pid, old, "{name} was not replaced");
        assert!(answers_health(stack.origin_addr(name).unwrap()), "{name}");
    }
}

#[test]
fn an_origin_killed_with_sigkill_is_started_again_while_the_edge_keeps_answering() {
    let (mut stack, edge, token) = stack_with_user();
    let eu = stack.origin_addr("origin_eu").unwrap();
    let old_pid = stack.origin_pid("origin_eu").unwrap();
    let (back_after, tally) = under_load(&edge, &token, || {
        stack.kill_origin("origin_eu").unwrap();
        assert!(!answers_health(eu), "origin_eu still answers after SIGKILL");
        let killed = Instant::now();
        stack.supervise(|| answers_health(eu) || killed.elapsed() > Duration::from_secs(10));
        killed.elapsed()
    });
    let failures = tally.failures();
    let ok = tally.ok.load(Ordering::Relaxed);
    eprintln!(
        "kill -9 origin_eu: back after {back_after:?}; {ok} GETs answered 200, {} failed",
        failures.len()
    );
    assert!(answers_health(eu), "origin_eu did not come back");
    assert!(back_after < Duration::from_secs(5), "{back_after:?}");
    assert_ne!(stack.origin_pid("origin_eu"), Some(old_pid));
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok > 20, "too little load to prove anything: {ok}");
}

#[test]
fn a_killed_edge_is_started_again_on_its_address() {
    let mut stack = StackBuilder::new(three_origins()).start();
    let pid = stack.edge_pid().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let edge = stack.edge_addr();
    let killed = Instant::now();
    stack.supervise(|| {
        stack_answers(edge) && killed.elapsed() > Duration::from_millis(200)
            || killed.elapsed() > Duration::from_secs(120)
    });
    assert!(stack_answers(edge), "the edge did not come back");
    assert_ne!(stack.edge_pid(), Some(pid));
    eprintln!("kill -9 viceroy: back after {:?}", killed.elapsed());
}

fn stack_answers(edge: SocketAddr) -> bool {
    client_from(1)
        .get(format!("http://{edge}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|r| r.status() == 200)
}
