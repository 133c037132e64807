//! The reference's `_kv`: processed payloads kept per process, by `cache:<id>`.
//!
//! The reference only writes it, and so does this port, so that `POST /api/process` does
//! the same work per request. Unlike the reference's dict it is bounded so that a stream of distinct ids cannot grow it without limit: when full,
//! it is cleared.

use std::collections::HashMap;
use std::sync::Mutex;

/// The per-process payload store behind `POST /api/process`.
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
