//! Developer tooling shared by `cargo xtask` and the end-to-end tests: installing the
//! tools the edge needs ([`tools`]), building artefacts ([`build`]) and running the whole
//! stack of origins plus Viceroy as supervised child processes ([`stack`]).

pub mod bench;
pub mod build;
pub mod stack;
pub mod tools;

use std::path::PathBuf;

/// The workspace root (the directory holding `fastly.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}
