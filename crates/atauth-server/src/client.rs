//! Client metadata discovery (AS-CMD-01 … 03) and client authentication (AS-CAUTH-01 … 05).
//!
//! `https://` client ids are fetched through the SSRF-safe client: no redirects, status 200 only,
//! `application/json` only, a size cap (5 KiB by default) and timeouts. The document is validated with
//! [`atauth_oauth::ClientMetadata::validate`] (every CL-MD rule), then cached: parsed in process
//! and as JSON in the [`ClientMetadataCache`] store (it survives restarts), both for the configured TTL
//! (10 minutes by default, as the reference). Errors and invalid documents are never cached.
//! Loopback client ids (`http://localhost?…`) get the virtual document of CL-MD-LOOP-04 without a fetch.
//!
//! `private_key_jwt` assertions (RFC 7523) are verified against the client's `jwks` or `jwks_uri`:
//! `kid` required, `alg` the declared one, `iss` = `sub` = `client_id`, `aud` = our issuer, `iat`
//! present and at most 60 s old with 30 s allowance for clocks ahead of ours (T-06), `exp` (if sent) in
//! the future, and the `jti` recorded in the replay store until the assertion can no longer be accepted.
//!
//! PAR, token and revocation open with the same prelude, here once: the DPoP proof
//! ([`AuthServer::prelude_dpop`](crate::AuthServer)), then `client_id`, client resolution and
//! authentication (`authenticate_client`, returning an [`AuthenticatedClient`]), whose assertion
//! `jti` the endpoint records once its own checks have passed. Failures are [`ClientPreludeError`].

use std::sync::Arc;
use std::time::Duration;

use atauth_crypto::dpop::VerifiedDpop;
use atauth_crypto::{Algorithm, Jwks, PublicKey, SignaturePolicy, hash::sha256, jws};
use atauth_identity::http::{HttpError, SafeHttpClient};
use atauth_oauth::wire::{ClientAuthentication, ParamError, Params};
use atauth_oauth::{
    ClientId, ClientIdError, ClientIdPolicy, ClientMetadata, ClientMetadataError, OAuthErrorCode,
    TokenEndpointAuthMethod,
};
use http::StatusCode;
use url::Url;

use crate::config::ServerConfig;
use crate::dpop::{DpopCheckError, DpopInput};
use crate::error::OAuthError;
use crate::store::{ClientAuthBinding, ClientMetadataCache, StoreError};

/// `client_assertion_type` for `private_key_jwt` (RFC 7523 §2.2).
pub const JWT_BEARER: &str = atauth_oauth::wire::CLIENT_ASSERTION_TYPE_JWT_BEARER;

/// A client whose metadata passed validation.
#[derive(Debug, Clone)]
pub struct ResolvedClient {
    /// The parsed client id.
    pub client_id: ClientId,
    /// The validated document (virtual for loopback clients).
    pub metadata: ClientMetadata,
    /// How it authenticates.
    pub auth_method: TokenEndpointAuthMethod,
    /// Its public keys (confidential clients): inline `jwks` or the fetched `jwks_uri`.
    pub jwks: Option<Jwks>,
}

impl ResolvedClient {
    /// Whether the metadata lists this grant type.
    pub fn has_grant(&self, grant: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant)
    }

    /// Whether this is a confidential client.
    pub fn is_confidential(&self) -> bool {
        self.auth_method == TokenEndpointAuthMethod::PrivateKeyJwt
    }
}

/// Why a client could not be resolved. One variant per failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `client_id` is not a valid atproto client id (CL-MD-01/02, CL-MD-LOOP-01/02).
    #[error("invalid client_id: {0}")]
    InvalidClientId(#[source] ClientIdError),
    /// Fetching the document failed: network, redirect, status, content type, size (AS-CMD-01).
    #[error("could not fetch client metadata: {0}")]
    Fetch(#[source] HttpError),
    /// The document fails validation (AS-CMD-02).
    #[error("invalid client metadata: {0}")]
    Invalid(#[source] ClientMetadataError),
    /// Fetching `jwks_uri` failed.
    #[error("could not fetch the client's jwks_uri: {0}")]
    Jwks(#[source] HttpError),
    /// The cache store failed.
    #[error("client metadata cache failed: {0}")]
    Store(#[source] StoreError),
}

impl ClientError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::InvalidClientId(e) => OAuthError::bad_request(OAuthErrorCode::InvalidClient, e.to_string()),
            Self::Fetch(e) => OAuthError::bad_request(
                OAuthErrorCode::InvalidClientMetadata,
                format!("Unable to obtain client metadata: {}", describe_fetch(e)),
            ),
            Self::Invalid(e) => OAuthError::bad_request(e.oauth_error_code(), e.to_string()),
            Self::Jwks(e) => OAuthError::bad_request(
                OAuthErrorCode::InvalidClientMetadata,
                format!("Unable to obtain client jwks_uri: {}", describe_fetch(e)),
            ),
            Self::Store(e) => crate::error::internal("client metadata cache", e),
        }
    }
}

/// A client-facing description of a fetch failure (no internal addresses or causes).
fn describe_fetch(e: &HttpError) -> &'static str {
    match e {
        HttpError::Redirect { .. } => "unexpected redirect",
        HttpError::UnexpectedStatus { .. } => "unexpected HTTP status (200 required)",
        HttpError::UnexpectedContentType { .. } => "unexpected content type (application/json required)",
        HttpError::TooLarge { .. } => "document too large",
        HttpError::InvalidJson(_) => "invalid JSON",
        HttpError::Timeout => "timed out",
        HttpError::Blocked { .. }
        | HttpError::PlainHttpToNonLoopback { .. }
        | HttpError::SchemeNotAllowed { .. } => "destination not allowed",
        _ => "fetch failed",
    }
}

/// Resolves, validates and caches client metadata. See the module docs.
#[derive(Clone)]
pub struct ClientResolver {
    http: SafeHttpClient,
    cache: Arc<dyn ClientMetadataCache>,
    memo: moka::future::Cache<String, Arc<ResolvedClient>>,
    policy: ClientIdPolicy,
    ttl: Duration,
    max_bytes: usize,
}

impl std::fmt::Debug for ClientResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResolver").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl ClientResolver {
    /// A resolver using `http` and the `cache` store, with the TTL and size cap from `config`.
    pub fn new(http: SafeHttpClient, cache: Arc<dyn ClientMetadataCache>, config: &ServerConfig) -> Self {
        let ttl = config.lifetimes.client_metadata;
        Self {
            http,
            cache,
            memo: moka::future::Cache::builder().max_capacity(10_000).time_to_live(ttl).build(),
            policy: ClientIdPolicy { allow_http_loopback: config.dev_mode },
            ttl,
            max_bytes: config.max_client_metadata_bytes,
        }
    }

    /// Drops a client from both caches (e.g. after its keys changed).
    pub async fn invalidate(&self, client_id: &str) -> Result<(), StoreError> {
        self.memo.invalidate(client_id).await;
        self.cache.remove_client(client_id).await
    }

    /// Resolves `client_id` at Unix time `now`.
    pub async fn resolve(&self, client_id: &str, now: i64) -> Result<Arc<ResolvedClient>, ClientError> {
        if let Some(hit) = self.memo.get(client_id).await {
            return Ok(hit);
        }
        let id = ClientId::parse_with(client_id, self.policy).map_err(ClientError::InvalidClientId)?;
        let metadata = match &id {
            ClientId::Loopback(l) => l.metadata(),
            ClientId::Discoverable(d) => {
                let cached = self.cache.get_client(client_id, now).await.map_err(ClientError::Store)?;
                match cached.and_then(|json| serde_json::from_str::<ClientMetadata>(&json).ok()) {
                    Some(m) => m,
                    None => self
                        .http
                        .get_json_exact_200(d.url(), self.max_bytes)
                        .await
                        .map_err(ClientError::Fetch)?,
                }
            }
        };
        metadata.validate(&id).map_err(ClientError::Invalid)?;
        let auth_method = metadata.auth_method().map_err(ClientError::Invalid)?;
        let jwks = match (auth_method, &metadata.jwks, &metadata.jwks_uri) {
            (TokenEndpointAuthMethod::PrivateKeyJwt, Some(j), _) => Some(j.clone()),
            (TokenEndpointAuthMethod::PrivateKeyJwt, None, Some(uri)) => {
                let url =
                    Url::parse(uri).map_err(|_| ClientError::Invalid(ClientMetadataError::InvalidJwksUri))?;
                Some(self.http.get_json_exact_200::<Jwks>(&url, 64 * 1024).await.map_err(ClientError::Jwks)?)
            }
            _ => None,
        };
        if matches!(id, ClientId::Discoverable(_)) {
            let json = serde_json::to_string(&metadata)
                .map_err(|e| ClientError::Store(StoreError::Backend(Box::new(e))))?;
            let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(600);
            self.cache.put_client(client_id, &json, now + ttl).await.map_err(ClientError::Store)?;
        }
        let resolved = Arc::new(ResolvedClient { client_id: id, metadata, auth_method, jwks });
        self.memo.insert(client_id.to_owned(), Arc::clone(&resolved)).await;
        Ok(resolved)
    }
}

// ------------------------------------------------------------------------ client authentication ---

/// Why client authentication failed. One variant per check (AS-CAUTH-01 … 05, AS-PAR-02, AS-TOK-02).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// A public client sent an assertion (its method is `none`).
    #[error("client authentication method mismatch: the client is public (none)")]
    UnexpectedAssertion,
    /// A confidential client sent no assertion.
    #[error("client authentication required (private_key_jwt)")]
    MissingAssertion,
    /// `client_assertion_type` is not the JWT bearer type.
    #[error("unsupported client_assertion_type")]
    WrongAssertionType,
    /// The assertion is not a well-formed JWS.
    #[error("client_assertion is malformed")]
    Malformed,
    /// No `kid` in the header (CL-MD-CONF-04).
    #[error("kid required in client_assertion")]
    MissingKid,
    /// The `kid` names no key of the client.
    #[error("client_assertion kid is not in the client's keys")]
    UnknownKid,
    /// `alg` is not the client's `token_endpoint_auth_signing_alg` (or unsupported).
    #[error("client_assertion alg {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// The key is not a usable EC key.
    #[error("client key is invalid")]
    InvalidKey,
    /// Signature does not verify.
    #[error("client_assertion signature is invalid")]
    BadSignature,
    /// Claims are not a JSON object of the expected types.
    #[error("client_assertion claims are invalid")]
    InvalidClaims,
    /// `iss` ≠ `client_id`.
    #[error("client_assertion iss must be the client_id")]
    IssuerMismatch,
    /// `sub` ≠ `client_id`.
    #[error("client_assertion sub must be the client_id")]
    SubjectMismatch,
    /// `aud` is not our issuer (T-09: exact string).
    #[error("client_assertion aud must be the issuer")]
    AudienceMismatch,
    /// No `jti`.
    #[error("client_assertion jti is required")]
    MissingJti,
    /// `iat` is beyond the allowed future skew (T-06).
    #[error("client_assertion iat is in the future")]
    IssuedInFuture,
    /// `iat` is older than the maximum age (AS-CAUTH-03).
    #[error("client_assertion is too old")]
    TooOld,
    /// `exp` has passed.
    #[error("client_assertion has expired")]
    Expired,
    /// The `jti` was used before (AS-CAUTH-02, T-07).
    #[error("client_assertion jti was already used")]
    Replayed,
    /// The DPoP key equals the client-authentication key (AS-CAUTH-05).
    #[error("the DPoP key must differ from the client authentication key")]
    DpopKeyIsClientKey,
    /// The replay store failed.
    #[error("replay store failed: {0}")]
    Store(#[source] StoreError),
}

impl ClientAuthError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::Store(e) => crate::error::internal("client assertion replay store", e),
            Self::DpopKeyIsClientKey => {
                OAuthError::bad_request(OAuthErrorCode::InvalidRequest, self.to_string())
            }
            Self::UnexpectedAssertion
            | Self::MissingAssertion
            | Self::WrongAssertionType
            | Self::Malformed
            | Self::MissingKid
            | Self::UnknownKid
            | Self::AlgorithmNotAllowed(_)
            | Self::InvalidKey
            | Self::BadSignature
            | Self::InvalidClaims
            | Self::IssuerMismatch
            | Self::SubjectMismatch
            | Self::AudienceMismatch
            | Self::MissingJti
            | Self::IssuedInFuture
            | Self::TooOld
            | Self::Expired
            | Self::Replayed => {
                OAuthError::new(StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidClient, self.to_string())
            }
        }
    }
}

/// A verified (not yet recorded) client authentication.
#[derive(Debug, Clone)]
pub struct VerifiedClientAuth {
    /// What everything issued from this request is bound to.
    pub binding: ClientAuthBinding,
    replay: Option<([u8; 32], i64)>,
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// Checks the client's credentials without recording anything (so a request refused later leaves
/// no trace). `dpop_jkt` is the request's DPoP key (AS-CAUTH-05).
pub(crate) fn verify_client_auth(
    config: &ServerConfig,
    client: &ResolvedClient,
    creds: &ClientAuthentication,
    dpop_jkt: &str,
    now: i64,
) -> Result<VerifiedClientAuth, ClientAuthError> {
    use ClientAuthError as E;
    if client.auth_method == TokenEndpointAuthMethod::None {
        if creds.client_assertion.is_some() || creds.client_assertion_type.is_some() {
            return Err(E::UnexpectedAssertion);
        }
        return Ok(VerifiedClientAuth { binding: ClientAuthBinding::None, replay: None });
    }
    let assertion = creds.client_assertion.as_deref().ok_or(E::MissingAssertion)?;
    if creds.client_assertion_type.as_deref() != Some(JWT_BEARER) {
        return Err(E::WrongAssertionType);
    }
    let token = jws::decode(assertion).map_err(|_| E::Malformed)?;
    let header = token.header();
    let kid = header.kid.as_deref().ok_or(E::MissingKid)?;
    let alg =
        Algorithm::from_jws_name(&header.alg).ok_or_else(|| E::AlgorithmNotAllowed(header.alg.clone()))?;
    if client
        .metadata
        .token_endpoint_auth_signing_alg
        .as_deref()
        .is_some_and(|declared| declared != header.alg)
    {
        return Err(E::AlgorithmNotAllowed(header.alg.clone()));
    }
    let jwk = client.jwks.as_ref().and_then(|j| j.find(kid)).ok_or(E::UnknownKid)?;
    let key = PublicKey::from_jwk(jwk).map_err(|_| E::InvalidKey)?;
    if key.algorithm() != alg {
        return Err(E::AlgorithmNotAllowed(header.alg.clone()));
    }
    token.verify(&key, SignaturePolicy::AllowHighS).map_err(|_| E::BadSignature)?;
    let claims: AssertionClaims = token.claims().map_err(|_| E::InvalidClaims)?;
    let client_id = client.client_id.as_str();
    if claims.iss.as_deref() != Some(client_id) {
        return Err(E::IssuerMismatch);
    }
    if claims.sub.as_deref() != Some(client_id) {
        return Err(E::SubjectMismatch);
    }
    let issuer = config.issuer.as_str();
    let aud_ok = match &claims.aud {
        Some(serde_json::Value::String(a)) => a == issuer,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(E::AudienceMismatch);
    }
    let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256).ok_or(E::MissingJti)?;
    let iat = claims.iat.ok_or(E::InvalidClaims)?;
    let skew = i64::try_from(config.client_assertion_skew.as_secs()).unwrap_or(30);
    let max_age = i64::try_from(config.client_assertion_max_age.as_secs()).unwrap_or(60);
    if iat > now + skew {
        return Err(E::IssuedInFuture);
    }
    if iat < now - max_age - skew {
        return Err(E::TooOld);
    }
    if let Some(exp) = claims.exp
        && exp <= now - skew
    {
        return Err(E::Expired);
    }
    let jkt = key.thumbprint();
    if jkt == dpop_jkt {
        return Err(E::DpopKeyIsClientKey);
    }
    // Remember the jti for as long as this assertion could be accepted.
    let until = (iat + max_age + skew).max(claims.exp.unwrap_or(0) + skew).max(now + 1);
    let mut input = Vec::with_capacity(client_id.len() + jti.len() + 20);
    input.extend_from_slice(b"client-assertion\0");
    input.extend_from_slice(client_id.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    Ok(VerifiedClientAuth {
        binding: ClientAuthBinding::PrivateKeyJwt { kid: kid.to_owned(), alg: header.alg.clone(), jkt },
        replay: Some((sha256(input), until)),
    })
}

/// Records the assertion's `jti` (AS-CAUTH-02). Call right before the request changes state.
async fn record_client_auth(
    replay: &dyn crate::store::ReplayStore,
    auth: &VerifiedClientAuth,
    now: i64,
) -> Result<(), ClientAuthError> {
    if let Some((key, until)) = auth.replay
        && !replay.check_and_record(key, until, now).await.map_err(ClientAuthError::Store)?
    {
        return Err(ClientAuthError::Replayed);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ prelude ---

/// Why the prelude that PAR, token and revocation share refused a request: the DPoP proof, the
/// client-authentication parameters, the client's metadata, or its authentication. The endpoint
/// errors fold it in with `#[from]`; its wire mapping is the one for all three.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientPreludeError {
    /// DPoP failed (AS-PAR-04, AS-TOK-02).
    #[error(transparent)]
    Dpop(#[from] DpopCheckError),
    /// `client_id` is missing, or a client-authentication parameter was repeated.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The client could not be resolved (AS-CMD-01/02).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Client authentication failed (AS-CAUTH-01 … 05, AS-PAR-02, AS-TOK-02).
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
    /// The assertion's `kid` names no key of the client: [`ClientAuthError::UnknownKid`], with the
    /// resolved client, so the token endpoint can revoke a family bound to a removed key (AS-CMD-04).
    #[error("{}", ClientAuthError::UnknownKid)]
    UnknownKid {
        /// The client whose keys do not include the `kid`.
        client: Arc<ResolvedClient>,
    },
}

impl ClientPreludeError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::Dpop(e) => e.oauth_error(),
            Self::Params(e) => OAuthError::bad_request(e.oauth_error_code(), e.to_string()),
            Self::Client(e) => e.oauth_error(),
            Self::ClientAuth(e) => e.oauth_error(),
            Self::UnknownKid { .. } => ClientAuthError::UnknownKid.oauth_error(),
        }
    }
}

/// A client that passed the prelude: resolved and authenticated, its assertion `jti` not yet
/// recorded (so a request refused later leaves no trace).
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// `client_id` as the request sent it (a loopback id's parsed form may be normalised).
    pub client_id: String,
    /// The resolved client: id, validated metadata, authentication method, keys.
    pub client: Arc<ResolvedClient>,
    /// The verified authentication: what everything issued is bound to (the client key, if any).
    pub auth: VerifiedClientAuth,
}

impl AuthenticatedClient {
    /// Records the assertion's `jti` (AS-CAUTH-02). Call right before the request changes state.
    pub(crate) async fn record(
        &self,
        replay: &dyn crate::store::ReplayStore,
        now: i64,
    ) -> Result<(), ClientPreludeError> {
        Ok(record_client_auth(replay, &self.auth, now).await?)
    }
}

impl crate::server::AuthServer {
    /// Prelude step one: the DPoP proof, nonce first, before any parameter is looked at, so a
    /// nonce retry is never flagged or charged (T-07, T-14).
    pub(crate) async fn prelude_dpop(
        &self,
        dpop: &DpopInput<'_>,
        now: i64,
    ) -> Result<VerifiedDpop, ClientPreludeError> {
        Ok(self.verify_dpop(dpop, None, now).await?)
    }

    /// Prelude step two: `client_id` and the assertion fields, the client's metadata, and its
    /// authentication (`none` or `private_key_jwt`), verified against `dpop_jkt` (AS-CAUTH-05;
    /// empty when the request carried no proof). Nothing is recorded yet.
    pub(crate) async fn authenticate_client(
        &self,
        params: &Params,
        dpop_jkt: &str,
        now: i64,
    ) -> Result<AuthenticatedClient, ClientPreludeError> {
        let creds = ClientAuthentication::from_params(params)?;
        let client = self.inner.clients.resolve(&creds.client_id, now).await?;
        let auth = match verify_client_auth(&self.inner.config, &client, &creds, dpop_jkt, now) {
            Ok(auth) => auth,
            Err(ClientAuthError::UnknownKid) => return Err(ClientPreludeError::UnknownKid { client }),
            Err(e) => return Err(e.into()),
        };
        Ok(AuthenticatedClient { client_id: creds.client_id, client, auth })
    }
}

impl crate::server::AuthServer {
    /// Drops a client's cached metadata (in process and in the store), so the next request fetches
    /// it again: for operators after a client announced a key change, and for tests.
    pub async fn invalidate_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.inner.clients.invalidate(client_id).await
    }
}
