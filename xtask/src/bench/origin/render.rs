//! The markdown report: the setup, the throughput and latency table with each row's
//! verdict, where each server's CPU went, a profile of every missed target, the errors
//! seen under load and every measured run.

use std::fmt::{self, Write};
use std::time::Duration;

use super::super::units::{mib, ms, percent, thousands};
use super::run::Row;
use super::setup::Env;
use super::{Pair, TARGET_RATIO};

/// The whole report; `overall_kib` and `procs` are each server's peak over the whole run.
pub(super) fn render(
    env: &Env,
    rows: &[Row],
    overall_kib: Pair<u64>,
    procs: Pair<usize>,
    elapsed: Duration,
) -> String {
    let mut md = String::new();
    write_report(&mut md, env, rows, overall_kib, procs, elapsed)
        .expect("writing to a String cannot fail");
    md
}

fn write_report(
    md: &mut String,
    env: &Env,
    rows: &[Row],
    overall_kib: Pair<u64>,
    procs: Pair<usize>,
    elapsed: Duration,
) -> fmt::Result {
    writeln!(
        md,
        "# Origin benchmark: Rust `fastgate-api` vs the FastAPI reference\n"
    )?;
    for line in &env.lines {
        writeln!(md, "{line}")?;
    }
    writeln!(md)?;
    throughput_table(md, rows)?;
    writeln!(
        md,
        "\nPeak RSS over the whole run: reference {} ({} processes), rust {} ({} process{}).",
        mib(overall_kib.reference),
        procs.reference,
        mib(overall_kib.rust),
        procs.rust,
        if procs.rust == 1 { "" } else { "es" }
    )?;
    cpu_table(md, rows)?;
    miss_profiles(md, rows)?;
    verdict(md, rows)?;
    errors(md, rows)?;
    every_run(md, rows)?;
    writeln!(
        md,
        "\n</details>\n\nMeasured in {}m{:02}s by `cargo xtask bench origin`.",
        elapsed.as_secs() / 60,
        elapsed.as_secs() % 60
    )
}

/// req/s, latency and peak memory per endpoint, with the verdict against the target.
fn throughput_table(md: &mut String, rows: &[Row]) -> fmt::Result {
    writeln!(
        md,
        "| endpoint | reference req/s | rust req/s | ratio | reference p50 / p99 | \
         rust p50 / p99 | reference peak RSS | rust peak RSS | target |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for row in rows {
        let Pair {
            reference: r,
            rust: s,
        } = &row.summary;
        let misses = row.misses();
        let verdict = if misses.is_empty() {
            "pass".to_owned()
        } else {
            format!("fail ({})", misses.join(", "))
        };
        writeln!(
            md,
            "| `{}` | {} | {} | {:.1}x | {} / {} | {} / {} | {} | {} | {} |",
            row.label,
            thousands(r.rps),
            thousands(s.rps),
            row.ratio(),
            ms(r.p50_us),
            ms(r.p99_us),
            ms(s.p50_us),
            ms(s.p99_us),
            mib(row.peak_rss_kib.reference),
            mib(row.peak_rss_kib.rust),
            verdict
        )?;
    }
    Ok(())
}

/// Server CPU per request, the Rust server's kernel share, and wrk's own cost.
fn cpu_table(md: &mut String, rows: &[Row]) -> fmt::Result {
    writeln!(
        md,
        "\nServer CPU per request (user + system time of the server's process tree during the \
         measured runs, divided by the requests served; median). It does not depend on how the \
         cores were shared with wrk, so its ratio is the throughput ratio each server would \
         reach with the cores to itself. The last two columns say where the Rust server's CPU \
         went and what wrk itself spent per request on the same cores:\n"
    )?;
    writeln!(
        md,
        "| endpoint | reference CPU/req | rust CPU/req | ratio | rust in the kernel | \
         wrk's own CPU/req (ref / rust) |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
    for row in rows {
        let Pair {
            reference: r,
            rust: s,
        } = &row.summary;
        writeln!(
            md,
            "| `{}` | {:.0} µs | {:.0} µs | {:.1}x | {:.0} µs ({:.0}%) | {:.0} / {:.0} µs |",
            row.label,
            r.cpu_us_per_req,
            s.cpu_us_per_req,
            row.cpu_ratio(),
            s.kernel_us_per_req,
            percent(s.kernel_us_per_req, s.cpu_us_per_req),
            r.loadgen_us_per_req,
            s.loadgen_us_per_req,
        )?;
    }
    Ok(())
}

/// For each endpoint that misses the req/s target: where the cores went, from the figures
/// above (the report's profile of the miss).
fn miss_profiles(md: &mut String, rows: &[Row]) -> fmt::Result {
    for row in rows.iter().filter(|r| r.ratio() < TARGET_RATIO) {
        let Pair {
            reference: r,
            rust: s,
        } = &row.summary;
        let per_request = s.cpu_us_per_req + s.loadgen_us_per_req;
        writeln!(
            md,
            "\n**Profile of the miss on `{label}`.** Each Rust request cost the server {cpu:.1} µs \
             of CPU ({kernel:.1} µs of it in the kernel) and cost wrk {gen:.1} µs on the same cores, so wrk took {share:.0}% of \
             the CPU the Rust run used; driving the reference it took {ref_share:.0}%. The \
             req/s ratio ({ratio:.1}x) is therefore bounded by the load generator sharing the \
             machine, while the servers' own CPU per request differs {cpu_ratio:.1}x.",
            label = row.label,
            cpu = s.cpu_us_per_req,
            kernel = s.kernel_us_per_req,
            gen = s.loadgen_us_per_req,
            share = percent(s.loadgen_us_per_req, per_request),
            ref_share = percent(r.loadgen_us_per_req, r.cpu_us_per_req + r.loadgen_us_per_req),
            ratio = row.ratio(),
            cpu_ratio = row.cpu_ratio(),
        )?;
    }
    Ok(())
}

/// How many endpoints meet the target.
fn verdict(md: &mut String, rows: &[Row]) -> fmt::Result {
    let passed = rows.iter().filter(|r| r.misses().is_empty()).count();
    writeln!(
        md,
        "\n**Result: {passed} of {} endpoints meet the target** (>= {TARGET_RATIO:.0}x req/s \
         and a lower p99){}.",
        rows.len(),
        if passed == rows.len() {
            ""
        } else {
            "; the target is missed where marked fail"
        }
    )
}

/// Non-2xx responses and socket errors, per endpoint and server, when there were any.
fn errors(md: &mut String, rows: &[Row]) -> fmt::Result {
    let mut errors = Vec::new();
    for row in rows {
        for (side, s) in row.summary.iter().filter(|(_, s)| s.errors() > 0) {
            errors.push(format!(
                "- `{}` {}: {} non-2xx responses, {} socket errors over all runs",
                row.label,
                side.name(),
                s.non_2xx,
                s.socket_errors
            ));
        }
    }
    if !errors.is_empty() {
        writeln!(md, "\nErrors seen under load (they count in req/s):\n")?;
        for line in &errors {
            writeln!(md, "{line}")?;
        }
    }
    Ok(())
}

/// Every measured run, folded away.
fn every_run(md: &mut String, rows: &[Row]) -> fmt::Result {
    writeln!(md, "\n<details><summary>Every measured run</summary>\n")?;
    writeln!(
        md,
        "| endpoint | server | run | req/s | p50 | p99 | requests | errors | server CPU |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in rows {
        for (side, runs) in row.runs.iter() {
            for (n, s) in runs.iter().enumerate() {
                writeln!(
                    md,
                    "| `{}` | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
                    row.label,
                    side.name(),
                    n + 1,
                    thousands(s.rps),
                    ms(s.p50_us),
                    ms(s.p99_us),
                    s.requests,
                    s.non_2xx + s.socket_errors,
                    s.server_cpu_s
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::super::wrk::Sample;
    use super::super::run::Summary;
    use super::*;

    fn sample(rps: f64, p99_us: f64) -> Sample {
        Sample {
            rps,
            p50_us: p99_us / 4.0,
            p99_us,
            requests: 1,
            non_2xx: 0,
            socket_errors: 0,
            server_cpu_s: 0.5,
            ..Default::default()
        }
    }

    fn pair<T>(reference: T, rust: T) -> Pair<T> {
        Pair { reference, rust }
    }

    #[test]
    fn verdicts() {
        let row = |r: Sample, s: Sample| Row {
            label: "GET /health",
            summary: Pair {
                reference: Summary::of(std::slice::from_ref(&r)),
                rust: Summary::of(std::slice::from_ref(&s)),
            },
            runs: Pair {
                reference: vec![r],
                rust: vec![s],
            },
            peak_rss_kib: Pair {
                reference: 100 * 1024,
                rust: 10 * 1024,
            },
        };
        assert!(row(sample(1000.0, 9000.0), sample(12000.0, 800.0))
            .misses()
            .is_empty());
        assert_eq!(
            row(sample(1000.0, 9000.0), sample(5000.0, 9500.0)).misses(),
            vec!["5.0x < 10x".to_owned(), "p99 not lower".to_owned()]
        );
        let env = Env { lines: vec![] };
        let rows = [row(sample(1000.0, 9000.0), sample(12000.0, 800.0))];
        let md = render(&env, &rows, pair(1, 2), pair(3, 1), Duration::from_secs(61));
        assert!(
            md.contains("| `GET /health` | 1,000 | 12,000 | 12.0x |"),
            "{md}"
        );
        assert!(md.contains("1 of 1 endpoints meet the target"), "{md}");
        assert!(!md.contains("Profile of the miss"), "{md}");

        // A miss gets its profile: the server's CPU, its kernel part, and wrk's share.
        let mut slow = sample(8000.0, 800.0);
        (slow.requests, slow.server_cpu_s) = (1000, 0.012);
        (slow.server_kernel_s, slow.loadgen_cpu_s) = (0.008, 0.012);
        let mut reference = sample(1000.0, 9000.0);
        (
            reference.requests,
            reference.server_cpu_s,
            reference.loadgen_cpu_s,
        ) = (1000, 0.18, 0.012);
        let md = render(
            &env,
            &[row(reference, slow)],
            pair(1, 2),
            pair(3, 1),
            Duration::from_secs(61),
        );
        assert!(
            md.contains("| 12 µs | 15.0x | 8 µs (67%) | 12 / 12 µs |"),
            "{md}"
        );
        assert!(md.contains("Profile of the miss on `GET /health`"), "{md}");
        assert!(md.contains("so wrk took 50% of the CPU"), "{md}");
        assert!(md.contains("it took 6%"), "{md}");
    }
}
