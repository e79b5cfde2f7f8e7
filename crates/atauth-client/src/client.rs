//! [`OAuthClient`]: start an authorization (discovery, PAR with PKCE and DPoP) and finish it
//! (callback checks, code exchange, `sub` verification), producing an [`OAuthSession`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use atauth_crypto::dpop::DpopSigner;
use atauth_crypto::pkce::PkceVerifier;
use atauth_crypto::random::{generate_state, random_token};
use atauth_crypto::{Clock, PrivateKey, SystemClock};
use atauth_identity::http::SafeHttpClient;
use atauth_identity::{AtIdentifier, Did, IdentityResolver, TldPolicy};
use atauth_oauth::{
    CallbackOutcome, CallbackParams, IssuerPolicy, PushedAuthorizationRequest, ScopeSet, TokenRequest,
};
use url::Url;

use crate::config::{ClientConfig, ConfigError};
use crate::discovery::{Discovery, LoginInput};
use crate::dpop::DpopSender;
use crate::error::{AuthorizeError, CallbackError, StoreError, TokenError};
use crate::server_agent::ServerAgent;
use crate::session::OAuthSession;
use crate::store::{
    ClientAuthRecord, MemoryLock, MemoryStore, PendingAuthorization, SessionKey, SessionLock, SessionRecord,
    SessionStore, StateStore, StoredSecret, TokenSet,
};

/// Options for [`OAuthClient::authorize`].
#[derive(Debug, Clone, Default)]
pub struct AuthorizeOptions {
    /// The redirect URI (default: the first registered one). Must be registered exactly (T-18).
    pub redirect_uri: Option<String>,
    /// The scope to request (default: the metadata's scope). Must be a subset of it (T-23).
    pub scope: Option<String>,
    /// Opaque application data returned by the callback (stored server-side, never in `state`).
    pub app_state: Option<String>,
    /// OIDC `prompt` (`login`, `consent`, `select_account`, `none`, `create`).
    pub prompt: Option<String>,
}

/// What a successful callback yields.
#[derive(Debug)]
pub struct CallbackResult {
    /// The new session.
    pub session: OAuthSession,
    /// The `app_state` given to [`OAuthClient::authorize`].
    pub app_state: Option<String>,
}

/// Counters for observability and tests.
#[derive(Debug, Default)]
pub struct ClientStats {
    refresh_requests: AtomicU64,
}

impl ClientStats {
    /// How many refresh requests this client sent to token endpoints.
    pub fn refresh_requests(&self) -> u64 {
        self.refresh_requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_refresh(&self) {
        self.refresh_requests.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pub(crate) discovery: Discovery,
    pub(crate) sender: DpopSender,
    pub(crate) states: Arc<dyn StateStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) lock: Arc<dyn SessionLock>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stats: ClientStats,
}

impl Inner {
    pub(crate) fn agent<'a>(
        &'a self,
        issuer: &'a atauth_oauth::Issuer,
        metadata: &'a atauth_oauth::AuthorizationServerMetadata,
    ) -> ServerAgent<'a> {
        ServerAgent { sender: &self.sender, config: &self.config, issuer, metadata }
    }
}

/// The atproto OAuth client. Cheap to clone; share one per application.
///
/// See the [crate documentation](crate) for a complete example.
#[derive(Clone)]
pub struct OAuthClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.inner.config.client_id.as_str())
            .finish_non_exhaustive()
    }
}

/// Builder for [`OAuthClient`].
pub struct OAuthClientBuilder {
    config: ClientConfig,
    states: Option<Arc<dyn StateStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    lock: Option<Arc<dyn SessionLock>>,
    http: Option<SafeHttpClient>,
    identity: Option<IdentityResolver>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OAuthClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OAuthClientBuilder {
    /// The store for pending authorizations (default: in memory).
    #[must_use]
    pub fn state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.states = Some(store);
        self
    }

    /// The session store (default: in memory).
    #[must_use]
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// The refresh lock (default: in-process). Use the store's lock when several processes share
    /// a session store (CL-REF-02).
    #[must_use]
    pub fn session_lock(mut self, lock: Arc<dyn SessionLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// The outbound HTTP client (default: built from the config's timeout and dev switches).
    #[must_use]
    pub fn http_client(mut self, http: SafeHttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// The identity resolver (default: built over the HTTP client with the dev switches).
    #[must_use]
    pub fn identity_resolver(mut self, identity: IdentityResolver) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<OAuthClient, ConfigError> {
        let dev = &self.config.dev;
        let http = match self.http {
            Some(h) => h,
            None => SafeHttpClient::builder()
                .allow_http_loopback(dev.allow_http_loopback)
                .timeout(self.config.http_timeout)
                .build()
                .map_err(|e| ConfigError::Http(e.to_string()))?,
        };
        let identity = match self.identity {
            Some(i) => i,
            None => {
                let mut b = IdentityResolver::builder(http.clone());
                if let Some(plc) = &dev.plc_url {
                    b = b.plc_directory(plc.clone());
                }
                if let Some(h) = &dev.handle_resolver_url {
                    b = b.xrpc_handle_resolver(h.clone()).tld_policy(TldPolicy::development());
                }
                b.build().map_err(|e| ConfigError::Http(e.to_string()))?
            }
        };
        let policy = IssuerPolicy { allow_http_loopback: dev.allow_http_loopback };
        let memory = MemoryStore::new();
        let inner = Inner {
            discovery: Discovery::new(http.clone(), identity, policy),
            sender: DpopSender::new(http, Arc::clone(&self.clock)),
            states: self.states.unwrap_or_else(|| Arc::new(memory.clone())),
            sessions: self.sessions.unwrap_or_else(|| Arc::new(memory)),
            lock: self.lock.unwrap_or_else(|| Arc::new(MemoryLock::new())),
            clock: self.clock,
            config: self.config,
            stats: ClientStats::default(),
        };
        Ok(OAuthClient { inner: Arc::new(inner) })
    }
}

impl OAuthClient {
    /// A builder with in-memory stores and the system clock.
    pub fn builder(config: ClientConfig) -> OAuthClientBuilder {
        OAuthClientBuilder {
            config,
            states: None,
            sessions: None,
            lock: None,
            http: None,
            identity: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Discovery (identity and server metadata resolution).
    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// Starts an authorization for a handle, DID or PDS/entryway URL and returns the URL to send the
    /// user's browser to (CL-DISC-01, CL-PAR-01 … 07, CL-PKCE-01, CL-STATE-01, CL-DPOP-01).
    pub async fn authorize(&self, input: &str, options: AuthorizeOptions) -> Result<Url, AuthorizeError> {
        let inner = &self.inner;
        let config = &inner.config;
        let login = LoginInput::parse(input)?;
        let discovered = inner.discovery.discover(&login).await?;

        let redirect_uri = match options.redirect_uri {
            Some(r) if config.metadata.redirect_uris.contains(&r) => r,
            Some(r) => return Err(AuthorizeError::UnknownRedirectUri(r)),
            None => config.metadata.redirect_uris.first().cloned().ok_or(AuthorizeError::InvalidScope)?,
        };
        let allowed = config.metadata.scope_set().map_err(|_| AuthorizeError::InvalidScope)?;
        let scope = match options.scope {
            Some(s) => ScopeSet::parse(&s).map_err(|_| AuthorizeError::InvalidScope)?,
            None => allowed.clone(),
        };
        if !scope.has_atproto() || !scope.is_subset_of(&allowed) {
            return Err(AuthorizeError::InvalidScope);
        }

        let dpop_key = PrivateKey::generate(atauth_crypto::Algorithm::Es256); // CL-DPOP-01
        let signer = DpopSigner::new(dpop_key.clone());
        let pkce = PkceVerifier::generate();
        let state = generate_state();
        let client_auth = match config.keyset.as_ref().and_then(|k| k.signing_key()) {
            Some((kid, _)) => ClientAuthRecord::PrivateKeyJwt { kid: kid.to_owned() },
            None => ClientAuthRecord::None,
        };
        let login_hint = match &login {
            LoginInput::Identifier(id) => Some(id.as_str().to_owned()),
            LoginInput::Server(_) => None,
        };
        let scope_str = scope.to_string();
        let request = PushedAuthorizationRequest {
            client_id: config.client_id.as_str().to_owned(),
            response_type: "code".to_owned(),
            redirect_uri: Some(redirect_uri.clone()),
            scope: Some(scope_str.clone()),
            state: Some(state.clone()),
            code_challenge: Some(pkce.challenge()),
            code_challenge_method: Some("S256".to_owned()),
            login_hint,
            prompt: options.prompt.clone(),
            ..PushedAuthorizationRequest::default()
        };
        let agent = inner.agent(&discovered.issuer, &discovered.metadata);
        let par = agent.par(&signer, &client_auth, &request).await.map_err(AuthorizeError::Par)?;

        let mut url = Url::parse(&discovered.metadata.authorization_endpoint)
            .map_err(|_| AuthorizeError::InvalidAuthorizationEndpoint)?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(AuthorizeError::InvalidAuthorizationEndpoint);
        }
        url.query_pairs_mut()
            .append_pair("client_id", config.client_id.as_str())
            .append_pair("request_uri", &par.request_uri);

        let ttl = i64::try_from(config.state_ttl.as_secs()).unwrap_or(600);
        let pending = PendingAuthorization {
            issuer: discovered.issuer.clone(),
            dpop_key: dpop_key.to_private_jwk(),
            pkce_verifier: StoredSecret::new(pkce.expose_secret()),
            expected_did: discovered.identity.as_ref().map(|i| i.did.clone()),
            redirect_uri,
            client_auth,
            scope: scope_str,
            app_state: options.app_state,
            expires_at: inner.clock.unix_now() + ttl,
        };
        inner.states.put_state(&state, &pending).await?;
        Ok(url)
    }

    /// Finishes an authorization from the redirect's query string (without `?`).
    pub async fn callback_query(&self, query: &str) -> Result<CallbackResult, CallbackError> {
        self.callback(CallbackParams::from_query(query)?).await
    }

    /// Finishes an authorization: `state` (single use), `iss` (RFC 9207), error responses, code
    /// exchange with PKCE and DPoP, token checks (CL-TOK-02), `sub` checks (CL-SUB-01/02, T-10), and
    /// the granted scope (CL-SUB-05). On a failed identity check the tokens are revoked (CL-SUB-03).
    pub async fn callback(&self, params: CallbackParams) -> Result<CallbackResult, CallbackError> {
        let inner = &self.inner;
        let now = inner.clock.unix_now();
        let pending =
            inner.states.take_state(&params.state, now).await?.ok_or(CallbackError::UnknownState)?;
        // CL-CB-02: the AS metadata was required to advertise iss support, so iss is mandatory.
        let iss = params.iss.as_deref().ok_or(CallbackError::MissingIssuer)?;
        if !pending.issuer.matches(iss) {
            return Err(CallbackError::IssuerMismatch {
                expected: pending.issuer.to_string(),
                found: iss.to_owned(),
            });
        }
        let code = match params.outcome {
            CallbackOutcome::Error(e) => return Err(CallbackError::AuthorizationError(e)),
            CallbackOutcome::Code(c) => c,
        };
        let metadata = inner.discovery.authorization_server(&pending.issuer).await?;
        let key = PrivateKey::from_jwk(&pending.dpop_key)
            .map_err(|_| CallbackError::CorruptPendingAuthorization)?;
        let signer = DpopSigner::new(key);
        let agent = inner.agent(&pending.issuer, &metadata);
        let request = TokenRequest::AuthorizationCode {
            code,
            redirect_uri: pending.redirect_uri.clone(),
            code_verifier: pending.pkce_verifier.expose_secret().to_owned(),
        };
        let response =
            agent.token(&signer, &pending.client_auth, &request).await.map_err(CallbackError::Token)?;
        let info = response
            .validate_atproto()
            .map_err(|e| CallbackError::Token(TokenError::InvalidTokenResponse(e)))?;

        let revoke_all = || async {
            let _ = agent
                .revoke(&signer, &pending.client_auth, response.access_token.expose_secret(), "access_token")
                .await;
            if let Some(rt) = &response.refresh_token {
                let _ =
                    agent.revoke(&signer, &pending.client_auth, rt.expose_secret(), "refresh_token").await;
            }
        };
        // CL-SUB-01
        if let Some(expected) = &pending.expected_did
            && expected != &info.sub
        {
            revoke_all().await;
            return Err(CallbackError::SubMismatch { expected: expected.clone(), found: info.sub });
        }
        // CL-SUB-02: sub → DID document → PDS → issuer, fresh, must be this issuer.
        let pds = match inner.discovery.issuer_for_did_fresh(&info.sub).await {
            Ok((issuer, pds)) if issuer == pending.issuer => pds,
            Ok((issuer, _)) => {
                revoke_all().await;
                return Err(CallbackError::IssuerNotAuthoritative {
                    sub: info.sub,
                    expected: pending.issuer.to_string(),
                    found: issuer.to_string(),
                });
            }
            Err(e) => {
                revoke_all().await;
                return Err(CallbackError::SubVerification(e));
            }
        };
        // CL-SUB-05
        if let Some(missing) = inner.config.required_scopes.iter().find(|s| !info.scope.contains(s)) {
            revoke_all().await;
            return Err(CallbackError::ScopeNotGranted { missing: missing.clone() });
        }
        let record = SessionRecord {
            key: SessionKey { did: info.sub.clone(), session_id: random_token::<16>() },
            issuer: pending.issuer.clone(),
            pds_url: pds.to_string(),
            client_id: inner.config.client_id.as_str().to_owned(),
            client_auth: pending.client_auth.clone(),
            dpop_key: pending.dpop_key.clone(),
            tokens: TokenSet {
                access_token: response.access_token.clone(),
                refresh_token: response.refresh_token.clone(),
                scope: info.scope.to_string(),
                expires_at: response.expires_in.map(|e| now + e),
            },
            generation: 0,
            created_at: now,
        };
        inner.sessions.put_session(&record).await?;
        Ok(CallbackResult {
            session: OAuthSession::new(Arc::clone(&self.inner), record, signer),
            app_state: pending.app_state,
        })
    }

    /// Loads a stored session (e.g. after a restart). The DPoP key comes from the store (T-13).
    pub async fn restore(&self, key: &SessionKey) -> Result<Option<OAuthSession>, StoreError> {
        let Some(record) = self.inner.sessions.get_session(key).await? else {
            return Ok(None);
        };
        let Ok(dpop) = PrivateKey::from_jwk(&record.dpop_key) else {
            return Ok(None);
        };
        Ok(Some(OAuthSession::new(Arc::clone(&self.inner), record, DpopSigner::new(dpop))))
    }

    /// The stored sessions of an account.
    pub async fn sessions_of(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        self.inner.sessions.list_sessions(did).await
    }

    /// Every stored session (e.g. for `atauth whoami`).
    pub async fn all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        self.inner.sessions.list_all_sessions().await
    }

    /// Resolves a handle or DID (e.g. to display a handle for a session's DID).
    pub async fn resolve_identity(
        &self,
        id: &AtIdentifier,
    ) -> Result<atauth_identity::ResolvedIdentity, atauth_identity::IdentityError> {
        self.inner.discovery.identity().resolve(id).await
    }
}
