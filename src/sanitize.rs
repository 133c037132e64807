//! The sanitize phase: decide which client headers never reach the origin and which
//! forwarding headers we (re)build.
//!
//! Dropped: hop-by-hop headers (RFC 9110 §7.6.1, plus any named in `Connection`), and every
//! header whose meaning we own: `Fastgate-*`/`X-Fastgate-*`, `Signature`/`Signature-Input`
//! (our RFC 9421 signature to the origin), `Forwarded`, `X-Forwarded-*`, and the other
//! client-IP headers. A client can therefore never impersonate the edge or
//! spoof its address; `Forwarded` and `X-Forwarded-*` are rebuilt from the connection.

use std::net::IpAddr;

use crate::http::HOP_BY_HOP;

const OWNED_EXACT: [&str; 8] = [
    "forwarded",
    fastgate_wire::SIGNATURE_HEADER,
    fastgate_wire::SIGNATURE_INPUT_HEADER,
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
];

const OWNED_PREFIXES: [&str; 3] = ["fastgate-", "x-fastgate-", "x-forwarded-"];

/// What the origin must see instead of the client's own headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Lower-cased names to delete from the outgoing request.
    pub remove: Vec<String>,
    /// Headers to set (replacing any value) on the outgoing request.
    pub set: Vec<(&'static str, String)>,
}

/// Facts about the client connection that forwarding headers are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection<'a> {
    pub client_ip: Option<IpAddr>,
    pub tls: bool,
    pub host: Option<&'a str>,
}

/// Computes the header edits for an inbound request.
///
/// `names` are the inbound header names (any case); `connection_header` is the value of
/// the inbound `Connection` header, whose listed tokens are hop-by-hop too.
pub fn sanitize<'n>(
    names: impl IntoIterator<Item = &'n str>,
    connection_header: Option<&str>,
    conn: &Connection<'_>,
) -> HeaderEdits {
    let listed: Vec<String> = connection_header
        .map(|v| {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut remove = Vec::new();
    for name in names {
        let lower = name.to_ascii_lowercase();
        let drop = HOP_BY_HOP.contains(&lower.as_str())
            || OWNED_EXACT.contains(&lower.as_str())
            || OWNED_PREFIXES.iter().any(|p| lower.starts_with(p))
            || listed.contains(&lower);
        if drop && !remove.contains(&lower) {
            remove.push(lower);
        }
    }
    let proto = if conn.tls { "https" } else { "http" };
    let mut set = Vec::with_capacity(4);
    let mut forwarded = String::new();
    if let Some(ip) = conn.client_ip {
        forwarded = match ip {
            IpAddr::V4(v4) => format!("for={v4}"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
        };
        set.push(("x-forwarded-for", ip.to_string()));
    }
    if !forwarded.is_empty() {
        forwarded.push(';');
    }
    forwarded.push_str("proto=");
    forwarded.push_str(proto);
    if let Some(host) = conn.host.filter(|h| is_token_safe(h)) {
        forwarded.push_str(";host=");
        forwarded.push_str(host);
        set.push(("x-forwarded-host", host.to_owned()));
    }
    set.push(("forwarded", forwarded));
    set.push(("x-forwarded-proto", proto.to_owned()));
    HeaderEdits { remove, set }
}

/// A host is only echoed into `Forwarded` when it needs no quoting (RFC 7239 token chars).
fn is_token_safe(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(ip: &str) -> Connection<'static> {
        Connection {
            client_ip: Some(ip.parse().unwrap()),
            tls: false,
            host: Some("api.example.com"),
        }
    }

    #[test]
    fn drops_hop_by_hop_owned_and_connection_listed_headers() {
        let names = [
            "Host",
            "Connection",
            "Keep-Alive",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "Forwarded",
            "X-Real-IP",
            "Fastgate-Identity",
            "X-Fastgate-Debug",
            "Signature",
            "Signature-Input",
            "X-Custom-Hop",
            "Content-Type",
            "Authorization",
            "TE",
        ];
        let edits = sanitize(names, Some("keep-alive, X-Custom-Hop"), &conn("192.0.2.7"));
        for gone in [
            "connection",
            "keep-alive",
            "x-forwarded-for",
            "x-forwarded-proto",
            "forwarded",
            "x-real-ip",
            "fastgate-identity",
            "x-fastgate-debug",
            "signature",
            "signature-input",
            "x-custom-hop",
            "te",
        ] {
            assert!(edits.remove.contains(&gone.to_string()), "{gone} kept");
        }
        for kept in ["host", "content-type", "authorization"] {
            assert!(!edits.remove.contains(&kept.to_string()), "{kept} dropped");
        }
    }

    #[test]
    fn rebuilds_forwarding_from_the_connection() {
        let edits = sanitize(["X-Forwarded-For"], None, &conn("192.0.2.7"));
        let get = |n: &str| {
            edits
                .set
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-forwarded-for"), Some("192.0.2.7"));
        assert_eq!(get("x-forwarded-proto"), Some("http"));
        assert_eq!(get("x-forwarded-host"), Some("api.example.com"));
        assert_eq!(
            get("forwarded"),
            Some("for=192.0.2.7;proto=http;host=api.example.com")
        );
        let v6 = sanitize([], None, &conn("2001:db8::1"));
        assert!(v6.set.contains(&(
            "forwarded",
            "for=\"[2001:db8::1]\";proto=http;host=api.example.com".into()
        )));
    }

    #[test]
    fn unsafe_host_is_not_echoed() {
        let c = Connection {
            client_ip: None,
            tls: true,
            host: Some("evil;for=1.2.3.4"),
        };
        let edits = sanitize([], None, &c);
        assert_eq!(
            edits.set,
            vec![
                ("forwarded", "proto=https".to_string()),
                ("x-forwarded-proto", "https".to_string())
            ]
        );
    }
}
