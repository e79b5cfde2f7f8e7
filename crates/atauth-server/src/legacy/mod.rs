//! Legacy session auth: `com.atproto.server.createSession` / `refreshSession` / `getSession` /
//! `deleteSession` and app passwords (`createAppPassword` / `listAppPasswords` /
//! `revokeAppPassword`). Checklist §2.7, LEG-01 … LEG-10, and T-24.
//!
//! **Tokens** (LEG-04). HS256 JWTs under a secret of at least 32 bytes ([`LegacyOptions::jwt_secret`],
//! `ATAUTH_JWT_SECRET`, or `legacy-jwt.secret` generated 0600 in the data directory). Access tokens:
//! `typ: at+jwt`, `scope` ∈ {`com.atproto.access`, `com.atproto.appPass`,
//! `com.atproto.appPassPrivileged`}; refresh tokens: `typ: refresh+jwt`, `scope: com.atproto.refresh`;
//! both carry `sub` (DID), `aud` (the service DID), `iat`, `exp`, `jti`. Each kind is refused where
//! the other is expected (typ and scope both checked), as are `alg` other than HS256, tokens with
//! `lxm` (service JWTs) or `cnf` (PoP tokens), and tokens of unknown accounts.
//!
//! **Lifetimes** (LEG-05) default to the reference PDS: access 120 minutes, refresh 90 days, and a
//! rotated refresh token keeps working for a 2-hour grace period, answering retries with the
//! **same** next token id. Access tokens are stateless (not individually revocable) as in the
//! reference; refresh tokens are rows in a [`LegacyStore`]. These are the reference's values, not
//! the seed's "15 min / 7 d": legacy clients (the reference `AtpAgent`, bots, the Bluesky apps'
//! app-password path) are built around them, the tokens are confined to this PDS (`aud`), and the
//! refresh token is revocable (deleteSession, app-password revocation), unlike OAuth access tokens,
//! which reach third parties and keep the 15-minute default of AS-LIFE-01. An operator who wants
//! other values sets them in [`LegacyOptions`]; nothing else depends on them. After the grace period
//! a rotated token is `400 ExpiredToken "Token has been revoked"` (LEG-06); `deleteSession` accepts
//! expired refresh tokens.
//!
//! **Errors** are [`LegacyError`], mapped once by [`LegacyError::xrpc_error`] to the reference's
//! names and statuses: an expired token is **400 `ExpiredToken`** (T-24, LEG-07), every other token
//! problem 400 `InvalidToken`, no credentials 401 `AuthMissing`, wrong credentials 401
//! `AuthenticationRequired` (LEG-02; the same answer after the same scrypt cost for an unknown
//! identifier), taken down 401 `AccountTakedown`, deleted account 403 `AccountNotFound`, rate limited
//! 429 `RateLimitExceeded`. `createSession` takes one attempt from the sign-in buckets shared with
//! the OAuth sign-in page ([`crate::ratelimit`]) before any hashing. Not implemented:
//! `allowTakendown`.
//!
//! **Second factor** ([`crate::second_factor`]): the account password of an account with a
//! second factor needs `authFactorToken` (a current TOTP code or a recovery code): without it
//! **401 `AuthFactorTokenRequired`** (the reference's error for its email code), with a wrong one
//! **400 `InvalidToken` "Token is invalid"** (the reference's answer to a wrong email code),
//! counted toward the factor's lockout (then 429 `RateLimitExceeded`). App passwords skip the
//! second factor, as in the reference.
//!
//! **App passwords** (LEG-10). 16 characters from the CSPRNG in lowercase base32 (80 bits), shown
//! once, stored as reference-format scrypt with a salt derived from the DID, so a login costs at most
//! two scrypts (the account password, then, only for input of the app-password shape, one hash
//! compared in constant time with every stored one) however many app passwords exist. App-password
//! sessions keep their reduced scope across refresh, cannot manage app passwords (400 `InvalidToken`
//! "Bad token scope", as the reference) and cannot get service auth for privileged methods unless
//! privileged. Revocation deletes the app password and its refresh tokens in one transaction; its
//! access tokens expire on their own. App-password management refuses OAuth credentials (403).
//!
//! **One layer for both credential kinds**: [`SessionAuth`] sends each request to the legacy or the
//! OAuth verifier, so each client type gets the errors its library understands. OAuth sessions see
//! the email only with `transition:email` or `account:email`.

use std::sync::Arc;
use std::time::Duration;

use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::{HmacKey, SecretBytes, SecretString};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::XrpcError;
use crate::keys::KeyStoreError;
use crate::server::AuthServer;
use crate::store::{AccountRecord, AccountStatus, StoreError};
pub use crate::store::{
    AppPasswordRecord, LegacyRefreshRecord, LegacyStore, MemoryLegacyStore, SqliteLegacyStore,
};

/// File of the generated JWT secret (hex, 0600) in the data directory.
pub const JWT_SECRET_FILE: &str = "legacy-jwt.secret";
/// Environment variable the CLI reads the JWT secret from ([`LegacyOptions::secret_from_env`]).
pub const JWT_SECRET_ENV: &str = "ATAUTH_JWT_SECRET";

/// `typ` of access tokens (LEG-04).
pub const ACCESS_TYP: &str = "at+jwt";
/// `typ` of refresh tokens (LEG-04).
pub const REFRESH_TYP: &str = "refresh+jwt";

/// The `scope` claims of legacy tokens (LEG-04, LEG-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LegacyScope {
    /// A full session (account password).
    #[serde(rename = "com.atproto.access")]
    Access,
    /// A non-privileged app password session.
    #[serde(rename = "com.atproto.appPass")]
    AppPass,
    /// A privileged app password session.
    #[serde(rename = "com.atproto.appPassPrivileged")]
    AppPassPrivileged,
    /// A refresh token.
    #[serde(rename = "com.atproto.refresh")]
    Refresh,
}

impl LegacyScope {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "com.atproto.access",
            Self::AppPass => "com.atproto.appPass",
            Self::AppPassPrivileged => "com.atproto.appPassPrivileged",
            Self::Refresh => "com.atproto.refresh",
        }
    }

    fn for_app_password(app_password: Option<&str>, privileged: bool) -> Self {
        match (app_password, privileged) {
            (None, _) => Self::Access,
            (Some(_), true) => Self::AppPassPrivileged,
            (Some(_), false) => Self::AppPass,
        }
    }
}

/// Configuration of legacy sessions.
#[derive(Clone)]
pub struct LegacyOptions {
    /// The HS256 secret (≥ 32 bytes). Default: `legacy-jwt.secret` in the data directory (generated
    /// on first start, mode 0600), or a random one for servers without a data directory.
    pub jwt_secret: Option<SecretBytes>,
    /// Access-token lifetime (default 120 minutes, the reference's; the module docs say why).
    pub access_lifetime: Duration,
    /// Refresh-token lifetime (default 90 days, the reference's).
    pub refresh_lifetime: Duration,
    /// How long a rotated refresh token keeps working (default 2 hours, LEG-05).
    pub refresh_grace: Duration,
    /// The store (default: SQLite in the server's database file, or memory without a data directory).
    pub store: Option<Arc<dyn LegacyStore>>,
}

impl std::fmt::Debug for LegacyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyOptions")
            .field("access_lifetime", &self.access_lifetime)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("refresh_grace", &self.refresh_grace)
            .finish_non_exhaustive()
    }
}

impl Default for LegacyOptions {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_lifetime: Duration::from_secs(120 * 60),
            refresh_lifetime: Duration::from_secs(90 * 24 * 3600),
            refresh_grace: Duration::from_secs(2 * 3600),
            store: None,
        }
    }
}

impl LegacyOptions {
    /// Reads [`JWT_SECRET_ENV`]: `Ok(None)` when unset, the hex-decoded bytes (or the raw bytes if
    /// not hex) when set; [`LegacyBuildError::SecretTooShort`] under 32 bytes.
    pub fn secret_from_env() -> Result<Option<SecretBytes>, LegacyBuildError> {
        let Some(v) = std::env::var_os(JWT_SECRET_ENV) else { return Ok(None) };
        let v = SecretString::new(v.to_string_lossy().trim().to_owned());
        let bytes = hex::decode(v.expose_secret()).unwrap_or_else(|_| v.expose_secret().as_bytes().to_vec());
        let secret = SecretBytes::new(bytes);
        if secret.len() < HmacKey::MIN_LEN {
            return Err(LegacyBuildError::SecretTooShort);
        }
        Ok(Some(secret))
    }
}

/// Why legacy sessions could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyBuildError {
    /// The JWT secret is shorter than 32 bytes.
    #[error("the legacy JWT secret must be at least 32 bytes")]
    SecretTooShort,
    /// The secret file could not be read or written.
    #[error(transparent)]
    SecretFile(#[from] KeyStoreError),
    /// The store could not be opened.
    #[error("could not open the legacy session store: {0}")]
    Store(#[from] StoreError),
}

/// Legacy-session state held by the [`AuthServer`].
pub(crate) struct LegacyState {
    key: HmacKey,
    options: LegacyOptions,
    store: Arc<dyn LegacyStore>,
}

impl LegacyState {
    /// `shared`: the server's default SQLite store, whose database and threads the legacy tables
    /// join when no legacy store was configured.
    pub(crate) fn build(
        options: LegacyOptions,
        data_dir: Option<&std::path::Path>,
        shared: Option<&crate::store::SqliteStore>,
    ) -> Result<Self, LegacyBuildError> {
        let secret = match (&options.jwt_secret, data_dir) {
            (Some(s), _) => s.clone(),
            (None, Some(dir)) => crate::keys::load_or_create_hex(&dir.join(JWT_SECRET_FILE), || {
                atauth_crypto::random::random_bytes::<32>().to_vec()
            })?,
            (None, None) => SecretBytes::new(atauth_crypto::random::random_bytes::<32>().to_vec()),
        };
        let key = HmacKey::new(&secret).ok_or(LegacyBuildError::SecretTooShort)?;
        let store: Arc<dyn LegacyStore> = match (&options.store, shared, data_dir) {
            (Some(s), _, _) => Arc::clone(s),
            (None, Some(sqlite), _) => Arc::new(SqliteLegacyStore::in_store(sqlite)?),
            (None, None, Some(dir)) => {
                Arc::new(SqliteLegacyStore::open(dir.join(crate::server::DATABASE_FILE))?)
            }
            (None, None, None) => Arc::new(MemoryLegacyStore::default()),
        };
        Ok(Self { key, options, store })
    }
}

/// Why a legacy session call failed. One variant per check; [`Self::xrpc_error`] is the only mapping.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// No `Authorization` header (LEG-07).
    #[error("Authentication Required")]
    AuthMissing,
    /// The header is not `<scheme> <token>`.
    #[error("Malformed authorization header")]
    MalformedAuthorization,
    /// A scheme other than Bearer (and DPoP where OAuth is accepted).
    #[error("Unsupported authorization type")]
    UnsupportedScheme,
    /// `exp` has passed (T-24: 400, not 401).
    #[error("Token has expired")]
    ExpiredToken,
    /// Not a JWS, wrong `alg`, bad signature, wrong `typ` or `aud`, or missing claims.
    #[error("Token could not be verified")]
    InvalidToken,
    /// A service JWT (`lxm`), PoP token (`cnf`), or a `sub` that is not a DID (LEG-04).
    #[error("Malformed token")]
    MalformedToken,
    /// The `scope` claim is not one accepted here (e.g. an app password on an account-management call).
    #[error("Bad token scope")]
    BadScope,
    /// The refresh token was deleted, revoked, or rotated out after its grace period (LEG-06).
    #[error("Token has been revoked")]
    Revoked,
    /// The token's account does not exist (any more).
    #[error("Account not found")]
    AccountNotFound,
    /// The account is taken down (LEG-02).
    #[error("Account has been taken down")]
    AccountTakedown,
    /// Unknown identifier, wrong password, or revoked app password (one variant, LEG-02).
    #[error("Invalid identifier or password")]
    InvalidCredentials,
    /// Password longer than 512 characters (LEG-02).
    #[error("Password too long. Consider resetting your password.")]
    PasswordTooLong,
    /// Too many createSession attempts for the identifier or from the address.
    #[error("Too many login attempts; try again in {0} seconds")]
    RateLimited(u64),
    /// The shared sign-in limit store cannot be reached: refused without checking the password
    /// (fail closed, [`crate::ratelimit`]).
    #[error("Sign-in is temporarily unavailable; try again shortly")]
    LimiterUnavailable,
    /// A request field is missing or invalid.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// An app password with this name exists.
    #[error("App password name already exists")]
    AppPasswordNameTaken,
    /// OAuth credentials on an endpoint that only accepts legacy sessions (reference behaviour).
    #[error("OAuth credentials are not supported for this endpoint")]
    OAuthNotSupported,
    /// The account has a second factor and `createSession` came without `authFactorToken`.
    #[error(
        "A second factor is required: send a code from your authenticator app or a recovery code as authFactorToken"
    )]
    AuthFactorTokenRequired,
    /// `authFactorToken` is wrong, replayed or a used recovery code.
    #[error("Token is invalid")]
    InvalidAuthFactorToken,
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Password(#[source] crate::password::PasswordError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[source] atauth_crypto::jws::JwsError),
}

impl LegacyError {
    /// The XRPC error: names and statuses of the reference PDS (LEG-02, LEG-06, LEG-07, T-24).
    pub fn xrpc_error(&self) -> XrpcError {
        let msg = self.to_string();
        let (status, error) = match self {
            Self::AuthMissing => (StatusCode::UNAUTHORIZED, "AuthMissing"),
            Self::MalformedAuthorization
            | Self::UnsupportedScheme
            | Self::InvalidToken
            | Self::MalformedToken
            | Self::BadScope
            | Self::InvalidAuthFactorToken => (StatusCode::BAD_REQUEST, "InvalidToken"),
            Self::AuthFactorTokenRequired => (StatusCode::UNAUTHORIZED, "AuthFactorTokenRequired"),
            Self::ExpiredToken | Self::Revoked => (StatusCode::BAD_REQUEST, "ExpiredToken"),
            Self::AccountNotFound => (StatusCode::FORBIDDEN, "AccountNotFound"),
            Self::AccountTakedown => (StatusCode::UNAUTHORIZED, "AccountTakedown"),
            Self::InvalidCredentials | Self::PasswordTooLong => {
                (StatusCode::UNAUTHORIZED, "AuthenticationRequired")
            }
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded"),
            Self::LimiterUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Self::InvalidRequest(_) | Self::AppPasswordNameTaken => {
                (StatusCode::BAD_REQUEST, "InvalidRequest")
            }
            Self::OAuthNotSupported => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::Password(e) => return XrpcError::internal("password hashing", e),
            Self::Store(e) => return XrpcError::internal("legacy store", e),
            Self::Sign(e) => return XrpcError::internal("legacy token signing", e),
        };
        XrpcError::new(status, error, msg)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    scope: LegacyScope,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A verified legacy access token (`Authorization: Bearer <accessJwt>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAccess {
    /// The account DID (`sub`).
    pub did: String,
    /// The session kind.
    pub scope: LegacyScope,
    /// The token's `jti`.
    pub jti: String,
}

impl LegacyAccess {
    /// A full (account-password) session: the only kind that may manage credentials (LEG-10).
    pub fn is_full(&self) -> bool {
        self.scope == LegacyScope::Access
    }
}

/// Either credential a PDS accepts on ordinary XRPC routes: a legacy Bearer access token or a
/// DPoP-bound OAuth access token. Each path answers its own errors (legacy: 400
/// `ExpiredToken`/`InvalidToken`, LEG-07; OAuth: 401 with a `WWW-Authenticate: DPoP` challenge and
/// `DPoP-Nonce`, RS-WWW-01).
///
/// With the `web` feature this is an axum extractor ([`crate::web::legacy`]). The legacy path takes
/// exactly one `Authorization: Bearer <token>` whose token is not proof-of-possession bound (no
/// `cnf` claim, LEG-04). Everything else goes to the OAuth verifier: the `DPoP` scheme, no
/// credentials (401 `AuthMissing` with the bare DPoP challenge), other schemes, repeated headers,
/// and a DPoP-bound access token sent as Bearer (RS-DPOP-02 `invalid_token`).
#[derive(Debug, Clone)]
pub enum SessionAuth {
    /// `Authorization: Bearer` (legacy session).
    Legacy(LegacyAccess),
    /// `Authorization: DPoP` (OAuth).
    OAuth(crate::resource::VerifiedAccess),
}

impl SessionAuth {
    /// The account DID.
    pub fn did(&self) -> &str {
        match self {
            Self::Legacy(a) => &a.did,
            Self::OAuth(a) => &a.did,
        }
    }

    /// Whether `getSession` shows the email: always to legacy sessions; to OAuth sessions only
    /// when their permissions allow reading it (`transition:email` or `account:email`, LEG-08,
    /// RS-SCOPE-01).
    pub fn sees_email(&self) -> bool {
        match self {
            Self::Legacy(_) => true,
            Self::OAuth(access) => access.allows(&atauth_oauth::scope::Access::email_read()),
        }
    }

    /// The full legacy session that app-password management needs (LEG-10): OAuth credentials are
    /// refused (reference: 403), app-password sessions get 400 `InvalidToken` "Bad token scope".
    pub fn into_full(self) -> Result<LegacyAccess, LegacyError> {
        match self {
            Self::OAuth(_) => Err(LegacyError::OAuthNotSupported),
            Self::Legacy(a) if a.is_full() => Ok(a),
            Self::Legacy(_) => Err(LegacyError::BadScope),
        }
    }
}

/// A verified legacy refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRefresh {
    /// The account DID.
    pub did: String,
    /// The token id (`jti`).
    pub id: String,
}

/// A new session's tokens and the account fields the reference returns (LEG-01).
#[derive(Debug, Clone)]
pub struct LegacySession {
    /// `accessJwt`.
    pub access_jwt: SecretString,
    /// `refreshJwt`.
    pub refresh_jwt: SecretString,
    /// The account.
    pub account: AccountRecord,
    /// The session kind.
    pub scope: LegacyScope,
}

/// A newly created app password: the only time the password is shown (LEG-10).
#[derive(Debug, Clone)]
pub struct NewAppPassword {
    /// Name.
    pub name: String,
    /// `xxxx-xxxx-xxxx-xxxx`.
    pub password: SecretString,
    /// Unix seconds.
    pub created_at: i64,
    /// Privileged.
    pub privileged: bool,
}

/// Verified when the identifier is unknown, so both paths cost one scrypt (the password module's
/// test vector).
const DUMMY_HASH: &str = "0123456789abcdef0123456789abcdef:c7ce0eba642ae51d4d854f49836057c17db966dd1c6021e0c5842d555a1d9fc4b18e8f721b020e125eb35c523dd7870bf6117f20a936f261803df2b37e9a9f34";

/// Whether `s` has the app-password shape `xxxx-xxxx-xxxx-xxxx` (lowercase base32).
pub fn is_app_password_shape(s: &str) -> bool {
    s.len() == 19
        && s.split('-').count() == 4
        && s.split('-')
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)))
}

/// A fresh app password from the CSPRNG: 16 base32 characters (80 bits) in 4 groups (LEG-10).
pub fn generate_app_password() -> SecretString {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = atauth_crypto::random::random_bytes::<16>();
    let chars: Vec<u8> = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)]).collect();
    let mut s = String::with_capacity(19);
    for (i, c) in chars.chunks(4).enumerate() {
        if i > 0 {
            s.push('-');
        }
        s.extend(c.iter().map(|&b| char::from(b)));
    }
    SecretString::new(s)
}

/// The scrypt salt of an app password: derived from the DID, so a login costs one scrypt whatever
/// the number of app passwords (the hash is then compared with each in constant time).
fn app_password_salt(did: &str) -> String {
    hex::encode(&atauth_crypto::hash::sha256(did.as_bytes())[..16])
}

/// Extracts a Bearer token: `Ok(None)` without a header; the reference's errors otherwise (LEG-07).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, LegacyError> {
    let header = authorization.ok_or(LegacyError::AuthMissing)?;
    let mut parts = header.split(' ');
    let (Some(scheme), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(LegacyError::MalformedAuthorization);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(LegacyError::UnsupportedScheme);
    }
    Ok(token)
}

enum Kind {
    Access,
    Refresh { allow_expired: bool },
}

impl AuthServer {
    fn legacy(&self) -> &LegacyState {
        &self.inner.legacy
    }

    /// The legacy session store.
    pub fn legacy_store(&self) -> &Arc<dyn LegacyStore> {
        &self.inner.legacy.store
    }

    fn sign_legacy(&self, typ: &'static str, claims: &Claims) -> Result<SecretString, LegacyError> {
        jws::sign_hmac(&JwsHeader::new("HS256", Some(typ)), claims, &self.legacy().key)
            .map(SecretString::new)
            .map_err(LegacyError::Sign)
    }

    /// Issues an access + refresh pair with refresh id `jti` (the refresh row is stored by the caller).
    fn legacy_tokens(
        &self,
        did: &str,
        scope: LegacyScope,
        refresh_id: &str,
        refresh_exp: i64,
    ) -> Result<(SecretString, SecretString), LegacyError> {
        let now = self.now();
        let aud = self.config().service_did.clone();
        let access_exp = now + self.legacy().options.access_lifetime.as_secs() as i64;
        let access = Claims {
            scope,
            sub: did.to_owned(),
            aud: aud.clone(),
            iat: now,
            exp: access_exp,
            jti: atauth_crypto::random::generate_jti(),
        };
        let refresh = Claims {
            scope: LegacyScope::Refresh,
            sub: did.to_owned(),
            aud,
            iat: now,
            exp: refresh_exp,
            jti: refresh_id.to_owned(),
        };
        Ok((self.sign_legacy(ACCESS_TYP, &access)?, self.sign_legacy(REFRESH_TYP, &refresh)?))
    }

    fn verify_legacy_jwt(&self, token: &str, kind: &Kind) -> Result<Claims, LegacyError> {
        let jws = jws::decode(token).map_err(|_| LegacyError::InvalidToken)?;
        // `alg` must be HS256: `none`, HS512 and asymmetric algorithms fail here.
        jws.verify_hmac(&self.legacy().key).map_err(|_| LegacyError::InvalidToken)?;
        let typ = match kind {
            Kind::Access => ACCESS_TYP,
            Kind::Refresh { .. } => REFRESH_TYP,
        };
        jws.require_type(typ).map_err(|_| LegacyError::InvalidToken)?;
        let raw: serde_json::Map<String, serde_json::Value> =
            jws.claims().map_err(|_| LegacyError::InvalidToken)?;
        let exp = raw.get("exp").and_then(serde_json::Value::as_i64).ok_or(LegacyError::InvalidToken)?;
        let allow_expired = matches!(kind, Kind::Refresh { allow_expired: true });
        if exp <= self.now() && !allow_expired {
            return Err(LegacyError::ExpiredToken);
        }
        if raw.get("aud").and_then(serde_json::Value::as_str) != Some(self.config().service_did.as_str()) {
            return Err(LegacyError::InvalidToken);
        }
        if raw.contains_key("lxm") || raw.contains_key("cnf") {
            return Err(LegacyError::MalformedToken);
        }
        let sub_ok =
            raw.get("sub").and_then(serde_json::Value::as_str).is_some_and(|s| s.starts_with("did:"));
        if !sub_ok {
            return Err(LegacyError::MalformedToken);
        }
        let claims: Claims =
            serde_json::from_value(serde_json::Value::Object(raw)).map_err(|_| LegacyError::BadScope)?;
        let scope_ok = match kind {
            Kind::Access => claims.scope != LegacyScope::Refresh,
            Kind::Refresh { .. } => claims.scope == LegacyScope::Refresh,
        };
        if !scope_ok {
            return Err(LegacyError::BadScope);
        }
        Ok(claims)
    }

    async fn live_account(&self, did: &str) -> Result<AccountRecord, LegacyError> {
        let account =
            self.stores().accounts.account_by_did(did).await?.ok_or(LegacyError::AccountNotFound)?;
        if account.status == AccountStatus::Takendown {
            return Err(LegacyError::AccountTakedown);
        }
        Ok(account)
    }

    /// Verifies a legacy access token (`Bearer`, `typ: at+jwt`, HS256, unexpired, our `aud`) and
    /// that its account still exists and is not taken down.
    pub async fn verify_legacy_access(&self, token: &str) -> Result<LegacyAccess, LegacyError> {
        let claims = self.verify_legacy_jwt(token, &Kind::Access)?;
        self.live_account(&claims.sub).await?;
        Ok(LegacyAccess { did: claims.sub, scope: claims.scope, jti: claims.jti })
    }

    /// Verifies a legacy refresh token's signature and claims (not whether it is still stored).
    /// `allow_expired` is for `deleteSession` (LEG-06).
    pub fn verify_legacy_refresh(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<LegacyRefresh, LegacyError> {
        let claims = self.verify_legacy_jwt(token, &Kind::Refresh { allow_expired })?;
        Ok(LegacyRefresh { did: claims.sub, id: claims.jti })
    }

    async fn find_account(&self, identifier: &str) -> Result<Option<AccountRecord>, LegacyError> {
        let accounts = &self.stores().accounts;
        let ident = identifier.trim().to_ascii_lowercase();
        let ident = ident.strip_prefix('@').unwrap_or(&ident);
        Ok(if ident.starts_with("did:") {
            accounts.account_by_did(identifier.trim()).await?
        } else if ident.contains('@') {
            accounts.account_by_email(ident).await?
        } else {
            accounts.account_by_handle(ident).await?
        })
    }

    /// `com.atproto.server.createSession` (LEG-01, LEG-02): identifier = handle, DID or email;
    /// password = the account password or an app password. Rate-limited per identifier and per
    /// client address (the sign-in limits shared with the OAuth sign-in page) before any hashing.
    /// An account with a second factor is refused ([`LegacyError::AuthFactorTokenRequired`]): use
    /// [`Self::create_session_with_factor`].
    pub async fn create_session(
        &self,
        identifier: &str,
        password: &SecretString,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<LegacySession, LegacyError> {
        self.create_session_with_factor(identifier, password, None, client_ip).await
    }

    /// [`Self::create_session`] with `authFactorToken`: the account password of an account with a
    /// second factor needs a current TOTP code or an unused recovery code here (through the
    /// factor's lockout, [`crate::second_factor`]); app passwords skip it and ignore the token.
    pub async fn create_session_with_factor(
        &self,
        identifier: &str,
        password: &SecretString,
        auth_factor_token: Option<&str>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<LegacySession, LegacyError> {
        if identifier.trim().is_empty() {
            return Err(LegacyError::InvalidRequest("identifier is required"));
        }
        if password.expose_secret().chars().count() > crate::password::PASSWORD_MAX_LEN {
            return Err(LegacyError::PasswordTooLong);
        }
        self.inner.passwords.limiter.check(identifier, client_ip, self.inner.clock.now()).await.map_err(
            |e| match e {
                crate::ratelimit::LimitError::Limited(r) => {
                    LegacyError::RateLimited(r.retry_after.as_secs().max(1))
                }
                crate::ratelimit::LimitError::Unavailable(_) => LegacyError::LimiterUnavailable,
            },
        )?;
        let found = self.find_account(identifier).await?;
        let stored =
            found.as_ref().map_or_else(|| SecretString::new(DUMMY_HASH), |a| a.password_hash.clone());
        let hasher = &self.inner.passwords.hasher;
        // One scrypt whether or not the account exists.
        let account_ok = hasher.verify(password, &stored).await.map_err(LegacyError::Password)?;
        let Some(account) = found else { return Err(LegacyError::InvalidCredentials) };
        let mut app_password = None;
        if !account_ok {
            // App passwords: one more scrypt, only for inputs of the app-password shape.
            if !is_app_password_shape(password.expose_secret()) {
                return Err(LegacyError::InvalidCredentials);
            }
            let candidate = hasher
                .hash_with_salt(password, app_password_salt(&account.did))
                .await
                .map_err(LegacyError::Password)?;
            let list = self.legacy().store.list_app_passwords(&account.did).await?;
            let hit = list.into_iter().find(|a| a.password_hash.ct_eq(candidate.expose_secret()));
            match hit {
                Some(a) => app_password = Some(a),
                None => return Err(LegacyError::InvalidCredentials),
            }
        }
        // The password was right: only failures count against the (identifier, address) pair.
        self.inner.passwords.limiter.succeeded(identifier, client_ip, self.inner.clock.now()).await;
        if account.status == AccountStatus::Takendown {
            return Err(LegacyError::AccountTakedown);
        }
        if app_password.is_none() && !self.factor_kinds(&account.did).await?.is_empty() {
            let token = auth_factor_token.map(str::trim).filter(|t| !t.is_empty());
            let Some(token) = token else { return Err(LegacyError::AuthFactorTokenRequired) };
            let proof = crate::second_factor::SecondFactorProof::from_token(token);
            match self.verify_second_factor(&account.did, proof).await {
                Ok(()) => {}
                Err(crate::second_factor::SecondFactorError::Invalid) => {
                    return Err(LegacyError::InvalidAuthFactorToken);
                }
                Err(crate::second_factor::SecondFactorError::Locked(r)) => {
                    return Err(LegacyError::RateLimited(r.retry_after.as_secs().max(1)));
                }
                Err(crate::second_factor::SecondFactorError::LimiterUnavailable(_)) => {
                    return Err(LegacyError::LimiterUnavailable);
                }
                Err(crate::second_factor::SecondFactorError::Store(e)) => return Err(e.into()),
            }
        }
        let name = app_password.as_ref().map(|a| a.name.clone());
        let privileged = app_password.as_ref().is_some_and(|a| a.privileged);
        let scope = LegacyScope::for_app_password(name.as_deref(), privileged);
        let id = atauth_crypto::random::random_token::<32>();
        let refresh_exp = self.now() + self.legacy().options.refresh_lifetime.as_secs() as i64;
        let (access_jwt, refresh_jwt) = self.legacy_tokens(&account.did, scope, &id, refresh_exp)?;
        self.legacy()
            .store
            .insert_refresh(LegacyRefreshRecord {
                id,
                did: account.did.clone(),
                app_password: name,
                privileged,
                expires_at: refresh_exp,
                next_id: None,
            })
            .await?;
        Ok(LegacySession { access_jwt, refresh_jwt, account, scope })
    }

    /// `com.atproto.server.refreshSession` (LEG-03, LEG-05, LEG-06): rotates; the old token keeps
    /// working for the grace period and a retry gets a token with the same next id.
    pub async fn refresh_session(&self, refresh_jwt: &str) -> Result<LegacySession, LegacyError> {
        let verified = self.verify_legacy_refresh(refresh_jwt, false)?;
        let account = self.live_account(&verified.did).await?;
        let now = self.now();
        let opts = &self.legacy().options;
        let grace_until = now + opts.refresh_grace.as_secs() as i64;
        let candidate = atauth_crypto::random::random_token::<32>();
        let new_exp = now + opts.refresh_lifetime.as_secs() as i64;
        let rotated = self
            .legacy()
            .store
            .rotate_refresh(&verified.id, now, grace_until, &candidate, new_exp)
            .await?
            .ok_or(LegacyError::Revoked)?;
        if rotated.old.did != verified.did {
            return Err(LegacyError::Revoked);
        }
        let scope =
            LegacyScope::for_app_password(rotated.old.app_password.as_deref(), rotated.old.privileged);
        let next =
            self.legacy().store.refresh_by_id(&rotated.next_id, now).await?.ok_or(LegacyError::Revoked)?;
        let (access_jwt, refresh_jwt) =
            self.legacy_tokens(&account.did, scope, &rotated.next_id, next.expires_at)?;
        Ok(LegacySession { access_jwt, refresh_jwt, account, scope })
    }

    /// `com.atproto.server.deleteSession` (LEG-06): revokes the refresh token (expired ones accepted).
    pub async fn delete_session(&self, refresh_jwt: &str) -> Result<(), LegacyError> {
        let verified = self.verify_legacy_refresh(refresh_jwt, true)?;
        self.legacy().store.delete_refresh(&verified.id).await?;
        Ok(())
    }

    /// `com.atproto.server.createAppPassword` (LEG-10): full sessions only.
    pub async fn create_app_password(
        &self,
        access: &LegacyAccess,
        name: &str,
        privileged: bool,
    ) -> Result<NewAppPassword, LegacyError> {
        if !access.is_full() {
            return Err(LegacyError::BadScope);
        }
        self.create_app_password_for(&access.did, name, privileged).await
    }

    /// Creates an app password for `did` (LEG-10) for a caller that already proved it is the
    /// account's owner with its full credentials (a full legacy session, or the account page's
    /// signed-in device session). The password is in the result only.
    pub async fn create_app_password_for(
        &self,
        did: &str,
        name: &str,
        privileged: bool,
    ) -> Result<NewAppPassword, LegacyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(LegacyError::InvalidRequest("name must be 1 to 100 characters"));
        }
        let password = generate_app_password();
        let hash = self
            .inner
            .passwords
            .hasher
            .hash_with_salt(&password, app_password_salt(did))
            .await
            .map_err(LegacyError::Password)?;
        let created_at = self.now();
        self.legacy()
            .store
            .create_app_password(AppPasswordRecord {
                did: did.to_owned(),
                name: name.to_owned(),
                password_hash: hash,
                privileged,
                created_at,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => LegacyError::AppPasswordNameTaken,
                other => LegacyError::Store(other),
            })?;
        Ok(NewAppPassword { name: name.to_owned(), password, created_at, privileged })
    }

    /// `com.atproto.server.listAppPasswords` (full sessions only).
    pub async fn list_app_passwords(
        &self,
        access: &LegacyAccess,
    ) -> Result<Vec<AppPasswordRecord>, LegacyError> {
        if !access.is_full() {
            return Err(LegacyError::BadScope);
        }
        Ok(self.legacy().store.list_app_passwords(&access.did).await?)
    }

    /// `com.atproto.server.revokeAppPassword`: deletes it and ends its sessions (refresh tokens).
    pub async fn revoke_app_password(&self, access: &LegacyAccess, name: &str) -> Result<(), LegacyError> {
        if !access.is_full() {
            return Err(LegacyError::BadScope);
        }
        self.legacy().store.revoke_app_password(&access.did, name.trim()).await?;
        Ok(())
    }
}
