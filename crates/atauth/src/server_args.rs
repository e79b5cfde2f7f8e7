//! [`ServerArgs`]: the settings of `atauth_server::AuthServerBuilder` as flags and `ATAUTH_*`
//! environment variables, shared by `atauth serve` and `atauth account create`, and the one function
//! that turns them into a built server ([`ServerArgs::build`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atauth_crypto::SecretBytes;
use atauth_oauth::{Issuer, IssuerPolicy};
use atauth_server::keys::{SIGNING_KEYS_FILE, SigningKeys};
use atauth_server::legacy::LegacyOptions;
use atauth_server::store::postgres::{ConnectError, PostgresOptions, PostgresStore};
use atauth_server::store::redis::{RedisConnectError, RedisOptions, RedisReplayStore};
use atauth_server::store::{PostgresLegacyStore, Stores};
use atauth_server::{AuthServer, Branding, Lifetimes, RateLimit, SignInLimits};
use clap::{ArgAction, Args};
use url::Url;

use crate::durations::{parse_duration, parse_duration_or_zero, parse_rate};
use crate::error::CliError;
use crate::paths;

/// Server settings.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The issuer: the public origin of this server, e.g. `https://auth.example.com` (no path, no
    /// trailing slash). Default with `--dev`: `http://localhost:PORT`.
    #[arg(long, env = "ATAUTH_ISSUER", value_name = "URL", help_heading = "Server")]
    pub(crate) issuer: Option<String>,
    /// The public base URL of the endpoints, if it differs from the issuer.
    #[arg(long, env = "ATAUTH_PUBLIC_URL", value_name = "URL", help_heading = "Server")]
    pub(crate) public_url: Option<String>,
    /// Address to listen on.
    #[arg(
        long,
        env = "ATAUTH_BIND",
        default_value = "127.0.0.1",
        value_name = "IP",
        help_heading = "Server"
    )]
    pub(crate) bind: IpAddr,
    /// Port to listen on (0: a free port, printed at start).
    #[arg(long, env = "ATAUTH_PORT", default_value_t = 2583, help_heading = "Server")]
    pub(crate) port: u16,
    /// Data directory: the SQLite database and the key files (created 0700 if absent).
    /// Default: `$XDG_DATA_HOME/atauth/server`, i.e. `~/.local/share/atauth/server`.
    #[arg(long, env = "ATAUTH_DATA_DIR", value_name = "DIR", help_heading = "Server")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Postgres instead of the SQLite file, e.g. `postgres://atauth@db.internal/atauth`: several
    /// `atauth serve` instances on one database act as one server (accounts, tokens, sign-in
    /// limits, permission-set cache are shared). The data directory then holds
    /// only the key files; share them (`--signing-key`, `ATAUTH_JWT_SECRET`,
    /// `ATAUTH_DPOP_NONCE_SECRET`) between the instances. An empty database is set up on first start.
    #[arg(
        long,
        env = "ATAUTH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Server"
    )]
    pub(crate) database_url: Option<String>,
    /// Upgrade a `--database-url` database of an older schema version at start (without it such a
    /// database is refused, untouched). Run it on one instance, before starting the others.
    #[arg(long, env = "ATAUTH_MIGRATE", requires = "database_url", help_heading = "Server")]
    pub(crate) migrate: bool,
    /// Redis for the replay records (DPoP and client-assertion `jti`s, PKCE challenges) and the
    /// sign-in rate limits, shared by the instances, e.g. `redis://127.0.0.1:6379`. Needs
    /// `--database-url`; without it both live in Postgres. While Redis is unreachable the requests
    /// that need it fail (fail closed: `server_error`, sign-in 503) and recover by themselves.
    #[arg(
        long,
        env = "ATAUTH_REDIS_URL",
        value_name = "URL",
        hide_env_values = true,
        requires = "database_url",
        help_heading = "Server"
    )]
    pub(crate) redis_url: Option<String>,
    /// Prepended to every key atauth writes to `--redis-url`, so several services (or several
    /// atauth deployments) can share one Redis. Every instance of one service uses the same prefix.
    #[arg(
        long,
        env = "ATAUTH_REDIS_PREFIX",
        value_name = "PREFIX",
        default_value = "atauth:",
        requires = "redis_url",
        help_heading = "Server"
    )]
    pub(crate) redis_prefix: String,
    /// The token-signing key set (a private JWKS). Generated on first start (one ES256 key, mode
    /// 0600) if the file does not exist. Default: `<data-dir>/oauth-signing-keys.json`.
    #[arg(long, env = "ATAUTH_SIGNING_KEY", value_name = "FILE", help_heading = "Server")]
    pub(crate) signing_key: Option<PathBuf>,
    /// The service DID access tokens are issued for (`aud`). Default: `did:web:<public host>`.
    #[arg(long, env = "ATAUTH_SERVICE_DID", value_name = "DID", help_heading = "Server")]
    pub(crate) service_did: Option<String>,
    /// **Development only**: allow an `http://localhost` issuer, plain-http loopback clients and
    /// loopback fetches. Implies `--handle-domains .test` when none are given.
    #[arg(long, env = "ATAUTH_DEV", help_heading = "Server")]
    pub(crate) dev: bool,

    /// PLC directory where new accounts' did:plc are registered. Default: `https://plc.directory`,
    /// except with `--dev`, where there is none and creating accounts needs this flag.
    #[arg(long, env = "ATAUTH_PLC_URL", value_name = "URL", help_heading = "Accounts")]
    pub(crate) plc_url: Option<Url>,
    /// Handle suffixes this server hosts, comma-separated (e.g. `.pds.example.com`).
    #[arg(
        long,
        env = "ATAUTH_HANDLE_DOMAINS",
        value_delimiter = ',',
        value_name = "DOMAINS",
        help_heading = "Accounts"
    )]
    pub(crate) handle_domains: Vec<String>,

    /// Access-token lifetime (e.g. `15m`).
    #[arg(long, env = "ATAUTH_ACCESS_TOKEN_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) access_token_lifetime: Option<Duration>,
    /// Refresh-token lifetime for public clients (e.g. `14d`, at most two weeks by the spec).
    #[arg(long, env = "ATAUTH_REFRESH_TOKEN_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) refresh_token_lifetime: Option<Duration>,
    /// Refresh-token lifetime for confidential clients (e.g. `90d`).
    #[arg(long, env = "ATAUTH_CONFIDENTIAL_REFRESH_TOKEN_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) confidential_refresh_token_lifetime: Option<Duration>,
    /// Whole-session lifetime for public clients (e.g. `14d`).
    #[arg(long, env = "ATAUTH_SESSION_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) session_lifetime: Option<Duration>,
    /// Whole-session lifetime for confidential clients (e.g. `730d`).
    #[arg(long, env = "ATAUTH_CONFIDENTIAL_SESSION_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) confidential_session_lifetime: Option<Duration>,
    /// Lifetime of a pushed authorization request (e.g. `5m`).
    #[arg(long, env = "ATAUTH_PAR_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) par_lifetime: Option<Duration>,
    /// Lifetime of an authorization code (e.g. `5m`).
    #[arg(long, env = "ATAUTH_CODE_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) code_lifetime: Option<Duration>,
    /// How long a refreshed-away refresh token may be retried once by the same client and DPoP key
    /// whose response was lost (e.g. `30s`; `0` turns it off: every replay revokes the session).
    #[arg(long, env = "ATAUTH_REFRESH_RETRY_GRACE", value_parser = parse_duration_or_zero, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) refresh_retry_grace: Option<Duration>,

    /// `scopes_supported`, comma-separated (must include `atproto`).
    #[arg(
        long,
        env = "ATAUTH_SCOPES",
        value_delimiter = ',',
        value_name = "SCOPES",
        help_heading = "Protocol"
    )]
    pub(crate) scopes: Vec<String>,
    /// Request body limit in bytes.
    #[arg(long, env = "ATAUTH_MAX_BODY_BYTES", value_name = "BYTES", help_heading = "Protocol")]
    pub(crate) max_body_bytes: Option<usize>,
    /// Largest client-metadata document accepted, in bytes.
    #[arg(long, env = "ATAUTH_MAX_CLIENT_METADATA_BYTES", value_name = "BYTES", help_heading = "Protocol")]
    pub(crate) max_client_metadata_bytes: Option<usize>,
    /// How many password hashes may run at once (default: the number of CPUs).
    #[arg(long, env = "ATAUTH_PASSWORD_HASH_CONCURRENCY", value_name = "N", help_heading = "Protocol")]
    pub(crate) password_hash_concurrency: Option<usize>,
    /// Serve the headless password consent API (`POST /oauth/authorize/sign-in-and-approve`), which
    /// signs in and approves without the consent screen and without a CSRF token, for scripts and
    /// tests. Default: on with `--dev` only. Not the JSON API for front ends (`--consent-json-api`).
    #[arg(long, env = "ATAUTH_CONSENT_API", action = ArgAction::Set, value_name = "BOOL", help_heading = "Protocol")]
    pub(crate) consent_api: Option<bool>,
    /// Serve the JSON consent API for a custom sign-in front end on this origin
    /// (`/oauth/authorize/api/…`: describe the request, sign in, approve, deny; CSRF-protected and
    /// rate limited like the built-in pages; docs/CONSENT-API.md). Default: on with `--dev` only.
    #[arg(long, env = "ATAUTH_CONSENT_JSON_API", action = ArgAction::Set, value_name = "BOOL", help_heading = "Protocol")]
    pub(crate) consent_json_api: Option<bool>,

    /// Legacy (`createSession`) access-token lifetime (e.g. `2h`). The HS256 secret is read from
    /// `ATAUTH_JWT_SECRET` (hex, at least 32 bytes) or kept in `<data-dir>/legacy-jwt.secret` (0600).
    #[arg(long, env = "ATAUTH_LEGACY_ACCESS_TOKEN_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) legacy_access_token_lifetime: Option<Duration>,
    /// Legacy refresh-token lifetime (e.g. `90d`).
    #[arg(long, env = "ATAUTH_LEGACY_REFRESH_TOKEN_LIFETIME", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) legacy_refresh_token_lifetime: Option<Duration>,
    /// How long a rotated legacy refresh token keeps working (e.g. `2h`).
    #[arg(long, env = "ATAUTH_LEGACY_REFRESH_GRACE", value_parser = parse_duration, value_name = "DURATION", help_heading = "Lifetimes")]
    pub(crate) legacy_refresh_grace: Option<Duration>,

    /// Password sign-in limit per (identifier, client address) pair, as `BURST/REFILL` (e.g. `10/1m`:
    /// 10 attempts, then one more per minute). Only failures count: a success resets it.
    #[arg(long, env = "ATAUTH_SIGN_IN_LIMIT_IDENTIFIER_IP", value_parser = parse_rate, value_name = "BURST/DURATION", help_heading = "Sign-in")]
    pub(crate) sign_in_limit_identifier_ip: Option<RateLimit>,
    /// Password sign-in ceiling per identifier from any address, as `BURST/REFILL` (e.g. `100/36s`).
    #[arg(long, env = "ATAUTH_SIGN_IN_LIMIT_IDENTIFIER", value_parser = parse_rate, value_name = "BURST/DURATION", help_heading = "Sign-in")]
    pub(crate) sign_in_limit_identifier: Option<RateLimit>,
    /// Password sign-in limit per client IP address (IPv6 per /64), as `BURST/REFILL` (e.g. `30/10s`).
    #[arg(long, env = "ATAUTH_SIGN_IN_LIMIT_IP", value_parser = parse_rate, value_name = "BURST/DURATION", help_heading = "Sign-in")]
    pub(crate) sign_in_limit_ip: Option<RateLimit>,
    /// The header a trusted reverse proxy puts the client address in (`x-forwarded-for`: its
    /// right-most address; or e.g. `x-real-ip`). Only behind a proxy that overwrites it. Default:
    /// the TCP peer address.
    #[arg(long, env = "ATAUTH_CLIENT_IP_HEADER", value_name = "HEADER", help_heading = "Sign-in")]
    pub(crate) client_ip_header: Option<String>,
    /// Sign-up needs an invite code (made with `atauth account invite create`). Without it the
    /// sign-up page's invite-code field is optional, and a code that is given must still be valid.
    #[arg(long, env = "ATAUTH_INVITE_REQUIRED", help_heading = "Sign-up")]
    pub(crate) invite_required: bool,
    /// Sign-up attempts per client IP address (IPv6 per /64), as `BURST/REFILL` (default
    /// `10/6m`). Shared by the instances where the sign-in limits are.
    #[arg(long, env = "ATAUTH_SIGN_UP_LIMIT_IP", value_parser = parse_rate, value_name = "BURST/DURATION", help_heading = "Sign-up")]
    pub(crate) sign_up_limit_ip: Option<RateLimit>,
    /// Client ids whose own name, logo and URI the consent page may show, comma-separated.
    #[arg(
        long,
        env = "ATAUTH_TRUSTED_CLIENTS",
        value_delimiter = ',',
        value_name = "CLIENT-IDS",
        help_heading = "Sign-in"
    )]
    pub(crate) trusted_clients: Vec<String>,

    /// A directory of pinned Lexicon documents (`*.json`, each keyed by its `id`): permission sets
    /// named by `include:` scopes are taken from here before the network (air-gapped servers).
    #[arg(long, env = "ATAUTH_LEXICON_DIR", value_name = "DIR", help_heading = "Permissions")]
    pub(crate) lexicon_dir: Option<PathBuf>,
    /// **Development only**: answer the `_lexicon` TXT lookup of a permission-set authority
    /// locally, as `NAME=DID` (e.g. `_lexicon.example.app=did:plc:…`); repeatable. Other names go
    /// to the system DNS.
    #[arg(long, value_name = "NAME=DID", help_heading = "Permissions")]
    pub(crate) dev_lexicon_dns: Vec<String>,

    /// Server name shown on the sign-in and consent pages.
    #[arg(long, env = "ATAUTH_BRAND_NAME", value_name = "NAME", help_heading = "Branding")]
    pub(crate) brand_name: Option<String>,
    /// Logo URL.
    #[arg(long, env = "ATAUTH_BRAND_LOGO_URL", value_name = "URL", help_heading = "Branding")]
    pub(crate) brand_logo_url: Option<String>,
    /// Home page URL.
    #[arg(long, env = "ATAUTH_BRAND_HOME_URL", value_name = "URL", help_heading = "Branding")]
    pub(crate) brand_home_url: Option<String>,
    /// Terms of service URL.
    #[arg(long, env = "ATAUTH_BRAND_TOS_URL", value_name = "URL", help_heading = "Branding")]
    pub(crate) brand_tos_url: Option<String>,
    /// Privacy policy URL.
    #[arg(long, env = "ATAUTH_BRAND_PRIVACY_URL", value_name = "URL", help_heading = "Branding")]
    pub(crate) brand_privacy_url: Option<String>,
    /// Support page URL, or a `mailto:` address (shown as "Support" on every page).
    #[arg(long, env = "ATAUTH_BRAND_SUPPORT_URL", value_name = "URL", help_heading = "Branding")]
    pub(crate) brand_support_url: Option<String>,
    /// Primary colour (a CSS value).
    #[arg(long, env = "ATAUTH_BRAND_COLOR", value_name = "CSS", help_heading = "Branding")]
    pub(crate) brand_color: Option<String>,
}

/// What [`ServerArgs::build`] produced besides the server.
#[derive(Debug)]
pub(crate) struct Built {
    /// The server.
    pub(crate) server: AuthServer,
    /// The data directory in use.
    pub(crate) data_dir: PathBuf,
    /// The signing-key file in use.
    pub(crate) signing_key_path: PathBuf,
    /// Whether the signing key was generated now (first start).
    pub(crate) generated_key: bool,
    /// The current signing key's `kid` (its public thumbprint).
    pub(crate) signing_kid: String,
    /// The PLC directory accounts are registered in, if any.
    pub(crate) plc_url: Option<Url>,
}

impl ServerArgs {
    /// The data directory (flag, env, or the per-user default).
    pub(crate) fn data_dir(&self) -> Result<PathBuf, CliError> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => paths::default_server_dir(),
        }
    }

    /// The issuer: as given, or `http://localhost:PORT` in dev mode.
    pub(crate) fn issuer(&self, port: u16) -> Result<String, CliError> {
        match (&self.issuer, self.dev) {
            (Some(i), _) => Ok(i.clone()),
            (None, true) if port != 0 => Ok(format!("http://localhost:{port}")),
            (None, true) => Err(CliError::Config("--dev without --issuer needs a fixed --port".into())),
            (None, false) => Err(CliError::Config(
                "--issuer (ATAUTH_ISSUER) is required, e.g. https://auth.example.com; \
                 for a local server on http://localhost:PORT add --dev"
                    .into(),
            )),
        }
    }

    /// The PLC directory accounts are registered in: the flag; else the public directory, except in
    /// dev mode, where registering a `http://localhost` PDS in the public directory would publish a
    /// DID nobody can use.
    pub(crate) fn plc_url(&self) -> Option<Url> {
        match &self.plc_url {
            Some(u) => Some(u.clone()),
            None if self.dev => None,
            None => Url::parse("https://plc.directory").ok(),
        }
    }

    fn handle_domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = self
            .handle_domains
            .iter()
            .map(|d| d.trim())
            .filter(|d| !d.is_empty())
            .map(|d| {
                if d.starts_with('.') {
                    d.to_ascii_lowercase()
                } else {
                    format!(".{}", d.to_ascii_lowercase())
                }
            })
            .collect();
        if domains.is_empty() && self.dev {
            domains.push(".test".to_owned());
        }
        domains
    }

    fn lifetimes(&self) -> Lifetimes {
        let mut l = Lifetimes::default();
        let set = |slot: &mut Duration, v: Option<Duration>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut l.access_token, self.access_token_lifetime);
        set(&mut l.public_refresh, self.refresh_token_lifetime);
        set(&mut l.confidential_refresh, self.confidential_refresh_token_lifetime);
        set(&mut l.public_session, self.session_lifetime);
        set(&mut l.confidential_session, self.confidential_session_lifetime);
        set(&mut l.par_request, self.par_lifetime);
        set(&mut l.code, self.code_lifetime);
        set(&mut l.refresh_retry_grace, self.refresh_retry_grace);
        l
    }

    fn legacy_options(&self) -> Result<LegacyOptions, CliError> {
        let mut legacy = LegacyOptions::default();
        legacy.jwt_secret = LegacyOptions::secret_from_env()
            .map_err(|e| CliError::Config(format!("{}: {e}", atauth_server::legacy::JWT_SECRET_ENV)))?;
        if let Some(d) = self.legacy_access_token_lifetime {
            legacy.access_lifetime = d;
        }
        if let Some(d) = self.legacy_refresh_token_lifetime {
            legacy.refresh_lifetime = d;
        }
        if let Some(d) = self.legacy_refresh_grace {
            legacy.refresh_grace = d;
        }
        Ok(legacy)
    }

    fn branding(&self) -> Branding {
        let d = Branding::default();
        Branding {
            name: self.brand_name.clone().unwrap_or(d.name),
            logo_uri: self.brand_logo_url.clone(),
            home_uri: self.brand_home_url.clone(),
            tos_uri: self.brand_tos_url.clone(),
            privacy_uri: self.brand_privacy_url.clone(),
            support_uri: self.brand_support_url.clone(),
            primary_color: self.brand_color.clone(),
        }
    }

    /// Builds the server for `port` (the port actually bound). Creates the data directory (0700)
    /// and loads or generates the signing key (0600). Blocking: call at startup.
    pub(crate) fn build(&self, port: u16) -> Result<Built, CliError> {
        // Configuration errors first: a refused start writes nothing (no data directory, no key).
        let issuer = self.issuer(port)?;
        let policy = if self.dev { IssuerPolicy::development() } else { IssuerPolicy::production() };
        let invalid_issuer = |err: atauth_oauth::IssuerError| {
            let hint = plain_http_issuer_hint(&issuer, self.dev);
            CliError::Config(format!("invalid issuer {issuer:?}: {err}{hint}"))
        };
        Issuer::parse_with(&issuer, policy).map_err(invalid_issuer)?;
        // Postgres and Redis first: a wrong URL, an old schema or a refused login stops the start
        // before anything is written (no data directory, no key).
        let nonce_secret = nonce_secret_from_env()?;
        let rt = tokio::runtime::Handle::current();
        let redis = match &self.redis_url {
            Some(url) => Some(rt.block_on(connect_redis(url, &self.redis_prefix))?),
            None => None,
        };
        let postgres = match &self.database_url {
            Some(url) => Some(rt.block_on(connect_postgres(url, self.migrate))?),
            None => None,
        };
        let data_dir = self.data_dir()?;
        paths::create_private_dir(&data_dir).map_err(|e| {
            CliError::failed(format!("could not create the data directory {}", data_dir.display()), e)
        })?;
        if postgres.is_none() {
            // The database holds password hashes and the accounts' repo signing keys.
            let db = data_dir.join(atauth_server::server::DATABASE_FILE);
            paths::precreate_private(&db)
                .map_err(|e| CliError::failed(format!("could not create {}", db.display()), e))?;
        }
        let signing_key_path = self.signing_key.clone().unwrap_or_else(|| data_dir.join(SIGNING_KEYS_FILE));
        let (keys, generated_key) = load_or_generate_keys(&signing_key_path)?;
        let signing_kid = keys.current_kid().to_owned();
        let plc_url = self.plc_url();
        let mut b = AuthServer::builder(&issuer)
            .bind_addr(std::net::SocketAddr::new(self.bind, port))
            .data_dir(&data_dir)
            .signing_keys(keys)
            .dev_mode(self.dev)
            .lifetimes(self.lifetimes())
            .branding(self.branding())
            .handle_domains(self.handle_domains());
        if let Some(on) = self.consent_api {
            b = b.password_consent_api(on);
        }
        if let Some(on) = self.consent_json_api {
            b = b.consent_json_api(on);
        }
        if let Some(u) = &self.public_url {
            b = b.public_url(u);
        }
        if let Some(d) = &self.service_did {
            b = b.service_did(d);
        }
        if let Some(u) = &plc_url {
            b = b.plc_directory(u.clone());
        }
        if !self.scopes.is_empty() {
            b = b.scopes_supported(self.scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()));
        }
        if let Some(n) = self.max_body_bytes {
            b = b.max_body_bytes(n);
        }
        if let Some(n) = self.max_client_metadata_bytes {
            b = b.max_client_metadata_bytes(n);
        }
        if let Some(n) = self.password_hash_concurrency {
            b = b.password_hash_concurrency(n.max(1));
        }
        let mut limits = SignInLimits::default();
        if let Some(r) = self.sign_in_limit_identifier_ip {
            limits.per_identifier_and_ip = r;
        }
        if let Some(r) = self.sign_in_limit_identifier {
            limits.per_identifier = r;
        }
        if let Some(r) = self.sign_in_limit_ip {
            limits.per_ip = r;
        }
        b = b.sign_in_limits(limits).invite_required(self.invite_required);
        if let Some(r) = self.sign_up_limit_ip {
            b = b.sign_up_limit(r);
        }
        if let Some(h) = &self.client_ip_header {
            b = b.client_ip_header(h);
        }
        if !self.trusted_clients.is_empty() {
            b = b.trusted_clients(self.trusted_clients.iter().map(|c| c.trim()).filter(|c| !c.is_empty()));
        }
        let mut legacy = self.legacy_options()?;
        if let Some(pg) = &postgres {
            let mut stores = Stores::single(pg.clone());
            // The sign-in limits are shared by the instances: on Redis when given, else Postgres.
            match redis {
                Some(r) => {
                    b = b.sign_in_limit_store(Arc::new(r.sign_in_limits()));
                    stores = stores.with_replay(Arc::new(r));
                }
                None => b = b.sign_in_limit_store(Arc::new(pg.clone())),
            }
            b = b.stores(stores).lexicon_cache(Arc::new(pg.clone()));
            legacy.store = Some(Arc::new(PostgresLegacyStore::in_store(pg)));
        }
        if let Some(secret) = nonce_secret {
            b = b.nonce_secret(secret);
        }
        b = b.legacy(legacy);
        if let Some(dir) = &self.lexicon_dir {
            b = b.lexicon_dir(dir);
        }
        if !self.dev_lexicon_dns.is_empty() {
            if !self.dev {
                return Err(CliError::Config("--dev-lexicon-dns is only allowed with --dev".into()));
            }
            let mut dns = atauth_identity::lexicon::DevOnlyTxtOverride::new();
            for entry in &self.dev_lexicon_dns {
                let (name, did) = entry
                    .split_once('=')
                    .filter(|(n, d)| !n.is_empty() && d.starts_with("did:"))
                    .ok_or_else(|| {
                        CliError::Config(format!("--dev-lexicon-dns {entry:?} is not NAME=DID"))
                    })?;
                dns = dns.with_did(name, did);
            }
            b = b.lexicon_dns_override(dns);
        }
        let server = b.build().map_err(|e| match e {
            atauth_server::BuildError::Issuer(err) => invalid_issuer(err),
            atauth_server::BuildError::PublicUrl(u) => {
                CliError::Config(format!("invalid --public-url {u:?}"))
            }
            atauth_server::BuildError::ScopesWithoutAtproto => {
                CliError::Config("--scopes must include atproto".into())
            }
            atauth_server::BuildError::LexiconDir(err) => CliError::Config(format!("--lexicon-dir: {err}")),
            other => CliError::failed("could not start the server", other),
        })?;
        Ok(Built { server, data_dir, signing_key_path, generated_key, signing_kid, plc_url })
    }
}

/// Connects to the Postgres database of `--database-url` (migrating an older schema with
/// `migrate`), with one error message per way it can fail.
pub(crate) async fn connect_postgres(url: &str, migrate: bool) -> Result<PostgresStore, CliError> {
    let mut options = PostgresOptions::default();
    options.migrate = migrate;
    PostgresStore::connect_with(url, options).await.map_err(|e| match e {
        ConnectError::Url(_) => CliError::Config(format!(
            "{e} (--database-url / ATAUTH_DATABASE_URL wants postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
        )),
        ConnectError::NeedsMigration { .. } | ConnectError::TooNew { .. } => CliError::Config(e.to_string()),
        other => CliError::failed("could not open the database", other),
    })
}

/// Connects to the Redis of `--redis-url`, its keys under `prefix` (`--redis-prefix`).
pub(crate) async fn connect_redis(url: &str, prefix: &str) -> Result<RedisReplayStore, CliError> {
    let mut options = RedisOptions::default();
    prefix.clone_into(&mut options.prefix);
    RedisReplayStore::connect_with(url, options).await.map_err(|e| match e {
        RedisConnectError::Url(_) => CliError::Config(format!(
            "{e} (--redis-url / ATAUTH_REDIS_URL wants redis://[USER:PASSWORD@]HOST[:PORT][/DB])"
        )),
        other => CliError::failed("could not open Redis", other),
    })
}

/// Environment variable with the DPoP nonce secret (hex, at least 32 bytes), for instances that
/// must hand out nonces each other accepts. Default: `dpop-nonce.secret` in the data directory.
pub(crate) const NONCE_SECRET_ENV: &str = "ATAUTH_DPOP_NONCE_SECRET";

fn nonce_secret_from_env() -> Result<Option<SecretBytes>, CliError> {
    let Some(v) = std::env::var_os(NONCE_SECRET_ENV) else { return Ok(None) };
    let bytes = hex::decode(v.to_string_lossy().trim())
        .map_err(|_| CliError::Config(format!("{NONCE_SECRET_ENV} must be hex")))?;
    if bytes.len() < 32 {
        return Err(CliError::Config(format!(
            "{NONCE_SECRET_ENV} must hold at least 32 bytes (64 hex digits)"
        )));
    }
    Ok(Some(SecretBytes::new(bytes)))
}

/// What to do about a refused `http://` issuer: `--dev` helps only for a loopback host.
fn plain_http_issuer_hint(issuer: &str, dev: bool) -> &'static str {
    let Some(rest) = issuer.strip_prefix("http://") else {
        return "";
    };
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    let loopback = host == "localhost" || host == "127.0.0.1" || rest.starts_with("[::1]");
    match (loopback, dev) {
        (true, false) => " (a plain-http issuer is for local development: add --dev)",
        (true, true) => "",
        (false, _) => {
            " (plain http is allowed only for a loopback issuer with --dev; a public server needs an \
             https:// issuer, e.g. behind a TLS-terminating proxy)"
        }
    }
}

/// Loads the signing key set at `path`, or generates one ES256 key and writes it (mode 0600).
fn load_or_generate_keys(path: &Path) -> Result<(SigningKeys, bool), CliError> {
    if path.exists() {
        let keys =
            SigningKeys::load(path).map_err(|e| CliError::failed("could not load the signing key", e))?;
        return Ok((keys, false));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        paths::create_private_dir(parent)
            .map_err(|e| CliError::failed(format!("could not create {}", parent.display()), e))?;
    }
    let keys = SigningKeys::generate();
    keys.save(path).map_err(|e| CliError::failed("could not write the signing key", e))?;
    Ok((keys, true))
}
