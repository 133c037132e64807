//! Path normalisation before routing, so that a route sees one spelling of each path and
//! the origin never receives a traversal or a path it would read differently.
//!
//! - Percent-encoded *unreserved* characters (RFC 3986 §2.3) are decoded (`%7E` → `~`,
//!   `%2E` → `.`); other escapes are kept, with upper-case hex (`%2f` → `%2F`), because
//!   decoding `%2F` would change which segments exist.
//! - Empty segments (`//`) and `.` segments are removed.
//! - A `..` segment is rejected outright rather than resolved: a proxy that resolves dot
//!   segments differently from its origin is how path-confusion bypasses happen.
//!
//! What the origin decodes must not mean something else either, so the normalised path is
//! checked once more as it reads after one decoding (what a framework hands a handler) and
//! after two (what a chain that decodes twice sees), and refused with 400 when either holds:
//!
//! - a control character (C0, DEL or C1; raw or encoded: `%00`, `%0A`, `%C2%85`) or a
//!   backslash (raw, `%5C`, or `%255C`): Windows and many frameworks read `\` as `/`;
//! - a dot segment, with or without `;` parameters (`..%2F`, `%252e%252e`, `..;`, `.;x`);
//! - an empty segment made by an encoded slash (`/%2Fevil.example`, `a%2F%2Fb`);
//! - percent-escapes that do not decode to UTF-8 (overlong `%C0%AE` spelled `.` for IIS).
//!
//! An encoded slash (`%2F`) between other characters is kept encoded, as Envoy's
//! `path_with_escaped_slashes_action: KEEP_UNCHANGED` does: routing never splits on it, and
//! the origin (axum) matches routes on the encoded path too, so both see one segment.

use std::borrow::Cow;

/// Why a path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with `/`")]
    NotAbsolute,
    #[error("the path contains a malformed percent-escape, or escapes that are not UTF-8")]
    BadEscape,
    #[error("the path contains a `..` segment")]
    Traversal,
    #[error("the path contains a control character or backslash")]
    Forbidden,
    #[error("the path reads differently once decoded (an encoded slash or dot segment)")]
    Ambiguous,
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

/// Whether byte `b` is refused wherever it appears, raw or decoded.
fn is_forbidden_byte(b: u8) -> bool {
    b.is_ascii_control() || b == b'\\'
}

/// A file name as one path segment in the normal form [`normalize`] gives the request a
/// browser sends for it: unreserved characters, sub-delims, `:` and `@` as they are (what
/// clients send unescaped), every other byte (space, `%`, `?`, `#`, non-ASCII…) as upper-case
/// `%XX`. Publishing a file under this form is what makes its request find it.
pub fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if is_unreserved(b) || b"!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// Returns the normalised form of `raw` (the path only, no query).
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let canon = canonical_escapes(raw)?;
    let out = collapse_segments(&canon)?;
    // What the origin reads (one decoding), and what a second decoding would make of it.
    let once = decode(out.as_bytes());
    let once = std::str::from_utf8(&once).map_err(|_| PathError::BadEscape)?;
    if once.chars().any(|c| c.is_control() || c == '\\') {
        return Err(PathError::Forbidden);
    }
    check_decoded_segments(once.as_bytes())?;
    if once.contains('%') {
        let twice = decode(once.as_bytes());
        if twice.iter().copied().any(is_forbidden_byte) {
            return Err(PathError::Forbidden);
        }
        check_decoded_segments(&twice)?;
    }
    Ok(out)
}

/// Pass 1: canonical percent-encoding (unreserved decoded, the rest upper-case hex). A
/// control character or backslash is refused here, raw or encoded.
fn canonical_escapes(raw: &str) -> Result<String, PathError> {
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
            if is_forbidden_byte(decoded) {
                return Err(PathError::Forbidden);
            }
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
        if is_forbidden_byte(b) {
            return Err(PathError::Forbidden);
        }
        // Multi-byte UTF-8 passes through unchanged; `raw` is a `str`, so slicing at
        // `i..i + len` stays on character boundaries.
        let len = utf8_len(b);
        canon.push_str(&raw[i..i + len]);
        i += len;
    }
    Ok(canon)
}

/// Pass 2: `//` and `.` segments removed, `..` refused, a trailing slash kept.
fn collapse_segments(canon: &str) -> Result<String, PathError> {
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

/// The segments of a decoded form of a normalised path (which starts with `/`): no dot
/// segment, with or without `;` parameters, and no empty segment but a trailing one. The
/// normalised path itself has neither, so any found here came from an encoding.
fn check_decoded_segments(decoded: &[u8]) -> Result<(), PathError> {
    let mut segments = decoded.split(|&b| b == b'/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let name = segment.split(|&b| b == b';').next().unwrap_or_default();
        match name {
            b".." => return Err(PathError::Traversal),
            b"." => return Err(PathError::Ambiguous),
            b"" if segments.peek().is_some() => return Err(PathError::Ambiguous),
            _ => {}
        }
    }
    Ok(())
}

/// One round of percent-decoding; a `%` without two hex digits after it stays as it is.
fn decode(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
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
    // Origin-form starts with `/`, so a `://` after that is data (`?next=https://x/y`), not
    // a scheme. In absolute-form the authority ends at the first `/` or `?` (a `/` inside
    // the query is not the path).
    let absolute_form = (!without_fragment.starts_with('/'))
        .then(|| without_fragment.split_once("://"))
        .flatten();
    let (absolute, target) = match absolute_form {
        Some((_, rest)) => (true, rest.find(['/', '?']).map_or("", |i| &rest[i..])),
        None => (false, without_fragment),
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    // An absolute URI's empty path is `/` (RFC 9110 §4.2.3).
    (
        if absolute && path.is_empty() {
            "/"
        } else {
            path
        },
        query,
    )
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
    fn refuses_encoded_controls_and_backslashes() {
        for p in [
            "/api/a%00b",
            "/api/a%0Ab",
            "/api/a%0db",
            "/api/%1F",
            "/api/%7f",
            "/api/%C2%85",
            "/api/..%5Cprofile",
            "/api/..%5cprofile",
            "/api/%255Cx",
            "/api/%2500",
            "/api/a\u{7f}",
        ] {
            assert_eq!(normalize(p), Err(PathError::Forbidden), "{p}");
        }
    }

    #[test]
    fn refuses_what_decodes_to_a_dot_segment_or_an_empty_one() {
        for p in [
            "/api/user/..%2Fprofile",
            "/api/a%2F..%2Fb",
            "/api/a%2F..",
            "/api/%252e%252e/x",
            "/api/%252E%252E%252Fx",
            "/api/..;/x",
            "/api/..;jsessionid=1",
            "/api/..%3B/x",
        ] {
            assert_eq!(normalize(p), Err(PathError::Traversal), "{p}");
        }
        for p in [
            "/api/.;x/y",
            "/api/a%2F.%2Fb",
            "/%2Fevil.example",
            "/api/a%2F%2Fb",
            "/api/a%252F%252Fb",
        ] {
            assert_eq!(normalize(p), Err(PathError::Ambiguous), "{p}");
        }
        for p in ["/api/%C0%AE%C0%AE/x", "/api/caf%E9", "/api/%F0%9F"] {
            assert_eq!(normalize(p), Err(PathError::BadEscape), "{p}");
        }
    }

    #[test]
    fn keeps_what_reads_the_same_after_decoding() {
        for (raw, want) in [
            ("/api/a%2fb", "/api/a%2Fb"),
            ("/api/a%2F", "/api/a%2F"),
            ("/files/100%25", "/files/100%25"),
            ("/files/a%20b", "/files/a%20b"),
            ("/emoji/%F0%9F%98%80", "/emoji/%F0%9F%98%80"),
            ("/a/.../b", "/a/.../b"),
            ("/a/..b/c.", "/a/..b/c."),
            ("/matrix;v=1/x", "/matrix;v=1/x"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    impl crate::test_rng::Rng {
        /// A path built from fragments that matter to normalisation.
        fn path(&mut self) -> String {
            const PARTS: [&str; 32] = [
                "/", "/", "/", ".", "..", "a", "é", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", "%00",
                "%0a", "%25", "%252e", "%252f", "%255c", ";", "%3b", "%7e", "%", "%2", "%zz",
                "%C0%AE", "%C3%A9", "%E9", "%C2%85", "\u{1}", "~", "?",
            ];
            let n = (self.next() % 12) as usize;
            let mut s = String::from("/");
            for _ in 0..n {
                s.push_str(PARTS[(self.next() % PARTS.len() as u64) as usize]);
            }
            s
        }
    }

    /// The origin's reading of a normalised path: split on `/`, then each segment
    /// percent-decoded once (what axum's router and `Path` extractor do).
    fn origin_segments(path: &str) -> Vec<Vec<u8>> {
        path.split('/')
            .skip(1)
            .map(|s| decode(s.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn no_output_hides_a_traversal_a_backslash_or_a_control_byte() {
        let mut rng = crate::test_rng::Rng(0x5EED_9A7B_0000_0001);
        let mut accepted = 0;
        for _ in 0..50_000 {
            let raw = rng.path();
            let Ok(out) = normalize(&raw) else { continue };
            accepted += 1;
            assert!(
                out.starts_with('/') && !out.starts_with("//"),
                "{raw:?} -> {out}"
            );
            assert_eq!(
                normalize(&out).as_deref(),
                Ok(out.as_str()),
                "idempotent: {raw:?}"
            );
            assert!(is_safe_target(&out), "{raw:?} -> {out}");
            for layer in [decode(out.as_bytes()), decode(&decode(out.as_bytes()))] {
                assert!(
                    !layer.iter().any(|&b| is_forbidden_byte(b)),
                    "{raw:?} -> {out}"
                );
                let text = String::from_utf8_lossy(&layer);
                for segment in text.split(['/', '\\']) {
                    let name = segment.split(';').next().unwrap_or_default();
                    assert!(name != ".." && name != ".", "{raw:?} -> {out}");
                }
            }
            for segment in origin_segments(&out) {
                let text = std::str::from_utf8(&segment).expect("segments decode to UTF-8");
                assert!(!text.chars().any(char::is_control), "{raw:?} -> {out}");
            }
        }
        assert!(
            accepted > 5_000,
            "the generator should reach accepted paths: {accepted}"
        );
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
        assert_eq!(split_target("http://h?q=/admin"), ("/", Some("q=/admin")));
        assert_eq!(split_target("http://h:1?"), ("/", Some("")));
        // A `://` in an origin-form target is data, never a scheme.
        assert_eq!(
            split_target("/api/items?next=https://x.example/health"),
            ("/api/items", Some("next=https://x.example/health"))
        );
        assert_eq!(split_target("/a://b/c"), ("/a://b/c", None));
    }

    #[test]
    fn safe_targets() {
        assert!(is_safe_target("/api/x"));
        assert!(!is_safe_target("//evil.example/x"));
        assert!(!is_safe_target("/a/../b"));
        assert!(!is_safe_target("http://evil"));
    }
}
