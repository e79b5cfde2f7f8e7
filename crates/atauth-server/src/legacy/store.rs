//! [`LegacyStore`]: app passwords and legacy refresh tokens, with a memory and a SQLite backend and
//! the [`conformance`] suite both pass.
//!
//! Refresh rotation (LEG-05) is one critical section / one SQL transaction: the old token's expiry is
//! cut to the grace period, its `next_id` is fixed on first use (so a retry inside the grace period
//! gets a token with the **same** id), and the new token is inserted if absent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::store::SqliteStore;

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};

use crate::store::StoreError;

/// A stored app password (LEG-10). `password_hash` is scrypt in the reference format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPasswordRecord {
    /// The account.
    pub did: String,
    /// The name (unique per account).
    pub name: String,
    /// `salt:hexhash`.
    pub password_hash: atauth_crypto::SecretString,
    /// Privileged (scope `com.atproto.appPassPrivileged`).
    pub privileged: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A legacy refresh token, by its `jti` (LEG-04/05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRefreshRecord {
    /// The `jti`.
    pub id: String,
    /// The account.
    pub did: String,
    /// The app password the session was created with, if any.
    pub app_password: Option<String>,
    /// Whether that app password is privileged.
    pub privileged: bool,
    /// Unix seconds; cut to the grace period after the first rotation.
    pub expires_at: i64,
    /// The id of the token this one was rotated into (LEG-05).
    pub next_id: Option<String>,
}

/// The result of [`LegacyStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The old token as it was before rotation.
    pub old: LegacyRefreshRecord,
    /// The next token's id (the existing `next_id` on a retry inside the grace period).
    pub next_id: String,
}

/// App passwords and legacy refresh tokens.
#[async_trait]
pub trait LegacyStore: Send + Sync + 'static {
    /// Inserts an app password; [`StoreError::Conflict`]`("name")` if the account has one so named.
    async fn create_app_password(&self, record: AppPasswordRecord) -> Result<(), StoreError>;
    /// The account's app passwords, oldest first.
    async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPasswordRecord>, StoreError>;
    /// Deletes an app password **and the refresh tokens of its sessions**, atomically; `false` if absent.
    async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, StoreError>;
    /// Stores a refresh token (no-op if the id exists).
    async fn insert_refresh(&self, record: LegacyRefreshRecord) -> Result<(), StoreError>;
    /// The live (unexpired at `now`) refresh token with this id.
    async fn refresh_by_id(&self, id: &str, now: i64) -> Result<Option<LegacyRefreshRecord>, StoreError>;
    /// Rotates `id` atomically (LEG-05): `None` if it is absent or expired at `now`; otherwise cuts
    /// its expiry to `min(grace_until, expiry)`, fixes `next_id` (keeping an existing one, else
    /// `candidate_next_id`) and inserts the next token (same did/app password, `new_expires_at`) if absent.
    async fn rotate_refresh(
        &self,
        id: &str,
        now: i64,
        grace_until: i64,
        candidate_next_id: &str,
        new_expires_at: i64,
    ) -> Result<Option<Rotated>, StoreError>;
    /// Deletes a refresh token; `false` if absent.
    async fn delete_refresh(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes every refresh token of an account; how many.
    async fn delete_refresh_for_did(&self, did: &str) -> Result<u64, StoreError>;
    /// Deletes refresh tokens expired at `now`; how many.
    async fn purge_expired_refresh(&self, now: i64) -> Result<u64, StoreError>;
}

// --------------------------------------------------------------------------------------- memory ---

#[derive(Debug, Default)]
struct MemoryInner {
    app_passwords: Vec<AppPasswordRecord>,
    refresh: HashMap<String, LegacyRefreshRecord>,
}

/// In-memory [`LegacyStore`] (one mutex).
#[derive(Debug, Default, Clone)]
pub struct MemoryLegacyStore(Arc<Mutex<MemoryInner>>);

impl MemoryLegacyStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl LegacyStore for MemoryLegacyStore {
    async fn create_app_password(&self, record: AppPasswordRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.app_passwords.iter().any(|a| a.did == record.did && a.name == record.name) {
            return Err(StoreError::Conflict("name"));
        }
        g.app_passwords.push(record);
        Ok(())
    }

    async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPasswordRecord>, StoreError> {
        Ok(self.lock().app_passwords.iter().filter(|a| a.did == did).cloned().collect())
    }

    async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let before = g.app_passwords.len();
        g.app_passwords.retain(|a| !(a.did == did && a.name == name));
        let found = g.app_passwords.len() != before;
        g.refresh.retain(|_, r| !(r.did == did && r.app_password.as_deref() == Some(name)));
        Ok(found)
    }

    async fn insert_refresh(&self, record: LegacyRefreshRecord) -> Result<(), StoreError> {
        self.lock().refresh.entry(record.id.clone()).or_insert(record);
        Ok(())
    }

    async fn refresh_by_id(&self, id: &str, now: i64) -> Result<Option<LegacyRefreshRecord>, StoreError> {
        Ok(self.lock().refresh.get(id).filter(|r| r.expires_at > now).cloned())
    }

    async fn rotate_refresh(
        &self,
        id: &str,
        now: i64,
        grace_until: i64,
        candidate_next_id: &str,
        new_expires_at: i64,
    ) -> Result<Option<Rotated>, StoreError> {
        let mut g = self.lock();
        let Some(old) = g.refresh.get(id).filter(|r| r.expires_at > now).cloned() else { return Ok(None) };
        let next_id = old.next_id.clone().unwrap_or_else(|| candidate_next_id.to_owned());
        if let Some(r) = g.refresh.get_mut(id) {
            r.expires_at = r.expires_at.min(grace_until);
            r.next_id = Some(next_id.clone());
        }
        g.refresh.entry(next_id.clone()).or_insert_with(|| LegacyRefreshRecord {
            id: next_id.clone(),
            did: old.did.clone(),
            app_password: old.app_password.clone(),
            privileged: old.privileged,
            expires_at: new_expires_at,
            next_id: None,
        });
        Ok(Some(Rotated { old, next_id }))
    }

    async fn delete_refresh(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().refresh.remove(id).is_some())
    }

    async fn delete_refresh_for_did(&self, did: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.refresh.len();
        g.refresh.retain(|_, r| r.did != did);
        Ok((before - g.refresh.len()) as u64)
    }

    async fn purge_expired_refresh(&self, now: i64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.refresh.len();
        g.refresh.retain(|_, r| r.expires_at > now);
        Ok((before - g.refresh.len()) as u64)
    }
}

// --------------------------------------------------------------------------------------- sqlite ---

/// SQLite [`LegacyStore`]: tables `legacy_app_password` and `legacy_refresh_token` in a
/// [`SqliteStore`]'s database, run on that store's writer and reader threads (so legacy writes share
/// the group commit of the OAuth writes instead of contending with them for the write lock). The
/// server's default (`data_dir`, no custom stores) puts them in `atauth.sqlite` next to everything else.
#[derive(Clone)]
pub struct SqliteLegacyStore(SqliteStore);

impl std::fmt::Debug for SqliteLegacyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SqliteLegacyStore").field(&self.0.path()).finish()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS legacy_app_password (
    did TEXT NOT NULL, name TEXT NOT NULL, password_hash TEXT NOT NULL,
    privileged INTEGER NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (did, name));
CREATE TABLE IF NOT EXISTS legacy_refresh_token (
    id TEXT PRIMARY KEY, did TEXT NOT NULL, app_password TEXT, privileged INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, next_id TEXT);
CREATE INDEX IF NOT EXISTS legacy_refresh_token_did ON legacy_refresh_token (did);
";

fn refresh_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LegacyRefreshRecord> {
    Ok(LegacyRefreshRecord {
        id: row.get(0)?,
        did: row.get(1)?,
        app_password: row.get(2)?,
        privileged: row.get(3)?,
        expires_at: row.get(4)?,
        next_id: row.get(5)?,
    })
}

const REFRESH_COLS: &str = "id, did, app_password, privileged, expires_at, next_id";

impl SqliteLegacyStore {
    /// Opens (creating if needed) the database at `path`, with its own [`SqliteStore`] threads.
    /// Blocking: call at startup.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::in_store(&SqliteStore::open(path)?)
    }

    /// A fresh temporary database, deleted when the last clone drops (tests).
    pub fn open_temp() -> Result<Self, StoreError> {
        Self::in_store(&SqliteStore::open_temp()?)
    }

    /// The legacy tables in `store`'s database (created if needed), sharing its threads. Blocking:
    /// call at startup.
    pub fn in_store(store: &SqliteStore) -> Result<Self, StoreError> {
        // A short-lived connection creates the tables, so that construction stays synchronous.
        let conn = rusqlite::Connection::open(store.path()).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self(store.clone()))
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.0.write(f).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.0.read(f).await
    }
}

#[async_trait]
impl LegacyStore for SqliteLegacyStore {
    async fn create_app_password(&self, r: AppPasswordRecord) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "INSERT INTO legacy_app_password (did, name, password_hash, privileged, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![r.did, r.name, r.password_hash.expose_secret(), r.privileged, r.created_at],
                )
                .map_err(backend)?;
            if n == 0 { Err(StoreError::Conflict("name")) } else { Ok(()) }
        })
        .await
    }

    async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPasswordRecord>, StoreError> {
        let did = did.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT did, name, password_hash, privileged, created_at FROM legacy_app_password
                     WHERE did = ?1 ORDER BY created_at, rowid",
                )
                .map_err(backend)?;
            let rows = st
                .query_map([did], |row| {
                    Ok(AppPasswordRecord {
                        did: row.get(0)?,
                        name: row.get(1)?,
                        password_hash: atauth_crypto::SecretString::new(row.get::<_, String>(2)?),
                        privileged: row.get(3)?,
                        created_at: row.get(4)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, StoreError> {
        let (did, name) = (did.to_owned(), name.to_owned());
        self.write(move |c| {
            let n = c
                .execute("DELETE FROM legacy_app_password WHERE did = ?1 AND name = ?2", params![did, name])
                .map_err(backend)?;
            c.execute(
                "DELETE FROM legacy_refresh_token WHERE did = ?1 AND app_password = ?2",
                params![did, name],
            )
            .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn insert_refresh(&self, r: LegacyRefreshRecord) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO legacy_refresh_token (id, did, app_password, privileged, expires_at, next_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![r.id, r.did, r.app_password, r.privileged, r.expires_at, r.next_id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn refresh_by_id(&self, id: &str, now: i64) -> Result<Option<LegacyRefreshRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {REFRESH_COLS} FROM legacy_refresh_token WHERE id = ?1 AND expires_at > ?2"),
                params![id, now],
                refresh_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        id: &str,
        now: i64,
        grace_until: i64,
        candidate_next_id: &str,
        new_expires_at: i64,
    ) -> Result<Option<Rotated>, StoreError> {
        let (id, candidate) = (id.to_owned(), candidate_next_id.to_owned());
        self.write(move |c| {
            let old = c
                .query_row(
                    &format!("SELECT {REFRESH_COLS} FROM legacy_refresh_token WHERE id = ?1 AND expires_at > ?2"),
                    params![id, now],
                    refresh_row,
                )
                .optional()
                .map_err(backend)?;
            let Some(old) = old else { return Ok(None) };
            let next_id = old.next_id.clone().unwrap_or(candidate);
            c.execute(
                "UPDATE legacy_refresh_token SET expires_at = MIN(expires_at, ?2), next_id = ?3 WHERE id = ?1",
                params![id, grace_until, next_id],
            )
            .map_err(backend)?;
            c.execute(
                "INSERT INTO legacy_refresh_token (id, did, app_password, privileged, expires_at, next_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT DO NOTHING",
                params![next_id, old.did, old.app_password, old.privileged, new_expires_at],
            )
            .map_err(backend)?;
            Ok(Some(Rotated { old, next_id }))
        })
        .await
    }

    async fn delete_refresh(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            Ok(c.execute("DELETE FROM legacy_refresh_token WHERE id = ?1", [id]).map_err(backend)? > 0)
        })
        .await
    }

    async fn delete_refresh_for_did(&self, did: &str) -> Result<u64, StoreError> {
        let did = did.to_owned();
        self.write(move |c| {
            Ok(c.execute("DELETE FROM legacy_refresh_token WHERE did = ?1", [did]).map_err(backend)? as u64)
        })
        .await
    }

    async fn purge_expired_refresh(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            Ok(c.execute("DELETE FROM legacy_refresh_token WHERE expires_at <= ?1", [now]).map_err(backend)?
                as u64)
        })
        .await
    }
}

/// The conformance suite every [`LegacyStore`] backend passes.
pub mod conformance {
    use super::*;

    fn refresh(id: &str, did: &str, app: Option<&str>, exp: i64) -> LegacyRefreshRecord {
        LegacyRefreshRecord {
            id: id.into(),
            did: did.into(),
            app_password: app.map(Into::into),
            privileged: false,
            expires_at: exp,
            next_id: None,
        }
    }

    fn app(did: &str, name: &str, at: i64) -> AppPasswordRecord {
        AppPasswordRecord {
            did: did.into(),
            name: name.into(),
            password_hash: atauth_crypto::SecretString::new(format!("salt:{name}")),
            privileged: name.ends_with('p'),
            created_at: at,
        }
    }

    /// Runs every check against `store` (which must be empty).
    ///
    /// # Panics
    /// When the backend does not behave as [`LegacyStore`] documents.
    #[allow(clippy::unwrap_used)]
    pub async fn run_all<S: LegacyStore>(store: S) {
        // App passwords: unique per account, listed oldest first, revocation ends their sessions (LEG-10).
        store.create_app_password(app("did:a", "one", 1)).await.unwrap();
        store.create_app_password(app("did:a", "twop", 2)).await.unwrap();
        store.create_app_password(app("did:b", "one", 3)).await.unwrap();
        assert!(matches!(
            store.create_app_password(app("did:a", "one", 4)).await,
            Err(StoreError::Conflict("name"))
        ));
        let list = store.list_app_passwords("did:a").await.unwrap();
        assert_eq!(list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["one", "twop"]);
        assert!(list[1].privileged && !list[0].privileged);
        assert_eq!(list[0].password_hash.expose_secret(), "salt:one");
        store.insert_refresh(refresh("r1", "did:a", Some("one"), 100)).await.unwrap();
        store.insert_refresh(refresh("r2", "did:a", None, 100)).await.unwrap();
        store.insert_refresh(refresh("r3", "did:b", Some("one"), 100)).await.unwrap();
        assert!(store.revoke_app_password("did:a", "one").await.unwrap());
        assert!(!store.revoke_app_password("did:a", "one").await.unwrap());
        assert!(store.refresh_by_id("r1", 0).await.unwrap().is_none());
        assert!(store.refresh_by_id("r2", 0).await.unwrap().is_some());
        assert!(store.refresh_by_id("r3", 0).await.unwrap().is_some(), "other account untouched");
        assert_eq!(store.list_app_passwords("did:b").await.unwrap().len(), 1);

        // Expiry is exclusive at `expires_at`.
        assert!(store.refresh_by_id("r2", 99).await.unwrap().is_some());
        assert!(store.refresh_by_id("r2", 100).await.unwrap().is_none());

        // Rotation (LEG-05): grace cut, idempotent next id, new token inserted once.
        store.insert_refresh(refresh("old", "did:a", Some("twop"), 1000)).await.unwrap();
        let r = store.rotate_refresh("old", 10, 50, "n1", 2000).await.unwrap().unwrap();
        assert_eq!(r.next_id, "n1");
        assert_eq!(r.old.expires_at, 1000);
        let old = store.refresh_by_id("old", 10).await.unwrap().unwrap();
        assert_eq!((old.expires_at, old.next_id.as_deref()), (50, Some("n1")));
        let new = store.refresh_by_id("n1", 10).await.unwrap().unwrap();
        assert_eq!(
            (new.did.as_str(), new.app_password.as_deref(), new.expires_at),
            ("did:a", Some("twop"), 2000)
        );
        let again = store.rotate_refresh("old", 20, 70, "n2", 3000).await.unwrap().unwrap();
        assert_eq!(again.next_id, "n1", "a retry in the grace period gets the same next id");
        assert_eq!(
            store.refresh_by_id("old", 20).await.unwrap().unwrap().expires_at,
            50,
            "grace never extends"
        );
        assert!(store.refresh_by_id("n2", 20).await.unwrap().is_none());
        assert!(store.rotate_refresh("old", 50, 100, "n3", 3000).await.unwrap().is_none(), "after grace");
        assert!(store.rotate_refresh("missing", 0, 100, "n4", 3000).await.unwrap().is_none());
        assert!(store.refresh_by_id("n4", 0).await.unwrap().is_none(), "refusal inserts nothing");

        // Deletion.
        assert!(store.delete_refresh("n1").await.unwrap());
        assert!(!store.delete_refresh("n1").await.unwrap());
        store.insert_refresh(refresh("x1", "did:c", None, 100)).await.unwrap();
        store.insert_refresh(refresh("x2", "did:c", None, 100)).await.unwrap();
        assert_eq!(store.delete_refresh_for_did("did:c").await.unwrap(), 2);
        store.insert_refresh(refresh("p1", "did:d", None, 5)).await.unwrap();
        assert!(store.purge_expired_refresh(5).await.unwrap() >= 1);
        assert!(store.refresh_by_id("r3", 0).await.unwrap().is_some(), "purge keeps live tokens");
    }
}
