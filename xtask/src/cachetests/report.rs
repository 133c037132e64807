//! The counts of one run beside the published ones, as the suite counts them
//! (`count.mjs`), rendered as a markdown table with our failures listed under it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Tests of each kind in the suite (browser-only ones left out).
#[derive(Debug, Deserialize)]
pub struct Totals {
    pub required: usize,
    pub optimal: usize,
}

/// One cache's passes.
#[derive(Debug, Deserialize)]
pub struct Counted {
    pub name: Option<String>,
    pub required: usize,
    pub optimal: usize,
    #[serde(default)]
    pub failures: Vec<String>,
    #[serde(default)]
    pub optional_failures: Vec<String>,
}

/// What `count.mjs` prints.
#[derive(Debug, Deserialize)]
pub struct Count {
    pub totals: Totals,
    pub ours: Counted,
    pub published: Vec<Counted>,
}

/// Counts `results` (the client's JSON) and every published run, from the suite's root.
pub fn count(suite: &Path, results: &Path) -> Result<Count> {
    let out = Command::new("node")
        .current_dir(suite)
        .args(["--no-warnings", "count.mjs"])
        .arg(results)
        .output()
        .context("could not run node")?;
    if !out.status.success() {
        bail!(
            "counting failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading the counts")
}

/// The table, best required count first, then our required and optional failures.
pub fn render(count: &Count) -> String {
    let mut rows: Vec<(String, usize, usize)> = count
        .published
        .iter()
        .map(|c| (c.name.clone().unwrap_or_default(), c.required, c.optimal))
        .collect();
    rows.push((
        "**fastgate (this run)**".into(),
        count.ours.required,
        count.ours.optimal,
    ));
    rows.sort_by_key(|r| std::cmp::Reverse((r.1, r.2)));
    let mut out = format!(
        "| cache | required passed (of {}) | optimal passed (of {}) |\n|---|---:|---:|\n",
        count.totals.required, count.totals.optimal
    );
    for (name, required, optimal) in rows {
        out.push_str(&format!("| {name} | {required} | {optimal} |\n"));
    }
    for (title, list) in [
        ("required tests not passed", &count.ours.failures),
        ("optimal tests not passed", &count.ours.optional_failures),
    ] {
        out.push_str(&format!("\n{} {title}:\n", list.len()));
        for line in list {
            out.push_str(&format!("- {line}\n"));
        }
    }
    out
}
