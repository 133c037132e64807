//! ES256 key rotation without a restart. Operators rotate by adding a key file to the key
//! directory (the newest name signs) and, later, removing the old one (docs/OPERATIONS.md).
//! Every origin process notices either change by itself within [`POLL`], or at once on
//! `SIGHUP`, and swaps its ring in whole: the JWKS it publishes, the key it signs with and
//! the keys it verifies with all follow the directory, with no request refused meanwhile.

use std::sync::Arc;
use std::time::Duration;

use super::keys;
use super::Tokens;

/// How often the key directory is looked at (a metadata read per key file).
pub const POLL: Duration = Duration::from_secs(1);

/// Runs for the life of the process: reloads the ring whenever the key directory's
/// fingerprint changes or the process gets `SIGHUP`.
pub async fn watch(tokens: Arc<Tokens>, poll: Duration) {
    let dir = tokens.keys_dir().to_path_buf();
    // Nothing seen yet: the first look reloads once, covering a change made between the
    // ring's first load and this task's start.
    let mut seen = Vec::new();
    let mut hangup = hangup_stream();
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(poll) => false,
            _ = next_hangup(&mut hangup) => true,
        };
        let now = keys::fingerprint(&dir);
        if !forced && now == seen {
            continue;
        }
        match tokens.reload() {
            Ok(kids) => {
                seen = now;
                tracing::info!(?kids, forced, "ES256 key ring reloaded");
            }
            // Kept the current ring; the next change (or SIGHUP) tries again.
            Err(e) => tracing::warn!(error = %e, "ES256 key directory not reloaded"),
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_stream() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_stream() -> Hangup {}

/// Resolves on the next `SIGHUP`; never, where there is no such signal.
async fn next_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        signal.recv().await;
        return;
    }
    let _ = hangup;
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{JwtSettings, SigningAlg};

    #[tokio::test]
    async fn an_added_key_signs_and_a_removed_one_stops_verifying_without_a_restart() {
        let dir = std::env::temp_dir().join(format!("fastgate-rot-{}", uuid::Uuid::new_v4()));
        let settings = JwtSettings {
            signing: SigningAlg::Es256,
            accept: vec![SigningAlg::Es256],
            secret: "s3cret".into(),
            issuer: "iss".into(),
            audience: "aud".into(),
            ttl: Duration::from_secs(60),
            keys_dir: dir.clone(),
        };
        let tokens = Arc::new(Tokens::new(settings).unwrap());
        tokio::spawn(watch(tokens.clone(), Duration::from_millis(20)));
        let old_token = tokens.issue("a@b.com", "u1").unwrap();
        let old_kid = tokens.jwks()[0].kid.clone();
        // A second key, as an operator would add it: generated elsewhere, copied in.
        let other = std::env::temp_dir().join(format!("fastgate-rot2-{}", uuid::Uuid::new_v4()));
        keys::KeyRing::load_or_generate(&other).unwrap();
        std::fs::copy(other.join("0001.pem"), dir.join("0002.pem")).unwrap();
        wait_until(|| tokens.jwks().len() == 2).await;
        let new_token = tokens.issue("a@b.com", "u1").unwrap();
        let new_kid = jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap();
        assert_ne!(new_kid, old_kid, "the newest key signs");
        assert!(
            tokens.verify(&old_token).is_ok(),
            "the old key still verifies"
        );
        std::fs::remove_file(dir.join("0001.pem")).unwrap();
        wait_until(|| tokens.jwks().len() == 1).await;
        assert_eq!(tokens.jwks()[0].kid, new_kid);
        assert!(
            tokens.verify(&old_token).is_err(),
            "a removed key stops verifying"
        );
        assert!(tokens.verify(&new_token).is_ok());
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(other);
    }

    async fn wait_until(done: impl Fn() -> bool) {
        for _ in 0..250 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the key ring did not follow the directory");
    }
}
