//! A user-written `TokenStore`: tokens kept in a JSON file, so a single-instance deployment
//! keeps its access token across restarts (and does not spend the 2,000-a-day token quota on
//! every deploy). It writes only `get`, `set` and `delete`; compare-and-delete and the refresh
//! lease come from the trait's single-process defaults.
//!
//! The example checks the store with the same conformance suite wx's own stores pass:
//!
//! ```sh
//! cargo run --example custom_store
//! ```

#![allow(clippy::print_stdout)] // An example reports to its terminal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;
use wx_core::reexports::async_trait;
use wx_core::test_util::{ConformanceOptions, token_store_conformance};
use wx_core::{StoreError, StoreOp, StoredToken, TokenKey, TokenStore};

#[derive(Default, Serialize, Deserialize)]
struct FileContents {
    /// key -> (value, expires_at in unix milliseconds)
    tokens: HashMap<String, (String, u64)>,
}

/// Tokens in one JSON file, rewritten atomically (temp file + rename) on every change. The
/// file holds secrets: each version is created new (never through an existing file or link)
/// and readable by its owner only (0600 on Unix).
pub(crate) struct FileTokenStore {
    path: PathBuf,
    // Serialises read-modify-write cycles within this process.
    lock: Mutex<()>,
}

impl FileTokenStore {
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        FileTokenStore {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    async fn load(&self, op: StoreOp) -> Result<FileContents, StoreError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::new(op, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileContents::default()),
            Err(e) => Err(StoreError::new(op, e)),
        }
    }

    async fn save(&self, op: StoreOp, contents: &FileContents) -> Result<(), StoreError> {
        // An unpredictable name, created new: another user cannot plant a file or a link there.
        let tmp = self
            .path
            .with_extension(format!("{:016x}.tmp", rand::random::<u64>()));
        let bytes = serde_json::to_vec(contents).map_err(|e| StoreError::new(op, e))?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let written = async {
            let mut file = options.open(&tmp).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &self.path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written.map_err(|e| StoreError::new(op, e))
    }
}

fn to_ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl TokenStore for FileTokenStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        let _guard = self.lock.lock().await;
        let contents = self.load(StoreOp::Get).await?;
        let now = to_ms(SystemTime::now());
        Ok(contents
            .tokens
            .get(&key.to_string())
            .filter(|(_, exp)| *exp > now)
            .map(|(v, exp)| StoredToken::new(v.clone(), UNIX_EPOCH + Duration::from_millis(*exp))))
    }

    async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError> {
        let _guard = self.lock.lock().await;
        let mut contents = self.load(StoreOp::Set).await?;
        let now = to_ms(SystemTime::now());
        contents.tokens.retain(|_, (_, exp)| *exp > now);
        contents.tokens.insert(
            key.to_string(),
            (token.secret().to_owned(), to_ms(token.expires_at)),
        );
        self.save(StoreOp::Set, &contents).await
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        let _guard = self.lock.lock().await;
        let mut contents = self.load(StoreOp::Delete).await?;
        if contents.tokens.remove(&key.to_string()).is_some() {
            self.save(StoreOp::Delete, &contents).await?;
        }
        Ok(())
    }
}

fn temp_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "wx-custom-store-{:016x}.json",
        rand::random::<u64>()
    ))
}

#[tokio::main]
async fn main() {
    let path = temp_path();
    let store = Arc::new(FileTokenStore::new(&path));
    // The default lease methods grant every request (correct for one process), so the suite
    // is told not to expect exclusive leases.
    token_store_conformance(
        store,
        ConformanceOptions {
            exclusive_leases: false,
        },
    )
    .await;
    remove(&path);
    println!(
        "FileTokenStore at {} passed the wx TokenStore conformance suite",
        path.display()
    );
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}
