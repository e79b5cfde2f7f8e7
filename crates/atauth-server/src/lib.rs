//! The atproto OAuth authorization server core for PDS operators, with pluggable stores, a
//! resource-server verifier, and an axum adapter (`web`).
//!
//! The request path (HTTP → typed request → core → store) and the design are in
//! `docs/ARCHITECTURE.md`. The HTTP layer is the `web` module, behind the default cargo feature `web`
//! (axum, tower, tower-http, the Prometheus exporter); without it
//! (`cargo check -p atauth-server --no-default-features`) the core builds with none of them.
//! Checklist rows AS-* and RS-* are cited where they are implemented.
//!
//! | module | what |
//! |---|---|
//! | [`server`] | [`AuthServer`] and its builder: issuer, data directory, keys, stores, lifetimes |
//! | [`par`], [`authorize`], [`token`], [`revoke`] | the OAuth endpoints' cores |
//! | [`resource`] | verifying DPoP-bound access tokens at a resource server |
//! | [`client`] | client metadata discovery and `private_key_jwt` authentication |
//! | [`dpop`] | DPoP at this server: nonces, replay, both challenge forms |
//! | [`account`], [`password`], [`plc`] | accounts, reference-format scrypt, `did:plc` registration |
//! | [`passkey`] | passkeys (WebAuthn) as a second factor: the ceremonies' options and verification, framework-free |
//! | [`signup`] | sign-up by the person: password rules, invite codes, the per-address limit |
//! | [`store`] | store traits, memory and SQLite backends, the conformance suites (feature `testing`) |
//! | [`legacy`] | `createSession` & co., app passwords, [`legacy::SessionAuth`] (legacy or OAuth credential) (LEG-*) |
//! | [`service_auth`] | `getServiceAuth` and the service-JWT verifier (SVC-*) |
//! | [`ui`], [`ratelimit`] | the sign-in and consent pages: device sessions and CSRF tokens, templates, which page; sign-in rate limits |
//! | [`error`], [`params`] | the wire errors ([`OAuthError`], [`XrpcError`]); request parameters |
//! | `web` (feature `web`) | the axum layer, one module per surface: `web::{oauth, xrpc, legacy, service_auth, ui}`, the router, `web::serve` |
//!
//! # Example: a server and its router, called without sockets
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use atauth_server::{AuthServer, web};
//! use tower::ServiceExt as _;
//!
//! // No data directory: in-memory stores and an ephemeral signing key. A real deployment sets
//! // `.data_dir(...)` (SQLite database and keys, created with mode 0600) and serves with
//! // `web::serve(server, listener, metrics, shutdown)`.
//! let server = AuthServer::builder("https://pds.example.com")
//!     .service_did("did:web:pds.example.com")
//!     .handle_domains([".pds.example.com"])
//!     .build()?;
//! let app = web::router(server.clone());
//!
//! let req = http::Request::get("/.well-known/oauth-authorization-server")
//!     .body(axum::body::Body::empty())?;
//! let res = app.oneshot(req).await?;
//! assert_eq!(res.status(), 200);
//! let meta: serde_json::Value = serde_json::from_str(server.authorization_server_metadata_json())?;
//! assert_eq!(meta["pushed_authorization_request_endpoint"], "https://pds.example.com/oauth/par");
//! assert_eq!(meta["dpop_signing_alg_values_supported"][0], "ES256");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

// Without the `web` feature the docs still name the axum adapter (`crate::web`), which is then
// absent; those links resolve in the default build, which CI documents with `-D warnings`.
#![cfg_attr(not(feature = "web"), allow(rustdoc::broken_intra_doc_links))]

pub mod account;
pub mod authorize;
pub mod client;
pub mod config;
pub mod dpop;
pub mod error;
mod ids;
pub mod keys;
pub mod legacy;
pub mod par;
pub mod params;
pub mod passkey;
pub mod password;
pub mod permission_sets;
pub mod plc;
pub mod ratelimit;
pub mod resource;
pub mod revoke;
pub mod second_factor;
pub mod server;
pub mod service_auth;
pub mod signup;
pub mod store;
pub mod token;
pub mod ui;
#[cfg(feature = "web")]
pub mod web;

pub use config::{Branding, Lifetimes, RateLimit, ServerConfig, SignInLimits};
pub use error::{OAuthError, XrpcError};
pub use params::Params;
pub use server::{AuthServer, AuthServerBuilder, BuildError};
