//! `cargo xtask bench`: measurements of the product on this machine, each a median of
//! repeated runs and each comparison taken within the same run, so that a figure in the
//! report can be reproduced by running the same command again.
//!
//! This module only reads the subcommand; every benchmark is its own submodule:
//! [`origin`] (the Rust origin against the FastAPI reference), [`edge`] (what Viceroy and
//! the edge Wasm add), and [`report`] (all of them, plus the library's per-phase cost and
//! the Wasm's size, into one file).

mod edge;
mod guest;
mod http;
mod origin;
mod phases;
mod procs;
mod profile;
mod report;
mod units;
mod wasm;
mod wrk;

use anyhow::{bail, Result};

pub const USAGE: &str =
    "usage: cargo xtask bench                (everything: target/bench/report.md)
       cargo xtask bench edge           (edge overhead through Viceroy)
       cargo xtask bench origin [--duration SECS] [--warmup SECS] \
[--repeats N] [--connections N] [--threads N] [--workers N] [--reference-dir DIR] [--out FILE]

  --duration SECS      length of each measured wrk run (default 10)
  --warmup SECS        unmeasured wrk run per endpoint and server first (default 2; 0 = none)
  --repeats N          measured runs per endpoint and server; the median is reported (default 3)
  --connections N      wrk connections (default 64)
  --threads N          wrk threads (default 2)
  --workers N          uvicorn workers and origin worker threads (default: number of cores)
  --reference-dir DIR  directory holding fastapi_app.py (default ../shared/reference)
  --out FILE           report file (default target/bench/origin.md)";

/// `cargo xtask bench <what> ...`
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None => report::all(),
        Some("origin") => origin::run(&args[1..]),
        Some("edge") => edge::run(&*procs::stop_flag()?).map(|md| println!("{md}")),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}
