//! The origin's reading of the edge's signature (`fastgate_api::edge_signature`): the
//! `Signature-Input` and `Signature` parsers, and the `Verifier` as the middleware calls it.
//!
//! Inputs: the wire crate's two pinned requests (a GET, and a POST with a body digest),
//! with the method, the target or any header edited, dropped, repeated, or given extra
//! dictionary members, checked at a time in or around the window; and the two header
//! values mutated and as arbitrary text. Properties: no panic; the unmutated request
//! verifies exactly inside its window (with the clock skew); a request verifies only if
//! every component it signed is as signed.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use fastgate_api::edge_signature::{
    parse_signature, parse_signature_input, IdentityKeys, Verifier,
};
use fastgate_wire::test_vector::{self, Vector, GET, POST};
use fastgate_wire::{
    CLOCK_SKEW_SECS, CONTENT_DIGEST_HEADER, FLAGS_HEADER, IDENTITY_HEADER, REQUEST_ID_HEADER,
    SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER,
};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseResult;

use crate::harness::{self, apply, edits, mutations_of, text_char, Budget, Edit};

/// The headers a signed request carries, in this order.
const HEADERS: [&str; 6] = [
    SIGNATURE_INPUT_HEADER,
    SIGNATURE_HEADER,
    IDENTITY_HEADER,
    FLAGS_HEADER,
    REQUEST_ID_HEADER,
    CONTENT_DIGEST_HEADER,
];

#[derive(Debug, Clone)]
enum Mutation {
    Method(Vec<Edit>),
    Target(Vec<Edit>),
    Header(Index, Vec<Edit>),
    Drop(Index),
    /// A second field line of the header, as sent or edited.
    Repeat(Index, Vec<Edit>),
    /// An extra dictionary member appended to `Signature-Input` or `Signature`.
    Member(bool, &'static str),
}

#[derive(Debug, Clone)]
enum Case {
    Request {
        post: bool,
        /// Seconds from `created - 10`.
        at: u64,
        mutations: Vec<Mutation>,
    },
    /// A value for `Signature-Input` (true) or `Signature` (false).
    Value(bool, String),
}

/// Chars a header value may hold (visible ASCII, space, tab, obs-text), biased towards
/// the structure of the two dictionaries.
fn header_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => select(&['"', ';', '=', ',', ':', '(', ')', ' ', '\t', '?', '1', '0', 'a', '-'][..]),
        3 => proptest::char::range(' ', '~'),
        1 => select(&['é', '\u{80}', '\u{ff}'][..]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let members = select(
        &[
            "other=1",
            "fastgate=1",
            "x=(\"@method\");created=1",
            "fastgate=:AAAA:",
            "y=:AAAA:",
            "z",
            "a=\"open",
        ][..],
    );
    prop_oneof![
        1 => edits(header_char(), 3).prop_map(Mutation::Method),
        2 => edits(header_char(), 3).prop_map(Mutation::Target),
        6 => (any::<Index>(), edits(header_char(), 4)).prop_map(|(i, e)| Mutation::Header(i, e)),
        1 => any::<Index>().prop_map(Mutation::Drop),
        1 => (any::<Index>(), prop_oneof![Just(Vec::new()), edits(header_char(), 2)])
            .prop_map(|(i, e)| Mutation::Repeat(i, e)),
        1 => (any::<bool>(), members).prop_map(|(input, m)| Mutation::Member(input, m)),
    ]
}

fn cases() -> impl Strategy<Value = Case> {
    let seeds = select(vec![
        GET.signature_input.to_owned(),
        POST.signature_input.to_owned(),
        GET.signature.to_owned(),
        POST.signature.to_owned(),
    ]);
    let mutations = prop_oneof![
        1 => Just(Vec::new()),
        4 => proptest::collection::vec(mutation(), 1..4),
    ];
    prop_oneof![
        6 => (any::<bool>(), 0u64..60, mutations).prop_map(|(post, at, mutations)| {
            Case::Request { post, at, mutations }
        }),
        3 => (any::<bool>(), mutations_of(seeds, header_char(), 5))
            .prop_map(|(input, v)| Case::Value(input, v)),
        1 => (any::<bool>(), proptest::collection::vec(text_char(), 0..40))
            .prop_map(|(input, c)| Case::Value(input, c.into_iter().collect())),
    ]
}

pub fn run(budget: Budget) {
    harness::run("signature", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    match case {
        Case::Request {
            post,
            at,
            mutations,
        } => check_request(if post { &POST } else { &GET }, at, &mutations),
        Case::Value(input, value) => {
            if input {
                if let Ok(params) = parse_signature_input(&value) {
                    prop_assert!(value.contains(&params.raw), "raw {:?}", params.raw);
                }
            } else if let Ok(mac) = parse_signature(&value) {
                prop_assert!(value.contains("fastgate") && mac.len() < value.len());
            }
            Ok(())
        }
    }
}

/// A request as the origin receives it: method, target, and header lines in order.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(&'static str, String)>,
}

fn signed_request(v: &Vector) -> Request {
    let values = [
        Some(v.signature_input),
        Some(v.signature),
        Some(test_vector::IDENTITY),
        Some(v.flags),
        Some(v.request_id),
        v.content_digest,
    ];
    Request {
        method: v.method.to_owned(),
        target: v.target(),
        headers: HEADERS
            .iter()
            .zip(values)
            .filter_map(|(n, value)| Some((*n, value?.to_owned())))
            .collect(),
    }
}

fn mutate(r: &mut Request, m: &Mutation) {
    let pick = |i: &Index, r: &Request| i.index(r.headers.len().max(1));
    match m {
        Mutation::Method(e) => r.method = apply(&r.method, e),
        Mutation::Target(e) => r.target = apply(&r.target, e),
        Mutation::Header(i, e) if !r.headers.is_empty() => {
            let at = pick(i, r);
            r.headers[at].1 = apply(&r.headers[at].1, e);
        }
        Mutation::Drop(i) if !r.headers.is_empty() => {
            r.headers.remove(pick(i, r));
        }
        Mutation::Repeat(i, e) if !r.headers.is_empty() => {
            let (name, value) = r.headers[pick(i, r)].clone();
            r.headers.push((name, apply(&value, e)));
        }
        Mutation::Member(input, member) => {
            let name = if *input {
                SIGNATURE_INPUT_HEADER
            } else {
                SIGNATURE_HEADER
            };
            if let Some(h) = r.headers.iter_mut().find(|(n, _)| *n == name) {
                h.1 = format!("{}, {member}", h.1);
            }
        }
        Mutation::Header(..) | Mutation::Drop(_) | Mutation::Repeat(..) => {}
    }
}

fn verifier() -> Verifier {
    let key = std::str::from_utf8(test_vector::KEY).unwrap();
    let spec = format!(
        "{}:{key}, k2:another-secret-of-enough-length",
        test_vector::KEY_ID
    );
    Verifier::new(IdentityKeys::parse(&spec).unwrap())
}

fn check_request(v: &Vector, at: u64, mutations: &[Mutation]) -> TestCaseResult {
    let now = test_vector::CREATED - 10 + at;
    let mut request = signed_request(v);
    for m in mutations {
        mutate(&mut request, m);
    }
    // What the HTTP layer would refuse never reaches the verifier.
    let Ok(method) = Method::from_bytes(request.method.as_bytes()) else {
        return Ok(());
    };
    let Ok(uri) = request.target.parse::<Uri>() else {
        return Ok(());
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) else {
            return Ok(());
        };
        headers.append(HeaderName::from_static(name), value);
    }
    let verdict = verifier().verify(&method, &uri, &headers, now);
    let in_window = test_vector::CREATED <= now + CLOCK_SKEW_SECS
        && now <= test_vector::EXPIRES + CLOCK_SKEW_SECS;
    if mutations.is_empty() {
        prop_assert_eq!(verdict.is_ok(), in_window, "at {}: {:?}", now, verdict);
    }
    if verdict.is_ok() {
        as_signed(v, &method, &uri, &headers)?;
    }
    Ok(())
}

/// Everything the vector signed, as the verifier saw it.
fn as_signed(v: &Vector, method: &Method, uri: &Uri, headers: &HeaderMap) -> TestCaseResult {
    prop_assert_eq!(method.as_str(), v.method);
    prop_assert_eq!(uri.path(), v.path);
    // The `@query` component (RFC 9421 §2.2.7): `?` and the query, and `?` alone for none,
    // so `/p?` and `/p` are one signed target.
    let query = |q: Option<&str>| format!("?{}", q.unwrap_or(""));
    prop_assert_eq!(query(uri.query()), query(v.query));
    let single = |name: &str| {
        let lines: Vec<&[u8]> = headers.get_all(name).iter().map(|h| h.as_bytes()).collect();
        match lines[..] {
            [one] => Some(one.to_vec()),
            _ => None,
        }
    };
    let covered = [
        (IDENTITY_HEADER, Some(test_vector::IDENTITY)),
        (FLAGS_HEADER, Some(v.flags)),
        (REQUEST_ID_HEADER, Some(v.request_id)),
        (CONTENT_DIGEST_HEADER, v.content_digest),
    ];
    for (name, expected) in covered {
        if let Some(expected) = expected {
            let got = single(name);
            prop_assert_eq!(got.as_deref(), Some(expected.as_bytes()), "header {}", name);
        }
    }
    let input: Vec<&str> = headers
        .get_all(SIGNATURE_INPUT_HEADER)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .collect();
    let params = parse_signature_input(&input.join(", "));
    let raw = params.map(|p| p.raw).ok();
    prop_assert_eq!(raw.as_deref(), Some(v.params));
    Ok(())
}
