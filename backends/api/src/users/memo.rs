//! The per-process memo of `users` rows, by email and by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::row::{UserKey, UserRow};

/// A bounded per-process memo of `users` rows, by email and by id, in front of the
/// profile and user-record lookups.
///
/// Why it is safe, even with several origin processes sharing one database: a `users` row
/// never changes after sign-up. This API has no endpoint (and no worker, migration or job)
/// that updates or deletes a user, `id` and `email` are both unique, and the row is written
/// once, whole, by `INSERT`. So once a lookup by a key has found a row, every later lookup
/// by that key, from any process, finds the same row: a remembered hit can never be stale.
/// Only hits are remembered; a miss (no such user yet) always goes to the database, so a
/// user who signs up through another origin process is seen at once. Like the payload
/// cache ([`crate::payloads`]), it is cleared when full, so distinct keys cannot grow it
/// without limit.
///
/// If users ever become mutable or deletable, this memo must go (or be invalidated across
/// processes) before that endpoint ships.
pub(super) struct RowMemo {
    maps: Mutex<Maps>,
    capacity: usize,
}

#[derive(Default)]
struct Maps {
    by_email: HashMap<String, Arc<UserRow>>,
    by_id: HashMap<String, Arc<UserRow>>,
}

impl RowMemo {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            maps: Mutex::new(Maps::default()),
            capacity,
        }
    }

    pub(super) fn get(&self, key: UserKey<'_>) -> Option<Arc<UserRow>> {
        let maps = self.maps.lock().ok()?;
        match key {
            UserKey::Email(email) => maps.by_email.get(email).cloned(),
            UserKey::Id(id) => maps.by_id.get(id).cloned(),
        }
    }

    /// Remembers a row the database returned for a lookup, under its email and its id.
    pub(super) fn put(&self, row: Arc<UserRow>) {
        if let Ok(mut maps) = self.maps.lock() {
            if maps.by_email.len() >= self.capacity || maps.by_id.len() >= self.capacity {
                maps.by_email.clear();
                maps.by_id.clear();
            }
            maps.by_email.insert(row.email.clone(), row.clone());
            maps.by_id.insert(row.id.clone(), row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u32) -> Arc<UserRow> {
        Arc::new(UserRow {
            id: format!("id-{n}"),
            email: format!("u{n}@example.com"),
            full_name: None,
            joined: "2024-01-01".into(),
        })
    }

    #[test]
    fn user_cache_finds_by_both_keys_and_stays_bounded() {
        let cache = RowMemo::new(2);
        cache.put(row(1));
        assert_eq!(
            cache.get(UserKey::Email("u1@example.com")).unwrap().id,
            "id-1"
        );
        assert_eq!(
            cache.get(UserKey::Id("id-1")).unwrap().email,
            "u1@example.com"
        );
        assert!(cache.get(UserKey::Id("id-2")).is_none());
        cache.put(row(2));
        cache.put(row(3));
        assert!(
            cache.get(UserKey::Id("id-1")).is_none(),
            "cleared when full"
        );
        assert_eq!(cache.get(UserKey::Id("id-3")).unwrap().id, "id-3");
    }
}
