//! Linear work in the origin's JSON reader: defect 1 of issue 14 was an object build that
//! scanned the members so far for each key, O(n²) in the keys of one object (50,000 keys:
//! 3.9 s of CPU). Each case generates a document shape at n and at 8n (members, elements
//! or escapes) and checks that the larger costs at most [`RATIO`] times the smaller, or
//! under [`floor`] at all. Linear work is 8×, and up to about 20× here once the larger
//! document outgrows the CPU caches (measured: 1–3 µs a member from 2,500 to 40,000 long
//! keys); the quadratic build was 50× and more (2,500 keys: 5 ms, 20,000: 250 ms
//! optimised). At 4n the two were 14× and 16×, too close to tell apart on a busy machine.
//!
//! The member cap is lifted ([`Limits`]), so what is measured is the build itself, not the
//! cap's early refusal. Time is the thread's CPU time where Linux reports it
//! (`/proc/thread-self/schedstat`), which other processes on a loaded machine do not
//! stretch as they do wall time (wall time elsewhere); that clock may advance in whole
//! scheduler ticks, so each cost is the mean of as many parses as fill [`MEASURE`]. The
//! smaller document's cost is the lower of two such means, and the larger passes as soon as
//! one of its tries is inside the bound: only work that is superlinear every time fails.

use std::time::{Duration, Instant};

use fastgate_api::json::{self, Limits};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;

use crate::harness::{self, Budget};

/// Members (or elements, or escapes) of the smaller document; the larger has 8 times as
/// many (20,000: the quadratic build took 4.5 s of CPU for them unoptimised).
const N: usize = 2_500;
const SCALE: usize = 8;
/// The bound on cost(8n) / cost(n): linear is 8, caches make it up to about 20.
const RATIO: u32 = 32;
const TRIES: usize = 3;
/// CPU time one cost is averaged over (scheduler ticks are 1–10 ms).
const MEASURE: Duration = Duration::from_millis(40);

/// Below this the larger document passes whatever the ratio. Linear parsing of the larger
/// documents costs 5–60 ms optimised, 10× that unoptimised.
fn floor() -> Duration {
    Duration::from_millis(if cfg!(debug_assertions) { 100 } else { 10 })
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    /// One object of distinct keys (the attack body).
    DistinctKeys,
    /// One object whose keys repeat (CPython keeps the last value, at the first position).
    RepeatedKeys,
    /// Distinct keys that share a long prefix, so comparing two costs their length.
    SharedPrefixKeys,
    /// An array of small objects.
    ObjectsInArray,
    /// An array of nested chains, 25 levels each.
    NestedChains,
    /// One string of escapes.
    Escapes,
    /// An array of numbers.
    Numbers,
}

#[derive(Debug, Clone)]
struct Case {
    shape: Shape,
    /// A prefix for every key (ASCII or not).
    prefix: String,
    /// What each member holds.
    value: &'static str,
}

fn cases() -> impl Strategy<Value = Case> {
    let shape = select(vec![
        Shape::DistinctKeys,
        Shape::RepeatedKeys,
        Shape::SharedPrefixKeys,
        Shape::ObjectsInArray,
        Shape::NestedChains,
        Shape::Escapes,
        Shape::Numbers,
    ]);
    let prefix = prop_oneof!["[a-z]{0,6}", "[é中😀k]{1,4}"];
    let value = select(&["1", "null", "\"v\"", "{}", "[]", "-1.5e3", "\"\\u00e9\""][..]);
    (shape, prefix, value).prop_map(|(shape, prefix, value)| Case {
        shape,
        prefix,
        value,
    })
}

/// The document of `case` at size `n`.
fn document(case: &Case, n: usize) -> String {
    let (p, v) = (&case.prefix, case.value);
    let members = |key: &dyn Fn(usize) -> String| {
        let m: Vec<String> = (0..n).map(|i| format!("\"{}\":{v}", key(i))).collect();
        format!("{{{}}}", m.join(","))
    };
    match case.shape {
        Shape::DistinctKeys => members(&|i| format!("{p}{i}")),
        Shape::RepeatedKeys => members(&|i| format!("{p}{}", i % 7)),
        Shape::SharedPrefixKeys => {
            let long = p.repeat(4) + &"k".repeat(32);
            members(&|i| format!("{long}{i}"))
        }
        Shape::ObjectsInArray => {
            let item = format!("{{\"{p}a\":{v},\"{p}b\":{v},\"{p}a\":{v}}}");
            format!("[{}]", vec![item; n / 3].join(","))
        }
        Shape::NestedChains => {
            let chain = format!("{}{v}{}", "[".repeat(25), "]".repeat(25));
            format!("[{}]", vec![chain; n / 25].join(","))
        }
        Shape::Escapes => format!("\"{}\"", "\\u00e9\\n".repeat(n)),
        Shape::Numbers => format!("[{}]", vec!["-12345.678e-3"; n].join(",")),
    }
}

pub fn run(budget: Budget) {
    harness::run("json-linear", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    let limits = Limits {
        max_object_members: usize::MAX,
        ..Limits::DEFAULT
    };
    let (small, large) = (document(&case, N), document(&case, SCALE * N));
    let (first, ok) = cost(&small, limits);
    prop_assert!(ok, "the smaller document does not parse: {case:?}");
    let base = first.min(cost(&small, limits).0);
    let bound = floor().max(base * RATIO);
    let mut tries = Vec::new();
    for _ in 0..TRIES {
        let (took, ok) = cost(&large, limits);
        prop_assert!(ok, "the larger document does not parse: {case:?}");
        if took <= bound {
            return Ok(());
        }
        tries.push(took);
    }
    prop_assert!(
        false,
        "superlinear: {case:?}: {N} cost {base:?}, {} cost {tries:?} (bound {bound:?})",
        SCALE * N
    );
    Ok(())
}

/// The mean cost of parsing `text`, over as many parses as fill [`MEASURE`], and whether
/// it parsed.
fn cost(text: &str, limits: Limits) -> (Duration, bool) {
    let start = Clock::now();
    let (mut ok, mut runs) = (true, 0u32);
    loop {
        ok &= json::parse_with(text, limits).is_ok();
        runs += 1;
        let spent = start.elapsed();
        if spent >= MEASURE || runs >= 1_000 {
            return (spent / runs, ok);
        }
    }
}

/// The calling thread's CPU time, or wall time where that is not available.
enum Clock {
    Cpu(Duration),
    Wall(Instant),
}

impl Clock {
    fn now() -> Clock {
        thread_cpu_time().map_or_else(|| Clock::Wall(Instant::now()), Clock::Cpu)
    }

    fn elapsed(&self) -> Duration {
        match self {
            Clock::Cpu(start) => {
                thread_cpu_time().map_or(Duration::ZERO, |t| t.saturating_sub(*start))
            }
            Clock::Wall(start) => start.elapsed(),
        }
    }
}

/// Nanoseconds this thread has run on a CPU: the first field of its `schedstat`.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
