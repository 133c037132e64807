//! The queries behind the reference's work endpoints (items, uploads, summaries, documents),
//! each written once for SQLite and PostgreSQL. The `users` table's are in [`crate::users`].

use sqlx::Row;

use crate::db::Db;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub key: String,
    pub summary: String,
    pub created_at: String,
}

impl Db {
    /// Inserts one `items` row through the group-commit writer; returns once committed.
    pub async fn insert_item(
        &self,
        data: String,
        effect: Option<String>,
    ) -> Result<(), sqlx::Error> {
        self.items.insert(data, effect).await
    }

    /// Whether the user has uploads still waiting for (or in) the worker.
    pub async fn has_queued_jobs(&self, user_id: &str) -> Result<bool, sqlx::Error> {
        let row =
            sqlx::query("SELECT 1 FROM jobs WHERE user_id = $1 AND status = 'queued' LIMIT 1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    pub async fn summaries_for(&self, user_id: &str) -> Result<Vec<SummaryRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT key, summary, created_at FROM summaries WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SummaryRow {
                    key: r.try_get(0)?,
                    summary: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                })
            })
            .collect()
    }
}
