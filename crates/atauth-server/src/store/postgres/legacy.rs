//! Postgres [`LegacyStore`]: tables `legacy_app_password` and `legacy_refresh_token` (schema
//! version 2), in the same database and pool as [`PostgresStore`].

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend};
use crate::store::StoreError;
use crate::store::legacy::{AppPasswordRecord, LegacyRefreshRecord, LegacyStore, Rotated};

/// Postgres [`LegacyStore`], sharing a [`PostgresStore`]'s pool. Rotation (LEG-05) is one
/// transaction holding the old token's row lock, so two instances rotating one token agree on its
/// `next_id`.
#[derive(Clone, Debug)]
pub struct PostgresLegacyStore(PostgresStore);

impl PostgresLegacyStore {
    /// The legacy tables of `store`'s database (created by its migrations).
    pub fn in_store(store: &PostgresStore) -> Self {
        Self(store.clone())
    }
}

macro_rules! refresh_cols {
    () => {
        "id, did, app_password, privileged, expires_at, next_id"
    };
}

fn refresh_row(r: &PgRow) -> Result<LegacyRefreshRecord, StoreError> {
    Ok(LegacyRefreshRecord {
        id: r.try_get(0).map_err(backend)?,
        did: r.try_get(1).map_err(backend)?,
        app_password: r.try_get(2).map_err(backend)?,
        privileged: r.try_get(3).map_err(backend)?,
        expires_at: r.try_get(4).map_err(backend)?,
        next_id: r.try_get(5).map_err(backend)?,
    })
}

const INSERT_REFRESH: &str = "INSERT INTO legacy_refresh_token (id, did, app_password, privileged, expires_at, next_id) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING";

#[async_trait]
impl LegacyStore for PostgresLegacyStore {
    async fn create_app_password(&self, r: AppPasswordRecord) -> Result<(), StoreError> {
        let n = sqlx::query(
            "INSERT INTO legacy_app_password (did, name, password_hash, privileged, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (did, name) DO NOTHING",
        )
        .bind(&r.did)
        .bind(&r.name)
        .bind(r.password_hash.expose_secret())
        .bind(r.privileged)
        .bind(r.created_at)
        .execute(&self.0.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        if n == 0 { Err(StoreError::Conflict("name")) } else { Ok(()) }
    }

    async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPasswordRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT did, name, password_hash, privileged, created_at FROM legacy_app_password \
             WHERE did = $1 ORDER BY created_at, seq",
        )
        .bind(did)
        .fetch_all(&self.0.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(AppPasswordRecord {
                    did: row.try_get(0).map_err(backend)?,
                    name: row.try_get(1).map_err(backend)?,
                    password_hash: atauth_crypto::SecretString::new(
                        row.try_get::<String, _>(2).map_err(backend)?,
                    ),
                    privileged: row.try_get(3).map_err(backend)?,
                    created_at: row.try_get(4).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, StoreError> {
        // One transaction: the password and its sessions' refresh tokens go together (LEG-10).
        let mut tx = self.0.pool.begin().await.map_err(backend)?;
        let n = sqlx::query("DELETE FROM legacy_app_password WHERE did = $1 AND name = $2")
            .bind(did)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        sqlx::query("DELETE FROM legacy_refresh_token WHERE did = $1 AND app_password = $2")
            .bind(did)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn insert_refresh(&self, r: LegacyRefreshRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_REFRESH)
            .bind(&r.id)
            .bind(&r.did)
            .bind(&r.app_password)
            .bind(r.privileged)
            .bind(r.expires_at)
            .bind(&r.next_id)
            .execute(&self.0.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn refresh_by_id(&self, id: &str, now: i64) -> Result<Option<LegacyRefreshRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_cols!(),
            " FROM legacy_refresh_token WHERE id = $1 AND expires_at > $2"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.0.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(refresh_row).transpose()
    }

    async fn rotate_refresh(
        &self,
        id: &str,
        now: i64,
        grace_until: i64,
        candidate_next_id: &str,
        new_expires_at: i64,
    ) -> Result<Option<Rotated>, StoreError> {
        let mut tx = self.0.pool.begin().await.map_err(backend)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_cols!(),
            " FROM legacy_refresh_token WHERE id = $1 AND expires_at > $2 FOR UPDATE"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(old) = row.as_ref().map(refresh_row).transpose()? else { return Ok(None) };
        let next_id = old.next_id.clone().unwrap_or_else(|| candidate_next_id.to_owned());
        sqlx::query(
            "UPDATE legacy_refresh_token SET expires_at = LEAST(expires_at, $2), next_id = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(grace_until)
        .bind(&next_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(INSERT_REFRESH)
            .bind(&next_id)
            .bind(&old.did)
            .bind(&old.app_password)
            .bind(old.privileged)
            .bind(new_expires_at)
            .bind(None::<String>)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(Rotated { old, next_id }))
    }

    async fn delete_refresh(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM legacy_refresh_token WHERE id = $1")
            .bind(id)
            .execute(&self.0.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_refresh_for_did(&self, did: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM legacy_refresh_token WHERE did = $1")
            .bind(did)
            .execute(&self.0.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }

    async fn purge_expired_refresh(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM legacy_refresh_token WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.0.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}
