//! The front end (`web/`, an Astro site): built with npm from its committed lockfile when
//! its sources changed, and shipped as a release. `cargo xtask serve`, `release`, `test`
//! and the browser test all call [`ensure_built`], so a stale `web/dist` is never served.
//!
//! Staleness is a SHA-256 over every source file (`package.json`, the lockfile, the
//! configs, `src/`, `public/`, `scripts/`), kept beside the build in `target/web.stamp`:
//! not in `dist/`, which is published as is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use fastgate::release::sha256_hex;

use crate::tools::run;

/// Files and directories of `web/` whose content decides the build.
const SOURCES: [&str; 7] = [
    "package.json",
    "package-lock.json",
    "astro.config.mjs",
    "tsconfig.json",
    "src",
    "public",
    "scripts",
];

/// `web/dist`, built if its sources changed since the last build (or it is missing).
/// Returns the directory and the sources' hash (the name of its auto-published release).
pub fn ensure_built(root: &Path) -> Result<(PathBuf, String)> {
    let web = root.join("web");
    let dist = web.join("dist");
    let hash = sources_hash(&web)?;
    let stamp = crate::build::target_dir(root).join("web.stamp");
    let built = std::fs::read_to_string(&stamp).ok();
    if built.as_deref() == Some(hash.as_str()) && dist.join("index.html").is_file() {
        return Ok((dist, hash));
    }
    npm(&web, &["ci", "--no-audit", "--no-fund"])?;
    npm(&web, &["run", "build"])?;
    if !dist.join("index.html").is_file() {
        bail!("{}: the build wrote no index.html", dist.display());
    }
    if let Some(dir) = stamp.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&stamp, &hash)?;
    Ok((dist, hash))
}

fn npm(web: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("npm");
    cmd.current_dir(web).args(args);
    run(&mut cmd).with_context(|| {
        format!(
            "npm {} in {} (Node 20 and npm)",
            args.join(" "),
            web.display()
        )
    })
}

/// SHA-256 over the sources' relative paths and contents, in sorted order.
fn sources_hash(web: &Path) -> Result<String> {
    let mut files = Vec::new();
    for source in SOURCES {
        collect(&web.join(source), &mut files)?;
    }
    files.sort();
    let mut all = Vec::new();
    for file in files {
        let rel = file.strip_prefix(web).unwrap_or(&file);
        all.extend_from_slice(rel.to_string_lossy().as_bytes());
        all.push(0);
        all.extend(std::fs::read(&file).with_context(|| format!("{}", file.display()))?);
        all.push(0);
    }
    Ok(sha256_hex(&all))
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
    } else if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), out)?;
        }
    }
    Ok(())
}

/// The auto-published release's name for a build: `web-<12 hex of its sources' hash>`.
pub fn release_name(hash: &str) -> String {
    format!("web-{}", &hash[..12.min(hash.len())])
}

/// The most JavaScript the whole site may ship, gzip -9, in bytes (issue #19: 50 KB).
pub const JS_BUDGET_GZIP: u64 = 50_000;

/// Every `.js` file under `dist`, each gzip -9 compressed: the bytes a first visit that
/// loads every page costs. An error when over [`JS_BUDGET_GZIP`].
pub fn check_js_budget(dist: &Path) -> Result<u64> {
    let mut files = Vec::new();
    collect(dist, &mut files)?;
    let mut total = 0u64;
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "js"))
    {
        let bytes = std::fs::read(file)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &bytes)?;
        total += gz.finish()?.len() as u64;
    }
    if total > JS_BUDGET_GZIP {
        bail!("the front end ships {total} bytes of JavaScript (gzip), over the budget of {JS_BUDGET_GZIP}");
    }
    Ok(total)
}

/// Builds the front end if stale and makes it the local store's active release, unless ops
/// activated a release of their own (one not named `web-…`), which is kept. What `serve`
/// does before it starts, so the browser gets the current pages.
pub fn ship_locally(root: &Path) -> Result<String> {
    use crate::release::{self, Target};
    let (dist, hash) = ensure_built(root)?;
    check_js_budget(&dist)?;
    let name = release_name(&hash);
    let target = Target::local_only(&root.join(release::LOCAL_DIR));
    let releases = release::list(&target)?;
    if let Some(active) = releases.iter().find(|r| r.active) {
        if active.name == name || !active.name.starts_with("web-") {
            return Ok(active.name.clone());
        }
    }
    if !releases.iter().any(|r| r.name == name) {
        release::publish(&target, &name, None, Some(&dist))?;
    }
    release::activate(&target, &name)?;
    Ok(name)
}
