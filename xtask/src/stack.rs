//! The whole local stack as supervised child processes: one `fastgate-api` per named
//! backend, and Viceroy running the edge Wasm with a manifest pointing at them.
//!
//! `cargo xtask serve` runs it on the fixed ports of `fastly.toml`; the e2e tests run
//! many at once on free ports. Dropping a [`Stack`] kills and reaps every child, also when
//! a test panics, so no Viceroy or origin outlives its owner.
//!
//! While [`Stack::supervise`] runs, a child that dies is started again on the same address
//! after a backoff ([`supervise::Backoff`]), and [`Stack::rolling_restart`] replaces
//! the origins one at a time without the edge losing a request.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod supervise;

use supervise::Backoff;

/// What a named backend in the manifest points at.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Start a `fastgate-api --name <backend>` process on this port (0 = any free port).
    Origin { port: u16 },
    /// Point the backend at an address something else serves (a test peer, or a closed
    /// port to simulate an unreachable origin).
    Address(SocketAddr),
}

/// Everything needed to start a stack.
#[derive(Debug, Clone)]
pub struct StackSpec {
    pub wasm: PathBuf,
    pub origin_bin: PathBuf,
    pub viceroy: PathBuf,
    /// The manifest whose `[local_server]` (geolocation, stores) the stack reuses.
    pub base_manifest: PathBuf,
    pub backends: Vec<(String, Upstream)>,
    /// Port Viceroy listens on (0 = any free port).
    pub edge_port: u16,
    /// Directory for the origins' shared SQLite file and objects.
    pub data_dir: PathBuf,
    /// Children inherit the terminal (serve) instead of logging to files (tests).
    pub inherit_output: bool,
    /// Extra environment for the origin processes.
    pub origin_env: Vec<(String, String)>,
    /// A gateway config to serve from the `fastgate_config` Config Store (key `config`),
    /// as ops would push it; `None` keeps the base manifest's store.
    pub config_override: Option<String>,
    /// Flag overrides for the Config Store's `flags` key (`{"new_schema": {"enabled": true}}`).
    pub flags_override: Option<String>,
    /// Shared secrets: written to the edge's Secret Store file and given to the origins.
    pub secrets: Secrets,
    /// The `fastgate_releases` KV Store, as a Viceroy KV JSON file (`xtask::release` writes
    /// one: `.fastgate/kv/store.json` for `serve`); `None`: an empty store in the run
    /// directory, so that the store always exists.
    pub kv_store: Option<PathBuf>,
}

/// The secrets the edge and the origins share. Generated per run (tests) or once per
/// checkout (`.fastgate/secrets.json`, git-ignored, for `serve`): never in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// `keyid` of the RFC 9421 signature the edge puts on every forwarded request.
    pub identity_key_id: String,
    pub identity_key: String,
    /// HS256 key for end-user JWTs (the origin issues them, the edge verifies them).
    pub jwt_hs256_key: String,
    /// The release ops endpoint's bearer key (`release_ops_key`): its presence turns the
    /// endpoint on, so that `cargo xtask release` can change the running edge's KV Store.
    pub ops_key: String,
    /// The browser sessions' key ring (`session_keys`, `kid:hex64[,…]`), first seals.
    pub session_keys: String,
    /// `release_preview_key`: when not empty, preview hosts ask for it. Empty by default:
    /// local previews are open (production declares one in `[setup]`).
    pub preview_key: String,
}

impl Secrets {
    /// Fresh random secrets.
    pub fn generate() -> Result<Secrets> {
        Ok(Secrets {
            identity_key_id: format!("local-{}", &random_hex(4)?),
            identity_key: random_hex(32)?,
            jwt_hs256_key: random_hex(32)?,
            ops_key: random_hex(32)?,
            session_keys: format!("s-{}:{}", random_hex(4)?, random_hex(32)?),
            preview_key: String::new(),
        })
    }

    /// Reads `path` (the Secret Store JSON file), creating it with fresh secrets if absent.
    /// A file from before releases lacks `release_ops_key`: it is added, and the file
    /// rewritten with its other entries unchanged.
    pub fn load_or_create(path: &Path) -> Result<Secrets> {
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let added = add_missing(&mut v, path)?;
            if added {
                std::fs::write(path, v.to_string())
                    .with_context(|| format!("adding keys to {}", path.display()))?;
            }
            let field = |k: &str| {
                v[k].as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("{} lacks `{k}`", path.display()))
            };
            return Ok(Secrets {
                identity_key_id: field("identity_key_id")?,
                identity_key: field("identity_signing_key")?,
                jwt_hs256_key: field("jwt_hs256_key")?,
                ops_key: field(fastgate::release::OPS_KEY_SECRET)?,
                session_keys: field(fastgate::session::SESSION_KEYS_SECRET)?,
                preview_key: v[fastgate::release::PREVIEW_KEY_SECRET]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        let secrets = Secrets::generate()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, secrets.store_json())?;
        Ok(secrets)
    }

    /// The Secret Store file Viceroy reads (`format = "json"`). An empty `ops_key` is left
    /// out, which turns the ops endpoint off.
    pub fn store_json(&self) -> String {
        let mut v = serde_json::json!({
            "identity_key_id": self.identity_key_id,
            "identity_signing_key": self.identity_key,
            "jwt_hs256_key": self.jwt_hs256_key,
        });
        if !self.ops_key.is_empty() {
            v[fastgate::release::OPS_KEY_SECRET] = self.ops_key.clone().into();
        }
        v[fastgate::session::SESSION_KEYS_SECRET] = self.session_keys.clone().into();
        if !self.preview_key.is_empty() {
            v[fastgate::release::PREVIEW_KEY_SECRET] = self.preview_key.clone().into();
        }
        v.to_string()
    }

    /// The environment an origin needs to trust this edge and share its JWT key.
    pub fn origin_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "FASTGATE_IDENTITY_KEYS".into(),
                format!("{}:{}", self.identity_key_id, self.identity_key),
            ),
            ("JWT_SECRET".into(), self.jwt_hs256_key.clone()),
        ]
    }
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

struct Proc {
    name: String,
    child: Child,
    log: Option<PathBuf>,
    /// How long it ran before dying decides how soon supervision starts it again.
    started: Instant,
    backoff: Backoff,
    /// Set once supervision has seen it dead: when to start it again.
    restart_at: Option<Instant>,
}

impl Proc {
    /// Whether supervision should start this child again now. The first look after it
    /// died logs the death and schedules the restart after the backoff.
    fn restart_due(&mut self, now: Instant) -> bool {
        if let Some(at) = self.restart_at {
            return now >= at;
        }
        let Ok(Some(status)) = self.child.try_wait() else {
            return false;
        };
        let delay = self.backoff.next_delay(now - self.started);
        eprintln!(
            "xtask: {} (pid {}) exited with {status}; restarting in {delay:?}",
            self.name,
            self.child.id()
        );
        self.restart_at = Some(now + delay);
        false
    }
}

/// Which supervised child: a named origin, or the stack's own Viceroy.
enum Role {
    Origin(String),
    Edge,
}

/// How long a draining origin may take to finish its in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running stack. Kill it by dropping it.
pub struct Stack {
    /// What it was started with: supervision starts dead children again from it.
    spec: StackSpec,
    run_dir: PathBuf,
    origins: BTreeMap<String, (SocketAddr, Proc)>,
    viceroy: Option<Proc>,
    edge: SocketAddr,
    /// This run's manifest, which every Viceroy of the stack serves with.
    manifest: PathBuf,
    /// Further Viceroys on the same manifest (the benchmark's pass-through floor).
    others: Vec<Proc>,
}

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Asks the OS for a free loopback port, never one this process was handed before. The
/// port is released before use, so until its server binds it the OS may offer it again: to
/// the next stack's origin, or to this stack's own next port. A server that then lost the
/// race leaves its readiness probe answered by the one that won (an edge "ready" that is an
/// origin). Remembering what was handed out closes that within the process (all the tests
/// of one binary); another process could still take it, and the readiness check then
/// fails loudly.
pub fn free_port() -> Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
}

impl Stack {
    /// Starts the origins, then Viceroy on a manifest pointing at them, and returns once
    /// the edge reports ready.
    pub fn start(spec: &StackSpec) -> Result<Stack> {
        let mut stack = Stack::empty(spec)?;
        let addresses = stack.start_origins(spec)?;
        stack.manifest = stack.write_run_manifest(spec, &addresses)?;
        let manifest = stack.manifest.clone();
        stack.start_viceroy(spec, &manifest)?;
        Ok(stack)
    }

    /// Starts only the origins (`spec.wasm` and `spec.viceroy` are unused): for an edge
    /// run by something else, `fastly compute serve` on the checkout's own manifest.
    pub fn start_origins_only(spec: &StackSpec) -> Result<Stack> {
        let mut stack = Stack::empty(spec)?;
        stack.start_origins(spec)?;
        Ok(stack)
    }

    fn empty(spec: &StackSpec) -> Result<Stack> {
        let run_dir = std::env::temp_dir().join(format!(
            "fastgate-stack-{}-{}",
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&run_dir)?;
        std::fs::create_dir_all(&spec.data_dir)?;
        let edge_port = match spec.edge_port {
            0 => free_port()?,
            p => p,
        };
        Ok(Stack {
            spec: spec.clone(),
            run_dir,
            origins: BTreeMap::new(),
            viceroy: None,
            edge: SocketAddr::from(([127, 0, 0, 1], edge_port)),
            manifest: PathBuf::new(),
            others: Vec::new(),
        })
    }

    /// Starts another Viceroy running `wasm` with this stack's manifest (the same backends,
    /// stores and geolocation) and returns its address once it answers.
    pub fn start_other_edge(&mut self, spec: &StackSpec, wasm: &Path) -> Result<SocketAddr> {
        self.start_other_edge_with(spec, wasm, &[], &[])
    }

    /// As [`Stack::start_other_edge`], with further Viceroy arguments (`--profile=...`)
    /// and environment (`RUST_LOG`); its output goes to `<name>.log` in the run directory
    /// ([`Stack::other_edge_log`]).
    pub fn start_other_edge_with(
        &mut self,
        spec: &StackSpec,
        wasm: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<SocketAddr> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut cmd = viceroy_serve(spec, addr, &self.manifest, wasm, args);
        cmd.envs(env.iter().copied());
        let name = format!("viceroy-{}", self.others.len() + 1);
        let mut proc = self.spawn(&name, cmd, false)?;
        let ready = wait_http(addr, "/health", &mut proc, Duration::from_secs(120));
        self.others.push(proc);
        ready.with_context(|| format!("{name} did not become ready"))?;
        Ok(addr)
    }

    /// Starts an origin for every [`Upstream::Origin`] backend and waits until each is
    /// ready; returns the address of every named backend.
    fn start_origins(&mut self, spec: &StackSpec) -> Result<BTreeMap<String, SocketAddr>> {
        let mut addresses = BTreeMap::new();
        for (name, upstream) in &spec.backends {
            let addr = match upstream {
                Upstream::Address(addr) => *addr,
                Upstream::Origin { port } => {
                    let port = if *port == 0 { free_port()? } else { *port };
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    let proc = self.spawn_origin(spec, name, addr)?;
                    self.origins.insert(name.clone(), (addr, proc));
                    addr
                }
            };
            addresses.insert(name.clone(), addr);
        }
        for (name, (addr, proc)) in &mut self.origins {
            wait_http(*addr, "/health", proc, Duration::from_secs(60))
                .with_context(|| format!("origin {name} did not become ready"))?;
        }
        Ok(addresses)
    }

    /// Writes this run's manifest (backends at `addresses`, the Config Store overrides and
    /// the Secret Store file) into the run directory and returns its path.
    fn write_run_manifest(
        &self,
        spec: &StackSpec,
        addresses: &BTreeMap<String, SocketAddr>,
    ) -> Result<PathBuf> {
        let manifest = self.run_dir.join("fastly.toml");
        let mut entries = serde_json::Map::new();
        if let Some(json) = &spec.config_override {
            entries.insert("config".into(), json.clone().into());
        }
        if let Some(json) = &spec.flags_override {
            entries.insert("flags".into(), json.clone().into());
        }
        let store_file = if entries.is_empty() {
            None
        } else {
            let path = self.run_dir.join("config-store.json");
            std::fs::write(&path, serde_json::Value::Object(entries).to_string())?;
            Some(path)
        };
        let secrets_file = self.run_dir.join("secrets.json");
        std::fs::write(&secrets_file, spec.secrets.store_json())?;
        let kv_file = match &spec.kv_store {
            Some(file) => std::path::absolute(file)?,
            None => {
                let file = self.run_dir.join("kv-store.json");
                std::fs::write(&file, "{}")?;
                file
            }
        };
        write_manifest(
            &spec.base_manifest,
            &manifest,
            addresses,
            store_file.as_deref(),
            &secrets_file,
            &kv_file,
        )?;
        Ok(manifest)
    }

    /// Starts Viceroy on `manifest` and waits until the edge reports ready.
    fn start_viceroy(&mut self, spec: &StackSpec, manifest: &Path) -> Result<()> {
        let cmd = viceroy_serve(spec, self.edge, manifest, &spec.wasm, &[]);
        let mut viceroy = self.spawn("viceroy", cmd, spec.inherit_output)?;
        let ready = wait_http(
            self.edge,
            "/__fastgate/ready",
            &mut viceroy,
            Duration::from_secs(120),
        );
        self.viceroy = Some(viceroy);
        ready.context("viceroy did not become ready")
    }

    fn spawn_origin(&self, spec: &StackSpec, name: &str, addr: SocketAddr) -> Result<Proc> {
        self.spawn(name, origin_command(spec, name, addr), spec.inherit_output)
    }

    /// Starts `cmd`. Its output goes to `<name>.log`, appended to, so that what a child
    /// printed before a restart is still there after it.
    fn spawn(&self, name: &str, mut cmd: Command, inherit: bool) -> Result<Proc> {
        let log = if inherit {
            None
        } else {
            let path = self.run_dir.join(format!("{name}.log"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            cmd.stdout(file.try_clone()?).stderr(file);
            Some(path)
        };
        cmd.stdin(Stdio::null());
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name}: {cmd:?}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log,
            started: Instant::now(),
            backoff: Backoff::default(),
            restart_at: None,
        })
    }

    /// How many further Viceroys were started.
    pub fn others_len(&self) -> usize {
        self.others.len()
    }

    /// The output file of the `n`th further Viceroy.
    pub fn other_edge_log(&self, n: usize) -> Option<PathBuf> {
        self.others.get(n)?.log.clone()
    }

    /// Stops the `n`th further Viceroy (0-based, in start order) and returns the path of
    /// its output.
    pub fn stop_other_edge(&mut self, n: usize) -> Option<PathBuf> {
        let proc = self.others.get_mut(n)?;
        let _ = proc.child.kill();
        let _ = proc.child.wait();
        proc.log.clone()
    }

    /// The edge's base URL, e.g. `http://127.0.0.1:7676`.
    pub fn edge_url(&self) -> String {
        format!("http://{}", self.edge)
    }

    pub fn edge_addr(&self) -> SocketAddr {
        self.edge
    }

    /// A running origin's address, to talk to it directly.
    pub fn origin_addr(&self, name: &str) -> Option<SocketAddr> {
        self.origins.get(name).map(|(addr, _)| *addr)
    }

    /// Starts a killed origin again on the same address and waits until it is ready.
    pub fn restart_origin(&mut self, spec: &StackSpec, name: &str) -> Result<()> {
        let addr = self
            .origin_addr(name)
            .with_context(|| format!("no origin named {name}"))?;
        let mut proc = self.spawn_origin(spec, name, addr)?;
        wait_http(addr, "/health", &mut proc, Duration::from_secs(60))?;
        if let Some((_, old)) = self.origins.insert(name.to_owned(), (addr, proc)) {
            let mut old = old;
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        Ok(())
    }

    /// The process id of a named origin, e.g. to check that supervision replaced it.
    pub fn origin_pid(&self, name: &str) -> Option<u32> {
        self.origins.get(name).map(|(_, p)| p.child.id())
    }

    /// The stack's own Viceroy's process id.
    pub fn edge_pid(&self) -> Option<u32> {
        self.viceroy.as_ref().map(|p| p.child.id())
    }

    /// Kills one origin with SIGKILL (to simulate an outage, or a crash) and waits until it
    /// is gone. It stays down unless [`Stack::supervise`] runs, which starts it again.
    pub fn kill_origin(&mut self, name: &str) -> Result<()> {
        let (_, proc) = self
            .origins
            .get_mut(name)
            .with_context(|| format!("no origin named {name}"))?;
        let _ = proc.child.kill();
        proc.child.wait()?;
        Ok(())
    }

    /// Everything an origin printed so far (its per-request JSON log lines included).
    pub fn origin_log(&self, name: &str) -> String {
        self.origins
            .get(name)
            .and_then(|(_, p)| p.log.as_ref())
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Everything the edge printed so far (its per-request JSON log lines included).
    pub fn edge_log(&self) -> String {
        self.viceroy
            .as_ref()
            .and_then(|p| p.log.as_ref())
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Keeps every child running until `stop` returns true: a child that dies is logged
    /// and started again on its address after its backoff, while the others (the edge
    /// too, when an origin died) keep serving. Further Viceroys are not supervised.
    pub fn supervise(&mut self, mut stop: impl FnMut() -> bool) {
        while !stop() {
            self.poll_children();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One supervision pass: notes the children that died and starts again those whose
    /// backoff has elapsed.
    pub fn poll_children(&mut self) {
        let now = Instant::now();
        let roles: Vec<Role> = self
            .origins
            .keys()
            .cloned()
            .map(Role::Origin)
            .chain(self.viceroy.is_some().then_some(Role::Edge))
            .collect();
        for role in roles {
            if self.proc_mut(&role).is_some_and(|p| p.restart_due(now)) {
                self.respawn(&role);
            }
        }
    }

    fn proc_mut(&mut self, role: &Role) -> Option<&mut Proc> {
        match role {
            Role::Origin(name) => self.origins.get_mut(name).map(|(_, p)| p),
            Role::Edge => self.viceroy.as_mut(),
        }
    }

    /// Starts a dead child again with the command line it had; failing to start counts as
    /// one more quick death.
    fn respawn(&mut self, role: &Role) {
        let (name, cmd) = match role {
            Role::Origin(name) => {
                let addr = self.origins[name].0;
                (name.as_str(), origin_command(&self.spec, name, addr))
            }
            Role::Edge => {
                let cmd =
                    viceroy_serve(&self.spec, self.edge, &self.manifest, &self.spec.wasm, &[]);
                ("viceroy", cmd)
            }
        };
        let name = name.to_owned();
        let spawned = self.spawn(&name, cmd, self.spec.inherit_output);
        let Some(old) = self.proc_mut(role) else {
            return;
        };
        match spawned {
            Ok(mut new) => {
                new.backoff = old.backoff.clone();
                eprintln!(
                    "xtask: restarted {name} (pid {}, restart #{})",
                    new.child.id(),
                    new.backoff.restarts
                );
                *old = new;
            }
            Err(e) => {
                let delay = old.backoff.next_delay(Duration::ZERO);
                eprintln!("xtask: {e:#}; trying again in {delay:?}");
                old.restart_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Replaces every origin in turn without the edge losing a request. Each gets SIGTERM
    /// (it stops accepting and finishes what is in flight); once it has exited a new one
    /// starts on the same port, and the next origin waits until that one answers
    /// `/health`. The ports are fixed in the manifest, so old and new cannot overlap: in
    /// between, the edge fails over to the other origins (a refused connection is retried
    /// on the next backend). Uses the spec the stack was started with.
    pub fn rolling_restart(&mut self) -> Result<()> {
        self.rolling_restart_with(&[])
    }

    /// [`Stack::rolling_restart`] with `env` set for the new origins (and for any later
    /// restart): a deploy that changes the origins' configuration, e.g. their trusted
    /// identity keys during a rotation.
    pub fn rolling_restart_with(&mut self, env: &[(&str, &str)]) -> Result<()> {
        for (key, value) in env {
            self.spec.origin_env.retain(|(k, _)| k != key);
            self.spec
                .origin_env
                .push(((*key).to_owned(), (*value).to_owned()));
        }
        let names: Vec<String> = self.origins.keys().cloned().collect();
        for name in names {
            self.replace_origin(&name)
                .with_context(|| format!("rolling restart of {name}"))?;
        }
        Ok(())
    }

    /// One step of [`Stack::rolling_restart`]. A replacement that fails to come up stays in
    /// place, so that supervision keeps starting it again.
    fn replace_origin(&mut self, name: &str) -> Result<()> {
        let (addr, old) = self
            .origins
            .get_mut(name)
            .with_context(|| format!("no origin named {name}"))?;
        let (addr, pid) = (*addr, old.child.id());
        let status = terminate(&mut old.child, DRAIN_TIMEOUT)?;
        eprintln!("xtask: rolling restart: {name} (pid {pid}) drained, exited with {status}");
        let cmd = origin_command(&self.spec, name, addr);
        let mut new = self.spawn(name, cmd, self.spec.inherit_output)?;
        let ready = wait_http(addr, "/health", &mut new, Duration::from_secs(60));
        let new_pid = new.child.id();
        self.origins.insert(name.to_owned(), (addr, new));
        ready?;
        eprintln!("xtask: rolling restart: {name} is back (pid {new_pid})");
        Ok(())
    }

    /// Replaces the edge's Secret Store file with `secrets`. Viceroy reads it at start, so
    /// it is what the next edge started on this stack's manifest sees
    /// ([`Stack::start_other_edge`]): the local form of updating a Secret Store entry.
    pub fn write_edge_secrets(&self, secrets: &Secrets) -> Result<()> {
        std::fs::write(self.run_dir.join("secrets.json"), secrets.store_json())?;
        Ok(())
    }

    /// Child process ids, so tests can prove nothing is left behind.
    pub fn pids(&self) -> Vec<u32> {
        self.origins
            .values()
            .map(|(_, p)| p.child.id())
            .chain(self.viceroy.as_ref().map(|p| p.child.id()))
            .chain(self.others.iter().map(|p| p.child.id()))
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let procs = self
            .viceroy
            .iter_mut()
            .chain(self.others.iter_mut())
            .chain(self.origins.values_mut().map(|(_, p)| p));
        for proc in procs {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("stack logs kept in {}", self.run_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// `fastgate-api --name NAME --listen ADDR --data-dir DIR` with the shared secrets.
fn origin_command(spec: &StackSpec, name: &str, addr: SocketAddr) -> Command {
    let mut cmd = Command::new(&spec.origin_bin);
    cmd.arg("--name")
        .arg(name)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .envs(spec.secrets.origin_env())
        .envs(spec.origin_env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Sends SIGTERM, then SIGKILL if the child has not exited within `grace`; returns how it
/// exited. An origin drains its in-flight requests on SIGTERM.
fn terminate(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    use nix::sys::signal::{kill, Signal};
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("xtask: pid {pid} did not exit within {grace:?} of SIGTERM; killing it");
    child.kill()?;
    Ok(child.wait()?)
}

/// Adds the entries a secrets file from an older checkout lacks (the release ops key, the
/// session keys); `true` when it changed.
fn add_missing(v: &mut serde_json::Value, path: &Path) -> Result<bool> {
    let map = v
        .as_object_mut()
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    let mut added = false;
    if !map.contains_key(fastgate::release::OPS_KEY_SECRET) {
        map.insert(
            fastgate::release::OPS_KEY_SECRET.into(),
            random_hex(32)?.into(),
        );
        added = true;
    }
    if !map.contains_key(fastgate::session::SESSION_KEYS_SECRET) {
        let ring = format!("s-{}:{}", random_hex(4)?, random_hex(32)?);
        map.insert(fastgate::session::SESSION_KEYS_SECRET.into(), ring.into());
        added = true;
    }
    Ok(added)
}

/// `viceroy serve ARGS --addr ADDR -C MANIFEST WASM`.
fn viceroy_serve(
    spec: &StackSpec,
    addr: SocketAddr,
    manifest: &Path,
    wasm: &Path,
    args: &[String],
) -> Command {
    let mut cmd = Command::new(&spec.viceroy);
    cmd.arg("serve")
        .args(args)
        .arg("--addr")
        .arg(addr.to_string())
        .arg("-C")
        .arg(manifest)
        .arg(wasm);
    cmd
}

/// Writes `base` with every named backend's URL replaced by `addresses`, the config
/// store pointed at `store_file` when given, and the secret and release (KV) stores at
/// their files.
fn write_manifest(
    base: &Path,
    out: &Path,
    addresses: &BTreeMap<String, SocketAddr>,
    store_file: Option<&Path>,
    secrets_file: &Path,
    kv_file: &Path,
) -> Result<()> {
    let text =
        std::fs::read_to_string(base).with_context(|| format!("reading {}", base.display()))?;
    let mut doc: toml::Table = text.parse()?;
    let backends = doc
        .get_mut("local_server")
        .and_then(|v| v.as_table_mut())
        .context("manifest has no [local_server]")?
        .entry("backends")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .context("[local_server.backends] is not a table")?;
    backends.clear();
    for (name, addr) in addresses {
        let mut backend = toml::Table::new();
        backend.insert("url".into(), toml::Value::String(format!("http://{addr}/")));
        backends.insert(name.clone(), toml::Value::Table(backend));
    }
    point_store_at(&mut doc, "secret_stores", "fastgate_secrets", secrets_file)?;
    point_store_at(&mut doc, "kv_stores", fastgate::release::STORE, kv_file)?;
    if let Some(file) = store_file {
        point_store_at(&mut doc, "config_stores", "fastgate_config", file)?;
    }
    std::fs::write(out, toml::to_string(&doc)?)?;
    Ok(())
}

/// Makes `[local_server.<kind>.<name>]` read the JSON file `file`.
fn point_store_at(doc: &mut toml::Table, kind: &str, name: &str, file: &Path) -> Result<()> {
    let mut store = toml::Table::new();
    store.insert("format".into(), toml::Value::String("json".into()));
    store.insert(
        "file".into(),
        toml::Value::String(file.display().to_string()),
    );
    doc.get_mut("local_server")
        .and_then(|v| v.as_table_mut())
        .context("manifest has no [local_server]")?
        .entry(kind)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .with_context(|| format!("[local_server.{kind}] is not a table"))?
        .insert(name.into(), toml::Value::Table(store));
    Ok(())
}

/// Polls `GET path` until any HTTP response arrives, the child dies, or time runs out.
fn wait_http(addr: SocketAddr, path: &str, proc: &mut Proc, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = proc.child.try_wait()? {
            bail!("{} exited with {status}{}", proc.name, log_tail(proc));
        }
        if probe(addr, path).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} not answering on {addr}{}", proc.name, log_tail(proc));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One HTTP/1.1 request: enough to know a server is up, without an HTTP client dependency.
fn probe(addr: SocketAddr, path: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(std::io::Error::other("not an HTTP response"))
    }
}

fn log_tail(proc: &Proc) -> String {
    let Some(path) = &proc.log else {
        return String::new();
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("\n--- {} ---\n{}", path.display(), tail.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fastgate-stack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_old_secrets_file_gains_the_ops_key_and_keeps_the_rest() {
        let dir = temp("secrets");
        let path = dir.join("secrets.json");
        let old = r#"{"identity_key_id":"local-1","identity_signing_key":"ik","jwt_hs256_key":"jk","x":"y"}"#;
        std::fs::write(&path, old).unwrap();
        let secrets = Secrets::load_or_create(&path).unwrap();
        assert_eq!(secrets.identity_key, "ik");
        assert_eq!(secrets.ops_key.len(), 64);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["release_ops_key"], secrets.ops_key.as_str());
        assert_eq!(v["x"], "y");
        // Stable from then on.
        assert_eq!(Secrets::load_or_create(&path).unwrap(), secrets);
        let store: serde_json::Value = serde_json::from_str(&secrets.store_json()).unwrap();
        assert_eq!(store["release_ops_key"], secrets.ops_key.as_str());
        assert!(store.get("release_preview_key").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_run_manifest_points_the_release_store_at_its_file() {
        let dir = temp("manifest");
        let out = dir.join("fastly.toml");
        let kv = dir.join("kv.json");
        let base = crate::workspace_root().join("fastly.toml");
        let addresses = BTreeMap::from([(
            "origin_us".to_owned(),
            SocketAddr::from(([127, 0, 0, 1], 1)),
        )]);
        write_manifest(&base, &out, &addresses, None, &dir.join("s.json"), &kv).unwrap();
        let doc: toml::Table = std::fs::read_to_string(&out).unwrap().parse().unwrap();
        let store = &doc["local_server"]["kv_stores"][fastgate::release::STORE];
        assert_eq!(store["format"].as_str(), Some("json"));
        assert_eq!(
            store["file"].as_str(),
            Some(kv.display().to_string().as_str())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
