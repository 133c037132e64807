//! Revalidation: a stale copy with a validator is cheaper to confirm than to fetch again.
//! The request is made conditional (RFC 9111 §4.3.1), and a 304 that refers to the stored
//! response freshens its header fields (§4.3.4, §3.2).

use crate::http::{is_hop_by_hop, parse_http_date};

/// The first field named `name` (any case), OWS-trimmed.
fn first_header<'a, N: AsRef<str>, V: AsRef<str>>(
    headers: &'a [(N, V)],
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref().trim_matches([' ', '\t']))
}

/// Whether two entity-tags match by the weak comparison (RFC 9110 §8.8.3.2): the same
/// opaque tag, whether or not either is marked `W/`.
pub(super) fn weak_match(a: &str, b: &str) -> bool {
    fn opaque(t: &str) -> &str {
        let t = t.trim_matches([' ', '\t']);
        t.strip_prefix("W/").unwrap_or(t)
    }
    opaque(a) == opaque(b)
}

/// An entity-tag (RFC 9110 §8.8.3): optional `W/`, then a quoted string of etagc.
fn is_entity_tag(v: &str) -> bool {
    let opaque = v.strip_prefix("W/").unwrap_or(v);
    opaque.len() >= 2
        && opaque.starts_with('"')
        && opaque.ends_with('"')
        && opaque[1..opaque.len() - 1]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
}

/// The headers that make a revalidation conditional (RFC 9111 §4.3.1): `If-None-Match` from
/// a well-formed `ETag`, `If-Modified-Since` from a valid `Last-Modified` date. Both are sent
/// when both exist; the origin evaluates `If-None-Match` first (RFC 9110 §13.2.2).
pub fn conditional_headers<N: AsRef<str>, V: AsRef<str>>(
    stored_headers: &[(N, V)],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(2);
    if let Some(etag) = first_header(stored_headers, "etag").filter(|e| is_entity_tag(e)) {
        out.push(("if-none-match", etag.to_owned()));
    }
    if let Some(lm) =
        first_header(stored_headers, "last-modified").filter(|d| parse_http_date(d).is_some())
    {
        out.push(("if-modified-since", lm.to_owned()));
    }
    out
}

/// Whether a 304 refers to the stored response (§4.3.4): when it carries an `ETag`, the stored
/// one must match it (weak comparison); else when it carries `Last-Modified`, the stored one
/// must be the same; a 304 with no validator updates our single stored response. When this is
/// false, do not merge: fetch the resource unconditionally.
pub fn not_modified_matches<N: AsRef<str>, V: AsRef<str>, M: AsRef<str>, W: AsRef<str>>(
    stored_headers: &[(N, V)],
    not_modified_headers: &[(M, W)],
) -> bool {
    if let Some(new) = first_header(not_modified_headers, "etag") {
        return first_header(stored_headers, "etag").is_some_and(|old| weak_match(old, new));
    }
    if let Some(new) = first_header(not_modified_headers, "last-modified") {
        return first_header(stored_headers, "last-modified") == Some(new);
    }
    true
}

/// Header fields a 304 never updates in the stored response besides the hop-by-hop ones
/// (§3.1): `Content-Length` (§3.2), ones the stored body depends on (`Content-Encoding`,
/// `Content-Range`), `Set-Cookie` (never stored in a shared cache) and `Age` (the cache
/// generates it when serving).
const NOT_UPDATED: [&str; 5] = [
    "content-length",
    "content-encoding",
    "content-range",
    "set-cookie",
    "age",
];

/// Whether a 304's field leaves the stored one alone (see [`NOT_UPDATED`]).
fn is_not_updated(name: &str) -> bool {
    is_hop_by_hop(name) || NOT_UPDATED.iter().any(|x| name.eq_ignore_ascii_case(x))
}

/// Freshens stored header fields with a 304's (RFC 9111 §4.3.4, §3.2): every field the 304
/// carries replaces all stored fields of that name, except hop-by-hop ones, the fields its
/// `Connection` header names, and those the stored body or the cache itself owns
/// (`Content-Length`, `Content-Encoding`, `Content-Range`, `Set-Cookie`, `Age`). Call
/// [`not_modified_matches`] first, and [`storability`](super::storability()) on the result
/// for the new freshness.
pub fn merge_304<N: AsRef<str>, V: AsRef<str>, M: AsRef<str>, W: AsRef<str>>(
    stored_headers: &[(N, V)],
    not_modified_headers: &[(M, W)],
) -> Vec<(String, String)> {
    let connection_listed = |name: &str| {
        not_modified_headers
            .iter()
            .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.as_ref().split(','))
            .any(|c| c.trim_matches([' ', '\t']).eq_ignore_ascii_case(name))
    };
    let updates: Vec<(&str, &str)> = not_modified_headers
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .filter(|(n, _)| !is_not_updated(n) && !connection_listed(n))
        .collect();
    let mut out: Vec<(String, String)> = Vec::with_capacity(stored_headers.len() + updates.len());
    for (n, v) in stored_headers {
        let n = n.as_ref();
        if !updates.iter().any(|(u, _)| u.eq_ignore_ascii_case(n)) {
            out.push((n.to_owned(), v.as_ref().to_owned()));
        }
    }
    out.extend(
        updates
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::{store, yes};

    #[test]
    fn conditional_request_headers() {
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
        let stored = [
            ("content-type", "application/json"),
            ("ETag", "W/\"v7\""),
            ("Last-Modified", lm),
        ];
        assert_eq!(
            conditional_headers(&stored),
            vec![
                ("if-none-match", "W/\"v7\"".to_owned()),
                ("if-modified-since", lm.to_owned())
            ]
        );
        assert!(conditional_headers::<&str, &str>(&[]).is_empty());
        // Malformed validators are not sent.
        let bad = [("etag", "v7"), ("last-modified", "yesterday")];
        assert!(conditional_headers(&bad).is_empty());
        let owned = vec![("etag".to_owned(), "\"x\"".to_owned())];
        assert_eq!(conditional_headers(&owned).len(), 1);
    }

    #[test]
    fn merging_a_304() {
        let stored = [
            ("Content-Type", "application/json"),
            ("Content-Length", "120"),
            ("Cache-Control", "max-age=60"),
            ("ETag", "\"v1\""),
            ("X-A", "1"),
            ("x-a", "2"),
            ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ];
        let not_modified = [
            ("cache-control", "max-age=120"),
            ("Date", "Sun, 06 Nov 1994 09:00:00 GMT"),
            ("Content-Length", "0"),
            ("Set-Cookie", "s=1"),
            ("Age", "3"),
            ("Connection", "x-hop"),
            ("x-hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("X-A", "3"),
            ("ETag", "\"v1\""),
        ];
        assert!(not_modified_matches(&stored, &not_modified));
        let merged = merge_304(&stored, &not_modified);
        let get = |n: &str| -> Vec<&str> {
            merged
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("cache-control"), ["max-age=120"]);
        assert_eq!(get("date"), ["Sun, 06 Nov 1994 09:00:00 GMT"]);
        assert_eq!(get("content-length"), ["120"]);
        assert_eq!(get("x-a"), ["3"]);
        assert_eq!(get("content-type"), ["application/json"]);
        assert_eq!(get("etag"), ["\"v1\""]);
        for gone in [
            "set-cookie",
            "age",
            "connection",
            "x-hop",
            "transfer-encoding",
        ] {
            assert!(get(gone).is_empty(), "{gone}");
        }
        // The merged headers give the new freshness.
        let view: Vec<(&str, &str)> = merged
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(yes(store(&view)).0, 120);
    }

    #[test]
    fn which_304_applies() {
        let stored = [("etag", "\"v1\""), ("last-modified", "A")];
        assert!(not_modified_matches(&stored, &[("ETag", "\"v1\"")]));
        assert!(not_modified_matches(&stored, &[("ETag", "W/\"v1\"")]));
        assert!(!not_modified_matches(&stored, &[("ETag", "\"v2\"")]));
        assert!(not_modified_matches(&stored, &[("Last-Modified", "A")]));
        assert!(!not_modified_matches(&stored, &[("Last-Modified", "B")]));
        assert!(not_modified_matches::<&str, &str, &str, &str>(&stored, &[]));
        assert!(!not_modified_matches(&[("x", "y")], &[("etag", "\"v1\"")]));
    }
}
