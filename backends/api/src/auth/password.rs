//! argon2id password hashes (PHC strings). Hashing is deliberately slow, so it runs on the
//! blocking pool, never on the async workers that serve other requests.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing: {0}")]
    Hash(String),
    #[error("hashing task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes with argon2id (crate defaults: 19 MiB, t=2, p=1) and a random salt.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks `password` against a stored PHC string; a malformed hash never matches.
pub async fn verify(password: String, phc: Arc<str>) -> Result<bool, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await?)
}

/// A hash of a random password, verified against when the email is unknown so that a
/// login costs the same whether or not the account exists.
pub async fn dummy_hash() -> Result<Arc<str>, PasswordError> {
    let random = SaltString::generate(&mut OsRng).to_string();
    Ok(Arc::from(hash(random).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip() {
        let h: Arc<str> = Arc::from(hash("correct horse".into()).await.unwrap());
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!verify("wrong".into(), h).await.unwrap());
        assert!(!verify("x".into(), Arc::from("not a hash")).await.unwrap());
    }
}
