//! [`FactorStore`]: an account's second factors (TOTP authenticator apps, passkeys), its recovery
//! codes, and the short-lived pending state of a sign-in or enrolment that waits for a second
//! factor (issue 16). Implemented by [`MemoryStore`](super::MemoryStore),
//! [`SqliteStore`](super::SqliteStore) and `PostgresStore` (feature `postgres`); all pass
//! `conformance::factor_store_suite` (feature `testing`).
//!
//! Tables (SQLite schema 4, Postgres migration 5):
//!
//! | table | holds |
//! |---|---|
//! | `account_factors` | `did`, `id` (random, URL-safe), `kind` (`totp` / `passkey`), `name` (unique per account and kind), `credential_id` (passkeys: base64url, unique across all accounts; `NULL` for TOTP), `data` (JSON owned by the kind: the TOTP secret, the serialised passkey), `counter` (TOTP: last accepted time step; passkey: sign count), `created_at`, `last_used_at`; key (`did`, `id`) |
//! | `recovery_codes` | `did`, `code_hash` (SHA-256 of the normalised code), `used_at`; key (`did`, `code_hash`) |
//! | `pending_factors` | `key` (SHA-256 naming the device, purpose and request), `did`, `data` (JSON), `expires_at` |
//!
//! **Atomicity.** [`FactorStore::advance_factor_counter`] is one conditional update (TOTP replay
//! protection, passkey clone detection: of two callers presenting the same step exactly one wins);
//! [`FactorStore::use_recovery_code`] is one conditional update (a code works exactly once, even
//! under a race); [`FactorStore::take_pending_factor`] is one delete-returning (a pending sign-in
//! completes once).

use async_trait::async_trait;
use atauth_crypto::SecretString;

use super::{StoreError, TokenHash};

/// The kind of a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FactorKind {
    /// A TOTP authenticator app (RFC 6238).
    Totp,
    /// A WebAuthn passkey.
    Passkey,
}

impl FactorKind {
    /// The stored spelling (`totp`, `passkey`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Self::Totp),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }
}

/// One second factor of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorRecord {
    /// The account.
    pub did: String,
    /// Random, URL-safe; unique per account (key with `did`).
    pub id: String,
    /// TOTP or passkey.
    pub kind: FactorKind,
    /// The user's label, unique per account and kind.
    pub name: String,
    /// A passkey's credential id (base64url), unique across all accounts; `None` for TOTP.
    pub credential_id: Option<String>,
    /// JSON owned by the kind (the TOTP secret; the serialised passkey). Secret: `Debug` redacts it.
    pub data: SecretString,
    /// TOTP: the last accepted time step (0 before the first use); passkey: its sign count.
    pub counter: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful use ([`FactorStore::advance_factor_counter`]).
    pub last_used_at: Option<i64>,
}

/// The pending state of a sign-in (or an enrolment) that waits for a second factor: the password
/// was right, the factor is not checked yet. Keyed by a hash the caller derives from the device,
/// the purpose and the request, so it is bound to all three; it expires after a few minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFactor {
    /// SHA-256 naming the device, the purpose and the request (chosen by the caller).
    pub key: TokenHash,
    /// The account whose password was right (or who enrols).
    pub did: String,
    /// JSON owned by the caller (e.g. `remember`, or an unconfirmed TOTP secret).
    pub data: SecretString,
    /// Unix seconds; gone afterwards.
    pub expires_at: i64,
}

/// Second factors, recovery codes and pending second-factor states.
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// Adds a factor. [`StoreError::Conflict`] with `"factor name"` when the account has a factor of
    /// this kind so named, `"credential id"` when any account has this `credential_id`, `"factor id"`
    /// when the account has a factor with this id; nothing is stored then.
    async fn add_factor(&self, factor: FactorRecord) -> Result<(), StoreError>;
    /// The account's factors, oldest first (ties by id).
    async fn factors_for_account(&self, did: &str) -> Result<Vec<FactorRecord>, StoreError>;
    /// The factor with this credential id, of whichever account.
    async fn factor_by_credential_id(&self, credential_id: &str) -> Result<Option<FactorRecord>, StoreError>;
    /// Removes the account's factor `id`; `false` if the account has none so named (another
    /// account's id removes nothing).
    async fn remove_factor(&self, did: &str, id: &str) -> Result<bool, StoreError>;
    /// Atomically: if the factor exists and `new > counter` (or `new == 0 && counter == 0`, for
    /// authenticators that do not count), sets `counter = new` and `last_used_at = now` and answers
    /// `true`; otherwise changes nothing and answers `false`. TOTP replay protection and passkey
    /// clone detection; of two callers racing with the same `new`, exactly one gets `true`.
    async fn advance_factor_counter(
        &self,
        did: &str,
        id: &str,
        new: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces the factor's `data` (a passkey's updated credential); `false` if absent.
    async fn set_factor_data(&self, did: &str, id: &str, data: &SecretString) -> Result<bool, StoreError>;
    /// Atomically replaces every recovery code of the account (used or not) with `hashes`, unused.
    /// An empty slice removes them all.
    async fn replace_recovery_codes(&self, did: &str, hashes: &[TokenHash]) -> Result<(), StoreError>;
    /// Atomically marks the account's unused code `hash` used at `now`: `true` exactly once per
    /// code, even for callers racing; `false` for an unknown, used or other account's code.
    async fn use_recovery_code(&self, did: &str, hash: &TokenHash, now: i64) -> Result<bool, StoreError>;
    /// How many of the account's recovery codes are unused.
    async fn unused_recovery_codes(&self, did: &str) -> Result<u64, StoreError>;
    /// Stores a pending state, replacing one with the same key.
    async fn put_pending_factor(&self, pending: PendingFactor) -> Result<(), StoreError>;
    /// The unexpired pending state with this key (not consumed: a wrong code may be retried).
    async fn pending_factor(&self, key: &TokenHash, now: i64) -> Result<Option<PendingFactor>, StoreError>;
    /// Atomically removes and returns the unexpired pending state: of two callers exactly one gets it.
    async fn take_pending_factor(
        &self,
        key: &TokenHash,
        now: i64,
    ) -> Result<Option<PendingFactor>, StoreError>;
    /// Deletes pending states expired at `now`; how many.
    async fn purge_expired_pending_factors(&self, now: i64) -> Result<u64, StoreError>;
}
