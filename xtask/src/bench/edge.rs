//! `cargo xtask bench edge`: what the edge adds to a request, against the honest floor.
//! The floor is a bare pass-through Wasm (`benches/passthrough`: only `fastly`, `main`
//! sends the request to `origin_us`), run by a second Viceroy of the same version on the
//! same manifest and origins. The same requests go to both, alternating, with wrk at the
//! same load; the table gives each one's req/s and p50 and their ratios. A cache hit never
//! leaves the POP, so its floor is the pass-through answering `200` itself.
//!
//! The stack is the product's own (`xtask::stack`: three origins plus Viceroy) with two
//! benchmark settings, both stated in the report: rate limits are removed from the config
//! (wrk from one address would otherwise measure 429s), and the origins skip the edge
//! signature check so that the pass-through's unsigned requests are answered like the
//! edge's.

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
const WARMUP_S: u64 = 2;
const REPEATS: usize = 5;
const SERIAL: Load = Load {
    threads: 1,
    connections: 1,
};
const CONCURRENT: Load = Load {
    threads: 2,
    connections: 16,
};
/// The floor's own answer, for the requests the edge answers from its cache.
const SYNTHETIC: &str = "/__floor/synthetic";

struct Scenario {
    label: &'static str,
    load: Load,
    method: &'static str,
    path: String,
    headers: Vec<String>,
    body: Option<&'static str>,
    /// The floor's request when it is not the same one (the synthetic answer).
    floor_path: Option<&'static str>,
    target: Option<Target>,
}

/// An acceptance target, as a ratio of the edge's figure to the floor's.
#[derive(Clone, Copy)]
enum Target {
    /// p50 at most this many times the floor's.
    P50AtMost(f64),
    /// req/s at least this share of the floor's.
    RpsAtLeast(f64),
}

/// What one scenario measured: every run of the edge and of the floor.
pub struct Row {
    pub label: &'static str,
    connections: u32,
    edge: Vec<Sample>,
    floor: Vec<Sample>,
    target: Option<Target>,
}

impl Row {
    fn median(runs: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    fn edge_rps(&self) -> f64 {
        Self::median(&self.edge, |s| s.rps)
    }
    fn floor_rps(&self) -> f64 {
        Self::median(&self.floor, |s| s.rps)
    }
    fn edge_p50(&self) -> f64 {
        Self::median(&self.edge, |s| s.p50_us)
    }
    fn floor_p50(&self) -> f64 {
        Self::median(&self.floor, |s| s.p50_us)
    }
    /// Whether the target holds, when there is one.
    fn verdict(&self) -> Option<(String, bool)> {
        Some(match self.target? {
            Target::P50AtMost(x) => {
                let r = self.edge_p50() / self.floor_p50();
                (format!("p50 ≤ {x}× floor: {r:.2}×"), r <= x)
            }
            Target::RpsAtLeast(x) => {
                let r = self.edge_rps() / self.floor_rps();
                (format!("req/s ≥ {x}× floor: {r:.2}×"), r >= x)
            }
        })
    }
}

/// Runs the scenarios and returns the markdown section.
pub fn run(stop: &AtomicBool) -> Result<String> {
    let root = crate::workspace_root();
    let target = build::target_dir(&root);
    let viceroy = crate::tools::ensure_viceroy()?;
    let wasm = build::edge_wasm(&root, &target)?;
    let floor_wasm = build::passthrough_wasm(&root, &target)?;
    let named_wasm = super::wasm::named_wasm(&root)?;
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
        kv_store: None,
    };
    let mut stack = Stack::start(&spec)?;
    let result = stack
        .start_other_edge(&spec, &floor_wasm)
        .and_then(|floor| {
            let user = User::sign_up(stack.edge_addr(), &secrets)?;
            let rows = measure(stack.edge_addr(), floor, &user, &wrk_bin, stop)?;
            Ok((rows, user))
        })
        .and_then(|(rows, user)| {
            stack.stop_other_edge(0);
            let probes = probes(&user);
            let guest = super::guest::report(&mut stack, &spec, &named_wasm, &floor_wasm, &probes)?;
            Ok((rows, guest))
        });
    drop(stack);
    let _ = std::fs::remove_dir_all(data_dir);
    let (rows, guest) = result?;
    Ok(format!("{}\n{guest}", render(&rows)))
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
    edge: SocketAddr,
    floor: SocketAddr,
    user: &User,
    wrk_bin: &Path,
    stop: &AtomicBool,
) -> Result<Vec<Row>> {
    let bench_dir = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let script = wrk::process_script(&bench_dir)?;
    let mut rows = Vec::new();
    // `FASTGATE_BENCH_ONLY=<text>` keeps the scenarios whose label contains it (for a
    // quick look at one figure; the report always runs them all).
    let only = std::env::var("FASTGATE_BENCH_ONLY").unwrap_or_default();
    for sc in scenarios(user).iter().filter(|sc| sc.label.contains(&only)) {
        let floor_path = sc.floor_path.map_or(sc.path.as_str(), |p| p);
        check(edge, sc, &sc.path)?;
        check(floor, sc, floor_path)?;
        let once = |addr: SocketAddr, seconds: u64| -> Result<Sample> {
            let path = if addr == edge { &sc.path } else { floor_path };
            let url = format!("http://{addr}{path}");
            let script = sc.body.is_some().then_some(&script);
            wrk::run(wrk_bin, &sc.load, seconds, &url, &sc.headers, script, stop)
        };
        let row = measure_scenario(sc, once, edge, floor)?;
        println!(
            "  {:<52} c={:<2} edge {:>6.0} req/s p50 {:>6.0} us | floor {:>6.0} req/s p50 {:>6.0} us",
            sc.label,
            row.connections,
            row.edge_rps(),
            row.edge_p50(),
            row.floor_rps(),
            row.floor_p50()
        );
        rows.push(row);
    }
    Ok(rows)
}

/// One scenario: a warm-up on each target, then the runs alternating edge and floor;
/// errors at the edge under load stop the benchmark.
fn measure_scenario(
    sc: &Scenario,
    once: impl Fn(SocketAddr, u64) -> Result<Sample>,
    edge: SocketAddr,
    floor: SocketAddr,
) -> Result<Row> {
    once(edge, WARMUP_S)?;
    once(floor, WARMUP_S)?;
    let mut row = Row {
        label: sc.label,
        connections: sc.load.connections,
        edge: Vec::new(),
        floor: Vec::new(),
        target: sc.target,
    };
    for _ in 0..REPEATS {
        row.edge.push(once(edge, DURATION_S)?);
        row.floor.push(once(floor, DURATION_S)?);
    }
    let errors: u64 = row.edge.iter().map(|s| s.non_2xx + s.socket_errors).sum();
    if errors > 0 {
        bail!("{}: the edge answered {errors} errors under load", sc.label);
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

fn scenarios(user: &User) -> Vec<Scenario> {
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    // `Cache-Control: no-store` makes the edge pass a cacheable read through: the
    // authenticated rows then measure auth + forward, the cache-hit row the cache.
    let no_store = "Cache-Control: no-store".to_owned();
    let scenario = |label, load, path: String, headers| Scenario {
        label,
        load,
        method: "GET",
        path,
        headers,
        body: None,
        floor_path: None,
        target: None,
    };
    vec![
        Scenario {
            target: Some(Target::P50AtMost(1.3)),
            ..scenario(
                "public uncached GET `/health`",
                SERIAL,
                "/health".into(),
                vec![],
            )
        },
        Scenario {
            target: Some(Target::RpsAtLeast(0.8)),
            ..scenario(
                "public uncached GET `/health`",
                CONCURRENT,
                "/health".into(),
                vec![],
            )
        },
        scenario(
            "authenticated GET, HS256 (`/api/user/profile`, no-store)",
            SERIAL,
            "/api/user/profile".into(),
            vec![bearer(&user.hs256), no_store.clone()],
        ),
        scenario(
            "authenticated GET, ES256 (`/api/user/profile`, no-store)",
            SERIAL,
            "/api/user/profile".into(),
            vec![bearer(&user.es256), no_store],
        ),
        Scenario {
            floor_path: Some(SYNTHETIC),
            target: Some(Target::P50AtMost(1.5)),
            ..scenario(
                "cache hit, HS256 (`/api/user/{id}`) vs synthetic 200",
                SERIAL,
                format!("/api/user/{}", user.id),
                vec![bearer(&user.hs256)],
            )
        },
        Scenario {
            method: "POST",
            body: Some(PROCESS_BODY),
            ..scenario(
                "POST `/api/process`, HS256",
                SERIAL,
                "/api/process".into(),
                vec![bearer(&user.hs256)],
            )
        },
    ]
}

/// The requests whose hostcalls the report counts: the uncached public GET, and the
/// cache hit (the floor answering its synthetic `200`).
fn probes(user: &User) -> Vec<super::guest::Probe> {
    use super::guest::Probe;
    vec![
        Probe {
            label: "`GET /health`",
            path: "/health".into(),
            floor_path: "/health".into(),
            bearer: None,
        },
        Probe {
            label: "cache hit, HS256 (`GET /api/user/{id}`)",
            path: format!("/api/user/{}", user.id),
            floor_path: SYNTHETIC.into(),
            bearer: Some(user.hs256.clone()),
        },
    ]
}

/// One request first, so a scenario that would fail (401, 429, 404) stops the benchmark
/// instead of being timed; for the cache-hit row it also fills the entry.
fn check(addr: SocketAddr, sc: &Scenario, path: &str) -> Result<()> {
    let bearer = sc
        .headers
        .iter()
        .find_map(|h| h.strip_prefix("Authorization: Bearer "));
    let resp = http::request(addr, sc.method, path, bearer, sc.body)?;
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
        "| request | c | fastgate req/s | floor req/s | req/s ratio | fastgate p50 | floor p50 | p50 ratio | target |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|"
    )?;
    for r in rows {
        let verdict = match r.verdict() {
            Some((text, true)) => format!("**met**: {text}"),
            Some((text, false)) => format!("**missed**: {text}"),
            None => String::new(),
        };
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.2}× | {} | {} | {:.2}× | {verdict} |",
            r.label,
            r.connections,
            r.edge_rps(),
            r.floor_rps(),
            r.edge_rps() / r.floor_rps(),
            ms(r.edge_p50()),
            ms(r.floor_p50()),
            r.edge_p50() / r.floor_p50(),
        )?;
    }
    writeln!(
        out,
        "\nwrk --latency, {DURATION_S}s per run; {WARMUP_S}s warm-up each, then {REPEATS} runs \
         per target alternating fastgate and floor; each figure is the median of its runs. \
         fastgate = Viceroy 0.22 running the release Wasm with every phase (route, auth, \
         rate-limit phase, flags, cache, signing, forward, log line); floor = the same Viceroy \
         version on the same manifest running `benches/passthrough` (only `fastly`: \
         `req.send(\"origin_us\")`, or a synthetic `200` for the cache-hit row). Both serve \
         in reusable sandboxes where the Wasm asks for it: fastgate does \
         (`fastly::http::serve`, config compiled once per instance), the floor does not \
         (one instance per request, as the plain `main` it is). Bench settings: rate limits \
         removed from the config, origins not checking the edge signature (so the floor's \
         requests are answered too)."
    )
}
