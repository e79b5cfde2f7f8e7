//! [`SqliteStore`]: state store, session store and cross-process refresh lock in one SQLite file
//! (rusqlite, bundled; blocking work runs on `spawn_blocking`). WAL mode and a busy timeout let
//! several processes share the file (CL-REF-02, T-12).
//!
//! The refresh lock is a row in `atauth_client_lock`, taken by `INSERT OR IGNORE` in an immediate
//! transaction after expired rows are deleted; a process takes its in-process mutex first, so tasks
//! of one process never poll against each other, and polls with a jittered backoff only against
//! other processes. State is taken with `DELETE … RETURNING` (single use). The refreshed session
//! is written only if the lock row is still the writer's and unexpired, checked in the same
//! transaction ([`SessionStore::put_session_locked`]): a holder whose TTL ran out writes nothing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atauth_crypto::random::random_token;
use atauth_identity::Did;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::StoreError;
use crate::store::{
    LockGuard, MemoryLock, PendingAuthorization, SessionKey, SessionLock, SessionRecord, SessionStore,
    StateStore,
};

/// State, sessions and locks in one SQLite database. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    local: MemoryLock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn now_unix() -> i64 {
    atauth_crypto::clock::unix_seconds(std::time::SystemTime::now())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atauth_client_state (
    state TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS atauth_client_session (
    did TEXT NOT NULL, session_id TEXT NOT NULL, record TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (did, session_id));
CREATE TABLE IF NOT EXISTS atauth_client_lock (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);
";

const UPSERT_SESSION: &str = "INSERT INTO atauth_client_session (did, session_id, record, updated_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (did, session_id) \
     DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at";

/// The fence of a SQLite lock: its row's name and this holder's owner token.
struct SqliteFence {
    name: String,
    owner: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        })
        .await
        .map_err(backend)?
        .map_err(backend)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), local: MemoryLock::new() })
    }

    /// An in-memory database (tests).
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), local: MemoryLock::new() })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut c)
        })
        .await
        .map_err(backend)?
    }

    /// Tries once to take the database lock `name` for `owner`.
    async fn try_lock(&self, name: String, owner: String, ttl: Duration) -> Result<bool, StoreError> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(30).max(1);
        self.run(move |c| {
            let tx =
                c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let now = now_unix();
            tx.execute(
                "DELETE FROM atauth_client_lock WHERE name = ?1 AND expires_at < ?2",
                params![name, now],
            )
            .map_err(backend)?;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO atauth_client_lock (name, owner, expires_at) VALUES (?1, ?2, ?3)",
                    params![name, owner, now + ttl],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(inserted == 1)
        })
        .await
    }
}

#[async_trait::async_trait]
impl StateStore for SqliteStore {
    async fn put_state(&self, state: &str, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let json = serde_json::to_string(pending)?;
        let (state, exp) = (state.to_owned(), pending.expires_at);
        self.run(move |c| {
            c.execute("DELETE FROM atauth_client_state WHERE expires_at < ?1", params![now_unix()])
                .map_err(backend)?;
            c.execute(
                "INSERT OR REPLACE INTO atauth_client_state (state, record, expires_at) VALUES (?1, ?2, ?3)",
                params![state, json, exp],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn take_state(&self, state: &str, now: i64) -> Result<Option<PendingAuthorization>, StoreError> {
        let state = state.to_owned();
        let row: Option<(String, i64)> = self
            .run(move |c| {
                // DELETE … RETURNING: atomic single use (CL-STATE-01).
                c.query_row(
                    "DELETE FROM atauth_client_state WHERE state = ?1 RETURNING record, expires_at",
                    params![state],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)
            })
            .await?;
        match row {
            Some((json, exp)) if exp > now => Ok(Some(serde_json::from_str(&json)?)),
            _ => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let (did, sid) = (key.did.to_string(), key.session_id.clone());
        let json: Option<String> = self
            .run(move |c| {
                c.query_row(
                    "SELECT record FROM atauth_client_session WHERE did = ?1 AND session_id = ?2",
                    params![did, sid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)
            })
            .await?;
        json.map(|j| serde_json::from_str(&j)).transpose().map_err(StoreError::from)
    }

    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)?;
        let (did, sid) = (record.key.did.to_string(), record.key.session_id.clone());
        self.run(move |c| {
            // Upsert (T-12).
            c.execute(UPSERT_SESSION, params![did, sid, json, now_unix()]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    /// Checks, in the same immediate transaction as the upsert, that `guard`'s lock row is still
    /// this guard's and not expired; otherwise [`StoreError::LockLost`] and nothing is written.
    async fn put_session_locked(&self, record: &SessionRecord, guard: &LockGuard) -> Result<(), StoreError> {
        let Some(fence) = guard.fence::<SqliteFence>() else { return self.put_session(record).await };
        let json = serde_json::to_string(record)?;
        let (did, sid) = (record.key.did.to_string(), record.key.session_id.clone());
        let (name, owner) = (fence.name.clone(), fence.owner.clone());
        self.run(move |c| {
            let tx =
                c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let held = tx
                .query_row(
                    "SELECT 1 FROM atauth_client_lock WHERE name = ?1 AND owner = ?2 AND expires_at >= ?3",
                    params![name, owner, now_unix()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(backend)?
                .is_some();
            if !held {
                return Err(StoreError::LockLost { name });
            }
            tx.execute(UPSERT_SESSION, params![did, sid, json, now_unix()]).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        let (did, sid) = (key.did.to_string(), key.session_id.clone());
        self.run(move |c| {
            c.execute(
                "DELETE FROM atauth_client_session WHERE did = ?1 AND session_id = ?2",
                params![did, sid],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        let d = did.to_string();
        let ids: Vec<String> = self
            .run(move |c| {
                let mut stmt = c
                    .prepare(
                        "SELECT session_id FROM atauth_client_session WHERE did = ?1 ORDER BY session_id",
                    )
                    .map_err(backend)?;
                let rows = stmt.query_map(params![d], |r| r.get(0)).map_err(backend)?;
                rows.collect::<Result<Vec<String>, _>>().map_err(backend)
            })
            .await?;
        Ok(ids.into_iter().map(|session_id| SessionKey { did: did.clone(), session_id }).collect())
    }

    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        let rows: Vec<(String, String)> = self
            .run(|c| {
                let mut stmt = c
                    .prepare("SELECT did, session_id FROM atauth_client_session ORDER BY did, session_id")
                    .map_err(backend)?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await?;
        // Rows were written from valid DIDs; skip any that are not (foreign writes).
        Ok(rows
            .into_iter()
            .filter_map(|(did, session_id)| Some(SessionKey { did: Did::new(did).ok()?, session_id }))
            .collect())
    }
}

#[async_trait::async_trait]
impl SessionLock for SqliteStore {
    /// Takes the in-process lock first (no polling between tasks of one process), then the database
    /// lock row, polling with jittered backoff until `wait` elapses.
    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<LockGuard, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let local = self.local.lock_local(name, wait).await?;
        let owner = random_token::<16>();
        let mut delay = Duration::from_millis(5);
        loop {
            if self.try_lock(name.to_owned(), owner.clone(), ttl).await? {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::LockTimeout { name: name.to_owned() });
            }
            let [j] = atauth_crypto::random::random_bytes::<1>();
            tokio::time::sleep(delay + Duration::from_millis(u64::from(j % 10))).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        let fence = SqliteFence { name: name.to_owned(), owner: owner.clone() };
        let store = self.clone();
        let name = name.to_owned();
        Ok(LockGuard::new(move || {
            Some(Box::pin(async move {
                let _ = store
                    .run(move |c| {
                        c.execute(
                            "DELETE FROM atauth_client_lock WHERE name = ?1 AND owner = ?2",
                            params![name, owner],
                        )
                        .map_err(backend)?;
                        Ok(())
                    })
                    .await;
                drop(local);
            }))
        })
        .with_fence(fence))
    }
}
