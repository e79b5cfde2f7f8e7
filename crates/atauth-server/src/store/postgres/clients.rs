//! [`ClientMetadataCache`] on Postgres: table `client_cache`.

use async_trait::async_trait;

use super::{PostgresStore, backend};
use crate::store::{ClientMetadataCache, StoreError};

#[async_trait]
impl ClientMetadataCache for PostgresStore {
    async fn get_client(&self, client_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT json FROM client_cache WHERE client_id = $1 AND expires_at > $2")
            .bind(client_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn put_client(&self, client_id: &str, json: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO client_cache (client_id, json, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id) DO UPDATE SET json = EXCLUDED.json, expires_at = EXCLUDED.expires_at",
        )
        .bind(client_id)
        .bind(json)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn remove_client(&self, client_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM client_cache WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
