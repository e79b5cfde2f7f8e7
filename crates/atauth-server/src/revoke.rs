//! `POST /oauth/revoke` — token revocation (RFC 7009, AS-REV-01).
//!
//! The client authenticates as at the token endpoint; a DPoP proof is verified when sent (clients
//! send one; its nonce is enforced). A refresh token or access token issued to this client revokes
//! its whole token family. The answer is 200 for unknown, invalid or foreign tokens too (RFC 7009
//! §2.2): nothing is revealed about tokens the caller does not own, and nothing of another client's
//! is revoked.

use atauth_crypto::{SignaturePolicy, jws};
use atauth_oauth::OAuthErrorCode;

use crate::client::{
    ClientAuthError, ClientCredentials, ClientError, record_client_auth, verify_client_auth,
};
use crate::dpop::{DpopCheckError, DpopInput};
use crate::error::OAuthError;
use crate::params::{DuplicateParam, Params};
use crate::server::AuthServer;
use crate::store::{SessionRecord, StoreError, TokenHash};
use crate::token::AccessTokenClaims;

/// Why a revocation request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// The DPoP proof sent is invalid.
    #[error(transparent)]
    Dpop(#[from] DpopCheckError),
    /// A parameter was repeated.
    #[error(transparent)]
    Duplicate(#[from] DuplicateParam),
    /// No `token`.
    #[error("token is required")]
    MissingToken,
    /// No `client_id`.
    #[error("client_id is required")]
    MissingClientId,
    /// The client could not be resolved.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Client authentication failed.
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl RevokeError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::Dpop(e) => e.oauth_error(),
            Self::Client(e) => e.oauth_error(),
            Self::ClientAuth(e) => e.oauth_error(),
            Self::Store(e) => crate::error::internal("revoke store", e),
            _ => OAuthError::bad_request(OAuthErrorCode::InvalidRequest, self.to_string()),
        }
    }
}

impl AuthServer {
    /// Handles a revocation request. `Ok(true)` if a family was revoked (the HTTP answer is 200
    /// either way).
    pub async fn revoke(&self, params: &Params, dpop: &DpopInput<'_>) -> Result<bool, RevokeError> {
        let now = self.now();
        let jkt =
            if dpop.proofs.is_empty() { None } else { Some(self.verify_dpop(dpop, None, now).await?.jkt) };
        let token = params.get("token")?.ok_or(RevokeError::MissingToken)?;
        let client_id = params.get("client_id")?.ok_or(RevokeError::MissingClientId)?;
        let client = self.inner.clients.resolve(client_id, now).await?;
        let creds = ClientCredentials {
            assertion_type: params.get("client_assertion_type")?,
            assertion: params.get("client_assertion")?,
        };
        let auth = verify_client_auth(&self.inner.config, &client, creds, jkt.as_deref().unwrap_or(""), now)?;
        record_client_auth(self.inner.stores.replay.as_ref(), &auth, now).await?;

        let tokens = &self.inner.stores.tokens;
        let session: Option<SessionRecord> = if token.starts_with("ref-") {
            tokens.session_by_refresh(&TokenHash::of(token)).await.map_err(RevokeError::Store)?
        } else {
            match self.access_token_jti(token) {
                Some(jti) => tokens.session_by_access_jti(&jti, now).await.map_err(RevokeError::Store)?,
                None => None,
            }
        };
        match session {
            Some(s) if s.client_id == client_id => {
                let revoked = tokens.revoke_session(&s.id).await.map_err(RevokeError::Store)?;
                metrics::counter!("atauth_revocations_total").increment(1);
                Ok(revoked)
            }
            _ => Ok(false),
        }
    }

    /// The `jti` of an access token we signed (signature checked, expiry not), if it is one.
    fn access_token_jti(&self, token: &str) -> Option<String> {
        let jws = jws::decode(token).ok()?;
        jws.require_type("at+jwt").ok()?;
        let keys = self.signing_keys();
        let key = keys.public_key(jws.header().kid.as_deref()?)?;
        jws.verify(key, SignaturePolicy::AllowHighS).ok()?;
        let claims: AccessTokenClaims = jws.claims().ok()?;
        (claims.iss == self.issuer()).then_some(claims.jti)
    }
}
