//! `cargo xtask cachetests`: the public HTTP caching suite (http-tests/cache-tests, the
//! suite behind cache-tests.fyi) against the edge, counted the way the suite counts, beside
//! the published results of other caches.
//!
//! The setup is the one a reviewer would use for any reverse proxy:
//! - the suite's own server (`test-engine/server/server.mjs`) is the origin behind all
//!   three named backends;
//! - the edge is the project's own Wasm under Viceroy, with a config pushed as an override
//!   (as ops would): one `public` cached route on `/test/` whose freshness comes from the
//!   origin (`ttl_s: null`, no stale windows, no route `vary`), and an uncached public route
//!   for the suite's `/config` and `/state` requests;
//! - the suite's client (`test-engine/cli.mjs`) runs every test through the edge.
//!
//! The suite is vendored, pinned, in `third_party/cache-tests` (`FASTGATE_CACHE_TESTS` names
//! another copy) and copied into `target/cache-tests/suite`, where `npm ci` installs its
//! dependencies once: only the interim-response tests need one (`undici`), and Viceroy does
//! not relay 1xx answers anyway, so a failed install only warns. `count.mjs` applies the
//! suite's `determineTestResult` with dependencies honoured. `--min-required N` / `--min-optimal N`
//! make the command fail below those counts (CI's floor).

mod report;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::stack::{free_port, Secrets, Stack, StackSpec, Upstream};
use crate::{build, tools, workspace_root};

pub const USAGE: &str =
    "usage: cargo xtask cachetests [--min-required N] [--min-optimal N] [--id TEST]

  Runs the HTTP caching suite (third_party/cache-tests) against the edge under Viceroy and
  prints the counts beside the published caches'; the full results are written to
  target/cache-tests/results.json and the report to target/cache-tests/report.md.
  --min-required N, --min-optimal N   fail when fewer tests pass
  --id TEST                           run one test and print its details";

/// The counting script, run from the suite's root.
const COUNT_SCRIPT: &str = include_str!("count.mjs");

/// CI's floor (`cargo xtask test`): the required count this suite reached, which must not
/// fall, and the optimal count with a little room (84 reached) for its timing-based tests.
pub const FLOOR_REQUIRED: usize = 155;
pub const FLOOR_OPTIMAL: usize = 80;

/// What the command line asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub min_required: usize,
    pub min_optimal: usize,
    pub id: Option<String>,
}

pub fn parse_args(args: &[String]) -> Result<Request> {
    let mut request = Request::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--min-required" => request.min_required = value()?.parse()?,
            "--min-optimal" => request.min_optimal = value()?.parse()?,
            "--id" => request.id = Some(value()?.clone()),
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    Ok(request)
}

pub fn run(args: &[String]) -> Result<()> {
    let request = parse_args(args)?;
    let root = workspace_root();
    let target = build::target_dir(&root);
    let work = target.join("cache-tests");
    let suite = copy_suite(&root, &work)?;
    let server = SuiteServer::start(&suite)?;
    let stack = start_edge(&root, &target, server.addr)?;
    let base = stack.edge_url();
    if let Some(id) = &request.id {
        let out = client(&suite, &base, id)?;
        println!("{out}");
        return Ok(());
    }
    let results = client(&suite, &base, "")?;
    let results_file = work.join("results.json");
    std::fs::write(&results_file, &results)?;
    let counted = report::count(&suite, &results_file)?;
    let table = report::render(&counted);
    std::fs::write(work.join("report.md"), &table)?;
    println!("{table}");
    let ours = &counted.ours;
    if ours.required < request.min_required || ours.optimal < request.min_optimal {
        bail!(
            "cache-tests: {} required / {} optimal passed, below the floor of {} / {}",
            ours.required,
            ours.optimal,
            request.min_required,
            request.min_optimal
        );
    }
    Ok(())
}

/// The suite's source: `FASTGATE_CACHE_TESTS`, else the vendored copy.
fn suite_source(root: &Path) -> Result<PathBuf> {
    let source = std::env::var_os("FASTGATE_CACHE_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("third_party/cache-tests"));
    if !source.join("tests/index.mjs").is_file() {
        bail!(
            "the HTTP caching suite is not at {} (set FASTGATE_CACHE_TESTS)",
            source.display()
        );
    }
    Ok(source)
}

/// A writable copy of the suite (the source may be read-only), refreshed from the source
/// on every run, with the counting script beside its own code. `npm ci` runs when the
/// copy has no `node_modules` or the lock file changed: the client loads `undici` for the
/// interim-response tests.
fn copy_suite(root: &Path, work: &Path) -> Result<PathBuf> {
    let source = suite_source(root)?;
    let suite = work.join("suite");
    let lock = |dir: &Path| std::fs::read(dir.join("package-lock.json")).ok();
    let installed = suite.join("node_modules").is_dir() && lock(&suite) == lock(&source);
    std::fs::create_dir_all(&suite)?;
    tools::run(
        Command::new("cp")
            .arg("-R")
            .arg(source.join("."))
            .arg(&suite),
    )?;
    std::fs::write(suite.join("count.mjs"), COUNT_SCRIPT)?;
    if !installed {
        let mut npm = Command::new("npm");
        npm.current_dir(&suite).args([
            "ci",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]);
        if let Err(e) = tools::run(&mut npm) {
            eprintln!("cache-tests: npm ci failed ({e:#}); the interim tests will not load");
        }
    }
    Ok(suite)
}

/// The suite's origin server, killed when dropped.
struct SuiteServer {
    child: Child,
    addr: SocketAddr,
}

impl SuiteServer {
    fn start(suite: &Path) -> Result<SuiteServer> {
        let port = free_port()?;
        let log = std::fs::File::create(suite.join("server.log"))?;
        let child = Command::new("node")
            .current_dir(suite)
            .arg("test-engine/server/server.mjs")
            .env("npm_config_protocol", "http")
            .env("npm_config_port", port.to_string())
            .env("npm_config_pidfile", suite.join("server.pid"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("could not start node (the suite needs Node.js 14.8 or later)")?;
        let server = SuiteServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(server.addr).is_err() {
            if Instant::now() > deadline {
                bail!("the suite's server did not listen on {}", server.addr);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for SuiteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The edge under Viceroy, every named backend the suite's server.
fn start_edge(root: &Path, target: &Path, origin: SocketAddr) -> Result<Stack> {
    let viceroy = tools::ensure_viceroy()?;
    let wasm = build::edge_wasm(root, target)?;
    let spec = StackSpec {
        wasm,
        // No `fastgate-api` is started: every backend is an address.
        origin_bin: PathBuf::new(),
        viceroy,
        base_manifest: root.join("fastly.toml"),
        backends: ["origin_us", "origin_eu", "origin_ap"]
            .iter()
            .map(|name| (name.to_string(), Upstream::Address(origin)))
            .collect(),
        edge_port: 0,
        data_dir: target.join("cache-tests/data"),
        inherit_output: false,
        origin_env: Vec::new(),
        config_override: Some(suite_config()?),
        flags_override: None,
        secrets: Secrets::generate()?,
        kv_store: None,
    };
    Stack::start(&spec)
}

/// The shipped config with its routes replaced by the suite's two (see the module doc).
/// The suite's origin has none of the API's expensive handlers, so none is declared.
pub fn suite_config() -> Result<String> {
    let mut config: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED)?;
    config["routes"] = serde_json::json!([
        {"id": "cache-tests", "path": {"prefix": "/test/"}, "auth": {"policy": "public"},
         "cache": {"mode": "public", "ttl_s": null, "vary": []}},
        {"id": "cache-tests-control", "path": {"prefix": "/"}, "auth": {"policy": "public"}}
    ]);
    config["expensive_paths"] = serde_json::json!([]);
    // One origin behind every name: a retry elsewhere would only repeat the request to it.
    config["failover"]["max_attempts"] = 1.into();
    Ok(config.to_string())
}

/// Runs the suite's client against `base` (every test, or the one named `id`); its stdout.
fn client(suite: &Path, base: &str, id: &str) -> Result<String> {
    let out = Command::new("node")
        .current_dir(suite)
        .args(["--no-warnings", "test-engine/cli.mjs"])
        // As `npm run cli` would set them (the script reads the package config as fallback).
        .env("npm_config_base", base)
        .env("npm_config_id", id)
        .env("npm_package_config_id", "")
        .stderr(Stdio::inherit())
        .output()
        .context("could not run the suite's client")?;
    if !out.status.success() {
        bail!("the suite's client failed with {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&[]).unwrap(), Request::default());
        let r = parse_args(&args(&["--min-required", "140", "--min-optimal", "75"])).unwrap();
        assert_eq!((r.min_required, r.min_optimal), (140, 75));
        assert!(parse_args(&args(&["--min-required"])).is_err());
        assert!(parse_args(&args(&["--min-required", "x"])).is_err());
        assert!(parse_args(&args(&["--what"])).is_err());
    }

    #[test]
    fn the_suite_config_is_one_the_edge_accepts() {
        let config = suite_config().unwrap();
        let loaded = fastgate::config::load(Some(&config), None).unwrap();
        assert!(
            loaded.rejected_override.is_none(),
            "{:?}",
            loaded.rejected_override
        );
        assert_eq!(loaded.config.routes.len(), 2);
    }
}
