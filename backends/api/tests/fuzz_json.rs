//! Fuzzing the origin's readers of attacker-controlled text, property-based on stable (the
//! harness is the edge's, `tests/fuzz/harness.rs`, shared through `#[path]`):
//!
//! - `json` (`fuzz_json/differential.rs`): `fastgate_api::json::parse`, which every request
//!   body meets before any check, against `serde_json` as a reference reader. Both must
//!   accept and refuse the same documents, and agree on the value (with CPython's dict
//!   semantics applied to serde_json's reading: a repeated key keeps its first position
//!   and its last value), except where CPython's `json.loads`, which ours reproduces,
//!   differs from serde_json. Those differences are exactly these:
//!   1. `NaN`, `Infinity`, `-Infinity`, and float literals that overflow (`1e400` is
//!      `inf`): CPython accepts them, serde_json refuses them.
//!   2. Lone UTF-16 surrogate escapes (`"\ud800"`, a high surrogate not followed by a low
//!      one, a low one alone): CPython keeps them in the string; a Rust string cannot hold
//!      one, so ours reads each as U+FFFD; serde_json refuses the document. The property:
//!      ours on the text equals serde_json on the text with each lone surrogate escape
//!      written as `\ufffd`.
//!   3. Integers beyond the f64 range: CPython's ints are arbitrary precision, serde_json
//!      reads a big integer as an f64 and refuses one beyond f64's range (`number out of
//!      range`). Integers inside it are compared as serde_json reads them (an f64).
//!   4. `-0` is the integer 0 in CPython and the float -0.0 in serde_json.
//!   5. serde_json (without its `float_roundtrip` feature, which this workspace does not
//!      enable) rounds long decimal floats best-effort, a few ULP away from the correctly
//!      rounded value CPython and ours produce (`1009.1232909833149210E49`: 2 ULP), and
//!      refuses as out of range some literals that round to the largest f64: floats compare
//!      within a relative 1e-14, and a literal within that of the largest f64 is given to
//!      serde_json as the shortest spelling of its value.
//!   6. Our caps ([`fastgate_api::json::Limits`]): a document refused for its nesting,
//!      members per object or integer digits (an `is_limit()` error) may be one serde_json
//!      reads; CPython also refuses the deep and the long-integer ones (`RecursionError`,
//!      `ValueError`).
//!
//!   Also: a value ours accepts writes back (`to_compact`) as text ours reads to the same
//!   value, and an error's position lies inside the text.
//! - `json-linear` (`fuzz_json/linear.rs`): parsing work is linear: documents of generated
//!   shapes at n and 4n members (or levels, or escapes) take at most ~8× as long, not 16×.
//! - `signature` (`fuzz_json/signature.rs`): `Signature-Input` and `Signature` parsing and the
//!   `Verifier` over the wire crate's pinned requests with mutated method, target and
//!   headers: never a panic, and a request verifies only if everything it signed is as
//!   signed.

#[path = "../../../tests/fuzz/harness.rs"]
mod harness;

/// The targets, in `tests/fuzz_json/`.
mod fuzz_json {
    pub mod differential;
    pub mod linear;
    pub mod signature;
}

use fuzz_json::{differential, linear, signature};
use harness::Budget;

harness::targets! {
    differential => 600, fuzz_json;
    linear => 5, fuzz_json_linear;
    signature => 600, fuzz_signature;
}
