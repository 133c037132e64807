//! Static serving: how a request for a path is answered from a release's manifest. This
//! decides which stored file (or variant) answers and with which headers; the adapter reads
//! the bytes from the KV Store at [`StaticAnswer::File`]'s `key` and writes the headers.
//!
//! Paths are matched exactly, as given. No percent-decoding or dot-segment resolution
//! happens here: the edge normalises every path before routing (`crate::path`), and the
//! manifest only holds paths in that normal form (see `Manifest::parse`).
//!
//! The rules:
//! - only `GET` and `HEAD` ([`ALLOW`]); anything else is [`StaticAnswer::MethodNotAllowed`]
//!   when the path names a file, and [`StaticAnswer::NotFound`] when it does not;
//! - a path ending in `/` is served by its `index.html`; a path with no extension that is
//!   not a file is tried as a directory too (`/about` → `/about/index.html`, as static
//!   site generators such as Astro lay pages out);
//! - the SPA fallback (when configured) answers only a missing path whose last segment has
//!   no `.` (no extension) and that is not a hashed asset. A missing `/app.3f2a9c1b.js` or
//!   `/logo.png` is [`StaticAnswer::NotFound`] (the adapter's 404 problem+json), never HTML:
//!   HTML served as a script is an opaque failure, and cached as one it outlives the fix;
//! - `Cache-Control`: the first ops rule whose pattern matches the request path or the
//!   served file's path; else [`IMMUTABLE`] for a hashed asset ([`is_hashed_asset`]); else
//!   `public, max-age=<html_max_age_s>, must-revalidate` (HTML and every other unhashed
//!   file: its name does not change when its content does, so it must be revalidated);
//! - every answer has a strong ETag, `"<first 16 hex of the identity hash>"`, with `-br` or
//!   `-gz` appended for a precompressed variant (RFC 9110 §8.8.3: each representation has
//!   its own entity-tag; the same tag for different bytes would let a cache mix them up);
//! - `If-None-Match` naming the chosen representation's tag (weak comparison, RFC 9110
//!   §13.1.2), or `*`, answers [`StaticAnswer::NotModified`].

use super::error::{excerpt, ReleaseError};
use super::manifest::{file_key, is_header_value, Coding, FileEntry, Manifest};
use super::negotiate::negotiate;

/// `Cache-Control` of a hashed asset: its name changes whenever its content does.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The `Allow` field of a 405 from a static route.
pub const ALLOW: &str = "GET, HEAD";
/// Entity-tags of `If-None-Match` read; later ones are ignored (bounded work).
const MAX_IF_NONE_MATCH_TAGS: usize = 32;
/// Hex digits of the content hash in an ETag: 64 bits, plenty to tell versions apart.
const ETAG_HEX: usize = 16;

/// What of the request static serving reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRequest<'a> {
    pub method: &'a str,
    pub accept_encoding: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
}

/// A path pattern of an ops `Cache-Control` rule: `/exact`, `/prefix/*` or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
}

impl PathPattern {
    /// Reads `/exact`, `/prefix/*` (any path starting with `/prefix/`) or `*.suffix` (any
    /// path ending with `.suffix`). At most one `*`, only at an end; no control character.
    pub fn parse(s: &str) -> Result<PathPattern, ReleaseError> {
        let bad = || ReleaseError::BadPattern(excerpt(s));
        if s.bytes().any(|b| b.is_ascii_control()) {
            return Err(bad());
        }
        let pattern = if let Some(suffix) = s.strip_prefix('*') {
            PathPattern::Suffix(suffix.to_owned())
        } else if let Some(prefix) = s.strip_suffix('*') {
            PathPattern::Prefix(prefix.to_owned())
        } else {
            PathPattern::Exact(s.to_owned())
        };
        let (PathPattern::Exact(rest) | PathPattern::Prefix(rest) | PathPattern::Suffix(rest)) =
            &pattern;
        let anchored = matches!(pattern, PathPattern::Suffix(_)) || rest.starts_with('/');
        if rest.is_empty() || rest.contains('*') || !anchored {
            return Err(bad());
        }
        Ok(pattern)
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(p) => path == p,
            PathPattern::Prefix(p) => path.starts_with(p.as_str()),
            PathPattern::Suffix(s) => path.ends_with(s.as_str()),
        }
    }
}

/// How a static route serves its release's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticPolicy {
    /// The file answering extension-less paths that are not files, e.g. `/index.html`.
    pub spa_fallback: Option<String>,
    /// Ops overrides of `Cache-Control`, first match wins.
    pub cache_control: Vec<(PathPattern, String)>,
    /// `max-age` of HTML and other unhashed files, which revalidate after it.
    pub html_max_age_s: u64,
    /// `Content-Security-Policy` of HTML answers; empty: none.
    pub content_security_policy: String,
}

impl StaticPolicy {
    /// Refuses a fallback that is not an absolute path, and a `Cache-Control` value that is
    /// not a safe header value, naming the field.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        if let Some(fallback) = &self.spa_fallback {
            if !fallback.starts_with('/') || !is_header_value(fallback) {
                return Err(ReleaseError::BadPath {
                    path: excerpt(fallback),
                    reason: "the SPA fallback must be an absolute path",
                });
            }
        }
        if !is_header_value(&self.content_security_policy) {
            return Err(ReleaseError::BadHeaderValue {
                field: "content_security_policy".into(),
            });
        }
        match self
            .cache_control
            .iter()
            .position(|(_, v)| !is_header_value(v))
        {
            Some(i) => Err(ReleaseError::BadHeaderValue {
                field: format!("cache_control[{i}]"),
            }),
            None => Ok(()),
        }
    }
}

/// How to answer a static request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticAnswer {
    /// 200 with the stored file at `key` (`length` bytes); `head_only`: send no body.
    File {
        key: String,
        content_type: String,
        content_encoding: Option<Coding>,
        etag: String,
        cache_control: String,
        vary_accept_encoding: bool,
        length: u64,
        head_only: bool,
    },
    /// 304, with the fields a 200 would have had that RFC 9110 §15.4.5 asks for.
    NotModified {
        etag: String,
        cache_control: String,
        vary: bool,
    },
    /// 404 (problem+json, never HTML).
    NotFound,
    /// 405, with `Allow: GET, HEAD` ([`ALLOW`]).
    MethodNotAllowed,
}

/// Answers `req` for the normalised `path` from `manifest`; see the module doc.
pub fn answer(
    manifest: &Manifest,
    path: &str,
    req: StaticRequest<'_>,
    policy: &StaticPolicy,
) -> StaticAnswer {
    // A path with no file is 404 whatever the method, as a path no route knows is: a
    // static catch-all route must not turn every unknown `POST` into a 405.
    let Some((served, file)) = resolve(manifest, path, policy) else {
        return StaticAnswer::NotFound;
    };
    let head_only = match req.method {
        "GET" => false,
        "HEAD" => true,
        _ => return StaticAnswer::MethodNotAllowed,
    };
    let codings: Vec<Coding> = file.encodings.iter().map(|e| e.coding).collect();
    let chosen = negotiate(req.accept_encoding, &codings);
    let variant = chosen
        .coding
        .and_then(|c| file.encodings.iter().find(|e| e.coding == c));
    let (hash, length) = variant.map_or((&file.hash, file.size), |e| (&e.hash, e.size));
    let etag = etag(&file.hash, variant.map(|e| e.coding));
    let cache_control = cache_control(path, served, policy);
    if req.if_none_match.is_some_and(|v| none_match_hits(v, &etag)) {
        return StaticAnswer::NotModified {
            etag,
            cache_control,
            vary: chosen.vary_accept_encoding,
        };
    }
    StaticAnswer::File {
        key: file_key(hash),
        content_type: file.content_type.clone(),
        content_encoding: variant.map(|e| e.coding),
        etag,
        cache_control,
        vary_accept_encoding: chosen.vary_accept_encoding,
        length,
        head_only,
    }
}

/// The file serving `path` and its manifest path: the file itself, a directory's
/// `index.html`, or the SPA fallback where allowed.
fn resolve<'m>(
    manifest: &'m Manifest,
    path: &str,
    policy: &StaticPolicy,
) -> Option<(&'m str, &'m FileEntry)> {
    let lookup = |p: &str| {
        manifest
            .files
            .get_key_value(p)
            .map(|(k, v)| (k.as_str(), v))
    };
    if !path.starts_with('/') {
        return None;
    }
    let found = if path.ends_with('/') {
        lookup(&format!("{path}index.html"))
    } else if has_extension(path) {
        lookup(path)
    } else {
        lookup(path).or_else(|| lookup(&format!("{path}/index.html")))
    };
    found.or_else(|| {
        let fallback = policy.spa_fallback.as_deref()?;
        let spa_route = !has_extension(path) && !is_hashed_asset(path);
        spa_route.then(|| lookup(fallback)).flatten()
    })
}

/// Whether the last segment has a `.` (an extension, or a dot file): a name that looks like
/// a file is never answered by the SPA fallback.
fn has_extension(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'))
}

/// Whether `path` names a content-hashed build output, whose name changes with its content:
/// - anywhere: a dot-separated part of the file name, neither the first nor the extension,
///   of at least 8 hex digits (`app.3f2a9c1b.js`, `chunk.3F2A9C1B0D.min.css`);
/// - under `/assets/` (Vite) or `/_astro/` (Astro), where bundlers write only hashed
///   output and hash with base64url letters: such a part of at least 8 `[A-Za-z0-9_-]`
///   (`index.DZk3Jx1a.js`), or the last `-`-separated part of the name before its extension
///   (`index-BxG3k2aZ.js`). A hash that itself contains `-` is missed there: that file just
///   revalidates (a safe miss); an ops rule can say `immutable` for the whole directory.
pub fn is_hashed_asset(path: &str) -> bool {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let Some((stem, _extension)) = name.rsplit_once('.') else {
        return false;
    };
    let hex = |p: &str| p.len() >= 8 && p.bytes().all(|b| b.is_ascii_hexdigit());
    let inner = stem.split_once('.').map_or("", |(_, inner)| inner);
    if !inner.is_empty() && inner.split('.').any(hex) {
        return true;
    }
    let build_dir = ["/assets", "/_astro"]
        .iter()
        .any(|d| dir == *d || dir.strip_prefix(d).is_some_and(|r| r.starts_with('/')));
    let b64 = |p: &str| {
        p.len() >= 8
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
    };
    let dashed = stem
        .rsplit_once('-')
        .is_some_and(|(head, h)| !head.is_empty() && b64(h));
    build_dir && ((!inner.is_empty() && inner.split('.').any(b64)) || dashed)
}

/// See the module doc's `Cache-Control` rule.
fn cache_control(path: &str, served: &str, policy: &StaticPolicy) -> String {
    let rule = policy
        .cache_control
        .iter()
        .find(|(p, _)| p.matches(path) || p.matches(served));
    match rule {
        Some((_, value)) => value.clone(),
        None if is_hashed_asset(served) => IMMUTABLE.to_owned(),
        None => format!("public, max-age={}, must-revalidate", policy.html_max_age_s),
    }
}

/// The strong ETag of one representation of a file: see the module doc.
fn etag(identity_hash: &str, coding: Option<Coding>) -> String {
    let prefix = identity_hash.get(..ETAG_HEX).unwrap_or(identity_hash);
    let suffix = coding.map_or("", Coding::etag_suffix);
    format!("\"{prefix}{suffix}\"")
}

/// Whether `If-None-Match` names `etag` (weak comparison: `W/` is ignored) or is `*`.
/// Reading stops at the first malformed entry: an unreadable condition is not met, so the
/// full answer goes out.
fn none_match_hits(value: &str, etag: &str) -> bool {
    if value.trim_matches([' ', '\t']) == "*" {
        return true;
    }
    let ours = etag.trim_matches('"');
    let mut rest = value;
    let tags = std::iter::from_fn(|| {
        let entry = rest.trim_start_matches([' ', '\t', ',']);
        let quoted = entry
            .strip_prefix("W/")
            .unwrap_or(entry)
            .strip_prefix('"')?;
        let (opaque, after) = quoted.split_once('"')?;
        rest = after;
        Some(opaque)
    });
    tags.take(MAX_IF_NONE_MATCH_TAGS).any(|t| t == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::Encoded;

    const HTML: &str = "aaaaaaaaaaaaaaaa1111111111111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const JS: &str = "bbbbbbbbbbbbbbbb2222222222222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const BR: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const GZ: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

    fn entry(hash: &str, content_type: &str, encoded: bool) -> FileEntry {
        let enc = |coding, hash: &str, size| Encoded {
            coding,
            hash: hash.into(),
            size,
        };
        FileEntry {
            hash: hash.into(),
            content_type: content_type.into(),
            size: 1000,
            encodings: if encoded {
                vec![enc(Coding::Gzip, GZ, 300), enc(Coding::Br, BR, 200)]
            } else {
                vec![]
            },
        }
    }

    fn manifest() -> Manifest {
        let html = || entry(HTML, "text/html; charset=utf-8", true);
        let files = [
            ("/index.html", html()),
            ("/about/index.html", html()),
            ("/app.3f2a9c1b.js", entry(JS, "text/javascript", true)),
            ("/favicon.ico", entry(JS, "image/x-icon", false)),
            ("/_astro/index.DZk3Jx1a.css", entry(JS, "text/css", false)),
        ];
        Manifest {
            name: "r1".into(),
            config: None,
            created: 0,
            files: files.into_iter().map(|(p, f)| (p.to_owned(), f)).collect(),
        }
    }

    fn policy() -> StaticPolicy {
        StaticPolicy {
            spa_fallback: Some("/index.html".into()),
            cache_control: vec![],
            html_max_age_s: 60,
            content_security_policy: String::new(),
        }
    }

    fn get(path: &str, ae: Option<&str>, inm: Option<&str>) -> StaticAnswer {
        let req = StaticRequest {
            method: "GET",
            accept_encoding: ae,
            if_none_match: inm,
        };
        answer(&manifest(), path, req, &policy())
    }

    fn file(a: StaticAnswer) -> (String, Option<Coding>, String, String, u64) {
        match a {
            StaticAnswer::File {
                key,
                content_encoding,
                etag,
                cache_control,
                length,
                ..
            } => (key, content_encoding, etag, cache_control, length),
            other => panic!("not a file: {other:?}"),
        }
    }

    #[test]
    fn encodings_are_negotiated_with_distinct_etags() {
        let (key, coding, etag, _, len) = file(get("/app.3f2a9c1b.js", Some("gzip, br"), None));
        assert_eq!(
            (key, coding, len),
            (format!("files/{BR}"), Some(Coding::Br), 200)
        );
        assert_eq!(etag, "\"bbbbbbbbbbbbbbbb-br\"");
        let (key, coding, etag, _, _) = file(get("/app.3f2a9c1b.js", Some("gzip"), None));
        assert_eq!((key, coding), (format!("files/{GZ}"), Some(Coding::Gzip)));
        assert_eq!(etag, "\"bbbbbbbbbbbbbbbb-gz\"");
        let (key, coding, etag, _, len) = file(get("/app.3f2a9c1b.js", None, None));
        assert_eq!((key, coding, len), (format!("files/{JS}"), None, 1000));
        assert_eq!(etag, "\"bbbbbbbbbbbbbbbb\"");
        let vary = |a| matches!(a, StaticAnswer::File { vary_accept_encoding, .. } if vary_accept_encoding);
        assert!(vary(get("/app.3f2a9c1b.js", None, None)));
        assert!(!vary(get("/favicon.ico", Some("br"), None)));
    }

    #[test]
    fn hashed_assets_are_immutable_and_html_revalidates() {
        assert_eq!(file(get("/app.3f2a9c1b.js", None, None)).3, IMMUTABLE);
        assert_eq!(
            file(get("/_astro/index.DZk3Jx1a.css", None, None)).3,
            IMMUTABLE
        );
        let short = "public, max-age=60, must-revalidate";
        assert_eq!(file(get("/", None, None)).3, short);
        assert_eq!(file(get("/favicon.ico", None, None)).3, short);
    }

    #[test]
    fn directories_map_to_their_index() {
        for path in ["/", "/about/", "/about"] {
            let (key, ..) = file(get(path, None, None));
            assert_eq!(key, format!("files/{}", HTML), "{path}");
        }
    }

    #[test]
    fn if_none_match_gives_304_for_the_same_representation_only() {
        let etag = "\"aaaaaaaaaaaaaaaa-br\"";
        let nm = get("/", Some("br"), Some(&format!("\"x\", W/{etag}")));
        let expected = StaticAnswer::NotModified {
            etag: etag.into(),
            cache_control: "public, max-age=60, must-revalidate".into(),
            vary: true,
        };
        assert_eq!(nm, expected);
        assert!(matches!(
            get("/", Some("gzip"), Some(etag)),
            StaticAnswer::File { .. }
        ));
        assert!(matches!(
            get("/", None, Some("*")),
            StaticAnswer::NotModified { .. }
        ));
        assert!(matches!(
            get("/nope.js", None, Some("*")),
            StaticAnswer::NotFound
        ));
        let malformed = format!("garbage, {etag}");
        assert!(matches!(
            get("/", Some("br"), Some(&malformed)),
            StaticAnswer::File { .. }
        ));
    }

    #[test]
    fn the_spa_fallback_never_answers_a_file_name() {
        let (key, ..) = file(get("/app/settings/profile", None, None));
        assert_eq!(key, format!("files/{}", HTML));
        assert_eq!(file(get("/app/x/", None, None)).0, key);
        for missing in [
            "/app.0badc0de.js",
            "/logo.png",
            "/_astro/index.Zz9Yy8Xx.js",
            "/.env",
        ] {
            assert_eq!(
                get(missing, None, None),
                StaticAnswer::NotFound,
                "{missing}"
            );
        }
        let no_spa = StaticPolicy {
            spa_fallback: None,
            ..policy()
        };
        let req = StaticRequest {
            method: "GET",
            accept_encoding: None,
            if_none_match: None,
        };
        assert_eq!(
            answer(&manifest(), "/app", req, &no_spa),
            StaticAnswer::NotFound
        );
    }

    #[test]
    fn methods_other_than_get_and_head_are_refused() {
        let req = |method| StaticRequest {
            method,
            accept_encoding: None,
            if_none_match: None,
        };
        let head = answer(&manifest(), "/", req("HEAD"), &policy());
        assert!(matches!(
            head,
            StaticAnswer::File {
                head_only: true,
                ..
            }
        ));
        for m in ["POST", "get", "PUT", "DELETE", ""] {
            let a = answer(&manifest(), "/", req(m), &policy());
            assert_eq!(a, StaticAnswer::MethodNotAllowed, "{m}");
        }
    }

    #[test]
    fn ops_rules_override_first_match_wins() {
        let mut p = policy();
        p.cache_control = vec![
            (PathPattern::parse("*.html").unwrap(), "no-store".into()),
            (PathPattern::parse("/app/*").unwrap(), "private".into()),
            (
                PathPattern::parse("/app.3f2a9c1b.js").unwrap(),
                "max-age=5".into(),
            ),
        ];
        let req = StaticRequest {
            method: "GET",
            accept_encoding: None,
            if_none_match: None,
        };
        let cc = |path| file(answer(&manifest(), path, req, &p)).3;
        assert_eq!(cc("/"), "no-store", "matched on the served /index.html");
        assert_eq!(cc("/app/settings"), "no-store");
        assert_eq!(cc("/app.3f2a9c1b.js"), "max-age=5");
        assert_eq!(p.validate(), Ok(()));
        p.cache_control
            .push((PathPattern::parse("/x").unwrap(), "a\r\nb".into()));
        assert!(p.validate().is_err());
    }

    #[test]
    fn path_patterns() {
        assert_eq!(
            PathPattern::parse("/a").unwrap(),
            PathPattern::Exact("/a".into())
        );
        assert_eq!(
            PathPattern::parse("/a/*").unwrap(),
            PathPattern::Prefix("/a/".into())
        );
        assert_eq!(
            PathPattern::parse("*.js").unwrap(),
            PathPattern::Suffix(".js".into())
        );
        for bad in ["", "*", "a", "/a*b", "**", "*a*", "/a\n", "a/*"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PathPattern::Prefix("/a/".into()).matches("/a/b"));
        assert!(!PathPattern::Prefix("/a/".into()).matches("/ab"));
    }

    #[test]
    fn hashed_asset_rule() {
        for yes in [
            "/app.3f2a9c1b.js",
            "/css/site.3F2A9C1B0D.min.css",
            "/_astro/index.DZk3Jx1a.js",
            "/assets/index-BxG3k2aZ.js",
            "/assets/img/logo.a1_B2-c3.png",
        ] {
            assert!(is_hashed_asset(yes), "{yes}");
        }
        for no in [
            "/app.js",
            "/3f2a9c1b.js",
            "/app.3f2a9c1.js",
            "/index.html",
            "/app.3f2a9c1b",
            "/app.DZk3Jx1a.js",
            "/assets/index-Bx.js",
            "/assetsx/index-BxG3k2aZ.js",
            "/assets/-BxG3k2aZ.js",
            "",
        ] {
            assert!(!is_hashed_asset(no), "{no}");
        }
    }

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            "", "/", "//", "a", "/\u{0}", "/é.", "/.", "/..", "/.a.b.", "/a/b/c/", "/-", "/a-.b",
        ];
        let headers = [
            None,
            Some(""),
            Some("\""),
            Some("W/"),
            Some("W/\""),
            Some(",,,\""),
        ];
        for path in odd {
            for h in headers {
                let req = StaticRequest {
                    method: "GET",
                    accept_encoding: h,
                    if_none_match: h,
                };
                let _ = answer(&manifest(), path, req, &policy());
                let _ = is_hashed_asset(path);
                let _ = PathPattern::parse(path);
            }
        }
        let mut m = manifest();
        if let Some(f) = m.files.get_mut("/index.html") {
            f.hash = "é".into(); // never validated: still no panic
        }
        let req = StaticRequest {
            method: "GET",
            accept_encoding: None,
            if_none_match: None,
        };
        assert!(matches!(
            answer(&m, "/", req, &policy()),
            StaticAnswer::File { .. }
        ));
    }
}
