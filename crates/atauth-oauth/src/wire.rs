//! OAuth wire types: error responses, PAR and token requests/responses, authorization callback
//! parameters and client-assertion claims.
//!
//! The request bodies ([`request`]) are shared: the client serialises them, the server reads them
//! from [`Params`] with `from_params`, so both sides agree on names and required fields.

use std::fmt;

use atauth_syntax::Did;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::scope::ScopeSet;

pub mod params;
pub mod request;

pub use params::{DuplicateParam, ParamError, Params};
pub use request::{
    ClientAuthentication, GrantType, PushedAuthorizationRequest, RevocationRequest, TokenRequest,
};

/// `client_assertion_type` for `private_key_jwt` (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

macro_rules! secret_with_serde {
    ($(#[$meta:meta])* $name:ident) => {
        atauth_crypto::secret_string_newtype! {
            $(#[$meta])*
            pub struct $name;
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.expose_secret())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

secret_with_serde!(
    /// An OAuth access token: opaque to clients (CL-TOK-03, T-22). `Debug` is redacted.
    AccessToken
);
secret_with_serde!(
    /// An OAuth refresh token: single use (CL-REF-02). `Debug` is redacted.
    RefreshToken
);
secret_with_serde!(
    /// An authorization code. `Debug` is redacted.
    AuthorizationCode
);

/// The OAuth / DPoP error codes this stack uses (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 7591
/// §3.2.2; RFC 9126; RFC 9449 §5, §8, §9). Unknown codes are kept in [`Other`](Self::Other).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`.
    InvalidClient,
    /// `invalid_grant`.
    InvalidGrant,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `invalid_scope`.
    InvalidScope,
    /// `access_denied`.
    AccessDenied,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `invalid_token` (RFC 6750).
    InvalidToken,
    /// `insufficient_scope` (RFC 6750).
    InsufficientScope,
    /// `invalid_client_metadata` (RFC 7591).
    InvalidClientMetadata,
    /// `invalid_redirect_uri` (RFC 7591).
    InvalidRedirectUri,
    /// `invalid_request_uri` (RFC 9101 / 9126).
    InvalidRequestUri,
    /// `invalid_request_object`.
    InvalidRequestObject,
    /// `invalid_dpop_proof` (RFC 9449 §5).
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §8, §9).
    UseDpopNonce,
    /// `unsupported_token_type` (RFC 7009).
    UnsupportedTokenType,
    /// `login_required` (OIDC prompt=none).
    LoginRequired,
    /// `consent_required`.
    ConsentRequired,
    /// `account_selection_required`.
    AccountSelectionRequired,
    /// `interaction_required`.
    InteractionRequired,
    /// Any other code.
    Other(String),
}

impl OAuthErrorCode {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::InteractionRequired => "interaction_required",
            Self::Other(s) => s,
        }
    }

    /// Parses a wire string.
    pub fn parse(s: &str) -> Self {
        const KNOWN: [OAuthErrorCode; 23] = [
            OAuthErrorCode::InvalidRequest,
            OAuthErrorCode::InvalidClient,
            OAuthErrorCode::InvalidGrant,
            OAuthErrorCode::UnauthorizedClient,
            OAuthErrorCode::UnsupportedGrantType,
            OAuthErrorCode::UnsupportedResponseType,
            OAuthErrorCode::InvalidScope,
            OAuthErrorCode::AccessDenied,
            OAuthErrorCode::ServerError,
            OAuthErrorCode::TemporarilyUnavailable,
            OAuthErrorCode::InvalidToken,
            OAuthErrorCode::InsufficientScope,
            OAuthErrorCode::InvalidClientMetadata,
            OAuthErrorCode::InvalidRedirectUri,
            OAuthErrorCode::InvalidRequestUri,
            OAuthErrorCode::InvalidRequestObject,
            OAuthErrorCode::InvalidDpopProof,
            OAuthErrorCode::UseDpopNonce,
            OAuthErrorCode::UnsupportedTokenType,
            OAuthErrorCode::LoginRequired,
            OAuthErrorCode::ConsentRequired,
            OAuthErrorCode::AccountSelectionRequired,
            OAuthErrorCode::InteractionRequired,
        ];
        KNOWN.into_iter().find(|k| k.as_str() == s).unwrap_or_else(|| Self::Other(s.to_owned()))
    }

    /// The HTTP status an AS answers this code with (REF, AS-TOK-05): 400 for request/grant/client
    /// errors and `use_dpop_nonce`, 401 for `invalid_dpop_proof` and `invalid_token`, 403 for
    /// `insufficient_scope` and `access_denied`, 500 `server_error`, 503 `temporarily_unavailable`.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidDpopProof | Self::InvalidToken => 401,
            Self::InsufficientScope | Self::AccessDenied => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OAuthErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OAuthErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}

/// An OAuth error body: `{"error": …, "error_description": …}` (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorResponse {
    /// The code.
    pub error: OAuthErrorCode,
    /// Human-readable detail (never secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthErrorResponse {
    /// An error with a description.
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self { error, error_description: Some(description.into()) }
    }

    /// The HTTP status for this error ([`OAuthErrorCode::http_status`]).
    pub fn http_status(&self) -> u16 {
        self.error.http_status()
    }
}

impl fmt::Display for OAuthErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error_description {
            Some(d) => write!(f, "{}: {}", self.error, d),
            None => write!(f, "{}", self.error),
        }
    }
}

/// A PAR success body (RFC 9126 §2.2; CL-PAR-05).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParResponse {
    /// The request URI to send the browser with.
    pub request_uri: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// A token endpoint success body (RFC 6749 §5.1 + atproto `sub`). Tokens are opaque (CL-TOK-03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// Must be `DPoP` (CL-TOK-02).
    pub token_type: String,
    /// Lifetime in seconds (T-25: drive refresh from this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// The refresh token, if the client has the `refresh_token` grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// The granted scope (CL-TOK-02, CL-SUB-05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The account DID (CL-TOK-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Any other members.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why a token response fails CL-TOK-02. One variant per check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenResponseError {
    /// `token_type` is not `DPoP` (RFC 9449 §5: discard the response).
    #[error("token_type is {0:?}, expected DPoP")]
    NotDpop(String),
    /// `scope` is missing.
    #[error("token response has no scope")]
    MissingScope,
    /// `scope` does not parse.
    #[error("token response scope is invalid")]
    InvalidScope,
    /// `scope` lacks `atproto` (SCOPE-01).
    #[error("token response scope lacks atproto")]
    ScopeWithoutAtproto,
    /// `sub` is missing.
    #[error("token response has no sub")]
    MissingSub,
    /// `sub` is not a valid `did:plc` / `did:web` DID.
    #[error("token response sub {0:?} is not a did:plc or did:web DID")]
    InvalidSub(String),
    /// The access token is empty.
    #[error("token response has an empty access_token")]
    EmptyAccessToken,
}

/// The atproto-relevant, validated parts of a [`TokenResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtprotoTokenInfo {
    /// The account DID.
    pub sub: Did,
    /// The granted scope.
    pub scope: ScopeSet,
}

impl TokenResponse {
    /// CL-TOK-02: `token_type` DPoP (case-insensitive, RFC 6749 §5.1), `scope` ∋ `atproto`, `sub`
    /// a valid `did:plc`/`did:web`.
    pub fn validate_atproto(&self) -> Result<AtprotoTokenInfo, TokenResponseError> {
        use TokenResponseError as E;
        if !self.token_type.eq_ignore_ascii_case("DPoP") {
            return Err(E::NotDpop(self.token_type.clone()));
        }
        if self.access_token.expose_secret().is_empty() {
            return Err(E::EmptyAccessToken);
        }
        let scope = self.scope.as_deref().ok_or(E::MissingScope)?;
        let scope = ScopeSet::parse(scope).map_err(|_| E::InvalidScope)?;
        if !scope.has_atproto() {
            return Err(E::ScopeWithoutAtproto);
        }
        let sub = self.sub.as_deref().ok_or(E::MissingSub)?;
        let did = Did::new(sub).map_err(|_| E::InvalidSub(sub.to_owned()))?;
        if !(did.is_plc() || did.is_web()) {
            return Err(E::InvalidSub(sub.to_owned()));
        }
        Ok(AtprotoTokenInfo { sub: did, scope })
    }
}

/// Why callback parameters are unusable (CL-CB-01, CL-CB-03).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackParamsError {
    /// A parameter appears more than once.
    #[error("callback parameter {0:?} appears more than once")]
    Repeated(String),
    /// No `state`.
    #[error("callback has no state")]
    MissingState,
    /// Neither `code` nor `error`.
    #[error("callback has neither code nor error")]
    MissingCode,
    /// A JARM `response` parameter (not part of the profile, CL-CB-03).
    #[error("JARM responses are not supported")]
    JarmResponse,
}

/// The authorization response as received on the redirect URI (RFC 6749 §4.1.2, RFC 9207).
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackParams {
    /// `state`.
    pub state: String,
    /// `iss` (RFC 9207).
    pub iss: Option<String>,
    /// The outcome.
    pub outcome: CallbackOutcome,
}

/// Success or error of an authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// `code=…`.
    Code(AuthorizationCode),
    /// `error=…`.
    Error(OAuthErrorResponse),
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("state", &self.state)
            .field("iss", &self.iss)
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl CallbackParams {
    /// Parses a query string (or fragment, for `response_mode=fragment`) without the leading `?`/`#`.
    pub fn from_query(query: &str) -> Result<Self, CallbackParamsError> {
        Self::from_pairs(
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Builds from decoded key/value pairs (e.g. a web framework's query extractor).
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, CallbackParamsError> {
        let mut state = None;
        let mut iss = None;
        let mut code = None;
        let mut error = None;
        let mut description = None;
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "state" => &mut state,
                "iss" => &mut iss,
                "code" => &mut code,
                "error" => &mut error,
                "error_description" => &mut description,
                "response" => return Err(CallbackParamsError::JarmResponse),
                _ => continue,
            };
            if slot.replace(v).is_some() {
                return Err(CallbackParamsError::Repeated(k));
            }
        }
        let state = state.ok_or(CallbackParamsError::MissingState)?;
        let outcome = match (error, code) {
            (Some(e), _) => CallbackOutcome::Error(OAuthErrorResponse {
                error: OAuthErrorCode::parse(&e),
                error_description: description,
            }),
            (None, Some(c)) => CallbackOutcome::Code(AuthorizationCode::new(c)),
            (None, None) => return Err(CallbackParamsError::MissingCode),
        };
        Ok(Self { state, iss, outcome })
    }
}

/// Claims of a `private_key_jwt` client assertion (RFC 7523 §3; AS-CAUTH-02; T-06, T-08).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAssertionClaims {
    /// `client_id`.
    pub iss: String,
    /// `client_id`.
    pub sub: String,
    /// The AS issuer (not the token endpoint URL).
    pub aud: String,
    /// Unique per assertion (a new one for every HTTP attempt, T-07).
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds; always sent, T-08).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for s in ["invalid_grant", "use_dpop_nonce", "invalid_client_metadata", "something_new"] {
            assert_eq!(OAuthErrorCode::parse(s).as_str(), s);
        }
        let body: OAuthErrorResponse =
            serde_json::from_str(r#"{"error":"use_dpop_nonce","error_description":"x"}"#).unwrap();
        assert_eq!(body.error, OAuthErrorCode::UseDpopNonce);
        assert_eq!(body.http_status(), 400);
        assert_eq!(OAuthErrorCode::InvalidDpopProof.http_status(), 401);
    }

    #[test]
    fn token_debug_is_redacted() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"secret-at","token_type":"DPoP","refresh_token":"secret-rt","scope":"atproto","sub":"did:plc:abc","expires_in":3600}"#,
        )
        .unwrap();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("secret-at") && !dbg.contains("secret-rt"));
        assert_eq!(serde_json::to_value(&t).unwrap()["access_token"], "secret-at");
    }
}
