//! [`FactorStore`] in memory: every operation under the store's one mutex.

use async_trait::async_trait;
use atauth_crypto::SecretString;

use super::MemoryStore;
use crate::store::{FactorRecord, FactorStore, PendingFactor, StoreError, TokenHash};

#[async_trait]
impl FactorStore for MemoryStore {
    async fn add_factor(&self, factor: FactorRecord) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.factors.iter().any(|f| f.did == factor.did && f.id == factor.id) {
            return Err(StoreError::Conflict("factor id"));
        }
        if s.factors.iter().any(|f| f.did == factor.did && f.kind == factor.kind && f.name == factor.name) {
            return Err(StoreError::Conflict("factor name"));
        }
        if factor.credential_id.is_some() && s.factors.iter().any(|f| f.credential_id == factor.credential_id)
        {
            return Err(StoreError::Conflict("credential id"));
        }
        s.factors.push(factor);
        Ok(())
    }

    async fn factors_for_account(&self, did: &str) -> Result<Vec<FactorRecord>, StoreError> {
        let mut list: Vec<FactorRecord> =
            self.lock().factors.iter().filter(|f| f.did == did).cloned().collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    async fn factor_by_credential_id(&self, credential_id: &str) -> Result<Option<FactorRecord>, StoreError> {
        Ok(self.lock().factors.iter().find(|f| f.credential_id.as_deref() == Some(credential_id)).cloned())
    }

    async fn remove_factor(&self, did: &str, id: &str) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let before = s.factors.len();
        s.factors.retain(|f| !(f.did == did && f.id == id));
        Ok(s.factors.len() < before)
    }

    async fn advance_factor_counter(
        &self,
        did: &str,
        id: &str,
        new: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(f) = s.factors.iter_mut().find(|f| f.did == did && f.id == id) else { return Ok(false) };
        if new > f.counter || (new == 0 && f.counter == 0) {
            f.counter = new;
            f.last_used_at = Some(now);
            return Ok(true);
        }
        Ok(false)
    }

    async fn set_factor_data(&self, did: &str, id: &str, data: &SecretString) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(f) = s.factors.iter_mut().find(|f| f.did == did && f.id == id) else { return Ok(false) };
        f.data = data.clone();
        Ok(true)
    }

    async fn replace_recovery_codes(&self, did: &str, hashes: &[TokenHash]) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.recovery.retain(|(d, _), _| d != did);
        for h in hashes {
            s.recovery.insert((did.to_owned(), *h), None);
        }
        Ok(())
    }

    async fn use_recovery_code(&self, did: &str, hash: &TokenHash, now: i64) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.recovery.get_mut(&(did.to_owned(), *hash)) {
            Some(used @ None) => {
                *used = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn unused_recovery_codes(&self, did: &str) -> Result<u64, StoreError> {
        Ok(self.lock().recovery.iter().filter(|((d, _), used)| d == did && used.is_none()).count() as u64)
    }

    async fn put_pending_factor(&self, pending: PendingFactor) -> Result<(), StoreError> {
        self.lock().pending_factors.insert(pending.key, pending);
        Ok(())
    }

    async fn pending_factor(&self, key: &TokenHash, now: i64) -> Result<Option<PendingFactor>, StoreError> {
        Ok(self.lock().pending_factors.get(key).filter(|p| p.expires_at > now).cloned())
    }

    async fn take_pending_factor(
        &self,
        key: &TokenHash,
        now: i64,
    ) -> Result<Option<PendingFactor>, StoreError> {
        Ok(self.lock().pending_factors.remove(key).filter(|p| p.expires_at > now))
    }

    async fn purge_expired_pending_factors(&self, now: i64) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let before = s.pending_factors.len();
        s.pending_factors.retain(|_, p| p.expires_at > now);
        Ok((before - s.pending_factors.len()) as u64)
    }
}
