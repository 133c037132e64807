//! `cargo xtask bench`: every benchmark, side by side, into `target/bench/report.md`:
//! the origin against the reference, the edge's overhead through Viceroy, the library's
//! per-phase cost, and the Wasm's size with its largest contributors. Each figure is a
//! median of repeated runs, and each comparison is measured within the same run.

use std::fmt::{self, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use super::{edge, origin, phases, procs, profile, wasm};
use crate::build;

/// Library work per request on an authenticated cached read, natively (µs).
const LIBRARY_TARGET_US: f64 = 20.0;
const ES256_TARGET_US: f64 = 150.0;
const WASM_GZIP_TARGET: u64 = 500_000;

/// Every section, measured in turn.
struct Sections {
    phases: Vec<phases::Phase>,
    origin: String,
    edge: String,
    wasm_path: std::path::PathBuf,
    size: wasm::Size,
}

pub fn all() -> Result<()> {
    let started = Instant::now();
    let root = crate::workspace_root();
    let stop = procs::stop_flag()?;

    println!("xtask bench: 1/4 per-phase cost (cargo bench --bench edge)");
    let phases = phases::run()?;

    println!("xtask bench: 2/4 origin vs reference");
    let origin_md = root.join("target/bench/origin.md");
    origin::run(&[
        "--duration".into(),
        "5".into(),
        "--warmup".into(),
        "1".into(),
        "--out".into(),
        origin_md.display().to_string(),
    ])?;
    let origin = std::fs::read_to_string(&origin_md)?;

    println!("xtask bench: 3/4 edge overhead through Viceroy");
    let edge = edge::run(&stop)?;

    println!("xtask bench: 4/4 Wasm size");
    let wasm_path = build::edge_wasm(&root, &build::target_dir(&root))?;
    let size = wasm::measure(&root, &wasm_path)?;

    let sections = Sections {
        phases,
        origin,
        edge,
        wasm_path,
        size,
    };
    let mut md = String::new();
    write_report(&mut md, &root, &sections, started).expect("writing to a String cannot fail");
    let out = root.join("target/bench/report.md");
    std::fs::write(&out, &md)?;
    println!("{md}");
    println!("xtask bench: report written to {}", out.display());
    Ok(())
}

fn write_report(md: &mut String, root: &Path, s: &Sections, started: Instant) -> fmt::Result {
    writeln!(md, "# fastgate benchmark report\n")?;
    writeln!(
        md,
        "Written by `cargo xtask bench` in {}m{:02}s on {} cores.\n",
        started.elapsed().as_secs() / 60,
        started.elapsed().as_secs() % 60,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;
    writeln!(md, "## 1. Origin vs the FastAPI reference\n")?;
    write!(
        md,
        "{}",
        s.origin.trim_start_matches(|c| c != '\n').trim_start()
    )?;
    writeln!(
        md,
        "\n\n## 2. Edge overhead (Viceroy vs direct to the origin)\n"
    )?;
    write!(md, "{}", s.edge)?;
    writeln!(
        md,
        "\n## 3. Per-phase cost of the edge library (native, divan medians)\n"
    )?;
    phase_table(md, &s.phases)?;
    let es256_missed = s
        .phases
        .iter()
        .any(|p| p.name == "verify_token/ES256" && p.median_us > ES256_TARGET_US);
    if es256_missed {
        writeln!(md)?;
        write!(md, "{}", profile::es256(root, &s.phases, ES256_TARGET_US))?;
    }
    writeln!(md, "\n## 4. Wasm size\n")?;
    write!(
        md,
        "`{}`: **{} bytes raw, {} bytes gzip -9** (target: at most {} gzip: {}).\n\n\
         Largest items (twiggy `top`, on the same build with its name section kept):\n\n{}",
        s.wasm_path
            .strip_prefix(root)
            .unwrap_or(&s.wasm_path)
            .display(),
        s.size.raw,
        s.size.gzip,
        WASM_GZIP_TARGET,
        verdict(s.size.gzip as f64 <= WASM_GZIP_TARGET as f64),
        s.size.top
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn phase_table(md: &mut String, phases: &[phases::Phase]) -> fmt::Result {
    writeln!(md, "| phase | median | target |\n|---|---:|---|")?;
    for p in phases {
        let target = match p.name.as_str() {
            "whole_request" => format!(
                "≤ {LIBRARY_TARGET_US} µs: {}",
                verdict(p.median_us <= LIBRARY_TARGET_US)
            ),
            "verify_token/ES256" => format!(
                "≤ {ES256_TARGET_US} µs: {}",
                verdict(p.median_us <= ES256_TARGET_US)
            ),
            _ => String::new(),
        };
        writeln!(md, "| `{}` | {:.2} µs | {target} |", p.name, p.median_us)?;
    }
    writeln!(
        md,
        "\n`whole_request` is the library's whole per-request work on an authenticated cached \
         read: the instance's config for the Config Store text read this request, plan the \
         route, verify HS256, build the cache key (`route_verify_hs256_cache_key` is the same \
         without the config step). `config_*` is paid once per instance, and again when the \
         Config Store's text changes: the edge serves in reusable sandboxes and keeps the \
         compiled config between requests."
    )
}
