//! A stored entry's metadata, and what a client is told about a stored answer. The entry
//! keeps the response head and the lifetimes decided at store time, so a later lookup can
//! classify the copy without re-reading the origin's headers; it never keeps what described
//! one exchange rather than the resource.

use serde::{Deserialize, Serialize};

use super::revalidate::{merge_304, weak_match};
use crate::http::{is_hop_by_hop, parse_http_date};

/// What an entry carries besides its body, kept as the Core Cache's user metadata: the
/// response head and the lifetimes [`storability`](super::storability()) computed, so a later
/// lookup can classify the copy with [`freshness`](super::freshness()) without re-reading
/// the origin's headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMeta {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub ttl_s: u64,
    pub swr_s: u64,
    pub sie_s: u64,
    /// May answer a request that carries `Authorization` on a public route (§3.5).
    pub shareable: bool,
    /// A small text body, kept with the head ([`StoredMeta::with_inline_body`]) so that a
    /// hit answers from the metadata alone, without opening and reading the entry's body.
    /// The entry's body is stored as well: it stays the record (length, ranges, HEAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// The largest body kept inline with the metadata: API answers are mostly this small, and
/// the metadata stays far below what the platform allows for it.
pub const INLINE_BODY_MAX: usize = 2048;

/// Response headers that describe one exchange rather than the resource, so they are never
/// stored, besides the hop-by-hop ones: `Age` (recomputed on every hit), and the per-request
/// fields the edge or the origin sets for one request (its id, timings, which origin
/// answered).
const NOT_STORED: [&str; 7] = [
    "age",
    "set-cookie",
    "x-request-id",
    "server-timing",
    "cache-status",
    "fastgate-config",
    "content-length",
];

/// The field names a response's `Connection` lists (RFC 9110 §7.6.1): they describe this
/// connection only, so they are neither stored nor replayed (RFC 9111 §3.1).
fn connection_options<'h>(headers: impl Iterator<Item = (&'h str, &'h str)>) -> Vec<&'h str> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
        .collect()
}

/// How long past its freshness an entry is kept for revalidation (see `stale_window_s`).
const MIN_REVALIDATION_KEEP_S: u64 = 60;
const MAX_REVALIDATION_KEEP_S: u64 = 86_400;

/// Whether a response field is left out of the entry (see [`NOT_STORED`]).
fn is_not_stored(name: &str) -> bool {
    is_hop_by_hop(name) || NOT_STORED.iter().any(|x| name.eq_ignore_ascii_case(x))
}

impl StoredMeta {
    /// The entry for a response [`storability`](super::storability()) said yes to.
    pub fn new<N: AsRef<str>, V: AsRef<str>>(
        status: u16,
        headers: &[(N, V)],
        ttl_s: u64,
        swr_s: u64,
        sie_s: u64,
        shareable: bool,
    ) -> Self {
        let pairs = || headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()));
        let connection = connection_options(pairs());
        let headers = pairs()
            .filter(|(n, _)| !is_not_stored(n))
            .filter(|(n, _)| !connection.iter().any(|c| c.eq_ignore_ascii_case(n)))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
            .collect();
        StoredMeta {
            status,
            headers,
            ttl_s,
            swr_s,
            sie_s,
            shareable,
            body: None,
        }
    }

    /// The entry with `body` kept inline, when it is text and at most [`INLINE_BODY_MAX`]
    /// bytes; otherwise unchanged (a hit then reads the entry's body).
    pub fn with_inline_body(mut self, body: &[u8]) -> Self {
        if body.len() <= INLINE_BODY_MAX {
            self.body = std::str::from_utf8(body).ok().map(str::to_owned);
        }
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `None` for metadata this version cannot read (then the entry is treated as a miss).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// How long the Core Cache must keep the entry after its freshness: the longer stale
    /// window, since both stale modes need the copy after it stops being fresh; and, for
    /// every entry, as long again as it was fresh (at least a minute, at most a day). A
    /// stale copy kept that long is revalidated with a conditional request (RFC 9111 §4.3)
    /// instead of being fetched whole, and can answer when no origin can be reached at all
    /// (§4.2.4). Serving stale otherwise is still decided by the windows alone
    /// ([`freshness`](super::freshness())).
    pub fn stale_window_s(&self) -> u64 {
        let kept = self
            .ttl_s
            .clamp(MIN_REVALIDATION_KEEP_S, MAX_REVALIDATION_KEEP_S);
        self.swr_s.max(self.sie_s).max(kept)
    }

    /// The entry after a 304 (§4.3.4): updated header fields, the new lifetimes.
    /// The body is the stored one: a 304 does not change it (§4.3.4).
    pub fn refreshed(&self, not_modified_headers: &[(&str, &str)], fresh: &StoredMeta) -> Self {
        let merged = merge_304(&self.headers, not_modified_headers);
        StoredMeta {
            body: self.body.clone(),
            ..StoredMeta::new(
                self.status,
                &merged,
                fresh.ttl_s,
                fresh.swr_s,
                fresh.sie_s,
                fresh.shareable,
            )
        }
    }
}

/// The `Cache-Control` a client gets for a `per_user` response: `private`, so no cache
/// between the edge and the browser shares it, and a `max-age` of what is left of its
/// freshness here. Public responses keep the origin's own field.
pub fn per_user_client_cache_control(ttl_left_s: i64) -> String {
    format!("private, max-age={}", ttl_left_s.max(0))
}

impl StoredMeta {
    /// Whether a client's conditional GET or HEAD can be answered 304 from this entry
    /// (RFC 9110 §13.2.2): `If-None-Match` against the stored `ETag`; only without it,
    /// `If-Modified-Since` against the stored `Last-Modified`, else its `Date` (RFC 9111
    /// §4.3.2; an invalid date is ignored). Only a 2xx entry is ever answered 304.
    pub fn not_modified_for(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if !(200..300).contains(&self.status) {
            return false;
        }
        let field = |name: &str| {
            let found = self.headers.iter().find(|(n, _)| n == name);
            found.map(|(_, v)| v.as_str())
        };
        if if_none_match.is_some() {
            return client_not_modified(if_none_match, field("etag"));
        }
        let since = if_modified_since.and_then(parse_http_date);
        let modified = field("last-modified")
            .or_else(|| field("date"))
            .and_then(parse_http_date);
        since
            .zip(modified)
            .is_some_and(|(since, modified)| modified <= since)
    }
}

/// Whether a client's `If-None-Match` matches the stored `ETag` (weak comparison, RFC 9110
/// §13.1.2), so a hit can be answered 304 without a body.
pub fn client_not_modified(if_none_match: Option<&str>, stored_etag: Option<&str>) -> bool {
    let (Some(inm), Some(etag)) = (if_none_match, stored_etag) else {
        return false;
    };
    inm.split(',')
        .map(str::trim)
        .any(|t| t == "*" || (!t.is_empty() && weak_match(t, etag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_entries_keep_the_resource_headers_only() {
        let meta = StoredMeta::new(
            200,
            &[
                ("Content-Type", "application/json"),
                ("ETag", "\"a\""),
                ("X-Request-Id", "r1"),
                ("Age", "4"),
                ("Connection", "close, X-Hop, , Keep-Alive"),
                ("x-hop", "only for this connection"),
                ("Content-Length", "12"),
            ],
            60,
            5,
            10,
            false,
        );
        assert_eq!(
            meta.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("etag".to_owned(), "\"a\"".to_owned())
            ]
        );
        // Kept for revalidation as long again as it was fresh (at least a minute, at most a
        // day), or for its stale windows when they are longer.
        assert_eq!(meta.stale_window_s(), 60);
        let long = StoredMeta {
            ttl_s: 7_200,
            ..meta.clone()
        };
        assert_eq!(long.stale_window_s(), 7_200);
        let huge = StoredMeta {
            ttl_s: 10_000_000,
            ..meta.clone()
        };
        assert_eq!(huge.stale_window_s(), 86_400);
        let windows = StoredMeta {
            ttl_s: 5,
            sie_s: 600,
            ..meta.clone()
        };
        assert_eq!(windows.stale_window_s(), 600);
        assert_eq!(StoredMeta::decode(&meta.encode()), Some(meta.clone()));
        assert_eq!(StoredMeta::decode(b"not json"), None);
        let fresh = StoredMeta::new(200, &[("x", "y")], 120, 0, 0, true);
        let refreshed = meta.refreshed(
            &[("ETag", "\"a\""), ("Cache-Control", "max-age=120")],
            &fresh,
        );
        assert_eq!(refreshed.ttl_s, 120);
        assert!(refreshed.shareable);
        assert!(refreshed
            .headers
            .contains(&("cache-control".to_owned(), "max-age=120".to_owned())));
        assert!(refreshed
            .headers
            .contains(&("content-type".to_owned(), "application/json".to_owned())));
    }

    #[test]
    fn a_small_text_body_is_kept_inline_and_survives_a_refresh() {
        let meta = StoredMeta::new(200, &[("etag", "\"a\"")], 60, 0, 0, false);
        let inline = meta.clone().with_inline_body(b"{\"id\":1}");
        assert_eq!(inline.body.as_deref(), Some("{\"id\":1}"));
        assert_eq!(StoredMeta::decode(&inline.encode()), Some(inline.clone()));
        // A 304 changes the head and the lifetimes, never the body.
        let fresh = StoredMeta::new(200, &[("x", "y")], 120, 0, 0, false);
        let refreshed = inline.refreshed(&[("etag", "\"a\"")], &fresh);
        assert_eq!(refreshed.body, inline.body);
        // Bytes that are not text, and bodies over the limit, are read from the entry.
        assert_eq!(meta.clone().with_inline_body(&[0xff, 0xfe]).body, None);
        let big = vec![b'a'; INLINE_BODY_MAX + 1];
        assert_eq!(meta.clone().with_inline_body(&big).body, None);
        let max = vec![b'a'; INLINE_BODY_MAX];
        assert!(meta.clone().with_inline_body(&max).body.is_some());
        // Metadata written before the field existed still reads.
        let old = br#"{"status":200,"headers":[],"ttl_s":1,"swr_s":0,"sie_s":0,"shareable":false}"#;
        assert_eq!(StoredMeta::decode(old).map(|m| m.body), Some(None));
    }

    #[test]
    fn client_conditionals_and_private_answers() {
        assert!(client_not_modified(Some("\"a\""), Some("\"a\"")));
        assert!(client_not_modified(Some("W/\"a\", \"b\""), Some("\"a\"")));
        assert!(client_not_modified(Some("*"), Some("\"a\"")));
        assert!(!client_not_modified(Some("\"b\""), Some("\"a\"")));
        assert!(!client_not_modified(None, Some("\"a\"")));
        assert!(!client_not_modified(Some("\"a\""), None));
        // If-Modified-Since, only without If-None-Match, against Last-Modified or Date.
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
        let meta = |headers: &[(&str, &str)]| StoredMeta::new(200, headers, 60, 0, 0, false);
        let with_lm = meta(&[("Last-Modified", lm), ("ETag", "\"a\"")]);
        assert!(with_lm.not_modified_for(None, Some(lm)));
        assert!(with_lm.not_modified_for(None, Some("Mon, 07 Nov 1994 00:00:00 GMT")));
        assert!(!with_lm.not_modified_for(None, Some("Sat, 05 Nov 1994 00:00:00 GMT")));
        assert!(!with_lm.not_modified_for(None, Some("garbage")));
        assert!(
            !with_lm.not_modified_for(Some("\"b\""), Some(lm)),
            "If-None-Match decides"
        );
        assert!(meta(&[("Date", lm)]).not_modified_for(None, Some(lm)));
        assert!(!meta(&[]).not_modified_for(None, Some(lm)));
        let not_ok = StoredMeta::new(404, &[("Last-Modified", lm)], 60, 0, 0, false);
        assert!(!not_ok.not_modified_for(None, Some(lm)));
        assert_eq!(per_user_client_cache_control(42), "private, max-age=42");
        assert_eq!(per_user_client_cache_control(-3), "private, max-age=0");
    }
}
