//! The cache key. It must separate every pair of requests that could get different answers
//! (method, rewritten path, query, the route's `vary` inputs, the user for `per_user`), and
//! merge the spellings that cannot (parameter order, tracking parameters). No
//! client-controlled value appears in it in the clear: it is a hash.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::policy::CacheSettings;

/// Domain tag at the start of every key's hash input; bump it to invalidate every key.
const KEY_VERSION: &[u8] = b"fastgate-cache-v1\0";

/// The parameter name of a raw `name=value` pair.
fn param_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(n, _)| n)
}

/// The query's pairs as they enter the key: empty pairs and the settings' tracking parameters
/// dropped, then sorted by name. The sort is stable, so values of a repeated parameter keep
/// their order: `a=1&a=2` and `a=2&a=1` may mean different lists to the origin, while the
/// order of different names never matters to it. Pairs are compared raw (no percent-decoding):
/// two spellings of one query only cost a miss, never a wrong answer.
fn normalized_pairs<'q>(query: Option<&'q str>, settings: &CacheSettings) -> Vec<&'q str> {
    let mut pairs: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !settings.drops(param_name(p)))
        .collect();
    pairs.sort_by(|a, b| param_name(a).cmp(param_name(b)));
    pairs
}

/// The normalised query: empty pairs and tracking parameters dropped, sorted by name
/// (`normalized_pairs` says why); `None` when nothing is left.
pub fn normalize_query(query: Option<&str>, settings: &CacheSettings) -> Option<String> {
    let pairs = normalized_pairs(query, settings);
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

/// Hashes a length-prefixed field, so `"a" + "bc"` and `"ab" + "c"` never collide.
fn hash_field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Hashes an ASCII-lower-cased, length-prefixed field without allocating.
fn hash_field_lower(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len()) {
        let out = &mut buf[..chunk.len()];
        for (o, b) in out.iter_mut().zip(chunk) {
            *o = b.to_ascii_lowercase();
        }
        h.update(&*out);
    }
}

/// Hashes an optional field: a presence tag, then the field (absent ≠ empty).
fn hash_opt(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            hash_field(h, v);
        }
    }
}

/// Hashes the normalised query as an optional field: the same bytes as
/// `hash_opt(normalize_query(..))`, without building the string.
fn hash_query(h: &mut Sha256, pairs: &[&str]) {
    if pairs.is_empty() {
        h.update([0u8]);
        return;
    }
    h.update([1u8]);
    let len = pairs.iter().map(|p| p.len()).sum::<usize>() + pairs.len() - 1;
    h.update((len as u64).to_be_bytes());
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            h.update(b"&");
        }
        h.update(p.as_bytes());
    }
}

/// The cache key: SHA-256 over a versioned, length-prefixed encoding of
///
/// - the method (case-sensitive, RFC 9110 §9.1) and the *rewritten* path, as sent to the origin;
/// - the normalised query ([`normalize_query`]; absent and empty are the same);
/// - each `vary` input in the route's order: its lower-cased name and its value (OWS-trimmed;
///   an absent header is distinct from an empty one);
/// - the partition: shared, or the SHA-256 of the verified caller for `per_user` routes: its
///   [`user_partition`] (issuer and subject, so two issuers' same `sub` never share an
///   entry). It is hashed before it enters the key material; callers of a `per_user` route
///   must pass `Some` (see [`request_cacheability`](super::request_cacheability), which
///   bypasses the cache without credentials).
///
/// HEAD shares GET's entry (RFC 9110 §9.3.2: the same header fields, no content), so a
/// stored GET answers a HEAD; the adapter never fills an entry from a HEAD's answer, which
/// has no body to serve a GET with.
/// The host is not in the key: when a service answers several hosts with different content
/// under one path, add `host` to the route's `vary`.
pub fn cache_key(
    method: &str,
    path: &str,
    query: Option<&str>,
    vary_values: &[(&str, Option<&str>)],
    per_user_partition: Option<&str>,
    settings: &CacheSettings,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(KEY_VERSION);
    let method = if method == "HEAD" { "GET" } else { method };
    hash_field(&mut h, method.as_bytes());
    hash_field(&mut h, path.as_bytes());
    hash_query(&mut h, &normalized_pairs(query, settings));
    h.update((vary_values.len() as u64).to_be_bytes());
    for (name, value) in vary_values {
        hash_field_lower(&mut h, name.as_bytes());
        hash_opt(
            &mut h,
            value.map(|v| v.trim_matches([' ', '\t']).as_bytes()),
        );
    }
    match per_user_partition {
        None => h.update([0u8]),
        Some(partition) => {
            h.update([1u8]);
            h.update(Sha256::digest(partition.as_bytes()));
        }
    }
    h.finalize().into()
}

/// Whose copy a `per_user` entry is: the verified issuer and subject, encoded without
/// ambiguity (the issuer's length in decimal, `:`, the issuer, then the subject), so
/// (`ab`, `c`) and (`a`, `bc`) never meet, and neither do two issuers' same `sub`: a
/// subject is only unique within its issuer (RFC 7519 §4.1.2).
pub fn user_partition(iss: &str, sub: &str) -> String {
    format!("{}:{iss}{sub}", iss.len())
}

/// Lower-case hex of a key (for logs and for Core Cache APIs that want text).
pub fn key_hex(key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for b in key {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        path: &str,
        query: Option<&str>,
        vary: &[(&str, Option<&str>)],
        sub: Option<&str>,
    ) -> [u8; 32] {
        cache_key("GET", path, query, vary, sub, &CacheSettings::default())
    }

    #[test]
    fn query_normalisation() {
        let s = CacheSettings::default();
        let n = |q: &str| normalize_query(Some(q), &s);
        assert_eq!(n("b=2&a=1"), Some("a=1&b=2".into()));
        assert_eq!(
            n("utm_source=x&b=2&&gclid=z&a=1&fbclid=q"),
            Some("a=1&b=2".into())
        );
        assert_eq!(n(""), None);
        assert_eq!(n("&&"), None);
        assert_eq!(n("utm_source=news&utm_medium=mail"), None);
        assert_eq!(normalize_query(None, &s), None);
        // Same-name values keep their order; different names are sorted.
        assert_eq!(n("t=2&s=1&t=1"), Some("s=1&t=2&t=1".into()));
        // `a` and `a=` stay distinct; names compare exactly.
        assert_eq!(n("a"), Some("a".into()));
        assert_eq!(n("a="), Some("a=".into()));
        assert_eq!(n("UTM_SOURCE=x"), Some("UTM_SOURCE=x".into()));
    }

    #[test]
    fn key_ignores_tracking_and_order_but_not_values() {
        let base = key("/api/items", Some("a=1&b=2"), &[], None);
        assert_eq!(base, key("/api/items", Some("b=2&a=1"), &[], None));
        assert_eq!(
            base,
            key(
                "/api/items",
                Some("utm_campaign=spring&b=2&fbclid=x&a=1&utm_source=y"),
                &[],
                None
            )
        );
        assert_ne!(base, key("/api/items", Some("a=1&b=3"), &[], None));
        assert_ne!(base, key("/api/items", Some("a=1"), &[], None));
        assert_ne!(base, key("/api/item", Some("a=1&b=2"), &[], None));
        // An empty query is no query.
        let none = key("/api/items", None, &[], None);
        assert_eq!(none, key("/api/items", Some(""), &[], None));
        assert_eq!(none, key("/api/items", Some("utm_source=x"), &[], None));
        assert_ne!(none, base);
        // The method counts, but HEAD is read from GET's entry.
        let s = CacheSettings::default();
        assert_eq!(
            cache_key("HEAD", "/api/items", None, &[], None, &s),
            cache_key("GET", "/api/items", None, &[], None, &s)
        );
        assert_ne!(
            cache_key("get", "/api/items", None, &[], None, &s),
            cache_key("GET", "/api/items", None, &[], None, &s)
        );
        // The settings' list is what is dropped.
        let custom = CacheSettings {
            drop_query_params: vec!["ref".into()],
        };
        assert_eq!(
            cache_key("GET", "/x", Some("ref=a&k=1"), &[], None, &custom),
            cache_key("GET", "/x", Some("k=1"), &[], None, &custom)
        );
        assert_ne!(
            cache_key("GET", "/x", Some("utm_source=a"), &[], None, &custom),
            cache_key("GET", "/x", None, &[], None, &custom)
        );
    }

    #[test]
    fn key_encoding_is_unambiguous() {
        // Field boundaries: path vs query, and vary name vs value.
        assert_ne!(
            key("/ab", Some("c"), &[], None),
            key("/a", Some("bc"), &[], None)
        );
        assert_ne!(
            key("/", None, &[("a", Some("bc"))], None),
            key("/", None, &[("ab", Some("c"))], None)
        );
        // Absent ≠ empty header value; vary inputs are positional pairs.
        assert_ne!(
            key("/", None, &[("x", None)], None),
            key("/", None, &[("x", Some(""))], None)
        );
        assert_ne!(
            key("/", None, &[("x", None)], None),
            key("/", None, &[], None)
        );
        // Header names are case-insensitive, values trimmed but otherwise exact.
        assert_eq!(
            key("/", None, &[("Accept-Language", Some(" de "))], None),
            key("/", None, &[("accept-language", Some("de"))], None)
        );
        assert_ne!(
            key("/", None, &[("accept-language", Some("de"))], None),
            key("/", None, &[("accept-language", Some("DE"))], None)
        );
        assert_ne!(
            key("/", None, &[("flags", Some("a=1"))], None),
            key("/", None, &[("flags", Some("a=0"))], None)
        );
        // A long vary name (beyond the lower-casing buffer) lower-cases too.
        let long_upper = "X".repeat(200);
        let long_lower = "x".repeat(200);
        assert_eq!(
            key("/", None, &[(long_upper.as_str(), Some("v"))], None),
            key("/", None, &[(long_lower.as_str(), Some("v"))], None)
        );
        assert_eq!(key_hex(&key("/", None, &[], None)).len(), 64);
    }

    #[test]
    fn per_user_keys_differ_per_subject_and_hide_it() {
        let alice = key("/api/user/profile", None, &[], Some("alice"));
        let bob = key("/api/user/profile", None, &[], Some("bob"));
        let shared = key("/api/user/profile", None, &[], None);
        assert_ne!(alice, bob);
        assert_ne!(alice, shared);
        assert_ne!(key("/api/user/profile", None, &[], Some("")), shared);
        assert_eq!(alice, key("/api/user/profile", None, &[], Some("alice")));
        let hex = key_hex(&alice);
        assert!(!hex.contains("alice"));
        assert!(!alice.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn per_user_partitions_are_issuer_and_subject_unambiguously() {
        let of = |iss: &str, sub: &str| {
            let partition = user_partition(iss, sub);
            key("/api/user/profile", None, &[], Some(partition.as_str()))
        };
        let alice = of("https://a.example", "alice");
        assert_eq!(alice, of("https://a.example", "alice"));
        assert_ne!(
            alice,
            of("https://b.example", "alice"),
            "same sub, other issuer"
        );
        assert_ne!(of("ab", "c"), of("a", "bc"));
        assert_ne!(of("", "1:ab"), of("1:a", "b"));
        assert_ne!(alice, key("/api/user/profile", None, &[], Some("alice")));
        assert_eq!(user_partition("iss", "sub"), "3:isssub");
    }
}
