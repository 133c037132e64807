//! Makes sure the tools the edge needs exist, installing what is missing. A fresh machine
//! only needs rustup and cargo; everything else comes from here.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Viceroy must be this version: fastly 0.13 uses hostcalls that older releases lack.
pub const VICEROY_VERSION: &str = "0.22.0";

/// Adds the `wasm32-wasip1` target when rustup does not list it as installed.
pub fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(crate::workspace_root())
        .output();
    match out {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip1") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-wasip1"])),
        // No rustup: trust that the toolchain has the target (a build will say otherwise).
        Err(_) => Ok(()),
    }
}

/// Returns a Viceroy of the pinned version, installing it with cargo if needed.
pub fn ensure_viceroy() -> Result<PathBuf> {
    if let Some(path) = find_viceroy() {
        return Ok(path);
    }
    eprintln!("xtask: installing viceroy {VICEROY_VERSION} (first run only; ~25 min cold)");
    run(Command::new("cargo").args([
        "install",
        "viceroy",
        "--version",
        VICEROY_VERSION,
        "--locked",
    ]))?;
    find_viceroy().context("viceroy was installed but is not on PATH or in ~/.cargo/bin")
}

/// Finds a Viceroy of the pinned version: `$VICEROY`, then PATH, then `~/.cargo/bin`.
pub fn find_viceroy() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(explicit) = std::env::var_os("VICEROY") {
        candidates.push(PathBuf::from(explicit));
    }
    candidates.push(PathBuf::from("viceroy"));
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(home).join("bin/viceroy"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/viceroy"));
    }
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(VICEROY_VERSION))
            .unwrap_or(false)
    })
}

/// Runs a command inheriting stdio; fails with the command line when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
