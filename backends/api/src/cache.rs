//! The reference's `_kv` cache of processed payloads: per process, bounded so that a stream
//! of distinct ids cannot grow it without limit (it is cleared when full). And a cache of
//! the (immutable) `users` rows the profile and user-record endpoints read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::repo::UserRow;

pub struct PayloadCache {
    entries: Mutex<HashMap<String, String>>,
    capacity: usize,
}

impl PayloadCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn put(&self, key: String, value: String) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= self.capacity && !map.contains_key(&key) {
                map.clear();
            }
            map.insert(key, value);
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.entries.lock().ok().and_then(|m| m.get(key).cloned())
    }
}

/// A bounded per-process cache of `users` rows, by email and by id, in front of the
/// profile and user-record lookups.
///
/// Why it is safe, even with several origin processes sharing one database: a `users` row
/// never changes after sign-up. This API has no endpoint (and no worker, migration or job)
/// that updates or deletes a user, `id` and `email` are both unique, and the row is written
/// once, whole, by `INSERT`. So once a lookup by a key has found a row, every later lookup
/// by that key, from any process, finds the same row: a cached hit can never be stale.
/// Only hits are cached; a miss (no such user yet) always goes to the database, so a user
/// who signs up through another origin process is seen at once. Like [`PayloadCache`], it
/// is cleared when full, so distinct keys cannot grow it without limit.
///
/// If users ever become mutable or deletable, this cache must go (or be invalidated across
/// processes) before that endpoint ships.
pub struct UserCache {
    maps: Mutex<UserMaps>,
    capacity: usize,
}

#[derive(Default)]
struct UserMaps {
    by_email: HashMap<String, Arc<UserRow>>,
    by_id: HashMap<String, Arc<UserRow>>,
}

impl UserCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            maps: Mutex::new(UserMaps::default()),
            capacity,
        }
    }

    pub fn by_email(&self, email: &str) -> Option<Arc<UserRow>> {
        self.maps.lock().ok()?.by_email.get(email).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<UserRow>> {
        self.maps.lock().ok()?.by_id.get(id).cloned()
    }

    /// Remembers a row the database returned for a lookup, under its email and its id.
    pub fn put(&self, row: Arc<UserRow>) {
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
        let cache = UserCache::new(2);
        cache.put(row(1));
        assert_eq!(cache.by_email("u1@example.com").unwrap().id, "id-1");
        assert_eq!(cache.by_id("id-1").unwrap().email, "u1@example.com");
        assert!(cache.by_id("id-2").is_none());
        cache.put(row(2));
        cache.put(row(3));
        assert!(cache.by_id("id-1").is_none(), "cleared when full");
        assert_eq!(cache.by_id("id-3").unwrap().id, "id-3");
    }
}
