//! [`DeviceStore`] on SQLite: table `device_sessions` (the accounts as a JSON array).

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};

use super::{SqliteStore, backend, from_json, hash_from, to_json};
use crate::store::rules::{forget_consent, has_account, remove_accounts, touch_accounts, upsert_account};
use crate::store::{DeviceAccount, DeviceSession, DeviceStore, StoreError, TokenHash};

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn put_device(&self, d: DeviceSession) -> Result<(), StoreError> {
        let accounts = to_json(&d.accounts)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO device_sessions (id, accounts, created_at, expires_at, user_agent) \
                 VALUES (?1,?2,?3,?4,?5)",
            )
            .map_err(backend)?
            .execute(params![&d.id.0[..], accounts, d.created_at, d.expires_at, d.user_agent])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_device(&self, id: &TokenHash, now: i64) -> Result<Option<DeviceSession>, StoreError> {
        let id = *id;
        let row = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT accounts, created_at, expires_at, user_agent FROM device_sessions \
                     WHERE id = ?1 AND expires_at > ?2",
                )
                .map_err(backend)?
                .query_row(params![&id.0[..], now], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
                .map_err(backend)
            })
            .await?;
        row.map(|(accounts, created_at, expires_at, user_agent)| {
            Ok(DeviceSession { id, accounts: from_json(&accounts)?, created_at, expires_at, user_agent })
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
        let id = *id;
        self.write(move |c| {
            let found: Option<(String, i64)> = c
                .query_row(
                    "SELECT accounts, expires_at FROM device_sessions WHERE id = ?1 AND expires_at > ?2",
                    params![&id.0[..], now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((json, old_expiry)) = found else { return Ok(false) };
            let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
            upsert_account(&mut accounts, account);
            c.execute(
                "UPDATE device_sessions SET accounts = ?2, expires_at = ?3 WHERE id = ?1",
                params![&id.0[..], to_json(&accounts)?, old_expiry.max(expires_at)],
            )
            .map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn remove_device_accounts(&self, id: &TokenHash, did: Option<&str>) -> Result<u64, StoreError> {
        let (id, did) = (*id, did.map(str::to_owned));
        self.write(move |c| {
            let found: Option<String> = c
                .query_row("SELECT accounts FROM device_sessions WHERE id = ?1", [&id.0[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let Some(json) = found else { return Ok(0) };
            let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
            let removed = remove_accounts(&mut accounts, did.as_deref());
            if removed > 0 {
                c.execute(
                    "UPDATE device_sessions SET accounts = ?2 WHERE id = ?1",
                    params![&id.0[..], to_json(&accounts)?],
                )
                .map_err(backend)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn delete_device(&self, id: &TokenHash) -> Result<bool, StoreError> {
        let id = *id;
        self.write(move |c| {
            c.execute("DELETE FROM device_sessions WHERE id = ?1", [&id.0[..]])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn devices_for_account(&self, did: &str, now: i64) -> Result<Vec<DeviceSession>, StoreError> {
        // `instr` narrows the scan to rows whose JSON mentions the DID; the decoded entries decide.
        let did = did.to_owned();
        let rows: Vec<(Vec<u8>, String, i64, i64, Option<String>)> = self
            .read({
                let did = did.clone();
                move |c| {
                    c.prepare_cached(
                        "SELECT id, accounts, created_at, expires_at, user_agent FROM device_sessions \
                         WHERE expires_at > ?2 AND instr(accounts, ?1) > 0",
                    )
                    .map_err(backend)?
                    .query_map(params![did, now], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(backend)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(backend)
                }
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, accounts, created_at, expires_at, user_agent) in rows {
            let accounts: Vec<DeviceAccount> = from_json(&accounts)?;
            if has_account(&accounts, &did) {
                out.push(DeviceSession { id: hash_from(&id)?, accounts, created_at, expires_at, user_agent });
            }
        }
        Ok(out)
    }

    async fn touch_device(&self, id: &TokenHash, now: i64, ip: Option<&str>) -> Result<bool, StoreError> {
        let (id, ip) = (*id, ip.map(str::to_owned));
        self.write(move |c| {
            let found: Option<String> = c
                .query_row(
                    "SELECT accounts FROM device_sessions WHERE id = ?1 AND expires_at > ?2",
                    params![&id.0[..], now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(json) = found else { return Ok(false) };
            let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
            if touch_accounts(&mut accounts, now, ip.as_deref()) {
                c.execute(
                    "UPDATE device_sessions SET accounts = ?2 WHERE id = ?1",
                    params![&id.0[..], to_json(&accounts)?],
                )
                .map_err(backend)?;
            }
            Ok(true)
        })
        .await
    }

    async fn remove_account_everywhere(&self, did: &str) -> Result<u64, StoreError> {
        let did = did.to_owned();
        self.write(move |c| edit_devices_of(c, &did, |accounts| remove_accounts(accounts, Some(&did)).min(1)))
            .await
    }

    async fn forget_consents(&self, did: &str, client_id: &str) -> Result<u64, StoreError> {
        let (did, client_id) = (did.to_owned(), client_id.to_owned());
        self.write(move |c| edit_devices_of(c, &did, |accounts| forget_consent(accounts, &did, &client_id)))
            .await
    }

    async fn purge_expired_devices(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute("DELETE FROM device_sessions WHERE expires_at <= ?1", [now])
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(backend)
        })
        .await
    }
}

/// Applies `edit` to the account list of every device row mentioning `did` (inside the caller's
/// write job, so atomically), writing back the rows it changed (`edit` returns how much it
/// changed). Returns the sum.
fn edit_devices_of(
    c: &rusqlite::Connection,
    did: &str,
    mut edit: impl FnMut(&mut Vec<DeviceAccount>) -> u64,
) -> Result<u64, StoreError> {
    let rows: Vec<(Vec<u8>, String)> = c
        .prepare_cached("SELECT id, accounts FROM device_sessions WHERE instr(accounts, ?1) > 0")
        .map_err(backend)?
        .query_map([did], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    let mut total = 0;
    for (id, json) in rows {
        let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
        let n = edit(&mut accounts);
        if n > 0 {
            c.execute(
                "UPDATE device_sessions SET accounts = ?2 WHERE id = ?1",
                params![id, to_json(&accounts)?],
            )
            .map_err(backend)?;
            total += n;
        }
    }
    Ok(total)
}
