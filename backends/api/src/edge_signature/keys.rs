//! The shared HMAC keys, by key id, from the environment. Several may be listed at once so
//! a key can be rotated in at the edge before the old one is retired here.

use std::sync::Arc;

/// Env var holding the shared keys: `kid1:secret1,kid2:secret2`.
pub const KEYS_VAR: &str = "FASTGATE_IDENTITY_KEYS";

/// Why `FASTGATE_IDENTITY_KEYS` could not be read. Never carries a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeysError {
    #[error("no keys given (expected kid:secret[,kid:secret...])")]
    Empty,
    #[error("entry {0} is not kid:secret with a non-empty kid and secret")]
    Entry(usize),
    #[error("entry {0}: a kid may only hold printable ASCII without '\"', '\\\\', ',' or ':'")]
    KidChars(usize),
    #[error("key id {0:?} is listed twice")]
    DuplicateKid(String),
}

/// The shared HMAC keys by key id. `Debug` shows the ids only.
#[derive(Clone)]
pub struct IdentityKeys(Arc<[(String, Box<[u8]>)]>);

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl IdentityKeys {
    /// Parses `kid1:secret1,kid2:secret2`. Whitespace around entries is ignored; a secret is
    /// everything after the first `:` (UTF-8, used as raw key bytes).
    pub fn parse(spec: &str) -> Result<Self, KeysError> {
        let mut keys: Vec<(String, Box<[u8]>)> = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (kid, secret) = entry
                .split_once(':')
                .map(|(k, s)| (k.trim(), s.trim()))
                .filter(|(k, s)| !k.is_empty() && !s.is_empty())
                .ok_or(KeysError::Entry(i + 1))?;
            if !kid
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && !b"\"\\,:".contains(&b))
            {
                return Err(KeysError::KidChars(i + 1));
            }
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(KeysError::DuplicateKid(kid.to_owned()));
            }
            if secret.len() < 32 {
                tracing::warn!(kid, "edge identity key is shorter than 32 bytes");
            }
            keys.push((kid.to_owned(), secret.as_bytes().into()));
        }
        if keys.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(Self(keys.into()))
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub(super) fn get(&self, kid: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| k == kid).map(|(_, s)| &**s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_strictly_and_never_print_secrets() {
        let k = IdentityKeys::parse(" k1:a:b , k2:c ").unwrap();
        assert_eq!(k.get("k1"), Some(&b"a:b"[..]));
        assert_eq!(k.kids().collect::<Vec<_>>(), ["k1", "k2"]);
        assert!(!format!("{k:?}").contains("a:b"));
        assert_eq!(IdentityKeys::parse("").unwrap_err(), KeysError::Empty);
        assert_eq!(IdentityKeys::parse(" , ").unwrap_err(), KeysError::Empty);
        assert_eq!(IdentityKeys::parse("k1").unwrap_err(), KeysError::Entry(1));
        assert_eq!(
            IdentityKeys::parse("k1:x,:y").unwrap_err(),
            KeysError::Entry(2)
        );
        assert_eq!(IdentityKeys::parse("k1:").unwrap_err(), KeysError::Entry(1));
        assert_eq!(
            IdentityKeys::parse("k\"1:x").unwrap_err(),
            KeysError::KidChars(1)
        );
        assert_eq!(
            IdentityKeys::parse("k1:x,k1:y").unwrap_err(),
            KeysError::DuplicateKid("k1".into())
        );
    }
}
