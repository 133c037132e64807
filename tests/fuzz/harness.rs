//! The fuzz harness both fuzz test binaries share: `tests/fuzz.rs` (the edge library) and,
//! through `#[path]`, the origin's `backends/api/tests/fuzz_json.rs`.
//!
//! cargo-fuzz needs a nightly toolchain; this is the stable substitute: proptest strategies
//! (structured generators, and mutations of valid seeds) run against a property until a
//! budget is spent. A failing case is shrunk by proptest to a minimal input, which is
//! printed before the test fails.
//!
//! Two budgets:
//! - [`Budget::ci`]: a fixed number of cases from a fixed seed, so `cargo test --workspace`
//!   fuzzes every target on every run, reproducibly and in seconds;
//! - [`Budget::from_env`]: `FASTGATE_FUZZ_SECONDS` of wall time per target (default 60), the
//!   long run `cargo xtask fuzz` starts (`--ignored` tests, release mode).
//!
//! Each run prints one `fuzz-result` line (`target=... cases=... secs=... rate=...
//! failures=... seed=...`) that `cargo xtask fuzz` collects into its table.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseResult, TestError, TestRng, TestRunner};

/// One plain test (CI budget: `$ci_cases` cases) and one ignored `fuzz_*` test (timed
/// budget, in batches of `$ci_cases`) per target; each target module has a
/// `run(Budget)`, and `Budget` must be in scope where this is called.
macro_rules! targets {
    ($($target:ident => $ci_cases:expr, $fuzz:ident;)*) => {
        $(
            #[test]
            fn $target() {
                $target::run(Budget::ci($ci_cases));
            }

            #[test]
            #[ignore = "a timed fuzz run: cargo xtask fuzz"]
            fn $fuzz() {
                $target::run(Budget::from_env($ci_cases));
            }
        )*
    };
}
pub(crate) use targets;

/// Seconds per target for a long run.
pub const SECONDS_VAR: &str = "FASTGATE_FUZZ_SECONDS";
/// The base seed, to replay a run (printed with every result).
pub const SEED_VAR: &str = "FASTGATE_FUZZ_SEED";
const DEFAULT_SECONDS: u64 = 60;
/// The CI runs' seed: fixed, so a CI failure reproduces locally with plain `cargo test`.
const CI_SEED: u64 = 0x0FA5_76A7_E14F_0022;

/// How long a target runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Exactly this many cases.
    Cases(u32),
    /// Batches of this many cases until this much wall time has passed. A batch's size is
    /// fixed per target (so a seed replays the same cases) and small enough that the
    /// budget is overrun by at most a second or so.
    Time(Duration, u32),
}

impl Budget {
    /// The short, deterministic budget of the normal test run.
    pub fn ci(cases: u32) -> Self {
        Budget::Cases(cases)
    }

    /// `FASTGATE_FUZZ_SECONDS` (default 60) of wall time, in batches of `batch` cases.
    pub fn from_env(batch: u32) -> Self {
        let secs = std::env::var(SECONDS_VAR)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_SECONDS);
        Budget::Time(Duration::from_secs(secs), batch.max(1))
    }
}

/// Runs `property` on values of `strategy` until `budget` is spent; prints the result line,
/// and panics (failing the test) with the minimal failing input if any case fails.
pub fn run<S>(
    target: &str,
    budget: Budget,
    strategy: S,
    property: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let seed = base_seed(budget);
    let started = Instant::now();
    let mut cases: u64 = 0;
    let mut failure = None;
    for batch in 0u64.. {
        let size = match budget {
            Budget::Cases(n) if batch == 0 => n,
            Budget::Cases(_) => break,
            Budget::Time(limit, _) if started.elapsed() >= limit => break,
            Budget::Time(_, per_batch) => per_batch,
        };
        let mut runner = runner(size, mix(seed, batch));
        match runner.run(&strategy, &property) {
            Ok(()) => cases += u64::from(size),
            Err(e) => {
                failure = Some((batch, describe(e)));
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "\nfuzz-result target={target} cases={cases} secs={secs:.2} rate={:.0}/s failures={} \
         seed={seed:#x}",
        cases as f64 / secs.max(1e-9),
        u8::from(failure.is_some()),
    );
    if let Some((batch, why)) = failure {
        let replay = format!("{SEED_VAR}={seed:#x} (batch {batch})");
        println!("fuzz-failure target={target} replay with {replay}\n{why}");
        panic!("fuzz target `{target}` failed; replay with {replay}:\n{why}");
    }
}

/// The test runner of one batch: its own seed, no failure files (the seed is printed
/// instead), and shrinking bounded so a failure is reported in reasonable time.
fn runner(cases: u32, seed: u64) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(seed, i as u64).to_le_bytes());
    }
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

fn describe<T: Debug>(e: TestError<T>) -> String {
    match e {
        TestError::Fail(reason, minimal) => {
            format!("reason: {reason}\nminimal input: {minimal:#?}")
        }
        TestError::Abort(reason) => format!("aborted: {reason}"),
    }
}

/// `FASTGATE_FUZZ_SEED` (decimal or `0x` hex) when set; else the fixed CI seed for a CI
/// budget, or a fresh one for a timed run (so long runs explore, and print what they did).
fn base_seed(budget: Budget) -> u64 {
    let given = std::env::var(SEED_VAR).ok().and_then(|s| {
        let s = s.trim();
        match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        }
    });
    match (given, budget) {
        (Some(seed), _) => seed,
        (None, Budget::Cases(_)) => CI_SEED,
        (None, Budget::Time(..)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            mix(now, u64::from(std::process::id()))
        }
    }
}

/// SplitMix64 of `seed` and `n`: independent seeds for batches and RNG words.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One edit of a seed text. Positions are [`Index`]es, taken modulo the text's length at the
/// time the edit applies, so every edit list applies to every text (and shrinks well).
#[derive(Debug, Clone)]
pub enum Edit {
    Insert(Index, char),
    Delete(Index),
    Replace(Index, char),
    /// Copies the chars between two positions and inserts the copy after them: grows
    /// repeated structure (`../../`, `[[[`, `a=1,a=1`) that single chars rarely reach.
    Duplicate(Index, Index),
    Truncate(Index),
}

pub use proptest::sample::Index;

/// Up to `max` edits, each inserting or replacing with a char from `alphabet`.
pub fn edits(
    alphabet: impl Strategy<Value = char> + Clone,
    max: usize,
) -> impl Strategy<Value = Vec<Edit>> {
    use proptest::prelude::*;
    let index = any::<Index>;
    let edit = prop_oneof![
        3 => (index(), alphabet.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        2 => index().prop_map(Edit::Delete),
        3 => (index(), alphabet).prop_map(|(i, c)| Edit::Replace(i, c)),
        1 => (index(), index()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
        1 => index().prop_map(Edit::Truncate),
    ];
    proptest::collection::vec(edit, 1..=max)
}

/// `seed` with `edits` applied in order.
pub fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for edit in edits {
        let at = |i: &Index, extra: usize| i.index(text.len() + extra);
        match edit {
            Edit::Insert(i, c) => text.insert(at(i, 1), *c),
            Edit::Delete(i) if !text.is_empty() => {
                text.remove(at(i, 0));
            }
            Edit::Replace(i, c) if !text.is_empty() => {
                let i = at(i, 0);
                text[i] = *c;
            }
            Edit::Duplicate(a, b) => {
                let (a, b) = (at(a, 1), at(b, 1));
                let (from, to) = (a.min(b), a.max(b));
                let copy: Vec<char> = text[from..to].to_vec();
                text.splice(to..to, copy);
            }
            Edit::Truncate(i) => text.truncate(at(i, 1)),
            Edit::Delete(_) | Edit::Replace(..) => {}
        }
    }
    text.into_iter().collect()
}

/// Texts from `seeds`, mutated by up to `max_edits` edits drawing from `alphabet`.
pub fn mutations_of(
    seeds: impl Strategy<Value = String>,
    alphabet: impl Strategy<Value = char> + Clone,
    max_edits: usize,
) -> impl Strategy<Value = String> {
    (seeds, edits(alphabet, max_edits)).prop_map(|(seed, e)| apply(&seed, &e))
}

/// Any char, biased towards the ASCII punctuation and controls that structure text formats
/// (and away from the astral planes that `any::<char>()` visits as often as ASCII).
pub fn text_char() -> impl Strategy<Value = char> + Clone {
    use proptest::prelude::*;
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => proptest::char::range('\0', '\x1f'),
        1 => Just('\x7f'),
        1 => proptest::char::range('\u{80}', '\u{7ff}'),
        1 => any::<char>(),
    ]
}
