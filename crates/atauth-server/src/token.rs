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
use atauth_oauth::wire::{AccessToken, RefreshToken};
use atauth_oauth::{OAuthErrorCode, TokenResponse};
use serde::{Deserialize, Serialize};

use crate::client::{ClientAuthError, ClientCredentials, ClientError, ResolvedClient, VerifiedClientAuth};
use crate::client::{record_client_auth, verify_client_auth};
use crate::dpop::{DpopCheckError, DpopInput};
use crate::error::OAuthError;
use crate::params::{DuplicateParam, Params};
use crate::server::AuthServer;
use crate::store::{RedeemOutcome, RotateOutcome, Rotation, SessionRecord, StoreError, TokenHash};

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
    /// DPoP failed (AS-TOK-02).
    #[error(transparent)]
    Dpop(#[from] DpopCheckError),
    /// A parameter was repeated.
    #[error(transparent)]
    Duplicate(#[from] DuplicateParam),
    /// No `grant_type`.
    #[error("grant_type is required")]
    MissingGrantType,
    /// Not `authorization_code` or `refresh_token` (AS-TOK-05).
    #[error("unsupported grant_type")]
    UnsupportedGrantType,
    /// No `client_id`.
    #[error("client_id is required")]
    MissingClientId,
    /// The client could not be resolved.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Client authentication failed (AS-TOK-02).
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
    /// The client's metadata does not list this grant type (AS-TOK-05).
    #[error("this client is not allowed to use this grant type")]
    GrantNotAllowed,
    /// No `code`.
    #[error("code is required")]
    MissingCode,
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
    /// No `redirect_uri`.
    #[error("redirect_uri is required")]
    MissingRedirectUri,
    /// `redirect_uri` differs from the authorization request's (AS-TOK-03).
    #[error("redirect_uri does not match the authorization request")]
    RedirectUriMismatch,
    /// No `code_verifier` (AS-TOK-03).
    #[error("code_verifier is required")]
    MissingCodeVerifier,
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
    /// No `refresh_token`.
    #[error("refresh_token is required")]
    MissingRefreshToken,
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
}

impl TokenError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        use OAuthErrorCode as C;
        let bad = |code: C| OAuthError::bad_request(code, self.to_string());
        match self {
            Self::Dpop(e) => e.oauth_error(),
            Self::Client(e) => e.oauth_error(),
            Self::ClientAuth(e) => e.oauth_error(),
            Self::Store(e) => crate::error::internal("token store", e),
            Self::UnsupportedGrantType => bad(C::UnsupportedGrantType),
            Self::Duplicate(_)
            | Self::MissingGrantType
            | Self::MissingClientId
            | Self::MissingCode
            | Self::MissingRedirectUri
            | Self::MissingCodeVerifier
            | Self::MissingRefreshToken
            | Self::InvalidCodeVerifier(_) => bad(C::InvalidRequest),
            _ => bad(C::InvalidGrant),
        }
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

impl AuthServer {
    /// Handles a token request.
    pub async fn token(&self, params: &Params, dpop: &DpopInput<'_>) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let proof = self.verify_dpop(dpop, None, now).await?;
        let grant_type = params.get("grant_type")?.ok_or(TokenError::MissingGrantType)?;
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(TokenError::UnsupportedGrantType);
        }
        let client_id = params.get("client_id")?.ok_or(TokenError::MissingClientId)?;
        let client = self.inner.clients.resolve(client_id, now).await?;
        let creds = ClientCredentials {
            assertion_type: params.get("client_assertion_type")?,
            assertion: params.get("client_assertion")?,
        };
        let auth = match verify_client_auth(&self.inner.config, &client, creds, &proof.jkt, now) {
            Ok(a) => a,
            Err(ClientAuthError::UnknownKid) if grant_type == "refresh_token" => {
                self.revoke_if_client_key_removed(params, &client).await?;
                return Err(ClientAuthError::UnknownKid.into());
            }
            Err(e) => return Err(e.into()),
        };
        if !client.has_grant(grant_type) {
            return Err(TokenError::GrantNotAllowed);
        }
        let response = if grant_type == "authorization_code" {
            self.code_grant(params, &client, &auth, &proof.jkt, now).await?
        } else {
            self.refresh_grant(params, &client, &auth, &proof.jkt, now).await?
        };
        metrics::counter!("atauth_tokens_issued_total", "grant" => if grant_type == "authorization_code" { "authorization_code" } else { "refresh_token" }).increment(1);
        Ok(response)
    }

    /// AS-CMD-04: a confidential family whose bound key is no longer in the client's (freshly
    /// cached, ≤ 10 minutes old) key set is revoked when the client next tries to refresh it.
    async fn revoke_if_client_key_removed(
        &self,
        params: &Params,
        client: &ResolvedClient,
    ) -> Result<(), TokenError> {
        let Some(token) = params.get("refresh_token")? else { return Ok(()) };
        let tokens = &self.inner.stores.tokens;
        let Some(session) =
            tokens.session_by_refresh(&TokenHash::of(token)).await.map_err(TokenError::Store)?
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
        params: &Params,
        client: &ResolvedClient,
        auth: &VerifiedClientAuth,
        jkt: &str,
        now: i64,
    ) -> Result<TokenResponse, TokenError> {
        let tokens = &self.inner.stores.tokens;
        let code = params.get("code")?.ok_or(TokenError::MissingCode)?;
        let hash = TokenHash::of(code);
        let record =
            tokens.get_code(&hash).await.map_err(TokenError::Store)?.ok_or(TokenError::UnknownCode)?;
        let (session_life, refresh_life) = self.lifetimes_for(client);
        let refresh =
            RefreshToken::new(format!("ref-{}", hex::encode(atauth_crypto::random::random_bytes::<32>())));
        let access_jti = format!("tok-{}", hex::encode(atauth_crypto::random::random_bytes::<16>()));
        let access_exp = (now + secs(self.config().lifetimes.access_token)).min(now + session_life);
        let session = SessionRecord {
            id: format!("ses-{}", hex::encode(atauth_crypto::random::random_bytes::<16>())),
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
        let redirect_uri = params.get("redirect_uri")?.ok_or(TokenError::MissingRedirectUri)?;
        if redirect_uri != record.request.redirect_uri {
            return Err(TokenError::RedirectUriMismatch);
        }
        let verifier = params.get("code_verifier")?.ok_or(TokenError::MissingCodeVerifier)?;
        let verifier = PkceVerifier::parse(verifier).map_err(TokenError::InvalidCodeVerifier)?;
        if !verify_s256(&verifier, &record.request.code_challenge) {
            return Err(TokenError::PkceMismatch);
        }
        if jkt != record.dpop_jkt {
            return Err(TokenError::DpopKeyMismatch);
        }
        if auth.binding != record.client_auth {
            return Err(TokenError::ClientAuthMismatch);
        }
        record_client_auth(self.inner.stores.replay.as_ref(), auth, now).await?;
        let session_snapshot = session.clone();
        match tokens.redeem_code(&hash, now, session).await.map_err(TokenError::Store)? {
            RedeemOutcome::Redeemed => {}
            RedeemOutcome::Reused => return Err(TokenError::CodeReused),
            RedeemOutcome::Expired => return Err(TokenError::CodeExpired),
            _ => return Err(TokenError::UnknownCode),
        }
        let include_refresh = client.has_grant("refresh_token");
        Ok(self.token_response(&session_snapshot, include_refresh.then_some(refresh), now))
    }

    async fn refresh_grant(
        &self,
        params: &Params,
        client: &ResolvedClient,
        auth: &VerifiedClientAuth,
        jkt: &str,
        now: i64,
    ) -> Result<TokenResponse, TokenError> {
        let old = params.get("refresh_token")?.ok_or(TokenError::MissingRefreshToken)?;
        let (_, refresh_life) = self.lifetimes_for(client);
        record_client_auth(self.inner.stores.replay.as_ref(), auth, now).await?;
        let refresh =
            RefreshToken::new(format!("ref-{}", hex::encode(atauth_crypto::random::random_bytes::<32>())));
        let rotation = Rotation {
            now,
            client_id: client.client_id.as_str().to_owned(),
            dpop_jkt: jkt.to_owned(),
            client_auth: auth.binding.clone(),
            new_refresh_hash: TokenHash::of(refresh.expose_secret()),
            new_refresh_expires_at: now + refresh_life,
            new_access_jti: format!("tok-{}", hex::encode(atauth_crypto::random::random_bytes::<16>())),
            new_access_expires_at: now + secs(self.config().lifetimes.access_token),
            retry_grace: secs(self.config().lifetimes.refresh_retry_grace),
        };
        let outcome = self
            .inner
            .stores
            .tokens
            .rotate_refresh(&TokenHash::of(old), rotation)
            .await
            .map_err(TokenError::Store)?;
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
        Ok(self.token_response(&session, Some(refresh), now))
    }

    fn token_response(
        &self,
        session: &SessionRecord,
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
            scope: session.scope.clone(),
        };
        let claims_json = serde_json::to_vec(&claims).unwrap_or_default();
        let access = self.signing_keys().sign_access_token(&claims_json);
        TokenResponse {
            access_token: AccessToken::new(access),
            token_type: "DPoP".to_owned(),
            expires_in: Some(session.access_expires_at - now),
            refresh_token: refresh,
            scope: Some(session.scope.clone()),
            sub: Some(session.sub.clone()),
            extra: serde_json::Map::new(),
        }
    }
}
