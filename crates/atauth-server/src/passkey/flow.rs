//! The passkey ceremonies on the server's stores: [`AuthServer`] methods that keep a ceremony's
//! [`Challenge`] in the [`FactorStore`](crate::store::FactorStore)'s pending table, store a new
//! passkey as a factor, and check an assertion against the pending second-factor sign-in
//! ([`crate::second_factor`]). The HTTP side (the pages, the JSON API) calls these and only words
//! the outcome.

use atauth_crypto::SecretString;

use super::{
    AssertionResponse, Challenge, KnownPasskey, PasskeyError, RegistrationResponse, RelyingParty,
    StoredPasskey, authentication_options, registration_options, verify_assertion, verify_registration,
};
use crate::second_factor::{
    MAX_FACTORS_PER_KIND, PendingPurpose, RecoveryCodes, SecondFactorError, pending_key,
};
use crate::server::AuthServer;
use crate::store::{FactorKind, FactorRecord, PendingFactor, StoreError, TokenHash};

/// Why a passkey ceremony did not complete. Nothing was stored or signed in on any of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyFlowError {
    /// This server's issuer has no RP ID (an IP address): it offers no passkeys.
    #[error("passkeys are not available on this server: {0}")]
    Unavailable(#[source] PasskeyError),
    /// No ceremony in progress for this device (expired after five minutes, answered already, or
    /// never started), or no pending sign-in to complete.
    #[error("no passkey ceremony in progress")]
    Expired,
    /// The passkey is not registered here (removed, or never added).
    #[error("this passkey is not registered")]
    UnknownCredential,
    /// The passkey belongs to another account than the one signing in.
    #[error("this passkey belongs to another account")]
    OtherAccount,
    /// The signature counter did not advance: the passkey may have been copied.
    #[error("the passkey's signature counter did not advance")]
    Cloned,
    /// The browser's answer failed a check of the ceremony.
    #[error("the passkey could not be verified: {0}")]
    Invalid(#[source] PasskeyError),
    /// The name is empty or longer than 100 characters.
    #[error("invalid passkey name")]
    InvalidName,
    /// The account has a passkey with this name.
    #[error("passkey name in use")]
    NameTaken,
    /// This passkey is registered already (to this or another account).
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// The account has [`MAX_FACTORS_PER_KIND`] passkeys.
    #[error("too many passkeys")]
    TooMany,
    /// The second-factor lockout ([`AuthServer::second_factor_attempt`]).
    #[error(transparent)]
    Limit(SecondFactorError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl From<PasskeyError> for PasskeyFlowError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::Expired => Self::Expired,
            PasskeyError::OtherAccount => Self::OtherAccount,
            PasskeyError::CounterNotAdvanced { .. } => Self::Cloned,
            PasskeyError::InvalidRpId(_) => Self::Unavailable(e),
            other => Self::Invalid(other),
        }
    }
}

/// Where a ceremony's challenge is kept: `SHA-256("atauth-passkey\0" ‖ device ‖ ceremony ‖ "\0" ‖
/// scope)`, the scope being the account for a registration and the pending sign-in's key (device,
/// purpose, request) for a sign-in, so a challenge answers only the ceremony it was made for.
fn challenge_key(device: &TokenHash, ceremony: &str, scope: &[u8]) -> TokenHash {
    let input = [b"atauth-passkey\0".as_slice(), &device.0, ceremony.as_bytes(), b"\0", scope].concat();
    TokenHash(atauth_crypto::hash::sha256(input))
}

fn registration_key(device: &TokenHash, did: &str) -> TokenHash {
    challenge_key(device, "register", did.as_bytes())
}

fn sign_in_key(device: &TokenHash, purpose: PendingPurpose<'_>) -> TokenHash {
    challenge_key(device, "sign-in", &pending_key(device, purpose).0)
}

fn stored_of(record: &FactorRecord) -> Result<StoredPasskey, StoreError> {
    serde_json::from_str(record.data.expose_secret())
        .map_err(|e| StoreError::Corrupt(format!("passkey data: {e}")))
}

fn challenge_of(pending: &PendingFactor) -> Result<Challenge, StoreError> {
    serde_json::from_str(pending.data.expose_secret())
        .map_err(|e| StoreError::Corrupt(format!("passkey challenge: {e}")))
}

/// Longest passkey name, in characters.
const MAX_NAME_CHARS: usize = 100;

impl AuthServer {
    /// The WebAuthn relying party of this server (RP ID = the issuer's host); an error when the
    /// issuer is an IP address, which browsers refuse as an RP ID.
    pub fn relying_party(&self) -> Result<RelyingParty, PasskeyError> {
        RelyingParty::for_issuer(self.issuer(), &self.config().branding.name)
    }

    /// Whether this server offers passkeys ([`Self::relying_party`]).
    pub fn passkeys_available(&self) -> bool {
        self.relying_party().is_ok()
    }

    /// The passkeys of `did`, oldest first.
    pub async fn passkeys_of(&self, did: &str) -> Result<Vec<FactorRecord>, StoreError> {
        let mut all = self.stores().factors.factors_for_account(did).await?;
        all.retain(|f| f.kind == FactorKind::Passkey);
        Ok(all)
    }

    async fn keep_challenge(&self, key: TokenHash, challenge: &Challenge) -> Result<(), StoreError> {
        self.stores()
            .factors
            .put_pending_factor(PendingFactor {
                key,
                did: challenge.did.clone(),
                data: SecretString::new(atauth_crypto::json::to_string(challenge)),
                expires_at: challenge.expires_at,
            })
            .await
    }

    /// Starts adding a passkey to `did` (shown to the authenticator as `handle`) from the browser
    /// of `device`: the creation options for `navigator.credentials.create()`, the challenge kept
    /// for five minutes (a new start replaces it).
    pub async fn begin_passkey_registration(
        &self,
        device: &TokenHash,
        did: &str,
        handle: &str,
    ) -> Result<serde_json::Value, PasskeyFlowError> {
        let rp = self.relying_party().map_err(PasskeyFlowError::Unavailable)?;
        let existing = self.passkeys_of(did).await?;
        if existing.len() >= MAX_FACTORS_PER_KIND {
            return Err(PasskeyFlowError::TooMany);
        }
        let ids = existing.into_iter().filter_map(|f| f.credential_id).collect();
        let (options, challenge) = registration_options(&rp, did, handle, ids, self.now());
        self.keep_challenge(registration_key(device, did), &challenge).await?;
        Ok(options)
    }

    /// Finishes adding a passkey: takes the challenge of `device` for `did` (once), verifies the
    /// browser's `response` (the JSON of the `PublicKeyCredential`), and stores the passkey named
    /// `name`. When it is the account's first second factor, a new set of recovery codes is
    /// returned, to be shown once.
    pub async fn finish_passkey_registration(
        &self,
        device: &TokenHash,
        did: &str,
        name: &str,
        response: &str,
    ) -> Result<Option<RecoveryCodes>, PasskeyFlowError> {
        let rp = self.relying_party().map_err(PasskeyFlowError::Unavailable)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(PasskeyFlowError::InvalidName);
        }
        let now = self.now();
        let taken = self.stores().factors.take_pending_factor(&registration_key(device, did), now).await?;
        let challenge = match taken {
            Some(p) if p.did == did => challenge_of(&p)?,
            _ => return Err(PasskeyFlowError::Expired),
        };
        let response: RegistrationResponse = serde_json::from_str(response).map_err(|_| {
            PasskeyFlowError::Invalid(PasskeyError::Malformed("the credential JSON does not parse"))
        })?;
        let passkey = verify_registration(&rp, &challenge, &response, now)?;
        let existing = self.stores().factors.factors_for_account(did).await?;
        if existing.iter().filter(|f| f.kind == FactorKind::Passkey).count() >= MAX_FACTORS_PER_KIND {
            return Err(PasskeyFlowError::TooMany);
        }
        let record = FactorRecord {
            did: did.to_owned(),
            id: atauth_crypto::random::random_token::<12>(),
            kind: FactorKind::Passkey,
            name: name.to_owned(),
            credential_id: Some(passkey.credential_id.clone()),
            data: SecretString::new(atauth_crypto::json::to_string(&passkey.stored)),
            counter: i64::from(passkey.sign_count),
            created_at: now,
            last_used_at: None,
        };
        match self.stores().factors.add_factor(record).await {
            Ok(()) => {}
            Err(StoreError::Conflict("factor name")) => return Err(PasskeyFlowError::NameTaken),
            Err(StoreError::Conflict("credential id")) => return Err(PasskeyFlowError::AlreadyRegistered),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(did, alg = passkey.stored.alg, "passkey added");
        Ok(self.recovery_codes_for_new_factor(did, existing.is_empty()).await?)
    }

    /// Starts a passkey sign-in for the pending second-factor sign-in of `device` for `purpose`:
    /// the request options for `navigator.credentials.get()` offering the pending account's
    /// passkeys, the challenge kept for five minutes. [`PasskeyFlowError::Expired`] when nothing
    /// is pending, [`PasskeyFlowError::UnknownCredential`] when the account has no passkey.
    pub async fn begin_passkey_sign_in(
        &self,
        device: &TokenHash,
        purpose: PendingPurpose<'_>,
    ) -> Result<serde_json::Value, PasskeyFlowError> {
        let rp = self.relying_party().map_err(PasskeyFlowError::Unavailable)?;
        let (did, _) = self.pending_sign_in(device, purpose).await?.ok_or(PasskeyFlowError::Expired)?;
        let mut offered = Vec::new();
        for f in self.passkeys_of(&did).await? {
            if let Some(id) = f.credential_id.clone() {
                offered.push((id, stored_of(&f)?.transports));
            }
        }
        if offered.is_empty() {
            return Err(PasskeyFlowError::UnknownCredential);
        }
        let (options, challenge) = authentication_options(&rp, &did, &offered, self.now());
        self.keep_challenge(sign_in_key(device, purpose), &challenge).await?;
        Ok(options)
    }

    /// Checks a passkey assertion (`response`, the JSON of the `PublicKeyCredential`) for the
    /// pending sign-in of `device` for `purpose`, and answers its account: the caller then
    /// completes the sign-in (`complete_second_factor`). In order: a challenge is in progress; the
    /// passkey is registered, and to the pending account, else [`PasskeyFlowError::OtherAccount`]
    /// with nothing consumed (the challenge and the pending sign-in stay, no lockout attempt is
    /// taken); one attempt of the second-factor lockout; the challenge is taken (once); every
    /// check of the ceremony; the new signature count is stored atomically (a count that did not
    /// advance is refused as a possible copy).
    pub async fn verify_passkey_sign_in(
        &self,
        device: &TokenHash,
        purpose: PendingPurpose<'_>,
        response: &str,
    ) -> Result<String, PasskeyFlowError> {
        let rp = self.relying_party().map_err(PasskeyFlowError::Unavailable)?;
        let now = self.now();
        let (did, _) = self.pending_sign_in(device, purpose).await?.ok_or(PasskeyFlowError::Expired)?;
        let key = sign_in_key(device, purpose);
        let factors = &self.stores().factors;
        match factors.pending_factor(&key, now).await? {
            Some(p) if p.did == did => {}
            _ => return Err(PasskeyFlowError::Expired),
        }
        let response: AssertionResponse = serde_json::from_str(response).map_err(|_| {
            PasskeyFlowError::Invalid(PasskeyError::Malformed("the credential JSON does not parse"))
        })?;
        let credential_id = response.credential_id()?;
        let record = factors
            .factor_by_credential_id(&credential_id)
            .await?
            .filter(|f| f.kind == FactorKind::Passkey)
            .ok_or(PasskeyFlowError::UnknownCredential)?;
        if record.did != did {
            tracing::warn!(did, "passkey sign-in with another account's passkey refused");
            return Err(PasskeyFlowError::OtherAccount);
        }
        self.second_factor_attempt(&did).await.map_err(PasskeyFlowError::Limit)?;
        let challenge = match factors.take_pending_factor(&key, now).await? {
            Some(p) if p.did == did => challenge_of(&p)?,
            _ => return Err(PasskeyFlowError::Expired),
        };
        let stored = stored_of(&record)?;
        let known = KnownPasskey {
            did: &record.did,
            credential_id: &credential_id,
            stored: &stored,
            counter: record.counter,
        };
        let assertion = verify_assertion(&rp, &challenge, &response, known, now)?;
        if !factors.advance_factor_counter(&did, &record.id, i64::from(assertion.sign_count), now).await? {
            // A concurrent sign-in with a copy of this credential won the race (or it was removed).
            tracing::warn!(did, "passkey counter did not advance: possibly a cloned authenticator");
            return Err(PasskeyFlowError::Cloned);
        }
        self.second_factor_succeeded(&did).await;
        tracing::info!(did, user_verified = assertion.user_verified, "passkey accepted");
        Ok(did)
    }
}
