//! `cargo xtask <command>`: the developer entry points.
//!
//! - `serve`: install what is missing, build, and run three origins plus Viceroy on the
//!   ports of `fastly.toml` (edge at http://127.0.0.1:7676) until Ctrl-C or SIGTERM,
//!   restarting any that dies. `serve --origins`: the origins only, for
//!   `fastly compute serve` beside them (see `serve.rs`).
//! - `restart`: a rolling restart of the running `serve`'s origins, without downtime.
//! - `fastly-cli [check]`: install the pinned Fastly CLI under `target/`; `check` builds and
//!   serves a fresh clone with it (`cargo xtask test` runs the check).
//! - `test`: formatting, clippy (native and Wasm), unit tests, end-to-end tests, and the HTTP
//!   caching suite with its floor.
//! - `config check <file>`: validate a gateway config before pushing it to the Config Store.
//! - `package [--wasm FILE]`: build the edge and write `pkg/fastgate.tar.gz` (deployable with
//!   `fastly compute deploy --package pkg/fastgate.tar.gz`).
//! - `surrogate-key <template> [subject]`: the key a cached object is tagged with, to purge it.
//! - `fuzz [--seconds N] [TARGET...]`: run each fuzz target for N seconds in release mode
//!   (see `xtask::fuzz`); `cargo test` runs them with a short budget.
//! - `cachetests`: the public HTTP caching suite against the edge, counted beside the
//!   published caches (see `xtask::cachetests`).
//! - `release publish NAME [--config FILE] [--web DIR] | activate NAME | rollback | list |
//!   gc [--keep N]`, each with `[--edge URL] [--fastly]`: releases in the `fastgate_releases`
//!   KV Store, on the running edge and the local copy, or in production (see
//!   `xtask::release`).
//! - `bench origin`: benchmark the Rust origin against the FastAPI reference (req/s, p50/p99,
//!   peak RSS) and write the table to `target/bench/origin.md`.

mod fastly_cli;
mod serve;

use std::process::Command;

use anyhow::{bail, Result};
use xtask::{build, tools, workspace_root};

const USAGE: &str = "usage: cargo xtask <serve [--origins] | restart | test [cargo test args] | \
config check <file> | package [--wasm FILE] | surrogate-key <template> [subject] | \
bench [origin] [options] | fuzz [--seconds N] [TARGET...] | fastly-cli [check] | \
cachetests [--min-required N] [--min-optimal N] [--id TEST] | \
release <publish NAME [--config FILE] [--web DIR] | activate NAME | rollback | list | \
gc [--keep N]> [--edge URL] [--fastly]>";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve::run(&args[1..]),
        Some("restart") if args.len() == 1 => serve::restart(),
        Some("fastly-cli") => fastly(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => xtask::bench::run(&args[1..]),
        Some("fuzz") => xtask::fuzz::run(&args[1..]),
        Some("cachetests") => xtask::cachetests::run(&args[1..]),
        Some("package") => package(&args[1..]),
        Some("release") => {
            let root = workspace_root();
            xtask::release::cli::run(&root, &args[1..], || fastly_cli::ensure_fastly_cli(&root))
        }
        Some("surrogate-key") if (2..=3).contains(&args.len()) => {
            xtask::surrogate_key(&args[1], args.get(2).map(String::as_str))
                .map(|key| println!("{key}"))
        }
        Some("config") if args.get(1).map(String::as_str) == Some("check") && args.len() == 3 => {
            config_check(&args[2])
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

/// Validates a config exactly as the edge will at load, so ops see the error (naming the
/// field) before the push rather than in the edge's logs after it.
fn package(args: &[String]) -> Result<()> {
    let root = workspace_root();
    let wasm = match args {
        [] => {
            tools::ensure_wasm_target()?;
            build::edge_wasm(&root, &build::target_dir(&root))?
        }
        [flag, file] if flag == "--wasm" => std::path::PathBuf::from(file),
        _ => bail!("usage: cargo xtask package [--wasm FILE]"),
    };
    let path = xtask::package::write(&root.join("fastly.toml"), &wasm, &root.join("pkg"))?;
    let contents = xtask::package::read(&path)?;
    println!(
        "xtask: {} ({} bytes of Wasm) -> fastly compute deploy --package {}",
        path.display(),
        contents.wasm.len(),
        path.display()
    );
    Ok(())
}

/// `fastly-cli`: installs the pinned CLI and says how to put it on PATH; `fastly-cli check`
/// proves a fresh clone builds and serves with it.
fn fastly(args: &[String]) -> Result<()> {
    let root = workspace_root();
    match args {
        [] => {
            let fastly = fastly_cli::ensure_fastly_cli(&root)?;
            let dir = fastly.parent().unwrap_or(&fastly).display();
            println!(
                "xtask: Fastly CLI {}: {}",
                fastly_cli::FASTLY_CLI_VERSION,
                fastly.display()
            );
            println!("export PATH=\"{dir}:$PATH\"");
            Ok(())
        }
        [check] if check == "check" => fastly_cli::check_fresh_clone(&root),
        _ => bail!("usage: cargo xtask fastly-cli [check]"),
    }
}

fn config_check(file: &str) -> Result<()> {
    println!("{}", xtask::config_check(std::path::Path::new(file))?);
    Ok(())
}

fn test(extra: &[String]) -> Result<()> {
    let root = workspace_root();
    let cargo = |args: &[&str]| {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root).args(args);
        cmd
    };
    tools::run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    tools::run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    tools::ensure_wasm_target()?;
    tools::run(&mut cargo(&[
        "clippy",
        "--package",
        "fastgate",
        "--target",
        "wasm32-wasip1",
        "--bin",
        "fastgate",
        "--",
        "-D",
        "warnings",
    ]))?;
    let target = build::target_dir(&root);
    let (dist, _) = xtask::web::ensure_built(&root)?;
    let js = xtask::web::check_js_budget(&dist)?;
    println!(
        "xtask: front end: {js} bytes of JavaScript gzip (budget {})",
        xtask::web::JS_BUDGET_GZIP
    );
    let viceroy = tools::ensure_viceroy()?;
    let wasm = build::edge_wasm(&root, &target)?;
    let origin = build::origin_binary(&root, &target)?;
    let mut cmd = cargo(&["test", "--workspace"]);
    cmd.args(extra)
        .env("FASTGATE_WASM", wasm)
        .env("FASTGATE_ORIGIN_BIN", origin)
        .env("VICEROY", viceroy);
    tools::run(&mut cmd)?;
    // The public HTTP caching suite, with the floor CI holds the edge cache to.
    xtask::cachetests::run(&[
        "--min-required".into(),
        xtask::cachetests::FLOOR_REQUIRED.to_string(),
        "--min-optimal".into(),
        xtask::cachetests::FLOOR_OPTIMAL.to_string(),
    ])?;
    // The Fastly CLI path on a fresh clone (npm, a few minutes the first time).
    fastly_cli::check_fresh_clone(&root)?;
    println!("xtask: all checks passed");
    Ok(())
}
