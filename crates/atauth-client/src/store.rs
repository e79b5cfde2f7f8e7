//! Stores: pending authorizations by `state` ([`StateStore`]), sessions by DID + session id
//! ([`SessionStore`]), and the refresh lock ([`SessionLock`]), with in-memory implementations.
//!
//! The traits are small and record-oriented (JSON-serialisable records), so Postgres and Redis
//! backends fit: `take` must be atomic (single use, CL-STATE-01), `put` is an upsert (T-12), and a
//! lock must exclude other holders across every process that shares the store (CL-REF-02).
//! `SqliteStore` (feature `sqlite`) implements all three on one SQLite file.
//!
//! A lock's guard is released explicitly (async); dropping it frees an in-process lock at once and a
//! store lock through a spawned task, or by its time-to-live if the process died. The Postgres
//! store (feature `postgres`) locks with a session-level advisory lock on a dedicated connection,
//! the Redis store (feature `redis`) with `SET NX PX` and a compare-and-delete script; both fence
//! the write of a refreshed session ([`SessionStore::put_session_locked`]). Every backend runs the
//! one suite in `tests/store_conformance.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atauth_crypto::Jwk;
use atauth_identity::Did;
use atauth_oauth::{AccessToken, Issuer, RefreshToken};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

atauth_crypto::secret_string_newtype! {
    /// A stored PKCE verifier. `Debug` is redacted.
    pub struct StoredSecret;
}

impl Serialize for StoredSecret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose_secret())
    }
}

impl<'de> Deserialize<'de> for StoredSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// How the client authenticated at the token endpoint when the session started; refreshes must use
/// the same (CL-REF-01, AS-CAUTH-04).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ClientAuthRecord {
    /// Public client.
    None,
    /// `private_key_jwt` with this key.
    PrivateKeyJwt {
        /// The key id.
        kid: String,
    },
}

/// A pending authorization, stored under its `state` between PAR and callback (CL-PAR-06).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The issuer the flow is bound to.
    pub issuer: Issuer,
    /// The DPoP private key for the session (CL-DPOP-01).
    pub dpop_key: Jwk,
    /// The PKCE verifier.
    pub pkce_verifier: StoredSecret,
    /// The account the flow started from, if a handle or DID (CL-SUB-01).
    pub expected_did: Option<Did>,
    /// The redirect URI sent at PAR (the token request repeats it).
    pub redirect_uri: String,
    /// Client authentication used at PAR.
    pub client_auth: ClientAuthRecord,
    /// The requested scope.
    pub scope: String,
    /// Opaque application state returned by the callback (never in `state`, CL-PAR-06).
    pub app_state: Option<String>,
    /// Unix time after which the record is void.
    pub expires_at: i64,
}

/// The token set of a session. Tokens are opaque (CL-TOK-03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token.
    pub refresh_token: Option<RefreshToken>,
    /// The granted scope.
    pub scope: String,
    /// Unix expiry of the access token (`now + expires_in`, T-25), if given.
    pub expires_at: Option<i64>,
}

/// Identifies one session: an account may have several (devices, browsers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionKey {
    /// The account DID.
    pub did: Did,
    /// A random session id.
    pub session_id: String,
}

impl SessionKey {
    /// `did|session_id`, used as a lock and row name.
    pub fn storage_key(&self) -> String {
        format!("{}|{}", self.did, self.session_id)
    }
}

/// A stored OAuth session (T-13: with its DPoP private key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The key.
    pub key: SessionKey,
    /// The issuer (authorization server) of the session.
    pub issuer: Issuer,
    /// The PDS URL (resource server) from the DID document.
    pub pds_url: String,
    /// The client id the tokens were issued to.
    pub client_id: String,
    /// Client authentication for refreshes.
    pub client_auth: ClientAuthRecord,
    /// The session's DPoP private key.
    pub dpop_key: Jwk,
    /// The tokens.
    pub tokens: TokenSet,
    /// Incremented by every refresh; lets concurrent refreshers see they were overtaken.
    pub generation: u64,
    /// Unix time the session was created.
    pub created_at: i64,
}

/// Pending authorizations by `state`.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Stores `pending` under `state` until `pending.expires_at`.
    async fn put_state(&self, state: &str, pending: &PendingAuthorization) -> Result<(), StoreError>;
    /// Atomically removes and returns the record for `state`, or `None` if unknown or expired at
    /// `now` (single use, CL-STATE-01).
    async fn take_state(&self, state: &str, now: i64) -> Result<Option<PendingAuthorization>, StoreError>;
}

/// Sessions by [`SessionKey`].
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Reads a session.
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError>;
    /// Inserts or replaces a session (upsert, T-12).
    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError>;
    /// Deletes a session (no error if absent).
    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError>;
    /// The sessions of an account.
    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError>;
    /// Every stored session, ordered by DID then session id (for tools such as `atauth whoami`).
    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError>;
    /// Writes the session a refresh produced while holding `guard`, the lock named
    /// [`SessionKey::storage_key`] of `record` (T-12). A store whose locks carry a fence checks, in
    /// the same atomic step as the write, that `guard` still holds the lock, and otherwise writes
    /// nothing and returns [`StoreError::LockLost`]: a refresher whose lease ran out cannot overwrite
    /// the newer session of the holder that came after it. The default (stores whose lock cannot
    /// be lost while held, or a guard from another store) is [`put_session`](Self::put_session).
    async fn put_session_locked(&self, record: &SessionRecord, guard: &LockGuard) -> Result<(), StoreError> {
        let _ = guard;
        self.put_session(record).await
    }
}

/// A held lock. Release it with [`release`](Self::release); if it is dropped instead, an
/// in-process lock is freed at once and a store lock when its time-to-live ends.
///
/// A store lock whose lease can run out while the holder still works (Postgres, Redis) attaches a
/// *fence* ([`with_fence`](Self::with_fence)): the proof of ownership its store checks in
/// [`SessionStore::put_session_locked`], in the same atomic step as the write, so a holder whose
/// lease expired cannot overwrite the session a later holder refreshed.
pub struct LockGuard {
    /// In a mutex only so that the guard is `Sync` (a `&LockGuard` crosses awaits); never contended.
    release: Mutex<Option<ReleaseFn>>,
    fence: Option<Box<dyn std::any::Any + Send + Sync>>,
}

type ReleaseFn = Box<dyn FnOnce() -> Option<ReleaseFuture> + Send>;

/// The future that releases a store lock.
pub type ReleaseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl LockGuard {
    /// A guard that runs `release` when released (or dropped; the future is then spawned if a
    /// runtime is available).
    pub fn new(release: impl FnOnce() -> Option<ReleaseFuture> + Send + 'static) -> Self {
        Self { release: Mutex::new(Some(Box::new(release))), fence: None }
    }

    /// Attaches the store-specific proof of ownership that the store's
    /// [`SessionStore::put_session_locked`] checks.
    pub fn with_fence(mut self, fence: impl std::any::Any + Send + Sync) -> Self {
        self.fence = Some(Box::new(fence));
        self
    }

    /// The fence, if it is a `T` (a store reads back its own kind; `None` for other stores' guards).
    pub fn fence<T: std::any::Any>(&self) -> Option<&T> {
        self.fence.as_deref().and_then(|f| f.downcast_ref::<T>())
    }

    /// Releases the lock.
    pub async fn release(self) {
        if let Some(f) = self.take_release().and_then(|r| r()) {
            f.await;
        }
    }

    fn take_release(&self) -> Option<ReleaseFn> {
        lock(&self.release).take()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(f) = self.take_release().and_then(|r| r())
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(f);
        }
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// Mutual exclusion for refreshes (CL-REF-02). Implementations must exclude holders in every
/// process that shares the session store.
#[async_trait::async_trait]
pub trait SessionLock: Send + Sync + 'static {
    /// Waits (at most `wait`) for the lock `name`; a holder that dies keeps it at most `ttl`.
    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<LockGuard, StoreError>;
}

/// An in-process lock: one tokio mutex per name.
#[derive(Debug, Default, Clone)]
pub struct MemoryLock {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl MemoryLock {
    /// A new lock table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the named in-process mutex (used by other locks to avoid polling within a process).
    pub async fn lock_local(&self, name: &str, wait: Duration) -> Result<LockGuard, StoreError> {
        let m = {
            let mut map = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Drop idle entries so the table stays bounded.
            if map.len() > 1024 {
                map.retain(|_, m| Arc::strong_count(m) > 1);
            }
            Arc::clone(map.entry(name.to_owned()).or_default())
        };
        let guard = tokio::time::timeout(wait, m.lock_owned())
            .await
            .map_err(|_| StoreError::LockTimeout { name: name.to_owned() })?;
        Ok(LockGuard::new(move || {
            drop(guard);
            None
        }))
    }
}

#[async_trait::async_trait]
impl SessionLock for MemoryLock {
    async fn lock(&self, name: &str, _ttl: Duration, wait: Duration) -> Result<LockGuard, StoreError> {
        self.lock_local(name, wait).await
    }
}

/// In-memory state and session store (one process; lost on exit).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    states: Arc<Mutex<HashMap<String, PendingAuthorization>>>,
    sessions: Arc<Mutex<HashMap<SessionKey, SessionRecord>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait::async_trait]
impl StateStore for MemoryStore {
    async fn put_state(&self, state: &str, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let mut map = lock(&self.states);
        if map.len() > 10_000 {
            let now = atauth_crypto::clock::unix_seconds(std::time::SystemTime::now());
            map.retain(|_, p| p.expires_at > now);
        }
        map.insert(state.to_owned(), pending.clone());
        Ok(())
    }

    async fn take_state(&self, state: &str, now: i64) -> Result<Option<PendingAuthorization>, StoreError> {
        Ok(lock(&self.states).remove(state).filter(|p| p.expires_at > now))
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        Ok(lock(&self.sessions).get(key).cloned())
    }

    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        lock(&self.sessions).insert(record.key.clone(), record.clone());
        Ok(())
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        lock(&self.sessions).remove(key);
        Ok(())
    }

    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        let mut keys: Vec<SessionKey> =
            lock(&self.sessions).keys().filter(|k| &k.did == did).cloned().collect();
        keys.sort();
        Ok(keys)
    }

    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        let mut keys: Vec<SessionKey> = lock(&self.sessions).keys().cloned().collect();
        keys.sort();
        Ok(keys)
    }
}
