//! Inter-service auth (checklist §2.8, SVC-01 … SVC-07, T-27): `com.atproto.server.getServiceAuth`
//! mints short-lived JWTs signed with the account's atproto signing key, and [`ServiceAuthVerifier`]
//! checks such tokens at a receiving service (the HTTP side, with the axum extractor
//! `ServiceAuth`, is [`crate::web::service_auth`]).
//!
//! **Minting** (SVC-07). Header `{"typ":"JWT","alg":"ES256K"|"ES256"}`; payload `iat`, `iss` (the
//! account DID, never with a fragment: T-27), `aud` (a DID or `did#service`, as asked), `exp`
//! (default now + 60 s; at most 1 h ahead, and at most 60 s without `lxm`), `lxm` when asked, and a
//! random `jti`. Account-management methods (the reference's protected list) are refused; the
//! privileged ones (`chat.bsky.*`, `com.atproto.server.createAccount`) need a full or privileged
//! app-password session (LEG-10). OAuth callers need a permission for the method at that audience
//! (RS-SCOPE-01: `rpc:<lxm>?aud=<aud>`, `rpc:*` for a token without `lxm`, or the transitional
//! scopes, SCOPE-03), else 403 `ScopeMissingError` naming the scope. Signatures are low-S (SVC-04).
//!
//! **Verifying** (SVC-05/06), in order: structure (`BadJwt`), `typ` absent or `JWT` (`BadJwtType`:
//! session and DPoP tokens are refused), `alg` ES256/ES256K, `exp` (`JwtExpired`, no tolerance, as the
//! reference), `aud` equal to the service's own `did#service` (a bare DID only when configured,
//! T-27; `BadJwtAudience`), `lxm` equal to the called method (`BadJwtLexiconMethod`), `iss` a DID
//! (`BadJwtIss`), the signature with the `#atproto` key of the issuer's DID document — on failure the
//! document is fetched once more bypassing caches, for key rotation — (`BadJwtSignature`), and
//! finally `jti` not seen before (`JwtReplayed`, recorded until `exp`). All are 401.

use std::sync::Arc;

use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::{Algorithm, Clock, PrivateKey, SignaturePolicy};
use atauth_identity::{Did, DidResolver};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::XrpcError;
use crate::legacy::{LegacyScope, SessionAuth};
use crate::server::AuthServer;
use crate::store::ReplayStore;

/// Default lifetime of a service token (SVC-03).
pub const DEFAULT_LIFETIME_SECS: i64 = 60;
/// Longest lifetime `getServiceAuth` grants (SVC-07).
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// Methods that must never be service-authed (reference `PROTECTED_METHODS`, SVC-07).
pub const PROTECTED_METHODS: &[&str] = &[
    "com.atproto.admin.sendEmail",
    "com.atproto.identity.requestPlcOperationSignature",
    "com.atproto.identity.signPlcOperation",
    "com.atproto.identity.updateHandle",
    "com.atproto.server.activateAccount",
    "com.atproto.server.confirmEmail",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.deactivateAccount",
    "com.atproto.server.getAccountInviteCodes",
    "com.atproto.server.getSession",
    "com.atproto.server.listAppPasswords",
    "com.atproto.server.requestAccountDelete",
    "com.atproto.server.requestEmailConfirmation",
    "com.atproto.server.requestEmailUpdate",
    "com.atproto.server.revokeAppPassword",
    "com.atproto.server.updateEmail",
];

/// Whether `lxm` needs a full or privileged session (reference `PRIVILEGED_METHODS`, LEG-10).
pub fn is_privileged_method(lxm: &str) -> bool {
    lxm.starts_with("chat.bsky.") || lxm == "com.atproto.server.createAccount"
}

/// The claims of a service JWT (SVC-03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Issued at (seconds).
    pub iat: i64,
    /// The account DID.
    pub iss: String,
    /// The recipient service (`did` or `did#service`).
    pub aud: String,
    /// Expiry (seconds).
    pub exp: i64,
    /// The method the token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxm: Option<String>,
    /// Random nonce.
    pub jti: String,
}

/// Signs a service JWT with `key` (ES256K or ES256, low-S): `typ: JWT`, no `kid` (`#atproto`).
pub fn sign_service_jwt(key: &PrivateKey, claims: &ServiceClaims) -> Result<String, jws::JwsError> {
    jws::sign(&JwsHeader::new(key.algorithm().jws_name(), Some("JWT")), claims, key)
}

/// Why `getServiceAuth` refused or why a service token was refused. One variant per check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceAuthError {
    /// `aud` is not a DID or `did#service`.
    #[error("aud must be a valid atproto DID or did#serviceId reference")]
    BadAudienceParam,
    /// `lxm` is not an NSID.
    #[error("lxm must be a valid NSID")]
    BadLxmParam,
    /// `exp` is not an integer.
    #[error("exp must be an integer")]
    BadExpParam,
    /// `exp` is in the past.
    #[error("expiration is in past")]
    ExpirationInPast,
    /// `exp` is more than an hour ahead.
    #[error("cannot request a token with an expiration more than an hour in the future")]
    ExpirationTooFar,
    /// No `lxm` and `exp` more than a minute ahead.
    #[error("cannot request a method-less token with an expiration more than a minute in the future")]
    MethodlessTooLong,
    /// A protected (account-management) method.
    #[error("cannot request a service auth token for the following protected method: {0}")]
    ProtectedMethod(String),
    /// A privileged method from a non-privileged app-password session.
    #[error("insufficient access to request a service auth token for the following method: {0}")]
    InsufficientAccess(String),
    /// An OAuth session without a permission covering the request (RS-SCOPE-01): the scope that
    /// would, as the reference names it (`rpc:<lxm>?aud=<aud>`).
    #[error("Missing required scope \"{0}\"")]
    ScopeMissing(String),
    /// The server does not hold the account's signing key.
    #[error("the account has no signing key on this server")]
    NoSigningKey,
    /// The account does not exist.
    #[error("Account not found")]
    AccountNotFound,
    /// Not a compact JWS with JSON parts and the required claims.
    #[error("poorly formatted jwt")]
    BadJwt,
    /// `typ` other than `JWT` (e.g. `at+jwt`, `refresh+jwt`, `dpop+jwt`).
    #[error("Invalid jwt type")]
    BadJwtType,
    /// `exp` has passed.
    #[error("jwt expired")]
    JwtExpired,
    /// `aud` is not this service.
    #[error("jwt audience does not match service did")]
    BadJwtAudience,
    /// `lxm` missing or not the called method.
    #[error("bad jwt lexicon method (\"lxm\")")]
    BadJwtLexiconMethod,
    /// `iss` is not a DID (or carries a fragment).
    #[error("jwt iss is not a valid did")]
    BadJwtIss,
    /// The issuer's DID document could not be resolved or has no usable `#atproto` key.
    #[error("could not resolve iss did or its signing key")]
    IssuerKey,
    /// The signature does not verify with the issuer's current key.
    #[error("jwt signature does not match jwt issuer")]
    BadJwtSignature,
    /// `jti` already used.
    #[error("jwt replayed")]
    JwtReplayed,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[source] jws::JwsError),
}

impl ServiceAuthError {
    /// The XRPC error (names of the reference `getServiceAuth` and `xrpc-server` `verifyJwt`).
    pub fn xrpc_error(&self) -> XrpcError {
        let msg = self.to_string();
        let (status, error) = match self {
            Self::BadAudienceParam
            | Self::BadLxmParam
            | Self::BadExpParam
            | Self::ProtectedMethod(_)
            | Self::InsufficientAccess(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            Self::ExpirationInPast | Self::ExpirationTooFar | Self::MethodlessTooLong => {
                (StatusCode::BAD_REQUEST, "BadExpiration")
            }
            Self::ScopeMissing(_) => (StatusCode::FORBIDDEN, "ScopeMissingError"),
            Self::AccountNotFound => (StatusCode::FORBIDDEN, "AccountNotFound"),
            Self::BadJwt => (StatusCode::UNAUTHORIZED, "BadJwt"),
            Self::BadJwtType => (StatusCode::UNAUTHORIZED, "BadJwtType"),
            Self::JwtExpired => (StatusCode::UNAUTHORIZED, "JwtExpired"),
            Self::BadJwtAudience => (StatusCode::UNAUTHORIZED, "BadJwtAudience"),
            Self::BadJwtLexiconMethod => (StatusCode::UNAUTHORIZED, "BadJwtLexiconMethod"),
            Self::BadJwtIss => (StatusCode::UNAUTHORIZED, "BadJwtIss"),
            Self::IssuerKey => (StatusCode::UNAUTHORIZED, "AuthenticationRequired"),
            Self::BadJwtSignature => (StatusCode::UNAUTHORIZED, "BadJwtSignature"),
            Self::JwtReplayed => (StatusCode::UNAUTHORIZED, "JwtReplayed"),
            Self::NoSigningKey | Self::Store(_) | Self::Sign(_) => {
                return XrpcError::internal("service auth", self);
            }
        };
        XrpcError::new(status, error, msg)
    }
}

fn valid_aud(aud: &str) -> bool {
    let (did, fragment) = match aud.split_once('#') {
        Some((d, f)) => (d, Some(f)),
        None => (aud, None),
    };
    Did::new(did).is_ok()
        && fragment.is_none_or(|f| {
            !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        })
}

impl AuthServer {
    /// `com.atproto.server.getServiceAuth` (SVC-07): a service JWT for the caller's account.
    pub async fn get_service_auth(
        &self,
        auth: &SessionAuth,
        aud: &str,
        lxm: Option<&str>,
        exp: Option<i64>,
    ) -> Result<String, ServiceAuthError> {
        if !valid_aud(aud) {
            return Err(ServiceAuthError::BadAudienceParam);
        }
        if let Some(l) = lxm {
            atauth_identity::Nsid::new(l).map_err(|_| ServiceAuthError::BadLxmParam)?;
        }
        match auth {
            SessionAuth::Legacy(a) => {
                if lxm.is_some_and(is_privileged_method) && a.scope == LegacyScope::AppPass {
                    return Err(ServiceAuthError::InsufficientAccess(lxm.unwrap_or_default().to_owned()));
                }
            }
            SessionAuth::OAuth(a) => {
                // RS-SCOPE-01: an `rpc:` permission for this method at this audience (a token
                // without `lxm` needs `rpc:*`), or the transitional scopes (SCOPE-03).
                let access = atauth_oauth::scope::Access::rpc(lxm.unwrap_or("*"), aud);
                a.require(&access).map_err(|missing| ServiceAuthError::ScopeMissing(missing.0))?;
            }
        }
        let now = self.now();
        if let Some(exp) = exp {
            let diff = exp - now;
            if diff < 0 {
                return Err(ServiceAuthError::ExpirationInPast);
            } else if diff > MAX_LIFETIME_SECS {
                return Err(ServiceAuthError::ExpirationTooFar);
            } else if lxm.is_none() && diff > DEFAULT_LIFETIME_SECS {
                return Err(ServiceAuthError::MethodlessTooLong);
            }
        }
        if let Some(l) = lxm
            && PROTECTED_METHODS.contains(&l)
        {
            return Err(ServiceAuthError::ProtectedMethod(l.to_owned()));
        }
        let did = match auth {
            SessionAuth::Legacy(a) => &a.did,
            SessionAuth::OAuth(a) => &a.did,
        };
        let account =
            self.stores().accounts.account_by_did(did).await?.ok_or(ServiceAuthError::AccountNotFound)?;
        let hex = account.signing_key_hex.as_ref().ok_or(ServiceAuthError::NoSigningKey)?;
        let key = PrivateKey::from_hex(Algorithm::Es256k, hex.expose_secret())
            .map_err(|_| ServiceAuthError::NoSigningKey)?;
        let claims = ServiceClaims {
            iat: now,
            iss: account.did,
            aud: aud.to_owned(),
            exp: exp.unwrap_or(now + DEFAULT_LIFETIME_SECS),
            lxm: lxm.map(str::to_owned),
            jti: hex::encode(atauth_crypto::random::random_bytes::<16>()),
        };
        sign_service_jwt(&key, &claims).map_err(ServiceAuthError::Sign)
    }
}

/// A caller authenticated by a service JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    /// The verified claims; `iss` is the caller's account DID.
    pub claims: ServiceClaims,
}

/// Verifies service JWTs at a receiving service (SVC-05/06).
#[derive(Clone)]
pub struct ServiceAuthVerifier {
    own_did: String,
    accept_bare_did: bool,
    dids: Arc<dyn DidResolver>,
    replay: Arc<dyn ReplayStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ServiceAuthVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuthVerifier").field("own_did", &self.own_did).finish_non_exhaustive()
    }
}

impl ServiceAuthVerifier {
    /// A verifier for the service `own_did` (with its `#service` fragment, e.g.
    /// `did:web:feed.example.com#bsky_fg`), resolving issuers through `dids` (use a cached resolver)
    /// and recording `jti`s in `replay`.
    pub fn new(
        own_did: impl Into<String>,
        dids: Arc<dyn DidResolver>,
        replay: Arc<dyn ReplayStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { own_did: own_did.into(), accept_bare_did: false, dids, replay, clock }
    }

    /// Also accept `aud` equal to the DID without its fragment (legacy tokens, T-27). Off by default.
    #[must_use]
    pub fn accept_bare_did_audience(mut self, yes: bool) -> Self {
        self.accept_bare_did = yes;
        self
    }

    /// Verifies `token` for a call of method `lxm`.
    pub async fn verify(&self, token: &str, lxm: &str) -> Result<ServiceCaller, ServiceAuthError> {
        let jws = jws::decode(token).map_err(|_| ServiceAuthError::BadJwt)?;
        if let Some(typ) = jws.header().typ.as_deref()
            && !typ.eq_ignore_ascii_case("jwt")
        {
            return Err(ServiceAuthError::BadJwtType);
        }
        jws.algorithm().map_err(|_| ServiceAuthError::BadJwt)?;
        let claims: ServiceClaims = jws.claims().map_err(|_| ServiceAuthError::BadJwt)?;
        let now = self.clock.unix_now();
        if now > claims.exp {
            return Err(ServiceAuthError::JwtExpired);
        }
        let bare = self.own_did.split('#').next().unwrap_or_default();
        if claims.aud != self.own_did && !(self.accept_bare_did && claims.aud == bare) {
            return Err(ServiceAuthError::BadJwtAudience);
        }
        if claims.lxm.as_deref() != Some(lxm) {
            return Err(ServiceAuthError::BadJwtLexiconMethod);
        }
        let iss = Did::new(claims.iss.as_str()).map_err(|_| ServiceAuthError::BadJwtIss)?;
        let key =
            |doc: atauth_identity::DidDocument| doc.signing_key().map_err(|_| ServiceAuthError::IssuerKey);
        let cached = key(self.dids.resolve_did(&iss).await.map_err(|_| ServiceAuthError::IssuerKey)?)?;
        if jws.verify(&cached, SignaturePolicy::RequireLowS).is_err() {
            // One fresh resolution for a rotated key (SVC-05), then fail.
            let fresh =
                key(self.dids.resolve_did_fresh(&iss).await.map_err(|_| ServiceAuthError::IssuerKey)?)?;
            if fresh == cached || jws.verify(&fresh, SignaturePolicy::RequireLowS).is_err() {
                return Err(ServiceAuthError::BadJwtSignature);
            }
        }
        let mut material = Vec::with_capacity(claims.iss.len() + claims.jti.len() + 16);
        material.extend_from_slice(b"service-jwt\0");
        material.extend_from_slice(claims.iss.as_bytes());
        material.push(0);
        material.extend_from_slice(claims.jti.as_bytes());
        let replay_key = atauth_crypto::hash::sha256(&material);
        if !self.replay.check_and_record(replay_key, claims.exp + 1, now).await? {
            return Err(ServiceAuthError::JwtReplayed);
        }
        Ok(ServiceCaller { claims })
    }
}
