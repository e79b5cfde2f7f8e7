//! Typed errors, one enum per stage: discovery, authorize, callback, token endpoint, refresh,
//! resource requests, and stores. Every variant names the failed check; none carries a token.

use atauth_identity::http::HttpError;
use atauth_identity::{Did, IdentityError};
use atauth_oauth::{
    AsMetadataError, CallbackParamsError, IssuerError, OAuthErrorResponse, ResourceMetadataError,
    TokenResponseError,
};

/// A store failed (I/O, SQL, serialisation, lock timeout).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be (de)serialised.
    #[error("stored record is invalid: {0}")]
    Serde(#[from] serde_json::Error),
    /// The lock could not be taken in time.
    #[error("timed out waiting for lock {name:?}")]
    LockTimeout {
        /// The lock name.
        name: String,
    },
    /// The lock's lease ran out (or its connection was lost) before the write it was to fence:
    /// nothing was written, another holder may have written a newer record
    /// ([`SessionStore::put_session_locked`](crate::SessionStore::put_session_locked)).
    #[error("lock {name:?} was lost before the write; nothing was written")]
    LockLost {
        /// The lock name.
        name: String,
    },
}

/// Discovery failed (CL-DISC-01 … 07).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The input is neither a handle, a DID nor an http(s) URL.
    #[error("{0:?} is not a handle, DID or server URL")]
    InvalidInput(String),
    /// Handle/DID resolution failed (ID-*).
    #[error("identity resolution failed: {0}")]
    Identity(#[from] IdentityError),
    /// Fetching `/.well-known/oauth-protected-resource` failed (status, type, size, SSRF, timeout).
    #[error("protected-resource metadata fetch failed: {0}")]
    ResourceMetadataFetch(#[source] HttpError),
    /// The PDS has no OAuth protected-resource metadata (T-28).
    #[error("the PDS does not support OAuth (no protected-resource metadata)")]
    NoOAuthSupport,
    /// Protected-resource metadata failed CL-DISC-02.
    #[error("protected-resource metadata is invalid: {0}")]
    ResourceMetadata(#[from] ResourceMetadataError),
    /// The server URL is not a usable issuer (CL-DISC-03).
    #[error("server URL is not a valid issuer: {0}")]
    InvalidIssuer(#[from] IssuerError),
    /// Fetching `/.well-known/oauth-authorization-server` failed.
    #[error("authorization-server metadata fetch failed: {0}")]
    AuthServerMetadataFetch(#[source] HttpError),
    /// Authorization-server metadata failed the atproto profile (CL-DISC-04/05/06).
    #[error("authorization-server metadata is invalid: {0}")]
    AuthServerMetadata(#[from] AsMetadataError),
}

/// The token endpoint (or PAR / revocation endpoint) refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Transport failure, timeout, oversize body, SSRF refusal.
    #[error("HTTP request failed: {0}")]
    Http(#[from] HttpError),
    /// The server answered with an OAuth error body.
    #[error("server refused the request ({status}): {error}")]
    OAuth {
        /// HTTP status.
        status: u16,
        /// The error body.
        error: OAuthErrorResponse,
    },
    /// An unexpected status without an OAuth error body.
    #[error("unexpected HTTP status {status}")]
    UnexpectedStatus {
        /// HTTP status.
        status: u16,
    },
    /// The success body is not the expected JSON.
    #[error("response body is invalid: {0}")]
    InvalidBody(#[source] serde_json::Error),
    /// The token response failed CL-TOK-02.
    #[error("token response is invalid: {0}")]
    InvalidTokenResponse(#[from] TokenResponseError),
    /// The client-authentication key named by the session is no longer in the keyset (T-13).
    #[error("client key {kid:?} is not in the keyset")]
    ClientKeyMissing {
        /// The key id.
        kid: String,
    },
    /// An endpoint URL from the metadata does not parse.
    #[error("endpoint URL is invalid")]
    InvalidEndpoint,
    /// Signing a client assertion failed.
    #[error("could not sign the client assertion")]
    AssertionSigning,
}

impl TokenError {
    /// The OAuth error code, if the server sent one.
    pub fn oauth_code(&self) -> Option<&atauth_oauth::OAuthErrorCode> {
        match self {
            Self::OAuth { error, .. } => Some(&error.error),
            _ => None,
        }
    }
}

/// Starting an authorization failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The redirect URI is not one of the client's.
    #[error("redirect_uri {0:?} is not registered for this client")]
    UnknownRedirectUri(String),
    /// The requested scope is not a subset of the client metadata's scope (T-23), or lacks atproto.
    #[error("requested scope is invalid or not declared in the client metadata")]
    InvalidScope,
    /// PAR failed (CL-PAR-01 … 05).
    #[error("pushed authorization request failed: {0}")]
    Par(#[source] TokenError),
    /// The authorization endpoint is not an http(s) URL (CL-PAR-07).
    #[error("authorization endpoint is not a valid URL")]
    InvalidAuthorizationEndpoint,
    /// Persisting the pending authorization failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Processing the authorization callback failed (CL-CB-*, CL-TOK-*, CL-SUB-*).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The callback parameters are malformed.
    #[error("callback parameters are invalid: {0}")]
    Params(#[from] CallbackParamsError),
    /// No pending authorization for this `state`: unknown, expired, or already used (CL-STATE-01).
    #[error("unknown, expired or already used state")]
    UnknownState,
    /// The stored pending authorization is unusable (its DPoP key does not parse).
    #[error("the stored pending authorization is corrupt")]
    CorruptPendingAuthorization,
    /// `iss` is missing although the AS advertises RFC 9207 support (CL-CB-02).
    #[error("callback has no iss parameter")]
    MissingIssuer,
    /// `iss` differs from the issuer of this authorization (CL-CB-02, T-09).
    #[error("callback iss {found:?} does not equal {expected:?}")]
    IssuerMismatch {
        /// The issuer stored for this state.
        expected: String,
        /// The `iss` received.
        found: String,
    },
    /// The AS redirected with an error (e.g. `access_denied`).
    #[error("authorization failed: {0}")]
    AuthorizationError(OAuthErrorResponse),
    /// Re-fetching the AS metadata failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The code exchange failed.
    #[error("code exchange failed: {0}")]
    Token(#[source] TokenError),
    /// `sub` differs from the DID the flow started from (CL-SUB-01, T-10).
    #[error("token sub {found} does not equal the expected account {expected}")]
    SubMismatch {
        /// The DID resolved at the start.
        expected: Did,
        /// The `sub` received.
        found: Did,
    },
    /// `sub`'s PDS names a different issuer (CL-SUB-02, T-10).
    #[error("token sub {sub} belongs to issuer {found:?}, not {expected:?}")]
    IssuerNotAuthoritative {
        /// The DID.
        sub: Did,
        /// The issuer of this flow.
        expected: String,
        /// The issuer found by re-resolution.
        found: String,
    },
    /// Re-resolving `sub` failed (CL-SUB-02).
    #[error("could not verify the account's issuer: {0}")]
    SubVerification(#[source] DiscoveryError),
    /// A required scope was not granted (CL-SUB-05).
    #[error("the granted scope lacks {missing:?}")]
    ScopeNotGranted {
        /// The missing scope.
        missing: String,
    },
    /// Storing the session failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A refresh failed (CL-REF-*).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The AS answered `invalid_grant`: the session is over and was removed (CL-REF-04).
    #[error("the session has ended ({0}); sign in again")]
    SessionEnded(OAuthErrorResponse),
    /// The session has no refresh token.
    #[error("the session has no refresh token")]
    NoRefreshToken,
    /// The session is no longer in the store (signed out elsewhere).
    #[error("the session no longer exists")]
    SessionNotFound,
    /// The account moved to another issuer (T-11): the session was removed.
    #[error("the account's issuer changed from {expected:?} to {found:?}; sign in again")]
    IssuerChanged {
        /// The session's issuer.
        expected: String,
        /// The current issuer.
        found: String,
    },
    /// The refresh response's `sub` is not the session's DID.
    #[error("refresh returned a token for another account")]
    SubMismatch,
    /// Discovery for the refresh failed (transient; the session is kept).
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The token request failed for another reason (transient; the session is kept).
    #[error("refresh request failed: {0}")]
    Token(#[source] TokenError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An XRPC error body `{"error": …, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct XrpcErrorBody {
    /// The error name (`InvalidRequest`, `ExpiredToken`, `ScopeMissingError`, …).
    pub error: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A resource (XRPC) request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server answered with an XRPC error.
    #[error("XRPC error {status}: {}", body.as_ref().map_or("(no body)", |b| b.error.as_str()))]
    Xrpc {
        /// HTTP status.
        status: u16,
        /// The error body, if JSON.
        body: Option<XrpcErrorBody>,
    },
    /// Transport failure.
    #[error("HTTP request failed: {0}")]
    Http(#[from] HttpError),
    /// Refreshing the session failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The NSID or URL is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The success body is not the expected JSON.
    #[error("response body is invalid: {0}")]
    InvalidBody(#[source] serde_json::Error),
    /// Legacy session: creating or refreshing the session failed.
    #[error("legacy session error: {0}")]
    Legacy(&'static str),
}

impl RequestError {
    /// The XRPC error name, if any.
    pub fn xrpc_error(&self) -> Option<&str> {
        match self {
            Self::Xrpc { body: Some(b), .. } => Some(&b.error),
            _ => None,
        }
    }
}
