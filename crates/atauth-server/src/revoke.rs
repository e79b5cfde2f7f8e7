//! `POST /oauth/revoke` — token revocation (RFC 7009, AS-REV-01).
//!
//! The client authenticates as at the token endpoint; a DPoP proof is verified when sent (clients
//! send one; its nonce is enforced). A refresh token or access token issued to this client revokes
//! its whole token family. The answer is 200 for unknown, invalid or foreign tokens too (RFC 7009
//! §2.2): nothing is revealed about tokens the caller does not own, and nothing of another client's
//! is revoked.

use atauth_crypto::{SignaturePolicy, jws};
use atauth_oauth::wire::{ParamError, Params, RevocationRequest};

use crate::client::ClientPreludeError;
use crate::dpop::DpopInput;
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::store::{RefreshKey, SessionRecord, StoreError};
use crate::token::AccessTokenClaims;

/// Why a revocation request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// The prelude failed: the DPoP proof sent, `client_id`, the client's metadata or its
    /// authentication.
    #[error(transparent)]
    Client(#[from] ClientPreludeError),
    /// `token` is missing or repeated.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl RevokeError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::Client(e) => e.oauth_error(),
            Self::Params(e) => OAuthError::bad_request(e.oauth_error_code(), e.to_string()),
            Self::Store(e) => crate::error::internal("revoke store", e),
        }
    }
}

impl AuthServer {
    /// Handles a revocation request. `Ok(true)` if a family was revoked (the HTTP answer is 200
    /// either way).
    pub async fn revoke(&self, params: &Params, dpop: &DpopInput<'_>) -> Result<bool, RevokeError> {
        let now = self.now();
        // DPoP is optional here, but a proof that is sent is checked (nonce included) first.
        let jkt = if dpop.proofs.is_empty() { None } else { Some(self.prelude_dpop(dpop, now).await?.jkt) };
        let request = RevocationRequest::from_params(params)?;
        let token = request.token.as_str();
        let client = self.authenticate_client(params, jkt.as_deref().unwrap_or(""), now).await?;
        client.record(self.inner.stores.replay.as_ref(), now).await?;

        let tokens = &self.inner.stores.tokens;
        let session: Option<SessionRecord> = if token.starts_with(RefreshKey::PREFIX) {
            tokens.session_by_refresh(&RefreshKey::of(token)).await.map_err(RevokeError::Store)?
        } else {
            match self.access_token_jti(token) {
                Some(jti) => tokens.session_by_access_jti(&jti, now).await.map_err(RevokeError::Store)?,
                None => None,
            }
        };
        match session {
            Some(s) if s.client_id == client.client_id => {
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
