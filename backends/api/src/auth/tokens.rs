//! JWT issue and verification. The algorithm of a token is only trusted to pick among the
//! algorithms this origin is configured to accept, each pinned to its own key (HS256: the
//! shared secret; ES256: the key ring by `kid`), never to choose a key type by itself.

use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::keys::{Jwk, KeyError, KeyRing};
use crate::config::{JwtSettings, SigningAlg};

/// Minimum time between key-ring reloads triggered by an unknown `kid`.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub uid: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("unknown kid")]
    UnknownKid,
    #[error("no signing key")]
    NoKey,
}

pub struct Tokens {
    settings: JwtSettings,
    hs_encoding: EncodingKey,
    hs_decoding: DecodingKey,
    ring: RwLock<Option<KeyRing>>,
    last_reload: RwLock<Instant>,
}

impl Tokens {
    /// Loads (or, for the dev default, generates) ES256 keys when ES256 is used at all.
    pub fn new(settings: JwtSettings) -> Result<Self, KeyError> {
        let uses_es256 =
            settings.signing == SigningAlg::Es256 || settings.accept.contains(&SigningAlg::Es256);
        let ring = if uses_es256 {
            Some(KeyRing::load_or_generate(&settings.keys_dir)?)
        } else {
            None
        };
        Ok(Self {
            hs_encoding: EncodingKey::from_secret(settings.secret.as_bytes()),
            hs_decoding: DecodingKey::from_secret(settings.secret.as_bytes()),
            settings,
            ring: RwLock::new(ring),
            last_reload: RwLock::new(Instant::now()),
        })
    }

    /// Public keys for `/.well-known/jwks.json` (empty when ES256 is off).
    pub fn jwks(&self) -> Vec<Jwk> {
        self.ring
            .read()
            .ok()
            .and_then(|r| r.as_ref().map(KeyRing::jwks))
            .unwrap_or_default()
    }

    /// A token for a logged-in user: `sub` (email), `uid`, `iat`, `exp` (+24 h), `iss`, `aud`.
    pub fn issue(&self, email: &str, uid: &str) -> Result<String, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            sub: email.to_owned(),
            uid: uid.to_owned(),
            iat: now,
            exp: now + self.settings.ttl.as_secs(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
        };
        match self.settings.signing {
            SigningAlg::Hs256 => Ok(jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &self.hs_encoding,
            )?),
            SigningAlg::Es256 => {
                let guard = self.ring.read().map_err(|_| TokenError::NoKey)?;
                let key = guard
                    .as_ref()
                    .and_then(KeyRing::current)
                    .ok_or(TokenError::NoKey)?;
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(key.jwk.kid.clone());
                Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
            }
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let accepted = |a| self.settings.accept.contains(&a);
        match header.alg {
            Algorithm::HS256 if accepted(SigningAlg::Hs256) => Ok(jsonwebtoken::decode::<Claims>(
                token,
                &self.hs_decoding,
                &self.validation(Algorithm::HS256),
            )?
            .claims),
            Algorithm::ES256 if accepted(SigningAlg::Es256) => {
                let kid = header.kid.ok_or(TokenError::UnknownKid)?;
                if let Some(claims) = self.verify_es256(token, &kid)? {
                    return Ok(claims);
                }
                // Another origin may have rotated in a key this one has not read yet.
                self.reload_ring();
                self.verify_es256(token, &kid)?
                    .ok_or(TokenError::UnknownKid)
            }
            _ => Err(TokenError::Algorithm),
        }
    }

    fn verify_es256(&self, token: &str, kid: &str) -> Result<Option<Claims>, TokenError> {
        let guard = self.ring.read().map_err(|_| TokenError::NoKey)?;
        let Some(key) = guard.as_ref().and_then(|r| r.find(kid)) else {
            return Ok(None);
        };
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &key.decoding,
            &self.validation(Algorithm::ES256),
        )?;
        Ok(Some(data.claims))
    }

    /// Whether this origin uses the ES256 key ring at all (signing or accepting).
    pub fn uses_key_ring(&self) -> bool {
        self.settings.signing == SigningAlg::Es256
            || self.settings.accept.contains(&SigningAlg::Es256)
    }

    /// The directory the ES256 keys are read from.
    pub fn keys_dir(&self) -> &std::path::Path {
        &self.settings.keys_dir
    }

    /// Reads the key directory again and swaps the ring in whole: added keys are published
    /// (and the newest signs), removed ones stop verifying. A directory that does not read
    /// as a ring (empty, a half-written file) keeps the current ring. Returns the new kids.
    pub fn reload(&self) -> Result<Vec<String>, KeyError> {
        let ring = KeyRing::load(&self.settings.keys_dir)?;
        let kids = ring.keys.iter().map(|k| k.jwk.kid.clone()).collect();
        if let Ok(mut slot) = self.ring.write() {
            *slot = Some(ring);
        }
        Ok(kids)
    }

    fn reload_ring(&self) {
        {
            let Ok(mut last) = self.last_reload.write() else {
                return;
            };
            if last.elapsed() < RELOAD_INTERVAL {
                return;
            }
            *last = Instant::now();
        }
        match KeyRing::load(&self.settings.keys_dir) {
            Ok(ring) => {
                if let Ok(mut slot) = self.ring.write() {
                    *slot = Some(ring);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reloading the ES256 key ring"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        signing: SigningAlg,
        accept: Vec<SigningAlg>,
        dir: &std::path::Path,
    ) -> JwtSettings {
        JwtSettings {
            signing,
            accept,
            secret: "s3cret".into(),
            issuer: "iss".into(),
            audience: "aud".into(),
            ttl: Duration::from_secs(60),
            keys_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn hs256_and_es256_round_trip_and_pin_algorithms() {
        let dir = std::env::temp_dir().join(format!("fastgate-tok-{}", uuid::Uuid::new_v4()));
        let hs = Tokens::new(settings(SigningAlg::Hs256, vec![SigningAlg::Hs256], &dir)).unwrap();
        let es = Tokens::new(settings(SigningAlg::Es256, vec![SigningAlg::Es256], &dir)).unwrap();
        let t = hs.issue("a@b.com", "u1").unwrap();
        assert_eq!(hs.verify(&t).unwrap().sub, "a@b.com");
        assert!(
            es.verify(&t).is_err(),
            "HS256 must not pass where only ES256 is accepted"
        );
        let t = es.issue("a@b.com", "u1").unwrap();
        let c = es.verify(&t).unwrap();
        assert_eq!((c.uid.as_str(), c.exp - c.iat), ("u1", 60));
        assert!(hs.verify(&t).is_err());
        assert_eq!(es.jwks().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
