//! `list` and `gc`: what the store holds, and deleting what no release needs.

use std::path::Path;

use anyhow::{bail, Result};
use fastgate::release::{release_key, Manifest};

use super::kv::{self, Kv};
use super::pointer::active_of;
use super::{gc as plan, open, Dest, GcReport, ReleaseInfo};

/// `cargo xtask release list`: every published release, oldest first.
pub fn list<'a>(from: impl Into<Dest<'a>>) -> Result<Vec<ReleaseInfo>> {
    let mut stores = open(from.into())?;
    infos(stores.primary())
}

pub(super) fn infos(kv: &mut dyn Kv) -> Result<Vec<ReleaseInfo>> {
    let active = active_of(kv)?;
    let mut out: Vec<ReleaseInfo> = manifests(kv, false)?
        .into_iter()
        .map(|m| ReleaseInfo {
            active: active.as_deref() == Some(m.name.as_str()),
            files: m.files.len(),
            bytes: m.files.values().map(|f| f.size).sum(),
            name: m.name,
            created: m.created,
            config: m.config,
        })
        .collect();
    out.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    Ok(out)
}

/// Every manifest in `kv`. An unreadable one is skipped with a warning, or (`strict`,
/// for gc, which must know everything still referenced) an error.
fn manifests(kv: &mut dyn Kv, strict: bool) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for key in kv.list("releases/")? {
        let Some(bytes) = kv.get(&key)? else {
            continue;
        };
        match Manifest::parse(&bytes) {
            Ok(m) => out.push(m),
            Err(e) if strict => bail!(
                "{}: `{key}` is invalid ({e}): delete it first",
                kv.describe()
            ),
            Err(e) => eprintln!("xtask: {}: skipping `{key}`: {e}", kv.describe()),
        }
    }
    Ok(out)
}

/// `cargo xtask release gc [--keep N]`: with `keep`, deletes the manifests of all but the
/// `keep` newest releases (never the active one); then every value no remaining manifest
/// refers to (see [`mod@super::gc`]), in each store by its own manifests.
pub fn gc<'a>(on: impl Into<Dest<'a>>, keep: Option<usize>) -> Result<GcReport> {
    let on = on.into();
    let mut stores = open(on)?;
    let all = manifests(stores.primary(), true)?;
    let active = active_of(stores.primary())?;
    let pairs: Vec<(String, u64)> = all.iter().map(|m| (m.name.clone(), m.created)).collect();
    let drop = plan::releases_to_drop(&pairs, active.as_deref(), keep);
    let mut reports = Vec::new();
    for kv in stores.0.iter_mut() {
        reports.push(gc_one(kv.as_mut(), &drop)?);
    }
    let remaining: Vec<String> = manifests(stores.primary(), false)?
        .into_iter()
        .map(|m| m.name)
        .collect();
    if !on.is_production() {
        prune_batches(&on.staging(), &remaining);
    }
    Ok(reports.into_iter().next().unwrap_or_default())
}

fn gc_one(kv: &mut dyn Kv, drop: &[String]) -> Result<GcReport> {
    let active = active_of(kv)?;
    let present = kv.list("releases/")?;
    let mut report = GcReport::default();
    for name in drop {
        let key = release_key(name);
        if active.as_deref() != Some(name.as_str()) && present.contains(&key) {
            kv.delete(&key)?;
            println!("xtask: {}: deleted {key}", kv.describe());
            report.releases.push(name.clone());
        }
    }
    let referenced = plan::referenced(&manifests(kv, true)?);
    for key in plan::unreferenced(&kv::stored_content(kv)?, &referenced) {
        kv.delete(&key)?;
        println!("xtask: {}: deleted {key}", kv.describe());
        report.keys.push(key);
    }
    println!(
        "xtask: {}: gc deleted {} releases and {} unreferenced values",
        kv.describe(),
        report.releases.len(),
        report.keys.len()
    );
    Ok(report)
}

/// Removes staged batch directories of releases that no longer exist.
fn prune_batches(staging: &Path, remaining: &[String]) {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !remaining.contains(&name) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
