//! The ES256 key ring: PKCS#8 PEM files in a directory. Every key is published in the JWKS
//! (so tokens signed before a rotation still verify); the newest file name signs. `kid` is
//! the RFC 7638 thumbprint. On first run the dev default generates one key; several origin
//! processes may start at once, so the key is written to a temp file and hard-linked into
//! place, which fails for all but one of them, and everyone then reads the winner's file.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p256::SecretKey;
use rand_core::OsRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// File name of the key generated on first run; later keys should sort after it.
const FIRST_KEY: &str = "0001.pem";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a P-256 PKCS#8 private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("no ES256 key in {0}")]
    Empty(PathBuf),
}

/// A public key as published in `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
}

pub struct EcKey {
    pub jwk: Jwk,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

pub struct KeyRing {
    /// Oldest first; the last one signs.
    pub keys: Vec<EcKey>,
}

impl KeyRing {
    pub fn current(&self) -> Option<&EcKey> {
        self.keys.last()
    }

    pub fn find(&self, kid: &str) -> Option<&EcKey> {
        self.keys.iter().find(|k| k.jwk.kid == kid)
    }

    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys.iter().map(|k| k.jwk.clone()).collect()
    }

    /// Loads every `*.pem` in `dir`, generating the first key if there is none.
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        if pem_files(dir)?.is_empty() {
            generate_into(dir)?;
        }
        Self::load(dir)
    }

    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let keys = pem_files(dir)?
            .into_iter()
            .map(|path| {
                let pem = std::fs::read_to_string(&path).map_err(|source| KeyError::Io {
                    path: path.clone(),
                    source,
                })?;
                parse_key(&pem).map_err(|reason| KeyError::BadKey { path, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Empty(dir.to_path_buf()));
        }
        Ok(Self { keys })
    }
}

/// What the key directory holds, as far as a reload is concerned: each `*.pem` file's
/// name, size and modification time. Two equal fingerprints mean nothing to reload.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    pem_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let entries = std::fs::read_dir(dir).map_err(|source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    files.sort();
    Ok(files)
}

/// Publishes a fresh key as `FIRST_KEY` unless another process already did.
fn generate_into(dir: &Path) -> Result<(), KeyError> {
    let secret = SecretKey::random(&mut OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::BadKey {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    write_private(&tmp, pem.as_bytes()).map_err(io(&tmp))?;
    let target = dir.join(FIRST_KEY);
    let linked = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(&target)(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn parse_key(pem: &str) -> Result<EcKey, String> {
    let secret = SecretKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err("public key is the identity point".into());
    };
    let x = URL_SAFE_NO_PAD.encode(x);
    let y = URL_SAFE_NO_PAD.encode(y);
    // RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
    Ok(EcKey {
        jwk: Jwk {
            kty: "EC",
            crv: "P-256",
            x,
            y,
            kid,
            use_: "sig",
            alg: "ES256",
        },
        encoding,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_first_runs_agree_on_one_key() {
        let dir = std::env::temp_dir().join(format!("fastgate-keys-{}", uuid::Uuid::new_v4()));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || KeyRing::load_or_generate(&dir).unwrap().jwks())
            })
            .collect();
        let sets: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(sets.iter().all(|s| s == &sets[0] && s.len() == 1));
        let _ = std::fs::remove_dir_all(dir);
    }
}
