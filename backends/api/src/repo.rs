//! The queries behind the reference's endpoints, each written once for SQLite and PostgreSQL.

use std::sync::Arc;

use sqlx::Row;

use crate::cache::UserCache;
use crate::db::Db;

fn user_row(r: &sqlx::any::AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        full_name: r.try_get(2)?,
        joined: r.try_get(3)?,
    })
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub joined: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub key: String,
    pub summary: String,
    pub created_at: String,
}

/// True when an insert failed only because of a UNIQUE constraint (duplicate email).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Db {
    pub async fn insert_user(
        &self,
        user: &UserRow,
        password_hash: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO users (id, email, password_hash, full_name, joined) VALUES ($1, $2, $3, $4, $5)")
            .bind(&user.id)
            .bind(&user.email)
            .bind(password_hash)
            .bind(user.full_name.clone())
            .bind(&user.joined)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `(id, password_hash)` for a login.
    pub async fn credentials(&self, email: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// The user with this email, from `cache` when a lookup already found it (users rows
    /// never change; see [`UserCache`]).
    pub async fn user_by_email(
        &self,
        cache: &UserCache,
        email: &str,
    ) -> Result<Option<Arc<UserRow>>, sqlx::Error> {
        if let Some(row) = cache.by_email(email) {
            return Ok(Some(row));
        }
        let row = sqlx::query("SELECT id, email, full_name, joined FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        let row = row.map(|r| user_row(&r)).transpose()?.map(Arc::new);
        // Keyed by the row's own email: the query matched it exactly (no collation).
        if let Some(row) = row.as_ref().filter(|r| r.email == email) {
            cache.put(row.clone());
        }
        Ok(row)
    }

    /// The user with this id, from `cache` when a lookup already found it.
    pub async fn user_by_id(
        &self,
        cache: &UserCache,
        id: &str,
    ) -> Result<Option<Arc<UserRow>>, sqlx::Error> {
        if let Some(row) = cache.by_id(id) {
            return Ok(Some(row));
        }
        let row = sqlx::query("SELECT id, email, full_name, joined FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let row = row.map(|r| user_row(&r)).transpose()?.map(Arc::new);
        if let Some(row) = row.as_ref().filter(|r| r.id == id) {
            cache.put(row.clone());
        }
        Ok(row)
    }

    /// Inserts one `items` row through the group-commit writer; returns once committed.
    pub async fn insert_item(&self, data: String) -> Result<(), sqlx::Error> {
        self.items.insert(data).await
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

    /// Every stored document's text, oldest first (the retrieval corpus).
    pub async fn document_texts(&self) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query("SELECT content FROM documents ORDER BY created_at, key")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|r| r.try_get(0)).collect()
    }
}
