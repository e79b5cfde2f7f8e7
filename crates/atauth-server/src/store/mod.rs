//! Storage: one trait per concern, each with a memory and a SQLite backend, and one
//! conformance suite that every backend passes (`conformance`, cargo feature `testing`).
//!
//! | trait | holds |
//! |---|---|
//! | [`AccountStore`] | accounts: DID, handle, email, scrypt password hash, repo signing key, status; and the sign-up invite codes ([`InviteCode`]), redeemed in the same transaction that creates the account |
//! | [`RequestStore`] | pending PAR requests (AS-PAR-08): single use, expiring, bound to a device on first view |
//! | [`TokenStore`] | authorization codes (AS-CODE-01/02) and token families ("sessions"): refresh rotation, replay → family revoked (AS-REF-01/02/03), access-token lookup for stateful revocation |
//! | [`DeviceStore`] | browser device sessions (the sign-in cookie of the consent UI) |
//! | [`ReplayStore`] | one-time identifiers: DPoP `jti`s (AS-DPOP-05), client-assertion `jti`s (AS-CAUTH-02), PKCE challenges (AS-PAR-07); [`ProofReplaySet`] holds the DPoP `jti`s in process memory for the single-instance SQLite default |
//! | [`RequestReplayStore`] | a pushed request and its PKCE challenge's replay record in one write, for a backend that holds both ([`Stores::request_replay`]) |
//! | [`ClientMetadataCache`] | validated client-metadata documents with an expiry (AS-CMD-03) |
//! | [`LegacyStore`] | app passwords and legacy refresh tokens (LEG-05, LEG-10), see [`legacy`] |
//! | [`FactorStore`] | second factors (TOTP, passkeys), recovery codes, pending second-factor sign-ins, see [`factors`] |
//!
//! **Atomicity lives in the store.** Every operation that reads and then writes (refresh rotation,
//! code redemption, taking a PAR request, recording a `jti`) is one SQL transaction or one critical
//! section; callers never read-then-write across two awaits.
//!
//! Secrets are never stored in the clear where a hash suffices: codes and refresh tokens are kept
//! as SHA-256 digests ([`TokenHash`]); access tokens are identified by their `jti`.
//!
//! Backends live in `store/<backend>/`, one file per concern: `memory/`, `sqlite/` and (cargo
//! feature `postgres`) `postgres/`, for several instances sharing one database; (feature `redis`)
//! `redis/` holds the [`ReplayStore`] only. Each runs the conformance suites of what it implements.

#[cfg(feature = "testing")]
pub mod conformance;
pub mod factors;
pub mod legacy;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub(crate) mod rules;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use factors::{FactorKind, FactorRecord, FactorStore, PendingFactor};
pub use legacy::{AppPasswordRecord, LegacyRefreshRecord, LegacyStore};
pub use memory::{MemoryLegacyStore, MemoryStore, ProofReplaySet};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresLegacyStore, PostgresStore};
pub use sqlite::{SqliteLegacyStore, SqliteStore};

/// A store operation failed for an internal reason (I/O, SQL, corrupted row). Answered to clients as
/// `server_error` without detail; the cause is logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique value (DID, handle, email, id) already exists.
    #[error("a record with this {0} already exists")]
    Conflict(&'static str),
    /// The backend failed.
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be decoded.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The store does not implement this optional feature (e.g. invite codes in an application's
    /// own [`AccountStore`]); every backend of this crate implements everything.
    #[error("this store does not support {0}")]
    Unsupported(&'static str),
}

/// SHA-256 of a secret (authorization code, refresh token): what the stores keep instead of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a secret value.
    pub fn of(secret: &str) -> Self {
        Self(atauth_crypto::hash::sha256(secret.as_bytes()))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest is not the secret, but there is no reason to print it in full either.
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// How a presented refresh token is looked up: its hash, and the id of the family it names.
///
/// Refresh tokens issued since store format 4 name their family (`ref-<family hex>-<secret hex>`,
/// [`RefreshKey::of`]), so a store can find the family by its primary key and keep only the
/// family's current and previous token hashes instead of a row per token ever issued (one write
/// per rotation instead of several, issue 18). Older tokens (`ref-<secret hex>`) carry no family
/// and are found by hash. Either way the hash decides which of the family's tokens it is; a token
/// that names a live family but is neither its current nor its previous one was issued to that
/// family earlier (family ids are 128-bit random and appear nowhere else) and is a replay
/// (AS-REF-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshKey {
    /// SHA-256 of the whole token.
    pub hash: TokenHash,
    /// The family id the token names (`ses-<hex>`), if it is of the keyed format.
    pub family: Option<String>,
}

impl RefreshKey {
    /// The prefix of every refresh token.
    pub const PREFIX: &'static str = "ref-";

    /// Parses a presented refresh token. A token of the keyed format yields its family id; any
    /// other string is looked up by hash alone (and is simply not found if it is not ours).
    pub fn of(token: &str) -> Self {
        let family = token
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .filter(|(family, secret)| {
                family.len() == 32
                    && !secret.is_empty()
                    && family.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .map(|(family, _)| format!("ses-{family}"));
        Self { hash: TokenHash::of(token), family }
    }

    /// A new refresh token of the keyed format for the family `family_id` (`ses-<32 hex>`), with
    /// 32 random bytes of secret. `None` if the id is not of that shape (then the caller issues an
    /// unkeyed token).
    pub fn new_token(family_id: &str) -> Option<String> {
        let hex_id = family_id.strip_prefix("ses-").filter(|h| h.len() == 32)?;
        let secret = hex::encode(atauth_crypto::random::random_bytes::<32>());
        Some(format!("{}{hex_id}-{secret}", Self::PREFIX))
    }
}

impl From<TokenHash> for RefreshKey {
    /// A lookup by hash alone (tokens of the older format, and tests).
    fn from(hash: TokenHash) -> Self {
        Self { hash, family: None }
    }
}

// ------------------------------------------------------------------------------------- accounts ---

/// Whether an account may sign in and authorize clients (AS-AUTHZ-07).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AccountStatus {
    /// Normal.
    Active,
    /// Deactivated by its owner.
    Deactivated,
    /// Taken down by the operator.
    Takendown,
}

impl AccountStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Takendown => "takendown",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "deactivated" => Some(Self::Deactivated),
            "takendown" => Some(Self::Takendown),
            _ => None,
        }
    }
}

/// A stored account. `password_hash` is `salt:hexhash` (reference PDS scrypt format); the repo
/// signing key is a secp256k1 scalar in hex. Both are secrets and print as `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account DID (primary key).
    pub did: String,
    /// Lowercase handle (unique).
    pub handle: String,
    /// Lowercase email (unique), if any.
    pub email: Option<String>,
    /// scrypt hash in the reference PDS format.
    pub password_hash: atauth_crypto::SecretString,
    /// The repo signing key (secp256k1, hex), if the server holds it.
    pub signing_key_hex: Option<atauth_crypto::SecretString>,
    /// Unix seconds.
    pub created_at: i64,
    /// Status.
    pub status: AccountStatus,
}

/// A sign-up invite code ([`crate::signup`]): usable `uses_allowed` times, unless disabled. Kept
/// in the clear, like the reference PDS's, because the operator lists them to hand them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCode {
    /// The code (lowercase, `xxxxx-xxxxx-xxxxx`).
    pub code: String,
    /// How many accounts it may create (at least 1).
    pub uses_allowed: u32,
    /// Disabled by the operator: no more uses.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// The accounts it created, oldest first. Empty when stored.
    pub uses: Vec<InviteCodeUse>,
}

impl InviteCode {
    /// Uses left (0 when disabled).
    pub fn remaining(&self) -> u32 {
        if self.disabled {
            return 0;
        }
        self.uses_allowed.saturating_sub(u32::try_from(self.uses.len()).unwrap_or(u32::MAX))
    }
}

/// One account an invite code created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCodeUse {
    /// The account's DID.
    pub did: String,
    /// Unix seconds (the account's `created_at`).
    pub used_at: i64,
}

/// The result of [`AccountStore::create_account_with_invite`]. Anything but `Created` changed
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InviteRedeemOutcome {
    /// The account was stored and one use of the code recorded.
    Created,
    /// No such code.
    UnknownCode,
    /// The code was disabled.
    Disabled,
    /// Every use of the code is spent.
    UsedUp,
}

const NO_INVITES: &str = "invite codes";

/// Accounts.
///
/// The invite-code methods have default bodies that answer [`StoreError::Unsupported`], so an
/// application's own account store keeps compiling; sign-up with invite codes then fails with that
/// error. Every backend of this crate implements them and passes the conformance suite's
/// `invite_code_suite`.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Inserts a new account; [`StoreError::Conflict`] if the DID, handle or email exists.
    async fn create_account(&self, account: AccountRecord) -> Result<(), StoreError>;
    /// The account with this DID.
    async fn account_by_did(&self, did: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// The account with this (lowercase) handle.
    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// The account with this (lowercase) email.
    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// Sets the status; `false` if there is no such account.
    async fn set_account_status(&self, did: &str, status: AccountStatus) -> Result<bool, StoreError>;
    /// Replaces the password hash; `false` if there is no such account.
    async fn set_password_hash(
        &self,
        did: &str,
        hash: &atauth_crypto::SecretString,
    ) -> Result<bool, StoreError>;

    /// Stores a new invite code (its `uses` are ignored); [`StoreError::Conflict`]`("invite code")`
    /// if the code exists.
    async fn put_invite_code(&self, code: InviteCode) -> Result<(), StoreError> {
        let _ = code;
        Err(StoreError::Unsupported(NO_INVITES))
    }
    /// The invite code with its uses.
    async fn invite_code(&self, code: &str) -> Result<Option<InviteCode>, StoreError> {
        let _ = code;
        Err(StoreError::Unsupported(NO_INVITES))
    }
    /// Every invite code with its uses, oldest first (ties by code).
    async fn list_invite_codes(&self) -> Result<Vec<InviteCode>, StoreError> {
        Err(StoreError::Unsupported(NO_INVITES))
    }
    /// Disables a code (no more uses; past uses stay); `false` if there is no such code.
    async fn disable_invite_code(&self, code: &str) -> Result<bool, StoreError> {
        let _ = code;
        Err(StoreError::Unsupported(NO_INVITES))
    }
    /// Atomically takes one use of `code` and inserts `account` (the use is recorded with the
    /// account's DID and `created_at`): both or neither. [`StoreError::Conflict`] as
    /// [`Self::create_account`] when the DID, handle or email exists, and then the code keeps its
    /// use. Of two callers racing for a code's last use exactly one gets it.
    async fn create_account_with_invite(
        &self,
        account: AccountRecord,
        code: &str,
    ) -> Result<InviteRedeemOutcome, StoreError> {
        let _ = (account, code);
        Err(StoreError::Unsupported(NO_INVITES))
    }
}

// ------------------------------------------------------------------------------------- requests ---

/// How a client authenticated, bound to everything issued from that authentication
/// (AS-CAUTH-04, AS-TOK-03, AS-REF-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuthBinding {
    /// Public client (`token_endpoint_auth_method: none`).
    None,
    /// `private_key_jwt` with this key.
    PrivateKeyJwt {
        /// The assertion header `kid`.
        kid: String,
        /// The assertion `alg`.
        alg: String,
        /// RFC 7638 thumbprint of the key.
        jkt: String,
    },
}

/// The parameters of an authorization request, as validated at PAR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// `client_id`, exactly as sent (CL-MD-04).
    pub client_id: String,
    /// The redirect URI the response goes to (matched at PAR, AS-PAR-03).
    pub redirect_uri: String,
    /// Requested scope (space-separated, contains `atproto`).
    pub scope: String,
    /// Client `state`, echoed in the redirect.
    pub state: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `login_hint` (a lowercase handle or a DID), if given.
    pub login_hint: Option<String>,
    /// `prompt`, if given.
    pub prompt: Option<String>,
    /// `response_mode` (`query` or `fragment`; default `query`).
    pub response_mode: Option<String>,
}

/// A pushed authorization request waiting for the user (AS-PAR-08).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    /// Identifier; the `request_uri` is `urn:ietf:params:oauth:request_uri:` + id.
    pub id: String,
    /// The validated parameters.
    pub request: AuthorizationRequest,
    /// The DPoP key bound at PAR (AS-PAR-04).
    pub dpop_jkt: String,
    /// How the client authenticated at PAR.
    pub client_auth: ClientAuthBinding,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the request is gone afterwards.
    pub expires_at: i64,
    /// The browser device the request was first viewed on (set by the UI).
    pub device_id: Option<String>,
}

/// Pending PAR requests.
#[async_trait]
pub trait RequestStore: Send + Sync + 'static {
    /// Stores a new request; [`StoreError::Conflict`] if the id exists.
    async fn put_request(&self, request: PendingRequest) -> Result<(), StoreError>;
    /// The unexpired request with this id (without consuming it: page reloads are fine, AS-AUTHZ-01).
    async fn get_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError>;
    /// Binds the request to `device_id` if unbound. Returns `false` if it is bound to another
    /// device, or missing/expired.
    async fn bind_request_device(&self, id: &str, device_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Atomically removes and returns the unexpired request: the single use (AS-AUTHZ-01).
    async fn take_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError>;
}

// --------------------------------------------------------------------------------------- tokens ---

/// An authorization code awaiting redemption (AS-CODE-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub code_hash: TokenHash,
    /// The authorization request it answers.
    pub request: AuthorizationRequest,
    /// The account that approved it.
    pub sub: String,
    /// The scope granted (a subset of the requested one).
    pub scope: String,
    /// DPoP key bound at PAR.
    pub dpop_jkt: String,
    /// Client authentication at PAR.
    pub client_auth: ClientAuthBinding,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Whether it was redeemed.
    pub used: bool,
    /// The token family it produced, once redeemed.
    pub session_id: Option<String>,
    /// Browser device that approved it.
    pub device_id: Option<String>,
}

/// A token family: the session one authorization code started, renewed by refresh rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Family id.
    pub id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The account DID.
    pub sub: String,
    /// Granted scope.
    pub scope: String,
    /// The DPoP key everything in the family is bound to.
    pub dpop_jkt: String,
    /// Client authentication binding (AS-CAUTH-04).
    pub client_auth: ClientAuthBinding,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: the family's hard end (AS-LIFE-02/03).
    pub expires_at: i64,
    /// Hash of the current refresh token.
    pub refresh_hash: TokenHash,
    /// Unix seconds: the current refresh token's end.
    pub refresh_expires_at: i64,
    /// `jti` of the current access token (stateful revocation at the RS).
    pub access_jti: String,
    /// Unix seconds: the current access token's `exp`.
    pub access_expires_at: i64,
    /// Unix seconds: last issuance.
    pub updated_at: i64,
    /// Browser device that approved it.
    pub device_id: Option<String>,
}

/// What a refresh must match, and what replaces the old token (AS-REF-01/02/03).
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Unix seconds.
    pub now: i64,
    /// The presenting client (must equal the family's).
    pub client_id: String,
    /// The presenting DPoP key (must equal the family's).
    pub dpop_jkt: String,
    /// The presenting client authentication (must equal the family's; a public family may upgrade to
    /// `private_key_jwt`, as the reference allows).
    pub client_auth: ClientAuthBinding,
    /// The new refresh token's hash.
    pub new_refresh_hash: TokenHash,
    /// The new refresh token's end (the store caps it at the family's end).
    pub new_refresh_expires_at: i64,
    /// The new access token's `jti`.
    pub new_access_jti: String,
    /// The new access token's `exp` (the store caps it at the family's end).
    pub new_access_expires_at: i64,
    /// Seconds during which the token the family's latest rotation replaced may be presented once
    /// more, by the same client with the same DPoP key and client authentication, when the response
    /// that carried its successor was lost (bluesky-social/atproto#4656). 0 turns this off: every
    /// rotated token is then a replay (AS-REF-01).
    pub retry_grace: i64,
}

/// The result of [`TokenStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // returned once per refresh; boxing would only add an allocation
pub enum RotateOutcome {
    /// Rotated; the family after the change.
    Rotated(SessionRecord),
    /// The token the latest rotation replaced came back within [`Rotation::retry_grace`] from the
    /// same client, key and authentication (a lost response, retried): the family was rotated
    /// afresh, the successor that was never delivered no longer works, and this token's one retry is
    /// spent. The family after the change.
    Retried(SessionRecord),
    /// No such refresh token (never issued, or its family is gone).
    NotFound,
    /// An already-rotated token was presented: the family was revoked (AS-REF-01).
    Replayed,
    /// The refresh token or its family expired; the family was revoked.
    Expired,
    /// Presented by another client: the family was revoked (AS-REF-02).
    ClientMismatch,
    /// Presented with another DPoP key: the family was revoked (AS-REF-02).
    DpopKeyMismatch,
    /// Presented with other client credentials: the family was revoked (AS-CAUTH-04).
    ClientAuthMismatch,
}

/// The result of [`TokenStore::redeem_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedeemOutcome {
    /// The code was consumed and the family stored.
    Redeemed,
    /// No such code.
    NotFound,
    /// The code expired (it was removed).
    Expired,
    /// The code was used before: whatever it issued was revoked (AS-CODE-02).
    Reused,
}

/// Codes and token families.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new code.
    async fn put_code(&self, code: CodeRecord) -> Result<(), StoreError>;
    /// The code (used or not, expired or not), for validation before redemption.
    async fn get_code(&self, hash: &TokenHash) -> Result<Option<CodeRecord>, StoreError>;
    /// Atomically: marks the code used and stores `session`. If the code was already used, revokes
    /// the family it produced and answers [`RedeemOutcome::Reused`] (AS-CODE-02).
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: i64,
        session: SessionRecord,
    ) -> Result<RedeemOutcome, StoreError>;
    /// Atomically checks and rotates a refresh token (see [`Rotation`], [`RotateOutcome`]). A key
    /// that names a live family but matches neither its current token nor the one its latest
    /// rotation replaced is [`RotateOutcome::Replayed`] (the family is revoked), on every backend.
    async fn rotate_refresh(&self, old: &RefreshKey, rotation: Rotation)
    -> Result<RotateOutcome, StoreError>;
    /// The live family whose current access token has this `jti` (stateful revocation, RS-DPOP-01).
    async fn session_by_access_jti(&self, jti: &str, now: i64) -> Result<Option<SessionRecord>, StoreError>;
    /// The family owning this refresh token, current or rotated (revocation, RFC 7009); for a
    /// keyed token, the family it names.
    async fn session_by_refresh(&self, key: &RefreshKey) -> Result<Option<SessionRecord>, StoreError>;
    /// A family by id.
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// The account's live families (for a "connected apps" page, AS-AUTHZ-07).
    async fn sessions_for_account(&self, sub: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError>;
    /// Revokes a family and everything in it; `false` if it did not exist.
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError>;
    /// Atomically revokes every family of the account `sub`, only those of `client_id` and/or
    /// approved on `device_id` when given (the account page's "sign out of this app / this device /
    /// everywhere"). Returns how many families went.
    async fn revoke_account_sessions(
        &self,
        sub: &str,
        client_id: Option<&str>,
        device_id: Option<&str>,
    ) -> Result<u64, StoreError>;
    /// Deletes expired codes and families; returns how many rows went.
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError>;
}

// -------------------------------------------------------------------------------------- devices ---

/// A browser device session: the sign-in cookie of the consent UI ([`crate::ui`]). The cookie value
/// is a secret; the store keys it by its hash. Several accounts may be signed in on one device (the
/// UI then offers an account picker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSession {
    /// Hash of the device cookie.
    pub id: TokenHash,
    /// The accounts signed in on this device, oldest first.
    pub accounts: Vec<DeviceAccount>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// `User-Agent` at creation (display only).
    pub user_agent: Option<String>,
}

/// An account signed in on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAccount {
    /// The account DID.
    pub did: String,
    /// Unix seconds of the last password sign-in (for `prompt=login` and the sign-in max age).
    pub authenticated_at: i64,
    /// Whether the user asked to stay signed in on this device. An account signed in without it is
    /// kept only until the authorization request it was signed in for is decided.
    pub remember: bool,
    /// What this account granted to which client on this device (AS-AUTHZ-05): a later request of
    /// the same or a narrower scope skips the consent screen. Only kept for remembered sign-ins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<RememberedConsent>,
    /// Unix seconds when this account last used the device (a page of the UI or the account page,
    /// [`DeviceStore::touch_device`]); 0 when never recorded.
    #[serde(default)]
    pub last_seen_at: i64,
    /// The client address it was last seen from (display only, on the account page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// One remembered consent (AS-AUTHZ-05).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedConsent {
    /// The client.
    pub client_id: String,
    /// The scope granted, as stored on the code (`include:` entries unexpanded).
    pub scope: String,
    /// Unix seconds of the approval.
    pub granted_at: i64,
}

impl DeviceAccount {
    /// Whether this account already granted `client_id` at least `requested` on this device.
    pub fn consent_covers(&self, client_id: &str, requested: &str) -> bool {
        let Ok(requested) = atauth_oauth::ScopeSet::parse(requested) else { return false };
        self.consents.iter().any(|c| {
            c.client_id == client_id
                && atauth_oauth::ScopeSet::parse(&c.scope)
                    .is_ok_and(|granted| requested.is_subset_of(&granted))
        })
    }
}

/// Browser device sessions.
#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Inserts or replaces a device session.
    async fn put_device(&self, device: DeviceSession) -> Result<(), StoreError>;
    /// The unexpired device session.
    async fn get_device(&self, id: &TokenHash, now: i64) -> Result<Option<DeviceSession>, StoreError>;
    /// Atomically adds `account` to the unexpired device (replacing an entry with the same DID, which
    /// moves to the end) and extends the device's expiry to `expires_at` if that is later. `false` if
    /// the device is missing or expired.
    async fn upsert_device_account(
        &self,
        id: &TokenHash,
        account: DeviceAccount,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Atomically removes accounts from the device: the one with DID `did`, or with `None` every
    /// account signed in without `remember`. Returns how many were removed.
    async fn remove_device_accounts(&self, id: &TokenHash, did: Option<&str>) -> Result<u64, StoreError>;
    /// Deletes it; `false` if absent.
    async fn delete_device(&self, id: &TokenHash) -> Result<bool, StoreError>;
    /// The unexpired device sessions on which `did` is signed in (for the account page), in no
    /// particular order.
    async fn devices_for_account(&self, did: &str, now: i64) -> Result<Vec<DeviceSession>, StoreError>;
    /// Atomically records that the unexpired device was used at `now` from `ip` (when known): every
    /// account entry's `last_seen_at` and `ip`. A backend may skip the write when the entries were
    /// seen less than a minute before from the same address. `false` if the device is missing or
    /// expired.
    async fn touch_device(&self, id: &TokenHash, now: i64, ip: Option<&str>) -> Result<bool, StoreError>;
    /// Atomically signs `did` out of every device it is signed in on (its consents go with the
    /// entries). Returns how many devices it was removed from.
    async fn remove_account_everywhere(&self, did: &str) -> Result<u64, StoreError>;
    /// Atomically forgets, on every device, what `did` granted `client_id` (AS-AUTHZ-05), so its
    /// next request shows the consent screen. Returns how many remembered consents went.
    async fn forget_consents(&self, did: &str, client_id: &str) -> Result<u64, StoreError>;
    /// Deletes expired device sessions.
    async fn purge_expired_devices(&self, now: i64) -> Result<u64, StoreError>;
}

// --------------------------------------------------------------------------------------- replay ---

/// One-time identifiers with an expiry.
#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Atomically records `key` until `expires_at`. `true` if it was new (or its earlier record had
    /// expired by `now`), `false` if it is a replay.
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError>;
    /// Deletes expired records.
    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError>;
}

/// A pushed request and its code challenge's replay record (AS-PAR-07) written together, for a
/// backend that holds both: one write per PAR instead of two (one group-commit job on SQLite, one
/// statement on Postgres, issue 18).
#[async_trait]
pub trait RequestReplayStore: Send + Sync + 'static {
    /// Records `key` until `expires_at` as [`ReplayStore::check_and_record`] does and, only if it
    /// was new, stores `request` as [`RequestStore::put_request`] does, atomically. `Ok(false)`:
    /// `key` is a live record (a replay) and nothing was written; an `Err` leaves neither written.
    async fn put_request_once(
        &self,
        request: PendingRequest,
        key: [u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
}

// --------------------------------------------------------------------------------- client cache ---

/// Validated client-metadata documents (AS-CMD-03). Never holds errors or invalid documents.
#[async_trait]
pub trait ClientMetadataCache: Send + Sync + 'static {
    /// The cached document JSON, if unexpired.
    async fn get_client(&self, client_id: &str, now: i64) -> Result<Option<String>, StoreError>;
    /// Caches a validated document until `expires_at`.
    async fn put_client(&self, client_id: &str, json: &str, expires_at: i64) -> Result<(), StoreError>;
    /// Drops an entry.
    async fn remove_client(&self, client_id: &str) -> Result<(), StoreError>;
}

/// All stores the server uses. Backends may differ per concern (e.g. SQLite for tokens and Redis for
/// replay once that backend exists).
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// Pending PAR requests.
    pub requests: Arc<dyn RequestStore>,
    /// Codes and token families.
    pub tokens: Arc<dyn TokenStore>,
    /// Device sessions.
    pub devices: Arc<dyn DeviceStore>,
    /// One-time identifiers: client-assertion `jti`s (AS-CAUTH-02), PKCE challenges (AS-PAR-07),
    /// and DPoP `jti`s unless [`Self::dpop_replay`] is another store.
    pub replay: Arc<dyn ReplayStore>,
    /// DPoP proof `jti`s (AS-DPOP-05). [`Self::single`] makes it the same store as
    /// [`Self::replay`]; the builder's SQLite default keeps them in process memory
    /// ([`ProofReplaySet`]) and binds its DPoP nonces to the process, so that no proof outlives a
    /// restart (docs/ARCHITECTURE.md, "Replay records in memory").
    pub dpop_replay: Arc<dyn ReplayStore>,
    /// Client metadata cache.
    pub clients: Arc<dyn ClientMetadataCache>,
    /// Second factors, recovery codes and pending second-factor states (issue 16).
    pub factors: Arc<dyn FactorStore>,
    /// The backend of [`Self::requests`] and [`Self::replay`] writing both in one go, when they
    /// are one backend. Used only while it is the same object as [`Self::replay`] (see
    /// [`Self::request_replay`]), so a `Stores { replay: other, ..Stores::single(s) }` stays correct.
    pub request_replay: Option<Arc<dyn RequestReplayStore>>,
}

impl Stores {
    /// Every concern in one backend that implements all the traits.
    pub fn single<S>(store: S) -> Self
    where
        S: AccountStore
            + RequestStore
            + TokenStore
            + DeviceStore
            + ReplayStore
            + ClientMetadataCache
            + FactorStore
            + RequestReplayStore,
    {
        let s = Arc::new(store);
        Self {
            accounts: s.clone(),
            requests: s.clone(),
            tokens: s.clone(),
            devices: s.clone(),
            replay: s.clone(),
            dpop_replay: s.clone(),
            clients: s.clone(),
            factors: s.clone(),
            request_replay: Some(s),
        }
    }

    /// [`Self::request_replay`] if it is the very object behind both [`Self::requests`] and
    /// [`Self::replay`], so that its combined write is the same as the two separate ones.
    pub fn request_replay(&self) -> Option<&dyn RequestReplayStore> {
        let combined = self.request_replay.as_ref()?;
        let same = |other: *const ()| std::ptr::addr_eq(Arc::as_ptr(combined) as *const (), other);
        (same(Arc::as_ptr(&self.replay) as *const ()) && same(Arc::as_ptr(&self.requests) as *const ()))
            .then_some(combined.as_ref())
    }

    /// Sets both replay stores ([`Self::replay`] and [`Self::dpop_replay`]) to `replay`, e.g. Redis
    /// shared by several instances.
    pub fn with_replay(mut self, replay: Arc<dyn ReplayStore>) -> Self {
        self.dpop_replay = replay.clone();
        self.replay = replay;
        self
    }

    /// Everything in memory (tests, throwaway servers).
    pub fn memory() -> Self {
        Self::single(MemoryStore::default())
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The combined PAR write is used only while one object is both the request and the replay
    /// store: replacing either one switches it off.
    #[test]
    fn request_replay_only_when_one_backend_holds_both() {
        assert!(Stores::memory().request_replay().is_some(), "a single backend writes both at once");
        let other: Arc<dyn ReplayStore> = Arc::new(MemoryStore::default());
        assert!(Stores::memory().with_replay(other.clone()).request_replay().is_none(), "replay elsewhere");
        let literal = Stores { replay: other, ..Stores::memory() };
        assert!(literal.request_replay().is_none(), "struct update with another replay store");
        let requests: Arc<dyn RequestStore> = Arc::new(MemoryStore::default());
        assert!(Stores { requests, ..Stores::memory() }.request_replay().is_none(), "requests elsewhere");
    }
}
