//! The local copy of the release store: what the next `cargo xtask serve` (or
//! `fastly compute serve`) loads, since Viceroy keeps KV writes in memory only and reads
//! its stores from files when it starts.
//!
//! Layout, under the store directory (`.fastgate/kv/` for `serve`):
//! - `blobs/<key with / as _>`: one file per value (keys are `[a-z0-9/-]` so the mapping
//!   is one to one);
//! - `store.json`: Viceroy's KV Store JSON format, `{"<key>": {"file": "<absolute path>"}}`.
//!
//! `store.json` is the truth: a blob is written (to a temporary name, then renamed) before
//! `store.json` names it, and `store.json` is replaced whole by a rename, so an
//! interrupted command leaves either the old store or the new one, never a key without
//! its bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use fastgate::release::{check_put, parse_active, release_key, Manifest, StoreKey};
use serde_json::{json, Value};

use super::kv::Kv;

/// The index file's name, inside the store directory.
pub const STORE_FILE: &str = "store.json";

/// The local release store.
pub struct LocalStore {
    dir: PathBuf,
    index: BTreeMap<String, Value>,
}

/// Makes `<dir>/store.json` exist (an empty store, `{}`), so that a manifest pointing
/// Viceroy at it always loads; returns its path.
pub fn ensure_store_file(dir: &Path) -> Result<PathBuf> {
    let file = dir.join(STORE_FILE);
    if !file.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_atomically(&file, b"{}")?;
    }
    Ok(file)
}

impl LocalStore {
    /// Opens (creating when absent) the store in `dir`.
    pub fn open(dir: &Path) -> Result<LocalStore> {
        let dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
        let file = ensure_store_file(&dir)?;
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let index = match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => bail!("{}: not a KV Store JSON object", file.display()),
        };
        Ok(LocalStore { dir, index })
    }

    /// The store's `store.json`, for a stack's `kv_store`.
    pub fn store_file(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    fn blob_path(&self, key: &str) -> PathBuf {
        self.dir.join("blobs").join(key.replace('/', "_"))
    }

    /// What the edge's ops endpoint checks before a write, for the local copy: the same
    /// release must not load there and fail here.
    fn check(&self, key: &str, bytes: &[u8], batch: &BTreeSet<&str>) -> Result<()> {
        let parsed = StoreKey::parse(key).map_err(|e| anyhow!("{e}"))?;
        check_put(&parsed, bytes).map_err(|e| anyhow!("{e}"))?;
        let stored = |k: &str| self.index.contains_key(k) || batch.contains(k);
        let needed = match parsed {
            StoreKey::Release(_) => Manifest::parse(bytes)
                .map_err(|e| anyhow!("{e}"))?
                .references(),
            StoreKey::Active => vec![release_key(
                &parse_active(bytes).map_err(|e| anyhow!("{e}"))?,
            )],
            StoreKey::Config(_) | StoreKey::File(_) => Vec::new(),
        };
        match needed.into_iter().find(|k| !stored(k)) {
            Some(missing) => bail!("`{missing}` is not in the release store"),
            None => Ok(()),
        }
    }

    fn save_index(&self) -> Result<()> {
        let map: serde_json::Map<String, Value> = self.index.clone().into_iter().collect();
        let text = serde_json::to_vec_pretty(&Value::Object(map))?;
        write_atomically(&self.store_file(), &text)
    }
}

impl Kv for LocalStore {
    fn describe(&self) -> String {
        format!("the local copy ({})", self.dir.display())
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .index
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// Reads `{"file": path}`, `{"data": text}` or a bare string, as Viceroy does.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.index.get(key) else {
            return Ok(None);
        };
        if let Some(file) = entry.get("file").and_then(Value::as_str) {
            let bytes = std::fs::read(file)
                .with_context(|| format!("{}: reading `{key}` from {file}", self.describe()))?;
            return Ok(Some(bytes));
        }
        let data = entry.get("data").and_then(Value::as_str).or(entry.as_str());
        data.map(|d| Some(d.as_bytes().to_vec()))
            .ok_or_else(|| anyhow!("{}: `{key}` has neither `file` nor `data`", self.describe()))
    }

    /// Checks each value as the edge would (a content-hashed value hashes to its key, a
    /// manifest names itself and only stored values, the pointer names a stored release),
    /// then writes the blobs, then the index once.
    fn put_all(&mut self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let batch: BTreeSet<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        for (key, bytes) in entries {
            self.check(key, bytes, &batch)
                .with_context(|| format!("{}: refused `{key}`", self.describe()))?;
        }
        for (key, bytes) in entries {
            let path = self.blob_path(key);
            std::fs::create_dir_all(self.dir.join("blobs"))?;
            write_atomically(&path, bytes)?;
            self.index
                .insert(key.clone(), json!({ "file": path.display().to_string() }));
        }
        self.save_index()
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        if self.index.remove(key).is_some() {
            self.save_index()?;
        }
        match std::fs::remove_file(self.blob_path(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing the blob of `{key}`"))
            }
            _ => Ok(()),
        }
    }
}

/// Writes `path` through a temporary file in the same directory and a rename, so that a
/// reader (Viceroy starting) sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastgate::release::{file_key, sha256_hex};

    #[test]
    fn values_round_trip_and_store_json_is_what_viceroy_reads() {
        let dir = std::env::temp_dir().join(format!("fastgate-local-kv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = LocalStore::open(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join(STORE_FILE)).unwrap(), "{}");
        let body = b"hello".to_vec();
        let key = file_key(&sha256_hex(&body));
        let manifest = format!(
            r#"{{"name":"r1","created":1,"files":{{"/a":{{"hash":"{}","content_type":"text/plain","size":5}}}}}}"#,
            sha256_hex(&body)
        );
        let e = store
            .put_all(&[("releases/r1".into(), manifest.clone().into_bytes())])
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("is not in the release store"),
            "{e:#}"
        );
        store
            .put_all(&[
                (key.clone(), body.clone()),
                ("releases/r1".into(), manifest.into_bytes()),
            ])
            .unwrap();
        store.put_all(&[("active".into(), b"r1".to_vec())]).unwrap();
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(STORE_FILE)).unwrap()).unwrap();
        let file = json[&key]["file"].as_str().unwrap();
        assert!(Path::new(file).is_absolute(), "{file}");
        assert!(
            file.ends_with(&format!("blobs/files_{}", sha256_hex(&body))),
            "{file}"
        );
        assert_eq!(std::fs::read(file).unwrap(), body);
        let mut reopened = LocalStore::open(&dir).unwrap();
        assert_eq!(reopened.get(&key).unwrap(), Some(body));
        assert_eq!(reopened.list("files/").unwrap(), std::slice::from_ref(&key));
        assert_eq!(reopened.get("releases/none").unwrap(), None);
        reopened.delete(&key).unwrap();
        assert!(!Path::new(file).exists());
        assert_eq!(
            LocalStore::open(&dir).unwrap().list("").unwrap(),
            ["active", "releases/r1"]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_value_that_does_not_hash_to_its_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("fastgate-local-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = LocalStore::open(&dir).unwrap();
        let key = file_key(&sha256_hex(b"one"));
        let e = store.put_all(&[(key, b"two".to_vec())]).unwrap_err();
        assert!(format!("{e:#}").contains("do not hash"), "{e:#}");
        let e = store
            .put_all(&[("active".into(), b"r9".to_vec())])
            .unwrap_err();
        assert!(format!("{e:#}").contains("releases/r9"), "{e:#}");
        assert!(store.list("").unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
