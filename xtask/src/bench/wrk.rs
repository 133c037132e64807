//! wrk, the load generator every benchmark drives: installing it, the script for the one
//! POST the benchmarks send, running it and reading its `--latency` report.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The body of the `POST /api/process` every benchmark sends.
pub const PROCESS_BODY: &str = r#"{"id":"bench","payload":{"k":1}}"#;

/// `wrk` on PATH, installing Debian's package when it is missing.
pub fn ensure() -> Result<PathBuf> {
    let wrk = PathBuf::from("wrk");
    if Command::new(&wrk).arg("-v").output().is_ok() {
        return Ok(wrk);
    }
    eprintln!("xtask bench: installing wrk with apt-get");
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    crate::tools::run(&mut apt(&["update"]))?;
    crate::tools::run(&mut apt(&["install", "-y", "wrk"]))?;
    Command::new(&wrk)
        .arg("-v")
        .output()
        .context("wrk was installed but is not on PATH")?;
    Ok(wrk)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Writes wrk's Lua hook for `POST /api/process` to `dir/process.lua` and returns its
/// path; the bearer token comes from `-H`.
pub fn process_script(dir: &Path) -> Result<PathBuf> {
    let script = dir.join("process.lua");
    std::fs::write(&script, process_lua())?;
    Ok(script)
}

fn process_lua() -> String {
    format!(
        "-- written by `cargo xtask bench origin`\n\
         wrk.method = \"POST\"\n\
         wrk.body = '{PROCESS_BODY}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n"
    )
}

/// The load shape, the same for both servers.
#[derive(Debug, Clone)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests: u64,
    /// Responses outside 2xx/3xx.
    pub non_2xx: u64,
    /// connect + read + write + timeout socket errors.
    pub socket_errors: u64,
    /// CPU seconds the server's process tree spent during the run (set by the caller).
    pub server_cpu_s: f64,
    /// The part of `server_cpu_s` spent in the kernel (set by the caller).
    pub server_kernel_s: f64,
    /// CPU seconds wrk itself spent, on the same cores (set by the caller).
    pub loadgen_cpu_s: f64,
}

impl Sample {
    /// Server CPU microseconds per completed request.
    pub fn cpu_us_per_req(&self) -> f64 {
        self.per_request(self.server_cpu_s)
    }

    /// Server kernel-time microseconds per completed request.
    pub fn kernel_us_per_req(&self) -> f64 {
        self.per_request(self.server_kernel_s)
    }

    /// wrk's own CPU microseconds per completed request.
    pub fn loadgen_us_per_req(&self) -> f64 {
        self.per_request(self.loadgen_cpu_s)
    }

    fn per_request(&self, seconds: f64) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            seconds * 1e6 / self.requests as f64
        }
    }
}

/// One wrk run against `url`; `script` (Lua) sets method and body where needed.
pub fn run(
    wrk: &Path,
    load: &Load,
    seconds: u64,
    url: &str,
    headers: &[String],
    script: Option<&PathBuf>,
    stop: &AtomicBool,
) -> Result<Sample> {
    let mut cmd = Command::new(wrk);
    cmd.arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{seconds}s"))
        // Slow responses count in the latency figures instead of being dropped as timeouts.
        .args(["--timeout", "10s", "--latency"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {cmd:?}"))?;
    // wrk prints only a short report at the end, far below the pipe's capacity.
    let status = loop {
        if stop.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("interrupted");
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)?;
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err)?;
    }
    if !status.success() {
        bail!("{cmd:?} failed with {status}\n{out}{err}");
    }
    parse(&out).with_context(|| format!("reading wrk output:\n{out}{err}"))
}

/// Parses wrk's report (run with `--latency`).
pub fn parse(out: &str) -> Result<Sample> {
    let mut s = Sample::default();
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = Some(v.trim().parse::<f64>()?);
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = Some(duration_us(v.trim())?);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(duration_us(v.trim())?);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            s.non_2xx = v.trim().parse()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            s.socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if line.contains(" requests in ") {
            s.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    s.rps = rps.context("no Requests/sec line")?;
    s.p50_us = p50.context("no 50% latency line (was --latency passed?)")?;
    s.p99_us = p99.context("no 99% latency line")?;
    Ok(s)
}

/// wrk's time format ("635.91us", "1.20ms", "2.00s", "1.00m", "1.00h") in microseconds.
fn duration_us(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {text:?}"))?;
    let (num, unit) = text.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad number in {text:?}"))?;
    let scale = match unit.trim() {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        other => bail!("unknown unit {other:?} in {text:?}"),
    };
    Ok(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/health
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us    0.89ms  12.92ms   93.69%
    Req/Sec    56.20k     8.07k   62.00k    86.54%
  Latency Distribution
     50%  250.00us
     75%  491.00us
     90%  700.00us
     99%    5.20ms
  2235584 requests in 10.10s, 170.57MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec: 221343.63
Transfer/sec:     16.89MB
";

    #[test]
    fn parses_latency_report() {
        let s = parse(REPORT).unwrap();
        assert_eq!(s.rps, 221343.63);
        assert_eq!(s.p50_us, 250.0);
        assert_eq!(s.p99_us, 5200.0);
        assert_eq!(s.requests, 2235584);
        assert_eq!(s.non_2xx, 12);
        assert_eq!(s.socket_errors, 5);
    }

    #[test]
    fn clean_report_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("Socket errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        let s = parse(&clean).unwrap();
        assert_eq!((s.non_2xx, s.socket_errors), (0, 0));
    }

    #[test]
    fn units() {
        assert_eq!(duration_us("1.50s").unwrap(), 1.5e6);
        assert_eq!(duration_us("2.00m").unwrap(), 120e6);
        assert!(duration_us("12").is_err());
        assert!(parse("nothing").is_err());
    }
}
