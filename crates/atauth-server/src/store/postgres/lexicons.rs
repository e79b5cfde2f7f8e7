//! [`LexiconCache`] on Postgres: table `lexicon_cache` (SCOPE-11). Resolved permission sets are
//! shared by every instance on the database and survive restarts, so a set one instance resolved is
//! not fetched again by another, and a refresh after a restart does not depend on the set's
//! publisher being reachable.

use async_trait::async_trait;
use atauth_identity::Nsid;
use atauth_identity::lexicon::{CachedLexicon, LexiconCache, LexiconCacheError};

use super::PostgresStore;

#[async_trait]
impl LexiconCache for PostgresStore {
    async fn get(&self, nsid: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError> {
        let json: Option<String> = sqlx::query_scalar("SELECT entry FROM lexicon_cache WHERE nsid = $1")
            .bind(nsid.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(LexiconCacheError::new)?;
        // An entry this build cannot read is a miss: the resolver fetches the set again.
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    async fn put(&self, entry: &CachedLexicon) -> Result<(), LexiconCacheError> {
        sqlx::query(
            "INSERT INTO lexicon_cache (nsid, entry) VALUES ($1, $2) \
             ON CONFLICT (nsid) DO UPDATE SET entry = EXCLUDED.entry",
        )
        .bind(entry.lexicon.nsid.as_str())
        .bind(atauth_crypto::json::to_string(entry))
        .execute(&self.pool)
        .await
        .map_err(LexiconCacheError::new)?;
        Ok(())
    }

    async fn remove(&self, nsid: &Nsid) -> Result<(), LexiconCacheError> {
        sqlx::query("DELETE FROM lexicon_cache WHERE nsid = $1")
            .bind(nsid.as_str())
            .execute(&self.pool)
            .await
            .map_err(LexiconCacheError::new)?;
        Ok(())
    }
}
