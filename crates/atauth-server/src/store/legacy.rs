//! [`LegacyStore`]: app passwords and legacy refresh tokens (legacy session auth, [`crate::legacy`]).
//! Backends: [`MemoryLegacyStore`](super::MemoryLegacyStore) and
//! [`SqliteLegacyStore`](super::SqliteLegacyStore); both pass `conformance::legacy` (feature
//! `testing`).
//!
//! Refresh rotation (LEG-05) is one critical section / one SQL transaction: the old token's expiry is
//! cut to the grace period, its `next_id` is fixed on first use (so a retry inside the grace period
//! gets a token with the **same** id), and the new token is inserted if absent.

use async_trait::async_trait;

use super::StoreError;

/// A stored app password (LEG-10). `password_hash` is scrypt in the reference format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPasswordRecord {
    /// The account.
    pub did: String,
    /// The name (unique per account).
    pub name: String,
    /// `salt:hexhash`.
    pub password_hash: atauth_crypto::SecretString,
    /// Privileged (scope `com.atproto.appPassPrivileged`).
    pub privileged: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A legacy refresh token, by its `jti` (LEG-04/05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRefreshRecord {
    /// The `jti`.
    pub id: String,
    /// The account.
    pub did: String,
    /// The app password the session was created with, if any.
    pub app_password: Option<String>,
    /// Whether that app password is privileged.
    pub privileged: bool,
    /// Unix seconds; cut to the grace period after the first rotation.
    pub expires_at: i64,
    /// The id of the token this one was rotated into (LEG-05).
    pub next_id: Option<String>,
}

/// The result of [`LegacyStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The old token as it was before rotation.
    pub old: LegacyRefreshRecord,
    /// The next token's id (the existing `next_id` on a retry inside the grace period).
    pub next_id: String,
}

/// App passwords and legacy refresh tokens.
#[async_trait]
pub trait LegacyStore: Send + Sync + 'static {
    /// Inserts an app password; [`StoreError::Conflict`]`("name")` if the account has one so named.
    async fn create_app_password(&self, record: AppPasswordRecord) -> Result<(), StoreError>;
    /// The account's app passwords, oldest first.
    async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPasswordRecord>, StoreError>;
    /// Deletes an app password **and the refresh tokens of its sessions**, atomically; `false` if absent.
    async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, StoreError>;
    /// Stores a refresh token (no-op if the id exists).
    async fn insert_refresh(&self, record: LegacyRefreshRecord) -> Result<(), StoreError>;
    /// The live (unexpired at `now`) refresh token with this id.
    async fn refresh_by_id(&self, id: &str, now: i64) -> Result<Option<LegacyRefreshRecord>, StoreError>;
    /// Rotates `id` atomically (LEG-05): `None` if it is absent or expired at `now`; otherwise cuts
    /// its expiry to `min(grace_until, expiry)`, fixes `next_id` (keeping an existing one, else
    /// `candidate_next_id`) and inserts the next token (same did/app password, `new_expires_at`) if absent.
    async fn rotate_refresh(
        &self,
        id: &str,
        now: i64,
        grace_until: i64,
        candidate_next_id: &str,
        new_expires_at: i64,
    ) -> Result<Option<Rotated>, StoreError>;
    /// Deletes a refresh token; `false` if absent.
    async fn delete_refresh(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes every refresh token of an account; how many.
    async fn delete_refresh_for_did(&self, did: &str) -> Result<u64, StoreError>;
    /// Deletes refresh tokens expired at `now`; how many.
    async fn purge_expired_refresh(&self, now: i64) -> Result<u64, StoreError>;
}
