//! Everything before the first measured request: the tools (wrk, the reference's venv, the
//! release origin), both servers started side by side and ready, one user seeded on each,
//! and the setup as the report states it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::super::http;
use super::super::procs::{Scratch, Server};
use super::super::wrk;
use super::{Endpoint, Options, Pair, Side, ENDPOINTS, TARGET_RATIO};
use crate::build;
use crate::stack::free_port;
use crate::tools::run as run_cmd;

/// Packages the reference needs (its docstring plus `pydantic[email]` for `EmailStr`).
const REFERENCE_PACKAGES: &[&str] = &[
    "fastapi==0.163.*",
    "uvicorn[standard]",
    "pyjwt",
    "python-multipart",
    "pydantic[email]",
];

/// What the benchmark runs with, found, installed or built before any server starts.
pub(super) struct Tools {
    pub(super) wrk: PathBuf,
    pub(super) python: PathBuf,
    origin_bin: PathBuf,
    reference_dir: PathBuf,
    /// wrk's Lua hook for the POST endpoint.
    pub(super) script: PathBuf,
    pub(super) out_file: PathBuf,
}

/// Resolves the paths, installs what is missing and builds the release origin, stopping
/// between the slow steps when Ctrl-C was pressed.
pub(super) fn prepare(opts: &Options, stop: &AtomicBool) -> Result<Tools> {
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

    let wrk = wrk::ensure()?;
    interrupted()?;
    let python = ensure_reference_venv(&root.join("target/refvenv"))?;
    interrupted()?;
    let origin_bin = build::origin_binary(&root, &build::target_dir(&root))?;
    interrupted()?;
    let script = wrk::process_script(&bench_dir)?;
    Ok(Tools {
        wrk,
        python,
        origin_bin,
        reference_dir,
        script,
        out_file,
    })
}

/// Both servers, running and answering. The scratch directory holding their data is
/// removed after them (fields drop in order).
pub(super) struct Servers {
    pub(super) pair: Pair<Server>,
    _scratch: Scratch,
}

/// Starts both servers with `workers` workers each and waits until both answer.
pub(super) fn start_servers(tools: &Tools, workers: usize, stop: &AtomicBool) -> Result<Servers> {
    let scratch = Scratch::new("fastgate-bench")?;
    let mut pair = Pair {
        reference: start_reference(&tools.python, &tools.reference_dir, &scratch.0, workers)?,
        rust: start_rust(&tools.origin_bin, &scratch.0, workers)?,
    };
    for server in pair.as_mut() {
        server.wait_ready(stop, Duration::from_secs(90))?;
    }
    println!(
        "xtask bench: reference on http://{} (pid {}), rust on http://{} (pid {})",
        pair.reference.addr,
        pair.reference.pid(),
        pair.rust.addr,
        pair.rust.pid()
    );
    Ok(Servers {
        pair,
        _scratch: scratch,
    })
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

/// The user seeded on one server.
pub(super) struct Seeded {
    pub(super) token: String,
    pub(super) user_id: String,
}

impl Seeded {
    /// `ep`'s path with this user's id in it.
    pub(super) fn path(&self, ep: &Endpoint) -> String {
        ep.path.replace("{id}", &self.user_id)
    }
}

/// Seeds one user on each server, then checks that every endpoint answers 200 on both.
pub(super) fn seed(servers: &Pair<Server>) -> Result<Pair<Seeded>> {
    let seeded = Pair {
        reference: seed_one(servers.reference.addr)?,
        rust: seed_one(servers.rust.addr)?,
    };
    for ep in ENDPOINTS {
        for side in Side::BOTH {
            check_endpoint(&servers[side], ep, &seeded[side])?;
        }
    }
    Ok(seeded)
}

/// Signs up and logs in one user.
fn seed_one(addr: SocketAddr) -> Result<Seeded> {
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
    let path = user.path(ep);
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
pub(super) struct Env {
    pub(super) lines: Vec<String>,
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

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine, the load and both servers' versions and settings, one report line each.
pub(super) fn environment(python: &Path, wrk: &Path, opts: &Options) -> Env {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (cpu, load) = (cpu_model(), load_average());
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
