//! The second factor of an account (issue 16): TOTP authenticator apps (RFC 6238, see
//! [`atauth_crypto::totp`]), recovery codes, and — added by passkeys on the same plumbing —
//! WebAuthn passkeys. When an account has any factor, its password alone signs in nowhere: the
//! sign-in page, the account page and the JSON consent API ask for the factor after the password
//! ([`crate::web`]'s UI flow), and legacy `createSession` wants it in `authFactorToken`
//! ([`crate::legacy`]). App passwords skip it, as in the reference PDS.
//!
//! **Pending sign-in.** A right password for an account with a factor stores a
//! [`PendingFactor`] (the [`FactorStore`](crate::store::FactorStore)) for five minutes, keyed by [`pending_key`]: the SHA-256
//! of the device session's id, the purpose and the authorization request, so it is bound to this
//! browser, this request and (its content) this account, and nothing the browser sends can name
//! another. The browser holds nothing but its device cookie. Completing it is one atomic take
//! ([`AuthServer::take_pending_sign_in`]), so one right factor signs in once. A row rather than
//! the device session's JSON: the pending state is not a signed-in account, and every reader of
//! the device's accounts would otherwise have to learn to skip it; it also expires on its own.
//!
//! **Checking a factor** ([`AuthServer::verify_second_factor`]): first one attempt from the
//! account's lockout bucket ([`crate::ratelimit::SECOND_FACTOR_LIMIT`], in the sign-in limit
//! store, so shared by instances on Redis or Postgres); a locked factor checks nothing. Then a
//! TOTP code must match a step newer than the last accepted one, recorded atomically
//! ([`FactorStore::advance_factor_counter`](crate::store::FactorStore::advance_factor_counter): a code works once, even raced), or a recovery code is
//! used up atomically ([`FactorStore::use_recovery_code`](crate::store::FactorStore::use_recovery_code)). A success refills the bucket.
//!
//! **Secrets at rest.** A TOTP secret is stored as base32 in `account_factors.data`, not
//! encrypted: the server has no key that is not stored beside the database (the DPoP nonce secret
//! and the legacy JWT secret live in the same data directory or configuration), so encryption
//! would only move the problem, and rotating those keys would silently break every enrolment. The
//! database is protected as the account table is (it also holds the repo signing keys).
//! Recovery codes are stored as SHA-256 digests of their normalised form; with 80 random bits
//! each, a digest cannot be reversed by search.

use std::net::IpAddr;

use atauth_crypto::SecretString;
use atauth_crypto::totp::TotpSecret;
use serde::{Deserialize, Serialize};

use crate::ratelimit::{LimitError, RateLimited};
use crate::server::AuthServer;
use crate::store::{FactorKind, FactorRecord, PendingFactor, StoreError, TokenHash};

/// Seconds a pending second-factor sign-in (or an unconfirmed TOTP enrolment) lives.
pub const PENDING_LIFETIME_SECS: i64 = 300;
/// Recovery codes per set.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// The most factors of one kind an account may have.
pub const MAX_FACTORS_PER_KIND: usize = 10;

/// What a pending state is for: part of its key, so a state made for one purpose cannot complete
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PendingPurpose<'a> {
    /// Signing in for the authorization request with this id (the page or the JSON API).
    Request(&'a str),
    /// Signing in on the account page.
    AccountPage,
    /// Setting up an authenticator app for this account (the unconfirmed secret).
    TotpEnrolment(&'a str),
}

/// The key of the pending state of `purpose` on the device session `device` (the hash of its
/// cookie): `SHA-256("atauth-2fa\0" ‖ device ‖ purpose ‖ "\0" ‖ request or DID)`.
pub fn pending_key(device: &TokenHash, purpose: PendingPurpose<'_>) -> TokenHash {
    let mut input = b"atauth-2fa\0".to_vec();
    input.extend_from_slice(&device.0);
    let (tag, value) = match purpose {
        PendingPurpose::Request(id) => ("request", id),
        PendingPurpose::AccountPage => ("account", ""),
        PendingPurpose::TotpEnrolment(did) => ("totp-enrol", did),
    };
    input.extend_from_slice(tag.as_bytes());
    input.push(0);
    input.extend_from_slice(value.as_bytes());
    TokenHash(atauth_crypto::hash::sha256(input))
}

/// What a pending sign-in remembers besides the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// "Remember this account on this device" as ticked with the password.
    pub remember: bool,
}

/// The `data` of a TOTP factor (and of a pending enrolment).
#[derive(Serialize, Deserialize)]
struct TotpData {
    /// Base32, unpadded.
    secret: String,
}

fn totp_data(secret: &TotpSecret) -> SecretString {
    SecretString::new(atauth_crypto::json::to_string(&TotpData { secret: secret.to_base32() }))
}

fn parse_totp(data: &SecretString) -> Result<TotpSecret, StoreError> {
    serde_json::from_str::<TotpData>(data.expose_secret())
        .ok()
        .and_then(|d| TotpSecret::from_base32(&d.secret))
        .ok_or_else(|| StoreError::Corrupt("TOTP factor data".into()))
}

/// What the user presents as the second factor.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SecondFactorProof<'a> {
    /// A 6-digit code from an authenticator app.
    Totp(&'a str),
    /// One of the account's recovery codes.
    RecoveryCode(&'a str),
}

impl<'a> SecondFactorProof<'a> {
    /// A code typed into one field (legacy `authFactorToken`): six digits (spaces allowed) are a
    /// TOTP code, anything else a recovery code.
    pub fn from_token(token: &'a str) -> Self {
        let digits = token.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Self::Totp(token)
        } else {
            Self::RecoveryCode(token)
        }
    }
}

/// Why a second factor was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecondFactorError {
    /// Ten wrong codes: the account's second factor is locked for this long; nothing was checked.
    #[error("too many wrong codes; the second factor is locked for {} s", .0.retry_after.as_secs())]
    Locked(RateLimited),
    /// The shared limit store cannot be reached: nothing was checked (fail closed).
    #[error("the sign-in limit store is unavailable")]
    LimiterUnavailable(#[source] StoreError),
    /// Wrong, replayed or used-up code (one answer for all).
    #[error("the code is wrong or was used already")]
    Invalid,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

/// Why setting up an authenticator app was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolError {
    /// No unconfirmed secret for this device and account (expired after five minutes, or never
    /// started).
    #[error("no authenticator setup in progress")]
    NotStarted,
    /// The code does not match the new secret.
    #[error("the code does not match")]
    WrongCode,
    /// The name is empty or longer than 100 characters.
    #[error("invalid name")]
    InvalidName,
    /// The account has an authenticator app with this name.
    #[error("name in use")]
    NameTaken,
    /// The account has [`MAX_FACTORS_PER_KIND`] authenticator apps.
    #[error("too many authenticator apps")]
    TooMany,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

/// A fresh set of recovery codes, to be shown once (`xxxx-xxxx-xxxx-xxxx`, base32 lowercase, 80
/// random bits each).
#[derive(Debug)]
pub struct RecoveryCodes(pub Vec<SecretString>);

/// A new recovery code.
fn new_recovery_code() -> SecretString {
    let raw = atauth_crypto::totp::base32_encode(&atauth_crypto::random::random_bytes::<10>()).to_lowercase();
    let groups: Vec<&str> = (0..4).map(|i| &raw[i * 4..i * 4 + 4]).collect();
    SecretString::new(groups.join("-"))
}

/// The digest a recovery code is stored as: SHA-256 of the code lowercased without spaces and
/// hyphens (so `ABCD EFGH…` as typed matches).
pub fn recovery_code_hash(code: &str) -> TokenHash {
    let normal: String =
        code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    TokenHash::of(&normal)
}

/// Which kinds of second factor an account has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FactorKinds {
    /// At least one authenticator app.
    pub totp: bool,
    /// At least one passkey.
    pub passkey: bool,
}

impl FactorKinds {
    /// No factor: the password alone signs in.
    pub fn is_empty(self) -> bool {
        !self.totp && !self.passkey
    }

    /// The kinds' stored names (`totp`, `passkey`), as the JSON API lists them.
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.totp {
            v.push(FactorKind::Totp.as_str());
        }
        if self.passkey {
            v.push(FactorKind::Passkey.as_str());
        }
        v
    }
}

impl AuthServer {
    /// The kinds of second factor `did` has; empty when the password alone signs in.
    pub async fn factor_kinds(&self, did: &str) -> Result<FactorKinds, StoreError> {
        let factors = self.stores().factors.factors_for_account(did).await?;
        Ok(FactorKinds {
            totp: factors.iter().any(|f| f.kind == FactorKind::Totp),
            passkey: factors.iter().any(|f| f.kind == FactorKind::Passkey),
        })
    }

    /// Remembers that `did` gave the right password on `device` for `purpose` and now owes a
    /// second factor (five minutes; a new password replaces an older pending state).
    pub async fn begin_pending_sign_in(
        &self,
        device: &TokenHash,
        purpose: PendingPurpose<'_>,
        did: &str,
        pending: PendingSignIn,
    ) -> Result<(), StoreError> {
        self.stores()
            .factors
            .put_pending_factor(PendingFactor {
                key: pending_key(device, purpose),
                did: did.to_owned(),
                data: SecretString::new(atauth_crypto::json::to_string(&pending)),
                expires_at: self.now().saturating_add(PENDING_LIFETIME_SECS),
            })
            .await
    }

    /// The unexpired pending sign-in of `device` for `purpose` (not consumed): the account and
    /// what it remembers.
    pub async fn pending_sign_in(
        &self,
        device: &TokenHash,
        purpose: PendingPurpose<'_>,
    ) -> Result<Option<(String, PendingSignIn)>, StoreError> {
        let found = self.stores().factors.pending_factor(&pending_key(device, purpose), self.now()).await?;
        found.map(decode_pending).transpose()
    }

    /// Atomically takes the pending sign-in (exactly one caller gets it).
    pub async fn take_pending_sign_in(
        &self,
        device: &TokenHash,
        purpose: PendingPurpose<'_>,
    ) -> Result<Option<(String, PendingSignIn)>, StoreError> {
        let found =
            self.stores().factors.take_pending_factor(&pending_key(device, purpose), self.now()).await?;
        found.map(decode_pending).transpose()
    }

    /// Takes one attempt from `did`'s second-factor lockout bucket: call before checking any
    /// factor (passkeys too). [`SecondFactorError::Locked`] when locked.
    pub async fn second_factor_attempt(&self, did: &str) -> Result<(), SecondFactorError> {
        self.inner.passwords.limiter.check_second_factor(did, self.inner.clock.now()).await.map_err(|e| {
            match e {
                LimitError::Limited(r) => SecondFactorError::Locked(r),
                LimitError::Unavailable(e) => SecondFactorError::LimiterUnavailable(e),
            }
        })
    }

    /// A factor of `did` was right: its lockout bucket is full again.
    pub async fn second_factor_succeeded(&self, did: &str) {
        self.inner.passwords.limiter.second_factor_succeeded(did, self.inner.clock.now()).await;
    }

    /// Checks a TOTP or recovery code of `did`, through the lockout: see the module docs. `Ok`
    /// means the factor is satisfied (the TOTP step or the recovery code is spent).
    pub async fn verify_second_factor(
        &self,
        did: &str,
        proof: SecondFactorProof<'_>,
    ) -> Result<(), SecondFactorError> {
        self.second_factor_attempt(did).await?;
        let ok = match proof {
            SecondFactorProof::Totp(code) => self.check_totp(did, code).await?,
            SecondFactorProof::RecoveryCode(code) => {
                let hash = recovery_code_hash(code);
                self.stores().factors.use_recovery_code(did, &hash, self.now()).await?
            }
        };
        if !ok {
            tracing::info!(did, "wrong second factor");
            return Err(SecondFactorError::Invalid);
        }
        self.second_factor_succeeded(did).await;
        Ok(())
    }

    /// Whether `code` matches one of `did`'s authenticator apps at a step after its last accepted
    /// one; the step is recorded atomically (a code works once, RFC 6238 §5.2).
    async fn check_totp(&self, did: &str, code: &str) -> Result<bool, StoreError> {
        let now = self.now();
        let unix = u64::try_from(now).unwrap_or(0);
        for f in self.stores().factors.factors_for_account(did).await? {
            if f.kind != FactorKind::Totp {
                continue;
            }
            let secret = parse_totp(&f.data)?;
            let last = u64::try_from(f.counter).unwrap_or(0);
            if let Some(step) = secret.verify(code, unix, last) {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if self.stores().factors.advance_factor_counter(did, &f.id, step, now).await? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Starts setting up an authenticator app for `did` on `device`: a new secret, kept in the
    /// pending state (five minutes) until a code confirms it. Returns the secret to show.
    pub async fn begin_totp_enrolment(
        &self,
        device: &TokenHash,
        did: &str,
    ) -> Result<TotpSecret, StoreError> {
        let secret = TotpSecret::generate();
        self.stores()
            .factors
            .put_pending_factor(PendingFactor {
                key: pending_key(device, PendingPurpose::TotpEnrolment(did)),
                did: did.to_owned(),
                data: totp_data(&secret),
                expires_at: self.now().saturating_add(PENDING_LIFETIME_SECS),
            })
            .await?;
        Ok(secret)
    }

    /// The unconfirmed secret of `did`'s setup on `device`, if it has not expired.
    pub async fn pending_totp_enrolment(
        &self,
        device: &TokenHash,
        did: &str,
    ) -> Result<Option<TotpSecret>, StoreError> {
        let key = pending_key(device, PendingPurpose::TotpEnrolment(did));
        match self.stores().factors.pending_factor(&key, self.now()).await? {
            Some(p) if p.did == did => Ok(Some(parse_totp(&p.data)?)),
            _ => Ok(None),
        }
    }

    /// Confirms the setup with a current `code`: stores the factor named `name` (its current step
    /// recorded, so the confirming code cannot sign in again) and, when it is the account's first
    /// factor, a new set of recovery codes, returned to be shown once.
    pub async fn confirm_totp_enrolment(
        &self,
        device: &TokenHash,
        did: &str,
        name: &str,
        code: &str,
    ) -> Result<Option<RecoveryCodes>, EnrolError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(EnrolError::InvalidName);
        }
        let secret = self.pending_totp_enrolment(device, did).await?.ok_or(EnrolError::NotStarted)?;
        let now = self.now();
        let step = secret.verify(code, u64::try_from(now).unwrap_or(0), 0).ok_or(EnrolError::WrongCode)?;
        let existing = self.stores().factors.factors_for_account(did).await?;
        if existing.iter().filter(|f| f.kind == FactorKind::Totp).count() >= MAX_FACTORS_PER_KIND {
            return Err(EnrolError::TooMany);
        }
        let key = pending_key(device, PendingPurpose::TotpEnrolment(did));
        if self.stores().factors.take_pending_factor(&key, now).await?.is_none() {
            // Confirmed by a concurrent request.
            return Err(EnrolError::NotStarted);
        }
        let record = FactorRecord {
            did: did.to_owned(),
            id: atauth_crypto::random::random_token::<12>(),
            kind: FactorKind::Totp,
            name: name.to_owned(),
            credential_id: None,
            data: totp_data(&secret),
            counter: i64::try_from(step).unwrap_or(i64::MAX),
            created_at: now,
            last_used_at: Some(now),
        };
        match self.stores().factors.add_factor(record).await {
            Ok(()) => {}
            Err(StoreError::Conflict("factor name")) => return Err(EnrolError::NameTaken),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(did, "authenticator app added");
        Ok(self.recovery_codes_for_new_factor(did, existing.is_empty()).await?)
    }

    /// After a factor was added: a first factor gets a new set of recovery codes (returned to be
    /// shown once); later factors keep the set. For passkeys too.
    pub async fn recovery_codes_for_new_factor(
        &self,
        did: &str,
        first: bool,
    ) -> Result<Option<RecoveryCodes>, StoreError> {
        if !first {
            return Ok(None);
        }
        self.regenerate_recovery_codes(did).await.map(Some)
    }

    /// Replaces `did`'s recovery codes with [`RECOVERY_CODE_COUNT`] new ones (the old ones stop
    /// working at once) and returns them, to be shown once.
    pub async fn regenerate_recovery_codes(&self, did: &str) -> Result<RecoveryCodes, StoreError> {
        let codes: Vec<SecretString> = (0..RECOVERY_CODE_COUNT).map(|_| new_recovery_code()).collect();
        let hashes: Vec<TokenHash> = codes.iter().map(|c| recovery_code_hash(c.expose_secret())).collect();
        self.stores().factors.replace_recovery_codes(did, &hashes).await?;
        tracing::info!(did, "recovery codes generated");
        Ok(RecoveryCodes(codes))
    }

    /// Removes `did`'s factor `id`; with it the last factor, the recovery codes go too (the password
    /// alone signs in again). `false` if the account has no such factor.
    pub async fn remove_second_factor(&self, did: &str, id: &str) -> Result<bool, StoreError> {
        let factors = &self.stores().factors;
        if !factors.remove_factor(did, id).await? {
            return Ok(false);
        }
        if factors.factors_for_account(did).await?.is_empty() {
            factors.replace_recovery_codes(did, &[]).await?;
        }
        tracing::info!(did, "second factor removed");
        Ok(true)
    }

    /// Whether `password` is `did`'s account password, through the sign-in rate limits (for
    /// confirming a sensitive change such as removing a factor).
    pub async fn confirm_password(
        &self,
        did: &str,
        password: &SecretString,
        ip: Option<IpAddr>,
    ) -> Result<bool, crate::account::SignInError> {
        match self.sign_in_limited(did, password, ip).await {
            Ok(account) => Ok(account.did == did),
            Err(crate::account::SignInError::InvalidCredentials) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn decode_pending(p: PendingFactor) -> Result<(String, PendingSignIn), StoreError> {
    let pending = serde_json::from_str(p.data.expose_secret())
        .map_err(|e| StoreError::Corrupt(format!("pending sign-in: {e}")))?;
    Ok((p.did, pending))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_80_bits_and_normalised() {
        let c = new_recovery_code();
        let s = c.expose_secret();
        assert_eq!(s.len(), 19);
        assert_eq!(s.split('-').count(), 4);
        assert_eq!(recovery_code_hash(s), recovery_code_hash(&s.to_uppercase().replace('-', " ")));
        assert_ne!(recovery_code_hash(s), recovery_code_hash(new_recovery_code().expose_secret()));
    }

    #[test]
    fn pending_keys_bind_device_purpose_and_request() {
        let (d1, d2) = (TokenHash::of("device-1"), TokenHash::of("device-2"));
        let k = pending_key(&d1, PendingPurpose::Request("req-1"));
        assert_eq!(k, pending_key(&d1, PendingPurpose::Request("req-1")));
        assert_ne!(k, pending_key(&d2, PendingPurpose::Request("req-1")));
        assert_ne!(k, pending_key(&d1, PendingPurpose::Request("req-2")));
        assert_ne!(k, pending_key(&d1, PendingPurpose::AccountPage));
        assert_ne!(
            pending_key(&d1, PendingPurpose::TotpEnrolment("did:a")),
            pending_key(&d1, PendingPurpose::TotpEnrolment("did:b"))
        );
    }

    #[test]
    fn legacy_tokens_are_told_apart() {
        assert!(matches!(SecondFactorProof::from_token("123 456"), SecondFactorProof::Totp(_)));
        assert!(matches!(
            SecondFactorProof::from_token("abcd-efgh-ijkl-mnop"),
            SecondFactorProof::RecoveryCode(_)
        ));
        assert!(matches!(SecondFactorProof::from_token("1234567"), SecondFactorProof::RecoveryCode(_)));
    }
}
