//! Test support shared by the cache's files (a policy from JSON, the `storability` shorthand),
//! and the robustness test that drives every entry point with the same random inputs.

use super::*;
use crate::http::parse_http_date;
use crate::test_rng::Rng;

pub(super) fn policy(json: &str) -> CachePolicy {
    let p: CachePolicy = serde_json::from_str(json).unwrap();
    p.validate().unwrap();
    p
}

pub(super) fn public() -> CachePolicy {
    policy(r#"{"mode":"public"}"#)
}

pub(super) fn yes(s: Storable) -> (u64, u64, u64, u64, bool) {
    match s {
        Storable::Yes {
            ttl_s,
            stale_while_revalidate_s,
            stale_if_error_s,
            initial_age_s,
            shareable_with_authorization,
        } => (
            ttl_s,
            stale_while_revalidate_s,
            stale_if_error_s,
            initial_age_s,
            shareable_with_authorization,
        ),
        Storable::No(r) => panic!("not stored: {r}"),
    }
}

pub(super) fn store(headers: &[(&str, &str)]) -> Storable {
    storability(200, headers, &public(), false, 1_000_000)
}

impl Rng {
    fn text(&mut self) -> String {
        const PIECES: &[&[u8]] = &[
            b"max-age",
            b"s-maxage",
            b"no-store",
            b"private",
            b"no-cache",
            b"stale-if-error",
            b"=",
            b"\"",
            b"\\",
            b",",
            b" ",
            b"\t",
            b"99999999999999999999",
            b"60",
            b"-",
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, ",
            b"Nov",
            b"  6 ",
            b":",
            b"GMT",
            b"{sub}",
            b"&",
            b"utm_source",
            b"\xff",
            b"\xc3\xa9",
            b"\x00",
            b"W/",
        ];
        let n = (self.next() % 12) as usize;
        let raw: Vec<u8> = (0..n)
            .flat_map(|_| {
                PIECES[(self.next() % PIECES.len() as u64) as usize]
                    .iter()
                    .copied()
            })
            .collect();
        String::from_utf8_lossy(&raw).into_owned()
    }
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let settings = CacheSettings::default();
    let p = policy(
        r#"{"mode":"public","stale_while_revalidate_s":5,"vary":["x"],"max_object_bytes":50}"#,
    );
    for _ in 0..20_000 {
        let (a_owned, b_owned) = (rng.text(), rng.text());
        let (a, b) = (a_owned.as_str(), b_owned.as_str());
        let cc = CacheControl::parse(a);
        if let Some(m) = cc.max_age {
            assert!(m <= DELTA_SECONDS_CAP);
        }
        let _ = parse_http_date(a);
        let _ = parse_http_date(b);
        let headers = [
            ("cache-control", a),
            ("expires", b),
            ("date", a),
            ("age", b),
            ("vary", b),
            ("content-length", a),
            ("etag", b),
        ];
        let status = [200, 204, 206, 404, 500][(rng.next() % 5) as usize];
        let _ = storability(
            status,
            &headers,
            &p,
            rng.next().is_multiple_of(2),
            rng.next(),
        );
        let _ = request_cacheability(a, rng.next().is_multiple_of(2), CacheMode::Public, Some(b));
        let k = cache_key(a, b, Some(a), &[(b, Some(a))], Some(b), &settings);
        let _ = key_hex(&k);
        let _ = normalize_query(Some(b), &settings);
        for key in surrogate_keys(&[a, b], Some(a)) {
            assert!(is_valid_surrogate_key(&key), "{key:?}");
        }
        let _ = validate_templates(&[a], true);
        let _ = conditional_headers(&headers);
        let _ = not_modified_matches(&headers, &headers[..3]);
        let _ = merge_304(&headers, &headers[2..]);
        let f = freshness(rng.next(), rng.next(), rng.next(), rng.next());
        let status_value = cache_status(
            CacheOutcome::Forwarded {
                fwd: Fwd::Miss,
                stored: rng.next().is_multiple_of(2),
                fwd_status: Some(rng.next() as u16),
            },
            f.ttl_left_s(),
            Some(a),
        );
        assert!(
            status_value.bytes().all(|c| (b' '..=b'~').contains(&c)),
            "{status_value:?}"
        );
        let _ = age_header(rng.next());
    }
}
