//! Starting a stack for one test: the built artifacts (once per test binary) and a
//! builder for what the test changes from the default stack.

use std::path::PathBuf;
use std::sync::OnceLock;

use xtask::stack::{free_port, Secrets, Stack, StackSpec, Upstream};

use super::{config_with, open_api_routes};

/// The built Wasm, origin binary and Viceroy. `cargo xtask test` passes them in; a plain
/// `cargo test` builds them into `target/e2e` (a separate target dir, so the nested cargo
/// never waits on the outer one's lock).
struct Artifacts {
    wasm: PathBuf,
    origin_bin: PathBuf,
    viceroy: PathBuf,
}

fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let root = xtask::workspace_root();
        let target = root.join("target/e2e");
        let from_env = |var: &str| std::env::var_os(var).map(PathBuf::from);
        let wasm = from_env("FASTGATE_WASM").unwrap_or_else(|| {
            xtask::build::edge_wasm(&root, &target).expect("building the edge wasm")
        });
        let origin_bin = from_env("FASTGATE_ORIGIN_BIN").unwrap_or_else(|| {
            xtask::build::origin_binary(&root, &target).expect("building the origin")
        });
        let viceroy = xtask::tools::ensure_viceroy().expect("viceroy 0.22.0 is required");
        Artifacts {
            wasm,
            origin_bin,
            viceroy,
        }
    })
}

/// A test's stack: its named backends, and whatever ops would have set on it (a config
/// or flags in the Config Store) or the origins' environment. Everything else is the
/// default: free ports, a fresh data directory, fresh secrets, output to log files.
///
/// `StackBuilder::new(three_origins()).config_override(json).start()`
pub struct StackBuilder {
    backends: Vec<(String, Upstream)>,
    config_override: Option<String>,
    flags_override: Option<String>,
    origin_env: Vec<(String, String)>,
    kv_store: Option<PathBuf>,
    ops_key: bool,
    preview_key: String,
}

impl StackBuilder {
    /// A stack whose named backends point where `backends` says.
    pub fn new(backends: Vec<(&str, Upstream)>) -> StackBuilder {
        StackBuilder {
            backends: backends
                .into_iter()
                .map(|(name, up)| (name.to_string(), up))
                .collect(),
            config_override: None,
            flags_override: None,
            origin_env: Vec::new(),
            kv_store: None,
            ops_key: true,
            preview_key: String::new(),
        }
    }

    /// A `release_preview_key` in the Secret Store: preview hosts ask for it.
    pub fn preview_key(mut self, key: &str) -> StackBuilder {
        key.clone_into(&mut self.preview_key);
        self
    }

    /// No `release_ops_key` in the Secret Store: the ops endpoint is off.
    pub fn without_ops_key(mut self) -> StackBuilder {
        self.ops_key = false;
        self
    }

    /// The release store the edge starts with (a Viceroy KV JSON file), as `cargo xtask
    /// serve` starts with `.fastgate/kv/store.json`.
    pub fn kv_store(mut self, file: PathBuf) -> StackBuilder {
        self.kv_store = Some(file);
        self
    }

    /// A gateway config served from the Config Store (key `config`).
    pub fn config_override(mut self, json: String) -> StackBuilder {
        self.config_override = Some(json);
        self
    }

    /// The embedded config with the API routes public (see [`open_api_routes`]): for tests
    /// whose origin is an echo server and who are not about authentication.
    pub fn open_api_routes(self) -> StackBuilder {
        self.config_override(config_with(open_api_routes))
    }

    /// Flag overrides for the Config Store's `flags` key (`{"new_schema": {"enabled": true}}`).
    pub fn flags(mut self, json: String) -> StackBuilder {
        self.flags_override = Some(json);
        self
    }

    /// Extra environment for the origin processes.
    pub fn origin_env<'a>(
        mut self,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> StackBuilder {
        self.origin_env
            .extend(vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        self
    }

    /// Starts the stack.
    pub fn start(self) -> Stack {
        self.start_with_spec().0
    }

    /// Starts the stack and returns its spec too: its secrets, and what
    /// [`Stack::restart_origin`] needs.
    pub fn start_with_spec(self) -> (Stack, StackSpec) {
        let spec = self.spec();
        let stack = Stack::start(&spec).expect("starting the stack");
        (stack, spec)
    }

    fn spec(self) -> StackSpec {
        let a = artifacts();
        let secrets = Secrets::generate().expect("generating secrets");
        let data_dir = std::env::temp_dir().join(format!(
            "fastgate-e2e-data-{}-{}",
            std::process::id(),
            free_port().unwrap()
        ));
        StackSpec {
            wasm: a.wasm.clone(),
            origin_bin: a.origin_bin.clone(),
            viceroy: a.viceroy.clone(),
            base_manifest: xtask::workspace_root().join("fastly.toml"),
            backends: self.backends,
            edge_port: 0,
            data_dir,
            inherit_output: false,
            origin_env: self.origin_env,
            config_override: self.config_override,
            flags_override: self.flags_override,
            secrets: Secrets {
                ops_key: if self.ops_key {
                    secrets.ops_key
                } else {
                    String::new()
                },
                preview_key: self.preview_key,
                ..secrets
            },
            kv_store: self.kv_store,
        }
    }
}
