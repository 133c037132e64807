//! A JSON reader that behaves like CPython's `json.loads`, because FastAPI clients see its
//! error messages and character offsets in 422 `json_invalid` bodies, and an ordered value
//! type, because FastAPI echoes request input back (`"input": {...}`) in the client's key order.
//! `serde_json::Value` would sort keys unless the workspace-wide `preserve_order` feature
//! were switched on, which would change the edge crate's output too.
//!
//! The body of every request reaches this parser before any check, so its work must be
//! linear in the input and bounded ([`Limits`]): objects are built through a hash index
//! (`object.rs`), not by scanning the members so far for each key, and nesting, members per
//! object and integer digits are capped. A document over a cap fails with
//! [`ErrorKind::Limit`], which the origin answers as FastAPI answers CPython's own
//! `RecursionError`: 400 "There was an error parsing the body".

mod object;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A parsed JSON document that keeps object keys in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Number as the text Python would print it (`int` digits or `float` repr).
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The text of a JSON string; `None` for every other kind of value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Looks a key up the way a Python dict does (the last duplicate wins).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Compact JSON text, as `json.dumps(..., separators=(",", ":"))` would write it.
    pub fn to_compact(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => match serde_json::value::RawValue::from_string(n.clone()) {
                Ok(raw) => raw.serialize(s),
                Err(_) => s.serialize_unit(),
            },
            Value::String(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// A decode failure: CPython's message and the character (not byte) offset it reports, and
/// which exception CPython would raise, because FastAPI answers them differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}: char {pos}")]
pub struct DecodeError {
    pub msg: &'static str,
    pub pos: usize,
    pub kind: ErrorKind,
}

impl DecodeError {
    /// True for a document refused by a [`Limits`] cap rather than for its syntax.
    pub fn is_limit(&self) -> bool {
        self.kind == ErrorKind::Limit
    }
}

/// Which of CPython's exceptions a failure stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `json.JSONDecodeError`: FastAPI answers 422 `json_invalid` with `msg` and `pos`.
    Syntax,
    /// Any other exception out of `json.loads` (`RecursionError` for deep nesting,
    /// `ValueError` for an integer over 4,300 digits), or one of our own caps: FastAPI
    /// answers those with 400 "There was an error parsing the body".
    Limit,
}

/// Bounds on the work one document may cost. Every field is checked while parsing, so a
/// document over a bound fails as soon as it crosses it, without reading further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Arrays and objects open at once. CPython stops near 1,000 (its recursion limit);
    /// 127 is serde_json's bound (it refuses the 128th), so both parsers refuse the same
    /// documents and each level costs a bounded stack frame.
    pub max_depth: usize,
    /// Members written in one object, duplicates included (each costs a key and a value to
    /// parse). CPython has no such cap; no model of the API comes near it.
    pub max_object_members: usize,
    /// Digits of an integer, without its sign: CPython's `sys.int_max_str_digits` default,
    /// over which `int()` (and so `json.loads`) raises `ValueError`.
    pub max_int_digits: usize,
}

impl Limits {
    /// The bounds every request body is parsed with.
    pub const DEFAULT: Limits = Limits {
        max_depth: 127,
        max_object_members: 10_000,
        max_int_digits: 4_300,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses `text` exactly as far as `json.loads` would, failing with its message and offset,
/// within [`Limits::DEFAULT`]. This is the entry point for request bodies (and tests).
pub fn parse(text: &str) -> Result<Value, DecodeError> {
    parse_with(text, Limits::DEFAULT)
}

/// As [`parse`], with other bounds (a test that measures the object build past the default
/// member cap, for one).
pub fn parse_with(text: &str, limits: Limits) -> Result<Value, DecodeError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.first() == Some(&'\u{feff}') {
        return Err(err("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    let mut p = Parser {
        s: &chars,
        depth: 0,
        limits,
    };
    let start = p.skip_ws(0);
    let (value, end) = p.value(start)?;
    let end = p.skip_ws(end);
    if end != chars.len() {
        return Err(err("Extra data", end));
    }
    Ok(value)
}

fn err(msg: &'static str, pos: usize) -> DecodeError {
    DecodeError {
        msg,
        pos,
        kind: ErrorKind::Syntax,
    }
}

fn over_limit(msg: &'static str, pos: usize) -> DecodeError {
    DecodeError {
        msg,
        pos,
        kind: ErrorKind::Limit,
    }
}

/// The quotation mark and the object braces, spelled by code point: a lone `"`, `{` or `}`
/// in a char literal misleads tools that read Rust as text (string and block counting).
const QUOTE: char = '\u{22}';
const OPEN_BRACE: char = '\u{7b}';
const CLOSE_BRACE: char = '\u{7d}';

struct Parser<'a> {
    s: &'a [char],
    depth: usize,
    limits: Limits,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some(' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        i
    }

    fn starts_with(&self, i: usize, lit: &str) -> bool {
        (i..).zip(lit.chars()).all(|(j, c)| self.at(j) == Some(c))
    }

    /// `scan_once`: a value starting at `i`, or "Expecting value" at `i`.
    fn value(&mut self, i: usize) -> Result<(Value, usize), DecodeError> {
        match self.at(i) {
            Some(QUOTE) => {
                let (s, end) = self.string(i + 1)?;
                Ok((Value::String(s), end))
            }
            Some(OPEN_BRACE) => self.nested(i, true),
            Some('[') => self.nested(i, false),
            Some('n') if self.starts_with(i, "null") => Ok((Value::Null, i + 4)),
            Some('t') if self.starts_with(i, "true") => Ok((Value::Bool(true), i + 4)),
            Some('f') if self.starts_with(i, "false") => Ok((Value::Bool(false), i + 5)),
            Some('N') if self.starts_with(i, "NaN") => Ok((Value::Number("NaN".into()), i + 3)),
            Some('I') if self.starts_with(i, "Infinity") => {
                Ok((Value::Number("Infinity".into()), i + 8))
            }
            Some('-') if self.starts_with(i, "-Infinity") => {
                Ok((Value::Number("-Infinity".into()), i + 9))
            }
            _ => self.number(i),
        }
    }

    /// An array or object at `i`, one level deeper; refused past `max_depth` levels, as
    /// CPython refuses past its recursion limit (so hostile input cannot exhaust the stack).
    fn nested(&mut self, i: usize, object: bool) -> Result<(Value, usize), DecodeError> {
        if self.depth >= self.limits.max_depth {
            return Err(over_limit("maximum nesting depth exceeded", i));
        }
        self.depth += 1;
        let out = if object {
            self.object(i + 1)
        } else {
            self.array(i + 1)
        };
        self.depth -= 1;
        out
    }

    fn digits(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some('0'..='9')) {
            i += 1;
        }
        i
    }

    /// `_match_number_unicode`: `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`.
    fn number(&self, start: usize) -> Result<(Value, usize), DecodeError> {
        let mut i = start;
        if self.at(i) == Some('-') {
            i += 1;
        }
        match self.at(i) {
            Some('1'..='9') => i = self.digits(i + 1),
            Some('0') => i += 1,
            _ => return Err(err("Expecting value", start)),
        }
        let mut is_float = false;
        if self.at(i) == Some('.') && matches!(self.at(i + 1), Some('0'..='9')) {
            i = self.digits(i + 1);
            is_float = true;
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some('+' | '-')) {
                j += 1;
            }
            if matches!(self.at(j), Some('0'..='9')) {
                i = self.digits(j);
                is_float = true;
            }
        }
        let text: String = self.s[start..i].iter().collect();
        let digits = text.len() - usize::from(text.starts_with('-'));
        if !is_float && digits > self.limits.max_int_digits {
            return Err(over_limit(
                "integer string conversion exceeds the digit limit",
                start,
            ));
        }
        let shown = if is_float {
            python_float_repr(text.parse::<f64>().unwrap_or(f64::NAN))
        } else if text
            .trim_start_matches('-')
            .trim_start_matches('0')
            .is_empty()
        {
            "0".to_owned()
        } else {
            text
        };
        Ok((Value::Number(shown), i))
    }

    /// `scanstring` (strict): `i` is just past the opening quote.
    fn string(&self, i: usize) -> Result<(String, usize), DecodeError> {
        let begin = i - 1;
        let mut out = String::new();
        let mut j = i;
        loop {
            let c = self
                .at(j)
                .ok_or(err("Unterminated string starting at", begin))?;
            match c {
                QUOTE => return Ok((out, j + 1)),
                '\\' => {
                    let esc = self
                        .at(j + 1)
                        .ok_or(err("Unterminated string starting at", begin))?;
                    let simple = match esc {
                        QUOTE => Some(QUOTE),
                        '\\' => Some('\\'),
                        '/' => Some('/'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        'u' => None,
                        _ => return Err(err("Invalid \\escape", j)),
                    };
                    match simple {
                        Some(ch) => {
                            out.push(ch);
                            j += 2;
                        }
                        None => {
                            let (ch, next) = self.unicode_escape(j)?;
                            out.push(ch);
                            j = next;
                        }
                    }
                }
                c if (c as u32) < 0x20 => return Err(err("Invalid control character at", j)),
                c => {
                    out.push(c);
                    j += 1;
                }
            }
        }
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let mut v = 0u32;
        for k in 0..4 {
            v = v * 16 + self.at(i + k)?.to_digit(16)?;
        }
        Some(v)
    }

    /// `\uXXXX`, joining surrogate pairs; `j` points at the backslash.
    fn unicode_escape(&self, j: usize) -> Result<(char, usize), DecodeError> {
        let hi = self
            .hex4(j + 2)
            .ok_or(err("Invalid \\uXXXX escape", j + 1))?;
        let mut next = j + 6;
        let mut code = hi;
        if (0xd800..0xdc00).contains(&hi)
            && self.at(next) == Some('\\')
            && self.at(next + 1) == Some('u')
        {
            if let Some(lo) = self.hex4(next + 2) {
                if (0xdc00..0xe000).contains(&lo) {
                    code = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                    next += 6;
                }
            }
        }
        // A lone surrogate is legal in Python strings but not in Rust ones.
        Ok((char::from_u32(code).unwrap_or('\u{fffd}'), next))
    }

    /// `JSONObject`: members until `}`; a repeated key keeps its first position and takes
    /// the last value, as a Python dict does.
    fn object(&mut self, i: usize) -> Result<(Value, usize), DecodeError> {
        let mut fields = object::Members::default();
        let mut i = self.skip_ws(i);
        if self.at(i) == Some(CLOSE_BRACE) {
            return Ok((Value::Object(fields.into_vec()), i + 1));
        }
        loop {
            if self.at(i) != Some(QUOTE) {
                return Err(err("Expecting property name enclosed in double quotes", i));
            }
            if fields.written() >= self.limits.max_object_members {
                return Err(over_limit("too many members in one object", i));
            }
            let (key, next) = self.string(i + 1)?;
            i = self.skip_ws(next);
            if self.at(i) != Some(':') {
                return Err(err("Expecting ':' delimiter", i));
            }
            i = self.skip_ws(i + 1);
            let (value, next) = self.value(i)?;
            fields.insert(key, value);
            i = self.skip_ws(next);
            match self.at(i) {
                Some(CLOSE_BRACE) => return Ok((Value::Object(fields.into_vec()), i + 1)),
                Some(',') => i = self.skip_ws(i + 1),
                _ => return Err(err("Expecting ',' delimiter", i)),
            }
        }
    }

    fn array(&mut self, i: usize) -> Result<(Value, usize), DecodeError> {
        let mut items = Vec::new();
        let mut i = self.skip_ws(i);
        if self.at(i) == Some(']') {
            return Ok((Value::Array(items), i + 1));
        }
        loop {
            let (value, next) = self.value(i)?;
            items.push(value);
            i = self.skip_ws(next);
            match self.at(i) {
                Some(']') => return Ok((Value::Array(items), i + 1)),
                Some(',') => i = self.skip_ws(i + 1),
                _ => return Err(err("Expecting ',' delimiter", i)),
            }
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific outside `1e-4 <= |x| < 1e16`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let plain = format!("{x}");
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(s: &str) -> (&'static str, usize) {
        let e = parse(s).unwrap_err();
        (e.msg, e.pos)
    }

    #[test]
    fn errors_match_cpython() {
        assert_eq!(fail(r#"{"email":"#), ("Expecting value", 9));
        assert_eq!(
            fail(r#"{"a":1,}"#),
            ("Expecting property name enclosed in double quotes", 7)
        );
        assert_eq!(fail(r#"{"a" 1}"#), ("Expecting ':' delimiter", 5));
        assert_eq!(fail(r#"{"a":1 "b"}"#), ("Expecting ',' delimiter", 7));
        assert_eq!(fail("{} x"), ("Extra data", 3));
        assert_eq!(fail(r#"{"a":"\q"}"#), ("Invalid \\escape", 6));
        assert_eq!(fail(r#"{"a":"abc"#), ("Unterminated string starting at", 5));
        assert_eq!(fail(r#"{"a":[1,]}"#), ("Expecting value", 8));
        assert_eq!(
            fail("{bad"),
            ("Expecting property name enclosed in double quotes", 1)
        );
        assert_eq!(fail(""), ("Expecting value", 0));
    }

    #[test]
    fn keeps_key_order_and_numbers() {
        let v = parse(r#" {"b":1, "a":[2.50,1e20,-0,true,null], "b":3} "#).unwrap();
        assert_eq!(v.to_compact(), r#"{"b":3,"a":[2.5,1e+20,0,true,null]}"#);
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    fn limit(s: &str) -> (&'static str, usize) {
        let e = parse(s).unwrap_err();
        assert!(e.is_limit(), "{s:.40}: {e}");
        (e.msg, e.pos)
    }

    /// Syntax errors are CPython's `JSONDecodeError`s (422); only caps are limits (400).
    #[test]
    fn syntax_errors_are_not_limits() {
        for bad in [
            "",
            "{",
            "[1,]",
            r#"{"a" 1}"#,
            "\u{feff}{}",
            "{} x",
            "-",
            "01",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Syntax, "{bad:?}: {e}");
        }
    }

    /// The depth cap is serde_json's: both accept 127 levels and refuse 128, for arrays and
    /// objects alike, and a refusal points at the bracket that went one level too deep.
    #[test]
    fn nesting_is_capped_where_serde_json_caps_it() {
        let deepest = nested(127);
        assert!(parse(&deepest).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_ok());
        let over = nested(128);
        assert_eq!(limit(&over), ("maximum nesting depth exceeded", 127));
        assert!(serde_json::from_str::<serde_json::Value>(&over).is_err());
        let objects = format!("{}1{}", r#"{"a":"#.repeat(128), "}".repeat(128));
        assert_eq!(limit(&objects).1, 127 * 5);
        // A hostile depth fails at the cap, without recursing any further.
        assert_eq!(limit(&"[".repeat(1_000_000)).1, 127);
    }

    /// CPython's `int()` refuses more than 4,300 digits (sign not counted) with a ValueError;
    /// floats of any length are fine.
    #[test]
    fn integers_over_cpythons_digit_limit_are_refused() {
        let max = "7".repeat(4300);
        for ok in [
            max.clone(),
            format!("-{max}"),
            format!("{max}1.5"),
            format!("{max}1e3"),
        ] {
            assert!(parse(&ok).is_ok(), "{ok:.20}");
        }
        let over = format!("[1, -{max}1]");
        assert_eq!(
            limit(&over),
            ("integer string conversion exceeds the digit limit", 4)
        );
    }

    /// Members per object are capped, duplicates included; the cap is per object.
    #[test]
    fn members_per_object_are_capped() {
        let object = |n: usize, key: &dyn Fn(usize) -> String| {
            let members: Vec<String> = (0..n).map(|i| format!("\"{}\":{i}", key(i))).collect();
            format!("{{{}}}", members.join(","))
        };
        let distinct = |i: usize| format!("k{i}");
        let same = |_: usize| "k".to_owned();
        let full = parse(&object(10_000, &distinct)).unwrap();
        assert!(matches!(&full, Value::Object(f) if f.len() == 10_000));
        assert_eq!(full.get("k9999").unwrap().to_compact(), "9999");
        let over = object(10_001, &distinct);
        let at = over.rfind(",\"k10000\"").unwrap() + 1;
        assert_eq!(limit(&over), ("too many members in one object", at));
        assert!(parse(&object(10_001, &same)).unwrap_err().is_limit());
        let two = format!("[{},{}]", object(10_000, &distinct), object(10_000, &same));
        assert!(parse(&two).is_ok());
        let raised = Limits {
            max_object_members: 20_000,
            ..Limits::DEFAULT
        };
        assert!(parse_with(&over, raised).is_ok());
    }
}
