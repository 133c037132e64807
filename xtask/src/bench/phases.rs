//! Per-phase cost of the edge library, natively: runs `cargo bench --bench edge` (divan) and
//! turns its table into markdown rows with the medians.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// One divan row: the benchmark's path (`verify_token/ES256`) and its median, in µs.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub median_us: f64,
}

pub fn run() -> Result<Vec<Phase>> {
    let out = Command::new("cargo")
        .current_dir(crate::workspace_root())
        .args(["bench", "--bench", "edge"])
        .output()
        .context("running cargo bench --bench edge")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "cargo bench --bench edge failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text)
}

/// Reads divan's tree table: `├─ name  fastest │ slowest │ median │ ...`, with nested
/// argument rows under a parent that has no figures.
pub fn parse(text: &str) -> Result<Vec<Phase>> {
    let mut phases = Vec::new();
    let mut parent = String::new();
    for line in text.lines() {
        let Some(pos) = line.find("─ ") else {
            continue;
        };
        // Argument rows are indented under their parent (`│  ├─` or `   ├─`).
        let nested = line.starts_with([' ', '│']);
        let rest = &line[pos + "─ ".len()..];
        let cells: Vec<&str> = rest.split('│').map(str::trim).collect();
        let mut words = cells[0].split_whitespace();
        let Some(name) = words.next() else { continue };
        let median = cells.get(2).copied().unwrap_or_default();
        if median.is_empty() {
            parent = name.to_owned();
            continue;
        }
        let full = if nested {
            format!("{parent}/{name}")
        } else {
            name.to_owned()
        };
        phases.push(Phase {
            name: full,
            median_us: micros(median).with_context(|| format!("median of {name}: {median:?}"))?,
        });
    }
    if phases.is_empty() {
        bail!("no benchmark rows in divan's output:\n{text}");
    }
    Ok(phases)
}

/// "420.6 ns", "9.257 µs", "1.2 ms" in microseconds.
fn micros(cell: &str) -> Result<f64> {
    let (num, unit) = cell.split_once(' ').context("no unit")?;
    let n: f64 = num.parse()?;
    Ok(match unit {
        "ns" => n / 1000.0,
        "µs" | "us" => n,
        "ms" => n * 1000.0,
        "s" => n * 1e6,
        other => bail!("unknown unit {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_divans_table_with_nested_arguments() {
        let text = [
            "Timer precision: 20 ns",
            "edge                     fastest   │ slowest   │ median    │ mean      │ samples │ iters",
            "├─ cache_key             409.6 ns  │ 34.41 µs  │ 420.6 ns  │ 762.8 ns  │ 100     │ 100",
            "├─ config_parse_embedded 48.56 µs  │ 89.49 µs  │ 50.41 µs  │ 53.75 µs  │ 100     │ 100",
            "╰─ verify_token                    │           │           │           │         │",
            "   ├─ ES256              359 µs    │ 497.4 µs  │ 389.3 µs  │ 398.7 µs  │ 100     │ 100",
            "   ╰─ RS256              237.6 µs  │ 302.4 µs  │ 1.2 ms    │ 242.9 µs  │ 100     │ 100",
        ]
        .join("\n");
        let text = text.as_str();
        let phases = parse(text).unwrap();
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cache_key",
                "config_parse_embedded",
                "verify_token/ES256",
                "verify_token/RS256"
            ]
        );
        assert!((phases[0].median_us - 0.4206).abs() < 1e-9);
        assert!((phases[3].median_us - 1200.0).abs() < 1e-9);
    }
}
