//! [`AuthServer`]: the framework-free core every endpoint runs on, and its builder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use atauth_crypto::dpop::{DpopConfig, DpopNonces, DpopVerifier};
use atauth_crypto::{Algorithm, Clock, PrivateKey, SecretBytes, SystemClock};
use atauth_identity::http::SafeHttpClient;
use atauth_oauth::{AuthorizationServerMetadata, Issuer, IssuerPolicy, ProtectedResourceMetadata};
use url::Url;

use crate::client::ClientResolver;
use crate::config::{Branding, Lifetimes, ServerConfig, SignInLimits};
use crate::keys::{self, KeyStoreError, SigningKeys};
use crate::password::PasswordHasher;
use crate::plc::PlcClient;
use crate::store::{SqliteStore, StoreError, Stores};

/// File name of the SQLite database in the data directory.
pub const DATABASE_FILE: &str = "atauth.sqlite";

/// The server's state, grouped by the concern that owns it. Each part's type lives in the module
/// that uses it (DPoP in [`crate::dpop`], password checks in [`crate::password`], PLC registration
/// in [`crate::plc`], legacy sessions in [`crate::legacy`], the verified-token cache in
/// [`crate::resource`]), so an endpoint touches only the parts it needs.
pub(crate) struct Inner {
    pub(crate) config: ServerConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stores: Stores,
    pub(crate) keys: RwLock<Arc<SigningKeys>>,
    /// The two metadata documents, rendered once at build time.
    pub(crate) metadata: MetadataDocuments,
    pub(crate) dpop: crate::dpop::DpopState,
    pub(crate) clients: ClientResolver,
    pub(crate) passwords: crate::password::PasswordChecks,
    pub(crate) plc: crate::plc::PlcRegistrar,
    /// Account creations in progress, by handle and invite code ([`crate::signup`]).
    pub(crate) creating: crate::signup::CreationLocks,
    pub(crate) legacy: crate::legacy::LegacyState,
    pub(crate) verified_tokens: crate::resource::VerifiedTokens,
    pub(crate) permission_sets: crate::permission_sets::PermissionSets,
}

/// RFC 8414 and RFC 9728 documents as served (they never change while the server runs).
pub(crate) struct MetadataDocuments {
    authorization_server: String,
    protected_resource: String,
}

/// The authorization server (and resource-server verifier) core. Cheap to clone; share one per
/// process. Endpoints are methods in the per-endpoint modules ([`crate::par`], [`crate::authorize`],
/// [`crate::token`], [`crate::revoke`], [`crate::resource`], [`crate::account`]); the HTTP layer
/// in [`crate::web`] only parses and maps.
#[derive(Clone)]
pub struct AuthServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer").field("issuer", &self.inner.config.issuer).finish_non_exhaustive()
    }
}

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The issuer is not a bare https origin (or `http://localhost` in dev mode) (AS-META-03).
    #[error("invalid issuer: {0}")]
    Issuer(#[from] atauth_oauth::IssuerError),
    /// The public URL is not a valid absolute URL.
    #[error("invalid public URL {0:?}")]
    PublicUrl(String),
    /// `scopes_supported` lacks `atproto` (SCOPE-01).
    #[error("scopes_supported must contain atproto")]
    ScopesWithoutAtproto,
    /// A key could not be loaded or generated.
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    /// The PLC rotation key is not a valid secp256k1/P-256 key.
    #[error("the PLC rotation key is invalid")]
    PlcRotationKey,
    /// The nonce secret is shorter than 32 bytes.
    #[error("the DPoP nonce secret must be at least 32 bytes")]
    NonceSecret,
    /// The store could not be opened.
    #[error("could not open the store: {0}")]
    Store(#[from] StoreError),
    /// The outbound HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] atauth_identity::http::HttpBuildError),
    /// Legacy sessions could not be set up (JWT secret or store).
    #[error(transparent)]
    Legacy(#[from] crate::legacy::LegacyBuildError),
    /// A pinned Lexicon file could not be loaded (`lexicon_dir`).
    #[error("could not load the pinned Lexicons: {0}")]
    LexiconDir(#[from] atauth_identity::lexicon::LexiconDirError),
    /// The permission-set cache lifetimes do not fit the access-token lifetime (SCOPE-11).
    #[error("permission-set cache: {0}")]
    LexiconCachePolicy(#[from] atauth_identity::lexicon::LexiconCachePolicyError),
    /// A development-only option was given to a server outside development mode.
    #[error("{0} is only allowed in development mode")]
    DevelopmentOnly(&'static str),
}

/// Builder for [`AuthServer`].
///
/// ```
/// use atauth_server::AuthServer;
/// let server = AuthServer::builder("https://pds.example.com")
///     .service_did("did:web:pds.example.com")
///     .handle_domains([".pds.example.com"])
///     .access_token_lifetime(std::time::Duration::from_secs(600))
///     .build()?; // no data_dir: in-memory stores and ephemeral keys
/// assert_eq!(server.issuer(), "https://pds.example.com");
/// # Ok::<(), atauth_server::BuildError>(())
/// ```
#[must_use]
pub struct AuthServerBuilder {
    issuer: String,
    public_url: Option<String>,
    bind_addr: SocketAddr,
    data_dir: Option<PathBuf>,
    service_did: Option<String>,
    lifetimes: Lifetimes,
    scopes_supported: Vec<String>,
    branding: Branding,
    trusted_clients: Vec<String>,
    sign_in_limits: SignInLimits,
    sign_up: crate::signup::SignUpConfig,
    client_ip_header: Option<String>,
    handle_domains: Vec<String>,
    plc_directory: Option<Url>,
    dev_mode: bool,
    max_body_bytes: usize,
    max_client_metadata_bytes: usize,
    client_assertion_max_age: Duration,
    client_assertion_skew: Duration,
    password_hash_concurrency: usize,
    password_consent_api: Option<bool>,
    consent_json_api: Option<bool>,
    stores: Option<Stores>,
    dpop_replay_capacity: usize,
    clock: Option<Arc<dyn Clock>>,
    signing_keys: Option<SigningKeys>,
    nonce_secret: Option<SecretBytes>,
    plc_rotation_key: Option<PrivateKey>,
    http: Option<SafeHttpClient>,
    dpop: Option<DpopConfig>,
    legacy: crate::legacy::LegacyOptions,
    lexicon_resolver: Option<Arc<dyn atauth_identity::lexicon::LexiconResolver>>,
    lexicon_dir: Option<PathBuf>,
    lexicon_dns_override: Option<atauth_identity::lexicon::DevOnlyTxtOverride>,
    lexicon_cache: Option<Arc<dyn atauth_identity::lexicon::LexiconCache>>,
    sign_in_limit_store: Option<Arc<dyn crate::ratelimit::SignInLimitStore>>,
}

impl std::fmt::Debug for AuthServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServerBuilder").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl AuthServerBuilder {
    setter!(
        /// Listen address (default `127.0.0.1:2583`).
        bind_addr: SocketAddr
    );
    setter!(
        /// All lifetimes at once.
        lifetimes: Lifetimes
    );
    setter!(
        /// Branding for the consent UI.
        branding: Branding
    );
    setter!(
        /// Sign-in rate limits (default [`SignInLimits::default`]).
        sign_in_limits: SignInLimits
    );
    setter!(
        /// **Development only**: `http://localhost` issuer, http loopback clients and fetches.
        dev_mode: bool
    );
    setter!(
        /// Request body limit (default 64 KiB).
        max_body_bytes: usize
    );
    setter!(
        /// Client metadata size cap (default 5 KiB).
        max_client_metadata_bytes: usize
    );
    setter!(
        /// Concurrent password hashes (default: CPUs).
        password_hash_concurrency: usize
    );
    setter!(
        /// Legacy sessions: JWT secret, lifetimes, store (see [`crate::legacy`]).
        legacy: crate::legacy::LegacyOptions
    );
    /// Whether sign-up needs an invite code (default off; `atauth serve --invite-required`).
    /// Codes are made by the operator (`atauth account invite create`, or
    /// [`crate::store::AccountStore::put_invite_code`] with [`crate::signup::new_invite_code`]).
    pub fn invite_required(mut self, required: bool) -> Self {
        self.sign_up.invite_required = required;
        self
    }

    /// Sign-up attempts per client address (default 10 at once, then one every 6 minutes;
    /// [`crate::signup`]). The buckets live where the sign-in limits do.
    pub fn sign_up_limit(mut self, limit: crate::RateLimit) -> Self {
        self.sign_up.per_ip = limit;
        self
    }

    /// Serve the headless password consent API (default: only in development mode, because it
    /// bypasses the consent screen; see [`crate::web`]).
    pub fn password_consent_api(mut self, on: bool) -> Self {
        self.password_consent_api = Some(on);
        self
    }

    /// Serve the JSON consent API for custom front ends (`/oauth/authorize/api/…`, CSRF-protected;
    /// docs/CONSENT-API.md). Default: only in development mode, so that a production server
    /// exposes no interface its operator did not choose.
    pub fn consent_json_api(mut self, on: bool) -> Self {
        self.consent_json_api = Some(on);
        self
    }

    /// The public base URL of the endpoints, if it differs from the issuer (T-05).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Data directory: SQLite database and key files (created if absent).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The service DID (`aud` of access tokens).
    pub fn service_did(mut self, did: impl Into<String>) -> Self {
        self.service_did = Some(did.into());
        self
    }

    /// Access-token lifetime (default 15 minutes; see [`Lifetimes::access_token`]).
    pub fn access_token_lifetime(mut self, d: Duration) -> Self {
        self.lifetimes.access_token = d;
        self
    }

    /// Refresh-token lifetimes for public and confidential clients.
    pub fn refresh_token_lifetimes(mut self, public: Duration, confidential: Duration) -> Self {
        self.lifetimes.public_refresh = public;
        self.lifetimes.confidential_refresh = confidential;
        self
    }

    /// `scopes_supported` (must include `atproto`).
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The header a trusted reverse proxy sets to the client address (see
    /// [`ServerConfig::client_ip_header`]).
    pub fn client_ip_header(mut self, name: impl Into<String>) -> Self {
        self.client_ip_header = Some(name.into().to_ascii_lowercase());
        self
    }

    /// Client ids whose metadata name, logo and URI the consent UI may show (AS-CMD-06).
    pub fn trusted_clients<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.trusted_clients = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Handle suffixes hosted here, e.g. `[".pds.example.com"]`.
    pub fn handle_domains<I: IntoIterator<Item = S>, S: Into<String>>(mut self, domains: I) -> Self {
        self.handle_domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// PLC directory URL.
    pub fn plc_directory(mut self, url: Url) -> Self {
        self.plc_directory = Some(url);
        self
    }

    /// Stores (default: SQLite in the data directory, with DPoP `jti`s in memory and DPoP nonces
    /// bound to the process; or memory without a data directory).
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// How many DPoP `jti`s the default SQLite setup keeps in memory at most (default
    /// [`crate::store::memory::proofs::DEFAULT_CAPACITY`]); a proof that would exceed it is refused
    /// with `server_error` rather than a live record forgotten. Ignored with [`Self::stores`].
    pub fn dpop_replay_capacity(mut self, records: usize) -> Self {
        self.dpop_replay_capacity = records;
        self
    }

    /// Clock (default: system clock). Tests inject a `ManualClock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Token-signing keys (default: loaded from / generated into the data directory).
    pub fn signing_keys(mut self, keys: SigningKeys) -> Self {
        self.signing_keys = Some(keys);
        self
    }

    /// DPoP nonce secret (≥ 32 bytes; share it between instances).
    pub fn nonce_secret(mut self, secret: SecretBytes) -> Self {
        self.nonce_secret = Some(secret);
        self
    }

    /// PLC rotation key (secp256k1 recommended).
    pub fn plc_rotation_key(mut self, key: PrivateKey) -> Self {
        self.plc_rotation_key = Some(key);
        self
    }

    /// Outbound HTTP client (default: SSRF-safe, loopback allowed only in dev mode).
    pub fn http_client(mut self, http: SafeHttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// DPoP verifier limits (default: ES256/ES256K, `iat` window −190 s … +180 s).
    pub fn dpop_config(mut self, config: DpopConfig) -> Self {
        self.dpop = Some(config);
        self
    }

    /// Permission-set resolution (SCOPE-10/11). Default: pinned files ([`Self::lexicon_dir`]), then
    /// an in-memory cache, then the network (`_lexicon` TXT through the system DNS, the DID's PDS
    /// through the SSRF-safe HTTP client).
    pub fn lexicon_resolver(mut self, resolver: Arc<dyn atauth_identity::lexicon::LexiconResolver>) -> Self {
        self.lexicon_resolver = Some(resolver);
        self
    }

    /// A directory of pinned Lexicon documents (`*.json`, each keyed by its `id`), used before the
    /// network, so air-gapped servers and tests resolve permission sets offline.
    pub fn lexicon_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lexicon_dir = Some(dir.into());
        self
    }

    /// Where resolved permission sets are cached (SCOPE-11) behind the default resolver. Default:
    /// the server's SQLite database when it has one, else memory. Give the Postgres store here so
    /// that several instances share their resolutions (issue 14). Ignored with
    /// [`Self::lexicon_resolver`].
    pub fn lexicon_cache(mut self, cache: Arc<dyn atauth_identity::lexicon::LexiconCache>) -> Self {
        self.lexicon_cache = Some(cache);
        self
    }

    /// Where the sign-in rate limits keep their buckets ([`crate::ratelimit`]). Default: in process
    /// ([`crate::ratelimit::MemorySignInLimits`]), one set per instance. Give a shared store (Redis
    /// or Postgres) so that several instances enforce one limit.
    pub fn sign_in_limit_store(mut self, store: Arc<dyn crate::ratelimit::SignInLimitStore>) -> Self {
        self.sign_in_limit_store = Some(store);
        self
    }

    /// **Development only**: answers for `_lexicon.<authority>` TXT lookups before the system DNS
    /// (a local permission-set publisher without a DNS zone). [`Self::build`] refuses it outside
    /// development mode.
    pub fn lexicon_dns_override(mut self, dns: atauth_identity::lexicon::DevOnlyTxtOverride) -> Self {
        self.lexicon_dns_override = Some(dns);
        self
    }

    /// Builds the server. Blocking (opens the database, reads or writes key files): call at startup.
    pub fn build(self) -> Result<AuthServer, BuildError> {
        let policy = if self.dev_mode { IssuerPolicy::development() } else { IssuerPolicy::production() };
        let issuer = Issuer::parse_with(&self.issuer, policy)?;
        let public_url = self.public_url.unwrap_or_else(|| issuer.to_string());
        let parsed_public = Url::parse(&public_url).map_err(|_| BuildError::PublicUrl(public_url.clone()))?;
        let public_url = public_url.trim_end_matches('/').to_owned();
        if !self.scopes_supported.iter().any(|s| s == "atproto") {
            return Err(BuildError::ScopesWithoutAtproto);
        }
        let service_did = self.service_did.unwrap_or_else(|| {
            let host = parsed_public.host_str().unwrap_or("localhost");
            match parsed_public.port() {
                Some(p) => format!("did:web:{host}%3A{p}"),
                None => format!("did:web:{host}"),
            }
        });
        if let Some(dir) = &self.data_dir {
            std::fs::create_dir_all(dir)
                .map_err(|source| KeyStoreError::Io { path: dir.display().to_string(), source })?;
        }
        // The default SQLite store is shared with the legacy-session tables (one writer thread).
        // It serves one process, so DPoP `jti`s (remembered ≤ 370 s) stay in memory instead of
        // costing a WAL write per request, and the DPoP nonces are bound to the process so that
        // no proof outlives a restart (issue 18; docs/ARCHITECTURE.md, "Replay records in memory").
        let mut default_sqlite = None;
        let mut nonces_per_process = false;
        let stores = match (self.stores, &self.data_dir) {
            (Some(s), _) => s,
            (None, Some(dir)) => {
                let store = SqliteStore::open(dir.join(DATABASE_FILE))?;
                default_sqlite = Some(store.clone());
                nonces_per_process = true;
                Stores {
                    dpop_replay: Arc::new(crate::store::ProofReplaySet::new(self.dpop_replay_capacity)),
                    ..Stores::single(store)
                }
            }
            (None, None) => Stores::memory(),
        };
        let signing_keys = match (self.signing_keys, &self.data_dir) {
            (Some(k), _) => k,
            (None, Some(dir)) => SigningKeys::load_or_generate(dir)?,
            (None, None) => SigningKeys::generate(),
        };
        let nonce_secret = match (self.nonce_secret, &self.data_dir) {
            (Some(s), _) => s,
            (None, Some(dir)) => keys::load_or_create_hex(&dir.join(keys::NONCE_SECRET_FILE), || {
                DpopNonces::generate_secret().expose_secret().to_vec()
            })?,
            (None, None) => DpopNonces::generate_secret(),
        };
        let nonce_secret = if nonces_per_process {
            // The configured secret plus 32 random bytes of this process: nonces (and so proofs)
            // of an earlier process are refused with `use_dpop_nonce` (AS-DPOP-03, AS-DPOP-05).
            let mut key = nonce_secret.expose_secret().to_vec();
            key.extend_from_slice(&atauth_crypto::random::random_bytes::<32>());
            SecretBytes::new(key)
        } else {
            nonce_secret
        };
        let nonces = DpopNonces::new(&nonce_secret, self.lifetimes.dpop_nonce_period)
            .ok_or(BuildError::NonceSecret)?;
        let plc_rotation_key = match (self.plc_rotation_key, &self.data_dir) {
            (Some(k), _) => k,
            (None, Some(dir)) => {
                let hex = keys::load_or_create_hex(&dir.join(keys::PLC_ROTATION_KEY_FILE), || {
                    PrivateKey::generate(Algorithm::Es256k).to_raw_scalar().expose_secret().to_vec()
                })?;
                PrivateKey::from_raw_scalar(Algorithm::Es256k, hex.expose_secret())
                    .map_err(|_| BuildError::PlcRotationKey)?
            }
            (None, None) => PrivateKey::generate(Algorithm::Es256k),
        };
        let http = match self.http {
            Some(h) => h,
            None => SafeHttpClient::builder().allow_http_loopback(self.dev_mode).build()?,
        };
        let legacy = crate::legacy::LegacyState::build(
            self.legacy,
            self.data_dir.as_deref(),
            default_sqlite.as_ref(),
        )?;
        let plc_directory = self
            .plc_directory
            .unwrap_or_else(|| Url::parse("https://plc.directory").unwrap_or_else(|_| unreachable!()));
        let config = ServerConfig {
            issuer: issuer.clone(),
            public_url: public_url.clone(),
            bind_addr: self.bind_addr,
            data_dir: self.data_dir,
            service_did,
            lifetimes: self.lifetimes,
            scopes_supported: self.scopes_supported,
            branding: self.branding,
            trusted_clients: self.trusted_clients,
            sign_in_limits: self.sign_in_limits,
            sign_up: self.sign_up,
            client_ip_header: self.client_ip_header,
            handle_domains: self.handle_domains.into_iter().map(|d| d.to_ascii_lowercase()).collect(),
            plc_directory: plc_directory.clone(),
            dev_mode: self.dev_mode,
            max_body_bytes: self.max_body_bytes,
            max_client_metadata_bytes: self.max_client_metadata_bytes,
            client_assertion_max_age: self.client_assertion_max_age,
            client_assertion_skew: self.client_assertion_skew,
            password_hash_concurrency: self.password_hash_concurrency,
            password_consent_api: self.password_consent_api.unwrap_or(self.dev_mode),
            consent_json_api: self.consent_json_api.unwrap_or(self.dev_mode),
        };
        let mut meta = AuthorizationServerMetadata::atproto_default(&issuer);
        meta.scopes_supported = Some(config.scopes_supported.clone());
        // We redirect with query or fragment; form_post is not implemented.
        meta.response_modes_supported = Some(vec!["query".into(), "fragment".into()]);
        meta.protected_resources = Some(vec![public_url.clone()]);
        let as_metadata_json = atauth_crypto::json::to_string(&meta);
        let resource_meta = ProtectedResourceMetadata::new(public_url, &issuer);
        let resource_metadata_json = atauth_crypto::json::to_string(&resource_meta);
        let clients = ClientResolver::new(http.clone(), stores.clients.clone(), &config);
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let lexicons = match self.lexicon_resolver {
            Some(r) => r,
            None => default_lexicon_resolver(
                &config,
                &clock,
                self.lexicon_cache.or_else(|| {
                    default_sqlite
                        .as_ref()
                        .map(|s| Arc::new(s.clone()) as Arc<dyn atauth_identity::lexicon::LexiconCache>)
                }),
                http.clone(),
                self.lexicon_dir.as_deref(),
                self.lexicon_dns_override,
            )?,
        };
        Ok(AuthServer {
            inner: Arc::new(Inner {
                dpop: crate::dpop::DpopState {
                    verifier: DpopVerifier::new(self.dpop.unwrap_or_default()),
                    nonces,
                },
                passwords: crate::password::PasswordChecks {
                    hasher: PasswordHasher::new(config.password_hash_concurrency),
                    limiter: match self.sign_in_limit_store {
                        Some(store) => {
                            crate::ratelimit::SignInLimiter::with_store(config.sign_in_limits, store)
                        }
                        None => crate::ratelimit::SignInLimiter::new(config.sign_in_limits),
                    },
                },
                plc: crate::plc::PlcRegistrar {
                    client: PlcClient::new(http, plc_directory),
                    rotation_key: plc_rotation_key,
                },
                creating: crate::signup::CreationLocks::default(),
                config,
                keys: RwLock::new(Arc::new(signing_keys)),
                stores,
                clock,
                clients,
                metadata: MetadataDocuments {
                    authorization_server: as_metadata_json,
                    protected_resource: resource_metadata_json,
                },
                legacy,
                verified_tokens: crate::resource::VerifiedTokens::default(),
                permission_sets: crate::permission_sets::PermissionSets::new(lexicons),
            }),
        })
    }
}

impl AuthServer {
    /// A builder for the server with this issuer (a bare origin, e.g. `https://pds.example.com`).
    pub fn builder(issuer: impl Into<String>) -> AuthServerBuilder {
        AuthServerBuilder {
            issuer: issuer.into(),
            public_url: None,
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 2583)),
            data_dir: None,
            service_did: None,
            lifetimes: Lifetimes::default(),
            scopes_supported: ["atproto", "transition:generic", "transition:chat.bsky", "transition:email"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            branding: Branding::default(),
            trusted_clients: Vec::new(),
            sign_in_limits: SignInLimits::default(),
            sign_up: crate::signup::SignUpConfig::default(),
            client_ip_header: None,
            handle_domains: Vec::new(),
            plc_directory: None,
            dev_mode: false,
            max_body_bytes: 64 * 1024,
            max_client_metadata_bytes: 5 * 1024,
            client_assertion_max_age: Duration::from_secs(60),
            client_assertion_skew: Duration::from_secs(30),
            password_hash_concurrency: std::thread::available_parallelism()
                .map(std::num::NonZero::get)
                .unwrap_or(2),
            password_consent_api: None,
            consent_json_api: None,
            stores: None,
            dpop_replay_capacity: crate::store::memory::proofs::DEFAULT_CAPACITY,
            clock: None,
            signing_keys: None,
            nonce_secret: None,
            plc_rotation_key: None,
            http: None,
            dpop: None,
            legacy: crate::legacy::LegacyOptions::default(),
            lexicon_resolver: None,
            lexicon_dir: None,
            lexicon_dns_override: None,
            lexicon_cache: None,
            sign_in_limit_store: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The issuer string (no trailing slash).
    pub fn issuer(&self) -> &str {
        self.inner.config.issuer.as_str()
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// Current Unix time from the injected clock.
    pub fn now(&self) -> i64 {
        self.inner.clock.unix_now()
    }

    /// The DPoP nonce to send now in `DPoP-Nonce` (AS-DPOP-03).
    pub fn dpop_nonce(&self) -> String {
        self.inner.dpop.nonces.current(self.now())
    }

    /// `/.well-known/oauth-authorization-server` (RFC 8414; AS-META-01/02/04), rendered once.
    pub fn authorization_server_metadata_json(&self) -> &str {
        &self.inner.metadata.authorization_server
    }

    /// `/.well-known/oauth-protected-resource` (RFC 9728; RS-META-01), rendered once.
    pub fn protected_resource_metadata_json(&self) -> &str {
        &self.inner.metadata.protected_resource
    }

    /// The current signing keys.
    pub fn signing_keys(&self) -> Arc<SigningKeys> {
        Arc::clone(&self.inner.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The public JWKS (`/oauth/jwks`).
    pub fn jwks_json(&self) -> String {
        self.signing_keys().jwks_json().to_owned()
    }

    /// Rotates the signing key: a new key signs from now on, the old ones keep verifying and stay in
    /// the JWKS. Persists the set when the server has a data directory.
    pub fn rotate_signing_key(&self) -> Result<(), KeyStoreError> {
        let path = self.inner.config.data_dir.as_ref().map(|d| d.join(keys::SIGNING_KEYS_FILE));
        let rotated = self.signing_keys().rotate(path.as_deref())?;
        *self.inner.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rotated);
        Ok(())
    }

    /// The full public URL of an endpoint path (for DPoP `htu`, T-05).
    pub(crate) fn endpoint_url(&self, path: &str) -> String {
        let mut s = String::with_capacity(self.inner.config.public_url.len() + path.len());
        s.push_str(&self.inner.config.public_url);
        s.push_str(path);
        s
    }

    /// Deletes expired codes, token families, requests, device sessions, replay records and
    /// pending second-factor states, and sign-in limit buckets that are full again.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let s = &self.inner.stores;
        Ok(s.tokens.purge_expired_tokens(now).await?
            + s.devices.purge_expired_devices(now).await?
            + s.replay.purge_expired_replay(now).await?
            + if std::ptr::addr_eq(Arc::as_ptr(&s.replay), Arc::as_ptr(&s.dpop_replay)) {
                0
            } else {
                s.dpop_replay.purge_expired_replay(now).await?
            }
            + self.legacy_store().purge_expired_refresh(now).await?
            + s.factors.purge_expired_pending_factors(now).await?
            + self.inner.passwords.limiter.purge_full(self.inner.clock.now()).await?)
    }
}

/// Pinned files, then a cache with the SCOPE-11 lifetimes (the given one: the Postgres store, or
/// the server's SQLite database when it has one, so sets survive a restart, behind a memory copy;
/// else memory), then the network.
fn default_lexicon_resolver(
    config: &ServerConfig,
    clock: &Arc<dyn Clock>,
    cache: Option<Arc<dyn atauth_identity::lexicon::LexiconCache>>,
    http: SafeHttpClient,
    dir: Option<&std::path::Path>,
    dns_override: Option<atauth_identity::lexicon::DevOnlyTxtOverride>,
) -> Result<Arc<dyn atauth_identity::lexicon::LexiconResolver>, BuildError> {
    use atauth_identity::lexicon::{
        AtprotoLexiconResolver, CachedLexiconResolver, LayeredLexiconCache, LexiconCachePolicy, LexiconDir,
        MemoryLexiconCache,
    };
    use atauth_identity::{AtprotoDidResolver, TldPolicy, TxtLookup};
    let system: Arc<dyn TxtLookup> = Arc::new(crate::permission_sets::SystemTxtLookup::default());
    let txt: Arc<dyn TxtLookup> = match dns_override {
        Some(_) if !config.dev_mode => return Err(BuildError::DevelopmentOnly("lexicon_dns_override")),
        Some(o) => Arc::new(o.fallback(system)),
        None => system,
    };
    let tld = if config.dev_mode { TldPolicy::development() } else { TldPolicy::production() };
    let dids = AtprotoDidResolver::new(http.clone())
        .plc_directory(config.plc_directory.clone())
        .tld_policy(tld)
        .allow_localhost_did_web(config.dev_mode);
    let network = AtprotoLexiconResolver::new(txt, Arc::new(dids), http).tld_policy(tld);
    let access = config.lifetimes.access_token;
    let policy = match LexiconCachePolicy::for_access_token_lifetime(access) {
        Ok(p) => p,
        // Access tokens over an hour: stay fresh for one token lifetime (at most the 24 h maximum).
        Err(_) => LexiconCachePolicy::new(
            access,
            access.max(atauth_identity::lexicon::DEFAULT_LEXICON_MAX_AGE),
            access,
        )?,
    };
    let cache: Arc<dyn atauth_identity::lexicon::LexiconCache> = match cache {
        // Memory in front of the database: a set in use costs no read or parse per request.
        Some(durable) => Arc::new(LayeredLexiconCache::new(durable)),
        None => Arc::new(MemoryLexiconCache::new()),
    };
    let mut resolver =
        CachedLexiconResolver::new(cache, policy).network(Arc::new(network)).clock(Arc::clone(clock));
    if let Some(dir) = dir {
        resolver = resolver.local_dir(LexiconDir::load(dir)?);
    }
    Ok(Arc::new(resolver))
}
