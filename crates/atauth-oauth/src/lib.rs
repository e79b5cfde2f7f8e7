//! atproto OAuth protocol types shared by the atauth client and authorization server.
//!
//! Framework-free: plain data types with serde, parsing and validation, no HTTP. What is here:
//!
//! | module | what | checklist |
//! |---|---|---|
//! | [`issuer`] | [`Issuer`]: canonical origin, exact comparison | CL-DISC-03, T-09 |
//! | [`metadata`] | [`AuthorizationServerMetadata`], [`ProtectedResourceMetadata`] | CL-DISC-02 … 06, AS-META-02 |
//! | [`client_id`] | [`ClientId`]: discoverable URL or loopback `http://localhost?…` | CL-MD-01/02, CL-MD-LOOP-01 … 04 |
//! | [`client_metadata`] | [`ClientMetadata`] and its validation | CL-MD-01 … 15, CONF, PUB, NAT |
//! | [`redirect`] | redirect URI classification and matching | T-18, CL-MD-LOOP-03 |
//! | [`scope`] | [`Scope`], [`ScopeSet`], granular [`Permission`]s, the matcher ([`Access`], [`ScopeMissing`]), [`PermissionSet`] | SCOPE-01 … 12, RS-SCOPE-01 |
//! | [`wire`] | error bodies, PAR/token requests and responses, callback params | CL-PAR-05, CL-TOK-02, CL-CB-01 |
//!
//! Every validation returns a typed error with one variant per failed check; errors that reach the
//! wire map to an [`OAuthErrorCode`] in one place (e.g. [`ClientMetadataError::oauth_error_code`]).
//!
//! # Example: the discovery checks a client makes
//!
//! ```
//! use atauth_oauth::{AuthorizationServerMetadata, Issuer, IssuerPolicy, ProtectedResourceMetadata};
//! use atauth_oauth::metadata::AsMetadataError;
//!
//! // 1. The PDS's protected-resource metadata names exactly one issuer (CL-DISC-02).
//! let rs: ProtectedResourceMetadata = serde_json::from_str(r#"{
//!     "resource": "https://pds.example.com",
//!     "authorization_servers": ["https://auth.example.com"]
//! }"#)?;
//! let issuer: Issuer = rs.validate("https://pds.example.com", IssuerPolicy::production())?;
//!
//! // 2. The AS metadata must carry exactly that issuer string and the atproto fields (CL-DISC-04/05).
//! let mut meta = AuthorizationServerMetadata::atproto_default(&issuer);
//! meta.validate_atproto(issuer.as_str())?;
//!
//! // T-09: a trailing slash is a different issuer.
//! meta.issuer = "https://auth.example.com/".into();
//! assert!(matches!(meta.validate_atproto(issuer.as_str()), Err(AsMetadataError::IssuerMismatch { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: validating a client-metadata document (as an AS does)
//!
//! ```
//! use atauth_oauth::{ClientId, ClientMetadata, OAuthErrorCode};
//! use atauth_oauth::client_metadata::ClientMetadataError;
//!
//! let client_id = ClientId::parse("https://app.example.com/oauth/client-metadata.json")?;
//! let doc: ClientMetadata = serde_json::from_str(r#"{
//!     "client_id": "https://app.example.com/oauth/client-metadata.json",
//!     "application_type": "web",
//!     "dpop_bound_access_tokens": true,
//!     "grant_types": ["authorization_code", "refresh_token"],
//!     "redirect_uris": ["https://app.example.com/oauth/callback"],
//!     "response_types": ["code"],
//!     "scope": "atproto transition:generic"
//! }"#)?;
//! // T-15: without token_endpoint_auth_method the reference AS refuses the client; so do we.
//! let err = doc.validate(&client_id).unwrap_err();
//! assert_eq!(err, ClientMetadataError::MissingTokenEndpointAuthMethod);
//! assert_eq!(err.oauth_error_code(), OAuthErrorCode::InvalidClientMetadata);
//!
//! let doc = ClientMetadata { token_endpoint_auth_method: Some("none".into()), ..doc };
//! doc.validate(&client_id)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client_id;
pub mod client_metadata;
pub mod issuer;
pub mod metadata;
pub mod redirect;
pub mod scope;
pub mod wire;

pub use client_id::{ClientId, ClientIdError, ClientIdPolicy, DiscoverableClientId, LoopbackClientId};
pub use client_metadata::{ApplicationType, ClientMetadata, ClientMetadataError, TokenEndpointAuthMethod};
pub use issuer::{Issuer, IssuerError, IssuerPolicy};
pub use metadata::{
    AsMetadataError, AuthorizationServerMetadata, ProtectedResourceMetadata, ResourceMetadataError,
};
pub use redirect::redirect_uri_matches;
pub use scope::{
    Access, Permission, PermissionError, PermissionSet, PermissionSetError, Scope, ScopeMissing, ScopeSet,
    ScopeSyntaxError,
};
pub use wire::{
    AccessToken, AtprotoTokenInfo, AuthorizationCode, CallbackOutcome, CallbackParams, CallbackParamsError,
    ClientAssertionClaims, OAuthErrorCode, OAuthErrorResponse, ParResponse, PushedAuthorizationRequest,
    RefreshToken, TokenRequest, TokenResponse, TokenResponseError,
};

/// `/.well-known/oauth-authorization-server` (RFC 8414 §3).
pub const WELL_KNOWN_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";

/// `/.well-known/oauth-protected-resource` (RFC 9728 §3).
pub const WELL_KNOWN_PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";
