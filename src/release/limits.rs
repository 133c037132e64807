//! The platform limits a release must fit, checked at publish time (and by `cargo xtask
//! config check`) so that a release never fails halfway through its upload with a 413.
//!
//! Fastly's KV Store (docs.fastly.com, "Working with KV stores"): a key is at most 1,024
//! bytes of UTF-8, and a value at most "25MB" (raisable to 100MB on request). The docs do
//! not say whether MB is 10^6 or 2^20 bytes, so [`KV_MAX_VALUE_BYTES`] takes the smaller
//! reading: a value accepted here is never refused there. Keys also may not be `""`, `.` or
//! `..`, start with `.well-known/acme-challenge/`, or contain any of `#;?^|` CR LF.
//!
//! Our own limits are far below those: the edge reads the manifest on every request (each
//! request is its own Wasm instance, with 50 ms of CPU), so its size is request latency.

use super::error::{excerpt, ReleaseError};
use super::manifest::{config_key, file_key, release_key, Manifest, ACTIVE_KEY};

/// Fastly KV Store: the longest key, in bytes.
pub const KV_MAX_KEY_BYTES: usize = 1024;
/// Fastly KV Store: the largest value, in bytes ("25MB", read as 25 × 10^6; see the module
/// doc).
pub const KV_MAX_VALUE_BYTES: u64 = 25_000_000;
/// The largest manifest the edge parses: about 4,000 files' worth of JSON.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// The most files a release may list.
pub const MAX_FILES: usize = 5_000;
/// The longest file path (a URL is at most 8,192 bytes on Fastly Compute; front-end paths
/// are much shorter).
pub const MAX_PATH_BYTES: usize = 1024;

/// A key Fastly's KV Store accepts (see the module doc).
pub fn is_valid_kv_key(key: &str) -> bool {
    !matches!(key, "" | "." | "..")
        && key.len() <= KV_MAX_KEY_BYTES
        && !key.starts_with(".well-known/acme-challenge/")
        && !key.chars().any(|c| "#;?^|\r\n".contains(c))
}

/// Whether a release fits the KV Store: every stored value (each file variant, the config
/// of `config_len` bytes, the manifest as serialised) within [`KV_MAX_VALUE_BYTES`], the
/// manifest within [`MAX_MANIFEST_BYTES`] and [`MAX_FILES`], and every key valid. The error
/// names the first thing that is over.
pub fn check_limits(manifest: &Manifest, config_len: usize) -> Result<(), ReleaseError> {
    if manifest.files.len() > MAX_FILES {
        return Err(ReleaseError::TooManyFiles {
            count: manifest.files.len(),
            limit: MAX_FILES,
        });
    }
    let over = |what: String, size: u64, limit: u64| {
        (size > limit).then_some(ReleaseError::TooLarge { what, size, limit })
    };
    let value = |what: String, size: u64| over(what, size, KV_MAX_VALUE_BYTES);
    if let Some(e) = value("the config".into(), config_len as u64) {
        return Err(e);
    }
    let manifest_len = serde_json::to_vec(manifest).map_or(u64::MAX, |v| v.len() as u64);
    let limit = MAX_MANIFEST_BYTES as u64;
    if let Some(e) = over("the manifest".into(), manifest_len, limit) {
        return Err(e);
    }
    for (path, file) in &manifest.files {
        let name = |coding: &str| format!("file `{}`{coding}", excerpt(path));
        if let Some(e) = value(name(""), file.size) {
            return Err(e);
        }
        for enc in &file.encodings {
            if let Some(e) = value(name(&format!(" ({})", enc.coding.token())), enc.size) {
                return Err(e);
            }
        }
    }
    check_keys(manifest)
}

/// Every key the release writes, checked against the KV Store's key rules.
fn check_keys(manifest: &Manifest) -> Result<(), ReleaseError> {
    let mut keys = vec![release_key(&manifest.name), ACTIVE_KEY.to_owned()];
    keys.extend(manifest.config.as_deref().map(config_key));
    for file in manifest.files.values() {
        keys.push(file_key(&file.hash));
        keys.extend(file.encodings.iter().map(|e| file_key(&e.hash)));
    }
    match keys.into_iter().find(|k| !is_valid_kv_key(k)) {
        Some(k) => Err(ReleaseError::BadKey(excerpt(&k))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Coding, Encoded, FileEntry};

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn manifest(size: u64, br: u64) -> Manifest {
        let file = FileEntry {
            hash: H.into(),
            content_type: "text/javascript".into(),
            size,
            encodings: vec![Encoded {
                coding: Coding::Br,
                hash: H.into(),
                size: br,
            }],
        };
        Manifest {
            name: "r1".into(),
            config: Some(H.into()),
            created: 0,
            files: [("/app.js".to_owned(), file)].into(),
        }
    }

    #[test]
    fn a_release_within_limits_passes() {
        assert_eq!(check_limits(&manifest(10, 5), 9_000), Ok(()));
        let at = KV_MAX_VALUE_BYTES;
        assert_eq!(check_limits(&manifest(at, at), at as usize), Ok(()));
    }

    #[test]
    fn the_error_names_what_is_over() {
        let e = check_limits(&manifest(KV_MAX_VALUE_BYTES + 1, 5), 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "file `/app.js` is 25000001 bytes, over the limit of 25000000"
        );
        let e = check_limits(&manifest(1, KV_MAX_VALUE_BYTES + 1), 10).unwrap_err();
        assert!(e.to_string().starts_with("file `/app.js` (br) is"), "{e}");
        let e = check_limits(&manifest(1, 1), 30_000_000).unwrap_err();
        assert!(e.to_string().starts_with("the config is 30000000"), "{e}");
    }

    #[test]
    fn a_manifest_too_large_to_parse_is_refused() {
        let mut m = manifest(1, 1);
        let entry = m.files["/app.js"].clone();
        for i in 0..4_000 {
            m.files.insert(format!("/{i:0>300}.js"), entry.clone());
        }
        let e = check_limits(&m, 1).unwrap_err();
        assert!(e.to_string().starts_with("the manifest is"), "{e}");
    }

    #[test]
    fn too_many_files_are_refused() {
        let mut m = manifest(1, 1);
        let entry = m.files["/app.js"].clone();
        for i in 0..MAX_FILES {
            m.files.insert(format!("/{i}"), entry.clone());
        }
        let e = check_limits(&m, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the manifest lists 5001 files, over the limit of 5000"
        );
    }

    #[test]
    fn kv_keys() {
        assert!(is_valid_kv_key("files/abc"));
        assert!(is_valid_kv_key(&"a".repeat(KV_MAX_KEY_BYTES)));
        for bad in [
            "", ".", "..", "a#b", "a;b", "a?b", "a^b", "a|b", "a\nb", "a\rb",
        ] {
            assert!(!is_valid_kv_key(bad), "{bad:?}");
        }
        assert!(!is_valid_kv_key(".well-known/acme-challenge/x"));
        assert!(!is_valid_kv_key(&"a".repeat(KV_MAX_KEY_BYTES + 1)));
    }

    #[test]
    fn an_unchecked_manifest_with_a_bad_key_is_caught() {
        let mut m = manifest(1, 1);
        m.config = Some("a;b".into());
        let e = check_limits(&m, 1).unwrap_err();
        assert_eq!(e, ReleaseError::BadKey("configs/a;b".into()));
    }
}
