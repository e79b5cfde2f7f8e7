//! SQLite [`LegacyStore`]: tables `legacy_app_password` and `legacy_refresh_token`.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};

use super::schema::LEGACY_SCHEMA;
use super::{SqliteStore, backend};
use crate::store::StoreError;
use crate::store::legacy::{AppPasswordRecord, LegacyRefreshRecord, LegacyStore, Rotated};

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
        conn.execute_batch(LEGACY_SCHEMA).map_err(backend)?;
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
