//! Resource-server verification of DPoP-bound access tokens (RS-DPOP-01 … 03, RS-WWW-01/02,
//! RS-SCOPE-01 for what the token carries).
//!
//! For `Authorization: DPoP <token>` + `DPoP: <proof>`: the token is one of ours (`at+jwt`, signed
//! by a key in our set, `iss` = issuer, `aud` = the service DID, unexpired, `cnf.jkt` present,
//! `atproto` in `scope`); the proof passes every RFC 9449 check with `ath` of this token, our nonce
//! and `jti` replay; the proof key is the token's `cnf.jkt`; and the token family is still live
//! (stateful revocation: a revoked or refreshed-away access token stops working at once).
//!
//! Failures are 401 with `WWW-Authenticate: DPoP error="…", error_description="…", algs="…"`; no
//! credentials at all is a bare `DPoP algs="…"` challenge. Permission failures are 403
//! (`ScopeMissingError`, RS-WWW-02) through [`VerifiedAccess::require_scope`].

use std::sync::Arc;

use atauth_crypto::{SignaturePolicy, jws};
use atauth_oauth::scope::Access;
use atauth_oauth::{OAuthErrorCode, ScopeSet};
use http::StatusCode;

use crate::dpop::{DpopCheckError, DpopInput, bare_challenge, challenge};
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::store::StoreError;
use crate::token::AccessTokenClaims;

/// An authenticated resource request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccess {
    /// The account DID (`sub`).
    pub did: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// The token family.
    pub session_id: String,
    /// DPoP key thumbprint.
    pub jkt: String,
    /// Token expiry (Unix seconds).
    pub expires_at: i64,
}

/// A permission the token lacks (RS-WWW-02): answered 403 `ScopeMissingError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Missing required scope \"{0}\"")]
pub struct ScopeMissing(pub String);

impl ScopeMissing {
    /// The wire error: 403, `ScopeMissingError` (RS-WWW-02).
    pub fn oauth_error(&self) -> OAuthError {
        OAuthError::new(
            StatusCode::FORBIDDEN,
            OAuthErrorCode::Other("ScopeMissingError".into()),
            self.to_string(),
        )
    }
}

impl VerifiedAccess {
    /// The granted scopes.
    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.scope).unwrap_or_default()
    }

    /// Whether the exact scope string was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }

    /// Whether the token's permissions allow `access` (RS-SCOPE-01): granular permissions, the
    /// expanded `include:` sets (the token carries them expanded, SCOPE-12) and the transitional
    /// scopes (SCOPE-03), matched as the reference PDS matches them.
    pub fn allows(&self, access: &Access) -> bool {
        self.scopes().allows(access)
    }

    /// Requires that the token allows `access`, else [`ScopeMissing`] naming the scope that would
    /// (the reference's 403 `ScopeMissingError`, RS-SCOPE-01, RS-WWW-02).
    ///
    /// ```
    /// # use atauth_server::resource::VerifiedAccess;
    /// use atauth_oauth::scope::Access;
    /// # let access = VerifiedAccess { did: "did:plc:a".into(), client_id: "c".into(),
    /// #     scope: "atproto repo:app.bsky.feed.post?action=create".into(), session_id: "s".into(),
    /// #     jkt: "k".into(), expires_at: 0 };
    /// access.require(&Access::repo_create("app.bsky.feed.post"))?;
    /// let missing = access.require(&Access::repo_delete("app.bsky.feed.post")).unwrap_err();
    /// assert_eq!(missing.0, "repo:app.bsky.feed.post?action=delete");
    /// # Ok::<(), atauth_server::resource::ScopeMissing>(())
    /// ```
    pub fn require(&self, access: &Access) -> Result<(), ScopeMissing> {
        self.scopes().check(access).map_err(|missing| ScopeMissing(missing.scope))
    }

    /// Requires one of `any_of` (exact scope strings), else [`ScopeMissing`] naming the first.
    /// Prefer [`Self::require`], which understands granular permissions.
    pub fn require_scope(&self, any_of: &[&str]) -> Result<(), ScopeMissing> {
        if any_of.iter().any(|s| self.has_scope(s)) {
            Ok(())
        } else {
            Err(ScopeMissing(any_of.first().copied().unwrap_or("atproto").to_owned()))
        }
    }
}

/// Why a resource request was refused. One variant per failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// No `Authorization` header.
    #[error("Authentication required")]
    MissingCredentials,
    /// More than one `Authorization` header.
    #[error("multiple Authorization headers")]
    MultipleAuthorization,
    /// `Bearer` with a DPoP-bound token (RS-DPOP-02).
    #[error("DPoP-bound access tokens must use the DPoP authorization scheme")]
    BearerScheme,
    /// Another scheme.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
    /// Not a compact JWS / claims of the wrong shape.
    #[error("malformed access token")]
    MalformedToken,
    /// `typ` is not `at+jwt`.
    #[error("wrong token type")]
    WrongTokenType,
    /// `kid` is not one of our keys.
    #[error("unknown signing key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("invalid token signature")]
    BadSignature,
    /// `iss` is not our issuer.
    #[error("token issuer mismatch")]
    IssuerMismatch,
    /// `aud` is not our service DID (RS-DPOP-01).
    #[error("token audience mismatch")]
    AudienceMismatch,
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// No `cnf.jkt`.
    #[error("token is not DPoP-bound")]
    NotBound,
    /// `scope` lacks `atproto` (RS-DPOP-01).
    #[error("token scope lacks atproto")]
    MissingAtprotoScope,
    /// The DPoP proof failed.
    #[error(transparent)]
    Dpop(#[from] DpopCheckError),
    /// The proof key is not the token's `cnf.jkt`.
    #[error("Invalid DPoP key binding")]
    KeyBindingMismatch,
    /// The token family was revoked or the token was refreshed away.
    #[error("token has been revoked")]
    Revoked,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl ResourceError {
    /// The wire error (the one place for this enum): 401 with a `WWW-Authenticate: DPoP` challenge.
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::MissingCredentials => {
                let mut e = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    OAuthErrorCode::Other("AuthMissing".into()),
                    self.to_string(),
                );
                e.www_authenticate = Some(bare_challenge());
                e
            }
            Self::Dpop(e) => e.resource_error(),
            Self::Store(e) => crate::error::internal("resource store", e),
            Self::MultipleAuthorization | Self::UnsupportedScheme => {
                challenge(OAuthErrorCode::InvalidRequest, &self.to_string())
            }
            _ => challenge(OAuthErrorCode::InvalidToken, &self.to_string()),
        }
    }
}

/// Access tokens whose signature this server has verified, keyed by the whole token: a client sends
/// the same access token with every request until it refreshes, and checking our own ES256
/// signature again is the largest single cost of a resource request. Only the signature check (and
/// the parse) is skipped on a hit: the exact same bytes were verified before, and the key must
/// still be in our set. Every other check (issuer, audience, expiry, binding, scope, the DPoP proof,
/// stateful revocation) runs on every request. Bounded: when full it is emptied and refills.
#[derive(Default)]
pub(crate) struct VerifiedTokens {
    map: std::sync::Mutex<std::collections::HashMap<Box<str>, Arc<VerifiedToken>>>,
}

/// The `kid` that verified a token, and its claims.
type VerifiedToken = (String, AccessTokenClaims);

impl VerifiedTokens {
    /// Entries at most (about 1 KiB each).
    const CAPACITY: usize = 4096;

    fn get(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned()
    }

    fn insert(&self, token: &str, kid: String, claims: AccessTokenClaims) -> Arc<VerifiedToken> {
        let entry = Arc::new((kid, claims));
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(token.into(), entry.clone());
        entry
    }
}

impl AuthServer {
    /// The claims of one of our access tokens: `typ` `at+jwt`, signed by a key in our set. See
    /// [`VerifiedTokens`] for the cache in front of the signature check.
    fn verified_token_claims(&self, token: &str) -> Result<AccessTokenClaims, ResourceError> {
        let keys = self.signing_keys();
        let cache = &self.inner.verified_tokens;
        if let Some(hit) = cache.get(token)
            && keys.public_key(&hit.0).is_some()
        {
            return Ok(hit.1.clone());
        }
        let jwt = jws::decode(token).map_err(|_| ResourceError::MalformedToken)?;
        jwt.require_type("at+jwt").map_err(|_| ResourceError::WrongTokenType)?;
        let kid = jwt.header().kid.as_deref().ok_or(ResourceError::UnknownKey)?;
        let key = keys.public_key(kid).ok_or(ResourceError::UnknownKey)?;
        jwt.verify(key, SignaturePolicy::AllowHighS).map_err(|_| ResourceError::BadSignature)?;
        let claims: AccessTokenClaims = jwt.claims().map_err(|_| ResourceError::MalformedToken)?;
        Ok(cache.insert(token, kid.to_owned(), claims).1.clone())
    }

    /// Verifies a DPoP-bound resource request. `authorization` holds every `Authorization` header
    /// value; `dpop` the proofs, method and path of this request.
    pub async fn verify_resource(
        &self,
        authorization: &[&str],
        dpop: &DpopInput<'_>,
    ) -> Result<VerifiedAccess, ResourceError> {
        let now = self.now();
        let header = match authorization {
            [] => return Err(ResourceError::MissingCredentials),
            [one] => *one,
            _ => return Err(ResourceError::MultipleAuthorization),
        };
        let (scheme, token) = header.trim().split_once(' ').ok_or(ResourceError::UnsupportedScheme)?;
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Err(ResourceError::BearerScheme);
        }
        if !scheme.eq_ignore_ascii_case("dpop") {
            return Err(ResourceError::UnsupportedScheme);
        }
        let claims = self.verified_token_claims(token)?;
        if claims.iss != self.issuer() {
            return Err(ResourceError::IssuerMismatch);
        }
        if claims.aud != self.config().service_did {
            return Err(ResourceError::AudienceMismatch);
        }
        if claims.exp <= now {
            return Err(ResourceError::Expired);
        }
        if claims.cnf.jkt.is_empty() {
            return Err(ResourceError::NotBound);
        }
        if !claims.scope.split(' ').any(|s| s == "atproto") {
            return Err(ResourceError::MissingAtprotoScope);
        }
        let proof = self.verify_dpop(dpop, Some(token), now).await?;
        if proof.jkt != claims.cnf.jkt {
            return Err(ResourceError::KeyBindingMismatch);
        }
        let session = self
            .inner
            .stores
            .tokens
            .session_by_access_jti(&claims.jti, now)
            .await
            .map_err(ResourceError::Store)?
            .ok_or(ResourceError::Revoked)?;
        Ok(VerifiedAccess {
            did: claims.sub,
            client_id: claims.client_id,
            scope: claims.scope,
            session_id: session.id,
            jkt: proof.jkt,
            expires_at: claims.exp,
        })
    }
}
