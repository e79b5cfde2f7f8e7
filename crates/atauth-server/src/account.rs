//! Accounts: creation with `did:plc` registration (by the operator here, by the person through
//! [`crate::signup`]), password sign-in, and handle resolution for the handles this server hosts
//! (`com.atproto.identity.resolveHandle`).
//!
//! Passwords use the reference PDS's scrypt format ([`crate::password`]), hashed on a bounded blocking
//! pool. Sign-in answers the same error, after the same work, whether the account exists or the
//! password is wrong (no account enumeration through timing or messages).

use atauth_crypto::{Algorithm, PrivateKey, SecretString};
use atauth_identity::Handle;
use http::StatusCode;

use crate::error::XrpcError;
use crate::password::{NEW_PASSWORD_MAX_LEN, PASSWORD_MAX_LEN, PasswordError};
use crate::plc::{GenesisParams, PlcError, genesis_op};
use crate::ratelimit::LimitError;
use crate::server::AuthServer;
use crate::signup::SignUpChecks;
use crate::store::{AccountRecord, AccountStatus, InviteRedeemOutcome, StoreError};

/// A new account's details.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The handle (lowercased; must be under one of the server's handle domains).
    pub handle: String,
    /// Email, if any (lowercased).
    pub email: Option<String>,
    /// The password.
    pub password: SecretString,
}

/// Why an account could not be created. One variant per check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateAccountError {
    /// Handle syntax (ID-HANDLE-01).
    #[error("invalid handle: {0}")]
    InvalidHandle(#[source] atauth_identity::HandleSyntaxError),
    /// Not under a configured handle domain.
    #[error("handle must end with one of the server's domains")]
    UnsupportedDomain,
    /// The name part is not 3–18 characters without dots (reference rule).
    #[error("handle name must be 3 to 18 characters without dots")]
    HandleNameLength,
    /// Email is not an address.
    #[error("invalid email address")]
    InvalidEmail,
    /// Password empty or longer than 256 characters.
    #[error("password must be 1 to 256 characters")]
    InvalidPassword,
    /// Sign-up: no email address given.
    #[error("an email address is required")]
    EmailRequired,
    /// Sign-up: the password breaks a rule ([`crate::signup::check_password`]).
    #[error("{0}")]
    WeakPassword(#[from] crate::signup::WeakPassword),
    /// Sign-up: this server requires an invite code and none was given.
    #[error("an invite code is required")]
    InviteCodeRequired,
    /// Sign-up: no such invite code.
    #[error("unknown invite code")]
    InviteCodeUnknown,
    /// Sign-up: every use of the invite code is spent.
    #[error("this invite code has already been used")]
    InviteCodeUsed,
    /// Sign-up: the operator disabled the invite code.
    #[error("this invite code has been disabled")]
    InviteCodeDisabled,
    /// Sign-up: too many attempts from this address ([`crate::signup`]).
    #[error("too many sign-up attempts; try again in {} seconds", .0.retry_after.as_secs())]
    RateLimited(crate::ratelimit::RateLimited),
    /// Sign-up: the shared limit store cannot be reached (fail closed).
    #[error("sign-up is temporarily unavailable")]
    LimiterUnavailable(#[source] StoreError),
    /// Handle taken.
    #[error("handle already taken")]
    HandleTaken,
    /// Email taken.
    #[error("email already in use")]
    EmailTaken,
    /// Registering the DID failed.
    #[error("could not register the DID: {0}")]
    Plc(#[source] PlcError),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Password(#[source] PasswordError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl CreateAccountError {
    /// The XRPC error (the one place for this enum; names from the reference
    /// `com.atproto.server.createAccount`).
    pub fn xrpc_error(&self) -> XrpcError {
        let bad = |name| XrpcError::new(StatusCode::BAD_REQUEST, name, self.to_string());
        match self {
            Self::InvalidHandle(_) | Self::HandleNameLength => bad("InvalidHandle"),
            Self::UnsupportedDomain => bad("UnsupportedDomain"),
            Self::InvalidEmail => bad("InvalidEmail"),
            Self::InvalidPassword | Self::WeakPassword(_) => bad("InvalidPassword"),
            Self::EmailRequired => bad("InvalidEmail"),
            Self::InviteCodeRequired
            | Self::InviteCodeUnknown
            | Self::InviteCodeUsed
            | Self::InviteCodeDisabled => bad("InvalidInviteCode"),
            Self::RateLimited(_) => {
                XrpcError::new(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", self.to_string())
            }
            Self::LimiterUnavailable(_) => {
                XrpcError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", self.to_string())
            }
            Self::HandleTaken => bad("HandleNotAvailable"),
            Self::EmailTaken => bad("InvalidRequest"),
            Self::Plc(e) => XrpcError::internal("plc registration", e),
            Self::Password(e) => XrpcError::internal("password hashing", e),
            Self::Store(e) => XrpcError::internal("account store", e),
        }
    }
}

/// Why sign-in failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// Unknown identifier or wrong password (deliberately one variant).
    #[error("Invalid identifier or password")]
    InvalidCredentials,
    /// The account is taken down (LEG-02).
    #[error("Account has been taken down")]
    AccountTakedown,
    /// Too many attempts for this identifier or from this address ([`crate::ratelimit`]).
    #[error("Too many sign-in attempts; try again in {} seconds", .0.retry_after.as_secs())]
    RateLimited(crate::ratelimit::RateLimited),
    /// The shared sign-in limit store (Redis or Postgres) cannot be reached: the attempt is
    /// refused without checking the password (fail closed, [`crate::ratelimit`]).
    #[error("Sign-in is temporarily unavailable; try again shortly")]
    LimiterUnavailable(#[source] StoreError),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Password(#[source] PasswordError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl SignInError {
    /// The XRPC error (the one place for this enum).
    pub fn xrpc_error(&self) -> XrpcError {
        match self {
            Self::InvalidCredentials => {
                XrpcError::new(StatusCode::UNAUTHORIZED, "AuthenticationRequired", self.to_string())
            }
            Self::AccountTakedown => {
                XrpcError::new(StatusCode::UNAUTHORIZED, "AccountTakedown", self.to_string())
            }
            Self::RateLimited(_) => {
                XrpcError::new(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", self.to_string())
            }
            Self::LimiterUnavailable(_) => {
                XrpcError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", self.to_string())
            }
            Self::Password(e) => XrpcError::internal("password hashing", e),
            Self::Store(e) => XrpcError::internal("account store", e),
        }
    }
}

/// A fixed hash verified when the account does not exist, so both paths cost one scrypt.
const DUMMY_HASH: &str = "00000000000000000000000000000000:c7ce0eba642ae51d4d854f49836057c17db966dd1c6021e0c5842d555a1d9fc4b18e8f721b020e125eb35c523dd7870bf6117f20a936f261803df2b37e9a9f34";

impl AuthServer {
    /// Whether `handle` (lowercase) is under one of this server's handle domains.
    pub fn hosts_handle(&self, handle: &str) -> bool {
        self.config().handle_domains.iter().any(|d| handle.ends_with(d.as_str()) && handle.len() > d.len())
    }

    /// Creates an account: validates, registers a `did:plc` (genesis operation signed with the
    /// server's rotation key, the account's new secp256k1 repo key as `atproto` verification method,
    /// this server as PDS) and stores it. Nothing is stored if any step fails. This is the
    /// operator's path (`atauth account create`): no invite code, no password rules; people signing
    /// themselves up go through [`Self::sign_up`].
    pub async fn create_account(&self, new: NewAccount) -> Result<AccountRecord, CreateAccountError> {
        self.create_account_checked(new, SignUpChecks::default()).await
    }

    /// [`Self::create_account`] with the sign-up checks of `checks`, every one before the DID is
    /// registered ([`crate::signup`] has the order and the races).
    pub(crate) async fn create_account_checked(
        &self,
        new: NewAccount,
        checks: SignUpChecks<'_>,
    ) -> Result<AccountRecord, CreateAccountError> {
        use CreateAccountError as E;
        let handle = Handle::new(new.handle.trim()).map_err(E::InvalidHandle)?.into_string();
        let domain = self
            .config()
            .handle_domains
            .iter()
            .find(|d| handle.ends_with(d.as_str()) && handle.len() > d.len())
            .ok_or(E::UnsupportedDomain)?;
        let name = &handle[..handle.len() - domain.len()];
        if name.contains('.') || !(3..=18).contains(&name.len()) {
            return Err(E::HandleNameLength);
        }
        let email = match new.email.as_deref().map(str::trim) {
            Some(e) if !e.is_empty() => {
                let e = e.to_ascii_lowercase();
                match e.split_once('@') {
                    Some((l, d))
                        if !l.is_empty() && d.contains('.') && e.len() <= 254 && !d.contains('@') =>
                    {
                        Some(e)
                    }
                    _ => return Err(E::InvalidEmail),
                }
            }
            _ if checks.email_required => return Err(E::EmailRequired),
            _ => None,
        };
        let len = new.password.expose_secret().chars().count();
        if len == 0 || len > NEW_PASSWORD_MAX_LEN {
            return Err(E::InvalidPassword);
        }
        if let Some((typed_handle, typed_email)) = checks.password {
            crate::signup::check_password(new.password.expose_secret(), typed_handle, typed_email)?;
        }
        if checks.invite_required && checks.invite.is_none() {
            return Err(E::InviteCodeRequired);
        }
        // Same handle or code in this process: one at a time, so the second sees the first's
        // account (or spent code) below instead of registering a DID for nothing.
        let mut keys = vec![format!("handle:{handle}")];
        keys.extend(checks.invite.iter().map(|c| format!("invite:{c}")));
        let _creating = self.inner.creating.lock(keys).await;
        let accounts = &self.inner.stores.accounts;
        if accounts.account_by_handle(&handle).await.map_err(E::Store)?.is_some() {
            return Err(E::HandleTaken);
        }
        if let Some(e) = &email
            && accounts.account_by_email(e).await.map_err(E::Store)?.is_some()
        {
            return Err(E::EmailTaken);
        }
        if let Some(code) = &checks.invite {
            match accounts.invite_code(code).await.map_err(E::Store)? {
                None => return Err(E::InviteCodeUnknown),
                Some(i) if i.disabled => return Err(E::InviteCodeDisabled),
                Some(i) if i.remaining() == 0 => return Err(E::InviteCodeUsed),
                Some(_) => {}
            }
        }
        let password_hash = self.inner.passwords.hasher.hash(&new.password).await.map_err(E::Password)?;
        let signing_key = PrivateKey::generate(Algorithm::Es256k);
        let rotation = self.inner.plc.rotation_key.public_key().clone();
        let op = genesis_op(
            &GenesisParams {
                rotation_keys: std::slice::from_ref(&rotation),
                signing_key: signing_key.public_key(),
                handle: &handle,
                pds_endpoint: &self.config().public_url,
            },
            &self.inner.plc.rotation_key,
        );
        self.inner.plc.client.submit(&op).await.map_err(E::Plc)?;
        let record = AccountRecord {
            did: op.did,
            handle,
            email,
            password_hash,
            signing_key_hex: Some(signing_key.to_hex()),
            created_at: self.now(),
            status: AccountStatus::Active,
        };
        let conflict = |e| match e {
            StoreError::Conflict("handle") => E::HandleTaken,
            StoreError::Conflict("email") => E::EmailTaken,
            other => E::Store(other),
        };
        match &checks.invite {
            None => accounts.create_account(record.clone()).await.map_err(conflict)?,
            Some(code) => {
                match accounts.create_account_with_invite(record.clone(), code).await.map_err(conflict)? {
                    InviteRedeemOutcome::Created => {}
                    InviteRedeemOutcome::UnknownCode => return Err(E::InviteCodeUnknown),
                    InviteRedeemOutcome::Disabled => return Err(E::InviteCodeDisabled),
                    _ => return Err(E::InviteCodeUsed),
                }
            }
        }
        tracing::info!(did = %record.did, handle = %record.handle, invited = checks.invite.is_some(), "account created");
        Ok(record)
    }

    /// Checks a password for an identifier: a handle (`@` prefix allowed), a DID, or an email
    /// (contains `@` after the first character). Always does one scrypt.
    pub async fn sign_in(
        &self,
        identifier: &str,
        password: &SecretString,
    ) -> Result<AccountRecord, SignInError> {
        let accounts = &self.inner.stores.accounts;
        let ident = identifier.trim().to_ascii_lowercase();
        let ident = ident.strip_prefix('@').unwrap_or(&ident);
        let found = if password.expose_secret().len() > PASSWORD_MAX_LEN {
            None
        } else if ident.starts_with("did:") {
            accounts.account_by_did(identifier.trim()).await.map_err(SignInError::Store)?
        } else if ident.contains('@') {
            accounts.account_by_email(ident).await.map_err(SignInError::Store)?
        } else {
            accounts.account_by_handle(ident).await.map_err(SignInError::Store)?
        };
        let stored =
            found.as_ref().map_or_else(|| SecretString::new(DUMMY_HASH), |a| a.password_hash.clone());
        let probe = if password.expose_secret().len() > PASSWORD_MAX_LEN {
            SecretString::new("")
        } else {
            password.clone()
        };
        let ok = self.inner.passwords.hasher.verify(&probe, &stored).await.map_err(SignInError::Password)?;
        match found {
            Some(account) if ok => {
                if account.status == AccountStatus::Takendown {
                    return Err(SignInError::AccountTakedown);
                }
                Ok(account)
            }
            _ => Err(SignInError::InvalidCredentials),
        }
    }

    /// [`Self::sign_in`] behind the sign-in rate limits ([`crate::ratelimit`]): one attempt is taken
    /// from the (identifier, `client_ip`) pair's bucket, the identifier's and `client_ip`'s (when
    /// known) before any hashing, [`SignInError::RateLimited`] when one is empty,
    /// [`SignInError::LimiterUnavailable`] when a shared limit store cannot be reached; a success
    /// resets the pair. Use this for every password check that a user (or an attacker) can repeat.
    pub async fn sign_in_limited(
        &self,
        identifier: &str,
        password: &SecretString,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<AccountRecord, SignInError> {
        let limiter = &self.inner.passwords.limiter;
        limiter.check(identifier, client_ip, self.inner.clock.now()).await.map_err(|e| match e {
            LimitError::Limited(r) => SignInError::RateLimited(r),
            LimitError::Unavailable(e) => SignInError::LimiterUnavailable(e),
        })?;
        let account = self.sign_in(identifier, password).await?;
        limiter.succeeded(identifier, client_ip, self.inner.clock.now()).await;
        Ok(account)
    }

    /// `com.atproto.identity.resolveHandle` for hosted handles: the DID, or `None` if this server does
    /// not host the handle or it is unknown.
    pub async fn resolve_local_handle(&self, handle: &str) -> Result<Option<String>, StoreError> {
        let Ok(handle) = Handle::parse_user_input(handle) else { return Ok(None) };
        if !self.hosts_handle(handle.as_str()) {
            return Ok(None);
        }
        Ok(self.inner.stores.accounts.account_by_handle(handle.as_str()).await?.map(|a| a.did))
    }
}
