//! Releases and sessions: what the edge reads from clients and from the release store.
//!
//! Inputs: a valid manifest, a sealed session cookie, `Accept-Encoding`, `If-None-Match`,
//! `Host`, `Cookie` and ops keys, each mutated; arbitrary text. The properties, beyond
//! "never panics":
//! - a manifest that parses validates, and every path in it is in the edge's normal form
//!   (so a request can name it); answering any path from it names only stored keys;
//! - negotiation only picks a coding the file has;
//! - a preview host only ever selects a valid release name;
//! - an ops key that parses is the key it was read from (no second spelling of a key);
//! - a sealed session changed in any way never opens.

use fastgate::release::{
    answer, is_valid_release_name, negotiate, parse_request, preview_name, sha256_hex, Coding,
    Manifest, StaticAnswer, StaticPolicy, StaticRequest, StoreKey,
};
use fastgate::session::{check_csrf, find_cookie, CsrfFacts, Session, SessionKeys};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;

use crate::harness::{self, mutations_of, text_char, Budget};

const KEYS: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn manifest_text() -> String {
    let h = |s: &str| sha256_hex(s.as_bytes());
    serde_json::json!({
        "name": "r1", "config": h("config"), "created": 1,
        "files": {
            "/index.html": {"hash": h("i"), "content_type": "text/html; charset=utf-8",
                "size": 1, "encodings": [{"coding": "br", "hash": h("ib"), "size": 1}]},
            "/assets/app.3f2a9c1b.js": {"hash": h("a"), "content_type": "text/javascript",
                "size": 1, "encodings": [{"coding": "gzip", "hash": h("ag"), "size": 1}]},
            "/a%20b/index.html": {"hash": h("d"), "content_type": "text/html", "size": 1}
        }
    })
    .to_string()
}

fn sealed() -> String {
    let session = Session {
        token: "eyJ.a.b".into(),
        csrf: "c".into(),
        exp: u64::MAX,
    };
    SessionKeys::parse(KEYS).unwrap().seal(&session, [9; 24])
}

#[derive(Debug, Clone)]
enum Case {
    Manifest(String, String, String),
    Header(String),
    Key(String),
    Sealed(String),
}

fn cases() -> impl Strategy<Value = Case> {
    let header_seeds = select(vec![
        "gzip, deflate, br;q=0.5, *;q=0".to_owned(),
        "\"0123456789abcdef-br\", W/\"x\", *".to_owned(),
        "preview-r1.example.com:7676".to_owned(),
        "a=b; __Host-fastgate_session=v1.k1.AAAA; fastgate_csrf=t".to_owned(),
    ]);
    let key_seeds = select(vec![
        "active".to_owned(),
        "releases/r1".to_owned(),
        format!("files/{}", sha256_hex(b"x")),
    ]);
    prop_oneof![
        3 => (
            mutations_of(Just(manifest_text()), text_char(), 6),
            mutations_of(select(vec!["/".to_owned(), "/a%20b/".to_owned(), "/assets/app.3f2a9c1b.js".to_owned()]), text_char(), 3),
            mutations_of(header_seeds.clone(), text_char(), 4),
        )
            .prop_map(|(m, p, h)| Case::Manifest(m, p, h)),
        2 => mutations_of(header_seeds, text_char(), 6).prop_map(Case::Header),
        2 => mutations_of(key_seeds, text_char(), 3).prop_map(Case::Key),
        2 => mutations_of(Just(sealed()), text_char(), 3).prop_map(Case::Sealed),
    ]
}

pub fn run(budget: Budget) {
    harness::run("release", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    match case {
        Case::Manifest(text, path, header) => check_manifest(&text, &path, &header),
        Case::Header(value) => check_header(&value),
        Case::Key(key) => {
            if let Ok(parsed) = StoreKey::parse(&key) {
                prop_assert_eq!(parsed.as_key(), key.clone());
            }
            let _ = parse_request("PUT", &format!("/__fastgate/kv/{key}"), Some(&key));
            Ok(())
        }
        Case::Sealed(value) => {
            let keys = SessionKeys::parse(KEYS).unwrap();
            let opened = keys.open(&value, 1);
            prop_assert_eq!(opened.is_ok(), value == sealed(), "{:?}", value);
            Ok(())
        }
    }
}

fn check_manifest(text: &str, path: &str, header: &str) -> TestCaseResult {
    let Ok(manifest) = Manifest::parse(text.as_bytes()) else {
        return Ok(());
    };
    prop_assert!(manifest.validate().is_ok());
    for p in manifest.files.keys() {
        let normal = fastgate::path::normalize(p);
        prop_assert_eq!(normal.as_deref(), Ok(p.as_str()));
    }
    let policy = StaticPolicy {
        spa_fallback: Some("/index.html".into()),
        cache_control: Vec::new(),
        html_max_age_s: 0,
        content_security_policy: String::new(),
    };
    let req = StaticRequest {
        method: "GET",
        accept_encoding: Some(header),
        if_none_match: Some(header),
    };
    if let StaticAnswer::File { key, .. } = answer(&manifest, path, req, &policy) {
        prop_assert!(manifest.references().contains(&key), "{key} for {path:?}");
    }
    Ok(())
}

fn check_header(value: &str) -> TestCaseResult {
    for available in [&[][..], &[Coding::Br], &[Coding::Br, Coding::Gzip]] {
        if let Some(c) = negotiate(Some(value), available).coding {
            prop_assert!(available.contains(&c));
        }
    }
    if let Some(name) = preview_name(Some(value)) {
        prop_assert!(is_valid_release_name(&name), "{name:?} from {value:?}");
    }
    let cookie = find_cookie(Some(value), "fastgate_csrf");
    let facts = CsrfFacts {
        method: "POST",
        sec_fetch_site: Some(value),
        origin: Some(value),
        host: Some(value),
        tls: false,
        token: cookie.map(str::as_bytes),
        expected: "t",
    };
    let _ = check_csrf(&facts);
    Ok(())
}
