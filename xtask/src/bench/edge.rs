//! `cargo xtask bench edge`: what the edge adds. The same requests go through Viceroy
//! (the real Wasm, every phase) and straight to an origin, alternating, with wrk at the same
//! load; the table gives req/s, p50 and p99 of each and the difference.
//!
//! The stack is the product's own (`xtask::stack`: three origins plus Viceroy) with two
//! benchmark settings, both stated in the report: rate limits are removed from the config
//! (wrk from one address would otherwise measure 429s), and the origins skip the edge
//! signature check so that the direct requests are answered like the edge's.

use std::fmt::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use fastgate::http::unix_now;

use super::http;
use super::units::ms;
use super::wrk::{self, Load, Sample, PROCESS_BODY};
use crate::build;
use crate::stack::{Secrets, Stack, StackSpec, Upstream};

const DURATION_S: u64 = 4;
const WARMUP_S: u64 = 1;
const REPEATS: usize = 3;
const LOAD: Load = Load {
    threads: 2,
    connections: 16,
};

struct Scenario {
    label: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<String>,
    body: Option<&'static str>,
}

/// What one scenario measured: medians of the edge's and the direct runs.
pub struct Row {
    pub label: &'static str,
    pub edge: Sample,
    pub direct: Sample,
}

/// Runs the scenarios and returns the markdown section.
pub fn run(stop: &AtomicBool) -> Result<String> {
    let root = crate::workspace_root();
    let target = build::target_dir(&root);
    let viceroy = crate::tools::ensure_viceroy()?;
    let wasm = build::edge_wasm(&root, &target)?;
    let origin_bin = build::origin_binary(&root, &target)?;
    let wrk_bin = wrk::ensure()?;
    let secrets = Secrets::generate()?;
    let data_dir = std::env::temp_dir().join(format!("fastgate-bench-edge-{}", std::process::id()));
    let spec = StackSpec {
        wasm,
        origin_bin,
        viceroy,
        base_manifest: root.join("fastly.toml"),
        backends: ["origin_us", "origin_eu", "origin_ap"]
            .iter()
            .map(|n| (n.to_string(), Upstream::Origin { port: 0 }))
            .collect(),
        edge_port: 0,
        data_dir: data_dir.clone(),
        inherit_output: false,
        origin_env: vec![
            ("RUST_LOG".into(), "warn".into()),
            ("FASTGATE_VERIFY_EDGE_SIGNATURE".into(), "false".into()),
            // Logins issue ES256 (JWKS at the edge); HS256 tokens are minted below.
            ("JWT_ALGORITHM".into(), "ES256".into()),
            ("JWT_ACCEPT".into(), "ES256,HS256".into()),
        ],
        config_override: Some(config_without_rate_limits()?),
        flags_override: None,
        secrets: secrets.clone(),
    };
    let stack = Stack::start(&spec)?;
    let result = measure(&stack, &secrets, &wrk_bin, stop);
    drop(stack);
    let _ = std::fs::remove_dir_all(data_dir);
    let rows = result?;
    Ok(render(&rows))
}

fn config_without_rate_limits() -> Result<String> {
    let mut config: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED)?;
    for route in config["routes"].as_array_mut().context("routes")? {
        if let Some(route) = route.as_object_mut() {
            route.remove("rate_limit");
        }
    }
    // The config check refuses an expensive handler reachable without a limit; a load test
    // measures the pipeline, so it declares none expensive.
    config["expensive_paths"] = serde_json::json!([]);
    Ok(config.to_string())
}

fn measure(
    stack: &Stack,
    secrets: &Secrets,
    wrk_bin: &Path,
    stop: &AtomicBool,
) -> Result<Vec<Row>> {
    let edge = stack.edge_addr();
    let origin = stack.origin_addr("origin_us").context("origin_us")?;
    let user = User::sign_up(edge, secrets)?;
    let bench_dir = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let script = wrk::process_script(&bench_dir)?;
    let mut rows = Vec::new();
    for sc in &scenarios(&user) {
        for addr in [edge, origin] {
            check(addr, sc)?;
        }
        let once = |addr: SocketAddr, seconds: u64| -> Result<Sample> {
            let url = format!("http://{addr}{}", sc.path);
            let script = sc.body.is_some().then_some(&script);
            wrk::run(wrk_bin, &LOAD, seconds, &url, &sc.headers, script, stop)
        };
        let row = measure_scenario(sc, once, edge, origin)?;
        println!(
            "  {:<58} edge {:>7.0} req/s p50 {:>8.0} us | direct {:>7.0} req/s p50 {:>6.0} us",
            sc.label, row.edge.rps, row.edge.p50_us, row.direct.rps, row.direct.p50_us
        );
        rows.push(row);
    }
    Ok(rows)
}

/// One scenario: a warm-up on each target, then the runs alternating edge and direct;
/// errors at the edge under load stop the benchmark.
fn measure_scenario(
    sc: &Scenario,
    once: impl Fn(SocketAddr, u64) -> Result<Sample>,
    edge: SocketAddr,
    origin: SocketAddr,
) -> Result<Row> {
    once(edge, WARMUP_S)?;
    once(origin, WARMUP_S)?;
    let (mut at_edge, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        at_edge.push(once(edge, DURATION_S)?);
        direct.push(once(origin, DURATION_S)?);
    }
    let row = Row {
        label: sc.label,
        edge: median_sample(at_edge),
        direct: median_sample(direct),
    };
    if row.edge.non_2xx > 0 || row.edge.socket_errors > 0 {
        bail!(
            "{}: the edge answered {} non-2xx responses and {} socket errors under load",
            sc.label,
            row.edge.non_2xx,
            row.edge.socket_errors
        );
    }
    Ok(row)
}

/// The user every authenticated scenario acts as, with a token of each algorithm.
struct User {
    id: String,
    es256: String,
    hs256: String,
}

impl User {
    /// Signs up and logs in through the edge (the origin issues ES256), and mints an
    /// HS256 token with the shared key.
    fn sign_up(edge: SocketAddr, secrets: &Secrets) -> Result<User> {
        let email = format!("bench-{}@example.com", unix_now());
        let signup = serde_json::json!({"email": email, "password": "bench-password-1", "full_name": "Bench User"}).to_string();
        let resp = http::request(edge, "POST", "/api/auth/signup", None, Some(&signup))?;
        if resp.status != 201 {
            bail!(
                "sign-up through the edge answered {}: {}",
                resp.status,
                resp.body
            );
        }
        let user: serde_json::Value = serde_json::from_str(&resp.body)?;
        let id = user["id"].as_str().context("sign-up id")?.to_owned();
        let login = serde_json::json!({"email": email, "password": "bench-password-1"}).to_string();
        let resp = http::request(edge, "POST", "/api/auth/login", None, Some(&login))?;
        let es256: serde_json::Value = serde_json::from_str(&resp.body)?;
        let es256 = es256["access_token"]
            .as_str()
            .context("login token")?
            .to_owned();
        let hs256 = mint_hs256(&secrets.jwt_hs256_key, &email, &id)?;
        Ok(User { id, es256, hs256 })
    }
}

fn scenarios(user: &User) -> [Scenario; 5] {
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    // `Cache-Control: no-store` makes the edge pass a cacheable read through: the
    // authenticated rows then measure auth + forward, the cache-hit row the cache.
    let no_store = "Cache-Control: no-store".to_owned();
    [
        Scenario {
            label: "public uncached GET `/health`",
            method: "GET",
            path: "/health".into(),
            headers: vec![],
            body: None,
        },
        Scenario {
            label: "authenticated GET, HS256 (`/api/user/profile`, no-store)",
            method: "GET",
            path: "/api/user/profile".into(),
            headers: vec![bearer(&user.hs256), no_store.clone()],
            body: None,
        },
        Scenario {
            label: "authenticated GET, ES256 (`/api/user/profile`, no-store)",
            method: "GET",
            path: "/api/user/profile".into(),
            headers: vec![bearer(&user.es256), no_store],
            body: None,
        },
        Scenario {
            label: "cache hit, HS256 (`/api/user/{id}`)",
            method: "GET",
            path: format!("/api/user/{}", user.id),
            headers: vec![bearer(&user.hs256)],
            body: None,
        },
        Scenario {
            label: "POST `/api/process`, HS256",
            method: "POST",
            path: "/api/process".into(),
            headers: vec![bearer(&user.hs256)],
            body: Some(PROCESS_BODY),
        },
    ]
}

/// One request first, so a scenario that would fail (401, 429, 404) stops the benchmark
/// instead of being timed; for the cache-hit row it also fills the entry.
fn check(addr: SocketAddr, sc: &Scenario) -> Result<()> {
    let bearer = sc
        .headers
        .iter()
        .find_map(|h| h.strip_prefix("Authorization: Bearer "));
    let resp = http::request(addr, sc.method, &sc.path, bearer, sc.body)?;
    if !(200..300).contains(&resp.status) {
        bail!(
            "{} on {addr} answered {}: {}",
            sc.label,
            resp.status,
            resp.body
        );
    }
    Ok(())
}

fn median_sample(mut runs: Vec<Sample>) -> Sample {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    runs.swap_remove(runs.len() / 2)
}

fn mint_hs256(secret: &str, email: &str, uid: &str) -> Result<String> {
    let now = unix_now();
    let claims = serde_json::json!({"sub": email, "uid": uid, "iss": "fastgate-origin",
        "aud": "fastgate", "iat": now, "exp": now + 3600});
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    write_table(&mut out, rows).expect("writing to a String cannot fail");
    out
}

fn write_table(out: &mut String, rows: &[Row]) -> fmt::Result {
    writeln!(
        out,
        "| request | edge req/s | direct req/s | edge p50 / p99 | direct p50 / p99 | added p50 |\n\
         |---|---:|---:|---:|---:|---:|"
    )?;
    for r in rows {
        writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} / {} | {} / {} | {} |",
            r.label,
            r.edge.rps,
            r.direct.rps,
            ms(r.edge.p50_us),
            ms(r.edge.p99_us),
            ms(r.direct.p50_us),
            ms(r.direct.p99_us),
            ms(r.edge.p50_us - r.direct.p50_us),
        )?;
    }
    writeln!(
        out,
        "\nwrk -t{} -c{} -d{DURATION_S}s --latency; {WARMUP_S}s warm-up each, then {REPEATS} runs \
         per target alternating edge and direct, median run (by req/s) reported. Edge = Viceroy \
         0.22 running the release Wasm with every phase (route, auth, rate-limit phase, flags, \
         cache, signing, forward, log line); direct = the same request to `origin_us`. Bench \
         settings: rate limits removed from the config, origins not checking the edge \
         signature (so direct requests are answered too). Viceroy instantiates the Wasm per \
         request on this machine's 2 cores, so these figures bound local overhead; Fastly's \
         production runtime is not Viceroy.",
        LOAD.threads, LOAD.connections
    )
}
