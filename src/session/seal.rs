//! The sealed session value: `v1.<key id>.<base64url(nonce ‖ ciphertext)>`, where the
//! plaintext is the [`Session`] as JSON and the AEAD's associated data binds the value to
//! its purpose and key id, so a ciphertext made for anything else never opens as a session.
//! XChaCha20-Poly1305's 192-bit nonces are drawn at random per seal: no counter to keep
//! across instances, and no realistic chance of a repeat.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// The Secret Store entry holding the key ring: `kid:hex64[,kid:hex64…]`, first seals.
pub const SESSION_KEYS_SECRET: &str = "session_keys";
const VERSION: &str = "v1";
const AAD: &str = "fastgate-session-v1";
/// The longest cookie value opened: browsers keep about 4 KB per cookie anyway.
const MAX_SEALED_BYTES: usize = 4096;
const NONCE_BYTES: usize = 24;

/// What the sealed value holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The origin's access token, verified at the edge on every request.
    pub token: String,
    /// The double-submit token the page echoes in `X-CSRF-Token`.
    pub csrf: String,
    /// When the session ends (Unix seconds), whatever the token says.
    pub exp: u64,
}

/// Why a session value was not opened, or a key ring not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session key ring is malformed: {0}")]
    BadKeys(&'static str),
    #[error("the session cookie is malformed")]
    Malformed,
    #[error("the session cookie was sealed with an unknown key")]
    UnknownKey,
    #[error("the session cookie does not open")]
    Forged,
    #[error("the session has expired")]
    Expired,
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The session keys, first one sealing, every one opening (rotation: add the new key first,
/// keep the old until the longest session has ended, then drop it).
pub struct SessionKeys(Vec<Key>);

impl SessionKeys {
    /// Reads `kid:hex64[,kid:hex64…]`: 1–32 id characters of `[A-Za-z0-9_-]`, 32-byte keys.
    pub fn parse(text: &str) -> Result<SessionKeys, SessionError> {
        let mut keys = Vec::new();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .take(8)
        {
            let (id, hex) = entry
                .split_once(':')
                .ok_or(SessionError::BadKeys("kid:hex"))?;
            let id_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            if id.is_empty() || id.len() > 32 || !id.bytes().all(id_ok) {
                return Err(SessionError::BadKeys("key id"));
            }
            let key = decode_hex32(hex.trim()).ok_or(SessionError::BadKeys("64 hex digits"))?;
            let cipher = XChaCha20Poly1305::new((&key).into());
            keys.push(Key {
                id: id.to_owned(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(SessionError::BadKeys("no key"));
        }
        Ok(SessionKeys(keys))
    }

    /// Seals `session` with the first key and `nonce` (random, from the caller).
    pub fn seal(&self, session: &Session, nonce: [u8; NONCE_BYTES]) -> String {
        let key = &self.0[0];
        let plaintext = serde_json::to_vec(session).unwrap_or_default();
        let aad = aad(&key.id);
        let payload = Payload {
            msg: &plaintext,
            aad: aad.as_bytes(),
        };
        // Encryption only fails for messages far over any cookie's size.
        let ciphertext = key
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{VERSION}.{}.{}", key.id, B64.encode(sealed))
    }

    /// Opens a cookie value: the key its id names, the tag, then the session's end.
    pub fn open(&self, value: &str, now: u64) -> Result<Session, SessionError> {
        if value.len() > MAX_SEALED_BYTES {
            return Err(SessionError::Malformed);
        }
        let mut parts = value.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        let key = self
            .0
            .iter()
            .find(|k| k.id == id)
            .ok_or(SessionError::UnknownKey)?;
        let bytes = B64.decode(body).map_err(|_| SessionError::Malformed)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SessionError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let aad = aad(id);
        let payload = Payload {
            msg: ciphertext,
            aad: aad.as_bytes(),
        };
        let plaintext = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SessionError::Forged)?;
        let session: Session =
            serde_json::from_slice(&plaintext).map_err(|_| SessionError::Forged)?;
        if session.exp <= now {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }
}

fn aad(key_id: &str) -> String {
    format!("{AAD}.{key_id}")
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn session() -> Session {
        Session {
            token: "eyJ.token.sig".into(),
            csrf: "c".repeat(32),
            exp: 2_000,
        }
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_until_it_ends() {
        let keys = SessionKeys::parse(K1).unwrap();
        let sealed = keys.seal(&session(), [7; 24]);
        assert!(sealed.starts_with("v1.k1."));
        assert!(
            !sealed.contains("eyJ"),
            "the token is not readable in the cookie"
        );
        assert_eq!(keys.open(&sealed, 1_000), Ok(session()));
        assert_eq!(keys.open(&sealed, 2_000), Err(SessionError::Expired));
    }

    #[test]
    fn rotation_opens_old_sessions_and_seals_with_the_new_key() {
        let old = SessionKeys::parse(K1).unwrap().seal(&session(), [1; 24]);
        let ring = SessionKeys::parse(&format!("{K2},{K1}")).unwrap();
        assert_eq!(ring.open(&old, 1), Ok(session()));
        assert!(ring.seal(&session(), [2; 24]).starts_with("v1.k2."));
        let dropped = SessionKeys::parse(K2).unwrap();
        assert_eq!(dropped.open(&old, 1), Err(SessionError::UnknownKey));
    }

    #[test]
    fn tampering_and_garbage_never_open() {
        let keys = SessionKeys::parse(K1).unwrap();
        let sealed = keys.seal(&session(), [3; 24]);
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(keys.open(&flipped, 1), Err(SessionError::Forged));
        // The same ciphertext presented under another key id (AAD binds the id).
        let other = SessionKeys::parse(&K1.replace("k1:", "k9:")).unwrap();
        let renamed = sealed.replacen("v1.k1.", "v1.k9.", 1);
        assert_eq!(other.open(&renamed, 1), Err(SessionError::Forged));
        for bad in [
            "",
            "v1",
            "v1.k1",
            "v1.k1.",
            "v2.k1.AAAA",
            "v1.k1.@@@",
            &"x".repeat(5000),
        ] {
            assert!(keys.open(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_rings_are_read_strictly() {
        for bad in ["", "k1", "k1:abc", "k 1:00", ":00", &K1.replace("00", "zz")] {
            assert!(SessionKeys::parse(bad).is_err(), "{bad}");
        }
    }
}
