//! In-memory backend for every store trait: one mutex, so each operation is atomic. For tests and
//! single-process throwaway servers; nothing survives a restart.

mod factors;
mod legacy;
pub mod proofs;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AccountRecord, AccountStatus, AccountStore, ClientMetadataCache, CodeRecord, DeviceAccount,
    DeviceSession, DeviceStore, InviteCode, InviteCodeUse, InviteRedeemOutcome, PendingRequest,
    RedeemOutcome, RefreshKey, ReplayStore, RequestReplayStore, RequestStore, RotateOutcome, Rotation,
    SessionRecord, StoreError, TokenHash, TokenStore,
};
use crate::store::rules::{
    Presented, ROTATED_AT_CURRENT, ROTATED_AT_NO_RETRY, Verdict, apply_rotation, forget_consent, has_account,
    judge_rotation, presented_keyed, previous_after, remove_accounts, rotated_at_marker, session_matches,
    touch_accounts, upsert_account,
};

pub use self::legacy::MemoryLegacyStore;
pub use self::proofs::ProofReplaySet;

#[derive(Default)]
struct State {
    accounts: HashMap<String, AccountRecord>,
    invites: HashMap<String, InviteCode>,
    requests: HashMap<String, PendingRequest>,
    codes: HashMap<TokenHash, CodeRecord>,
    sessions: HashMap<String, SessionRecord>,
    /// refresh hash → (family id, its `rotated` state: see [`crate::store::rules::Presented`])
    refresh: HashMap<TokenHash, (String, i64)>,
    /// family id → the token its latest rotation replaced and that token's `rotated` state (the
    /// SQLite columns `prev_refresh_hash`, `prev_rotated_at`), for keyed tokens.
    previous: HashMap<String, (TokenHash, i64)>,
    access: HashMap<String, String>,
    devices: HashMap<TokenHash, DeviceSession>,
    replay: HashMap<[u8; 32], i64>,
    clients: HashMap<String, (String, i64)>,
    factors: Vec<super::FactorRecord>,
    /// (did, code hash) → used at
    recovery: HashMap<(String, TokenHash), Option<i64>>,
    pending_factors: HashMap<TokenHash, super::PendingFactor>,
}

impl State {
    /// Rotation of a token found by hash (the SQLite store's `rotate_by_hash`): every such token
    /// has an entry in `refresh`, the new one too; the replaced token is also recorded as the
    /// family's previous one, as the keyed path keeps it.
    fn rotate_by_hash(&mut self, old: &TokenHash, r: &Rotation) -> RotateOutcome {
        let Some((sid, rotated_at)) = self.refresh.get(old).cloned() else { return RotateOutcome::NotFound };
        let Some(session) = self.sessions.get(&sid).cloned() else {
            self.refresh.remove(old);
            return RotateOutcome::NotFound;
        };
        // The same rule as SQLite's: replaced by the family's latest rotation when no other token of
        // the family was rotated at or after it (only asked on the replay path).
        let presented = Presented::from_rotated_at(rotated_at, || {
            !self.refresh.iter().any(|(h, (f, at))| f == &sid && h != old && *at >= rotated_at)
        });
        let retry = match judge_rotation(&session, presented, r) {
            Verdict::Refuse(outcome) => {
                self.revoke(&sid);
                return outcome;
            }
            Verdict::Rotate => false,
            Verdict::Retry => true,
        };
        let mut next = session;
        self.access.remove(&next.access_jti);
        if retry {
            // The undelivered successor and this token's retry are both spent.
            for spent in [*old, next.refresh_hash] {
                if let Some(entry) = self.refresh.get_mut(&spent) {
                    entry.1 = ROTATED_AT_NO_RETRY;
                }
            }
        } else if let Some(entry) = self.refresh.get_mut(old) {
            entry.1 = rotated_at_marker(r.now);
        }
        apply_rotation(&mut next, r);
        // The presented token is the one replaced either way, so it is the family's previous one.
        self.previous.insert(sid.clone(), previous_after(retry, *old, *old, r.now));
        self.refresh.insert(next.refresh_hash, (sid.clone(), ROTATED_AT_CURRENT));
        self.access.insert(next.access_jti.clone(), sid.clone());
        self.sessions.insert(sid, next.clone());
        if retry { RotateOutcome::Retried(next) } else { RotateOutcome::Rotated(next) }
    }

    fn revoke(&mut self, id: &str) -> bool {
        let Some(session) = self.sessions.remove(id) else { return false };
        self.refresh.retain(|_, (sid, _)| sid != id);
        self.previous.remove(id);
        self.access.remove(&session.access_jti);
        true
    }
}

/// The in-memory store. See the module docs.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_account(&self, account: AccountRecord) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.accounts.contains_key(&account.did) {
            return Err(StoreError::Conflict("did"));
        }
        if s.accounts.values().any(|a| a.handle == account.handle) {
            return Err(StoreError::Conflict("handle"));
        }
        if account.email.is_some() && s.accounts.values().any(|a| a.email == account.email) {
            return Err(StoreError::Conflict("email"));
        }
        s.accounts.insert(account.did.clone(), account);
        Ok(())
    }

    async fn account_by_did(&self, did: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.get(did).cloned())
    }

    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.values().find(|a| a.handle == handle).cloned())
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.values().find(|a| a.email.as_deref() == Some(email)).cloned())
    }

    async fn set_account_status(&self, did: &str, status: AccountStatus) -> Result<bool, StoreError> {
        Ok(self.lock().accounts.get_mut(did).map(|a| a.status = status).is_some())
    }

    async fn set_password_hash(
        &self,
        did: &str,
        hash: &atauth_crypto::SecretString,
    ) -> Result<bool, StoreError> {
        Ok(self.lock().accounts.get_mut(did).map(|a| a.password_hash = hash.clone()).is_some())
    }

    async fn put_invite_code(&self, code: InviteCode) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.invites.contains_key(&code.code) {
            return Err(StoreError::Conflict("invite code"));
        }
        s.invites.insert(code.code.clone(), InviteCode { uses: Vec::new(), ..code });
        Ok(())
    }

    async fn invite_code(&self, code: &str) -> Result<Option<InviteCode>, StoreError> {
        Ok(self.lock().invites.get(code).cloned())
    }

    async fn list_invite_codes(&self) -> Result<Vec<InviteCode>, StoreError> {
        let mut all: Vec<InviteCode> = self.lock().invites.values().cloned().collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.code.cmp(&b.code)));
        Ok(all)
    }

    async fn disable_invite_code(&self, code: &str) -> Result<bool, StoreError> {
        Ok(self.lock().invites.get_mut(code).map(|c| c.disabled = true).is_some())
    }

    async fn create_account_with_invite(
        &self,
        account: AccountRecord,
        code: &str,
    ) -> Result<InviteRedeemOutcome, StoreError> {
        let mut s = self.lock();
        let Some(invite) = s.invites.get(code) else { return Ok(InviteRedeemOutcome::UnknownCode) };
        if invite.disabled {
            return Ok(InviteRedeemOutcome::Disabled);
        }
        if invite.remaining() == 0 {
            return Ok(InviteRedeemOutcome::UsedUp);
        }
        if s.accounts.contains_key(&account.did) {
            return Err(StoreError::Conflict("did"));
        }
        if s.accounts.values().any(|a| a.handle == account.handle) {
            return Err(StoreError::Conflict("handle"));
        }
        if account.email.is_some() && s.accounts.values().any(|a| a.email == account.email) {
            return Err(StoreError::Conflict("email"));
        }
        let used = InviteCodeUse { did: account.did.clone(), used_at: account.created_at };
        if let Some(invite) = s.invites.get_mut(code) {
            invite.uses.push(used);
        }
        s.accounts.insert(account.did.clone(), account);
        Ok(InviteRedeemOutcome::Created)
    }
}

#[async_trait]
impl RequestStore for MemoryStore {
    async fn put_request(&self, request: PendingRequest) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.requests.contains_key(&request.id) {
            return Err(StoreError::Conflict("request id"));
        }
        s.requests.insert(request.id.clone(), request);
        Ok(())
    }

    async fn get_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        Ok(self.lock().requests.get(id).filter(|r| r.expires_at > now).cloned())
    }

    async fn bind_request_device(&self, id: &str, device_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.requests.get_mut(id).filter(|r| r.expires_at > now) else { return Ok(false) };
        match &r.device_id {
            Some(bound) => Ok(bound == device_id),
            None => {
                r.device_id = Some(device_id.to_owned());
                Ok(true)
            }
        }
    }

    async fn take_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        Ok(self.lock().requests.remove(id).filter(|r| r.expires_at > now))
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn put_code(&self, code: CodeRecord) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.codes.contains_key(&code.code_hash) {
            return Err(StoreError::Conflict("code"));
        }
        s.codes.insert(code.code_hash, code);
        Ok(())
    }

    async fn get_code(&self, hash: &TokenHash) -> Result<Option<CodeRecord>, StoreError> {
        Ok(self.lock().codes.get(hash).cloned())
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: i64,
        session: SessionRecord,
    ) -> Result<RedeemOutcome, StoreError> {
        let mut s = self.lock();
        let Some(code) = s.codes.get(hash).cloned() else { return Ok(RedeemOutcome::NotFound) };
        if code.used {
            if let Some(sid) = &code.session_id {
                s.revoke(sid);
            }
            return Ok(RedeemOutcome::Reused);
        }
        if code.expires_at <= now {
            s.codes.remove(hash);
            return Ok(RedeemOutcome::Expired);
        }
        if s.sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict("session id"));
        }
        if let Some(c) = s.codes.get_mut(hash) {
            c.used = true;
            c.session_id = Some(session.id.clone());
        }
        s.refresh.insert(session.refresh_hash, (session.id.clone(), ROTATED_AT_CURRENT));
        s.access.insert(session.access_jti.clone(), session.id.clone());
        s.sessions.insert(session.id.clone(), session);
        Ok(RedeemOutcome::Redeemed)
    }

    async fn rotate_refresh(&self, old: &RefreshKey, r: Rotation) -> Result<RotateOutcome, StoreError> {
        let mut s = self.lock();
        let Some(family) = &old.family else { return Ok(s.rotate_by_hash(&old.hash, &r)) };
        // The same rules as SQLite's keyed path: the family by id, the token against its current and
        // previous one; no entry in `refresh` for the new token.
        let Some(session) = s.sessions.get(family).cloned() else { return Ok(RotateOutcome::NotFound) };
        let previous = s.previous.get(family).map(|(prev, at)| (prev, *at));
        let presented = presented_keyed(&session.refresh_hash, previous, &old.hash);
        let retry = match judge_rotation(&session, presented, &r) {
            Verdict::Refuse(outcome) => {
                s.revoke(family);
                return Ok(outcome);
            }
            Verdict::Rotate => false,
            Verdict::Retry => true,
        };
        let previous = previous_after(retry, old.hash, session.refresh_hash, r.now);
        let mut next = session;
        s.access.remove(&next.access_jti);
        apply_rotation(&mut next, &r);
        s.previous.insert(family.clone(), previous);
        s.access.insert(next.access_jti.clone(), family.clone());
        s.sessions.insert(family.clone(), next.clone());
        Ok(if retry { RotateOutcome::Retried(next) } else { RotateOutcome::Rotated(next) })
    }

    async fn session_by_access_jti(&self, jti: &str, now: i64) -> Result<Option<SessionRecord>, StoreError> {
        let s = self.lock();
        Ok(s.access
            .get(jti)
            .and_then(|sid| s.sessions.get(sid))
            .filter(|x| x.access_jti == jti && x.access_expires_at > now && x.expires_at > now)
            .cloned())
    }

    async fn session_by_refresh(&self, key: &RefreshKey) -> Result<Option<SessionRecord>, StoreError> {
        let s = self.lock();
        let sid = match &key.family {
            Some(family) => Some(family),
            None => s.refresh.get(&key.hash).map(|(sid, _)| sid),
        };
        Ok(sid.and_then(|sid| s.sessions.get(sid)).cloned())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn sessions_for_account(&self, sub: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let mut v: Vec<_> =
            self.lock().sessions.values().filter(|x| x.sub == sub && x.expires_at > now).cloned().collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().revoke(id))
    }

    async fn revoke_account_sessions(
        &self,
        sub: &str,
        client_id: Option<&str>,
        device_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let ids: Vec<String> = s
            .sessions
            .values()
            .filter(|x| session_matches(x, sub, client_id, device_id))
            .map(|x| x.id.clone())
            .collect();
        for id in &ids {
            s.revoke(id);
        }
        Ok(u64::try_from(ids.len()).unwrap_or(0))
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let before = s.codes.len() + s.sessions.len();
        s.codes.retain(|_, c| c.expires_at > now);
        s.requests.retain(|_, r| r.expires_at > now);
        let dead: Vec<String> =
            s.sessions.values().filter(|x| x.expires_at <= now).map(|x| x.id.clone()).collect();
        for id in &dead {
            s.revoke(id);
        }
        Ok(u64::try_from(before - (s.codes.len() + s.sessions.len())).unwrap_or(0))
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn put_device(&self, device: DeviceSession) -> Result<(), StoreError> {
        self.lock().devices.insert(device.id, device);
        Ok(())
    }

    async fn get_device(&self, id: &TokenHash, now: i64) -> Result<Option<DeviceSession>, StoreError> {
        Ok(self.lock().devices.get(id).filter(|d| d.expires_at > now).cloned())
    }

    async fn upsert_device_account(
        &self,
        id: &TokenHash,
        account: DeviceAccount,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(d) = s.devices.get_mut(id).filter(|d| d.expires_at > now) else { return Ok(false) };
        upsert_account(&mut d.accounts, account);
        d.expires_at = d.expires_at.max(expires_at);
        Ok(true)
    }

    async fn remove_device_accounts(&self, id: &TokenHash, did: Option<&str>) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let Some(d) = s.devices.get_mut(id) else { return Ok(0) };
        Ok(remove_accounts(&mut d.accounts, did))
    }

    async fn delete_device(&self, id: &TokenHash) -> Result<bool, StoreError> {
        Ok(self.lock().devices.remove(id).is_some())
    }

    async fn devices_for_account(&self, did: &str, now: i64) -> Result<Vec<DeviceSession>, StoreError> {
        Ok(self
            .lock()
            .devices
            .values()
            .filter(|d| d.expires_at > now && has_account(&d.accounts, did))
            .cloned()
            .collect())
    }

    async fn touch_device(&self, id: &TokenHash, now: i64, ip: Option<&str>) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(d) = s.devices.get_mut(id).filter(|d| d.expires_at > now) else { return Ok(false) };
        touch_accounts(&mut d.accounts, now, ip);
        Ok(true)
    }

    async fn remove_account_everywhere(&self, did: &str) -> Result<u64, StoreError> {
        let mut s = self.lock();
        Ok(s.devices.values_mut().map(|d| remove_accounts(&mut d.accounts, Some(did)).min(1)).sum())
    }

    async fn forget_consents(&self, did: &str, client_id: &str) -> Result<u64, StoreError> {
        let mut s = self.lock();
        Ok(s.devices.values_mut().map(|d| forget_consent(&mut d.accounts, did, client_id)).sum())
    }

    async fn purge_expired_devices(&self, now: i64) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let before = s.devices.len();
        s.devices.retain(|_, d| d.expires_at > now);
        Ok(u64::try_from(before - s.devices.len()).unwrap_or(0))
    }
}

#[async_trait]
impl RequestReplayStore for MemoryStore {
    async fn put_request_once(
        &self,
        request: PendingRequest,
        key: [u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // One lock for both, and nothing written until both checks passed.
        let mut s = self.lock();
        if s.replay.get(&key).is_some_and(|&exp| exp > now) {
            return Ok(false);
        }
        if s.requests.contains_key(&request.id) {
            return Err(StoreError::Conflict("request id"));
        }
        s.replay.insert(key, expires_at);
        s.requests.insert(request.id.clone(), request);
        Ok(true)
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.replay.get(&key) {
            Some(&exp) if exp > now => Ok(false),
            _ => {
                s.replay.insert(key, expires_at);
                Ok(true)
            }
        }
    }

    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let before = s.replay.len();
        s.replay.retain(|_, exp| *exp > now);
        Ok(u64::try_from(before - s.replay.len()).unwrap_or(0))
    }
}

#[async_trait]
impl ClientMetadataCache for MemoryStore {
    async fn get_client(&self, client_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        Ok(self.lock().clients.get(client_id).filter(|(_, exp)| *exp > now).map(|(j, _)| j.clone()))
    }

    async fn put_client(&self, client_id: &str, json: &str, expires_at: i64) -> Result<(), StoreError> {
        self.lock().clients.insert(client_id.to_owned(), (json.to_owned(), expires_at));
        Ok(())
    }

    async fn remove_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.lock().clients.remove(client_id);
        Ok(())
    }
}
