//! `cargo xtask bench origin`: the Rust origin (`fastgate-api`) against the Python/FastAPI
//! reference it ports, on this machine, under the same load.
//!
//! - Installs what is missing: the reference's packages into `target/refvenv`, and wrk
//!   (Debian's `apt-get install wrk`).
//! - Builds the release origin and starts both servers side by side on free loopback
//!   ports, each with a fresh data directory / SQLite file: the reference in its best setup
//!   (`uvicorn --workers <cores>`, uvloop + httptools, no access log), the Rust origin with
//!   as many worker threads (one single-threaded runtime each) as cores and `RUST_LOG=warn`.
//! - Seeds one user on each (sign-up, login), then drives `GET /health`,
//!   `GET /api/user/profile`, `GET /api/user/{id}` and `POST /api/process` with wrk at the
//!   same concurrency, alternating the servers, N times each, and takes the medians.
//! - Prints a markdown table (req/s, p50/p99, peak RSS of each server's process tree) and
//!   writes it to `target/bench/origin.md`, each row marked against the target: at least
//!   10x the reference's req/s with a lower p99. A missed target is reported, not an error.
//!
//! Every server runs in its own process group and is killed with its workers when the
//! benchmark ends, fails or is interrupted with Ctrl-C.

mod edge;
mod http;
mod phases;
mod procs;
mod profile;
mod report;
mod wasm;
mod wrk;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::build;
use crate::stack::free_port;
use crate::tools::run as run_cmd;
use procs::{reaped_children_cpu, tree_cpu, RssSampler, Scratch, Server};
use wrk::{Load, Sample};

pub const USAGE: &str =
    "usage: cargo xtask bench                (everything: target/bench/report.md)
       cargo xtask bench edge           (edge overhead through Viceroy)
       cargo xtask bench origin [--duration SECS] [--warmup SECS] \
[--repeats N] [--connections N] [--threads N] [--workers N] [--reference-dir DIR] [--out FILE]

  --duration SECS      length of each measured wrk run (default 10)
  --warmup SECS        unmeasured wrk run per endpoint and server first (default 2; 0 = none)
  --repeats N          measured runs per endpoint and server; the median is reported (default 3)
  --connections N      wrk connections (default 64)
  --threads N          wrk threads (default 2)
  --workers N          uvicorn workers and origin worker threads (default: number of cores)
  --reference-dir DIR  directory holding fastapi_app.py (default ../shared/reference)
  --out FILE           report file (default target/bench/origin.md)";

/// Packages the reference needs (its docstring plus `pydantic[email]` for `EmailStr`).
const REFERENCE_PACKAGES: &[&str] = &[
    "fastapi==0.163.*",
    "uvicorn[standard]",
    "pyjwt",
    "python-multipart",
    "pydantic[email]",
];

/// The target the issue sets for every endpoint.
const TARGET_RATIO: f64 = 10.0;

const PROCESS_BODY: &str = r#"{"id":"bench","payload":{"k":1}}"#;

/// `cargo xtask bench <what> ...`
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None => report::all(),
        Some("origin") => origin(&args[1..]),
        Some("edge") => edge::run(&*stop_flag()?).map(|md| println!("{md}")),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

#[derive(Debug, Clone)]
struct Options {
    duration: u64,
    warmup: u64,
    repeats: usize,
    connections: u32,
    threads: u32,
    workers: usize,
    reference_dir: Option<PathBuf>,
    out: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut o = Options {
            duration: 10,
            warmup: 2,
            repeats: 3,
            connections: 64,
            threads: 2,
            workers: cores,
            reference_dir: None,
            out: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            if matches!(flag, "-h" | "--help") {
                bail!("{USAGE}");
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value\n{USAGE}"))?,
            };
            let bad = || format!("bad value {value:?} for {flag}");
            match flag {
                "--duration" => o.duration = seconds(&value).with_context(bad)?,
                "--warmup" => o.warmup = seconds(&value).with_context(bad)?,
                "--repeats" => o.repeats = value.parse().with_context(bad)?,
                "--connections" => o.connections = value.parse().with_context(bad)?,
                "--threads" => o.threads = value.parse().with_context(bad)?,
                "--workers" => o.workers = value.parse().with_context(bad)?,
                "--reference-dir" => o.reference_dir = Some(PathBuf::from(value)),
                "--out" => o.out = Some(PathBuf::from(value)),
                _ => bail!("unknown option {arg}\n{USAGE}"),
            }
        }
        if o.duration == 0 || o.repeats == 0 || o.workers == 0 || o.threads == 0 {
            bail!("--duration, --repeats, --workers and --threads must be at least 1");
        }
        if o.connections < o.threads {
            bail!("--connections must be at least --threads (wrk needs a connection per thread)");
        }
        Ok(o)
    }
}

/// "10" or "10s".
fn seconds(text: &str) -> Result<u64> {
    Ok(text.strip_suffix('s').unwrap_or(text).parse()?)
}

/// One benchmarked endpoint; `{id}` in `path` is the seeded user's id.
struct Endpoint {
    label: &'static str,
    method: &'static str,
    path: &'static str,
    auth: bool,
    body: Option<&'static str>,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        label: "GET /health",
        method: "GET",
        path: "/health",
        auth: false,
        body: None,
    },
    Endpoint {
        label: "GET /api/user/profile",
        method: "GET",
        path: "/api/user/profile",
        auth: true,
        body: None,
    },
    Endpoint {
        label: "GET /api/user/{id}",
        method: "GET",
        path: "/api/user/{id}",
        auth: true,
        body: None,
    },
    Endpoint {
        label: "POST /api/process",
        method: "POST",
        path: "/api/process",
        auth: true,
        body: Some(PROCESS_BODY),
    },
];

/// The user seeded on one server.
struct Seeded {
    token: String,
    user_id: String,
}

/// Index of each server in the result arrays.
const REF: usize = 0;
const RUST: usize = 1;

/// Medians of one server's runs on one endpoint.
#[derive(Debug, Clone, Default)]
struct Summary {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
    kernel_us_per_req: f64,
    loadgen_us_per_req: f64,
    non_2xx: u64,
    socket_errors: u64,
}

impl Summary {
    fn of(samples: &[Sample]) -> Summary {
        let med = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        Summary {
            rps: med(|s| s.rps),
            p50_us: med(|s| s.p50_us),
            p99_us: med(|s| s.p99_us),
            cpu_us_per_req: med(|s| s.cpu_us_per_req()),
            kernel_us_per_req: med(|s| s.kernel_us_per_req()),
            loadgen_us_per_req: med(|s| s.loadgen_us_per_req()),
            non_2xx: samples.iter().map(|s| s.non_2xx).sum(),
            socket_errors: samples.iter().map(|s| s.socket_errors).sum(),
        }
    }

    fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

struct Row {
    label: &'static str,
    runs: [Vec<Sample>; 2],
    summary: [Summary; 2],
    peak_rss_kib: [u64; 2],
}

impl Row {
    fn ratio(&self) -> f64 {
        if self.summary[REF].rps > 0.0 {
            self.summary[RUST].rps / self.summary[REF].rps
        } else {
            f64::INFINITY
        }
    }

    /// How many times less server CPU per request the Rust origin spent.
    fn cpu_ratio(&self) -> f64 {
        let (r, s) = (&self.summary[REF], &self.summary[RUST]);
        if s.cpu_us_per_req > 0.0 {
            r.cpu_us_per_req / s.cpu_us_per_req
        } else {
            f64::INFINITY
        }
    }

    /// Why the row misses the target, if it does.
    fn misses(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.ratio() < TARGET_RATIO {
            why.push(format!("{:.1}x < {TARGET_RATIO:.0}x", self.ratio()));
        }
        if self.summary[RUST].p99_us >= self.summary[REF].p99_us {
            why.push("p99 not lower".into());
        }
        if self.summary[RUST].errors() > 0 {
            why.push(format!("{} rust errors", self.summary[RUST].errors()));
        }
        why
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The process-wide Ctrl-C flag every benchmark polls (the handler can be set only once).
fn stop_flag() -> Result<Arc<AtomicBool>> {
    static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    if let Some(stop) = STOP.get() {
        return Ok(stop.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    Ok(STOP.get_or_init(|| stop).clone())
}

fn origin(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let stop = stop_flag()?;
    let interrupted = || -> Result<()> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    };

    let root = crate::workspace_root();
    let reference_dir = opts
        .reference_dir
        .clone()
        .unwrap_or_else(|| root.join("../shared/reference"));
    let reference_dir = reference_dir
        .canonicalize()
        .with_context(|| format!("reference directory {}", reference_dir.display()))?;
    if !reference_dir.join("fastapi_app.py").is_file() {
        bail!("no fastapi_app.py in {}", reference_dir.display());
    }
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let out_file = opts
        .out
        .clone()
        .unwrap_or_else(|| bench_dir.join("origin.md"));

    let wrk_bin = ensure_wrk()?;
    interrupted()?;
    let python = ensure_reference_venv(&root.join("target/refvenv"))?;
    interrupted()?;
    let origin_bin = build::origin_binary(&root, &build::target_dir(&root))?;
    interrupted()?;

    let script = bench_dir.join("process.lua");
    std::fs::write(&script, process_lua())?;

    let scratch = Scratch::new("fastgate-bench")?;
    let mut servers = [
        start_reference(&python, &reference_dir, &scratch.0, opts.workers)?,
        start_rust(&origin_bin, &scratch.0, opts.workers)?,
    ];
    for server in servers.iter_mut() {
        server.wait_ready(&stop, Duration::from_secs(90))?;
    }
    println!(
        "xtask bench: reference on http://{} (pid {}), rust on http://{} (pid {})",
        servers[REF].addr,
        servers[REF].pid(),
        servers[RUST].addr,
        servers[RUST].pid()
    );
    let sampler = RssSampler::start(servers.iter().map(Server::pid).collect());

    let seeded = [seed(servers[REF].addr)?, seed(servers[RUST].addr)?];
    for ep in ENDPOINTS {
        for (server, user) in servers.iter().zip(&seeded) {
            check_endpoint(server, ep, user)?;
        }
    }

    let load = Load {
        threads: opts.threads,
        connections: opts.connections,
    };
    let env = environment(&python, &wrk_bin, &opts);
    let total = ENDPOINTS.len() as u64 * 2 * (opts.warmup + opts.repeats as u64 * opts.duration);
    println!(
        "xtask bench: {} endpoints x 2 servers x ({}s warm-up + {} x {}s); about {}m{:02}s of load",
        ENDPOINTS.len(),
        opts.warmup,
        opts.repeats,
        opts.duration,
        total / 60,
        total % 60
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for ep in ENDPOINTS {
        sampler.reset_window();
        let mut runs: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        let wrk_once = |i: usize, seconds: u64| -> Result<Sample> {
            let server = &servers[i];
            let user = &seeded[i];
            let url = server.url(&ep.path.replace("{id}", &user.user_id));
            let headers: Vec<String> = ep
                .auth
                .then(|| format!("Authorization: Bearer {}", user.token))
                .into_iter()
                .collect();
            let script = ep.body.is_some().then_some(&script);
            let (server_before, loadgen_before) = (tree_cpu(server.pid()), reaped_children_cpu());
            let mut sample = wrk::run(&wrk_bin, &load, seconds, &url, &headers, script, &stop)?;
            let server_cpu = tree_cpu(server.pid()) - server_before;
            sample.server_cpu_s = server_cpu.total_s;
            sample.server_kernel_s = server_cpu.kernel_s;
            sample.loadgen_cpu_s = (reaped_children_cpu() - loadgen_before).total_s;
            Ok(sample)
        };
        if opts.warmup > 0 {
            for i in [REF, RUST] {
                wrk_once(i, opts.warmup)?;
            }
        }
        // Alternate the servers so that a noisy neighbour on the machine hits both alike.
        for rep in 0..opts.repeats {
            for i in [REF, RUST] {
                let s = wrk_once(i, opts.duration)?;
                println!(
                    "  {:<22} {:<9} run {}/{}: {:>10} req/s  p50 {:>9}  p99 {:>9}  \
                     server CPU {:>5.0} us/req{}",
                    ep.label,
                    name(i),
                    rep + 1,
                    opts.repeats,
                    thousands(s.rps),
                    ms(s.p50_us),
                    ms(s.p99_us),
                    s.cpu_us_per_req(),
                    error_note(s.non_2xx, s.socket_errors)
                );
                runs[i].push(s);
            }
        }
        for server in servers.iter_mut() {
            server.check_alive()?;
        }
        let window = sampler.window();
        rows.push(Row {
            label: ep.label,
            summary: [Summary::of(&runs[REF]), Summary::of(&runs[RUST])],
            runs,
            peak_rss_kib: [window[REF], window[RUST]],
        });
    }
    let overall = sampler.overall();
    let procs = sampler.procs();
    drop(sampler);
    drop(servers);

    let report = render(
        &env,
        &rows,
        [overall[REF], overall[RUST]],
        [procs[REF], procs[RUST]],
        started.elapsed(),
    );
    println!();
    println!("{report}");
    if let Some(dir) = out_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out_file, &report)
        .with_context(|| format!("writing {}", out_file.display()))?;
    println!("xtask bench: report written to {}", out_file.display());
    drop(scratch);
    Ok(())
}

fn name(i: usize) -> &'static str {
    if i == REF {
        "reference"
    } else {
        "rust"
    }
}

fn error_note(non_2xx: u64, socket: u64) -> String {
    match (non_2xx, socket) {
        (0, 0) => String::new(),
        (n, s) => format!("  ({n} non-2xx, {s} socket errors)"),
    }
}

/// wrk's Lua hook for `POST /api/process`; the bearer token comes from `-H`.
fn process_lua() -> String {
    format!(
        "-- written by `cargo xtask bench origin`\n\
         wrk.method = \"POST\"\n\
         wrk.body = '{PROCESS_BODY}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n"
    )
}

/// `wrk` on PATH, installing Debian's package when it is missing.
fn ensure_wrk() -> Result<PathBuf> {
    let wrk = PathBuf::from("wrk");
    if Command::new(&wrk).arg("-v").output().is_ok() {
        return Ok(wrk);
    }
    eprintln!("xtask bench: installing wrk with apt-get");
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run_cmd(&mut apt(&["update"]))?;
    run_cmd(&mut apt(&["install", "-y", "wrk"]))?;
    Command::new(&wrk)
        .arg("-v")
        .output()
        .context("wrk was installed but is not on PATH")?;
    Ok(wrk)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The venv's python with the reference's packages, creating and filling it if needed.
fn ensure_reference_venv(venv: &Path) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args([
                "-c",
                "import fastapi, uvicorn, jwt, multipart, email_validator; \
                 assert fastapi.__version__.startswith('0.163.')",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if ready() {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("xtask bench: creating {}", venv.display());
        run_cmd(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    }
    eprintln!(
        "xtask bench: installing the reference's packages into {}",
        venv.display()
    );
    run_cmd(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(REFERENCE_PACKAGES),
    )?;
    if !ready() {
        bail!("{} still lacks the reference's packages", venv.display());
    }
    Ok(python)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn start_reference(
    python: &Path,
    app_dir: &Path,
    scratch: &Path,
    workers: usize,
) -> Result<Server> {
    let dir = scratch.join("reference");
    std::fs::create_dir_all(&dir)?;
    let addr = loopback(free_port()?);
    let mut cmd = Command::new(python);
    cmd.args(["-m", "uvicorn", "fastapi_app:app", "--host", "127.0.0.1"])
        .arg("--port")
        .arg(addr.port().to_string())
        .arg("--workers")
        .arg(workers.to_string())
        .arg("--app-dir")
        .arg(app_dir)
        // Its best setup: per-request access logging would dominate its profile.
        .args(["--no-access-log", "--log-level", "warning"])
        .env("FASTGATE_DB", dir.join("ref.db"))
        // Keep the shared reference directory free of __pycache__.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&dir);
    Server::spawn("reference (uvicorn)", cmd, addr, dir.join("server.log"))
}

fn start_rust(bin: &Path, scratch: &Path, workers: usize) -> Result<Server> {
    let dir = scratch.join("rust");
    std::fs::create_dir_all(&dir)?;
    let addr = loopback(free_port()?);
    let mut cmd = Command::new(bin);
    cmd.args(["--name", "bench", "--listen"])
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(dir.join("data"))
        // SQLite in the data directory, like the reference, whatever the shell has set.
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .args(["--workers", &workers.to_string()])
        // Direct requests carry no edge signature; a bare benchmark turns the check off.
        .env("FASTGATE_VERIFY_EDGE_SIGNATURE", "false")
        .current_dir(&dir);
    Server::spawn("rust (fastgate-api)", cmd, addr, dir.join("server.log"))
}

/// Signs up and logs in one user.
fn seed(addr: SocketAddr) -> Result<Seeded> {
    let signup = serde_json::json!({
        "email": "bench@example.com",
        "password": "bench-password-1",
        "full_name": "Bench User",
    })
    .to_string();
    let resp = http::request(addr, "POST", "/api/auth/signup", None, Some(&signup))?;
    if resp.status != 201 {
        bail!("sign-up on {addr} answered {}: {}", resp.status, resp.body);
    }
    let user_id = resp.json()?["id"]
        .as_str()
        .context("sign-up answer has no id")?
        .to_owned();
    let login = serde_json::json!({"email": "bench@example.com", "password": "bench-password-1"})
        .to_string();
    let resp = http::request(addr, "POST", "/api/auth/login", None, Some(&login))?;
    if resp.status != 200 {
        bail!("login on {addr} answered {}: {}", resp.status, resp.body);
    }
    let token = resp.json()?["access_token"]
        .as_str()
        .context("login answer has no access_token")?
        .to_owned();
    Ok(Seeded { token, user_id })
}

/// One request as wrk will send it must answer 200, or the numbers would measure errors.
fn check_endpoint(server: &Server, ep: &Endpoint, user: &Seeded) -> Result<()> {
    let path = ep.path.replace("{id}", &user.user_id);
    let bearer = ep.auth.then_some(user.token.as_str());
    let resp = http::request(server.addr, ep.method, &path, bearer, ep.body)?;
    if resp.status != 200 {
        bail!(
            "{} {path} on {} answered {}: {}",
            ep.method,
            server.name,
            resp.status,
            resp.body
        );
    }
    Ok(())
}

/// The setup, as stated in the report.
struct Env {
    lines: Vec<String>,
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn environment(python: &Path, wrk: &Path, opts: &Options) -> Env {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let versions = first_line(Command::new(python).args([
        "-c",
        "import sys, fastapi, uvicorn, uvloop, httptools; \
         print(f'Python {sys.version.split()[0]}, FastAPI {fastapi.__version__}, \
         uvicorn {uvicorn.__version__} (uvloop {uvloop.__version__}, httptools {httptools.__version__})')",
    ]));
    let wrk_version = first_line(Command::new(wrk).arg("-v"));
    let wrk_version = wrk_version
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let commit = first_line(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(crate::workspace_root()),
    );
    Env {
        lines: vec![
            format!("- Machine: {cores} cores ({cpu}); load average at start {load}"),
            format!(
                "- Load: `{wrk_version} -t{} -c{} -d{}s --latency --timeout 10s` on loopback, \
                 sharing the cores with the server; {}s warm-up per endpoint and server, then \
                 {} measured runs each, servers alternating; medians reported",
                opts.threads, opts.connections, opts.duration, opts.warmup, opts.repeats
            ),
            format!(
                "- Reference: `uvicorn fastapi_app:app --workers {} --no-access-log \
                 --log-level warning`; {versions}; SQLite file",
                opts.workers
            ),
            format!(
                "- Rust: `fastgate-api` release build{}, {} worker threads (a single-threaded tokio runtime each), \
                 `RUST_LOG=warn`, `FASTGATE_VERIFY_EDGE_SIGNATURE=false`; SQLite file",
                if commit.is_empty() {
                    String::new()
                } else {
                    format!(" (commit {commit})")
                },
                opts.workers
            ),
            "- Peak RSS: summed VmRSS of each server's process tree (uvicorn's supervisor and \
             workers), polled every 100 ms while the endpoint was measured"
                .into(),
            format!(
                "- Target: Rust req/s >= {TARGET_RATIO:.0}x the reference's and a lower p99, \
                 on every endpoint"
            ),
        ],
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

/// For each endpoint that misses the req/s target: where the cores went, from the figures
/// above (the report's profile of the miss).
fn miss_profiles(rows: &[Row]) -> String {
    let mut md = String::new();
    for row in rows.iter().filter(|r| r.ratio() < TARGET_RATIO) {
        let (r, s) = (&row.summary[REF], &row.summary[RUST]);
        let per_request = s.cpu_us_per_req + s.loadgen_us_per_req;
        md.push_str(&format!(
            "\n**Profile of the miss on `{label}`.** Each Rust request cost the server {cpu:.1} µs \
             of CPU ({kernel:.1} µs of it in the kernel) and cost wrk {gen:.1} µs on the same cores, so wrk took {share:.0}% of \
             the CPU the Rust run used; driving the reference it took {ref_share:.0}%. The \
             req/s ratio ({ratio:.1}x) is therefore bounded by the load generator sharing the \
             machine, while the servers' own CPU per request differs {cpu_ratio:.1}x.\n",
            label = row.label,
            cpu = s.cpu_us_per_req,
            kernel = s.kernel_us_per_req,
            gen = s.loadgen_us_per_req,
            share = percent(s.loadgen_us_per_req, per_request),
            ref_share = percent(r.loadgen_us_per_req, r.cpu_us_per_req + r.loadgen_us_per_req),
            ratio = row.ratio(),
            cpu_ratio = row.cpu_ratio(),
        ));
    }
    md
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: f64) -> String {
    let ms = us / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn render(
    env: &Env,
    rows: &[Row],
    overall_kib: [u64; 2],
    procs: [usize; 2],
    elapsed: Duration,
) -> String {
    let mut md = String::new();
    md.push_str("# Origin benchmark: Rust `fastgate-api` vs the FastAPI reference\n\n");
    for line in &env.lines {
        md.push_str(line);
        md.push('\n');
    }
    md.push('\n');
    md.push_str(
        "| endpoint | reference req/s | rust req/s | ratio | reference p50 / p99 | \
         rust p50 / p99 | reference peak RSS | rust peak RSS | target |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for row in rows {
        let (r, s) = (&row.summary[REF], &row.summary[RUST]);
        let misses = row.misses();
        let verdict = if misses.is_empty() {
            "pass".to_owned()
        } else {
            format!("fail ({})", misses.join(", "))
        };
        md.push_str(&format!(
            "| `{}` | {} | {} | {:.1}x | {} / {} | {} / {} | {} | {} | {} |\n",
            row.label,
            thousands(r.rps),
            thousands(s.rps),
            row.ratio(),
            ms(r.p50_us),
            ms(r.p99_us),
            ms(s.p50_us),
            ms(s.p99_us),
            mib(row.peak_rss_kib[REF]),
            mib(row.peak_rss_kib[RUST]),
            verdict
        ));
    }
    md.push('\n');
    md.push_str(&format!(
        "Peak RSS over the whole run: reference {} ({} processes), rust {} ({} process{}).\n",
        mib(overall_kib[REF]),
        procs[REF],
        mib(overall_kib[RUST]),
        procs[RUST],
        if procs[RUST] == 1 { "" } else { "es" }
    ));
    md.push_str(
        "\nServer CPU per request (user + system time of the server's process tree during the \
         measured runs, divided by the requests served; median). It does not depend on how the \
         cores were shared with wrk, so its ratio is the throughput ratio each server would \
         reach with the cores to itself. The last two columns say where the Rust server's CPU \
         went and what wrk itself spent per request on the same cores:\n\n",
    );
    md.push_str(
        "| endpoint | reference CPU/req | rust CPU/req | ratio | rust in the kernel | \
         wrk's own CPU/req (ref / rust) |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let (r, s) = (&row.summary[REF], &row.summary[RUST]);
        md.push_str(&format!(
            "| `{}` | {:.0} µs | {:.0} µs | {:.1}x | {:.0} µs ({:.0}%) | {:.0} / {:.0} µs |\n",
            row.label,
            r.cpu_us_per_req,
            s.cpu_us_per_req,
            row.cpu_ratio(),
            s.kernel_us_per_req,
            percent(s.kernel_us_per_req, s.cpu_us_per_req),
            r.loadgen_us_per_req,
            s.loadgen_us_per_req,
        ));
    }
    md.push_str(&miss_profiles(rows));
    let passed = rows.iter().filter(|r| r.misses().is_empty()).count();
    md.push_str(&format!(
        "\n**Result: {passed} of {} endpoints meet the target** (>= {TARGET_RATIO:.0}x req/s \
         and a lower p99){}.\n",
        rows.len(),
        if passed == rows.len() {
            ""
        } else {
            "; the target is missed where marked fail"
        }
    ));
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            [REF, RUST].into_iter().filter_map(move |i| {
                let s = &row.summary[i];
                (s.errors() > 0).then(|| {
                    format!(
                        "- `{}` {}: {} non-2xx responses, {} socket errors over all runs",
                        row.label,
                        name(i),
                        s.non_2xx,
                        s.socket_errors
                    )
                })
            })
        })
        .collect();
    if !errors.is_empty() {
        md.push_str("\nErrors seen under load (they count in req/s):\n\n");
        md.push_str(&errors.join("\n"));
        md.push('\n');
    }
    md.push_str("\n<details><summary>Every measured run</summary>\n\n");
    md.push_str(
        "| endpoint | server | run | req/s | p50 | p99 | requests | errors | server CPU |\n",
    );
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        for i in [REF, RUST] {
            for (n, s) in row.runs[i].iter().enumerate() {
                md.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} | {} | {} | {} | {:.1} s |\n",
                    row.label,
                    name(i),
                    n + 1,
                    thousands(s.rps),
                    ms(s.p50_us),
                    ms(s.p99_us),
                    s.requests,
                    s.non_2xx + s.socket_errors,
                    s.server_cpu_s
                ));
            }
        }
    }
    md.push_str(&format!(
        "\n</details>\n\nMeasured in {}m{:02}s by `cargo xtask bench origin`.\n",
        elapsed.as_secs() / 60,
        elapsed.as_secs() % 60
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let o = Options::parse(&args("--duration 5s --repeats=1 --connections 32")).unwrap();
        assert_eq!((o.duration, o.repeats, o.connections), (5, 1, 32));
        assert_eq!(o.warmup, 2);
        assert!(Options::parse(&args("--bogus 1")).is_err());
        assert!(Options::parse(&args("--duration")).is_err());
        assert!(Options::parse(&args("--repeats 0")).is_err());
        assert!(Options::parse(&args("--threads 4 --connections 2")).is_err());
    }

    #[test]
    fn medians_and_formats() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(ms(250.0), "0.25 ms");
        assert_eq!(ms(12_340.0), "12.3 ms");
    }

    fn sample(rps: f64, p99_us: f64) -> Sample {
        Sample {
            rps,
            p50_us: p99_us / 4.0,
            p99_us,
            requests: 1,
            non_2xx: 0,
            socket_errors: 0,
            server_cpu_s: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn verdicts() {
        let row = |r: Sample, s: Sample| Row {
            label: "GET /health",
            summary: [
                Summary::of(std::slice::from_ref(&r)),
                Summary::of(std::slice::from_ref(&s)),
            ],
            runs: [vec![r], vec![s]],
            peak_rss_kib: [100 * 1024, 10 * 1024],
        };
        assert!(row(sample(1000.0, 9000.0), sample(12000.0, 800.0))
            .misses()
            .is_empty());
        assert_eq!(
            row(sample(1000.0, 9000.0), sample(5000.0, 9500.0)).misses(),
            vec!["5.0x < 10x".to_owned(), "p99 not lower".to_owned()]
        );
        let env = Env { lines: vec![] };
        let rows = [row(sample(1000.0, 9000.0), sample(12000.0, 800.0))];
        let md = render(&env, &rows, [1, 2], [3, 1], Duration::from_secs(61));
        assert!(
            md.contains("| `GET /health` | 1,000 | 12,000 | 12.0x |"),
            "{md}"
        );
        assert!(md.contains("1 of 1 endpoints meet the target"), "{md}");
        assert!(!md.contains("Profile of the miss"), "{md}");

        // A miss gets its profile: the server's CPU, its kernel part, and wrk's share.
        let mut slow = sample(8000.0, 800.0);
        (slow.requests, slow.server_cpu_s) = (1000, 0.012);
        (slow.server_kernel_s, slow.loadgen_cpu_s) = (0.008, 0.012);
        let mut reference = sample(1000.0, 9000.0);
        (
            reference.requests,
            reference.server_cpu_s,
            reference.loadgen_cpu_s,
        ) = (1000, 0.18, 0.012);
        let md = render(
            &env,
            &[row(reference, slow)],
            [1, 2],
            [3, 1],
            Duration::from_secs(61),
        );
        assert!(
            md.contains("| 12 µs | 15.0x | 8 µs (67%) | 12 / 12 µs |"),
            "{md}"
        );
        assert!(md.contains("Profile of the miss on `GET /health`"), "{md}");
        assert!(md.contains("so wrk took 50% of the CPU"), "{md}");
        assert!(md.contains("it took 6%"), "{md}");
    }
}
