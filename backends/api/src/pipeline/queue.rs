//! The durable job queue. A job is claimed by setting a lease (`lease_owner`, `lease_until`)
//! with one conditional UPDATE; a job whose lease has expired is claimable again, which is
//! how work of a crashed worker gets done. Times are epoch milliseconds in BIGINT columns so
//! the SQL is the same on SQLite and PostgreSQL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row;

use crate::db::Db;

/// Attempts after which a job that keeps failing is parked as `failed`.
pub const MAX_ATTEMPTS: i64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub object_key: String,
    pub user_id: String,
    pub attempts: i64,
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Db {
    pub async fn enqueue_summarize(
        &self,
        object_key: &str,
        user_id: &str,
        created_at: &str,
    ) -> Result<(), sqlx::Error> {
        // A keyed upload run twice (see `http::idempotency::Effect`) names the same object:
        // its job is queued once.
        sqlx::query("INSERT INTO jobs (kind, object_key, user_id, created_at) VALUES ('summarize', $1, $2, $3) ON CONFLICT (object_key) DO NOTHING")
            .bind(object_key)
            .bind(user_id)
            .bind(created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims the oldest claimable job for `owner` for `lease`. The predicate is repeated in
    /// the outer UPDATE so that, under PostgreSQL's row-lock recheck, two workers racing for
    /// the same row cannot both win; the loser simply gets no row.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Job>, sqlx::Error> {
        let now = now_millis();
        let row = sqlx::query(
            "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND lease_until < $3 ORDER BY id LIMIT 1) \
               AND status = 'queued' AND lease_until < $3 \
             RETURNING id, object_key, user_id, attempts",
        )
        .bind(owner)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Job {
                id: r.try_get(0)?,
                object_key: r.try_get(1)?,
                user_id: r.try_get(2)?,
                attempts: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Stores the document and its summary and marks the job done, in one transaction.
    /// Unique keys make a second completion (after a lease was lost) a no-op.
    pub async fn complete_job(
        &self,
        job: &Job,
        owner: &str,
        content: &str,
        summary: &str,
        created_at: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO documents (key, content, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(&job.object_key)
            .bind(content)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO summaries (user_id, key, summary, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&job.user_id)
        .bind(&job.object_key)
        .bind(summary)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE jobs SET status = 'done', lease_owner = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(job.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Gives a failed attempt back: retry after `backoff`, or park the job as `failed`.
    pub async fn fail_job(
        &self,
        job: &Job,
        owner: &str,
        error: &str,
        backoff: Duration,
    ) -> Result<(), sqlx::Error> {
        let status = if job.attempts >= MAX_ATTEMPTS {
            "failed"
        } else {
            "queued"
        };
        sqlx::query(
            "UPDATE jobs SET status = $1, lease_owner = NULL, lease_until = $2, last_error = $3 \
             WHERE id = $4 AND lease_owner = $5",
        )
        .bind(status)
        .bind(now_millis().saturating_add(millis(backoff)))
        .bind(error)
        .bind(job.id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
