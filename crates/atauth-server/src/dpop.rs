//! DPoP at this server (AS-DPOP-01 … 07, RS-DPOP-01 … 03): every check of
//! [`atauth_crypto::dpop::DpopVerifier`], the server's rotating nonces (an HMAC over a 60 s time
//! bucket; the previous, current and next bucket are accepted, so instances sharing the secret agree
//! without talking), and `jti` replay through the [`ReplayStore`] of
//! [`crate::store::Stores::dpop_replay`]. When that store does not outlive the process (the
//! single-instance SQLite default keeps DPoP `jti`s in memory), the builder mixes random bytes drawn
//! at start into the nonce key, so a proof made before a restart carries a nonce the restarted
//! server refuses (`use_dpop_nonce`) and cannot be replayed into the forgotten records.
//!
//! `htu` is compared with the URL built from the configured public URL and the request path, never
//! from `Host` or forwarded headers (T-05). Nonce problems are decided before the `jti` is recorded, so
//! a client retrying with the nonce from our challenge is not flagged as a replay (T-07).

use std::future::Future;

use atauth_crypto::dpop::wire::WwwAuthenticate;
use atauth_crypto::dpop::{DpopError, DpopRequest, ReplayGuard, ReplayStoreError, VerifiedDpop};
use atauth_oauth::OAuthErrorCode;
use http::StatusCode;

use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::store::ReplayStore;

/// The DPoP-relevant parts of an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct DpopInput<'a> {
    /// Every `DPoP` header value (more than one is an error, RFC 9449 §4.3 item 1).
    pub proofs: &'a [&'a str],
    /// The request method.
    pub method: &'a str,
    /// The request path, without query (the public URL is prepended, T-05).
    pub path: &'a str,
}

/// Why DPoP failed at this server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpopCheckError {
    /// No `DPoP` header (atproto requires DPoP from PAR on, T-20).
    #[error("DPoP proof required")]
    Missing,
    /// A proof check failed (one variant per RFC 9449 §4.3 item, in the crypto crate).
    #[error(transparent)]
    Proof(#[from] DpopError),
}

impl DpopCheckError {
    /// Whether the client should retry with the nonce in our `DPoP-Nonce` header.
    pub fn is_nonce_error(&self) -> bool {
        matches!(self, Self::Proof(e) if e.is_nonce_error())
    }

    /// The authorization-server form (RFC 9449 §5, §8): HTTP 400, JSON `use_dpop_nonce` or
    /// `invalid_dpop_proof`.
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::Proof(DpopError::ReplayStore(e)) => crate::error::internal("dpop replay store", e),
            e if e.is_nonce_error() => OAuthError::bad_request(
                OAuthErrorCode::UseDpopNonce,
                "Authorization server requires nonce in DPoP proof",
            ),
            e => OAuthError::bad_request(OAuthErrorCode::InvalidDpopProof, e.to_string()),
        }
    }

    /// The resource-server form (RFC 9449 §7.1, §9; RS-WWW-01): HTTP 401 with a
    /// `WWW-Authenticate: DPoP error=…` challenge.
    pub fn resource_error(&self) -> OAuthError {
        match self {
            Self::Proof(DpopError::ReplayStore(e)) => crate::error::internal("dpop replay store", e),
            e if e.is_nonce_error() => {
                challenge(OAuthErrorCode::UseDpopNonce, "Resource server requires nonce in DPoP proof")
            }
            e => challenge(OAuthErrorCode::InvalidDpopProof, &e.to_string()),
        }
    }
}

/// The algorithms we accept in DPoP proofs, for `WWW-Authenticate … algs="…"`.
pub const DPOP_ALGS: &str = "ES256 ES256K";

/// The bare `WWW-Authenticate: DPoP algs="…"` challenge, for a request without credentials.
pub(crate) fn bare_challenge() -> String {
    WwwAuthenticate::dpop().with_algs(DPOP_ALGS.split_ascii_whitespace()).to_string()
}

/// A 401 with a `WWW-Authenticate: DPoP` challenge (RS-WWW-01); the description is escaped as a
/// quoted string by [`WwwAuthenticate`].
pub(crate) fn challenge(code: OAuthErrorCode, description: &str) -> OAuthError {
    let header = WwwAuthenticate::dpop()
        .with_error(code.as_str())
        .with_error_description(description)
        .with_algs(DPOP_ALGS.split_ascii_whitespace())
        .to_string();
    let mut e = OAuthError::new(StatusCode::UNAUTHORIZED, code, description);
    e.www_authenticate = Some(header);
    e
}

struct StoreGuard<'a> {
    store: &'a dyn ReplayStore,
    now: i64,
}

impl ReplayGuard for StoreGuard<'_> {
    fn check_and_record(
        &self,
        key: [u8; 32],
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, ReplayStoreError>> + Send {
        let (store, now) = (self.store, self.now);
        async move {
            store.check_and_record(key, expires_at, now).await.map_err(|e| ReplayStoreError(Box::new(e)))
        }
    }
}

/// The server's DPoP state: the proof verifier (its limits) and the nonce source (its secret).
pub(crate) struct DpopState {
    pub(crate) verifier: atauth_crypto::dpop::DpopVerifier,
    pub(crate) nonces: atauth_crypto::dpop::DpopNonces,
}

impl AuthServer {
    /// Verifies the request's DPoP proof (nonce required) and records its `jti`.
    pub async fn verify_dpop(
        &self,
        input: &DpopInput<'_>,
        access_token: Option<&str>,
        now: i64,
    ) -> Result<VerifiedDpop, DpopCheckError> {
        let proof = match input.proofs {
            [] => return Err(DpopCheckError::Missing),
            [one] => *one,
            _ => return Err(DpopCheckError::Proof(DpopError::MultipleHeaders)),
        };
        let url = self.endpoint_url(input.path);
        let mut request = DpopRequest::new(input.method, &url);
        if let Some(t) = access_token {
            request = request.with_access_token(t);
        }
        let guard = StoreGuard { store: self.inner.stores.dpop_replay.as_ref(), now };
        Ok(self
            .inner
            .dpop
            .verifier
            .verify_and_record(proof, &request, now, Some(&self.inner.dpop.nonces), &guard)
            .await?)
    }
}
