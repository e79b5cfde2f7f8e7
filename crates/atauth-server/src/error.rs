//! The errors as they go on the wire: [`OAuthError`] (RFC 6749 §5.2, RFC 9449 §5/§7.1) for the
//! OAuth endpoints and the resource server, [`XrpcError`] (`{"error","message"}`) for the XRPC ones.
//!
//! Each concern has its own error enum (one variant per failed check) in its module, with one
//! `oauth_error()` or `xrpc_error()` method: the only place deciding that enum's code and status. Internal causes
//! (storage, I/O) become `server_error` without detail; the cause is logged where it happens.

use http::StatusCode;
use serde::Serialize;

pub use atauth_oauth::OAuthErrorCode;

/// An error ready for the wire: status, `{"error", "error_description"}`, and for resource servers a
/// `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error` code.
    pub code: OAuthErrorCode,
    /// The `error_description` (never contains secrets or internal causes).
    pub description: String,
    /// `WWW-Authenticate` header value (401 at a resource server, RS-WWW-01).
    pub www_authenticate: Option<String>,
}

/// The JSON body of an OAuth error.
#[derive(Debug, Serialize)]
pub struct OAuthErrorBody<'a> {
    /// Code.
    pub error: &'a str,
    /// Description.
    pub error_description: &'a str,
}

impl OAuthError {
    /// A 400 error.
    pub fn bad_request(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// An error with an explicit status.
    pub fn new(status: StatusCode, code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into(), www_authenticate: None }
    }

    /// `server_error` (500) without detail.
    pub fn server_error() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, OAuthErrorCode::ServerError, "Internal server error")
    }

    /// The JSON body.
    pub fn body(&self) -> OAuthErrorBody<'_> {
        OAuthErrorBody { error: self.code.as_str(), error_description: &self.description }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status.as_u16(), self.description)
    }
}

impl std::error::Error for OAuthError {}

/// Logs an internal failure and answers `server_error` without detail.
pub(crate) fn internal(context: &'static str, err: &dyn std::error::Error) -> OAuthError {
    tracing::error!(context, error = %err, "internal error");
    OAuthError::server_error()
}

/// An XRPC error body: `{"error": "...", "message": "..."}` with a status (SPEC-XRPC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrpcError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error` name (e.g. `InvalidHandle`).
    pub error: &'static str,
    /// The `message`.
    pub message: String,
}

impl XrpcError {
    /// A new error.
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self { status, error, message: message.into() }
    }

    /// Logs an internal failure and answers 500 `InternalServerError` without detail.
    pub(crate) fn internal(context: &'static str, e: &dyn std::error::Error) -> Self {
        tracing::error!(context, error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal Server Error")
    }
}
