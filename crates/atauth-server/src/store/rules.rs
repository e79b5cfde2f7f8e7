//! The rules every backend applies the same way, kept out of any one backend so a new one (Postgres,
//! issue 14) calls them instead of copying them: refresh-token rotation (AS-REF-01/02/03 and the
//! lost-response retry) and the account list of a device session. Each backend does its own I/O
//! around them, in one transaction; the conformance suite pins the outcomes.

use super::{ClientAuthBinding, DeviceAccount, RotateOutcome, Rotation, SessionRecord, TokenHash};

/// The `rotated` state of a refresh token (SQLite column `refresh_tokens.rotated`, the memory
/// store's map): the family's current token.
pub(crate) const ROTATED_AT_CURRENT: i64 = 0;
/// Rotated with no retry left: its retry was spent, it was never delivered, or it was rotated by a
/// version that stored a plain flag (1 was "rotated"). Any other value is the rotation's time.
pub(crate) const ROTATED_AT_NO_RETRY: i64 = 1;

/// The `rotated` value that records a rotation at `now` (kept above the two markers).
pub(crate) fn rotated_at_marker(now: i64) -> i64 {
    now.max(ROTATED_AT_NO_RETRY + 1)
}

/// How a presented refresh token stands in its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented {
    /// The family's current token.
    Current,
    /// The token the family's latest rotation replaced, rotated at `at` (Unix seconds).
    Latest {
        /// When it was rotated.
        at: i64,
    },
    /// Rotated earlier, or with no retry left.
    Stale,
}

impl Presented {
    /// From a stored `rotated` value; `is_latest` is asked only for a rotation time, and must say
    /// whether no other token of the family was rotated at or after it (every backend derives it
    /// so from the stored times; two rotations in the same second make neither retryable).
    pub(crate) fn from_rotated_at(rotated_at: i64, is_latest: impl FnOnce() -> bool) -> Self {
        match rotated_at {
            ROTATED_AT_CURRENT => Self::Current,
            ROTATED_AT_NO_RETRY => Self::Stale,
            at if is_latest() => Self::Latest { at },
            _ => Self::Stale,
        }
    }
}

/// How a keyed token ([`super::RefreshKey`]) stands in the family it names, from the family's
/// current token and the one its latest rotation replaced (with that token's `rotated` value): any
/// other token naming the family was issued to it earlier (AS-REF-01). No time comparison is needed
/// to know the replaced token is the latest, so two rotations in one second leave it retryable.
pub(crate) fn presented_keyed(
    current: &TokenHash,
    previous: Option<(&TokenHash, i64)>,
    presented: &TokenHash,
) -> Presented {
    match previous {
        _ if current == presented => Presented::Current,
        Some((prev, at)) if prev == presented => Presented::from_rotated_at(at, || true),
        _ => Presented::Stale,
    }
}

/// The family's previous token after a rotation of `presented` (keyed or not): after a retry the
/// presented token with no retry left (its undelivered successor is forgotten), else the token the
/// rotation replaced, rotated at `now`.
pub(crate) fn previous_after(
    retry: bool,
    presented: TokenHash,
    replaced: TokenHash,
    now: i64,
) -> (TokenHash, i64) {
    if retry { (presented, ROTATED_AT_NO_RETRY) } else { (replaced, rotated_at_marker(now)) }
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // `Refuse` holds only data-less outcomes; built once per refresh
pub(crate) enum Verdict {
    /// The current token: rotate.
    Rotate,
    /// A lost response's retry within the grace: rotate afresh from the current token.
    Retry,
    /// Refused: revoke the family and answer this.
    Refuse(RotateOutcome),
}

/// Judges a refresh attempt against its family; the same rules for every store. A rotated token is a
/// replay (AS-REF-01) unless it is the latest one, presented within [`Rotation::retry_grace`]; then,
/// like the current token, it must come from the family's client, DPoP key and client
/// authentication (AS-REF-02, AS-CAUTH-04) before the family's end (AS-REF-03).
pub(crate) fn judge_rotation(session: &SessionRecord, presented: Presented, r: &Rotation) -> Verdict {
    let retry = match presented {
        Presented::Current => false,
        Presented::Latest { at } if r.retry_grace > 0 && r.now - at <= r.retry_grace => true,
        Presented::Latest { .. } | Presented::Stale => return Verdict::Refuse(RotateOutcome::Replayed),
    };
    if session.client_id != r.client_id {
        return Verdict::Refuse(RotateOutcome::ClientMismatch);
    }
    if session.dpop_jkt != r.dpop_jkt {
        return Verdict::Refuse(RotateOutcome::DpopKeyMismatch);
    }
    let auth_ok = match (&session.client_auth, &r.client_auth) {
        (a, b) if a == b => true,
        // The reference allows a public session to continue as a confidential one.
        (ClientAuthBinding::None, ClientAuthBinding::PrivateKeyJwt { .. }) => true,
        _ => false,
    };
    if !auth_ok {
        return Verdict::Refuse(RotateOutcome::ClientAuthMismatch);
    }
    if session.refresh_expires_at <= r.now || session.expires_at <= r.now {
        return Verdict::Refuse(RotateOutcome::Expired);
    }
    if retry { Verdict::Retry } else { Verdict::Rotate }
}

/// Applies a rotation to a family (caps lifetimes at the family's end, AS-REF-03).
pub(crate) fn apply_rotation(session: &mut SessionRecord, r: &Rotation) {
    session.refresh_hash = r.new_refresh_hash;
    session.refresh_expires_at = r.new_refresh_expires_at.min(session.expires_at);
    session.access_jti.clone_from(&r.new_access_jti);
    session.access_expires_at = r.new_access_expires_at.min(session.expires_at);
    session.client_auth = r.client_auth.clone();
    session.updated_at = r.now;
}

/// Adds or replaces (moving it last) the entry for `account.did`. A new entry without consents
/// keeps the old entry's (signing in again does not forget what was granted, AS-AUTHZ-05), and one
/// without an address keeps the old entry's. Shared by every backend.
pub(crate) fn upsert_account(accounts: &mut Vec<DeviceAccount>, mut account: DeviceAccount) {
    if let Some(old) = accounts.iter().find(|a| a.did == account.did) {
        if account.consents.is_empty() {
            account.consents = old.consents.clone();
        }
        if account.ip.is_none() {
            account.ip = old.ip.clone();
        }
        account.last_seen_at = account.last_seen_at.max(old.last_seen_at);
    }
    accounts.retain(|a| a.did != account.did);
    accounts.push(account);
}

/// Removes the entry for `did`, or every entry without `remember`. Shared by both backends.
pub(crate) fn remove_accounts(accounts: &mut Vec<DeviceAccount>, did: Option<&str>) -> u64 {
    let before = accounts.len();
    match did {
        Some(did) => accounts.retain(|a| a.did != did),
        None => accounts.retain(|a| a.remember),
    }
    u64::try_from(before - accounts.len()).unwrap_or(0)
}

/// Seconds within which [`touch_accounts`] does not count a repeated visit from the same address as
/// a change (so page views do not each cost a write).
pub(crate) const TOUCH_GRANULARITY: i64 = 60;

/// Records a visit at `now` from `ip` (when known) on every entry. Returns whether anything worth
/// a write changed: an entry last seen [`TOUCH_GRANULARITY`] or more before, or from another address.
pub(crate) fn touch_accounts(accounts: &mut [DeviceAccount], now: i64, ip: Option<&str>) -> bool {
    let mut changed = false;
    for a in accounts {
        if now - a.last_seen_at >= TOUCH_GRANULARITY || (ip.is_some() && a.ip.as_deref() != ip) {
            changed = true;
        }
        a.last_seen_at = a.last_seen_at.max(now);
        if let Some(ip) = ip {
            a.ip = Some(ip.to_owned());
        }
    }
    changed
}

/// Whether `did` is signed in among these entries.
pub(crate) fn has_account(accounts: &[DeviceAccount], did: &str) -> bool {
    accounts.iter().any(|a| a.did == did)
}

/// Forgets what `did` granted `client_id`; how many consents went.
pub(crate) fn forget_consent(accounts: &mut [DeviceAccount], did: &str, client_id: &str) -> u64 {
    let mut n = 0;
    for a in accounts.iter_mut().filter(|a| a.did == did) {
        let before = a.consents.len();
        a.consents.retain(|c| c.client_id != client_id);
        n += before - a.consents.len();
    }
    u64::try_from(n).unwrap_or(0)
}

/// Whether a family is one that [`super::TokenStore::revoke_account_sessions`] revokes.
pub(crate) fn session_matches(
    session: &SessionRecord,
    sub: &str,
    client_id: Option<&str>,
    device_id: Option<&str>,
) -> bool {
    session.sub == sub
        && client_id.is_none_or(|c| session.client_id == c)
        && device_id.is_none_or(|d| session.device_id.as_deref() == Some(d))
}
