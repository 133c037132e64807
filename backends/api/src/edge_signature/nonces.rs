//! The nonces of signed requests that change state, remembered in the database for as long
//! as their signature could still be accepted. Every origin process on the same database
//! shares the table, so a request the edge signed once is admitted once, whichever origin
//! it is replayed to. The insert is the check: `ON CONFLICT DO NOTHING` makes "insert if
//! absent" one atomic statement on both engines, so two processes racing with the same
//! nonce cannot both win.
//!
//! Rows expire with their signature's window (`expires` plus the clock skew); each process
//! deletes expired rows at most every [`PURGE_EVERY_SECS`], after an insert, off the
//! request's path. Only requests whose MAC verified get here, so the table grows with the
//! edge's own write traffic and nothing else.

use fastgate_wire::MAX_WINDOW_SECS;
use sqlx::AnyPool;

use crate::chore::Chore;

/// How often (seconds) one process purges expired nonces.
pub const PURGE_EVERY_SECS: u64 = 30;
/// How long past its expiry a row is kept anyway: the origins' clocks may differ, and one
/// running ahead must not purge a nonce that a slower one would still accept.
const PURGE_MARGIN_SECS: u64 = MAX_WINDOW_SECS;

/// Why a nonce was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum NonceError {
    #[error("nonce already used")]
    Replay,
    #[error("nonce store: {0}")]
    Db(#[from] sqlx::Error),
}

/// The shared store of used nonces (the `edge_nonces` table).
#[derive(Debug, Clone)]
pub struct NonceStore {
    pool: AnyPool,
    /// This process's purge of expired rows.
    purges: Chore,
}

impl NonceStore {
    pub fn new(pool: AnyPool) -> Self {
        Self {
            pool,
            purges: Chore::every(PURGE_EVERY_SECS),
        }
    }

    /// Records `nonce` as used until `until` (unix seconds), or refuses it when it is
    /// already recorded: a replay.
    pub async fn remember(&self, nonce: &str, until: u64, now: u64) -> Result<(), NonceError> {
        let until = i64::try_from(until).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "INSERT INTO edge_nonces (nonce, expires_at) VALUES ($1, $2) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(until)
        .execute(&self.pool)
        .await?;
        self.maybe_purge(now);
        match done.rows_affected() {
            1 => Ok(()),
            _ => Err(NonceError::Replay),
        }
    }

    /// Deletes the nonces that expired before `now` (less the margin); returns how many.
    pub async fn purge(&self, now: u64) -> Result<u64, sqlx::Error> {
        let before = i64::try_from(now.saturating_sub(PURGE_MARGIN_SECS)).unwrap_or(i64::MAX);
        let done = sqlx::query("DELETE FROM edge_nonces WHERE expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Starts a purge in the background when this process has not run one for
    /// [`PURGE_EVERY_SECS`]; the compare-and-swap elects one request to do it.
    fn maybe_purge(&self, now: u64) {
        if !self.purges.elect(now) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(error) = store.purge(now).await {
                tracing::warn!(%error, "purging expired edge nonces failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::db::Db;

    const NONCE: &str = "AAECAwQFBgcICQoLDA0ODw";
    const OTHER: &str = "8PHy8_T19vf4-fr7_P3-_w";

    /// A fresh SQLite database in a temporary directory, migrated.
    async fn store() -> (NonceStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("fastgate-nonces-{}", uuid::Uuid::new_v4()));
        let settings = Settings::from_lookup("t".into(), dir.clone(), None, |_| None).unwrap();
        let db = Db::connect(&settings).await.unwrap();
        (NonceStore::new(db.pool), dir)
    }

    async fn count(store: &NonceStore) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM edge_nonces")
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_nonce_is_admitted_once() {
        let (store, dir) = store().await;
        let now = 1_700_000_000;
        store.remember(NONCE, now + 65, now).await.unwrap();
        assert!(matches!(
            store.remember(NONCE, now + 65, now + 1).await,
            Err(NonceError::Replay)
        ));
        // Another handle on the same database (another process, as far as SQL goes).
        let twin = NonceStore::new(store.pool.clone());
        assert!(matches!(
            twin.remember(NONCE, now + 65, now + 2).await,
            Err(NonceError::Replay)
        ));
        twin.remember(OTHER, now + 65, now + 2).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn expired_nonces_are_purged_with_a_margin() {
        let (store, dir) = store().await;
        let now = 1_700_000_000;
        store.remember(NONCE, now, now - 60).await.unwrap();
        store.remember(OTHER, now + 65, now).await.unwrap();
        // Just expired: kept for the margin, so a slower clock's window is still covered.
        assert_eq!(store.purge(now + 1).await.unwrap(), 0);
        assert_eq!(store.purge(now + PURGE_MARGIN_SECS + 1).await.unwrap(), 1);
        assert_eq!(count(&store).await, 1);
        // An elected insert purges in the background, at most every PURGE_EVERY_SECS.
        let later = now + 65 + PURGE_MARGIN_SECS + 1;
        store.purges.make_due();
        store.remember(NONCE, later + 65, later).await.unwrap();
        for _ in 0..100 {
            if count(&store).await == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(count(&store).await, 1, "OTHER was purged, NONCE is new");
        assert_eq!(store.purges.last(), later);
        let _ = std::fs::remove_dir_all(dir);
    }
}
