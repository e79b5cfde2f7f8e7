//! In-memory [`LegacyStore`]: one mutex, so each operation is atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::store::StoreError;
use crate::store::legacy::{AppPasswordRecord, LegacyRefreshRecord, LegacyStore, Rotated};

#[derive(Debug, Default)]
struct MemoryInner {
    app_passwords: Vec<AppPasswordRecord>,
    refresh: HashMap<String, LegacyRefreshRecord>,
}

/// In-memory [`LegacyStore`] (one mutex).
#[derive(Debug, Default, Clone)]
pub struct MemoryLegacyStore(Arc<Mutex<MemoryInner>>);

impl MemoryLegacyStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl LegacyStore for MemoryLegacyStore {
    async fn create_app_password(&self, record: AppPasswordRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.app_passwords.iter().any(|a| a.did == record.did && a.name == record.name) {
            return Err(StoreError::Conflict("name"));
        }
        g.app_passwords.push(record);
        Ok(())
    }

    async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPasswordRecord>, StoreError> {
        Ok(self.lock().app_passwords.iter().filter(|a| a.did == did).cloned().collect())
    }

    async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let before = g.app_passwords.len();
        g.app_passwords.retain(|a| !(a.did == did && a.name == name));
        let found = g.app_passwords.len() != before;
        g.refresh.retain(|_, r| !(r.did == did && r.app_password.as_deref() == Some(name)));
        Ok(found)
    }

    async fn insert_refresh(&self, record: LegacyRefreshRecord) -> Result<(), StoreError> {
        self.lock().refresh.entry(record.id.clone()).or_insert(record);
        Ok(())
    }

    async fn refresh_by_id(&self, id: &str, now: i64) -> Result<Option<LegacyRefreshRecord>, StoreError> {
        Ok(self.lock().refresh.get(id).filter(|r| r.expires_at > now).cloned())
    }

    async fn rotate_refresh(
        &self,
        id: &str,
        now: i64,
        grace_until: i64,
        candidate_next_id: &str,
        new_expires_at: i64,
    ) -> Result<Option<Rotated>, StoreError> {
        let mut g = self.lock();
        let Some(old) = g.refresh.get(id).filter(|r| r.expires_at > now).cloned() else { return Ok(None) };
        let next_id = old.next_id.clone().unwrap_or_else(|| candidate_next_id.to_owned());
        if let Some(r) = g.refresh.get_mut(id) {
            r.expires_at = r.expires_at.min(grace_until);
            r.next_id = Some(next_id.clone());
        }
        g.refresh.entry(next_id.clone()).or_insert_with(|| LegacyRefreshRecord {
            id: next_id.clone(),
            did: old.did.clone(),
            app_password: old.app_password.clone(),
            privileged: old.privileged,
            expires_at: new_expires_at,
            next_id: None,
        });
        Ok(Some(Rotated { old, next_id }))
    }

    async fn delete_refresh(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().refresh.remove(id).is_some())
    }

    async fn delete_refresh_for_did(&self, did: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.refresh.len();
        g.refresh.retain(|_, r| r.did != did);
        Ok((before - g.refresh.len()) as u64)
    }

    async fn purge_expired_refresh(&self, now: i64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.refresh.len();
        g.refresh.retain(|_, r| r.expires_at > now);
        Ok((before - g.refresh.len()) as u64)
    }
}
