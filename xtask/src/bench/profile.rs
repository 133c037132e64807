//! The profile behind a missed target, as the report must show it: where a cold ES256 check
//! spends its time. Two views, both measured in the same `cargo bench` run as the target:
//! divan's split of the check into the bare `p256` verification and the rest, and, where
//! `perf` is installed, a sampled flat profile of that verification by function.

use std::fmt::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::phases::Phase;

/// The markdown section for a missed ES256 target.
pub fn es256(root: &Path, phases: &[Phase], target_us: f64) -> String {
    let median = |name: &str| phases.iter().find(|p| p.name == name).map(|p| p.median_us);
    let (Some(total), Some(crate_verify), Some(key_decode)) = (
        median("verify_token/ES256"),
        median("es256_parts/p256_verify"),
        median("es256_parts/key_decode"),
    ) else {
        return "(ES256 profile unavailable: the bench run lacks `verify_token/ES256` or \
                `es256_parts`)\n"
            .into();
    };
    let mut md = String::new();
    let split = Split {
        total,
        crate_verify,
        key_decode,
    };
    write_es256(&mut md, root, &split, target_us).expect("writing to a String cannot fail");
    md
}

/// The medians `verify_token/ES256` splits into (µs).
struct Split {
    total: f64,
    crate_verify: f64,
    key_decode: f64,
}

fn write_es256(md: &mut String, root: &Path, split: &Split, target_us: f64) -> fmt::Result {
    let Split {
        total,
        crate_verify,
        key_decode,
    } = *split;
    let rest = (total - crate_verify - key_decode).max(0.0);
    writeln!(
        md,
        "### Profile of the missed ES256 target\n\n\
         | part of `verify_token/ES256` | median | share |\n|---|---:|---:|\n\
         | `p256` ECDSA verify alone (SHA-256 + u1·G + u2·Q), key decoded beforehand | {crate_verify:.2} µs | {:.1}% |\n\
         | decoding the JWK point into a verifying key | {key_decode:.2} µs | {:.1}% |\n\
         | the rest: base64url, header and claims JSON, key lookup, claim checks | {rest:.2} µs | {:.1}% |\n\
         | **whole check** | **{total:.2} µs** | target ≤ {target_us} µs |\n",
        100.0 * crate_verify / total,
        100.0 * key_decode / total,
        100.0 * rest / total,
    )?;
    match flat_profile(root) {
        Ok(table) => writeln!(
            md,
            "Sampled with `perf record` over `cargo bench --bench edge -- es256_parts` \
             (flat, self time, top functions):\n\n```text\n{table}```\n"
        )?,
        Err(e) => writeln!(md, "(no sampled profile: {e:#})\n")?,
    }
    writeln!(
        md,
        "**What bounds it:** the `p256` crate's verification itself ({:.0}% of the check). \
         It is portable Rust field arithmetic (no assembly), and it is what `jsonwebtoken`'s \
         `rust_crypto` backend uses: the only backend that builds for `wasm32-wasip1`, so the \
         edge verifies with the code measured here. A token seen before skips the curve \
         arithmetic (`verify_token_remembered/ES256`, the edge's remembered-signature cache).",
        100.0 * crate_verify / total
    )
}

/// The top functions by self time while divan runs `es256_parts`, if `perf` can sample.
fn flat_profile(root: &Path) -> Result<String> {
    if Command::new("perf").arg("--version").output().is_err() {
        bail!("`perf` is not installed (Debian: linux-perf)");
    }
    let exe = bench_executable(root)?;
    let data = root.join("target/bench/es256.perf.data");
    let record = Command::new("perf")
        .args(["record", "--quiet", "-F", "2999", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&exe)
        .args(["--bench", "es256_parts"])
        .output()
        .context("running perf record")?;
    if !record.status.success() {
        bail!(
            "perf record failed: {}",
            String::from_utf8_lossy(&record.stderr).trim()
        );
    }
    let report = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-g", "none"])
        .args(["--sort", "symbol", "--percent-limit", "2", "-i"])
        .arg(&data)
        .output()
        .context("running perf report")?;
    let text = String::from_utf8_lossy(&report.stdout);
    let rows: String = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('%'))
        .take(15)
        // perf pads each row with empty columns (`-      -`).
        .map(|l| format!("{}\n", l.trim_end_matches([' ', '-'])))
        .collect();
    if rows.is_empty() {
        bail!("perf report printed no samples");
    }
    Ok(rows)
}

/// The compiled `edge` bench binary (built by the phase run just before).
fn bench_executable(root: &Path) -> Result<PathBuf> {
    let out = Command::new("cargo")
        .current_dir(root)
        .args([
            "bench",
            "--bench",
            "edge",
            "--no-run",
            "--message-format=json",
        ])
        .output()
        .context("cargo bench --no-run")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "edge")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo did not report the edge bench executable")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, median_us: f64) -> Phase {
        Phase {
            name: name.into(),
            median_us,
        }
    }

    #[test]
    fn splits_the_check_into_the_crate_and_the_rest() {
        let phases = [
            phase("verify_token/ES256", 275.0),
            phase("es256_parts/p256_verify", 269.5),
            phase("es256_parts/key_decode", 0.2),
        ];
        // A root without a bench binary: the sampled part says why it is missing.
        let md = es256(Path::new("/nonexistent"), &phases, 150.0);
        assert!(md.contains("| 269.50 µs | 98.0% |"), "{md}");
        assert!(md.contains("| 5.30 µs | 1.9% |"), "{md}");
        assert!(md.contains("**275.00 µs**"), "{md}");
        assert!(md.contains("(no sampled profile:"), "{md}");
        let missing = es256(Path::new("/nonexistent"), &phases[..1], 150.0);
        assert!(missing.contains("unavailable"), "{missing}");
    }
}
