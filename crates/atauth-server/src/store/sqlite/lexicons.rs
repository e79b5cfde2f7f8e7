//! [`LexiconCache`] on SQLite: table `lexicon_cache` (SCOPE-11). Resolved permission sets survive a
//! restart, so a refresh after one does not depend on the set's publisher being reachable.

use async_trait::async_trait;
use atauth_identity::Nsid;
use atauth_identity::lexicon::{CachedLexicon, LexiconCache, LexiconCacheError};
use rusqlite::{OptionalExtension as _, params};

use super::SqliteStore;

#[async_trait]
impl LexiconCache for SqliteStore {
    async fn get(&self, nsid: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError> {
        let nsid = nsid.as_str().to_owned();
        let json: Option<String> = self
            .read(move |c| {
                c.prepare_cached("SELECT entry FROM lexicon_cache WHERE nsid = ?1")
                    .map_err(super::backend)?
                    .query_row([nsid], |r| r.get(0))
                    .optional()
                    .map_err(super::backend)
            })
            .await
            .map_err(LexiconCacheError::new)?;
        // An entry this build cannot read is a miss: the resolver fetches the set again.
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    async fn put(&self, entry: &CachedLexicon) -> Result<(), LexiconCacheError> {
        let nsid = entry.lexicon.nsid.as_str().to_owned();
        let json = atauth_crypto::json::to_string(entry);
        self.write(move |c| {
            c.prepare_cached("INSERT OR REPLACE INTO lexicon_cache (nsid, entry) VALUES (?1, ?2)")
                .map_err(super::backend)?
                .execute(params![nsid, json])
                .map_err(super::backend)?;
            Ok(())
        })
        .await
        .map_err(LexiconCacheError::new)
    }

    async fn remove(&self, nsid: &Nsid) -> Result<(), LexiconCacheError> {
        let nsid = nsid.as_str().to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM lexicon_cache WHERE nsid = ?1", [nsid]).map_err(super::backend)?;
            Ok(())
        })
        .await
        .map_err(LexiconCacheError::new)
    }
}
