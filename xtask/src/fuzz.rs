//! `cargo xtask fuzz [--seconds N] [TARGET...]`: the long fuzz runs.
//!
//! Each target is a property-based fuzz test (proptest on stable; cargo-fuzz would need a
//! nightly toolchain) that also runs with a short fixed budget in every `cargo test`. Here
//! each runs for N seconds of wall time, in release mode, one at a time (so the figures
//! are per target, and the timing-based `json-linear` has the machine to itself): the
//! ignored `fuzz_*` tests of `tests/fuzz.rs` (the edge library) and of
//! `backends/api/tests/fuzz_json.rs` (the origin), with the budget in
//! `FASTGATE_FUZZ_SECONDS`. Each prints one `fuzz-result` line, collected here into a
//! table; a failing target prints its minimal input (and the seed that replays it:
//! `FASTGATE_FUZZ_SEED`), and the command exits non-zero.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

pub const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [TARGET...]

  --seconds N   wall time per target (default 60); targets run one after another
  TARGET        any of: path token config cache-control http-date release json json-linear
                signature
                (default: all)

  A failure prints the minimal input and the seed; replay with
  FASTGATE_FUZZ_SEED=<seed> cargo xtask fuzz --seconds N TARGET";

const DEFAULT_SECONDS: u64 = 60;

/// A fuzz target: its name on the command line, and where its test lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    pub package: &'static str,
    pub test: &'static str,
}

impl Target {
    /// The ignored test that runs it against the clock.
    pub fn test_fn(&self) -> String {
        format!("fuzz_{}", self.name.replace('-', "_"))
    }
}

const fn edge(name: &'static str) -> Target {
    Target {
        name,
        package: "fastgate",
        test: "fuzz",
    }
}

const fn origin(name: &'static str) -> Target {
    Target {
        name,
        package: "fastgate-api",
        test: "fuzz_json",
    }
}

pub const TARGETS: [Target; 9] = [
    edge("path"),
    edge("token"),
    edge("config"),
    edge("cache-control"),
    edge("http-date"),
    edge("release"),
    origin("json"),
    origin("json-linear"),
    origin("signature"),
];

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub seconds: u64,
    pub targets: Vec<Target>,
}

pub fn parse_args(args: &[String]) -> Result<Request> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let n = args.next().context("--seconds needs a value")?;
                seconds = n
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("--seconds {n}: not a positive integer"))?;
            }
            "-h" | "--help" => bail!("{USAGE}"),
            name => {
                let target = TARGETS
                    .iter()
                    .find(|t| t.name == name)
                    .with_context(|| format!("unknown target `{name}`\n{USAGE}"))?;
                if !targets.contains(target) {
                    targets.push(*target);
                }
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok(Request { seconds, targets })
}

/// One target's figures, from its `fuzz-result` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub target: String,
    pub cases: u64,
    pub secs: f64,
    pub failures: u64,
    pub seed: String,
}

/// Reads `fuzz-result target=path cases=10 secs=1.00 rate=10/s failures=0 seed=0x1`,
/// wherever it starts in the line (libtest may have written `test name ... ` before it).
pub fn parse_result_line(line: &str) -> Option<Outcome> {
    let at = line.find("fuzz-result ")?;
    let fields = &line[at + "fuzz-result ".len()..];
    let field = |key: &str| {
        fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
    };
    Some(Outcome {
        target: field("target")?.to_owned(),
        cases: field("cases")?.parse().ok()?,
        secs: field("secs")?.parse().ok()?,
        failures: field("failures")?.parse().ok()?,
        seed: field("seed")?.to_owned(),
    })
}

/// `cargo xtask fuzz ...`
pub fn run(args: &[String]) -> Result<()> {
    let request = parse_args(args)?;
    let root = crate::workspace_root();
    let mut outcomes = Vec::new();
    let mut failed_runs = Vec::new();
    for (package, test) in [("fastgate", "fuzz"), ("fastgate-api", "fuzz_json")] {
        let chosen: Vec<Target> = request
            .targets
            .iter()
            .filter(|t| t.package == package)
            .copied()
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let (ok, mut found) = run_tests(&root, package, test, &chosen, request.seconds)?;
        if !ok {
            failed_runs.push(format!("{package} --test {test}"));
        }
        outcomes.append(&mut found);
    }
    println!("\n{}", table(&request.targets, &outcomes, request.seconds));
    let failed: Vec<&str> = request
        .targets
        .iter()
        .filter(|t| {
            !outcomes
                .iter()
                .any(|o| o.target == t.name && o.failures == 0)
        })
        .map(|t| t.name)
        .collect();
    if !failed.is_empty() || !failed_runs.is_empty() {
        bail!(
            "fuzz: failed or did not finish: {} (in {}; minimal inputs are printed above)",
            failed.join(", "),
            failed_runs.join(", ")
        );
    }
    println!("xtask: every fuzz target ran clean");
    Ok(())
}

/// Runs the chosen targets of one test binary in release mode, echoing its output, and
/// returns whether it passed and the result lines it printed.
fn run_tests(
    root: &Path,
    package: &str,
    test: &str,
    targets: &[Target],
    seconds: u64,
) -> Result<(bool, Vec<Outcome>)> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(["test", "--release", "--package", package, "--test", test])
        .args([
            "--",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "--exact",
        ])
        .args(targets.iter().map(Target::test_fn))
        .env("FASTGATE_FUZZ_SECONDS", seconds.to_string())
        .stdout(Stdio::piped());
    eprintln!("xtask: {cmd:?}");
    let mut child = cmd.spawn().context("could not start cargo")?;
    let stdout = child.stdout.take().context("no stdout from cargo")?;
    let mut outcomes = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the test output")?;
        println!("{line}");
        outcomes.extend(parse_result_line(&line));
    }
    let status = child.wait().context("waiting for cargo")?;
    Ok((status.success(), outcomes))
}

/// The summary: per target, cases run, cases per second and failures.
pub fn table(targets: &[Target], outcomes: &[Outcome], seconds: u64) -> String {
    let mut out = format!(
        "fuzz, {seconds} s per target (release):\n{:<14} {:>12} {:>10} {:>9} {:>9}  seed\n",
        "target", "cases", "cases/s", "seconds", "failures"
    );
    for t in targets {
        match outcomes.iter().find(|o| o.target == t.name) {
            Some(o) => out.push_str(&format!(
                "{:<14} {:>12} {:>10.0} {:>9.1} {:>9}  {}\n",
                o.target,
                o.cases,
                o.cases as f64 / o.secs.max(1e-9),
                o.secs,
                o.failures,
                o.seed
            )),
            None => out.push_str(&format!("{:<14} {:>12}\n", t.name, "no result")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_choose_the_budget_and_targets() {
        let all = parse_args(&[]).unwrap();
        assert_eq!(all.seconds, DEFAULT_SECONDS);
        assert_eq!(all.targets, TARGETS);
        let some = parse_args(&args(&["--seconds", "20", "json", "path", "json"])).unwrap();
        assert_eq!(some.seconds, 20);
        let names: Vec<&str> = some.targets.iter().map(|t| t.name).collect();
        assert_eq!(names, ["json", "path"]);
        assert_eq!(some.targets[0].test_fn(), "fuzz_json");
        assert_eq!(edge("cache-control").test_fn(), "fuzz_cache_control");
        for bad in [&["--seconds"][..], &["--seconds", "0"], &["nope"]] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn result_lines_are_read_and_tabulated() {
        let line = "fuzz-result target=http-date cases=2000 secs=0.50 rate=4000/s failures=0 \
                    seed=0xfa5";
        let o = parse_result_line(line).unwrap();
        assert_eq!(
            (o.target.as_str(), o.cases, o.failures),
            ("http-date", 2000, 0)
        );
        assert_eq!(o.seed, "0xfa5");
        assert_eq!(parse_result_line("test fuzz_path ... ok"), None);
        let after_name = format!("test fuzz_http_date ... {line}");
        assert_eq!(parse_result_line(&after_name), Some(o.clone()));
        let t = table(&[edge("http-date"), edge("path")], &[o], 1);
        assert!(t.contains("http-date") && t.contains("4000"), "{t}");
        assert!(t.contains("path") && t.contains("no result"), "{t}");
    }
}
