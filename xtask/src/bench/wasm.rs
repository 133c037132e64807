//! The edge Wasm's size, raw and gzip, and its largest contributors (twiggy over a build
//! that keeps the name section; the shipped build strips it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

pub struct Size {
    pub raw: u64,
    pub gzip: u64,
    /// twiggy's `top` table, or why it is missing.
    pub top: String,
}

pub fn measure(root: &Path, wasm: &Path) -> Result<Size> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes)?;
    let gzip = gz.finish()?.len() as u64;
    let top = match contributors(root) {
        Ok(table) => table,
        Err(e) => format!("(largest contributors unavailable: {e:#})\n"),
    };
    Ok(Size {
        raw: bytes.len() as u64,
        gzip,
        top,
    })
}

/// Asks twiggy for the 20 largest items of the names-kept build ([`named_wasm`]),
/// installing twiggy from crates.io when missing.
fn contributors(root: &Path) -> Result<String> {
    let named = named_wasm(root)?;
    if Command::new("twiggy").arg("--version").output().is_err() {
        eprintln!("xtask bench: installing twiggy from crates.io");
        crate::tools::run(Command::new("cargo").args(["install", "twiggy", "--locked"]))?;
    }
    let out = Command::new("twiggy")
        .args(["top", "-n", "20"])
        .arg(&named)
        .output()
        .context("running twiggy")?;
    let table = format!(
        "```text\n{}```\n\nThe name section (`\"function names\" subsection`) exists only in this \
         analysis build; the shipped Wasm is stripped.\n",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(table)
}

/// The edge Wasm with its function names kept (debug info still stripped; a separate target
/// dir, same profile otherwise), for twiggy and the guest profiler.
pub fn named_wasm(root: &Path) -> Result<PathBuf> {
    let target = root.join("target/bench/wasm-names");
    crate::tools::run(
        Command::new("cargo")
            .current_dir(root)
            .args([
                "build",
                "--quiet",
                "--profile",
                "wasm",
                "--target",
                "wasm32-wasip1",
                "--bin",
                "fastgate",
                "--config",
                "profile.wasm.strip=\"debuginfo\"",
                "--target-dir",
            ])
            .arg(&target),
    )?;
    Ok(target.join("wasm32-wasip1/wasm/fastgate.wasm"))
}
