//! Hop-by-hop header fields (RFC 9110 §7.6.1): they describe one connection, so a proxy
//! neither forwards them nor stores them. One list, used by the sanitizer (requests) and
//! the cache (stored and 304-updated responses).

/// The fields that are hop-by-hop by definition, lower-cased. Fields named in a message's
/// own `Connection` header are hop-by-hop too; callers add those.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (any case) is hop-by-hop by definition.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}
