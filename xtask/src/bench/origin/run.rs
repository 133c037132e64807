//! The measured part: for each endpoint, wrk against both servers at the same load,
//! alternating, with each run's server CPU and wrk's own CPU taken around it, and the
//! medians that the report compares.

use std::sync::atomic::AtomicBool;

use anyhow::Result;

use super::super::procs::{reaped_children_cpu, tree_cpu, RssSampler, Server};
use super::super::units::{ms, thousands};
use super::super::wrk::{self, Load, Sample};
use super::setup::{Seeded, Tools};
use super::{per_server, Endpoint, Options, Pair, Side, ENDPOINTS, TARGET_RATIO};

/// Medians of one server's runs on one endpoint.
#[derive(Debug, Clone, Default)]
pub(super) struct Summary {
    pub(super) rps: f64,
    pub(super) p50_us: f64,
    pub(super) p99_us: f64,
    pub(super) cpu_us_per_req: f64,
    pub(super) kernel_us_per_req: f64,
    pub(super) loadgen_us_per_req: f64,
    pub(super) non_2xx: u64,
    pub(super) socket_errors: u64,
}

impl Summary {
    pub(super) fn of(samples: &[Sample]) -> Summary {
        let med = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        Summary {
            rps: med(|s| s.rps),
            p50_us: med(|s| s.p50_us),
            p99_us: med(|s| s.p99_us),
            cpu_us_per_req: med(|s| s.cpu_us_per_req()),
            kernel_us_per_req: med(|s| s.kernel_us_per_req()),
            loadgen_us_per_req: med(|s| s.loadgen_us_per_req()),
            non_2xx: samples.iter().map(|s| s.non_2xx).sum(),
            socket_errors: samples.iter().map(|s| s.socket_errors).sum(),
        }
    }

    pub(super) fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// One endpoint's result: every run of both servers, their medians and peak memory.
pub(super) struct Row {
    pub(super) label: &'static str,
    pub(super) runs: Pair<Vec<Sample>>,
    pub(super) summary: Pair<Summary>,
    pub(super) peak_rss_kib: Pair<u64>,
}

impl Row {
    pub(super) fn new(
        label: &'static str,
        runs: Pair<Vec<Sample>>,
        peak_rss_kib: Pair<u64>,
    ) -> Row {
        Row {
            label,
            summary: runs.as_ref().map(|r| Summary::of(r)),
            runs,
            peak_rss_kib,
        }
    }

    pub(super) fn ratio(&self) -> f64 {
        if self.summary.reference.rps > 0.0 {
            self.summary.rust.rps / self.summary.reference.rps
        } else {
            f64::INFINITY
        }
    }

    /// How many times less server CPU per request the Rust origin spent.
    pub(super) fn cpu_ratio(&self) -> f64 {
        let Pair {
            reference: r,
            rust: s,
        } = &self.summary;
        if s.cpu_us_per_req > 0.0 {
            r.cpu_us_per_req / s.cpu_us_per_req
        } else {
            f64::INFINITY
        }
    }

    /// Why the row misses the target, if it does.
    pub(super) fn misses(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.ratio() < TARGET_RATIO {
            why.push(format!("{:.1}x < {TARGET_RATIO:.0}x", self.ratio()));
        }
        if self.summary.rust.p99_us >= self.summary.reference.p99_us {
            why.push("p99 not lower".into());
        }
        if self.summary.rust.errors() > 0 {
            why.push(format!("{} rust errors", self.summary.rust.errors()));
        }
        why
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Says how long the load will take, before it starts.
pub(super) fn announce(opts: &Options) {
    let total = ENDPOINTS.len() as u64 * 2 * (opts.warmup + opts.repeats as u64 * opts.duration);
    println!(
        "xtask bench: {} endpoints x 2 servers x ({}s warm-up + {} x {}s); about {}m{:02}s of load",
        ENDPOINTS.len(),
        opts.warmup,
        opts.repeats,
        opts.duration,
        total / 60,
        total % 60
    );
}

/// Everything the load runs need, borrowed for their duration.
pub(super) struct Bench<'a> {
    pub(super) opts: &'a Options,
    pub(super) tools: &'a Tools,
    pub(super) servers: &'a mut Pair<Server>,
    pub(super) seeded: &'a Pair<Seeded>,
    pub(super) stop: &'a AtomicBool,
}

impl Bench<'_> {
    /// Every endpoint in turn; each row's peak memory is the sampler's window over its runs.
    pub(super) fn measure(&mut self, sampler: &RssSampler) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for ep in ENDPOINTS {
            sampler.reset_window();
            let runs = self.runs(ep)?;
            for server in self.servers.as_mut() {
                server.check_alive()?;
            }
            rows.push(Row::new(ep.label, runs, per_server(&sampler.window())));
        }
        Ok(rows)
    }

    /// The warm-up, then the measured runs of both servers on one endpoint.
    fn runs(&self, ep: &Endpoint) -> Result<Pair<Vec<Sample>>> {
        let opts = self.opts;
        if opts.warmup > 0 {
            for side in Side::BOTH {
                self.wrk_once(ep, side, opts.warmup)?;
            }
        }
        let mut runs = Pair::<Vec<Sample>>::default();
        // Alternate the servers so that a noisy neighbour on the machine hits both alike.
        for rep in 0..opts.repeats {
            for side in Side::BOTH {
                let s = self.wrk_once(ep, side, opts.duration)?;
                println!(
                    "  {:<22} {:<9} run {}/{}: {:>10} req/s  p50 {:>9}  p99 {:>9}  \
                     server CPU {:>5.0} us/req{}",
                    ep.label,
                    side.name(),
                    rep + 1,
                    opts.repeats,
                    thousands(s.rps),
                    ms(s.p50_us),
                    ms(s.p99_us),
                    s.cpu_us_per_req(),
                    error_note(s.non_2xx, s.socket_errors)
                );
                runs[side].push(s);
            }
        }
        Ok(runs)
    }

    /// One wrk run against one server, with the CPU its process tree and wrk spent.
    fn wrk_once(&self, ep: &Endpoint, side: Side, seconds: u64) -> Result<Sample> {
        let server = &self.servers[side];
        let user = &self.seeded[side];
        let url = server.url(&user.path(ep));
        let headers: Vec<String> = ep
            .auth
            .then(|| format!("Authorization: Bearer {}", user.token))
            .into_iter()
            .collect();
        let script = ep.body.is_some().then_some(&self.tools.script);
        let load = Load {
            threads: self.opts.threads,
            connections: self.opts.connections,
        };
        let (server_before, loadgen_before) = (tree_cpu(server.pid()), reaped_children_cpu());
        let mut sample = wrk::run(
            &self.tools.wrk,
            &load,
            seconds,
            &url,
            &headers,
            script,
            self.stop,
        )?;
        let server_cpu = tree_cpu(server.pid()) - server_before;
        sample.server_cpu_s = server_cpu.total_s;
        sample.server_kernel_s = server_cpu.kernel_s;
        sample.loadgen_cpu_s = (reaped_children_cpu() - loadgen_before).total_s;
        Ok(sample)
    }
}

fn error_note(non_2xx: u64, socket: u64) -> String {
    match (non_2xx, socket) {
        (0, 0) => String::new(),
        (n, s) => format!("  ({n} non-2xx, {s} socket errors)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
