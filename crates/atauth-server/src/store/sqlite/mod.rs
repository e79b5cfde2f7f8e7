//! SQLite backend (the default): one database file in the data directory, WAL journal,
//! `synchronous=NORMAL`, cached prepared statements. Calls run on the store's own threads, never on
//! the async workers: one writer that group-commits concurrent writes (each write in its own
//! savepoint, so every read-then-write operation stays atomic and a failed one is undone alone),
//! and a few readers (see the private `threads` module).
//!
//! One file per concern: `schema` (tables and migrations), then one per store trait. The
//! transactions live in the trait impls; row mapping sits beside the impl that uses it.

mod accounts;
mod clients;
mod devices;
mod factors;
mod families;
mod legacy;
mod lexicons;
mod replay;
mod requests;
mod schema;
mod threads;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;

pub use self::legacy::SqliteLegacyStore;
use self::threads::Threads;
use super::{StoreError, TokenHash};

struct Inner {
    /// `None` only while dropping: the threads stop (and close their connections) first.
    threads: Option<Threads>,
    path: PathBuf,
    delete_on_drop: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.threads.take();
        if self.delete_on_drop {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// The SQLite store. Cheap to clone. See the module docs.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// WAL pages (4 KiB each) after which a commit checkpoints, on the writer thread (SQLite's default
/// is 1000). Writes queue behind a checkpoint's copy and its two `fsync`s; four times fewer of them
/// halved the p99 latency of PAR, refresh and legacy refresh under load at the same CPU, while the
/// slowest requests (the ones that meet a checkpoint) wait longer: 20–80 ms instead of 10–30
/// (docs/BENCHMARKS.md, "Fewer, larger WAL checkpoints"). The WAL grows to about 16 MiB.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 4000;

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it. Blocking: call at startup.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), false)
    }

    /// A fresh database in the system temporary directory, deleted when the last clone drops. For
    /// tests.
    pub fn open_temp() -> Result<Self, StoreError> {
        let name = format!("atauth-test-{}.sqlite", hex::encode(atauth_crypto::random::random_bytes::<8>()));
        Self::open_inner(&std::env::temp_dir().join(name), true)
    }

    fn open_inner(path: &Path, delete_on_drop: bool) -> Result<Self, StoreError> {
        let writer = open_connection(path).map_err(backend)?;
        schema::migrate(&writer)?;
        let threads = Threads::start(writer, path, open_connection)?;
        Ok(Self { inner: Arc::new(Inner { threads: Some(threads), path: path.to_owned(), delete_on_drop }) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn threads(&self) -> Result<&Threads, StoreError> {
        self.inner.threads.as_ref().ok_or_else(|| StoreError::Backend("the SQLite store is closing".into()))
    }

    /// Runs `f` on the writer thread, inside a savepoint of the current batch transaction: `Err`
    /// undoes everything `f` wrote. Answers after the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads()?.write(f).await
    }

    /// Runs `f` on a reader thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads()?.read(f).await
    }
}

// ------------------------------------------------------------------------------- row mapping ---

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash_from(v: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(v).map(TokenHash).map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into()))
}
