//! `cargo xtask bench origin`: the Rust origin (`fastgate-api`) against the Python/FastAPI
//! reference it ports, on this machine, under the same load.
//!
//! - Installs what is missing: the reference's packages into `target/refvenv`, and wrk
//!   (Debian's `apt-get install wrk`).
//! - Builds the release origin and starts both servers side by side on free loopback
//!   ports, each with a fresh data directory / SQLite file: the reference in its best setup
//!   (`uvicorn --workers <cores>`, uvloop + httptools, no access log), the Rust origin with
//!   as many worker threads (one single-threaded runtime each) as cores and `RUST_LOG=warn`.
//! - Seeds one user on each (sign-up, login), then drives `GET /health`,
//!   `GET /api/user/profile`, `GET /api/user/{id}` and `POST /api/process` with wrk at the
//!   same concurrency, alternating the servers, N times each, and takes the medians.
//! - Prints a markdown table (req/s, p50/p99, peak RSS of each server's process tree) and
//!   writes it to `target/bench/origin.md`, each row marked against the target: at least
//!   10x the reference's req/s with a lower p99. A missed target is reported, not an error.
//!
//! Every server runs in its own process group and is killed with its workers when the
//! benchmark ends, fails or is interrupted with Ctrl-C.
//!
//! [`setup`] gets both servers running and seeded, [`run`] drives the load, [`render`]
//! writes the report; every figure travels as a [`Pair`] of the two servers' values.

mod render;
mod run;
mod setup;

use std::ops::{Index, IndexMut};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::procs::{self, RssSampler, Server};
use super::wrk::PROCESS_BODY;
use super::USAGE;

/// The target the issue sets for every endpoint.
const TARGET_RATIO: f64 = 10.0;

/// `cargo xtask bench origin [options]`: measures both servers and writes the report.
pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let stop = procs::stop_flag()?;
    let tools = setup::prepare(&opts, &stop)?;
    let mut servers = setup::start_servers(&tools, opts.workers, &stop)?;
    let sampler = RssSampler::start(servers.pair.as_ref().map(Server::pid).into_iter().collect());
    let seeded = setup::seed(&servers.pair)?;
    let env = setup::environment(&tools.python, &tools.wrk, &opts);

    run::announce(&opts);
    let started = Instant::now();
    let rows = run::Bench {
        opts: &opts,
        tools: &tools,
        servers: &mut servers.pair,
        seeded: &seeded,
        stop: &stop,
    }
    .measure(&sampler)?;
    let overall = per_server(&sampler.overall());
    let process_counts = per_server(&sampler.procs());
    drop(sampler);
    drop(servers);

    let report = render::render(&env, &rows, overall, process_counts, started.elapsed());
    println!();
    println!("{report}");
    let out_file = &tools.out_file;
    if let Some(dir) = out_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out_file, &report).with_context(|| format!("writing {}", out_file.display()))?;
    println!("xtask bench: report written to {}", out_file.display());
    Ok(())
}

/// The sampler's per-process-tree figures, in the order its roots were given.
fn per_server<T: Copy>(figures: &[T]) -> Pair<T> {
    Pair {
        reference: figures[0],
        rust: figures[1],
    }
}

/// One value for each server: the reference and the Rust origin always travel together,
/// so no figure can be read from the wrong side.
#[derive(Debug, Clone, Default)]
struct Pair<T> {
    reference: T,
    rust: T,
}

/// Which server of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Reference,
    Rust,
}

impl Side {
    /// Both servers, in the order every run and every table takes them.
    const BOTH: [Side; 2] = [Side::Reference, Side::Rust];

    fn name(self) -> &'static str {
        match self {
            Side::Reference => "reference",
            Side::Rust => "rust",
        }
    }
}

impl<T> Pair<T> {
    fn map<U>(self, mut f: impl FnMut(T) -> U) -> Pair<U> {
        Pair {
            reference: f(self.reference),
            rust: f(self.rust),
        }
    }

    fn as_ref(&self) -> Pair<&T> {
        Pair {
            reference: &self.reference,
            rust: &self.rust,
        }
    }

    fn as_mut(&mut self) -> Pair<&mut T> {
        Pair {
            reference: &mut self.reference,
            rust: &mut self.rust,
        }
    }

    /// Each side with its value, reference first.
    fn iter(&self) -> impl Iterator<Item = (Side, &T)> {
        Side::BOTH.into_iter().map(move |side| (side, &self[side]))
    }
}

impl<T> Index<Side> for Pair<T> {
    type Output = T;
    fn index(&self, side: Side) -> &T {
        match side {
            Side::Reference => &self.reference,
            Side::Rust => &self.rust,
        }
    }
}

impl<T> IndexMut<Side> for Pair<T> {
    fn index_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Reference => &mut self.reference,
            Side::Rust => &mut self.rust,
        }
    }
}

impl<T> IntoIterator for Pair<T> {
    type Item = T;
    type IntoIter = std::array::IntoIter<T, 2>;
    fn into_iter(self) -> Self::IntoIter {
        [self.reference, self.rust].into_iter()
    }
}

#[derive(Debug, Clone)]
struct Options {
    duration: u64,
    warmup: u64,
    repeats: usize,
    connections: u32,
    threads: u32,
    workers: usize,
    reference_dir: Option<PathBuf>,
    out: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut o = Options {
            duration: 10,
            warmup: 2,
            repeats: 3,
            connections: 64,
            threads: 2,
            workers: cores,
            reference_dir: None,
            out: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            if matches!(flag, "-h" | "--help") {
                bail!("{USAGE}");
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value\n{USAGE}"))?,
            };
            o.set(arg, flag, value)?;
        }
        if o.duration == 0 || o.repeats == 0 || o.workers == 0 || o.threads == 0 {
            bail!("--duration, --repeats, --workers and --threads must be at least 1");
        }
        if o.connections < o.threads {
            bail!("--connections must be at least --threads (wrk needs a connection per thread)");
        }
        Ok(o)
    }

    /// Applies one `flag value` (`arg` as typed, for the error).
    fn set(&mut self, arg: &str, flag: &str, value: String) -> Result<()> {
        let bad = || format!("bad value {value:?} for {flag}");
        match flag {
            "--duration" => self.duration = seconds(&value).with_context(bad)?,
            "--warmup" => self.warmup = seconds(&value).with_context(bad)?,
            "--repeats" => self.repeats = value.parse().with_context(bad)?,
            "--connections" => self.connections = value.parse().with_context(bad)?,
            "--threads" => self.threads = value.parse().with_context(bad)?,
            "--workers" => self.workers = value.parse().with_context(bad)?,
            "--reference-dir" => self.reference_dir = Some(PathBuf::from(value)),
            "--out" => self.out = Some(PathBuf::from(value)),
            _ => bail!("unknown option {arg}\n{USAGE}"),
        }
        Ok(())
    }
}

/// "10" or "10s".
fn seconds(text: &str) -> Result<u64> {
    Ok(text.strip_suffix('s').unwrap_or(text).parse()?)
}

/// One benchmarked endpoint; `{id}` in `path` is the seeded user's id.
struct Endpoint {
    label: &'static str,
    method: &'static str,
    path: &'static str,
    auth: bool,
    body: Option<&'static str>,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        label: "GET /health",
        method: "GET",
        path: "/health",
        auth: false,
        body: None,
    },
    Endpoint {
        label: "GET /api/user/profile",
        method: "GET",
        path: "/api/user/profile",
        auth: true,
        body: None,
    },
    Endpoint {
        label: "GET /api/user/{id}",
        method: "GET",
        path: "/api/user/{id}",
        auth: true,
        body: None,
    },
    Endpoint {
        label: "POST /api/process",
        method: "POST",
        path: "/api/process",
        auth: true,
        body: Some(PROCESS_BODY),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let o = Options::parse(&args("--duration 5s --repeats=1 --connections 32")).unwrap();
        assert_eq!((o.duration, o.repeats, o.connections), (5, 1, 32));
        assert_eq!(o.warmup, 2);
        assert!(Options::parse(&args("--bogus 1")).is_err());
        assert!(Options::parse(&args("--duration")).is_err());
        assert!(Options::parse(&args("--repeats 0")).is_err());
        assert!(Options::parse(&args("--threads 4 --connections 2")).is_err());
    }
}
