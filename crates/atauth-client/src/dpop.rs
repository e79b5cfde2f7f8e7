//! DPoP-aware sending: a fresh proof per attempt, server nonces cached per origin and updated from
//! every response, and exactly one retry on a nonce challenge in either form.
//!
//! Checklist: CL-DPOP-02/03/04/06, CL-RES-01, traps T-01 (update the cache from every response,
//! including retries and successes), T-02 (one retry, never a loop), T-03 (nonces per origin; both
//! the AS form, 400 JSON `use_dpop_nonce`, and the RS form, 401 `WWW-Authenticate: DPoP
//! error="use_dpop_nonce"`, are recognised on both kinds of server), T-04 (`htu` without query).
//! CL-DPOP-05 (refuse responses without `DPoP-Nonce`) is not enforced, like the reference client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atauth_crypto::Clock;
use atauth_crypto::dpop::wire::{self, WwwAuthenticate};
use atauth_crypto::dpop::{DpopSigner, ProofParams};
use atauth_identity::http::{HttpError, HttpRequest, HttpResponse, SafeHttpClient};
use http::HeaderValue;
use http::header::{HeaderName, WWW_AUTHENTICATE};

/// The `DPoP` request header ([`wire::DPOP_HEADER`]).
pub const DPOP_HEADER: HeaderName = HeaderName::from_static(wire::DPOP_HEADER);
/// The `DPoP-Nonce` response header ([`wire::DPOP_NONCE_HEADER`]).
pub const DPOP_NONCE_HEADER: HeaderName = HeaderName::from_static(wire::DPOP_NONCE_HEADER);

const MAX_ORIGINS: usize = 1024;
const MAX_NONCE_LEN: usize = 1024;

/// The latest DPoP nonce per server origin (CL-DPOP-03). Shared by all sessions of a client.
#[derive(Debug, Default)]
pub struct NonceCache {
    map: Mutex<HashMap<String, String>>,
}

impl NonceCache {
    /// The nonce last seen from `origin`.
    pub fn get(&self, origin: &str) -> Option<String> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(origin).cloned()
    }

    /// Records `nonce` for `origin` (bounded: an oversized nonce is ignored, and the table is
    /// cleared when it grows past its cap).
    pub fn set(&self, origin: &str, nonce: &str) {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ORIGINS && !map.contains_key(origin) {
            map.clear();
        }
        map.insert(origin.to_owned(), nonce.to_owned());
    }
}

/// The `WWW-Authenticate` values of `res` that are valid strings.
fn www_authenticate(res: &HttpResponse) -> impl Iterator<Item = &str> {
    res.headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok())
}

/// Whether `res` is a DPoP nonce challenge: 400 JSON `use_dpop_nonce` (AS) or 401 with
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"` (RS), either form at either status (CL-DPOP-04,
/// T-03; [`wire::is_nonce_challenge`]).
pub fn is_nonce_challenge(res: &HttpResponse) -> bool {
    wire::is_nonce_challenge(res.status.as_u16(), www_authenticate(res), &res.body)
}

/// Whether `res` is an RS `invalid_token` answer (CL-RES-03): 401 with a `WWW-Authenticate`
/// challenge carrying `error="invalid_token"`.
pub fn is_invalid_token(res: &HttpResponse) -> bool {
    res.status.as_u16() == 401
        && www_authenticate(res).any(|v| {
            WwwAuthenticate::parse_all(v).iter().any(|c| c.error.as_deref() == Some("invalid_token"))
        })
}

/// Sends DPoP-protected requests through the [`SafeHttpClient`].
#[derive(Clone)]
pub struct DpopSender {
    pub(crate) http: SafeHttpClient,
    pub(crate) nonces: Arc<NonceCache>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DpopSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopSender").finish_non_exhaustive()
    }
}

fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

impl DpopSender {
    /// A sender over `http` with its own nonce cache.
    pub fn new(http: SafeHttpClient, clock: Arc<dyn Clock>) -> Self {
        Self { http, nonces: Arc::new(NonceCache::default()), clock }
    }

    /// The nonce cache.
    pub fn nonces(&self) -> &NonceCache {
        &self.nonces
    }

    /// Sends the request built by `make` with a DPoP proof (and `ath` when `access_token` is
    /// given). `make` runs once per attempt, so attempt-specific values (a client assertion's
    /// `jti`, T-07) are fresh. On a nonce challenge that carries a nonce, retries exactly once.
    pub async fn send<E: From<HttpError>>(
        &self,
        signer: &DpopSigner,
        method: &str,
        access_token: Option<&str>,
        mut make: impl FnMut() -> Result<HttpRequest, E>,
    ) -> Result<HttpResponse, E> {
        let mut retried = false;
        loop {
            let request = make()?;
            let url = request.url().clone();
            let origin = origin_of(&url);
            let nonce = self.nonces.get(&origin);
            let proof = signer.proof(&ProofParams {
                method,
                url: url.as_str(),
                nonce: nonce.as_deref(),
                access_token,
                iat: self.clock.unix_now(),
            });
            // A compact JWS is base64url and dots: always a valid header value.
            let value = HeaderValue::from_str(&proof).unwrap_or_else(|_| HeaderValue::from_static(""));
            let res = self.http.send(request.header(DPOP_HEADER, value)).await?;
            let fresh = res.headers.get(DPOP_NONCE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            if let Some(n) = &fresh {
                self.nonces.set(&origin, n); // T-01: from every response
            }
            if !retried && fresh.is_some() && is_nonce_challenge(&res) {
                retried = true; // T-02: exactly one retry
                continue;
            }
            return Ok(res);
        }
    }
}
