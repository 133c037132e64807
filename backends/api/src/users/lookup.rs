//! The read-through lookups: the memo first, then the database, remembering what it finds.

use std::sync::Arc;

use super::memo::RowMemo;
use super::row::{UserKey, UserRow};
use crate::db::Db;

/// Users rows by email or by id, each found in the database at most once per process
/// while it stays in the memo (rows never change; see the module doc).
pub struct Users {
    db: Db,
    memo: RowMemo,
}

impl Users {
    /// Lookups against `db`, remembering up to `capacity` rows before the memo is cleared.
    pub fn new(db: Db, capacity: usize) -> Self {
        Self {
            db,
            memo: RowMemo::new(capacity),
        }
    }

    /// The user with this email (the profile's lookup).
    pub async fn by_email(&self, email: &str) -> Result<Option<Arc<UserRow>>, sqlx::Error> {
        self.find(UserKey::Email(email)).await
    }

    /// The user with this id (the user record's lookup).
    pub async fn by_id(&self, id: &str) -> Result<Option<Arc<UserRow>>, sqlx::Error> {
        self.find(UserKey::Id(id)).await
    }

    async fn find(&self, key: UserKey<'_>) -> Result<Option<Arc<UserRow>>, sqlx::Error> {
        if let Some(row) = self.memo.get(key) {
            return Ok(Some(row));
        }
        let row = self.db.select_user(key).await?.map(Arc::new);
        // Remembered under the row's own key only when the query matched it exactly.
        if let Some(row) = row.as_ref().filter(|r| key.matches(r)) {
            self.memo.put(row.clone());
        }
        Ok(row)
    }
}
