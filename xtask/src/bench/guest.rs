//! Where the edge's time goes, and what it asks of the platform, for the uncached public
//! GET (`/health`) the floor comparison leads with and for a cache hit. Two views, both
//! from Viceroy itself:
//!
//! - the guest profiler (`viceroy serve --profile=guest`), on the same Wasm with its
//!   function names kept: the share of `adapter::serve`'s samples that fall in each
//!   function, inclusive. The profiler samples only while Wasm runs (at its epoch checks),
//!   and a sample taken right after a blocking hostcall carries the whole wait in its time
//!   delta; so samples count one each, and those after a wait over [`BLOCKED_MS`] (the
//!   origin's answer, the next request) are left out: the table is where the guest's own
//!   work goes;
//! - the hostcall trace (`RUST_LOG=viceroy_lib=trace`): every hostcall the Wasm makes, by
//!   kind, per request, for fastgate and for the pass-through floor side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::http;
use crate::stack::{Stack, StackSpec};

/// Requests per hostcall count, after one that starts the instance.
const REQUESTS: usize = 60;
/// Requests profiled (the profiler takes a few samples per request).
const PROFILED: usize = 300;
/// Functions listed in the profile.
const TOP: usize = 25;
/// A sample whose time delta exceeds this followed a blocking hostcall.
const BLOCKED_MS: f64 = 1.0;

/// A request whose hostcalls are counted, on fastgate and on the floor.
pub struct Probe {
    pub label: &'static str,
    pub path: String,
    pub floor_path: String,
    pub bearer: Option<String>,
}

/// The markdown section: the profile, then the hostcall counts of each probe.
pub fn report(
    stack: &mut Stack,
    spec: &StackSpec,
    named: &Path,
    floor: &Path,
    probes: &[Probe],
) -> Result<String> {
    let mut md = String::new();
    for (i, probe) in probes.iter().enumerate() {
        let profile = profile(stack, spec, named, probe, i)?;
        writeln!(
            md,
            "### Profile: {} (guest profiler, {PROFILED} requests)\n\n{profile}",
            probe.label
        )?;
        let fastgate = hostcalls(stack, spec, &spec.wasm, &probe.path, &probe.bearer)?;
        let floor = hostcalls(stack, spec, floor, &probe.floor_path, &None)?;
        writeln!(
            md,
            "### Hostcalls per request: {}\n\n{}",
            probe.label,
            hostcall_table(&fastgate, &floor)
        )?;
    }
    Ok(md)
}

/// The guest profile of `PROFILED` requests of one probe, as a table.
fn profile(
    stack: &mut Stack,
    spec: &StackSpec,
    named: &Path,
    probe: &Probe,
    i: usize,
) -> Result<String> {
    let run_dir = std::env::temp_dir().join(format!("fastgate-guest-{}-{i}", std::process::id()));
    let profiles = run_dir.join("profiles");
    std::fs::create_dir_all(&profiles)?;
    let profile_arg = format!("--profile=guest,{},20us", profiles.display());
    let edge = stack.start_other_edge_with(spec, named, &[profile_arg], &[])?;
    drive(edge, &probe.path, probe.bearer.as_deref(), PROFILED)?;
    let profiled = stack.others_len() - 1;
    stack.stop_other_edge(profiled);
    let table = profile_table(&profiles);
    let _ = std::fs::remove_dir_all(run_dir);
    table
}

/// `n` sequential `GET`s of `path`.
fn drive(edge: SocketAddr, path: &str, bearer: Option<&str>, n: usize) -> Result<()> {
    for _ in 0..n {
        let resp = http::request(edge, "GET", path, bearer, None)?;
        if resp.status != 200 {
            bail!("GET {path} answered {}: {}", resp.status, resp.body);
        }
    }
    Ok(())
}

/// Each function's inclusive share of the samples under `adapter::serve`, the largest
/// first, as a markdown table.
fn profile_table(dir: &Path) -> Result<String> {
    let mut inclusive: BTreeMap<String, u64> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        let profile: Value = serde_json::from_str(&text)?;
        add_samples(&profile, &mut inclusive).context("reading a guest profile")?;
    }
    let serve = inclusive
        .iter()
        .find(|(name, _)| name.ends_with("adapter::serve"))
        .map_or(0, |(_, n)| *n);
    if serve == 0 {
        bail!("no sample fell under `adapter::serve` in {}", dir.display());
    }
    let mut rows: Vec<(String, u64)> = inclusive.into_iter().collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    let mut md = String::from("| function (inclusive) | share of `serve` |\n|---|---:|\n");
    for (name, n) in rows.into_iter().take(TOP) {
        writeln!(md, "| `{name}` | {:.1}% |", 100.0 * n as f64 / serve as f64)?;
    }
    writeln!(md, "\n{serve} samples under `serve`.")?;
    Ok(md)
}

/// Adds one profile's samples that fall inside `adapter::serve`, one count per distinct
/// function on the stack, to `inclusive`.
fn add_samples(profile: &Value, inclusive: &mut BTreeMap<String, u64>) -> Option<()> {
    let thread = profile["threads"].get(0)?;
    let strings = thread["stringArray"].as_array()?;
    let func_names = thread["funcTable"]["name"].as_array()?;
    let frame_funcs = thread["frameTable"]["func"].as_array()?;
    let stack_frames = thread["stackTable"]["frame"].as_array()?;
    let stack_prefix = thread["stackTable"]["prefix"].as_array()?;
    let samples = &thread["samples"];
    let stacks = samples["stack"].as_array()?;
    let deltas = samples["timeDeltas"].as_array()?;
    for (stack, delta) in stacks.iter().zip(deltas) {
        if delta.as_f64().unwrap_or(0.0) > BLOCKED_MS {
            continue;
        }
        // From the leaf up to `serve`; a sample with no `serve` frame is not the request's.
        let mut names = Vec::new();
        let mut in_serve = false;
        let mut at = stack.as_u64();
        while let Some(s) = at.map(|s| s as usize) {
            let func = frame_funcs
                .get(stack_frames.get(s)?.as_u64()? as usize)?
                .as_u64()?;
            let name = strings
                .get(func_names.get(func as usize)?.as_u64()? as usize)?
                .as_str()?;
            let name = without_hash(name);
            in_serve = name.ends_with("adapter::serve");
            names.push(name);
            if in_serve {
                break;
            }
            at = stack_prefix.get(s)?.as_u64();
        }
        if !in_serve {
            continue;
        }
        names.sort();
        names.dedup();
        for name in names {
            *inclusive.entry(name).or_default() += 1;
        }
    }
    Some(())
}

/// `fastgate::adapter::serve::h0123456789abcdef` as `fastgate::adapter::serve`.
fn without_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            path.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// Hostcalls per request by `module::function`, from Viceroy's trace of `REQUESTS`
/// requests after one that starts the instance.
fn hostcalls(
    stack: &mut Stack,
    spec: &StackSpec,
    wasm: &Path,
    path: &str,
    bearer: &Option<String>,
) -> Result<BTreeMap<String, f64>> {
    let args = ["-vvv".to_owned()];
    let edge =
        stack.start_other_edge_with(spec, wasm, &args, &[("RUST_LOG", "viceroy_lib=trace")])?;
    drive(edge, path, bearer.as_deref(), 1)?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let n = stack.others_len() - 1;
    let log = stack
        .other_edge_log(n)
        .context("the traced Viceroy has no log")?;
    let skip = std::fs::read_to_string(&log)?.lines().count();
    drive(edge, path, bearer.as_deref(), REQUESTS)?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    stack.stop_other_edge(n);
    let text = std::fs::read_to_string(&log)?;
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines().skip(skip) {
        if let Some(kind) = hostcall_of(line) {
            *counts.entry(kind).or_default() += 1.0 / REQUESTS as f64;
        }
    }
    Ok(counts)
}

/// `module::function` of a trace line reporting a hostcall's result.
fn hostcall_of(line: &str) -> Option<String> {
    let rest = line.split_once("wiggle abi{module=\"")?.1;
    let (module, rest) = rest.split_once('"')?;
    let function = rest.split_once("function=\"")?.1.split_once('"')?.0;
    line.contains(": result=")
        .then(|| format!("{module}::{function}"))
}

fn hostcall_table(fastgate: &BTreeMap<String, f64>, floor: &BTreeMap<String, f64>) -> String {
    let mut kinds: Vec<&String> = fastgate.keys().chain(floor.keys()).collect();
    kinds.sort();
    kinds.dedup();
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    kinds.sort_by(|a, b| get(fastgate, b).total_cmp(&get(fastgate, a)));
    let mut md = String::from("| hostcall | fastgate | floor |\n|---|---:|---:|\n");
    for kind in kinds {
        let _ = writeln!(
            md,
            "| `{kind}` | {:.1} | {:.1} |",
            get(fastgate, kind),
            get(floor, kind)
        );
    }
    let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
    let _ = writeln!(
        md,
        "| **all** | **{:.1}** | **{:.1}** |",
        total(fastgate),
        total(floor)
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_hostcall_line_and_a_demangled_name() {
        let line = r#"2026-11-28T15:23:12.244009Z TRACE request{id=0}:wiggle abi{module="fastly_config_store" function="open"}: result=Ok(ConfigStoreHandle(0))"#;
        assert_eq!(
            hostcall_of(line).as_deref(),
            Some("fastly_config_store::open")
        );
        let call = r#"TRACE request{id=0}:wiggle abi{module="fastly_config_store" function="open"}: name=*guest 0x105eff/15"#;
        assert_eq!(hostcall_of(call), None);
        assert_eq!(
            without_hash("fastgate::adapter::serve::h1ee4cef99618cbe6"),
            "fastgate::adapter::serve"
        );
        assert_eq!(without_hash("<T as X>::hello"), "<T as X>::hello");
    }
}
