//! Path normalisation (`fastgate::path`): the first parser every request meets, and the one
//! that decides whether a traversal can reach the origin.
//!
//! Inputs: paths built from segments that matter (every spelling of `.` and `..`, encoded
//! separators and controls, malformed escapes, multi-byte UTF-8), absolute-form URIs with
//! queries and fragments, those mutated, and arbitrary text.

use fastgate::path::{is_safe_target, normalize, split_target};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;

use crate::harness::{self, mutations_of, text_char, Budget};

/// Segments whose spellings the normaliser must get right.
const SEGMENTS: &[&str] = &[
    "", ".", "..", "%2e", "%2E", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "...", "a", "api", "user",
    "profile", "%7e", "%7Eme", "%41", "%2f", "%2F", "%5c", "%5C", "\\", "..\\", "%00", "%0a",
    "%0D", "%1f", "%7f", "%7F", "%20", "%25", "%252e", "%", "%z", "%2", "%%", "%C3%A9", "é",
    "\u{85}", "\u{2028}", ";", ";x=1", "a b", "\0", "\n", "\t", "\x7f", "~", "-_.~", "ü%2e",
];

fn structured() -> impl Strategy<Value = String> {
    let segments = proptest::collection::vec(select(SEGMENTS), 0..10);
    let prefix = select(&["/", "//", "", "http://h", "https://h:8/", "/api/"][..]);
    let suffix = select(&["", "/", "?", "?a=1", "?x=../y", "#f", "?a#b", "/?"][..]);
    (prefix, segments, suffix).prop_map(|(p, s, x)| format!("{p}{}{x}", s.join("/")))
}

fn inputs() -> impl Strategy<Value = String> {
    let alphabet = prop_oneof![
        3 => select(&['/', '.', '%', '\\', '?', '#', '2', 'e', 'E', 'f', 'F', 'c', 'C', '0'][..]),
        2 => text_char(),
    ];
    prop_oneof![
        3 => structured(),
        4 => mutations_of(structured(), alphabet, 6),
        1 => proptest::collection::vec(text_char(), 0..48)
            .prop_map(|c| c.into_iter().collect::<String>()),
    ]
}

pub fn run(budget: Budget) {
    harness::run("path", budget, inputs(), check);
}

fn check(uri: String) -> TestCaseResult {
    let (path, query) = split_target(&uri);
    prop_assert!(!path.contains(['?', '#']), "split path {path:?}");
    prop_assert!(!query.unwrap_or("").contains('#'), "split query {query:?}");
    if !uri.contains("://") && !uri.contains('#') {
        let joined = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        prop_assert_eq!(&joined, &uri, "split_target must not lose bytes");
    }
    for raw in [path, uri.as_str()] {
        check_normalized(raw)?;
    }
    Ok(())
}

fn check_normalized(raw: &str) -> TestCaseResult {
    let Ok(out) = normalize(raw) else {
        return Ok(());
    };
    prop_assert!(out.starts_with('/'), "{out:?} is not absolute");
    prop_assert!(!out.contains("//"), "{out:?} has an empty segment");
    for segment in out.split('/') {
        prop_assert!(
            segment != "." && segment != "..",
            "{out:?} has a dot segment"
        );
        // What the origin sees after its one percent-decoding of the segment.
        let decoded = percent_decode(segment);
        prop_assert!(
            decoded != b"." && decoded != b"..",
            "{raw:?} -> {out:?}: segment {segment:?} decodes to a dot segment"
        );
        prop_assert!(
            !decoded.iter().any(|b| b.is_ascii_control() || *b == b'\\'),
            "{raw:?} -> {out:?}: segment {segment:?} is or decodes to a control byte or backslash"
        );
    }
    let again = normalize(&out);
    prop_assert_eq!(
        again.as_ref(),
        Ok(&out),
        "normalize is not idempotent on {:?}",
        raw
    );
    prop_assert!(
        is_safe_target(&out) || out.starts_with("//"),
        "{out:?} is normal but not a safe target"
    );
    Ok(())
}

/// One round of percent-decoding, as an origin's router does (malformed escapes kept).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}
