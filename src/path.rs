//! Path normalisation before routing, so that a route sees one spelling of each path and
//! the origin never receives a traversal.
//!
//! - Percent-encoded *unreserved* characters (RFC 3986 §2.3) are decoded (`%7E` → `~`,
//!   `%2E` → `.`); other escapes are kept, with upper-case hex (`%2f` → `%2F`), because
//!   decoding `%2F` would change which segments exist.
//! - Empty segments (`//`) and `.` segments are removed.
//! - A `..` segment is rejected outright rather than resolved: a proxy that resolves dot
//!   segments differently from its origin is how path-confusion bypasses happen.

/// Why a path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with `/`")]
    NotAbsolute,
    #[error("the path contains a malformed percent-escape")]
    BadEscape,
    #[error("the path contains a `..` segment")]
    Traversal,
    #[error("the path contains a control character or backslash")]
    Forbidden,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Returns the normalised form of `raw` (the path only, no query).
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // Pass 1: canonical percent-encoding.
    let bytes = raw.as_bytes();
    let mut canon = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (hi, lo) = match (bytes.get(i + 1).copied(), bytes.get(i + 2).copied()) {
                (Some(h), Some(l)) => (hex(h), hex(l)),
                _ => (None, None),
            };
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let decoded = hi << 4 | lo;
            if is_unreserved(decoded) {
                canon.push(char::from(decoded));
            } else {
                canon.push('%');
                canon.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                canon.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
            }
            i += 3;
            continue;
        }
        if b.is_ascii_control() || b == b'\\' {
            return Err(PathError::Forbidden);
        }
        // Multi-byte UTF-8 passes through unchanged; `raw` is a `str`, so slicing at
        // `i..i + len` stays on character boundaries.
        let len = utf8_len(b);
        canon.push_str(&raw[i..i + len]);
        i += len;
    }
    // Pass 2: segments.
    let trailing_slash = canon.len() > 1 && canon.ends_with('/');
    let mut out = String::with_capacity(canon.len());
    for segment in canon.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(PathError::Traversal),
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Splits a raw request URI (absolute `scheme://authority/path?query` or origin-form
/// `/path?query`) into its raw path and query, without any normalisation.
pub fn split_target(uri: &str) -> (&str, Option<&str>) {
    let without_fragment = uri.split_once('#').map_or(uri, |(u, _)| u);
    let after_authority = match without_fragment.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => without_fragment,
    };
    match after_authority.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (after_authority, None),
    }
}

/// True when `path` is safe to send or to redirect to: absolute, not protocol-relative
/// (`//host`), and free of dot segments. Used to check what rewrites produce.
pub fn is_safe_target(path: &str) -> bool {
    normalize(path).is_ok_and(|n| n == path) && !path.starts_with("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unreserved_and_collapses_slashes() {
        assert_eq!(normalize("/api//user/%7Eme/").unwrap(), "/api/user/~me/");
        assert_eq!(normalize("/a/./b").unwrap(), "/a/b");
        assert_eq!(normalize("/a%2fb%3a").unwrap(), "/a%2Fb%3A");
        assert_eq!(normalize("/%41pi").unwrap(), "/Api");
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("//").unwrap(), "/");
        assert_eq!(normalize("/caf%C3%A9/é").unwrap(), "/caf%C3%A9/é");
    }

    #[test]
    fn rejects_traversal_in_every_spelling() {
        for p in [
            "/../etc",
            "/api/../../x",
            "/a/%2e%2e/b",
            "/a/%2E%2E",
            "/a/.%2e/",
        ] {
            assert_eq!(normalize(p), Err(PathError::Traversal), "{p}");
        }
        assert_eq!(normalize("/a/%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a/%4"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a\\b"), Err(PathError::Forbidden));
        assert_eq!(normalize("/a\u{1}"), Err(PathError::Forbidden));
        assert_eq!(normalize("api"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn splits_raw_targets_without_resolving_them() {
        assert_eq!(
            split_target("http://h:1/api/../x?a=1#f"),
            ("/api/../x", Some("a=1"))
        );
        assert_eq!(split_target("http://h:1"), ("/", None));
        assert_eq!(split_target("/a?"), ("/a", Some("")));
        assert_eq!(split_target("https://h/p%2e%2e/"), ("/p%2e%2e/", None));
    }

    #[test]
    fn safe_targets() {
        assert!(is_safe_target("/api/x"));
        assert!(!is_safe_target("//evil.example/x"));
        assert!(!is_safe_target("/a/../b"));
        assert!(!is_safe_target("http://evil"));
    }
}
