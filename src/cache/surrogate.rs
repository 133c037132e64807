//! Surrogate keys: the tags a stored response carries so that a write can purge exactly the
//! entries it made stale. `{sub}` lets a per-user entry be tagged with its owner without the
//! subject ever appearing in a key.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Fastly's limit on one surrogate key, in bytes.
pub const MAX_SURROGATE_KEY_BYTES: usize = 1024;
/// The placeholder a surrogate-key template may use for the (hashed) subject.
pub const SUBJECT_PLACEHOLDER: &str = "{sub}";

/// The first 16 hex digits of SHA-256 of the subject: what `{sub}` renders as. Short (purge
/// only needs to hit the right keys; a collision merely over-purges) and never the subject.
pub fn subject_tag(subject: &str) -> String {
    let mut out = String::with_capacity(16);
    for b in &Sha256::digest(subject.as_bytes())[..8] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The tag every stored entry carries for its (rewritten) path: an unsafe request to that
/// path that succeeds purges it, so a stored GET never outlives a write to its own URI
/// (RFC 9111 §4.4). Every query and vary variant of the path goes with it (over-purging is
/// safe). `uri-` and the first 16 bytes of SHA-256 of the path, in hex.
pub fn uri_tag(path: &str) -> String {
    let digest = super::key_hex(&Sha256::digest(path.as_bytes()).into());
    format!("uri-{}", &digest[..32])
}

/// A valid Fastly surrogate key: 1..=1024 bytes of visible ASCII (no spaces: the
/// `Surrogate-Key` header is space-separated; no control characters).
pub fn is_valid_surrogate_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_SURROGATE_KEY_BYTES
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// One template rendered with the subject's tag; `None` when it needs a tag and has none,
/// or when the result would not be a valid surrogate key. Config validation renders with a
/// dummy tag, so a template that loads is one that renders.
pub(super) fn render_template(template: &str, tag: Option<&str>) -> Option<String> {
    let key = if template.contains(SUBJECT_PLACEHOLDER) {
        template.replace(SUBJECT_PLACEHOLDER, tag?)
    } else {
        template.to_owned()
    };
    is_valid_surrogate_key(&key).then_some(key)
}

/// Renders surrogate-key (or purge) templates. `{sub}` becomes [`subject_tag`] of the subject;
/// a template needing a subject when there is none, and any key that would not be a valid
/// surrogate key, is dropped. Duplicates are removed, order kept.
pub fn surrogate_keys<T: AsRef<str>>(templates: &[T], subject: Option<&str>) -> Vec<String> {
    let needs_tag = templates
        .iter()
        .any(|t| t.as_ref().contains(SUBJECT_PLACEHOLDER));
    let tag = if needs_tag {
        subject.map(subject_tag)
    } else {
        None
    };
    let mut out: Vec<String> = Vec::with_capacity(templates.len());
    for t in templates {
        if let Some(k) = render_template(t.as_ref(), tag.as_deref()) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_keys_hash_the_subject() {
        let tag = subject_tag("alice");
        assert_eq!(tag.len(), 16);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        let full: String = Sha256::digest(b"alice")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(tag, full[..16]);
        let keys = surrogate_keys(
            &["items", "user:{sub}", "items", "{sub}:{sub}"],
            Some("alice"),
        );
        assert_eq!(
            keys,
            vec![
                "items".to_owned(),
                format!("user:{tag}"),
                format!("{tag}:{tag}")
            ]
        );
        assert!(keys.iter().all(|k| !k.contains("alice")));
        // No subject: templates that need one are dropped.
        assert_eq!(
            surrogate_keys(&["items", "user:{sub}"], None),
            vec!["items".to_owned()]
        );
        // Invalid keys are dropped.
        let long = "k".repeat(1025);
        assert_eq!(
            surrogate_keys(&["a b", "", "tab\t", "é", long.as_str(), "ok"], None),
            vec!["ok".to_owned()]
        );
        assert!(is_valid_surrogate_key(&"k".repeat(1024)));
        assert_ne!(subject_tag("alice"), subject_tag("bob"));
        assert!(surrogate_keys::<&str>(&[], Some("x")).is_empty());
    }
}
