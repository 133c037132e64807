//! Fuzzing the edge library's parsers of attacker-controlled text, property-based on stable
//! (see `fuzz/harness.rs`): path normalisation, token extraction and verification, the
//! gateway config, `Cache-Control` and HTTP dates. The origin's JSON reader and signature
//! headers are fuzzed in `backends/api/tests/fuzz_json.rs`.
//!
//! Every target runs twice: as a plain test with a short fixed budget (so `cargo test
//! --workspace`, and CI, fuzz on every run), and as an ignored `fuzz_*` test that runs for
//! `FASTGATE_FUZZ_SECONDS` (`cargo xtask fuzz [--seconds N] [TARGET...]`, release mode).
//!
//! The properties, beyond "never panics" (a panic at the edge is a bare 500):
//! - `path`: a normalised path has no `..` or `.` segment, no backslash and no control byte,
//!   also once percent-decoded; normalising is idempotent; `split_target` keeps `?`/`#` out
//!   of the path.
//! - `token`: a token that differs from a validly signed one by any edit is refused, also
//!   after the original's signature was remembered; a validly signed token is accepted
//!   exactly when a model of the claim rules says so; bearer extraction yields `token68` only.
//! - `config`: a mutated `config/default.json` is accepted or refused with an error that
//!   locates the fault (a field path, or a line and column); parsing is deterministic.
//! - `cache-control`: parsing agrees with a model of RFC 9111 §5.2 as the module documents
//!   it (duplicates, invalid arguments, the 2^31 cap), and field lines combine as one value.
//! - `http-date`: every valid date in each of the three forms reads as its epoch second
//!   (0 before 1970), whatever its weekday; garbage never reads as a date far from it.
//! - `release`: manifests, `Accept-Encoding`, `If-None-Match`, preview hosts, ops keys,
//!   cookies and sealed sessions: a parsed manifest's paths are in normal form and answers
//!   name only its keys; a preview host selects only valid names; a changed sealed session
//!   never opens.

/// The targets and the harness, in `tests/fuzz/`.
mod fuzz {
    pub mod cache_control;
    pub mod config;
    pub mod harness;
    pub mod http_date;
    pub mod path;
    pub mod release;
    pub mod token;
}

use fuzz::{cache_control, config, harness, http_date, path, release, token};
use harness::Budget;

harness::targets! {
    path => 1_000, fuzz_path;
    token => 200, fuzz_token;
    config => 150, fuzz_config;
    cache_control => 500, fuzz_cache_control;
    http_date => 1_000, fuzz_http_date;
    release => 500, fuzz_release;
}
