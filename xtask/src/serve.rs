//! `cargo xtask serve [--origins]` and `cargo xtask restart`.
//!
//! `serve` runs the stack on the ports of `fastly.toml` and supervises it: a child that
//! dies is started again (see [`xtask::stack::supervise`]), Ctrl-C or SIGTERM stops everything,
//! and SIGHUP replaces the origins one at a time ([`Stack::rolling_restart`]). Its pid goes
//! to `.fastgate/serve.pid`, which is how `cargo xtask restart` finds it; the outcome of
//! each rolling restart goes to `.fastgate/rolling-restart`, which is how `restart` knows
//! when it is done.
//!
//! `serve --origins` runs only the three origins and prepares what the manifest's
//! `[local_server]` reads, for `fastly compute serve` beside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use xtask::stack::supervise::{self, install_signal_handlers};
use xtask::stack::{Secrets, Stack, StackSpec, Upstream};
use xtask::{build, release, tools, workspace_root};

use crate::fastly_cli;

/// The ports of `fastly.toml`'s `[local_server.backends]`, in backend order.
pub const ORIGIN_PORTS: [u16; 3] = [7801, 7802, 7803];
/// Where `cargo xtask serve` writes its pid.
pub const PID_FILE: &str = ".fastgate/serve.pid";
/// Where `cargo xtask serve` writes `<count> ok` or `<count> failed: <why>` after each
/// rolling restart.
pub const RESTART_STATUS_FILE: &str = ".fastgate/rolling-restart";

/// `cargo xtask serve [--origins]`.
pub fn run(args: &[String]) -> Result<()> {
    let origins_only = match args {
        [] => false,
        [flag] if flag == "--origins" => true,
        _ => bail!("usage: cargo xtask serve [--origins]"),
    };
    let root = workspace_root();
    let target = build::target_dir(&root);
    let origin_bin = build::origin_binary(&root, &target)?;
    ship_front_end(&root);
    install_signal_handlers()?;
    let (stack, spec) = if origins_only {
        let secrets = fastly_cli::prepare_local_server(&root)?;
        let spec = fastly_cli::origins_spec(&root, origin_bin, secrets, ORIGIN_PORTS, true);
        (Stack::start_origins_only(&spec)?, spec)
    } else {
        let spec = full_spec(&root, &target, origin_bin)?;
        (Stack::start(&spec)?, spec)
    };
    let _pid_file = PidFile::write(&root)?;
    print_banner(&stack, &spec, origins_only);
    supervise_until_stopped(stack, &root);
    println!("xtask: stopped");
    Ok(())
}

/// The front end (`web/`), built if stale and active in the local release store, unless
/// ops activated a release of their own. Without npm the API is still served: a warning.
fn ship_front_end(root: &Path) {
    match xtask::web::ship_locally(root) {
        Ok(name) => println!("xtask: front end: release {name} is active"),
        Err(e) => eprintln!("xtask: warning: the front end was not built or shipped: {e:#}"),
    }
}

/// The whole stack on the ports of `fastly.toml`, with the checkout's secrets.
fn full_spec(root: &Path, target: &Path, origin_bin: PathBuf) -> Result<StackSpec> {
    let backends = ["origin_us", "origin_eu", "origin_ap"]
        .iter()
        .zip(ORIGIN_PORTS)
        .map(|(name, port)| (name.to_string(), Upstream::Origin { port }))
        .collect();
    Ok(StackSpec {
        viceroy: tools::ensure_viceroy()?,
        wasm: build::edge_wasm(root, target)?,
        origin_bin,
        base_manifest: root.join("fastly.toml"),
        backends,
        edge_port: 7676,
        data_dir: root.join("data"),
        inherit_output: true,
        origin_env: Vec::new(),
        config_override: None,
        flags_override: None,
        secrets: Secrets::load_or_create(&root.join(".fastgate/secrets.json"))?,
        // The releases `cargo xtask release` keeps locally (an empty store at first).
        kv_store: Some(release::ensure_store_file(&root.join(release::LOCAL_DIR))?),
    })
}

fn print_banner(stack: &Stack, spec: &StackSpec, origins_only: bool) {
    let pid = std::process::id();
    println!();
    println!("fastgate is up (xtask serve pid {pid}):");
    if !origins_only {
        println!("  edge (Viceroy)  {}", stack.edge_url());
    }
    for (name, _) in &spec.backends {
        if let Some(addr) = stack.origin_addr(name) {
            println!("  {name:<15} http://{addr}");
        }
    }
    println!("  data directory  {}", spec.data_dir.display());
    println!(
        "  releases        {} (cargo xtask release publish|activate|rollback|list|gc)",
        release::LOCAL_DIR
    );
    println!("Children that die are restarted. Ctrl-C stops everything.");
    println!("Rolling restart of the origins: cargo xtask restart   (or kill -HUP {pid})");
    if origins_only {
        println!("Now run the edge beside them:");
        println!("  fastly compute serve --viceroy-path \"$(command -v viceroy)\"");
        println!("then: curl -i http://127.0.0.1:7676/health");
    } else {
        println!("Try: curl -i {}/health", stack.edge_url());
    }
}

/// Supervises until SIGINT/SIGTERM, doing a rolling restart on each SIGHUP; dropping the
/// stack at the end kills and reaps every child.
fn supervise_until_stopped(mut stack: Stack, root: &Path) {
    let mut restarts = 0u32;
    loop {
        stack.supervise(|| supervise::stop_requested() || supervise::rolling_restart_pending());
        if supervise::stop_requested() {
            return;
        }
        if supervise::take_rolling_restart() {
            restarts += 1;
            eprintln!("xtask: SIGHUP: rolling restart of the origins");
            let outcome = match stack.rolling_restart() {
                Ok(()) => format!("{restarts} ok"),
                Err(e) => format!("{restarts} failed: {e:#}"),
            };
            eprintln!("xtask: rolling restart #{outcome}");
            let _ = std::fs::write(root.join(RESTART_STATUS_FILE), &outcome);
        }
    }
}

/// `.fastgate/serve.pid`, removed again when serve ends.
struct PidFile(PathBuf);

impl PidFile {
    fn write(root: &Path) -> Result<PidFile> {
        let path = root.join(PID_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, std::process::id().to_string())?;
        // Counts restart from 1 in each serve: an old outcome must not look like news.
        let _ = std::fs::remove_file(root.join(RESTART_STATUS_FILE));
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `cargo xtask restart`: sends SIGHUP to this checkout's `cargo xtask serve` and waits
/// until it reports the rolling restart done.
pub fn restart() -> Result<()> {
    let root = workspace_root();
    let pid_file = root.join(PID_FILE);
    let text = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no cargo xtask serve is running here ({pid_file:?})"))?;
    let pid: i32 = text.trim().parse().context("a garbled pid file")?;
    // The pid may have been reused since a serve that died without removing its file.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("xtask") {
        bail!("pid {pid} (from {pid_file:?}) is not a cargo xtask serve; stale pid file?");
    }
    let status_file = root.join(RESTART_STATUS_FILE);
    let before = std::fs::read_to_string(&status_file).unwrap_or_default();
    let target = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGHUP)
        .with_context(|| format!("signalling pid {pid}"))?;
    println!("xtask: asked cargo xtask serve (pid {pid}) for a rolling restart of the origins");
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let now = std::fs::read_to_string(&status_file).unwrap_or_default();
        if now != before {
            if now.split_once(' ').map(|(_, outcome)| outcome) != Some("ok") {
                bail!("rolling restart #{now}");
            }
            println!("xtask: rolling restart done");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("no rolling restart reported within 5 minutes (see serve's output)")
}
