//! `POST /oauth/token` — the `authorization_code` and `refresh_token` grants (AS-TOK-01 … 05,
//! AS-REF-01 … 03, AS-CODE-01/02), issuing DPoP-bound `at+jwt` access tokens (AS-FMT-02/03) and
//! opaque refresh tokens rotated on every use.
//!
//! DPoP (including the nonce) is checked before the code or refresh token is looked at, so a nonce
//! retry never burns anything (T-14). A code request that fails a binding check (client, redirect
//! URI, PKCE, DPoP key, client key) changes nothing: the code stays redeemable by its rightful client.
//! A code presented a second time revokes everything it issued (AS-CODE-02). A refresh token is
//! checked and rotated in one store transaction; a replayed or mis-bound refresh token revokes its
//! whole family (AS-REF-01/02), except the one retry of a lost response: the token the latest
//! rotation replaced, presented again within [`crate::Lifetimes::refresh_retry_grace`] by the same
//! client with the same DPoP key, gets a fresh rotation (bluesky-social/atproto#4656).

use atauth_crypto::pkce::{PkceError, PkceVerifier, verify_s256};
use atauth_oauth::wire::{
    AccessToken, AuthorizationCode, GrantType, ParamError, Params, RefreshToken, TokenRequest,
};
use atauth_oauth::{OAuthErrorCode, TokenResponse};
use serde::{Deserialize, Serialize};

use crate::client::{AuthenticatedClient, ClientPreludeError, ResolvedClient};
use crate::dpop::DpopInput;
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::store::{
    RedeemOutcome, RefreshKey, RotateOutcome, Rotation, SessionRecord, StoreError, TokenHash,
};

/// The `cnf` claim (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// DPoP key thumbprint.
    pub jkt: String,
}

/// Claims of our access tokens (AS-FMT-02). Opaque to clients (AS-FMT-01).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Our issuer.
    pub iss: String,
    /// Account DID.
    pub sub: String,
    /// The service DID (the PDS).
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Token id (`tok-…`): the stateful revocation key.
    pub jti: String,
    /// DPoP binding.
    pub cnf: Confirmation,
    /// The client.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
}

/// Why a token request was refused. One variant per failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The prelude failed: DPoP (AS-TOK-02), `client_id`, the client's metadata or its
    /// authentication (AS-TOK-02).
    #[error(transparent)]
    Client(#[from] ClientPreludeError),
    /// A parameter was repeated or is missing (`grant_type`, `code`, `redirect_uri`,
    /// `code_verifier`, `refresh_token`), or the grant type is not supported (AS-TOK-05).
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The client's metadata does not list this grant type (AS-TOK-05).
    #[error("this client is not allowed to use this grant type")]
    GrantNotAllowed,
    /// Unknown code.
    #[error("invalid code")]
    UnknownCode,
    /// Code expired (AS-CODE-01).
    #[error("code expired")]
    CodeExpired,
    /// Code used before: everything it issued was revoked (AS-CODE-02).
    #[error("code replayed")]
    CodeReused,
    /// The code was issued to another client (AS-TOK-03).
    #[error("code was not issued to this client")]
    CodeClientMismatch,
    /// `redirect_uri` differs from the authorization request's (AS-TOK-03).
    #[error("redirect_uri does not match the authorization request")]
    RedirectUriMismatch,
    /// `code_verifier` syntax (RFC 7636 §4.1).
    #[error("invalid code_verifier: {0}")]
    InvalidCodeVerifier(#[source] PkceError),
    /// PKCE S256 check failed (AS-TOK-03).
    #[error("code_verifier does not match code_challenge")]
    PkceMismatch,
    /// The DPoP key differs from the one bound at PAR (AS-TOK-03).
    #[error("DPoP key does not match the one used for the authorization request")]
    DpopKeyMismatch,
    /// The client-authentication key/method differs from PAR's (AS-TOK-03, AS-CAUTH-04).
    #[error("client authentication does not match the authorization request")]
    ClientAuthMismatch,
    /// Unknown (or revoked) refresh token.
    #[error("invalid refresh token")]
    UnknownRefreshToken,
    /// Rotated token presented again: the family was revoked (AS-REF-01).
    #[error("refresh token replayed")]
    RefreshReplayed,
    /// Refresh token or session expired (AS-REF-03); the family was revoked.
    #[error("refresh token expired")]
    RefreshExpired,
    /// Refresh presented by another client; the family was revoked (AS-REF-02).
    #[error("refresh token was not issued to this client")]
    RefreshClientMismatch,
    /// Refresh presented with another DPoP key; the family was revoked (AS-REF-02).
    #[error("DPoP key does not match the session's")]
    RefreshDpopKeyMismatch,
    /// Refresh presented with other client credentials; the family was revoked (AS-CAUTH-04).
    #[error("client authentication does not match the session's")]
    RefreshClientAuthMismatch,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
    /// A permission set of the granted scope could not be resolved or is invalid (SCOPE-10/11).
    #[error(transparent)]
    PermissionSet(#[from] crate::permission_sets::PermissionSetFailure),
}

impl TokenError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        use OAuthErrorCode as C;
        let bad = |code: C| OAuthError::bad_request(code, self.to_string());
        match self {
            Self::Client(e) => e.oauth_error(),
            Self::Params(e) => bad(e.oauth_error_code()),
            Self::Store(e) => crate::error::internal("token store", e),
            Self::InvalidCodeVerifier(_) => bad(C::InvalidRequest),
            Self::GrantNotAllowed
            | Self::UnknownCode
            | Self::CodeExpired
            | Self::CodeReused
            | Self::CodeClientMismatch
            | Self::RedirectUriMismatch
            | Self::PkceMismatch
            | Self::DpopKeyMismatch
            | Self::ClientAuthMismatch
            | Self::UnknownRefreshToken
            | Self::RefreshReplayed
            | Self::RefreshExpired
            | Self::RefreshClientMismatch
            | Self::RefreshDpopKeyMismatch
            | Self::RefreshClientAuthMismatch => bad(C::InvalidGrant),
            Self::PermissionSet(_) => bad(C::InvalidScope),
        }
    }
}

/// The fields of an `authorization_code` request, borrowed from the parsed [`TokenRequest`].
struct CodeRequest<'a> {
    code: &'a AuthorizationCode,
    redirect_uri: &'a str,
    code_verifier: &'a str,
}

/// A new refresh token: keyed to `family` when its id has the shape [`RefreshKey::new_token`]
/// needs (every family this server creates), else of the older, unkeyed format.
fn new_refresh_token(family: Option<&str>) -> RefreshToken {
    RefreshToken::new(family.and_then(RefreshKey::new_token).unwrap_or_else(|| {
        format!("{}{}", RefreshKey::PREFIX, hex::encode(atauth_crypto::random::random_bytes::<32>()))
    }))
}

/// A new access-token `jti`: time first ([`crate::ids`]), so that the store's index of current
/// `jti`s grows at one end instead of taking a random page per refresh (issue 18).
fn new_access_jti(now: std::time::SystemTime) -> String {
    crate::ids::time_ordered("tok-", now)
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

impl AuthServer {
    /// Handles a token request.
    pub async fn token(&self, params: &Params, dpop: &DpopInput<'_>) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let proof = self.prelude_dpop(dpop, now).await?;
        let grant = GrantType::from_params(params)?;
        let authenticated = match self.authenticate_client(params, &proof.jkt, now).await {
            Ok(a) => a,
            Err(ClientPreludeError::UnknownKid { client }) if grant == GrantType::RefreshToken => {
                self.revoke_if_client_key_removed(params, &client).await?;
                return Err(ClientPreludeError::UnknownKid { client }.into());
            }
            Err(e) => return Err(e.into()),
        };
        if !authenticated.client.has_grant(grant.as_str()) {
            return Err(TokenError::GrantNotAllowed);
        }
        let response = match TokenRequest::from_params(params)? {
            TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier } => {
                let request =
                    CodeRequest { code: &code, redirect_uri: &redirect_uri, code_verifier: &code_verifier };
                self.code_grant(request, &authenticated, &proof.jkt, now).await?
            }
            TokenRequest::RefreshToken { refresh_token } => {
                self.refresh_grant(&refresh_token, &authenticated, &proof.jkt, now).await?
            }
        };
        metrics::counter!("atauth_tokens_issued_total", "grant" => grant.as_str()).increment(1);
        Ok(response)
    }

    /// AS-CMD-04: a confidential family whose bound key is no longer in the client's (freshly
    /// cached, ≤ 10 minutes old) key set is revoked when the client next tries to refresh it.
    async fn revoke_if_client_key_removed(
        &self,
        params: &Params,
        client: &ResolvedClient,
    ) -> Result<(), TokenError> {
        // Only the refresh token matters here; a missing one leaves nothing to revoke.
        let Some(token) = params.get("refresh_token").map_err(ParamError::from)? else { return Ok(()) };
        let tokens = &self.inner.stores.tokens;
        let Some(session) =
            tokens.session_by_refresh(&RefreshKey::of(token)).await.map_err(TokenError::Store)?
        else {
            return Ok(());
        };
        if session.client_id != client.client_id.as_str() {
            return Ok(());
        }
        if let crate::store::ClientAuthBinding::PrivateKeyJwt { kid, .. } = &session.client_auth
            && client.jwks.as_ref().and_then(|j| j.find(kid)).is_none()
        {
            tokens.revoke_session(&session.id).await.map_err(TokenError::Store)?;
            tracing::warn!(client_id = %client.client_id, "client key removed from its metadata; session revoked");
        }
        Ok(())
    }

    fn lifetimes_for(&self, client: &ResolvedClient) -> (i64, i64) {
        let l = &self.config().lifetimes;
        if client.is_confidential() {
            (secs(l.confidential_session), secs(l.confidential_refresh))
        } else {
            (secs(l.public_session), secs(l.public_refresh))
        }
    }

    async fn code_grant(
        &self,
        request: CodeRequest<'_>,
        authenticated: &AuthenticatedClient,
        jkt: &str,
        now: i64,
    ) -> Result<TokenResponse, TokenError> {
        let (client, auth) = (authenticated.client.as_ref(), &authenticated.auth);
        let tokens = &self.inner.stores.tokens;
        let hash = TokenHash::of(request.code.expose_secret());
        let record =
            tokens.get_code(&hash).await.map_err(TokenError::Store)?.ok_or(TokenError::UnknownCode)?;
        let (session_life, refresh_life) = self.lifetimes_for(client);
        let session_id = format!("ses-{}", hex::encode(atauth_crypto::random::random_bytes::<16>()));
        let refresh = new_refresh_token(Some(&session_id));
        let access_jti = new_access_jti(self.inner.clock.now());
        let access_exp = (now + secs(self.config().lifetimes.access_token)).min(now + session_life);
        let session = SessionRecord {
            id: session_id,
            client_id: record.request.client_id.clone(),
            sub: record.sub.clone(),
            scope: record.scope.clone(),
            dpop_jkt: record.dpop_jkt.clone(),
            client_auth: record.client_auth.clone(),
            created_at: now,
            expires_at: now + session_life,
            refresh_hash: TokenHash::of(refresh.expose_secret()),
            refresh_expires_at: now + refresh_life.min(session_life),
            access_jti: access_jti.clone(),
            access_expires_at: access_exp,
            updated_at: now,
            device_id: record.device_id.clone(),
        };
        if record.used {
            // AS-CODE-02: the store revokes what the first redemption issued.
            tokens.redeem_code(&hash, now, session).await.map_err(TokenError::Store)?;
            tracing::warn!(client_id = %record.request.client_id, "authorization code replayed; session revoked");
            return Err(TokenError::CodeReused);
        }
        if record.expires_at <= now {
            return Err(TokenError::CodeExpired);
        }
        if record.request.client_id != client.client_id.as_str() {
            return Err(TokenError::CodeClientMismatch);
        }
        if request.redirect_uri != record.request.redirect_uri {
            return Err(TokenError::RedirectUriMismatch);
        }
        let verifier = PkceVerifier::parse(request.code_verifier).map_err(TokenError::InvalidCodeVerifier)?;
        if !verify_s256(&verifier, &record.request.code_challenge) {
            return Err(TokenError::PkceMismatch);
        }
        if jkt != record.dpop_jkt {
            return Err(TokenError::DpopKeyMismatch);
        }
        if auth.binding != record.client_auth {
            return Err(TokenError::ClientAuthMismatch);
        }
        // Before the code is spent: a set that no longer resolves leaves the code unredeemed.
        let access_scope = self.access_token_scope(&session.scope, false).await?;
        authenticated.record(self.inner.stores.replay.as_ref(), now).await?;
        let session_snapshot = session.clone();
        match tokens.redeem_code(&hash, now, session).await.map_err(TokenError::Store)? {
            RedeemOutcome::Redeemed => {}
            RedeemOutcome::Reused => return Err(TokenError::CodeReused),
            RedeemOutcome::Expired => return Err(TokenError::CodeExpired),
            _ => return Err(TokenError::UnknownCode),
        }
        let include_refresh = client.has_grant("refresh_token");
        Ok(self.token_response(&session_snapshot, &access_scope, include_refresh.then_some(refresh), now))
    }

    async fn refresh_grant(
        &self,
        old: &RefreshToken,
        authenticated: &AuthenticatedClient,
        jkt: &str,
        now: i64,
    ) -> Result<TokenResponse, TokenError> {
        let (client, auth) = (authenticated.client.as_ref(), &authenticated.auth);
        let (_, refresh_life) = self.lifetimes_for(client);
        authenticated.record(self.inner.stores.replay.as_ref(), now).await?;
        let tokens = &self.inner.stores.tokens;
        let key = RefreshKey::of(old.expose_secret());
        // The successor names the family, so that its rotation finds the family by id. A token of
        // the older, unkeyed format is looked up first (once per family: its successor is keyed).
        let family = match &key.family {
            Some(f) => Some(f.clone()),
            None => tokens.session_by_refresh(&key).await.map_err(TokenError::Store)?.map(|s| s.id),
        };
        let refresh = new_refresh_token(family.as_deref());
        let rotation = Rotation {
            now,
            client_id: client.client_id.as_str().to_owned(),
            dpop_jkt: jkt.to_owned(),
            client_auth: auth.binding.clone(),
            new_refresh_hash: TokenHash::of(refresh.expose_secret()),
            new_refresh_expires_at: now + refresh_life,
            new_access_jti: new_access_jti(self.inner.clock.now()),
            new_access_expires_at: now + secs(self.config().lifetimes.access_token),
            retry_grace: secs(self.config().lifetimes.refresh_retry_grace),
        };
        let outcome = tokens.rotate_refresh(&key, rotation).await.map_err(TokenError::Store)?;
        let session = match outcome {
            RotateOutcome::Rotated(s) => s,
            RotateOutcome::Retried(s) => {
                tracing::info!(client_id = %client.client_id, "refresh retried within the grace (lost response); rotated afresh");
                s
            }
            RotateOutcome::Replayed => {
                tracing::warn!(client_id = %client.client_id, "refresh token replayed; session revoked");
                return Err(TokenError::RefreshReplayed);
            }
            RotateOutcome::Expired => return Err(TokenError::RefreshExpired),
            RotateOutcome::ClientMismatch => return Err(TokenError::RefreshClientMismatch),
            RotateOutcome::DpopKeyMismatch => return Err(TokenError::RefreshDpopKeyMismatch),
            RotateOutcome::ClientAuthMismatch => return Err(TokenError::RefreshClientAuthMismatch),
            _ => return Err(TokenError::UnknownRefreshToken),
        };
        // SCOPE-11: the sets are recomputed at each refresh (a cached copy may be stale). A set that
        // cannot be had at all fails this refresh after the rotation; the client's retry within
        // the refresh retry grace gets another chance.
        let access_scope = self.access_token_scope(&session.scope, true).await?;
        Ok(self.token_response(&session, &access_scope, Some(refresh), now))
    }

    fn token_response(
        &self,
        session: &SessionRecord,
        access_scope: &str,
        refresh: Option<RefreshToken>,
        now: i64,
    ) -> TokenResponse {
        let claims = AccessTokenClaims {
            iss: self.issuer().to_owned(),
            sub: session.sub.clone(),
            aud: self.config().service_did.clone(),
            iat: now,
            exp: session.access_expires_at,
            jti: session.access_jti.clone(),
            cnf: Confirmation { jkt: session.dpop_jkt.clone() },
            client_id: session.client_id.clone(),
            scope: access_scope.to_owned(),
        };
        let claims_json = atauth_crypto::json::to_vec(&claims);
        let access = self.signing_keys().sign_access_token(&claims_json);
        TokenResponse {
            access_token: AccessToken::new(access),
            token_type: "DPoP".to_owned(),
            expires_in: Some(session.access_expires_at - now),
            refresh_token: refresh,
            scope: Some(access_scope.to_owned()),
            sub: Some(session.sub.clone()),
            extra: serde_json::Map::new(),
        }
    }
}
