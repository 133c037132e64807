//! The reference's `_kv` cache of processed payloads: per process, bounded so that a stream
//! of distinct ids cannot grow it without limit (it is cleared when full).

use std::collections::HashMap;
use std::sync::Mutex;

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
