//! The Fastly CLI path, kept working: installing a pinned `fastly`, preparing the files
//! `fastly compute serve` reads beside `cargo xtask serve --origins`, and a check that a
//! fresh clone builds and serves with the CLI (`cargo xtask fastly-cli check`, run by
//! `cargo xtask test`).
//!
//! The check exists because that path broke silently before: it needs files no commit
//! holds (`bin/`, `.fastgate/secrets.json`, the release Wasm CLI 16 copies from), and a
//! working checkout always has them lying around from earlier runs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use xtask::stack::{free_port, Secrets, Stack, StackSpec, Upstream};
use xtask::{build, tools};

/// The `@fastly/cli` npm release the check installs (16.x copies
/// `target/wasm32-wasip1/release/<name>.wasm` into the package, see `fastly.toml`).
pub const FASTLY_CLI_VERSION: &str = "16.1.0";

/// Returns a `fastly` of the pinned version, installed with npm under the target directory
/// (git-ignored, and never a global install) when missing.
pub fn ensure_fastly_cli(root: &Path) -> Result<PathBuf> {
    let prefix = build::target_dir(root).join("fastly-cli");
    let fastly = prefix.join("node_modules/.bin/fastly");
    let pinned = |fastly: &Path| {
        Command::new(fastly)
            .arg("version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(FASTLY_CLI_VERSION))
    };
    if !pinned(&fastly) {
        eprintln!("xtask: installing @fastly/cli@{FASTLY_CLI_VERSION} into {prefix:?}");
        tools::run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg(format!("@fastly/cli@{FASTLY_CLI_VERSION}")),
        )
        .context("installing the Fastly CLI needs npm (Node.js)")?;
        ensure!(
            pinned(&fastly),
            "{fastly:?} is not Fastly CLI {FASTLY_CLI_VERSION}"
        );
    }
    Ok(fastly)
}

/// Makes what `fastly compute serve` reads from the checkout at `root` exist: the Secret
/// Store file (`.fastgate/secrets.json`, created with fresh secrets once and shared with
/// the origins) and the release store's local copy (`.fastgate/kv/store.json`, empty
/// until `cargo xtask release publish`), then fails naming any other file
/// `[local_server]` refers to that is missing. Returns the secrets for the origins.
pub fn prepare_local_server(root: &Path) -> Result<Secrets> {
    let secrets = Secrets::load_or_create(&root.join(".fastgate/secrets.json"))?;
    xtask::release::ensure_store_file(&root.join(xtask::release::LOCAL_DIR))?;
    let manifest = root.join("fastly.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let doc: toml::Table = text.parse()?;
    let mut files = Vec::new();
    if let Some(local) = doc.get("local_server") {
        collect_files(local, &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !root.join(f).exists())
        .cloned()
        .collect();
    ensure!(
        missing.is_empty(),
        "{} refers to files that do not exist: {}",
        manifest.display(),
        missing.join(", ")
    );
    Ok(secrets)
}

/// Every `file = "..."` under `value` (store files, geolocation or device data).
fn collect_files(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table {
                match (key.as_str(), v) {
                    ("file", toml::Value::String(path)) => out.push(path.clone()),
                    _ => collect_files(v, out),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| collect_files(v, out)),
        _ => {}
    }
}

/// The origins of `fastly.toml` as a stack spec for the checkout at `root`: its data
/// directory and the given secrets; `ports` in backend order (origin_us, _eu, _ap).
pub fn origins_spec(
    root: &Path,
    origin_bin: PathBuf,
    secrets: Secrets,
    ports: [u16; 3],
    inherit_output: bool,
) -> StackSpec {
    let names = ["origin_us", "origin_eu", "origin_ap"];
    StackSpec {
        // No edge in an origins-only stack: `fastly compute serve` runs it.
        wasm: PathBuf::new(),
        origin_bin,
        viceroy: PathBuf::new(),
        base_manifest: root.join("fastly.toml"),
        backends: names
            .iter()
            .zip(ports)
            .map(|(name, port)| (name.to_string(), Upstream::Origin { port }))
            .collect(),
        edge_port: 0,
        data_dir: root.join("data"),
        inherit_output,
        origin_env: Vec::new(),
        config_override: None,
        flags_override: None,
        secrets,
        // The origins-only stack starts no Viceroy: `fastly compute serve` reads the
        // store `fastly.toml` names.
        kv_store: None,
    }
}

/// `cargo xtask fastly-cli check`: clones the repository's HEAD into a temporary
/// directory and there runs `fastly compute build`, checks the package, starts the
/// origins beside it and `fastly compute serve`, and expects `GET /health` through the
/// CLI's Viceroy to be answered by an origin.
///
/// The clone builds into `target/fresh-clone` (linked as its `target/`), reused from run
/// to run. Not the main target directory: cargo keys fingerprints by paths relative to the
/// workspace, so two checkouts sharing one would each take the other's build for their
/// own. The origin binary is the main checkout's: the CLI path is what is checked.
pub fn check_fresh_clone(root: &Path) -> Result<()> {
    let fastly = ensure_fastly_cli(root)?;
    let viceroy = on_path(tools::ensure_viceroy()?);
    tools::ensure_wasm_target()?;
    let main_target = build::target_dir(root);
    let origin_bin = build::origin_binary(root, &main_target)?;
    let clone = FreshClone::create(root, &main_target.join("fresh-clone"))?;
    compute_build(&fastly, &clone)?;
    // Free ports rather than the manifest's, so the check runs beside `cargo xtask serve`.
    let ports = [free_port()?, free_port()?, free_port()?];
    point_backends_at(&clone.dir.join("fastly.toml"), ports)?;
    let secrets = prepare_local_server(&clone.dir)?;
    let spec = origins_spec(&clone.dir, origin_bin, secrets, ports, false);
    let _origins = Stack::start_origins_only(&spec)?;
    let edge = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut serve = FastlyServe::start(&fastly, &clone.dir, &viceroy, edge)?;
    let (status, text) = serve.wait_for(edge, "/health", Duration::from_secs(300))?;
    let lower = text.to_ascii_lowercase();
    ensure!(
        status == 200 && lower.contains("fastgate-origin: origin_us") && text.contains("\"ok\""),
        "GET /health through `fastly compute serve` answered {status}:\n{text}"
    );
    println!(
        "xtask: fresh clone: fastly compute build + serve answered /health 200 from origin_us"
    );
    Ok(())
}

/// `program` as an absolute path when it is a bare name found on PATH: the CLI runs
/// `--viceroy-path` relative to the project directory.
fn on_path(program: PathBuf) -> PathBuf {
    if program.components().count() > 1 {
        return program;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&program))
        .find(|candidate| candidate.is_file())
        .unwrap_or(program)
}

/// A `git clone` of the repository's HEAD in a temporary directory, removed on drop.
struct FreshClone {
    dir: PathBuf,
    target: PathBuf,
}

impl FreshClone {
    fn create(root: &Path, target: &Path) -> Result<FreshClone> {
        let dir = std::env::temp_dir().join(format!("fastgate-fresh-clone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        tools::run(
            Command::new("git")
                .args(["clone", "--quiet"])
                .arg(root)
                .arg(&dir),
        )?;
        std::fs::create_dir_all(target)?;
        std::os::unix::fs::symlink(target, dir.join("target"))?;
        Ok(FreshClone {
            dir,
            target: target.to_owned(),
        })
    }
}

impl Drop for FreshClone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `fastly compute build` in the clone, then checks that `pkg/fastgate.tar.gz` holds the
/// Wasm the build script just built (not a stale copy).
fn compute_build(fastly: &Path, clone: &FreshClone) -> Result<()> {
    // CLI 16 packages this file when it exists; an earlier run's must not stand in.
    let _ = std::fs::remove_file(clone.target.join("wasm32-wasip1/release/fastgate.wasm"));
    tools::run(
        Command::new(fastly)
            .current_dir(&clone.dir)
            .env("CARGO_TARGET_DIR", clone.dir.join("target"))
            .args([
                "compute",
                "build",
                "--metadata-disable",
                "--non-interactive",
            ]),
    )?;
    let package = clone.dir.join("pkg/fastgate.tar.gz");
    let packaged = packaged_wasm(&package)?;
    let built = std::fs::read(clone.target.join("wasm32-wasip1/wasm/fastgate.wasm"))?;
    ensure!(
        packaged == built,
        "{} does not hold the Wasm the build script built",
        package.display()
    );
    Ok(())
}

/// `fastgate/bin/main.wasm` from a package the CLI wrote (which, unlike
/// `cargo xtask package`, has directory entries too).
fn packaged_wasm(package: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(package).with_context(|| format!("opening {package:?}"))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == "fastgate/bin/main.wasm" {
            let mut wasm = Vec::new();
            entry.read_to_end(&mut wasm)?;
            return Ok(wasm);
        }
    }
    bail!("{package:?} has no fastgate/bin/main.wasm")
}

/// Points every `[local_server.backends]` entry of `manifest` at `ports`, in the order
/// origin_us, origin_eu, origin_ap.
fn point_backends_at(manifest: &Path, ports: [u16; 3]) -> Result<()> {
    let mut doc: toml::Table = std::fs::read_to_string(manifest)?.parse()?;
    let backends = doc
        .get_mut("local_server")
        .and_then(|v| v.get_mut("backends"))
        .and_then(|v| v.as_table_mut())
        .context("manifest has no [local_server.backends]")?;
    for (name, port) in ["origin_us", "origin_eu", "origin_ap"].iter().zip(ports) {
        let backend = backends
            .get_mut(*name)
            .and_then(|v| v.as_table_mut())
            .with_context(|| format!("manifest has no backend {name}"))?;
        backend.insert("url".into(), format!("http://127.0.0.1:{port}/").into());
    }
    std::fs::write(manifest, toml::to_string(&doc)?)?;
    Ok(())
}

/// `fastly compute serve` in its own process group, so that dropping it stops the
/// Viceroy the CLI started too.
struct FastlyServe {
    child: Child,
    log: PathBuf,
}

impl FastlyServe {
    fn start(fastly: &Path, dir: &Path, viceroy: &Path, addr: SocketAddr) -> Result<FastlyServe> {
        let log = dir.join("fastly-serve.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(fastly)
            .current_dir(dir)
            .args(["compute", "serve", "--skip-build", "--non-interactive"])
            .arg("--viceroy-path")
            .arg(viceroy)
            .arg("--addr")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()
            .context("starting fastly compute serve")?;
        Ok(FastlyServe { child, log })
    }

    /// Polls `GET path` until it answers (status and whole response), the CLI exits, or
    /// `timeout` passes (Viceroy compiles the Wasm first).
    fn wait_for(
        &mut self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<(u16, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "fastly compute serve exited with {status}{}",
                    self.log_text()
                );
            }
            if let Ok(answer) = http_get(addr, path) {
                return Ok(answer);
            }
            if Instant::now() > deadline {
                bail!(
                    "fastly compute serve not answering on {addr}{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("\n--- fastly compute serve ---\n{text}")
    }
}

impl Drop for FastlyServe {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever of the group is left (Viceroy, if the CLI did not pass the signal on).
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// One `GET` with `Connection: close`: the status and the whole response as text.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    Ok((status, text))
}
