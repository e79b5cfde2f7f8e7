//! [`ReplayStore`] on Postgres: table `replay` (one-time identifiers with an expiry; AS-DPOP-05,
//! AS-CAUTH-02, AS-PAR-07).

use async_trait::async_trait;

use super::{PostgresStore, backend};
use crate::store::{ReplayStore, StoreError};

#[async_trait]
impl ReplayStore for PostgresStore {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError> {
        // One statement: insert, or take over an expired record. `ON CONFLICT DO UPDATE` locks the
        // existing row, so of two instances recording the same key at once exactly one affects a
        // row; zero rows is a replay.
        let r = sqlx::query(
            "INSERT INTO replay (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE \
             SET expires_at = EXCLUDED.expires_at WHERE replay.expires_at <= $3",
        )
        .bind(&key[..])
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }

    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM replay WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}
