//! `fastgate_api::json::parse` against serde_json, with the documented differences (see the
//! crate doc of `fuzz_json.rs`) and nothing else allowed.
//!
//! Inputs: JSON texts generated to the grammar (every escape form, surrogate pairs and lone
//! surrogates, numbers at the edges of f64 and of integer ranges, repeated keys, all four
//! whitespace characters), the same mutated, and arbitrary text.

use fastgate_api::json::{self, Value};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::harness::{self, mutations_of, text_char, Budget};

/// A JSON value as compared: object members in order, repeats kept until [`python`] folds
/// them; numbers as [`Num`].
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        match (*self, *other) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Float(a), Num::Float(b)) => close_floats(a, b),
            // Difference 4: serde_json reads `-0` as -0.0.
            (Num::Int(0), Num::Float(f)) | (Num::Float(f), Num::Int(0)) => f == 0.0,
            _ => false,
        }
    }
}

impl PartialEq for Doc {
    fn eq(&self, other: &Doc) -> bool {
        match (self, other) {
            (Doc::Null, Doc::Null) => true,
            (Doc::Bool(a), Doc::Bool(b)) => a == b,
            (Doc::Num(a), Doc::Num(b)) => a == b,
            (Doc::Str(a), Doc::Str(b)) => a == b,
            (Doc::Arr(a), Doc::Arr(b)) => a == b,
            (Doc::Obj(a), Doc::Obj(b)) => a == b,
            _ => false,
        }
    }
}

/// Difference 5: serde_json's default float parsing is best-effort: a literal with many
/// digits and a large exponent can land a few ULP away (`1009.1232909833149210E49`: 2 ULP).
/// A relative 1e-14 (about 45 ULP) is far below any error of digits or exponent.
fn close_floats(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-14 * a.abs().max(b.abs())
}

/// serde_json's reading of a document, members in order and repeats kept.
impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Doc, E> {
        Ok(Doc::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Doc, E> {
        Ok(Doc::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Doc, E> {
        Ok(Doc::Num(Num::Int(n.into())))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Doc, E> {
        Ok(Doc::Num(Num::Int(n.into())))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Doc, E> {
        Ok(Doc::Num(Num::Float(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Doc, E> {
        Ok(Doc::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Doc, E> {
        Ok(Doc::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Doc::Obj(members))
    }
}

/// CPython's dict semantics on serde_json's reading: a repeated key keeps its first
/// position and takes its last value.
fn python(doc: Doc) -> Doc {
    match doc {
        Doc::Arr(items) => Doc::Arr(items.into_iter().map(python).collect()),
        Doc::Obj(members) => {
            let mut out: Vec<(String, Doc)> = Vec::with_capacity(members.len());
            for (k, v) in members {
                let v = python(v);
                match out.iter_mut().find(|(seen, _)| *seen == k) {
                    Some(slot) => slot.1 = v,
                    None => out.push((k, v)),
                }
            }
            Doc::Obj(out)
        }
        other => other,
    }
}

/// What stands, on both sides, for a number serde_json cannot hold (differences 1 and 3):
/// ours maps it here, and the reference text spells it so.
const NON_FINITE: &str = "\u{0}non-finite";
const NON_FINITE_JSON: &str = "\"\\u0000non-finite\"";

/// Ours, as compared.
fn ours_as_doc(v: &Value) -> Doc {
    match v {
        Value::Null => Doc::Null,
        Value::Bool(b) => Doc::Bool(*b),
        Value::Number(text) => number(text).map_or(Doc::Str(NON_FINITE.into()), Doc::Num),
        Value::String(s) => Doc::Str(s.clone()),
        Value::Array(items) => Doc::Arr(items.iter().map(ours_as_doc).collect()),
        Value::Object(members) => Doc::Obj(
            members
                .iter()
                .map(|(k, v)| (k.clone(), ours_as_doc(v)))
                .collect(),
        ),
    }
}

fn holds_non_finite(d: &Doc) -> bool {
    match d {
        Doc::Str(s) => s == NON_FINITE,
        Doc::Arr(items) => items.iter().any(holds_non_finite),
        Doc::Obj(members) => members.iter().any(|(_, v)| holds_non_finite(v)),
        _ => false,
    }
}

/// A number of ours as serde_json would hold it: an integer in i64/u64 exactly, any other
/// as an f64; `None` when not finite.
fn number(text: &str) -> Option<Num> {
    let integer = text
        .trim_start_matches('-')
        .bytes()
        .all(|b| b.is_ascii_digit());
    if integer {
        if let Some(n) = text.parse::<i64>().ok().map(i128::from) {
            return Some(Num::Int(n));
        }
        if let Some(n) = text.parse::<u64>().ok().map(i128::from) {
            return Some(Num::Int(n));
        }
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then_some(Num::Float(f))
}

/// The text serde_json reads as the reference: CPython's extensions spelled in plain JSON.
/// Outside strings, `NaN`, `Infinity`, `-Infinity` and number literals beyond the f64
/// range become [`NON_FINITE_JSON`] (differences 1 and 3); inside strings, each lone
/// surrogate escape becomes `\ufffd`, as ours reads it (difference 2), and surrogate
/// pairs stay.
fn reference(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut i = 0;
    while i < c.len() {
        if in_string {
            i += string_step(&c, i, &mut out, &mut in_string);
            continue;
        }
        let run = c[i..]
            .iter()
            .take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '+' | '-' | '.'))
            .count();
        if run == 0 {
            in_string = c[i] == '"';
            out.push(c[i]);
            i += 1;
            continue;
        }
        let token: String = c[i..i + run].iter().collect();
        out.push_str(&reference_token(token));
        i += run;
    }
    out
}

/// A token outside strings as the reference spells it: a CPython extension as
/// [`NON_FINITE_JSON`]; a number literal that rounds to within 1e-14 of the largest f64 as
/// the shortest spelling of its value, which serde_json's best-effort parsing would
/// otherwise refuse as out of range (`1.79769313486231577976931348623157e308`, difference
/// 5); anything else as it is.
fn reference_token(token: String) -> String {
    if matches!(token.as_str(), "NaN" | "Infinity" | "-Infinity") {
        return NON_FINITE_JSON.to_owned();
    }
    match token.parse::<f64>() {
        Ok(f) if is_json_number(&token) && f.is_infinite() => NON_FINITE_JSON.to_owned(),
        Ok(f) if is_json_number(&token) && f.abs() >= f64::MAX * (1.0 - 1e-14) => format!("{f:e}"),
        _ => token,
    }
}

/// Copies one step of a string's content (a char, an escape, or the closing quote) and
/// returns how many chars it took.
fn string_step(c: &[char], i: usize, out: &mut String, in_string: &mut bool) -> usize {
    let escape_at = |i: usize| -> Option<u32> {
        if c.get(i) != Some(&'\\') || c.get(i + 1) != Some(&'u') {
            return None;
        }
        let hex = c.get(i + 2..i + 6)?;
        hex.iter()
            .try_fold(0, |v, h| Some(v * 16 + h.to_digit(16)?))
    };
    match escape_at(i) {
        Some(0xd800..=0xdbff)
            if escape_at(i + 6).is_some_and(|lo| (0xdc00..0xe000).contains(&lo)) =>
        {
            out.extend(&c[i..i + 12]);
            12
        }
        Some(0xd800..=0xdfff) => {
            out.push_str("\\ufffd");
            6
        }
        // Any other escape: the backslash and the char after it together, so an escaped
        // backslash (`\\u...`) is never read as the start of an escape.
        _ if c[i] == '\\' => {
            let end = (i + 2).min(c.len());
            out.extend(&c[i..end]);
            end - i
        }
        _ => {
            *in_string = c[i] != '"';
            out.push(c[i]);
            1
        }
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`.
fn is_json_number(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    i = match b.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(i).unwrap_or(i),
        _ => return false,
    };
    if b.get(i) == Some(&b'.') {
        let Some(end) = digits(i + 1) else {
            return false;
        };
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let Some(end) = digits(i + 1 + sign) else {
            return false;
        };
        i = end;
    }
    i == b.len()
}

pub fn run(budget: Budget) {
    harness::run("json", budget, inputs(), check);
}

fn check(text: String) -> TestCaseResult {
    let ours = json::parse(&text);
    let theirs = serde_json::from_str::<Doc>(&reference(&text)).map(python);
    match (&ours, &theirs) {
        (Ok(v), Ok(t)) => {
            prop_assert_eq!(&ours_as_doc(v), t, "values differ for {:?}", text);
        }
        (Ok(v), Err(e)) => {
            prop_assert!(
                false,
                "ours accepts what serde_json refuses ({e}): {text:?} -> {v:?}"
            );
        }
        (Err(e), Ok(t)) => {
            // Difference 6: one of our caps.
            prop_assert!(
                e.is_limit(),
                "ours refuses ({e}) what serde_json reads: {text:?} -> {t:?}"
            );
        }
        (Err(_), Err(_)) => {}
    }
    match &ours {
        Ok(v) if !holds_non_finite(&ours_as_doc(v)) => {
            let again = json::parse(&v.to_compact());
            prop_assert_eq!(again.as_ref(), Ok(v), "to_compact does not read back");
        }
        Err(e) => {
            let len = text.chars().count();
            prop_assert!(e.pos <= len, "{e} lies outside a text of {len} chars");
        }
        Ok(_) => {}
    }
    Ok(())
}

// ---- generators ----

fn ws() -> impl Strategy<Value = &'static str> {
    select(&["", "", "", " ", "\n", "\t", "\r\n  ", " \r"][..])
}

/// One piece of a string's content: a char as is, or one of the escape forms.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any::<char>()
            .prop_filter("a raw char", |c| *c >= ' ' && *c != '"' && *c != '\\')
            .prop_map(String::from),
        3 => "[a-zA-Z0-9 _.@-]{1,6}",
        2 => select(&["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"][..])
            .prop_map(String::from),
        2 => proptest::char::range('\0', '\u{ffff}')
            .prop_map(|c| format!("\\u{:04x}", c as u32)),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}')
            .prop_map(|c| {
                let mut units = [0u16; 2];
                let units = c.encode_utf16(&mut units);
                format!("\\u{:04X}\\u{:04x}", units[0], units[1])
            }),
        1 => (0xd800u32..0xe000).prop_map(|s| format!("\\u{s:04x}")),
    ]
}

fn string() -> impl Strategy<Value = String> {
    proptest::collection::vec(string_piece(), 0..8).prop_map(|p| format!("\"{}\"", p.concat()))
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?",
        1 => select(vec![
            "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "-0.0", "0e0",
            "1E+2", "4.9e-324", "5e-324", "2.2250738585072011e-308", "1.7976931348623157e308",
            "1.7976931348623159e308", "9007199254740993", "18446744073709551615",
            "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
            "123456789012345678901234567890",
        ])
        .prop_map(String::from),
        1 => (1usize..400).prop_map(|n| format!("1{}", "0".repeat(n))),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        1 => select(&["null", "true", "false"][..]).prop_map(String::from),
        3 => number_text(),
        3 => string(),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        let key = prop_oneof![
            2 => select(&["\"a\"", "\"b\"", "\"\\u0061\"", "\"é\"", "\"\""][..]).prop_map(String::from),
            1 => string(),
        ];
        prop_oneof![
            (proptest::collection::vec(inner.clone(), 0..6), ws(), ws()).prop_map(|(items, a, b)| {
                format!("[{a}{}{b}]", items.join(&format!("{b},{a}")))
            }),
            (proptest::collection::vec((key, inner), 0..6), ws(), ws()).prop_map(
                |(members, a, b)| {
                    let members: Vec<String> =
                        members.iter().map(|(k, v)| format!("{k}{a}:{b}{v}")).collect();
                    format!("{{{a}{}{b}}}", members.join(&format!("{a},{b}")))
                }
            ),
        ]
    })
}

fn inputs() -> impl Strategy<Value = String> {
    let document = (ws(), value(), ws()).prop_map(|(a, v, b)| format!("{a}{v}{b}"));
    let alphabet = prop_oneof![
        4 => select(
            &['{', '}', '[', ']', ':', ',', '"', '\\', 'u', 'd', '8', '0', 'e', '-', '.', ' ', 'n'][..]
        ),
        1 => text_char(),
    ];
    prop_oneof![
        4 => document,
        4 => mutations_of(value(), alphabet, 4),
        1 => proptest::collection::vec(text_char(), 0..32)
            .prop_map(|c| c.into_iter().collect::<String>()),
    ]
}
