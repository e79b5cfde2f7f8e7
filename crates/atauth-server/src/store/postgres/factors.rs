//! [`FactorStore`] on Postgres: tables `account_factors`, `recovery_codes` and `pending_factors`.
//! Every read-then-write is one conditional statement, so two instances racing cannot both win:
//! the counter advance and a recovery code's use are `UPDATE … WHERE` (the row lock orders them,
//! the second re-checks the committed row), taking a pending state is one `DELETE … RETURNING`,
//! and the unique constraints decide between two instances adding the same name or credential id.

use async_trait::async_trait;
use atauth_crypto::SecretString;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend, hash_from};
use crate::store::{FactorKind, FactorRecord, FactorStore, PendingFactor, StoreError, TokenHash};

macro_rules! factor_cols {
    () => {
        "did, id, kind, name, credential_id, data, counter, created_at, last_used_at"
    };
}

fn factor_row(r: &PgRow) -> Result<FactorRecord, StoreError> {
    let kind: String = r.try_get(2).map_err(backend)?;
    Ok(FactorRecord {
        did: r.try_get(0).map_err(backend)?,
        id: r.try_get(1).map_err(backend)?,
        kind: FactorKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown factor kind {kind:?}")))?,
        name: r.try_get(3).map_err(backend)?,
        credential_id: r.try_get(4).map_err(backend)?,
        data: SecretString::new(r.try_get::<String, _>(5).map_err(backend)?),
        counter: r.try_get(6).map_err(backend)?,
        created_at: r.try_get(7).map_err(backend)?,
        last_used_at: r.try_get(8).map_err(backend)?,
    })
}

fn pending_row(r: &PgRow) -> Result<PendingFactor, StoreError> {
    Ok(PendingFactor {
        key: hash_from(&r.try_get::<Vec<u8>, _>(0).map_err(backend)?)?,
        did: r.try_get(1).map_err(backend)?,
        data: SecretString::new(r.try_get::<String, _>(2).map_err(backend)?),
        expires_at: r.try_get(3).map_err(backend)?,
    })
}

/// Which unique constraint a refused factor insert hit, named as [`FactorStore::add_factor`] names it.
fn factor_conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict(match db.constraint() {
            Some("account_factors_name_key") => "factor name",
            Some("account_factors_credential_id_key") => "credential id",
            _ => "factor id",
        });
    }
    backend(e)
}

#[async_trait]
impl FactorStore for PostgresStore {
    async fn add_factor(&self, f: FactorRecord) -> Result<(), StoreError> {
        // Checked in the SQLite order (id, name, credential id) first so a refusal names the same
        // field on every backend; the constraints decide a race.
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT CASE WHEN did = $1 AND id = $2 THEN 'factor id' \
             WHEN did = $1 AND kind = $3 AND name = $4 THEN 'factor name' ELSE 'credential id' END \
             FROM account_factors \
             WHERE (did = $1 AND (id = $2 OR (kind = $3 AND name = $4))) \
                OR ($5::text IS NOT NULL AND credential_id = $5) \
             ORDER BY (did = $1 AND id = $2) DESC, (did = $1 AND kind = $3 AND name = $4) DESC LIMIT 1",
        )
        .bind(&f.did)
        .bind(&f.id)
        .bind(f.kind.as_str())
        .bind(&f.name)
        .bind(&f.credential_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        if let Some(what) = taken {
            return Err(StoreError::Conflict(match what.as_str() {
                "factor id" => "factor id",
                "factor name" => "factor name",
                _ => "credential id",
            }));
        }
        sqlx::query(concat!(
            "INSERT INTO account_factors (",
            factor_cols!(),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
        ))
        .bind(&f.did)
        .bind(&f.id)
        .bind(f.kind.as_str())
        .bind(&f.name)
        .bind(&f.credential_id)
        .bind(f.data.expose_secret())
        .bind(f.counter)
        .bind(f.created_at)
        .bind(f.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(factor_conflict)?;
        Ok(())
    }

    async fn factors_for_account(&self, did: &str) -> Result<Vec<FactorRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            factor_cols!(),
            " FROM account_factors WHERE did = $1 ORDER BY created_at, id"
        ))
        .bind(did)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(factor_row)
        .collect()
    }

    async fn factor_by_credential_id(&self, credential_id: &str) -> Result<Option<FactorRecord>, StoreError> {
        let row =
            sqlx::query(concat!("SELECT ", factor_cols!(), " FROM account_factors WHERE credential_id = $1"))
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.as_ref().map(factor_row).transpose()
    }

    async fn remove_factor(&self, did: &str, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM account_factors WHERE did = $1 AND id = $2")
            .bind(did)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn advance_factor_counter(
        &self,
        did: &str,
        id: &str,
        new: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE account_factors SET counter = $3, last_used_at = $4 \
             WHERE did = $1 AND id = $2 AND (counter < $3 OR ($3 = 0 AND counter = 0))",
        )
        .bind(did)
        .bind(id)
        .bind(new)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_factor_data(&self, did: &str, id: &str, data: &SecretString) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE account_factors SET data = $3 WHERE did = $1 AND id = $2")
            .bind(did)
            .bind(id)
            .bind(data.expose_secret())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn replace_recovery_codes(&self, did: &str, hashes: &[TokenHash]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM recovery_codes WHERE did = $1")
            .bind(did)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let list: Vec<Vec<u8>> = hashes.iter().map(|h| h.0.to_vec()).collect();
        sqlx::query(
            "INSERT INTO recovery_codes (did, code_hash, used_at) \
             SELECT $1, h, NULL FROM UNNEST($2::bytea[]) AS h ON CONFLICT DO NOTHING",
        )
        .bind(did)
        .bind(&list)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn use_recovery_code(&self, did: &str, hash: &TokenHash, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE did = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(did)
        .bind(&hash.0[..])
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn unused_recovery_codes(&self, did: &str) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE did = $1 AND used_at IS NULL")
                .bind(did)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        Ok(n.unsigned_abs())
    }

    async fn put_pending_factor(&self, p: PendingFactor) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pending_factors (key, did, data, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET did = EXCLUDED.did, data = EXCLUDED.data, \
             expires_at = EXCLUDED.expires_at",
        )
        .bind(&p.key.0[..])
        .bind(&p.did)
        .bind(p.data.expose_secret())
        .bind(p.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn pending_factor(&self, key: &TokenHash, now: i64) -> Result<Option<PendingFactor>, StoreError> {
        let row = sqlx::query(
            "SELECT key, did, data, expires_at FROM pending_factors WHERE key = $1 AND expires_at > $2",
        )
        .bind(&key.0[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(pending_row).transpose()
    }

    async fn take_pending_factor(
        &self,
        key: &TokenHash,
        now: i64,
    ) -> Result<Option<PendingFactor>, StoreError> {
        let row =
            sqlx::query("DELETE FROM pending_factors WHERE key = $1 RETURNING key, did, data, expires_at")
                .bind(&key.0[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.as_ref().map(pending_row).transpose()?.filter(|p| p.expires_at > now))
    }

    async fn purge_expired_pending_factors(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM pending_factors WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}
