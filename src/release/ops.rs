//! The release store's ops endpoint: the protocol `cargo xtask release` speaks to a running
//! edge, defined once here for both sides.
//!
//! Why an endpoint at all: Viceroy reads its local stores from files when it starts, so a
//! release switch that restarts Viceroy drops requests. Writing the KV Store *through the
//! edge* changes the store Viceroy holds in memory, live, the way a write reaches a POP in
//! production. The same endpoint works on Fastly, but production ops use the Fastly CLI
//! (`fastly kv-store-entry create`), which needs no secret at the edge.
//!
//! Security: the endpoint exists only when the Secret Store holds [`OPS_KEY_SECRET`];
//! without it every path under [`OPS_PREFIX`] is a plain 404. With it, a request must carry
//! `Authorization: Bearer <key>`, compared in constant time. A write is bound to what it
//! claims to be: a content-hashed key's bytes must hash to its name, a manifest must name
//! itself and may only refer to values already stored, and the pointer may only name a
//! release whose config validates. So even a leaked key cannot publish a file under another
//! file's hash or activate a release that does not load.
//!
//! - `GET  /__fastgate/kv?prefix=<p>&cursor=<c>`: `{"keys": [...], "cursor": <next>|null}`;
//! - `GET  /__fastgate/kv/<key>`: the value's bytes, or 404;
//! - `PUT  /__fastgate/kv/<key>`: store the body (204), see [`check_put`];
//! - `DELETE /__fastgate/kv/<key>`: 204 (the active release's manifest is refused: 409).

use sha2::{Digest, Sha256};

use super::error::{excerpt, ReleaseError};
use super::manifest::{
    config_key, file_key, is_valid_hash, is_valid_release_name, parse_active, release_key,
    Manifest, ACTIVE_KEY,
};

/// The KV Store holding releases (named in `fastly.toml`'s `[setup]` and `[local_server]`).
pub const STORE: &str = "fastgate_releases";
/// Where the ops endpoint lives: the edge's own namespace, never routed to an origin.
pub const OPS_PREFIX: &str = "/__fastgate/kv";
/// The Secret Store entry whose presence turns the ops endpoint on.
pub const OPS_KEY_SECRET: &str = "release_ops_key";
/// The Secret Store entry whose presence makes preview hosts ask for a key.
pub const PREVIEW_KEY_SECRET: &str = "release_preview_key";
/// The request field carrying the preview key.
pub const PREVIEW_KEY_HEADER: &str = "fastgate-preview-key";
/// The response field naming the release that answered.
pub const RELEASE_HEADER: &str = "fastgate-release";
/// [`RELEASE_HEADER`]'s value when no release is in force (reserved: no release has it).
pub const NO_RELEASE: &str = "none";
/// Keys one list answer holds at most.
pub const LIST_PAGE: u32 = 1000;

/// A key of the release store, by what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKey {
    Active,
    Release(String),
    Config(String),
    File(String),
}

impl StoreKey {
    /// Reads a store key; anything but the four shapes is refused.
    pub fn parse(key: &str) -> Result<StoreKey, ReleaseError> {
        let bad = || ReleaseError::BadKey(excerpt(key));
        if key == ACTIVE_KEY {
            return Ok(StoreKey::Active);
        }
        let (kind, rest) = key.split_once('/').ok_or_else(bad)?;
        match kind {
            "releases" if is_valid_release_name(rest) => Ok(StoreKey::Release(rest.to_owned())),
            "configs" if is_valid_hash(rest) => Ok(StoreKey::Config(rest.to_owned())),
            "files" if is_valid_hash(rest) => Ok(StoreKey::File(rest.to_owned())),
            _ => Err(bad()),
        }
    }

    /// The key as stored.
    pub fn as_key(&self) -> String {
        match self {
            StoreKey::Active => ACTIVE_KEY.to_owned(),
            StoreKey::Release(name) => release_key(name),
            StoreKey::Config(hash) => config_key(hash),
            StoreKey::File(hash) => file_key(hash),
        }
    }
}

/// One ops request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsRequest {
    List {
        prefix: String,
        cursor: Option<String>,
    },
    Get(StoreKey),
    Put(StoreKey),
    Delete(StoreKey),
}

/// Why an ops request is refused before any store work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsRefusal {
    #[error("{0}")]
    BadKey(ReleaseError),
    #[error("method {0} is not allowed here")]
    Method(String),
    #[error("`prefix` must be one of `releases/`, `configs/`, `files/` or empty")]
    BadPrefix,
}

/// Whether `path` is under the ops endpoint (so never routed).
pub fn is_ops_path(path: &str) -> bool {
    path.strip_prefix(OPS_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Reads an ops request from its method, path (under [`OPS_PREFIX`]) and query.
pub fn parse_request(
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Result<OpsRequest, OpsRefusal> {
    let rest = path.strip_prefix(OPS_PREFIX).unwrap_or("");
    let key = rest.strip_prefix('/').filter(|k| !k.is_empty());
    let Some(key) = key else {
        if method != "GET" {
            return Err(OpsRefusal::Method(method.to_owned()));
        }
        return list_request(query);
    };
    let key = StoreKey::parse(key).map_err(OpsRefusal::BadKey)?;
    match method {
        "GET" => Ok(OpsRequest::Get(key)),
        "PUT" => Ok(OpsRequest::Put(key)),
        "DELETE" => Ok(OpsRequest::Delete(key)),
        other => Err(OpsRefusal::Method(other.to_owned())),
    }
}

fn list_request(query: Option<&str>) -> Result<OpsRequest, OpsRefusal> {
    let (mut prefix, mut cursor) = (String::new(), None);
    // Values are taken as sent, not percent-decoded: a prefix is one of four plain words,
    // and a cursor is sent back exactly as the list answer gave it.
    let pairs = query
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='));
    for (name, value) in pairs.take(8) {
        match name {
            "prefix" => value.clone_into(&mut prefix),
            "cursor" if !value.is_empty() => cursor = Some(value.to_owned()),
            _ => {}
        }
    }
    if !matches!(prefix.as_str(), "" | "releases/" | "configs/" | "files/") {
        return Err(OpsRefusal::BadPrefix);
    }
    Ok(OpsRequest::List { prefix, cursor })
}

/// Lower-case SHA-256 hex of `bytes`: the name of a content-hashed value.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// What a write must prove before it is stored, as far as `body` alone can tell: a file's
/// or config's bytes hash to its key, a manifest parses and names itself, the pointer
/// names a release. What needs the store (a manifest's references exist, the pointer's
/// release validates) the adapter checks next, with [`Manifest::references`].
pub fn check_put(key: &StoreKey, body: &[u8]) -> Result<(), ReleaseError> {
    match key {
        StoreKey::File(hash) | StoreKey::Config(hash) => {
            if sha256_hex(body) != *hash {
                return Err(ReleaseError::HashMismatch(key.as_key()));
            }
            Ok(())
        }
        StoreKey::Release(name) => {
            let manifest = Manifest::parse(body)?;
            if manifest.name != *name {
                return Err(ReleaseError::NameMismatch {
                    key: name.clone(),
                    name: excerpt(&manifest.name),
                });
            }
            Ok(())
        }
        StoreKey::Active => parse_active(body).map(|_| ()),
    }
}

/// Constant-time equality of a presented secret and the stored one: the time taken does
/// not depend on where they first differ (only on the presented length, which says nothing
/// of the secret).
pub fn secret_matches(presented: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != secret.len());
    for (i, p) in presented.iter().enumerate() {
        diff |= p ^ secret.get(i).copied().unwrap_or(0);
    }
    diff == 0 && !secret.is_empty()
}

/// The bearer token of an `Authorization` value (`Bearer <token>`, scheme case-insensitive).
pub fn bearer(authorization: Option<&[u8]>) -> Option<&[u8]> {
    let value = authorization?;
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_have_four_shapes_and_nothing_else() {
        assert_eq!(StoreKey::parse("active").unwrap(), StoreKey::Active);
        assert_eq!(
            StoreKey::parse("releases/r1").unwrap(),
            StoreKey::Release("r1".into())
        );
        assert_eq!(
            StoreKey::parse(&format!("files/{H}")).unwrap().as_key(),
            format!("files/{H}")
        );
        for bad in [
            "",
            "releases/",
            "releases/R1",
            "releases/a/b",
            "files/abc",
            "configs/../active",
            "other/x",
            "active/",
        ] {
            assert!(StoreKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ops_requests_are_read_strictly() {
        assert!(is_ops_path("/__fastgate/kv") && is_ops_path("/__fastgate/kv/active"));
        assert!(!is_ops_path("/__fastgate/kvx") && !is_ops_path("/api/x"));
        assert_eq!(
            parse_request("GET", "/__fastgate/kv", Some("prefix=releases/")).unwrap(),
            OpsRequest::List {
                prefix: "releases/".into(),
                cursor: None
            }
        );
        assert_eq!(
            parse_request("GET", "/__fastgate/kv", Some("prefix=x")),
            Err(OpsRefusal::BadPrefix)
        );
        assert_eq!(
            parse_request("PUT", "/__fastgate/kv/active", None).unwrap(),
            OpsRequest::Put(StoreKey::Active)
        );
        assert!(matches!(
            parse_request("POST", "/__fastgate/kv/active", None),
            Err(OpsRefusal::Method(_))
        ));
        assert!(matches!(
            parse_request("PUT", "/__fastgate/kv/files/zz", None),
            Err(OpsRefusal::BadKey(_))
        ));
    }

    #[test]
    fn writes_are_bound_to_their_keys() {
        let body = b"hello";
        let key = StoreKey::File(sha256_hex(body));
        assert!(check_put(&key, body).is_ok());
        assert!(matches!(
            check_put(&key, b"other"),
            Err(ReleaseError::HashMismatch(_))
        ));
        let manifest = br#"{"name":"r1","created":1}"#;
        assert!(check_put(&StoreKey::Release("r1".into()), manifest).is_ok());
        assert!(matches!(
            check_put(&StoreKey::Release("r2".into()), manifest),
            Err(ReleaseError::NameMismatch { .. })
        ));
        assert!(check_put(&StoreKey::Active, b"r1\n").is_ok());
        assert!(check_put(&StoreKey::Active, b"R 1").is_err());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secret_matches(b"abc", b"abc"));
        assert!(!secret_matches(b"abd", b"abc"));
        assert!(!secret_matches(b"ab", b"abc"));
        assert!(!secret_matches(b"abcd", b"abc"));
        assert!(!secret_matches(b"", b""));
        assert_eq!(bearer(Some(b"Bearer k1")), Some(&b"k1"[..]));
        assert_eq!(bearer(Some(b"bearer  k1 ")), Some(&b"k1"[..]));
        assert_eq!(bearer(Some(b"Basic k1")), None);
        assert_eq!(bearer(Some(b"Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
