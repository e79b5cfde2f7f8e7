//! [`ReplayStore`] on SQLite: table `replay` (one-time identifiers with an expiry).

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::{SqliteStore, backend};
use crate::store::{ReplayStore, StoreError};

/// Records `key` on the writer's connection: `false` if it is a live record (a replay). One
/// statement: insert, or take over an expired record; no change is a replay.
pub(super) fn record_once(
    c: &Connection,
    key: &[u8; 32],
    expires_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO replay (key, expires_at) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE \
             SET expires_at = excluded.expires_at WHERE replay.expires_at <= ?3",
        )
        .map_err(backend)?
        .execute(params![&key[..], expires_at, now])
        .map_err(backend)?;
    Ok(n == 1)
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError> {
        self.write(move |c| record_once(c, &key, expires_at, now)).await
    }

    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute("DELETE FROM replay WHERE expires_at <= ?1", [now])
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(backend)
        })
        .await
    }
}
