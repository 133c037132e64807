//! Object storage for uploaded content via `object_store`: a local directory
//! (`<data-dir>/objects`) by default, any supported URL (`OBJECT_STORE_URL`) otherwise.

use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("creating {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("OBJECT_STORE_URL: {0}")]
    Url(String),
    #[error(transparent)]
    Store(#[from] object_store::Error),
}

#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

impl Blobs {
    pub fn open(data_dir: &Path, url: Option<&str>) -> Result<Self, StorageError> {
        let store: Arc<dyn ObjectStore> = match url {
            Some(url) => {
                let parsed = url::Url::parse(url).map_err(|e| StorageError::Url(e.to_string()))?;
                let (store, _) = object_store::parse_url(&parsed)?;
                Arc::from(store)
            }
            None => {
                let dir = data_dir.join("objects");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| StorageError::Dir(dir.display().to_string(), e))?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir)?)
            }
        };
        Ok(Self { store })
    }

    pub async fn put(&self, key: &str, content: Vec<u8>) -> Result<(), object_store::Error> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(content))
            .await?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, object_store::Error> {
        let got = self.store.get(&ObjectPath::from(key)).await?;
        Ok(got.bytes().await?.to_vec())
    }
}
