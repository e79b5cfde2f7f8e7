//! `POST /oauth/par` — Pushed Authorization Requests (RFC 9126) under the atproto profile.
//!
//! Implements checklist AS-PAR-01 … AS-PAR-05, AS-PAR-07 (code-challenge replay) and AS-PAR-08, with
//! DPoP required from PAR on (AS-PAR-04, T-20). The request is validated completely before anything
//! is stored; a rejected request leaves no trace but a replay-store entry for its DPoP `jti`.
//!
//! Order: DPoP (nonce first, so a nonce retry is never flagged, T-07) → client metadata → client
//! authentication (verified, not yet recorded; the prelude in [`crate::client`]) → parameters (the
//! typed [`PushedAuthorizationRequest`], then its values) → record assertion `jti` and PKCE
//! challenge → store the request.

use atauth_identity::{Did, Handle};
use atauth_oauth::redirect::redirect_uri_matches;
use atauth_oauth::wire::{ParamError, Params, PushedAuthorizationRequest};
use atauth_oauth::{OAuthErrorCode, ParResponse, Permission, Scope, ScopeSet};

use crate::client::{ClientError, ClientPreludeError};
use crate::dpop::{DpopCheckError, DpopInput};
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::store::{AuthorizationRequest, PendingRequest, StoreError};

/// The `request_uri` prefix (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a used PKCE challenge is remembered (AS-PAR-07; REF 1 day × 1.1).
pub const CODE_CHALLENGE_REPLAY_SECS: i64 = 95_040;

/// Why a PAR request was refused. One variant per failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParError {
    /// The prelude failed: DPoP (AS-PAR-04), `client_id`, the client's metadata (AS-CMD-01/02) or
    /// its authentication (AS-PAR-02).
    #[error(transparent)]
    Client(#[from] ClientPreludeError),
    /// A parameter was repeated, or `response_type` is not `code`.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// `request_uri` inside PAR (AS-PAR-05).
    #[error("request_uri must not be sent to the PAR endpoint")]
    RequestUriInPar,
    /// `request` (JAR) is not supported.
    #[error("request objects are not supported")]
    RequestObjectNotSupported,
    /// An OpenID Connect parameter (`nonce`, `claims`, `id_token_hint`) (AS-PAR-03, REF).
    #[error("OpenID Connect parameter {0:?} is not supported")]
    OidcParameter(&'static str),
    /// No `code_challenge` (AS-PAR-03).
    #[error("code_challenge is required (PKCE S256)")]
    MissingCodeChallenge,
    /// `code_challenge_method` is not `S256` (missing means `plain`, which is refused).
    #[error("code_challenge_method must be S256")]
    UnsupportedChallengeMethod,
    /// The challenge is not 43 base64url characters (a SHA-256 digest).
    #[error("code_challenge is not a valid S256 challenge")]
    InvalidCodeChallenge,
    /// The challenge was used before (AS-PAR-07).
    #[error("code_challenge was already used")]
    CodeChallengeReused,
    /// No `redirect_uri` and the client registered more than one.
    #[error("redirect_uri is required")]
    MissingRedirectUri,
    /// `redirect_uri` matches no registered URI (T-18).
    #[error("redirect_uri does not match any registered redirect URI")]
    RedirectUriMismatch,
    /// `state` is missing (SPEC-OAUTH requires it).
    #[error("state is required")]
    MissingState,
    /// `state` is longer than 1024 bytes.
    #[error("state is too long")]
    StateTooLong,
    /// `scope` is missing.
    #[error("scope is required and must include atproto")]
    MissingScope,
    /// `scope` does not parse (SCOPE-02).
    #[error("scope is invalid: {0}")]
    InvalidScope(String),
    /// `scope` lacks `atproto` (SCOPE-01).
    #[error("scope must include atproto")]
    ScopeWithoutAtproto,
    /// `openid` requested (AS-PAR-03, REF).
    #[error("openid is not supported")]
    OpenIdScope,
    /// A scope the client's metadata does not declare (SCOPE-12, T-23).
    #[error("scope {0:?} is not declared in the client metadata")]
    ScopeNotDeclared(String),
    /// A scope this server does not support (a resource it does not know).
    #[error("scope {0:?} is not supported by this server")]
    ScopeNotSupported(String),
    /// An `include:` permission set could not be resolved or is invalid (SCOPE-10, AS-PAR-06).
    #[error(transparent)]
    PermissionSet(#[from] crate::permission_sets::PermissionSetFailure),
    /// `login_hint` is neither a handle nor a DID (AS-PAR-03).
    #[error("login_hint must be a handle or a DID")]
    InvalidLoginHint,
    /// `prompt` is not one of the supported values.
    #[error("unsupported prompt value")]
    UnsupportedPrompt,
    /// `response_mode` is not `query` or `fragment`.
    #[error("unsupported response_mode")]
    UnsupportedResponseMode,
    /// `dpop_jkt` differs from the proof's key (RFC 9449 §10.1).
    #[error("dpop_jkt does not match the DPoP proof key")]
    DpopJktMismatch,
    /// `dpop_jkt` (sent without a proof) is not a JWK SHA-256 thumbprint (RFC 9449 §10, RFC 7638).
    #[error("dpop_jkt is not a base64url JWK SHA-256 thumbprint")]
    InvalidDpopJkt,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl ParError {
    /// The wire error (the one place for this enum). User-interaction errors never come from PAR
    /// (AS-PAR-05).
    pub fn oauth_error(&self) -> OAuthError {
        use OAuthErrorCode as C;
        let bad = |code: C| OAuthError::bad_request(code, self.to_string());
        match self {
            Self::Client(e) => e.oauth_error(),
            Self::Params(e) => bad(e.oauth_error_code()),
            Self::Store(e) => crate::error::internal("par store", e),
            Self::MissingScope
            | Self::InvalidScope(_)
            | Self::ScopeWithoutAtproto
            | Self::OpenIdScope
            | Self::ScopeNotDeclared(_)
            | Self::ScopeNotSupported(_)
            | Self::PermissionSet(_) => bad(C::InvalidScope),
            Self::RequestObjectNotSupported => bad(C::Other("request_not_supported".into())),
            Self::RequestUriInPar
            | Self::OidcParameter(_)
            | Self::MissingCodeChallenge
            | Self::UnsupportedChallengeMethod
            | Self::InvalidCodeChallenge
            | Self::CodeChallengeReused
            | Self::MissingRedirectUri
            | Self::RedirectUriMismatch
            | Self::MissingState
            | Self::StateTooLong
            | Self::InvalidLoginHint
            | Self::UnsupportedPrompt
            | Self::UnsupportedResponseMode
            | Self::DpopJktMismatch
            | Self::InvalidDpopJkt => bad(C::InvalidRequest),
        }
    }
}

/// The scopes this server understands (besides the configured `scopes_supported`): granular
/// permissions of the atproto permission spec, and `include:` permission sets (resolved after the
/// other checks, SCOPE-10).
pub(crate) fn scope_supported(server: &AuthServer, scope: &Scope) -> bool {
    if server.config().scopes_supported.iter().any(|s| s == scope.as_str()) {
        return true;
    }
    matches!(
        scope.permission(),
        Ok(Permission::Repo(_)
            | Permission::Rpc(_)
            | Permission::Blob(_)
            | Permission::Account(_)
            | Permission::Identity(_)
            | Permission::Include(_))
    )
}

/// Validates a requested scope string against the client's metadata and this server (AS-PAR-03).
pub(crate) fn check_scope(
    server: &AuthServer,
    requested: &str,
    declared: &ScopeSet,
) -> Result<ScopeSet, ParError> {
    let set = ScopeSet::parse(requested).map_err(|e| ParError::InvalidScope(e.to_string()))?;
    if set.contains("openid") {
        return Err(ParError::OpenIdScope);
    }
    if !set.has_atproto() {
        return Err(ParError::ScopeWithoutAtproto);
    }
    for s in set.iter() {
        if !declared.contains(s.as_str()) {
            return Err(ParError::ScopeNotDeclared(s.as_str().to_owned()));
        }
        if !scope_supported(server, s) {
            return Err(ParError::ScopeNotSupported(s.as_str().to_owned()));
        }
    }
    Ok(set)
}

/// Normalises a `login_hint`: a DID as is, a handle lowercased without `@` (ID-HANDLE-02).
pub(crate) fn normalize_login_hint(hint: &str) -> Option<String> {
    if hint.starts_with("did:") {
        return Did::new(hint).ok().map(Did::into_string);
    }
    Handle::parse_user_input(hint).ok().map(Handle::into_string)
}

/// A JWK SHA-256 thumbprint (RFC 7638) in base64url: 43 characters, like an S256 challenge.
fn is_sha256_thumbprint(jkt: &str) -> bool {
    is_s256_challenge(jkt)
}

fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AuthServer {
    /// Handles a pushed authorization request.
    pub async fn par(&self, params: &Params, dpop: &DpopInput<'_>) -> Result<ParResponse, ParError> {
        let now = self.now();
        // RFC 9449 §10.1: a PAR may bind its code by `dpop_jkt` alone, without a proof (as the
        // reference allows); with neither, DPoP is missing (AS-PAR-04, docs/DEVIATIONS.md). With
        // both, they must name the same key (checked below).
        let jkt_param = params.get("dpop_jkt").ok().flatten();
        let jkt = match (self.prelude_dpop(dpop, now).await, jkt_param) {
            (Ok(proof), _) => proof.jkt,
            (Err(ClientPreludeError::Dpop(DpopCheckError::Missing)), Some(jkt)) => {
                if !is_sha256_thumbprint(jkt) {
                    return Err(ParError::InvalidDpopJkt);
                }
                jkt.to_owned()
            }
            (Err(e), _) => return Err(e.into()),
        };
        let client = self.authenticate_client(params, &jkt, now).await?;
        let metadata = &client.client.metadata;

        // Parameters PAR must not carry at all (AS-PAR-05, REF), refused before the request is read.
        if params.contains("request_uri") {
            return Err(ParError::RequestUriInPar);
        }
        if params.contains("request") {
            return Err(ParError::RequestObjectNotSupported);
        }
        for oidc in ["nonce", "claims", "id_token_hint"] {
            if params.contains(oidc) {
                return Err(ParError::OidcParameter(oidc));
            }
        }
        let request = PushedAuthorizationRequest::from_params(params)?;
        let challenge = request.code_challenge.as_deref().ok_or(ParError::MissingCodeChallenge)?;
        if request.code_challenge_method.as_deref() != Some("S256") {
            return Err(ParError::UnsupportedChallengeMethod);
        }
        if !is_s256_challenge(challenge) {
            return Err(ParError::InvalidCodeChallenge);
        }
        let redirect_uri = match request.redirect_uri.as_deref() {
            Some(r) => {
                if !metadata.redirect_uris.iter().any(|reg| redirect_uri_matches(reg, r)) {
                    return Err(ParError::RedirectUriMismatch);
                }
                r.to_owned()
            }
            None => match metadata.redirect_uris.as_slice() {
                [only] => only.clone(),
                _ => return Err(ParError::MissingRedirectUri),
            },
        };
        let state = request.state.as_deref().ok_or(ParError::MissingState)?;
        if state.len() > 1024 {
            return Err(ParError::StateTooLong);
        }
        let declared = metadata.scope_set().map_err(|e| ClientPreludeError::from(ClientError::Invalid(e)))?;
        let scope = check_scope(self, request.scope.as_deref().ok_or(ParError::MissingScope)?, &declared)?;
        let login_hint = match request.login_hint.as_deref() {
            Some(h) => Some(normalize_login_hint(h).ok_or(ParError::InvalidLoginHint)?),
            None => None,
        };
        let prompt = request.prompt.as_deref();
        if prompt.is_some_and(|p| !matches!(p, "none" | "login" | "consent" | "select_account" | "create")) {
            return Err(ParError::UnsupportedPrompt);
        }
        let response_mode = request.response_mode.as_deref();
        if response_mode.is_some_and(|m| !matches!(m, "query" | "fragment")) {
            return Err(ParError::UnsupportedResponseMode);
        }
        if request.dpop_jkt.as_deref().is_some_and(|j| j != jkt) {
            return Err(ParError::DpopJktMismatch);
        }
        // Last of the checks, as it may reach the network: every permission set resolves and is
        // valid (SCOPE-10; a set that fails is `invalid_scope` and nothing is stored).
        self.permission_sets(&scope).await?;

        // Everything checked: record one-time values, then store.
        client.record(self.inner.stores.replay.as_ref(), now).await?;
        let mut key_input = b"pkce\0".to_vec();
        key_input.extend_from_slice(challenge.as_bytes());
        let challenge_key = atauth_crypto::hash::sha256(key_input);
        let challenge_expires = now + CODE_CHALLENGE_REPLAY_SECS;
        let lifetime = i64::try_from(self.config().lifetimes.par_request.as_secs()).unwrap_or(300);
        // Time first ([`crate::ids`]): inserts of pushed requests append to one page.
        let id = crate::ids::time_ordered("req-", self.inner.clock.now());
        let request = PendingRequest {
            id: id.clone(),
            request: AuthorizationRequest {
                client_id: request.client_id.clone(),
                redirect_uri,
                scope: scope.iter().map(Scope::as_str).collect::<Vec<_>>().join(" "),
                state: Some(state.to_owned()),
                code_challenge: challenge.to_owned(),
                login_hint,
                prompt: prompt.map(str::to_owned),
                response_mode: response_mode.map(str::to_owned),
            },
            dpop_jkt: jkt,
            client_auth: client.auth.binding,
            created_at: now,
            expires_at: now + lifetime,
            device_id: None,
        };
        let stores = &self.inner.stores;
        // One write where one backend holds both (issue 18); the same checks either way.
        let fresh = match stores.request_replay() {
            Some(both) => both.put_request_once(request, challenge_key, challenge_expires, now).await,
            None => match stores.replay.check_and_record(challenge_key, challenge_expires, now).await {
                Ok(true) => stores.requests.put_request(request).await.map(|()| true),
                other => other,
            },
        }
        .map_err(ParError::Store)?;
        if !fresh {
            return Err(ParError::CodeChallengeReused);
        }
        metrics::counter!("atauth_par_requests_total").increment(1);
        Ok(ParResponse {
            request_uri: format!("{REQUEST_URI_PREFIX}{id}"),
            expires_in: lifetime.unsigned_abs(),
        })
    }
}
