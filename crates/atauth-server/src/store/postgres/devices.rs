//! [`DeviceStore`] on Postgres: table `device_sessions` (the accounts as a JSON array).

use async_trait::async_trait;
use sqlx::Row as _;

use super::{PostgresStore, backend, from_json, hash_from, to_json};
use crate::store::rules::{forget_consent, has_account, remove_accounts, touch_accounts, upsert_account};
use crate::store::{DeviceAccount, DeviceSession, DeviceStore, StoreError, TokenHash};

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn put_device(&self, d: DeviceSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_sessions (id, accounts, created_at, expires_at, user_agent) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET accounts = EXCLUDED.accounts, \
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, user_agent = EXCLUDED.user_agent",
        )
        .bind(&d.id.0[..])
        .bind(to_json(&d.accounts)?)
        .bind(d.created_at)
        .bind(d.expires_at)
        .bind(&d.user_agent)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_device(&self, id: &TokenHash, now: i64) -> Result<Option<DeviceSession>, StoreError> {
        let row = sqlx::query(
            "SELECT accounts, created_at, expires_at, user_agent FROM device_sessions \
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(&id.0[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(DeviceSession {
                id: *id,
                accounts: from_json(r.try_get::<&str, _>(0).map_err(backend)?)?,
                created_at: r.try_get(1).map_err(backend)?,
                expires_at: r.try_get(2).map_err(backend)?,
                user_agent: r.try_get(3).map_err(backend)?,
            })
        })
        .transpose()
    }

    async fn upsert_device_account(
        &self,
        id: &TokenHash,
        account: DeviceAccount,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // The device row stays locked from read to write: two sign-ins on one device (two tabs, two
        // instances) both land.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let found: Option<(String, i64)> = sqlx::query_as(
            "SELECT accounts, expires_at FROM device_sessions WHERE id = $1 AND expires_at > $2 FOR UPDATE",
        )
        .bind(&id.0[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some((json, old_expiry)) = found else { return Ok(false) };
        let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
        upsert_account(&mut accounts, account);
        sqlx::query("UPDATE device_sessions SET accounts = $2, expires_at = $3 WHERE id = $1")
            .bind(&id.0[..])
            .bind(to_json(&accounts)?)
            .bind(old_expiry.max(expires_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn remove_device_accounts(&self, id: &TokenHash, did: Option<&str>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let found: Option<String> =
            sqlx::query_scalar("SELECT accounts FROM device_sessions WHERE id = $1 FOR UPDATE")
                .bind(&id.0[..])
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some(json) = found else { return Ok(0) };
        let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
        let removed = remove_accounts(&mut accounts, did);
        if removed > 0 {
            sqlx::query("UPDATE device_sessions SET accounts = $2 WHERE id = $1")
                .bind(&id.0[..])
                .bind(to_json(&accounts)?)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
        }
        Ok(removed)
    }

    async fn delete_device(&self, id: &TokenHash) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM device_sessions WHERE id = $1")
            .bind(&id.0[..])
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn devices_for_account(&self, did: &str, now: i64) -> Result<Vec<DeviceSession>, StoreError> {
        // `strpos` narrows the scan to rows whose JSON mentions the DID; the decoded entries decide.
        let rows = sqlx::query(
            "SELECT id, accounts, created_at, expires_at, user_agent FROM device_sessions \
             WHERE expires_at > $2 AND strpos(accounts, $1) > 0",
        )
        .bind(did)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let accounts: Vec<DeviceAccount> = from_json(r.try_get::<&str, _>(1).map_err(backend)?)?;
            if has_account(&accounts, did) {
                out.push(DeviceSession {
                    id: hash_from(r.try_get::<&[u8], _>(0).map_err(backend)?)?,
                    accounts,
                    created_at: r.try_get(2).map_err(backend)?,
                    expires_at: r.try_get(3).map_err(backend)?,
                    user_agent: r.try_get(4).map_err(backend)?,
                });
            }
        }
        Ok(out)
    }

    async fn touch_device(&self, id: &TokenHash, now: i64, ip: Option<&str>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let found: Option<String> = sqlx::query_scalar(
            "SELECT accounts FROM device_sessions WHERE id = $1 AND expires_at > $2 FOR UPDATE",
        )
        .bind(&id.0[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(json) = found else { return Ok(false) };
        let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
        if touch_accounts(&mut accounts, now, ip) {
            sqlx::query("UPDATE device_sessions SET accounts = $2 WHERE id = $1")
                .bind(&id.0[..])
                .bind(to_json(&accounts)?)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
        }
        Ok(true)
    }

    async fn remove_account_everywhere(&self, did: &str) -> Result<u64, StoreError> {
        self.edit_devices_of(did, |accounts| remove_accounts(accounts, Some(did)).min(1)).await
    }

    async fn forget_consents(&self, did: &str, client_id: &str) -> Result<u64, StoreError> {
        self.edit_devices_of(did, |accounts| forget_consent(accounts, did, client_id)).await
    }

    async fn purge_expired_devices(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM device_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}

impl PostgresStore {
    /// Applies `edit` to the account list of every device row mentioning `did`, in one transaction
    /// holding those rows, writing back the rows it changed (`edit` returns how much it changed).
    /// Returns the sum.
    async fn edit_devices_of(
        &self,
        did: &str,
        mut edit: impl FnMut(&mut Vec<DeviceAccount>) -> u64 + Send,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT id, accounts FROM device_sessions WHERE strpos(accounts, $1) > 0 FOR UPDATE",
        )
        .bind(did)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut total = 0;
        for (id, json) in rows {
            let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
            let n = edit(&mut accounts);
            if n > 0 {
                sqlx::query("UPDATE device_sessions SET accounts = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(to_json(&accounts)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                total += n;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(total)
    }
}
