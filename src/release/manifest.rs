//! The release manifest: the one small KV value that says what a release is. The edge reads
//! it on every request (each request is its own Wasm instance), so parsing is bounded
//! ([`MAX_MANIFEST_BYTES`], [`MAX_FILES`]) and everything the edge will later put in a header
//! or a KV key is validated here, once, rather than trusted when it is used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{excerpt, ReleaseError};
use super::limits::{MAX_FILES, MAX_MANIFEST_BYTES, MAX_PATH_BYTES};

/// The KV key of the active-release pointer; its value is a release name.
pub const ACTIVE_KEY: &str = "active";

/// A precompressed variant's content coding (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix that makes this variant's ETag differ from the identity file's: RFC 9110
    /// §8.8.3 wants a distinct entity-tag per representation, and a variant's bytes differ.
    pub fn etag_suffix(self) -> &'static str {
        match self {
            Coding::Br => "-br",
            Coding::Gzip => "-gz",
        }
    }
}

/// A release: a name, the config's hash and the front-end files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    /// The SHA-256 hex of the gateway config (stored at [`config_key`]); `None` keeps the
    /// embedded config.
    #[serde(default)]
    pub config: Option<String>,
    /// Publication time, Unix seconds.
    pub created: u64,
    /// Path (starting with `/`, as the edge normalises it) → file.
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
}

/// One front-end file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// SHA-256 hex of the identity (uncompressed) bytes, stored at [`file_key`].
    pub hash: String,
    pub content_type: String,
    pub size: u64,
    /// Precompressed variants built at publish time, at most one per coding.
    #[serde(default)]
    pub encodings: Vec<Encoded>,
}

/// One precompressed variant of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoded {
    pub coding: Coding,
    /// SHA-256 hex of the encoded bytes, stored at [`file_key`].
    pub hash: String,
    pub size: u64,
}

/// The KV key of a stored file (any variant), by content hash.
pub fn file_key(hash: &str) -> String {
    format!("files/{hash}")
}

/// The KV key of a stored gateway config, by content hash.
pub fn config_key(hash: &str) -> String {
    format!("configs/{hash}")
}

/// The KV key of a release's manifest.
pub fn release_key(name: &str) -> String {
    format!("releases/{name}")
}

/// `[a-z0-9][a-z0-9-]{0,62}`, except `none` (what `Fastgate-Release` says when no release is
/// in force): a KV key part needing no escaping, and a DNS label (a
/// preview host label `preview-<name>` fits in 63 bytes when the name has at most 55).
pub fn is_valid_release_name(name: &str) -> bool {
    if name == super::ops::NO_RELEASE {
        return false;
    }
    let b = name.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && b.len() <= 63 && ok(&b[0]) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// A SHA-256 digest as 64 lower-case hex digits (one spelling, so one KV key per content).
pub fn is_valid_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The release name the active pointer holds (surrounding ASCII whitespace ignored, since
/// hand-written values often end with a newline).
pub fn parse_active(value: &[u8]) -> Result<String, ReleaseError> {
    let text = std::str::from_utf8(value).unwrap_or("").trim_ascii();
    if is_valid_release_name(text) {
        Ok(text.to_owned())
    } else {
        let shown = String::from_utf8_lossy(value.get(..80).unwrap_or(value)).into_owned();
        Err(ReleaseError::BadName(excerpt(shown.trim_ascii())))
    }
}

impl Manifest {
    /// Reads and validates a manifest. Refuses more than [`MAX_MANIFEST_BYTES`] before
    /// parsing, and more than [`MAX_FILES`] files, an invalid name, hash, path or content
    /// type, or a coding listed twice.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ReleaseError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ReleaseError::TooLarge {
                what: "the manifest".into(),
                size: bytes.len() as u64,
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ReleaseError::Json(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Every store key this release needs, config first: what must be stored before the
    /// manifest is, and what garbage collection must keep.
    pub fn references(&self) -> Vec<String> {
        let config = self.config.iter().map(|h| config_key(h));
        let files = self.files.values().flat_map(|f| {
            std::iter::once(file_key(&f.hash)).chain(f.encodings.iter().map(|e| file_key(&e.hash)))
        });
        config.chain(files).collect()
    }

    /// The checks [`Manifest::parse`] makes after reading the JSON.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        if !is_valid_release_name(&self.name) {
            return Err(ReleaseError::BadName(excerpt(&self.name)));
        }
        if self.config.as_deref().is_some_and(|h| !is_valid_hash(h)) {
            return Err(ReleaseError::BadHash {
                field: "config".into(),
            });
        }
        if self.files.len() > MAX_FILES {
            return Err(ReleaseError::TooManyFiles {
                count: self.files.len(),
                limit: MAX_FILES,
            });
        }
        self.files
            .iter()
            .try_for_each(|(path, file)| validate_file(path, file))
    }
}

fn validate_file(path: &str, file: &FileEntry) -> Result<(), ReleaseError> {
    check_path(path)?;
    let field = |what: &str| format!("files.{}.{what}", excerpt(path));
    if !is_valid_hash(&file.hash) {
        return Err(ReleaseError::BadHash {
            field: field("hash"),
        });
    }
    if !is_header_value(&file.content_type) || file.content_type.is_empty() {
        return Err(ReleaseError::BadHeaderValue {
            field: field("content_type"),
        });
    }
    let mut seen = Vec::with_capacity(2);
    for e in &file.encodings {
        if seen.contains(&e.coding) {
            return Err(ReleaseError::DuplicateEncoding {
                path: excerpt(path),
                coding: e.coding.token(),
            });
        }
        seen.push(e.coding);
        if !is_valid_hash(&e.hash) {
            return Err(ReleaseError::BadHash {
                field: field("encodings.hash"),
            });
        }
    }
    Ok(())
}

/// A path as the edge's normaliser (`crate::path`) leaves it: absolute, bounded, no
/// empty, `.` or `..` segment, no control character, backslash, `?` or `#`. A path that
/// breaks these could never be requested, so it is a publisher bug worth refusing.
fn check_path(path: &str) -> Result<(), ReleaseError> {
    let bad = |reason| {
        Err(ReleaseError::BadPath {
            path: excerpt(path),
            reason,
        })
    };
    if !path.starts_with('/') {
        return bad("it must start with `/`");
    }
    if path.len() > MAX_PATH_BYTES {
        return bad("it is too long");
    }
    if path
        .bytes()
        .any(|b| b.is_ascii_control() || b"\\?#".contains(&b))
    {
        return bad("it contains a control character, `\\`, `?` or `#`");
    }
    let inner = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
    if path.len() > 1 && inner.split('/').any(|s| matches!(s, "" | "." | "..")) {
        return bad("it contains an empty, `.` or `..` segment");
    }
    if path.ends_with('/') {
        return bad("it names a directory (publish its `index.html`)");
    }
    // The edge looks a request up by its normalised path: a path in any other spelling
    // (`%2f`, a raw space, `é` unescaped) could never be found.
    if crate::path::normalize(path).as_deref() != Ok(path) {
        return bad("it is not in the edge's normal form (see `path::encode_segment`)");
    }
    Ok(())
}

/// A field value safe to send as is (RFC 9110 §5.5): visible ASCII, space and tab, not
/// starting or ending with whitespace. Non-ASCII is refused too: no content type needs it.
pub(super) fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        && !v.starts_with([' ', '\t'])
        && !v.ends_with([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b";

    fn json(files: &str) -> String {
        format!(r#"{{"name":"r1","config":"{H1}","created":1,"files":{{{files}}}}}"#)
    }

    fn file(hash: &str) -> String {
        format!(r#"{{"hash":"{hash}","content_type":"text/html","size":3}}"#)
    }

    #[test]
    fn a_valid_manifest_parses() {
        let enc = format!(
            r#"{{"hash":"{H1}","content_type":"text/css","size":9,
                "encodings":[{{"coding":"br","hash":"{H1}","size":4}},
                             {{"coding":"gzip","hash":"{H1}","size":5}}]}}"#
        );
        let text = json(&format!(r#""/index.html":{},"/a.css":{enc}"#, file(H1)));
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.name, "r1");
        assert_eq!(m.files["/a.css"].encodings[0].coding, Coding::Br);
        assert_eq!(m.files["/a.css"].encodings[1].size, 5);
        let back = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&back).unwrap(), m);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_their_name() {
        let extra = r#"{"name":"r1","created":1,"files":{},"extra":1}"#;
        let e = Manifest::parse(extra.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
        let bad_hash = json(&format!(r#""/a":{}"#, file("ABC")));
        let e = Manifest::parse(bad_hash.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("files./a.hash"), "{e}");
        let no_config = r#"{"name":"r1","created":1,"config":"x"}"#;
        assert!(matches!(
            Manifest::parse(no_config.as_bytes()),
            Err(ReleaseError::BadHash { .. })
        ));
    }

    #[test]
    fn bad_paths_are_refused() {
        for p in [
            "a", "/a//b", "/./a", "/a/../b", "/a/", "/a?b", "/a#b", "/a\\b", "/\n",
        ] {
            let text = json(&format!(r#"{:?}:{}"#, p, file(H1)));
            let got = Manifest::parse(text.as_bytes());
            assert!(
                matches!(got, Err(ReleaseError::BadPath { .. })),
                "{p}: {got:?}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        let text = json(&format!(r#""{long}":{}"#, file(H1)));
        assert!(Manifest::parse(text.as_bytes()).is_err());
        let root = json(&format!(r#""/":{}"#, file(H1)));
        assert!(Manifest::parse(root.as_bytes()).is_err());
    }

    #[test]
    fn content_types_that_could_inject_headers_are_refused() {
        for ct in ["text/html\r\nx: y", "", " text/html", "tëxt/html"] {
            let f = format!(r#"{{"hash":"{H1}","content_type":{ct:?},"size":1}}"#);
            let text = json(&format!(r#""/a":{f}"#));
            assert!(Manifest::parse(text.as_bytes()).is_err(), "{ct:?}");
        }
    }

    #[test]
    fn a_coding_listed_twice_is_refused() {
        let f = format!(
            r#"{{"hash":"{H1}","content_type":"a/b","size":1,"encodings":[
                {{"coding":"br","hash":"{H1}","size":1}},{{"coding":"br","hash":"{H1}","size":1}}]}}"#
        );
        let text = json(&format!(r#""/a":{f}"#));
        assert!(matches!(
            Manifest::parse(text.as_bytes()),
            Err(ReleaseError::DuplicateEncoding { coding: "br", .. })
        ));
    }

    #[test]
    fn oversized_manifests_are_refused_before_parsing() {
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            Manifest::parse(&big),
            Err(ReleaseError::TooLarge { .. })
        ));
    }

    #[test]
    fn release_names() {
        for ok in ["a", "r1", "2026-11-28", &"a".repeat(63)] {
            assert!(is_valid_release_name(ok), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a/b", &"a".repeat(64), "é"] {
            assert!(!is_valid_release_name(bad), "{bad}");
        }
    }

    #[test]
    fn keys_and_the_pointer() {
        assert_eq!(file_key(H1), format!("files/{H1}"));
        assert_eq!(config_key("x"), "configs/x");
        assert_eq!(release_key("r1"), "releases/r1");
        assert_eq!(parse_active(b"r2\n").unwrap(), "r2");
        assert!(parse_active(b"../x").is_err());
        assert!(parse_active(&[0xff, 0xfe]).is_err());
        assert!(parse_active(b"").is_err());
    }

    #[test]
    fn odd_inputs_never_panic() {
        let inputs: [&[u8]; 9] = [
            b"",
            b"null",
            b"[]",
            b"{",
            &[0xff; 10],
            br#"{"name":1}"#,
            br#"{"name":"a","created":-1}"#,
            br#"{"name":"a","created":1,"files":{"/a":{"hash":"","content_type":"","size":0,"encodings":[{"coding":"zstd"}]}}}"#,
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ];
        for input in inputs {
            assert!(Manifest::parse(input).is_err());
            let _ = parse_active(input);
        }
        let deep = "[".repeat(100_000);
        assert!(Manifest::parse(deep.as_bytes()).is_err());
    }
}
