//! Builds the two artefacts the stack runs: the edge Wasm and the origin binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::tools::run;

/// Where builds go. The e2e harness passes its own directory so that building from inside
/// `cargo test` never waits on the lock the outer cargo holds on `target/`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// `cargo build --profile wasm --target wasm32-wasip1 --bin fastgate` (size-optimised, see
/// the root `Cargo.toml`); returns the `.wasm` path.
pub fn edge_wasm(root: &Path, target: &Path) -> Result<PathBuf> {
    wasm(root, target, "fastgate", "fastgate")
}

/// The benchmark's floor (`benches/passthrough`): a Wasm with only `fastly` that passes
/// each request to `origin_us`, built with the same profile as the edge.
pub fn passthrough_wasm(root: &Path, target: &Path) -> Result<PathBuf> {
    wasm(root, target, "fastgate-passthrough", "passthrough")
}

fn wasm(root: &Path, target: &Path, package: &str, bin: &str) -> Result<PathBuf> {
    crate::tools::ensure_wasm_target()?;
    run(Command::new("cargo")
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--profile", "wasm", "--target", "wasm32-wasip1"])
        .args(["--package", package, "--bin", bin]))?;
    Ok(target.join(format!("wasm32-wasip1/wasm/{bin}.wasm")))
}

/// `cargo build --release -p fastgate-api`; returns the binary path.
pub fn origin_binary(root: &Path, target: &Path) -> Result<PathBuf> {
    run(Command::new("cargo")
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--release", "--package", "fastgate-api"]))?;
    Ok(target.join("release/fastgate-api"))
}
