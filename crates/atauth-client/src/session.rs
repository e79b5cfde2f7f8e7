//! [`OAuthSession`]: a signed-in session: DPoP-bound resource requests, refresh (ahead of expiry
//! with jitter, and on `invalid_token`), single-flight across tasks and processes, sign-out.
//!
//! Refresh protocol (CL-REF-01 … 04, T-11, T-12, T-13):
//!
//! 1. take the session lock (in-process, or the store's cross-process lock);
//! 2. re-read the session from the store: if its `generation` moved past the one this handle saw,
//!    another task or process already refreshed: adopt its tokens and stop;
//! 3. optionally re-resolve DID → PDS → issuer (REF does this before every refresh, T-11);
//! 4. send the refresh with the session's own DPoP key and client-auth key;
//! 5. **persist the new tokens (upsert) before anyone uses them**, then release the lock;
//! 6. `invalid_grant` ends the session: it is deleted and [`RefreshError::SessionEnded`] returned.

use std::sync::Arc;
use std::time::Duration;

use atauth_crypto::dpop::DpopSigner;
use atauth_crypto::random::random_bytes;
use atauth_identity::Did;
use atauth_identity::http::{HttpRequest, HttpResponse};
use atauth_oauth::{OAuthErrorCode, TokenRequest};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use url::Url;

use crate::client::Inner;
use crate::dpop::is_invalid_token;
use crate::error::{RefreshError, RequestError, StoreError, TokenError};
use crate::store::{LockGuard, SessionKey, SessionRecord};

/// Refresh when the access token expires within this many seconds plus jitter (CL-REF-03).
const REFRESH_MARGIN_SECS: i64 = 10;
/// Upper bound of the random jitter added to the margin (CL-REF-03: REF uses 0–30 s).
const REFRESH_JITTER_SECS: i64 = 30;
/// Minimum time-to-live of a refresh lock. The actual TTL also covers four sequential HTTP requests
/// at the configured timeout (DID document, protected-resource metadata, AS metadata, token), so a
/// slow but live holder never loses the lock to a second refresher (which would replay, T-12).
const MIN_LOCK_TTL: Duration = Duration::from_secs(30);

/// Default cap on resource (XRPC) response bodies.
pub const DEFAULT_MAX_XRPC_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

pub(crate) struct Cached {
    pub(crate) record: SessionRecord,
    pub(crate) signer: DpopSigner,
    /// Per-handle jitter, fixed so that expiry checks are stable (CL-REF-03).
    jitter: i64,
}

/// A signed-in OAuth session. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct OAuthSession {
    pub(crate) client: Arc<Inner>,
    key: SessionKey,
    pub(crate) cached: Arc<tokio::sync::RwLock<Cached>>,
}

impl std::fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession").field("key", &self.key).finish_non_exhaustive()
    }
}

/// Non-secret facts about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The account.
    pub did: Did,
    /// The issuer.
    pub issuer: String,
    /// The PDS URL.
    pub pds_url: String,
    /// The granted scope.
    pub scope: String,
    /// Access-token expiry (Unix seconds), if known.
    pub expires_at: Option<i64>,
    /// How many refreshes the stored session has seen.
    pub generation: u64,
}

impl SessionInfo {
    /// The granted permissions (the token response's `scope`: with permission sets already
    /// expanded by the server, SCOPE-12).
    pub fn permissions(&self) -> atauth_oauth::ScopeSet {
        atauth_oauth::ScopeSet::parse(&self.scope).unwrap_or_default()
    }

    /// Whether the session may do `access` ("may I post?") before trying: the same matcher the
    /// resource server applies (RS-SCOPE-01, SCOPE-03). The PDS has the last word.
    ///
    /// ```
    /// use atauth_oauth::scope::Access;
    /// # let info = atauth_client::SessionInfo { did: atauth_identity::Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
    /// #     issuer: "https://pds.example.com".into(), pds_url: "https://pds.example.com".into(),
    /// #     scope: "atproto repo:app.bsky.feed.post?action=create".into(), expires_at: None, generation: 0 };
    /// assert!(info.allows(&Access::repo_create("app.bsky.feed.post")));
    /// assert!(!info.allows(&Access::repo_delete("app.bsky.feed.post")));
    /// ```
    pub fn allows(&self, access: &atauth_oauth::scope::Access) -> bool {
        self.permissions().allows(access)
    }
}

impl OAuthSession {
    pub(crate) fn new(client: Arc<Inner>, record: SessionRecord, signer: DpopSigner) -> Self {
        let [b] = random_bytes::<1>();
        let jitter = i64::from(b) * REFRESH_JITTER_SECS / 255;
        Self {
            client,
            key: record.key.clone(),
            cached: Arc::new(tokio::sync::RwLock::new(Cached { record, signer, jitter })),
        }
    }

    /// The account DID.
    pub fn did(&self) -> &Did {
        &self.key.did
    }

    /// The store key of this session.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Non-secret facts (scope, expiry, issuer, PDS).
    pub async fn info(&self) -> SessionInfo {
        let c = self.cached.read().await;
        SessionInfo {
            did: c.record.key.did.clone(),
            issuer: c.record.issuer.to_string(),
            pds_url: c.record.pds_url.clone(),
            scope: c.record.tokens.scope.clone(),
            expires_at: c.record.tokens.expires_at,
            generation: c.record.generation,
        }
    }

    /// Forces a refresh of the tokens this handle holds. If another task or process refreshed them
    /// meanwhile, adopts that result instead of refreshing again (exactly one refresh per token).
    pub async fn refresh(&self) -> Result<(), RefreshError> {
        let seen = self.cached.read().await.record.generation;
        self.refresh_from(seen).await
    }

    /// Refreshes unless the session already moved past `seen_generation` (the
    /// [`SessionInfo::generation`] of the token you found unusable). Tasks and processes that call
    /// this with the same generation at the same moment cause exactly one refresh; the others adopt
    /// its result.
    pub async fn refresh_if_generation(&self, seen_generation: u64) -> Result<(), RefreshError> {
        self.refresh_from(seen_generation).await
    }

    /// Re-reads the stored session (tokens refreshed by another process).
    pub async fn reload(&self) -> Result<(), RefreshError> {
        let stored =
            self.client.sessions.get_session(&self.key).await?.ok_or(RefreshError::SessionNotFound)?;
        let mut c = self.cached.write().await;
        if stored.generation >= c.record.generation {
            c.record = stored;
        }
        Ok(())
    }

    async fn refresh_from(&self, seen_generation: u64) -> Result<(), RefreshError> {
        let inner = &self.client;
        let ttl = MIN_LOCK_TTL.max(inner.config.http_timeout * 4 + Duration::from_secs(10));
        let guard = inner.lock.lock(&self.key.storage_key(), ttl, ttl + Duration::from_secs(10)).await?;
        let result = self.refresh_locked(seen_generation, &guard).await;
        guard.release().await;
        result
    }

    async fn refresh_locked(&self, seen_generation: u64, guard: &LockGuard) -> Result<(), RefreshError> {
        let inner = &self.client;
        let Some(stored) = inner.sessions.get_session(&self.key).await? else {
            return Err(RefreshError::SessionNotFound);
        };
        if stored.generation > seen_generation {
            // Someone else refreshed while we waited: adopt (T-12: never present the old token).
            self.cached.write().await.record = stored;
            return Ok(());
        }
        let mut pds_url = stored.pds_url.clone();
        if inner.config.verify_issuer_on_refresh {
            let (issuer, pds) = inner.discovery.issuer_for_did_fresh(&self.key.did).await?;
            if issuer != stored.issuer {
                inner.sessions.delete_session(&self.key).await?;
                return Err(RefreshError::IssuerChanged {
                    expected: stored.issuer.to_string(),
                    found: issuer.to_string(),
                });
            }
            pds_url = pds.to_string();
        }
        let refresh_token = stored.tokens.refresh_token.clone().ok_or(RefreshError::NoRefreshToken)?;
        let metadata = inner.discovery.authorization_server(&stored.issuer).await?;
        let signer = self.cached.read().await.signer.clone();
        let agent = inner.agent(&stored.issuer, &metadata);
        inner.stats.count_refresh();
        let now = inner.clock.unix_now();
        let response = match agent
            .token(&signer, &stored.client_auth, &TokenRequest::RefreshToken { refresh_token })
            .await
        {
            Ok(r) => r,
            Err(TokenError::OAuth { error, .. }) if error.error == OAuthErrorCode::InvalidGrant => {
                // CL-REF-04: the session is gone; drop it cleanly.
                inner.sessions.delete_session(&self.key).await?;
                return Err(RefreshError::SessionEnded(error));
            }
            Err(e) => return Err(RefreshError::Token(e)),
        };
        let info = response
            .validate_atproto()
            .map_err(|e| RefreshError::Token(TokenError::InvalidTokenResponse(e)))?;
        if info.sub != self.key.did {
            return Err(RefreshError::SubMismatch);
        }
        let mut record = stored;
        record.pds_url = pds_url;
        record.tokens.access_token = response.access_token;
        if response.refresh_token.is_some() {
            record.tokens.refresh_token = response.refresh_token;
        }
        record.tokens.scope = info.scope.to_string();
        record.tokens.expires_at = response.expires_in.map(|e| now + e);
        record.generation += 1;
        // T-12: persist before use, fenced by the lock (a holder whose lease ran out writes nothing).
        inner.sessions.put_session_locked(&record, guard).await?;
        self.cached.write().await.record = record;
        Ok(())
    }

    /// The access token, signer, generation and PDS URL to use now, refreshing first if the token
    /// expires soon (CL-REF-03).
    async fn current(&self) -> Result<(String, DpopSigner, u64, String), RefreshError> {
        let needs = {
            let c = self.cached.read().await;
            let now = self.client.clock.unix_now();
            c.record.tokens.expires_at.is_some_and(|exp| exp < now + REFRESH_MARGIN_SECS + c.jitter)
                && c.record.tokens.refresh_token.is_some()
        };
        if needs {
            let seen = self.cached.read().await.record.generation;
            self.refresh_from(seen).await?;
        }
        let c = self.cached.read().await;
        Ok((
            c.record.tokens.access_token.expose_secret().to_owned(),
            c.signer.clone(),
            c.record.generation,
            c.record.pds_url.clone(),
        ))
    }

    /// The PDS URL (the resource server for this session's tokens, CL-RES-02).
    pub async fn pds_url(&self) -> String {
        self.cached.read().await.record.pds_url.clone()
    }

    /// Sends a DPoP-bound request (`Authorization: DPoP`, proof with `ath`, PDS nonce; CL-RES-01).
    /// Refreshes ahead of expiry and once on `invalid_token` (CL-RES-03); nonce retries are handled
    /// by the sender. `url` is resolved against the PDS URL (`/xrpc/...`); a URL on any other
    /// origin is refused, so the token only ever goes to the PDS (CL-RES-02).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        let headers = crate::agent::with_content_type(content_type)?;
        self.send_with_headers(method, url, headers, body, max_response_bytes).await
    }

    /// [`send`](Self::send) with extra request headers (`Content-Type`, `atproto-proxy`,
    /// `atproto-accept-labelers`, …), sent on every attempt. Credential and framing headers are
    /// refused ([`check_extra_headers`](crate::agent::check_extra_headers)): the session sets
    /// `Authorization` and `DPoP` itself.
    pub async fn send_with_headers(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        crate::agent::check_extra_headers(&headers)?;
        let mut refreshed = false;
        loop {
            let (token, signer, generation, pds) = self.current().await?;
            let base = Url::parse(&pds).map_err(|_| RequestError::InvalidRequest("invalid PDS URL"))?;
            let target = base.join(url).map_err(|_| RequestError::InvalidRequest("invalid request URL"))?;
            // CL-RES-02: the token goes to the session's PDS only, never to another origin.
            if target.origin() != base.origin() {
                return Err(RequestError::InvalidRequest("request URL is not on the session's PDS"));
            }
            let auth = HeaderValue::from_str(&format!("DPoP {token}"))
                .map_err(|_| RequestError::InvalidRequest("access token is not a valid header value"))?;
            let res = self
                .client
                .sender
                .send(&signer, method.as_str(), Some(&token), || {
                    let mut req = HttpRequest::new(method.clone(), target.clone())
                        .header(http::header::AUTHORIZATION, auth.clone())
                        .max_response_bytes(max_response_bytes);
                    for (name, value) in &headers {
                        req = req.header(name.clone(), value.clone());
                    }
                    if let Some(b) = &body {
                        req = req.body(b.clone()); // CL-DPOP-06: buffered, so a retry can resend it
                    }
                    Ok::<_, RequestError>(req)
                })
                .await?;
            if !refreshed && is_invalid_token(&res) {
                refreshed = true;
                self.refresh_from(generation).await?;
                continue;
            }
            return Ok(res);
        }
    }

    /// Signs out: revokes the refresh and access tokens at the AS (errors ignored; skipped when the AS
    /// has no revocation endpoint, CL-REV-01) and deletes the session from the store.
    pub async fn sign_out(&self) -> Result<(), StoreError> {
        let inner = &self.client;
        let (record, signer) = {
            let c = self.cached.read().await;
            (c.record.clone(), c.signer.clone())
        };
        // Use the latest stored tokens if another process refreshed.
        let record = match inner.sessions.get_session(&self.key).await {
            Ok(Some(r)) => r,
            _ => record,
        };
        if let Ok(metadata) = inner.discovery.authorization_server(&record.issuer).await {
            let agent = inner.agent(&record.issuer, &metadata);
            if let Some(rt) = &record.tokens.refresh_token {
                let _ = agent.revoke(&signer, &record.client_auth, rt.expose_secret(), "refresh_token").await;
            }
            let _ = agent
                .revoke(
                    &signer,
                    &record.client_auth,
                    record.tokens.access_token.expose_secret(),
                    "access_token",
                )
                .await;
        }
        inner.sessions.delete_session(&self.key).await
    }

    /// The current access token (for tests and tools; never log it).
    pub async fn access_token_for_testing(&self) -> atauth_oauth::AccessToken {
        self.cached.read().await.record.tokens.access_token.clone()
    }
}
