//! The atproto OAuth client: log Bluesky / atproto users in from web backends, CLIs and desktop apps.
//!
//! What it does, with the checklist rows it implements:
//!
//! - **Discovery** from a handle, DID, or PDS/entryway URL: identity resolution (bidirectional
//!   handle check), `/.well-known/oauth-protected-resource`, `/.well-known/oauth-authorization-server`,
//!   validated at every step (CL-DISC-01 … 07; exact issuer comparison, T-09) — [`Discovery`].
//! - **Client metadata** for web confidential (`private_key_jwt` with a [`Keyset`] of `kid`s), web
//!   public, native and loopback clients, validated like the reference AS does — [`ClientConfig`].
//! - **Authorize**: a fresh ES256 DPoP key per session, PKCE S256, random `state`, PAR with DPoP and
//!   one nonce retry, `login_hint`; the pending authorization is stored by `state` (TTL, single use)
//!   — [`OAuthClient::authorize`].
//! - **Callback**: `state`, `iss` (RFC 9207), error responses, code exchange with PKCE + DPoP and a
//!   fresh client assertion per HTTP attempt (T-07, T-08), `sub` verified by re-resolving
//!   DID → PDS → issuer (T-10), granted scope checked — [`OAuthClient::callback`].
//! - **Sessions** keyed by DID + session id, DPoP private key stored with the session (T-13), tokens
//!   opaque (CL-TOK-03) — [`SessionStore`], [`OAuthSession`].
//! - **Refresh** ahead of expiry with jitter and on `invalid_token`, single-flight across tasks and
//!   processes via a [`SessionLock`] (in-process [`MemoryLock`], cross-process `SqliteStore`,
//!   `PostgresStore`, `RedisStore`; the last two fence the write of the refreshed session),
//!   re-reading the store under the lock and persisting before use (T-12); `invalid_grant` ends the
//!   session with [`RefreshError::SessionEnded`].
//! - **DPoP nonces** per origin, updated from every response, exactly one retry on either challenge
//!   form (T-01 … T-04) — [`dpop`].
//! - **Agent**: DPoP-bound XRPC queries and procedures, raw bodies for blobs, typed errors; the same
//!   interface over a legacy app-password session ([`PasswordSession`], T-24) — [`Agent`].
//! - **Common jobs** without a typed-API crate ([`api`]): post with link and mention facets, like,
//!   follow, upload a blob, profile, timeline, records with cursors; typed [`api::ApiError`]s
//!   (`ExpiredToken`, `RateLimited { reset }`, `ScopeMissing { needed }`). The whole typed API
//!   (atrium-api) over the same sessions is the `atauth-atrium` crate.
//! - **Sign-out**: revocation of refresh and access tokens (skipped cleanly without a revocation
//!   endpoint) and removal from the store — [`OAuthSession::sign_out`].
//! - **Stores**: memory ([`MemoryStore`]), SQLite (`SqliteStore`, feature `sqlite`, default),
//!   Postgres (`PostgresStore`, feature `postgres`) and Redis (`RedisStore`, feature `redis`), all
//!   passing one conformance suite. Web apps: feature `axum` (module `axum_routes`).
//!
//! No panics and no hangs against hostile servers: every outbound request goes through the
//! SSRF-safe [`SafeHttpClient`](atauth_identity::http::SafeHttpClient) (no redirects, exact statuses,
//! JSON content types, size caps, timeouts).
//!
//! # Example: configuration and the documents a web app serves
//!
//! ```
//! use atauth_client::{ClientConfig, Keyset};
//! use atauth_crypto::{Algorithm, PrivateKey};
//!
//! let keyset = Keyset::new().with_key("2026-01", PrivateKey::generate(Algorithm::Es256))?;
//! let config = ClientConfig::web_confidential(
//!     "https://app.example.com/oauth-client-metadata.json",
//!     &["https://app.example.com/oauth/callback"],
//!     "atproto transition:generic",
//!     keyset,
//!     None,
//! )?
//! .with_display(Some("Example"), Some("https://app.example.com"))?;
//!
//! // Serve these at the client id URL and (optionally) a jwks_uri, as application/json.
//! let metadata = serde_json::to_value(config.metadata())?;
//! assert_eq!(metadata["token_endpoint_auth_method"], "private_key_jwt");
//! assert_eq!(metadata["jwks"]["keys"][0]["kid"], "2026-01");
//! assert!(config.jwks().keys[0].d.is_none(), "only public keys are published");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: a CLI logging in with a loopback client
//!
//! The `atauth login` flow: a loopback client id (`http://localhost?redirect_uri=…&scope=…`, no
//! metadata document), a listener on `127.0.0.1:PORT`, and the development switches for offline use.
//!
//! ```no_run
//! use atauth_client::{AuthorizeOptions, ClientConfig, DevOptions, OAuthClient, SqliteStore, Agent};
//! use std::sync::Arc;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let port = 53682; // bind a TcpListener on 127.0.0.1:0 and use its port
//! let redirect = format!("http://127.0.0.1:{port}/callback");
//! let config = ClientConfig::loopback(&[&redirect], "atproto transition:generic")?
//!     // Offline / local PDS only; leave at the default (all off) in production:
//!     .with_dev(DevOptions {
//!         allow_http_loopback: true,
//!         plc_url: Some("http://127.0.0.1:2582".parse()?),
//!         handle_resolver_url: Some("http://localhost:2583".parse()?),
//!     });
//! let store = Arc::new(SqliteStore::open("sessions.sqlite").await?);
//! let client = OAuthClient::builder(config)
//!     .state_store(store.clone())
//!     .session_store(store.clone())
//!     .session_lock(store)
//!     .build()?;
//!
//! let url = client.authorize("alice.test", AuthorizeOptions::default()).await?;
//! println!("open {url}");
//! // ... the listener receives GET /callback?code=…&state=…&iss=… ...
//! # let query = "";
//! let done = client.callback_query(query).await?;
//! let agent = Agent::new(done.session);
//! let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await?;
//! println!("{}", me["handle"]);
//! # Ok(()) }
//! ```

//!
//! # Example: several app processes sharing sessions
//!
//! Web apps that run several processes (or machines) give every process the same store: Postgres
//! (feature `postgres`) or Redis (feature `redis`). A callback may then land on any process, any
//! process restores any session, and a refresh that falls due in several processes at once
//! reaches the authorization server once: the others wait on the store's lock and adopt the new
//! tokens (CL-REF-02, T-12). See `docs/SCALE-OUT.md`, "Several app processes".
//!
#![cfg_attr(all(feature = "postgres", feature = "redis"), doc = "```no_run")]
#![cfg_attr(not(all(feature = "postgres", feature = "redis")), doc = "```ignore")]
//! use std::sync::Arc;
//! use atauth_client::{Agent, ClientConfig, OAuthClient, PostgresStore, RedisOptions, RedisStore, SessionKey};
//!
//! # async fn demo(config: ClientConfig, key: SessionKey) -> Result<(), Box<dyn std::error::Error>> {
//! // Every process opens the same database (the first one sets up the schema)...
//! let store = Arc::new(PostgresStore::connect("postgres://app@db.internal/app").await?);
//! let client = OAuthClient::builder(config.clone())
//!     .state_store(store.clone())   // the callback may reach another process than the login
//!     .session_store(store.clone()) // every process sees every session
//!     .session_lock(store)          // one refresh per session across all processes
//!     .build()?;
//!
//! // ...or the same Redis with the same key prefix.
//! let options = RedisOptions::default().prefix("example-app:oauth:");
//! let redis = Arc::new(RedisStore::connect_with("redis://cache.internal:6379", options).await?);
//! let _client = OAuthClient::builder(config)
//!     .state_store(redis.clone())
//!     .session_store(redis.clone())
//!     .session_lock(redis)
//!     .build()?;
//!
//! // In any process, for a request of the signed-in user (the key is in your cookie session):
//! if let Some(session) = client.restore(&key).await? {
//!     let me: serde_json::Value = Agent::new(session).query("com.atproto.server.getSession", &[]).await?;
//!     println!("{}", me["handle"]);
//! }
//! # Ok(()) }
//! ```

pub mod agent;
pub mod api;
#[cfg(feature = "axum")]
pub mod axum_routes;
pub mod client;
pub mod config;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod loopback;
pub mod password;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod server_agent;
pub mod session;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "redis")]
pub use self::redis::{RedisOptions, RedisStore};
pub use agent::{Agent, XrpcSession};
pub use client::{AuthorizeOptions, CallbackResult, ClientStats, OAuthClient, OAuthClientBuilder};
pub use config::{ClientConfig, ConfigError, DevOptions, Keyset, KeysetError};
pub use discovery::{Discovered, Discovery, LoginInput};
pub use error::{
    AuthorizeError, CallbackError, DiscoveryError, RefreshError, RequestError, StoreError, TokenError,
    XrpcErrorBody,
};
pub use password::{PasswordSession, PasswordSessionData};
pub use session::{OAuthSession, SessionInfo};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{
    ClientAuthRecord, LockGuard, MemoryLock, MemoryStore, PendingAuthorization, SessionKey, SessionLock,
    SessionRecord, SessionStore, StateStore, TokenSet,
};
