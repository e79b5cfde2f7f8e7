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

#[cfg(test)]
mod tests {
    use atauth_crypto::dpop::DpopError;
    use atauth_oauth::wire::{DuplicateParam, ParamError};

    use super::*;
    use crate::client::{ClientAuthError, ClientPreludeError};
    use crate::dpop::DpopCheckError;
    use crate::par::ParError;
    use crate::revoke::RevokeError;
    use crate::token::TokenError;

    /// Status, code and description as they go on the wire.
    type Wire<'a> = (u16, &'a str, &'a str);

    fn wire(e: &OAuthError) -> Wire<'_> {
        (e.status.as_u16(), e.code.as_str(), e.description.as_str())
    }

    /// The prelude maps alike at all three endpoints: a nonce retry is `use_dpop_nonce`, a bad proof
    /// `invalid_dpop_proof`, a bad assertion `invalid_client`, all 400 at the AS (RFC 9449 §5, §8).
    #[test]
    fn prelude_errors_map_alike_at_every_endpoint() {
        let cases: Vec<(fn() -> ClientPreludeError, Wire<'static>)> = vec![
            (
                || DpopCheckError::Proof(DpopError::NonceRequired).into(),
                (400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof"),
            ),
            (|| DpopCheckError::Missing.into(), (400, "invalid_dpop_proof", "DPoP proof required")),
            (
                || ClientAuthError::BadSignature.into(),
                (400, "invalid_client", "client_assertion signature is invalid"),
            ),
            (
                || ClientAuthError::DpopKeyIsClientKey.into(),
                (400, "invalid_request", "the DPoP key must differ from the client authentication key"),
            ),
            (|| ParamError::Missing("client_id").into(), (400, "invalid_request", "client_id is required")),
            (
                || ParamError::from(DuplicateParam("client_assertion".into())).into(),
                (400, "invalid_request", "parameter \"client_assertion\" was sent more than once"),
            ),
        ];
        for (make, expected) in cases {
            assert_eq!(wire(&make().oauth_error()), expected);
            assert_eq!(wire(&ParError::from(make()).oauth_error()), expected);
            assert_eq!(wire(&TokenError::from(make()).oauth_error()), expected);
            assert_eq!(wire(&RevokeError::from(make()).oauth_error()), expected);
        }
    }

    #[test]
    fn token_errors_separate_request_from_grant() {
        let cases = [
            (
                TokenError::Params(ParamError::Missing("code_verifier")),
                (400, "invalid_request", "code_verifier is required"),
            ),
            (
                TokenError::Params(ParamError::UnsupportedGrantType("password".into())),
                (400, "unsupported_grant_type", "unsupported grant_type"),
            ),
            (TokenError::CodeReused, (400, "invalid_grant", "code replayed")),
            (TokenError::RefreshReplayed, (400, "invalid_grant", "refresh token replayed")),
            (
                TokenError::DpopKeyMismatch,
                (400, "invalid_grant", "DPoP key does not match the one used for the authorization request"),
            ),
            (
                TokenError::GrantNotAllowed,
                (400, "invalid_grant", "this client is not allowed to use this grant type"),
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(wire(&e.oauth_error()), expected, "{e:?}");
        }
    }

    #[test]
    fn par_errors() {
        let cases = [
            (
                ParError::Params(ParamError::UnsupportedResponseType),
                (400, "unsupported_response_type", "response_type must be \"code\""),
            ),
            (ParError::MissingScope, (400, "invalid_scope", "scope is required and must include atproto")),
            (
                ParError::RequestObjectNotSupported,
                (400, "request_not_supported", "request objects are not supported"),
            ),
            (
                ParError::DpopJktMismatch,
                (400, "invalid_request", "dpop_jkt does not match the DPoP proof key"),
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(wire(&e.oauth_error()), expected, "{e:?}");
        }
        let missing_token = RevokeError::Params(ParamError::Missing("token"));
        assert_eq!(wire(&missing_token.oauth_error()), (400, "invalid_request", "token is required"));
    }
}
