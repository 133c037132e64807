//! `cargo xtask release ...` (issue #18): publishing a release (a gateway config plus a
//! front-end build) to the `fastgate_releases` KV Store, activating one, rolling back,
//! listing, and deleting what no release needs.
//!
//! The facts of the store (keys, manifest schema, limits, the ops protocol) are
//! `fastgate::release`'s; this module only moves bytes. A command applies to:
//! - the running edge, through its ops endpoint ([`edge`]), when one answers at
//!   [`Target::edge`]: the change is live at once, as it would be on a POP;
//! - the local copy ([`local`], `.fastgate/kv/`), which the next `cargo xtask serve`
//!   loads, since Viceroy keeps KV writes in memory only. Edge first: a value the edge
//!   refuses is not written locally either;
//! - or production only ([`Production`]), through the Fastly CLI ([`fastly`]).
//!
//! Every command takes either, as a [`Dest`]: `publish(&target, ...)` or
//! `publish(&production, ...)`.
//!
//! Writes are ordered so that a reader never sees a release half-published: every file
//! and the config, then the manifest, then (activate) the pointer. Content-hashed values
//! already stored are not uploaded again.

pub mod cli;
pub mod content;
pub mod edge;
pub mod fastly;
pub mod gc;
mod inventory;
pub mod kv;
pub mod local;
mod pointer;
mod publish;
#[cfg(test)]
mod tests;
pub mod web;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

pub use inventory::{gc, list};
use kv::Kv;
pub use local::{ensure_store_file, STORE_FILE};
pub use pointer::{activate, rollback};
pub use publish::publish;

/// Where `cargo xtask serve`'s edge listens.
pub const DEFAULT_EDGE: &str = "http://127.0.0.1:7676";
/// The local copy of the store, under the workspace root (git-ignored).
pub const LOCAL_DIR: &str = ".fastgate/kv";
/// Overrides the ops key read from `.fastgate/secrets.json` (for an edge run elsewhere).
pub const OPS_KEY_ENV: &str = "FASTGATE_RELEASE_OPS_KEY";

/// A local stack: its running edge and/or the local copy of its store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// A running edge's base URL. When nothing listens there, a command with `local`
    /// changes only the local copy (and says so); without `local` it fails.
    pub edge: Option<String>,
    /// The edge's `release_ops_key` (sent as `Authorization: Bearer`).
    pub ops_key: Option<String>,
    /// The local store directory (holding `store.json`); `None`: the edge only.
    pub local: Option<PathBuf>,
}

/// Production: the `fastgate_releases` store of the Fastly account `FASTLY_API_TOKEN`
/// opens, through the Fastly CLI. Neither the local edge nor the local copy is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Production {
    /// The Fastly CLI binary (`cargo xtask fastly-cli` installs the pinned one).
    pub fastly: PathBuf,
    /// Where batch files for the CLI are written.
    pub staging: PathBuf,
}

/// Where a command applies.
#[derive(Debug, Clone, Copy)]
pub enum Dest<'a> {
    Stack(&'a Target),
    Production(&'a Production),
}

impl<'a> From<&'a Target> for Dest<'a> {
    fn from(t: &'a Target) -> Dest<'a> {
        Dest::Stack(t)
    }
}

impl<'a> From<&'a Production> for Dest<'a> {
    fn from(p: &'a Production) -> Dest<'a> {
        Dest::Production(p)
    }
}

impl Dest<'_> {
    fn is_production(self) -> bool {
        matches!(self, Dest::Production(_))
    }

    /// Where batch files for the Fastly CLI are staged.
    fn staging(self) -> PathBuf {
        match self {
            Dest::Production(p) => p.staging.clone(),
            Dest::Stack(t) => t.staging(),
        }
    }
}

impl Target {
    /// `cargo xtask serve`'s stack: the edge at [`DEFAULT_EDGE`] with the checkout's ops key
    /// (`.fastgate/secrets.json`, or [`OPS_KEY_ENV`]), and the local copy in [`LOCAL_DIR`].
    pub fn local_default(root: &Path) -> Target {
        let from_file = std::fs::read_to_string(root.join(".fastgate/secrets.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["release_ops_key"].as_str().map(str::to_owned));
        Target {
            edge: Some(DEFAULT_EDGE.to_owned()),
            ops_key: std::env::var(OPS_KEY_ENV).ok().or(from_file),
            local: Some(root.join(LOCAL_DIR)),
        }
    }

    /// A local store only: seeds `dir/store.json` for a stack not started yet
    /// (`StackSpec::kv_store`).
    pub fn local_only(dir: &Path) -> Target {
        Target {
            local: Some(dir.to_owned()),
            ..Target::default()
        }
    }

    /// A running edge only (a test's stack on a free port).
    pub fn edge_only(url: &str, ops_key: &str) -> Target {
        Target {
            edge: Some(url.to_owned()),
            ops_key: Some(ops_key.to_owned()),
            ..Target::default()
        }
    }

    /// Where batch files for the printed Fastly CLI commands are staged.
    fn staging(&self) -> PathBuf {
        match &self.local {
            Some(dir) => dir.join("batches"),
            None => std::env::temp_dir().join(format!("fastgate-batches-{}", std::process::id())),
        }
    }
}

/// One published release, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// The config's SHA-256 hex; `None`: the edge's embedded config.
    pub config: Option<String>,
    pub files: usize,
    /// Identity bytes over every file.
    pub bytes: u64,
    pub active: bool,
}

/// What `gc` deleted (from the first store it applied to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub releases: Vec<String>,
    pub keys: Vec<String>,
}

/// The stores a command applies to, in write order; reads come from the first.
struct Stores(Vec<Box<dyn Kv>>);

impl Stores {
    fn primary(&mut self) -> &mut dyn Kv {
        self.0[0].as_mut()
    }
}

fn open(dest: Dest) -> Result<Stores> {
    let t = match dest {
        Dest::Production(p) => {
            let store = fastly::FastlyStore::open(&p.fastly, &p.staging.join("fastly-upload"))?;
            return Ok(Stores(vec![Box::new(store)]));
        }
        Dest::Stack(t) => t,
    };
    let mut stores: Vec<Box<dyn Kv>> = Vec::new();
    if let Some(url) = &t.edge {
        match edge::EdgeStore::connect(url, t.ops_key.as_deref())? {
            Some(edge) => stores.push(Box::new(edge)),
            None if t.local.is_some() => println!(
                "xtask: no edge answers at {url}: only the local copy is used; changes take \
                 effect at the next `cargo xtask serve`"
            ),
            None => bail!("no edge answers at {url}"),
        }
    }
    if let Some(dir) = &t.local {
        stores.push(Box::new(local::LocalStore::open(dir)?));
    }
    if stores.is_empty() {
        bail!("no release store: give an edge URL or a local store directory");
    }
    Ok(Stores(stores))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
