//! The SQL for the `users` table, written once for SQLite and PostgreSQL.

use sqlx::Row;

use super::row::{UserKey, UserRow};
use crate::db::Db;

impl Db {
    /// Writes a new user, whole, once: the only write a `users` row ever gets.
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

    /// The row with this key, straight from the database (the memo is [`super::Users`]'s).
    pub(super) async fn select_user(
        &self,
        key: UserKey<'_>,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        let sql = match key {
            UserKey::Email(_) => "SELECT id, email, full_name, joined FROM users WHERE email = $1",
            UserKey::Id(_) => "SELECT id, email, full_name, joined FROM users WHERE id = $1",
        };
        let row = sqlx::query(sql)
            .bind(key.value())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| UserRow::from_sql(&r)).transpose()
    }
}
