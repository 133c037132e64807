//! A `users` row as the endpoints read it, and the two unique keys it is found by.

use sqlx::Row;

/// One user, as sign-up writes it (the password hash stays in the database).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub joined: String,
}

impl UserRow {
    /// Reads the columns `id, email, full_name, joined`, in that order.
    pub(super) fn from_sql(r: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get(0)?,
            email: r.try_get(1)?,
            full_name: r.try_get(2)?,
            joined: r.try_get(3)?,
        })
    }
}

/// A unique key of the `users` table; both lookups are one path over this.
#[derive(Debug, Clone, Copy)]
pub(super) enum UserKey<'a> {
    Email(&'a str),
    Id(&'a str),
}

impl UserKey<'_> {
    pub(super) fn value(&self) -> &str {
        match self {
            UserKey::Email(v) | UserKey::Id(v) => v,
        }
    }

    /// Whether `row` holds exactly this key (byte for byte: no collation, no case folding).
    pub(super) fn matches(&self, row: &UserRow) -> bool {
        match self {
            UserKey::Email(email) => row.email == *email,
            UserKey::Id(id) => row.id == *id,
        }
    }
}
