//! `Cache-Control` (`fastgate::cache::CacheControl`): read from clients and origins alike,
//! so it must never panic, and must read what it documents.
//!
//! Inputs: lists of directives (known ones in any case, unknown ones; no argument, a token
//! or a quoted string, valid or not) joined with the separators senders use; those mutated;
//! arbitrary text. A model restates the documented rules: a flag is set by its name; a
//! delta directive is its digits capped at 2^31, 0 when the argument is missing or invalid,
//! and the first occurrence when it is repeated.

use fastgate::cache::{CacheControl, DELTA_SECONDS_CAP};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;

use crate::harness::{self, mutations_of, text_char, Budget};

const FLAGS: &[&str] = &[
    "no-store",
    "no-cache",
    "private",
    "public",
    "must-revalidate",
    "proxy-revalidate",
    "must-understand",
];
const DELTAS: &[&str] = &[
    "max-age",
    "s-maxage",
    "stale-while-revalidate",
    "stale-if-error",
];

#[derive(Debug, Clone)]
enum Arg {
    None,
    Token(String),
    /// The text between the quotes, escapes as written.
    Quoted(String),
}

#[derive(Debug, Clone)]
struct Directive {
    name: String,
    arg: Arg,
}

impl Directive {
    fn write(&self) -> String {
        match &self.arg {
            Arg::None => self.name.clone(),
            Arg::Token(t) => format!("{}={t}", self.name),
            Arg::Quoted(q) => format!("{}=\"{q}\"", self.name),
        }
    }
    fn arg_text(&self) -> Option<&str> {
        match &self.arg {
            Arg::None => None,
            // A token is read up to the next comma, without the OWS around it.
            Arg::Token(t) => Some(t.trim_matches([' ', '\t'])),
            Arg::Quoted(q) => Some(q),
        }
    }
}

fn directive() -> impl Strategy<Value = Directive> {
    let known: Vec<&str> = FLAGS.iter().chain(DELTAS).copied().collect();
    let name = prop_oneof![
        4 => (select(known), any::<u32>()).prop_map(|(n, mask)| recase(n, mask)),
        1 => "[a-zA-Z-]{1,12}",
    ];
    let arg = prop_oneof![
        2 => Just(Arg::None),
        4 => "[0-9]{1,12}".prop_map(Arg::Token),
        1 => "[0-9]{13,30}".prop_map(Arg::Token),
        1 => "(-[0-9]{1,3}|[0-9]{0,3}[a-z. +-][0-9a-z]{0,3}|0x1f)".prop_map(Arg::Token),
        2 => "[0-9]{0,12}".prop_map(Arg::Quoted),
        1 => "([a-z ,=-]|\\\\[0-9\"\\\\])*".prop_map(Arg::Quoted),
    ];
    (name, arg).prop_map(|(name, arg)| Directive { name, arg })
}

/// `name` with the letters whose bit is set in `mask` upper-cased.
fn recase(name: &str, mask: u32) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn directives() -> impl Strategy<Value = (Vec<Directive>, Vec<&'static str>)> {
    let seps = proptest::collection::vec(select(&[",", ", ", " , ", ",\t", ",,", " ,"][..]), 8);
    (proptest::collection::vec(directive(), 0..8), seps)
}

fn join(list: &[Directive], seps: &[&str]) -> String {
    let mut out = String::new();
    for (i, d) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(seps[i % seps.len()]);
        }
        out.push_str(&d.write());
    }
    out
}

#[derive(Debug, Clone)]
enum Case {
    /// Directives, split at `split` into two field lines.
    Model(Vec<Directive>, Vec<&'static str>, usize),
    Text(String),
}

fn cases() -> impl Strategy<Value = Case> {
    let seed = directives().prop_map(|(d, s)| join(&d, &s));
    let alphabet = prop_oneof![
        3 => select(&[',', '=', '"', '\\', ' ', '\t', '0', '9', '-', 'a'][..]),
        1 => text_char(),
    ];
    prop_oneof![
        4 => (directives(), 0..9usize).prop_map(|((d, s), split)| Case::Model(d, s, split)),
        3 => mutations_of(seed, alphabet, 6).prop_map(Case::Text),
        1 => proptest::collection::vec(text_char(), 0..48)
            .prop_map(|c| Case::Text(c.into_iter().collect())),
    ]
}

pub fn run(budget: Budget) {
    harness::run("cache-control", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    match case {
        Case::Model(list, seps, split) => {
            let value = join(&list, &seps);
            let parsed = CacheControl::parse(&value);
            prop_assert_eq!(parsed, model(&list), "for {:?}", value);
            // Several field lines read as their comma-joined value (RFC 9111 §5.2).
            let split = split.min(list.len());
            let (a, b) = (join(&list[..split], &seps), join(&list[split..], &seps));
            let lines = [("Cache-Control", a.as_str()), ("cache-control", b.as_str())];
            prop_assert_eq!(
                CacheControl::from_headers(&lines),
                parsed,
                "lines {:?}",
                lines
            );
        }
        Case::Text(value) => {
            let cc = CacheControl::parse(&value);
            for delta in [
                cc.max_age,
                cc.s_maxage,
                cc.stale_while_revalidate,
                cc.stale_if_error,
            ] {
                prop_assert!(delta.unwrap_or(0) <= DELTA_SECONDS_CAP, "{value:?}: {cc:?}");
            }
        }
    }
    Ok(())
}

/// The documented rules, restated.
fn model(list: &[Directive]) -> CacheControl {
    let named = |n: &str| -> Vec<&Directive> {
        list.iter()
            .filter(|d| d.name.eq_ignore_ascii_case(n))
            .collect()
    };
    let flag = |n: &str| !named(n).is_empty();
    let delta = |n: &str| {
        let values: Vec<u64> = named(n)
            .iter()
            .map(|d| delta_seconds(d.arg_text()))
            .collect();
        // Of a repeated directive, the first counts (RFC 9111 §4.2.1).
        values.first().copied()
    };
    CacheControl {
        no_store: flag("no-store"),
        no_cache: flag("no-cache"),
        private: flag("private"),
        public: flag("public"),
        must_revalidate: flag("must-revalidate"),
        proxy_revalidate: flag("proxy-revalidate"),
        must_understand: flag("must-understand"),
        max_age: delta("max-age"),
        s_maxage: delta("s-maxage"),
        stale_while_revalidate: delta("stale-while-revalidate"),
        stale_if_error: delta("stale-if-error"),
    }
}

/// RFC 9111 §1.2.2: digits, capped at 2^31; anything else (or nothing) reads as 0.
fn delta_seconds(arg: Option<&str>) -> u64 {
    match arg {
        Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
            a.parse::<u128>().map_or(DELTA_SECONDS_CAP, |v| {
                v.min(u128::from(DELTA_SECONDS_CAP)) as u64
            })
        }
        _ => 0,
    }
}
