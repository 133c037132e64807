//! The release store as the commands see it: one trait over the three places a release
//! store can be (the running edge's ops endpoint, the local copy Viceroy loads at start,
//! production through the Fastly CLI), so that every command is written once.

use std::collections::BTreeSet;

use anyhow::Result;

/// A release store. Keys and values as in `fastgate::release` (`files/<sha256>`,
/// `configs/<sha256>`, `releases/<name>`, `active`).
pub trait Kv {
    /// Where this store is, for messages ("the edge at http://127.0.0.1:7676").
    fn describe(&self) -> String;
    /// Every key starting with `prefix` (`releases/`, `configs/`, `files/` or empty).
    fn list(&mut self, prefix: &str) -> Result<Vec<String>>;
    /// A value, or `None` when the key is absent.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores every entry, in no particular order: callers order dependent writes
    /// (files before the manifest before the pointer) by separate calls. Fails naming the
    /// key on the first refusal.
    fn put_all(&mut self, entries: &[(String, Vec<u8>)]) -> Result<()>;
    /// Removes a key (absent is fine).
    fn delete(&mut self, key: &str) -> Result<()>;
}

/// Keys under the content-hashed prefixes: what a publish need not upload again.
pub fn stored_content(kv: &mut dyn Kv) -> Result<BTreeSet<String>> {
    let mut keys: BTreeSet<String> = kv.list("files/")?.into_iter().collect();
    keys.extend(kv.list("configs/")?);
    Ok(keys)
}

/// An in-memory store, for unit tests of the commands' logic.
#[cfg(test)]
#[derive(Default)]
pub struct MemKv {
    pub map: std::collections::BTreeMap<String, Vec<u8>>,
    pub puts: Vec<String>,
}

#[cfg(test)]
impl Kv for MemKv {
    fn describe(&self) -> String {
        "memory".into()
    }
    fn list(&mut self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).cloned())
    }
    fn put_all(&mut self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        for (k, v) in entries {
            self.puts.push(k.clone());
            self.map.insert(k.clone(), v.clone());
        }
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<()> {
        self.map.remove(key);
        Ok(())
    }
}
