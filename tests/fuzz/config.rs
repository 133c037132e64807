//! Config parsing (`fastgate::config::Config::parse`): what the edge runs on every request
//! when ops push an override, and what `cargo xtask config check` runs before the push.
//!
//! Inputs: `config/default.json` with structural edits (a value replaced by one of another
//! type, an out-of-range number, an unknown backend, a hostile regex or template; a key
//! removed or an unknown one added), written compact or pretty, then perhaps edited as
//! text.

use std::sync::OnceLock;

use fastgate::config::{Config, ConfigError};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseResult;
use serde_json::{json, Value};

use crate::harness::{self, apply, edits, text_char, Budget, Edit};

/// The top-level keys of the schema that the default file may leave out (with those it
/// has, every field path an error names starts with one).
const TOP_LEVEL: &[&str] = &[
    "version",
    "backends",
    "geo",
    "routes",
    "failover",
    "auth",
    "flags",
    "cors",
    "rate_limiter",
    "cache",
    "log_endpoint",
    "limits",
];

fn default_config() -> &'static Value {
    static DEFAULT: OnceLock<Value> = OnceLock::new();
    DEFAULT.get_or_init(|| serde_json::from_str(fastgate::config::EMBEDDED).unwrap())
}

/// A structural edit at the node reached by following `path` (each index picks a member
/// of an object or an element of an array, modulo its size).
#[derive(Debug, Clone)]
enum Change {
    Set(Vec<Index>, Value),
    /// The value replaced by another of its own type (a string by a string, a number by a
    /// number, an array by a shorter or a longer one), which gets past serde's types to
    /// the config's own validation.
    SameType(Vec<Index>, Index),
    Remove(Vec<Index>),
    AddKey(Vec<Index>, String, Value),
}

#[derive(Debug, Clone)]
struct Case {
    changes: Vec<Change>,
    pretty: bool,
    text_edits: Vec<Edit>,
}

fn values() -> impl Strategy<Value = Value> {
    select(vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(255),
        json!(256),
        json!(4_294_967_296u64),
        json!(u64::MAX),
        json!(1e30),
        json!(0.5),
        json!(""),
        json!("x"),
        json!("origin_mars"),
        json!("origin us"),
        json!("/"),
        json!("/api/{id}"),
        json!("/api/{"),
        json!("^("),
        json!("^(a{1000}){1000}$"),
        json!("((a+)+)+$"),
        json!("/../etc"),
        json!("summaries:{sub}"),
        json!("{sub}{sub}{unknown}"),
        json!("x".repeat(5_000)),
        json!([]),
        json!({}),
        json!(["origin_mars"]),
        json!(["origin_us", "origin_us"]),
        json!({"unknown": 1}),
    ])
}

fn path() -> impl Strategy<Value = Vec<Index>> {
    proptest::collection::vec(any::<Index>(), 1..7)
}

fn cases() -> impl Strategy<Value = Case> {
    let change = prop_oneof![
        4 => (path(), values()).prop_map(|(p, v)| Change::Set(p, v)),
        4 => (path(), any::<Index>()).prop_map(|(p, i)| Change::SameType(p, i)),
        2 => path().prop_map(Change::Remove),
        1 => (path(), select(vec!["unknown_field", "methods", "ttl_s", "auth"]), values())
            .prop_map(|(p, k, v)| Change::AddKey(p, k.to_owned(), v)),
    ];
    let text_edits = prop_oneof![
        3 => Just(Vec::new()),
        1 => edits(text_char(), 4),
    ];
    (
        proptest::collection::vec(change, 1..4),
        any::<bool>(),
        text_edits,
    )
        .prop_map(|(changes, pretty, text_edits)| Case {
            changes,
            pretty,
            text_edits,
        })
}

pub fn run(budget: Budget) {
    harness::run("config", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    let mut doc = default_config().clone();
    for change in &case.changes {
        edit(&mut doc, change);
    }
    let text = if case.pretty {
        serde_json::to_string_pretty(&doc).unwrap()
    } else {
        doc.to_string()
    };
    let text = apply(&text, &case.text_edits);
    let first = Config::parse(&text);
    let again = Config::parse(&text);
    match (&first, &again) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(&a.hash, &b.hash);
            prop_assert!(a.hash.len() == 16 && a.hash.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        (Err(a), Err(b)) => {
            prop_assert_eq!(a, b, "parsing is not deterministic");
            locates_the_fault(a)?;
        }
        _ => prop_assert!(
            false,
            "parsing is not deterministic: {first:?} vs {again:?}"
        ),
    }
    Ok(())
}

/// An error must say where: a field path under a top-level key, or (when serde refused the
/// text) a line and column.
fn locates_the_fault(e: &ConfigError) -> TestCaseResult {
    let field = match e {
        ConfigError::Syntax(msg) => {
            prop_assert!(
                msg.contains("line ") && msg.contains("column "),
                "syntax error without a position: {msg}"
            );
            return Ok(());
        }
        ConfigError::UnknownBackend { field, .. } | ConfigError::EmptyBackendList { field } => {
            field
        }
        ConfigError::Invalid(fe) => {
            prop_assert!(!fe.reason.is_empty(), "no reason: {e:?}");
            &fe.field
        }
        #[allow(unreachable_patterns)]
        _ => return Ok(()),
    };
    let top = field.split(['.', '[']).next().unwrap_or("");
    prop_assert!(
        TOP_LEVEL.contains(&top) || default_config().get(top).is_some(),
        "error does not name a field: {e} (field {field:?})"
    );
    Ok(())
}

/// Applies one structural change; a path that runs into a scalar stops there.
fn edit(doc: &mut Value, change: &Change) {
    let (path, last) = match change {
        Change::Set(p, _) | Change::SameType(p, _) | Change::Remove(p) | Change::AddKey(p, ..) => {
            match p.split_last() {
                Some((last, rest)) => (rest, last),
                None => return,
            }
        }
    };
    let mut node = doc;
    for index in path {
        node = match child_key(node, index) {
            Some(Key::Member(k)) => &mut node[k.as_str()],
            Some(Key::Element(i)) => &mut node[i],
            None => break,
        };
    }
    let key = child_key(node, last);
    if let Change::SameType(_, pick) = change {
        let slot = match key {
            Some(Key::Member(k)) => &mut node[k.as_str()],
            Some(Key::Element(i)) => &mut node[i],
            None => node,
        };
        *slot = same_type(slot, pick);
        return;
    }
    match (change, key) {
        (Change::Set(_, v), Some(Key::Member(k))) => node[k.as_str()] = v.clone(),
        (Change::Set(_, v), Some(Key::Element(i))) => node[i] = v.clone(),
        (Change::Set(_, v), None) => *node = v.clone(),
        (Change::Remove(_), Some(Key::Member(k))) => {
            node.as_object_mut().map(|o| o.remove(&k));
        }
        (Change::Remove(_), Some(Key::Element(i))) => {
            node.as_array_mut().map(|a| a.remove(i));
        }
        (Change::AddKey(_, k, v), _) => {
            if let Some(o) = node.as_object_mut() {
                o.insert(k.clone(), v.clone());
            }
        }
        (Change::Remove(_), None) | (Change::SameType(..), _) => {}
    }
}

/// Another value of `old`'s type.
fn same_type(old: &Value, pick: &Index) -> Value {
    let from = |pool: &[Value]| pool[pick.index(pool.len())].clone();
    match old {
        Value::Null => Value::Null,
        Value::Bool(b) => json!(!b),
        Value::Number(_) => from(&[
            json!(0),
            json!(1),
            json!(-1),
            json!(255),
            json!(256),
            json!(65_536),
            json!(4_294_967_295u64),
            json!(4_294_967_296u64),
            json!(u64::MAX),
            json!(0.5),
        ]),
        Value::String(_) => from(&[
            json!(""),
            json!("origin_mars"),
            json!("origin us"),
            json!("GET"),
            json!("get"),
            json!("/"),
            json!("/api/{id}"),
            json!("/api/{"),
            json!("api/"),
            json!("^("),
            json!("^(a{1000}){1000}$"),
            json!("{sub}"),
            json!("summaries:{unknown}"),
            json!("*"),
            json!("http://x"),
            json!("ZZ"),
        ]),
        Value::Array(items) => {
            let mut items = items.clone();
            match pick.index(3) {
                0 => items.clear(),
                1 if !items.is_empty() => {
                    let i = pick.index(items.len());
                    items.remove(i);
                }
                _ => items.extend(items.first().cloned()),
            }
            Value::Array(items)
        }
        Value::Object(members) => {
            let mut members = members.clone();
            if let Some(k) = members
                .keys()
                .nth(pick.index(members.len().max(1)))
                .cloned()
            {
                members.remove(&k);
            }
            Value::Object(members)
        }
    }
}

enum Key {
    Member(String),
    Element(usize),
}

fn child_key(node: &Value, index: &Index) -> Option<Key> {
    match node {
        Value::Object(o) if !o.is_empty() => {
            o.keys().nth(index.index(o.len())).cloned().map(Key::Member)
        }
        Value::Array(a) if !a.is_empty() => Some(Key::Element(index.index(a.len()))),
        _ => None,
    }
}
