//! [`ClientMetadataCache`] on SQLite: table `client_cache`.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};

use super::{SqliteStore, backend};
use crate::store::{ClientMetadataCache, StoreError};

#[async_trait]
impl ClientMetadataCache for SqliteStore {
    async fn get_client(&self, client_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT json FROM client_cache WHERE client_id = ?1 AND expires_at > ?2")
                .map_err(backend)?
                .query_row(params![client_id, now], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn put_client(&self, client_id: &str, json: &str, expires_at: i64) -> Result<(), StoreError> {
        let (client_id, json) = (client_id.to_owned(), json.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO client_cache (client_id, json, expires_at) VALUES (?1,?2,?3)",
            )
            .map_err(backend)?
            .execute(params![client_id, json, expires_at])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn remove_client(&self, client_id: &str) -> Result<(), StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM client_cache WHERE client_id = ?1", [client_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}
