//! [`FactorStore`] on SQLite: tables `account_factors`, `recovery_codes` and `pending_factors`.
//! Every write runs on the single writer thread in its own savepoint, and each read-then-write is
//! one conditional statement.

use async_trait::async_trait;
use atauth_crypto::SecretString;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{SqliteStore, backend, hash_from};
use crate::store::{FactorKind, FactorRecord, FactorStore, PendingFactor, StoreError, TokenHash};

const FACTOR_COLS: &str = "did, id, kind, name, credential_id, data, counter, created_at, last_used_at";

fn factor_row(r: &Row<'_>) -> rusqlite::Result<(FactorRecord, String)> {
    Ok((
        FactorRecord {
            did: r.get(0)?,
            id: r.get(1)?,
            kind: FactorKind::Totp,
            name: r.get(3)?,
            credential_id: r.get(4)?,
            data: SecretString::new(r.get::<_, String>(5)?),
            counter: r.get(6)?,
            created_at: r.get(7)?,
            last_used_at: r.get(8)?,
        },
        r.get(2)?,
    ))
}

fn finish_factor((mut f, kind): (FactorRecord, String)) -> Result<FactorRecord, StoreError> {
    f.kind = FactorKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown factor kind {kind:?}")))?;
    Ok(f)
}

fn exists(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<bool, StoreError> {
    c.query_row(sql, p, |_| Ok(())).optional().map(|o| o.is_some()).map_err(backend)
}

fn pending_row(r: &Row<'_>) -> rusqlite::Result<(Vec<u8>, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn finish_pending(row: Option<(Vec<u8>, String, String, i64)>) -> Result<Option<PendingFactor>, StoreError> {
    row.map(|(key, did, data, expires_at)| {
        Ok(PendingFactor { key: hash_from(&key)?, did, data: SecretString::new(data), expires_at })
    })
    .transpose()
}

#[async_trait]
impl FactorStore for SqliteStore {
    async fn add_factor(&self, f: FactorRecord) -> Result<(), StoreError> {
        self.write(move |c| {
            if exists(c, "SELECT 1 FROM account_factors WHERE did = ?1 AND id = ?2", params![f.did, f.id])? {
                return Err(StoreError::Conflict("factor id"));
            }
            if exists(
                c,
                "SELECT 1 FROM account_factors WHERE did = ?1 AND kind = ?2 AND name = ?3",
                params![f.did, f.kind.as_str(), f.name],
            )? {
                return Err(StoreError::Conflict("factor name"));
            }
            if let Some(cred) = &f.credential_id
                && exists(c, "SELECT 1 FROM account_factors WHERE credential_id = ?1", [cred])?
            {
                return Err(StoreError::Conflict("credential id"));
            }
            c.execute(
                &format!("INSERT INTO account_factors ({FACTOR_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
                params![
                    f.did,
                    f.id,
                    f.kind.as_str(),
                    f.name,
                    f.credential_id,
                    f.data.expose_secret(),
                    f.counter,
                    f.created_at,
                    f.last_used_at
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn factors_for_account(&self, did: &str) -> Result<Vec<FactorRecord>, StoreError> {
        let did = did.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {FACTOR_COLS} FROM account_factors WHERE did = ?1 ORDER BY created_at, id"
                ))
                .map_err(backend)?;
            let rows = st.query_map([did], factor_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(finish_factor)).collect()
        })
        .await
    }

    async fn factor_by_credential_id(&self, credential_id: &str) -> Result<Option<FactorRecord>, StoreError> {
        let cred = credential_id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {FACTOR_COLS} FROM account_factors WHERE credential_id = ?1"))
                .map_err(backend)?
                .query_row([cred], factor_row)
                .optional()
                .map_err(backend)?
                .map(finish_factor)
                .transpose()
        })
        .await
    }

    async fn remove_factor(&self, did: &str, id: &str) -> Result<bool, StoreError> {
        let (did, id) = (did.to_owned(), id.to_owned());
        self.write(move |c| {
            c.execute("DELETE FROM account_factors WHERE did = ?1 AND id = ?2", params![did, id])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn advance_factor_counter(
        &self,
        did: &str,
        id: &str,
        new: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (did, id) = (did.to_owned(), id.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE account_factors SET counter = ?3, last_used_at = ?4 \
                 WHERE did = ?1 AND id = ?2 AND (counter < ?3 OR (?3 = 0 AND counter = 0))",
                params![did, id, new, now],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn set_factor_data(&self, did: &str, id: &str, data: &SecretString) -> Result<bool, StoreError> {
        let (did, id, data) = (did.to_owned(), id.to_owned(), data.clone());
        self.write(move |c| {
            c.execute(
                "UPDATE account_factors SET data = ?3 WHERE did = ?1 AND id = ?2",
                params![did, id, data.expose_secret()],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn replace_recovery_codes(&self, did: &str, hashes: &[TokenHash]) -> Result<(), StoreError> {
        let did = did.to_owned();
        let hashes = hashes.to_vec();
        self.write(move |c| {
            c.execute("DELETE FROM recovery_codes WHERE did = ?1", [&did]).map_err(backend)?;
            let mut st = c
                .prepare_cached(
                    "INSERT INTO recovery_codes (did, code_hash, used_at) VALUES (?1, ?2, NULL) \
                     ON CONFLICT DO NOTHING",
                )
                .map_err(backend)?;
            for h in &hashes {
                st.execute(params![did, &h.0[..]]).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn use_recovery_code(&self, did: &str, hash: &TokenHash, now: i64) -> Result<bool, StoreError> {
        let (did, hash) = (did.to_owned(), *hash);
        self.write(move |c| {
            c.execute(
                "UPDATE recovery_codes SET used_at = ?3 WHERE did = ?1 AND code_hash = ?2 AND used_at IS NULL",
                params![did, &hash.0[..], now],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn unused_recovery_codes(&self, did: &str) -> Result<u64, StoreError> {
        let did = did.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM recovery_codes WHERE did = ?1 AND used_at IS NULL",
                [did],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.unsigned_abs())
            .map_err(backend)
        })
        .await
    }

    async fn put_pending_factor(&self, p: PendingFactor) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO pending_factors (key, did, data, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![&p.key.0[..], p.did, p.data.expose_secret(), p.expires_at],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn pending_factor(&self, key: &TokenHash, now: i64) -> Result<Option<PendingFactor>, StoreError> {
        let key = *key;
        self.read(move |c| {
            finish_pending(
                c.query_row(
                    "SELECT key, did, data, expires_at FROM pending_factors WHERE key = ?1 AND expires_at > ?2",
                    params![&key.0[..], now],
                    pending_row,
                )
                .optional()
                .map_err(backend)?,
            )
        })
        .await
    }

    async fn take_pending_factor(
        &self,
        key: &TokenHash,
        now: i64,
    ) -> Result<Option<PendingFactor>, StoreError> {
        let key = *key;
        self.write(move |c| {
            let row = c
                .query_row(
                    "DELETE FROM pending_factors WHERE key = ?1 RETURNING key, did, data, expires_at",
                    params![&key.0[..]],
                    pending_row,
                )
                .optional()
                .map_err(backend)?;
            finish_pending(row.filter(|r| r.3 > now))
        })
        .await
    }

    async fn purge_expired_pending_factors(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute("DELETE FROM pending_factors WHERE expires_at <= ?1", [now])
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }
}
