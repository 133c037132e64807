//! Why a release, or a part of one, is refused. Every message names what is wrong, so the
//! one log line an invalid release gets is enough to fix it.

/// A refused manifest, pointer, policy or release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("the manifest lists {count} files, over the limit of {limit}")]
    TooManyFiles { count: usize, limit: usize },
    #[error("the manifest is not valid JSON for the schema: {0}")]
    Json(String),
    #[error("`{0}` is not a valid release name (`[a-z0-9][a-z0-9-]{{0,62}}`)")]
    BadName(String),
    #[error("`{field}` is not a SHA-256 hex digest (64 lower-case hex digits)")]
    BadHash { field: String },
    #[error("file path `{path}` is invalid: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("`{field}` is not a valid header value")]
    BadHeaderValue { field: String },
    #[error("file `{path}` lists the `{coding}` encoding twice")]
    DuplicateEncoding { path: String, coding: &'static str },
    #[error("`{0}` is not a valid KV Store key (at most 1,024 bytes, not `.` or `..`, none of `#;?^|` CR LF)")]
    BadKey(String),
    #[error("path pattern `{0}` is invalid: use `/exact`, `/prefix/*` or `*.suffix`")]
    BadPattern(String),
    #[error("the bytes sent for `{0}` do not hash to its name")]
    HashMismatch(String),
    #[error("the manifest stored as `releases/{key}` names itself `{name}`")]
    NameMismatch { key: String, name: String },
    #[error("the release store failed: {0}")]
    Store(String),
    #[error("`{0}` is not in the release store")]
    Missing(String),
    #[error("release `{0}` is already published with other content (publish a new name)")]
    Republished(String),
    #[error("release `{0}` is active (activate another one first)")]
    Active(String),
    #[error("release `{release}`: its config is invalid: {reason}")]
    Config { release: String, reason: String },
}

/// At most 80 bytes of `s` (cut at a char boundary), so that an error about a huge input is
/// still one short log line.
pub(super) fn excerpt(s: &str) -> String {
    let mut end = s.len().min(80);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_cut_at_char_boundaries() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt(&"x".repeat(500)).len(), 80);
        let s = format!("{}é", "x".repeat(79));
        assert_eq!(excerpt(&s), "x".repeat(79));
    }

    #[test]
    fn messages_name_the_culprit() {
        let e = ReleaseError::TooLarge {
            what: "file `/a.js`".into(),
            size: 2,
            limit: 1,
        };
        assert_eq!(
            e.to_string(),
            "file `/a.js` is 2 bytes, over the limit of 1"
        );
        assert!(ReleaseError::BadName("X".into())
            .to_string()
            .contains("`X`"));
    }
}
