//! The request bodies a client sends to the authorization server (PAR, token, revocation) and the
//! client-authentication fields they carry, form-encoded on the wire.
//!
//! The client serialises them (`form_pairs`); the server reads them with `from_params`, which
//! refuses repeated parameters (RFC 6749 §3.1), missing required ones and unsupported
//! `grant_type` / `response_type` values, naming the parameter in a [`ParamError`]. Everything
//! else (PKCE syntax, scope, redirect URI matching, the client's own metadata) is the server's
//! check, made in its documented order.

use serde::{Deserialize, Serialize};

use crate::wire::params::{ParamError, Params};
use crate::wire::{AuthorizationCode, CLIENT_ASSERTION_TYPE_JWT_BEARER, RefreshToken};

/// The client-authentication part of a request (RFC 6749 §2.3, RFC 7523 §2.2; AS-CAUTH-01):
/// `client_id` always, the assertion fields for `private_key_jwt` clients.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientAuthentication {
    /// `client_id`.
    pub client_id: String,
    /// `client_assertion_type` (confidential clients).
    pub client_assertion_type: Option<String>,
    /// `client_assertion`: a signed JWT, never logged (`Debug` redacts it).
    pub client_assertion: Option<String>,
}

impl std::fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuthentication")
            .field("client_id", &self.client_id)
            .field("client_assertion_type", &self.client_assertion_type)
            .field("client_assertion", &self.client_assertion.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl ClientAuthentication {
    /// A public client (`token_endpoint_auth_method: none`): `client_id` only.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), ..Self::default() }
    }

    /// A `private_key_jwt` client with a freshly signed `assertion` (one per attempt, T-07).
    pub fn private_key_jwt(client_id: impl Into<String>, assertion: String) -> Self {
        Self {
            client_id: client_id.into(),
            client_assertion_type: Some(CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned()),
            client_assertion: Some(assertion),
        }
    }

    /// Reads `client_id` (required) and the assertion fields (checked by the server against the
    /// client's metadata, not here).
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            client_id: params.required("client_id")?,
            client_assertion_type: params.optional("client_assertion_type")?,
            client_assertion: params.optional("client_assertion")?,
        })
    }

    /// The form fields, without absent ones.
    pub fn form_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("client_id", self.client_id.as_str())];
        out.extend(self.client_assertion_type.as_deref().map(|v| ("client_assertion_type", v)));
        out.extend(self.client_assertion.as_deref().map(|v| ("client_assertion", v)));
        out
    }
}

/// The body of a pushed authorization request (CL-PAR-02, AS-PAR-03), form-encoded on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedAuthorizationRequest {
    /// `client_id`.
    pub client_id: String,
    /// `response_type` (`code`).
    pub response_type: String,
    /// `redirect_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// `scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `code_challenge` (S256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// `code_challenge_method` (`S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    /// `login_hint` (handle or DID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `response_mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// `client_assertion_type` (confidential clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion_type: Option<String>,
    /// `client_assertion` (confidential clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<String>,
}

impl PushedAuthorizationRequest {
    /// The form fields, in a stable order, without absent ones.
    pub fn to_form_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("client_id", self.client_id.as_str())];
        out.extend(self.authorization_pairs());
        out.extend(self.client_assertion_type.as_deref().map(|v| ("client_assertion_type", v)));
        out.extend(self.client_assertion.as_deref().map(|v| ("client_assertion", v)));
        out
    }

    /// The authorization-request fields alone, without `client_id` and client authentication (a
    /// sender adds those per attempt, with a fresh assertion, T-07).
    pub fn authorization_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("response_type", self.response_type.as_str())];
        let optional = [
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("login_hint", &self.login_hint),
            ("prompt", &self.prompt),
            ("response_mode", &self.response_mode),
            ("dpop_jkt", &self.dpop_jkt),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))));
        out
    }

    /// The client-authentication part.
    pub fn client_authentication(&self) -> ClientAuthentication {
        ClientAuthentication {
            client_id: self.client_id.clone(),
            client_assertion_type: self.client_assertion_type.clone(),
            client_assertion: self.client_assertion.clone(),
        }
    }

    /// Reads a PAR body: client authentication, then `response_type` (which must be `code`), then
    /// the optional fields. Required-ness of `state`, `scope` and `code_challenge`, and their
    /// syntax, are the server's checks (AS-PAR-03), so they are `Option`s here.
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        let auth = ClientAuthentication::from_params(params)?;
        if params.get("response_type")? != Some("code") {
            return Err(ParamError::UnsupportedResponseType);
        }
        Ok(Self {
            client_id: auth.client_id,
            response_type: "code".to_owned(),
            redirect_uri: params.optional("redirect_uri")?,
            scope: params.optional("scope")?,
            state: params.optional("state")?,
            code_challenge: params.optional("code_challenge")?,
            code_challenge_method: params.optional("code_challenge_method")?,
            login_hint: params.optional("login_hint")?,
            prompt: params.optional("prompt")?,
            response_mode: params.optional("response_mode")?,
            dpop_jkt: params.optional("dpop_jkt")?,
            client_assertion_type: auth.client_assertion_type,
            client_assertion: auth.client_assertion,
        })
    }
}

/// The grant types of the atproto profile (AS-TOK-05).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
}

impl GrantType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// Reads `grant_type`: required, and one of the two grants.
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        match params.get("grant_type")? {
            None => Err(ParamError::Missing("grant_type")),
            Some("authorization_code") => Ok(Self::AuthorizationCode),
            Some("refresh_token") => Ok(Self::RefreshToken),
            Some(other) => Err(ParamError::UnsupportedGrantType(other.to_owned())),
        }
    }
}

/// A token request body (form-encoded on the wire), without client authentication. Exhaustive, so
/// the server handles every grant it parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// `grant_type=authorization_code` (CL-TOK-01).
    AuthorizationCode {
        /// The code.
        code: AuthorizationCode,
        /// The same redirect URI as at PAR.
        redirect_uri: String,
        /// The PKCE verifier.
        code_verifier: String,
    },
    /// `grant_type=refresh_token` (CL-REF-01).
    RefreshToken {
        /// The refresh token.
        refresh_token: RefreshToken,
    },
}

impl TokenRequest {
    /// The grant type.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
        }
    }

    /// The grant-specific form fields (add `client_id` and client authentication).
    pub fn form_pairs(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::AuthorizationCode { code, redirect_uri, code_verifier } => vec![
                ("grant_type", "authorization_code"),
                ("code", code.expose_secret()),
                ("redirect_uri", redirect_uri),
                ("code_verifier", code_verifier),
            ],
            Self::RefreshToken { refresh_token } => {
                vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())]
            }
        }
    }

    /// Reads the grant fields: `grant_type`, then `code`, `redirect_uri`, `code_verifier` or
    /// `refresh_token`, all required. The verifier's syntax (RFC 7636 §4.1) is the server's check.
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(match GrantType::from_params(params)? {
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: AuthorizationCode::new(params.required("code")?),
                redirect_uri: params.required("redirect_uri")?,
                code_verifier: params.required("code_verifier")?,
            },
            GrantType::RefreshToken => {
                Self::RefreshToken { refresh_token: RefreshToken::new(params.required("refresh_token")?) }
            }
        })
    }
}

/// A revocation request body (RFC 7009 §2.1; CL-REV-01), without client authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    /// The token to revoke (access or refresh), never logged (`Debug` redacts it).
    pub token: String,
    /// `token_type_hint` (`access_token` or `refresh_token`).
    pub token_type_hint: Option<String>,
}

impl std::fmt::Debug for RevocationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("token", &"[redacted]")
            .field("token_type_hint", &self.token_type_hint)
            .finish()
    }
}

impl RevocationRequest {
    /// The form fields, without absent ones.
    pub fn form_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("token", self.token.as_str())];
        out.extend(self.token_type_hint.as_deref().map(|h| ("token_type_hint", h)));
        out
    }

    /// Reads `token` (required). The hint is advisory (RFC 7009 §2.1: a server may ignore it), so
    /// a repeated `token_type_hint` reads as absent rather than refusing the request, as this
    /// server always did.
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            token: params.required("token")?,
            token_type_hint: params.get("token_type_hint").ok().flatten().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DuplicateParam;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    fn with(pairs: Vec<(&'static str, &str)>, extra: (&'static str, &'static str)) -> Params {
        Params::from_pairs(pairs.into_iter().chain([extra]))
    }

    fn full_par() -> PushedAuthorizationRequest {
        PushedAuthorizationRequest {
            client_id: "https://app.example.com/client-metadata.json".into(),
            response_type: "code".into(),
            redirect_uri: Some("https://app.example.com/cb".into()),
            scope: Some("atproto transition:generic".into()),
            state: Some("st".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            login_hint: Some("alice.example.com".into()),
            prompt: Some("login".into()),
            response_mode: Some("query".into()),
            dpop_jkt: Some("jkt".into()),
            client_assertion_type: Some(CLIENT_ASSERTION_TYPE_JWT_BEARER.into()),
            client_assertion: Some("eyJ.eyJ.sig".into()),
        }
    }

    #[test]
    fn par_round_trips() {
        let full = full_par();
        assert_eq!(
            PushedAuthorizationRequest::from_params(&Params::from_pairs(full.to_form_pairs())),
            Ok(full)
        );
        let minimal = PushedAuthorizationRequest {
            client_id: "http://localhost".into(),
            response_type: "code".into(),
            ..Default::default()
        };
        let read = PushedAuthorizationRequest::from_params(&Params::from_pairs(minimal.to_form_pairs()));
        assert_eq!(read, Ok(minimal));
    }

    #[test]
    fn par_pairs_split_into_authorization_and_client_authentication() {
        let full = full_par();
        let authentication = full.client_authentication();
        let mut pairs = authentication.form_pairs();
        pairs.extend(full.authorization_pairs());
        assert_eq!(PushedAuthorizationRequest::from_params(&Params::from_pairs(pairs)), Ok(full.clone()));
        assert!(full.authorization_pairs().iter().all(|(k, _)| !k.starts_with("client_")));
    }

    #[test]
    fn par_negative() {
        let full = full_par();
        let no_client = params(&[("response_type", "code")]);
        assert_eq!(
            PushedAuthorizationRequest::from_params(&no_client),
            Err(ParamError::Missing("client_id"))
        );
        for (k, v) in full.to_form_pairs() {
            let twice = with(full.to_form_pairs(), (k, "again"));
            let err = PushedAuthorizationRequest::from_params(&twice).unwrap_err();
            assert_eq!(err, ParamError::Repeated(DuplicateParam(k.into())), "{k}={v} repeated");
            assert_eq!(err.param(), k);
        }
        for response_type in [None, Some("token"), Some("code id_token")] {
            let mut pairs: Vec<_> =
                full.to_form_pairs().into_iter().filter(|(k, _)| *k != "response_type").collect();
            pairs.extend(response_type.map(|v| ("response_type", v)));
            let err = PushedAuthorizationRequest::from_params(&Params::from_pairs(pairs)).unwrap_err();
            assert_eq!(err, ParamError::UnsupportedResponseType);
            assert_eq!(err.oauth_error_code(), crate::OAuthErrorCode::UnsupportedResponseType);
        }
    }

    #[test]
    fn token_requests_round_trip() {
        let code = TokenRequest::AuthorizationCode {
            code: AuthorizationCode::new("cod-1"),
            redirect_uri: "https://app.example.com/cb".into(),
            code_verifier: "v".repeat(43),
        };
        let refresh = TokenRequest::RefreshToken { refresh_token: RefreshToken::new("ref-1") };
        for request in [code, refresh] {
            let read = TokenRequest::from_params(&Params::from_pairs(request.form_pairs()));
            assert_eq!(read.as_ref().map(TokenRequest::grant_type), Ok(request.grant_type()));
            assert_eq!(read, Ok(request));
        }
    }

    #[test]
    fn token_request_negative() {
        use crate::OAuthErrorCode as C;
        type Case<'a> = (&'a [(&'a str, &'a str)], ParamError, C);
        let cases: [Case<'_>; 7] = [
            (&[], ParamError::Missing("grant_type"), C::InvalidRequest),
            (&[("grant_type", "")], ParamError::Missing("grant_type"), C::InvalidRequest),
            (
                &[("grant_type", "password")],
                ParamError::UnsupportedGrantType("password".into()),
                C::UnsupportedGrantType,
            ),
            (&[("grant_type", "refresh_token")], ParamError::Missing("refresh_token"), C::InvalidRequest),
            (
                &[("grant_type", "authorization_code"), ("code", "c"), ("code_verifier", "v")],
                ParamError::Missing("redirect_uri"),
                C::InvalidRequest,
            ),
            (
                &[("grant_type", "refresh_token"), ("grant_type", "refresh_token"), ("refresh_token", "r")],
                ParamError::Repeated(DuplicateParam("grant_type".into())),
                C::InvalidRequest,
            ),
            (
                &[("grant_type", "refresh_token"), ("refresh_token", "r"), ("refresh_token", "s")],
                ParamError::Repeated(DuplicateParam("refresh_token".into())),
                C::InvalidRequest,
            ),
        ];
        for (pairs, expected, code) in cases {
            let err = TokenRequest::from_params(&params(pairs)).unwrap_err();
            assert_eq!((&err, err.oauth_error_code()), (&expected, code), "{pairs:?}");
        }
        assert_eq!(ParamError::Missing("code_verifier").to_string(), "code_verifier is required");
        assert_eq!(ParamError::UnsupportedGrantType("x".into()).to_string(), "unsupported grant_type");
    }

    #[test]
    fn client_authentication_round_trips_and_redacts() {
        for auth in [
            ClientAuthentication::public("http://localhost"),
            ClientAuthentication::private_key_jwt("https://app.example.com/c.json", "eyJ.secret.sig".into()),
        ] {
            assert_eq!(
                ClientAuthentication::from_params(&Params::from_pairs(auth.form_pairs())),
                Ok(auth.clone())
            );
            assert!(!format!("{auth:?}").contains("secret"));
        }
        let twice = params(&[("client_id", "a"), ("client_assertion", "x"), ("client_assertion", "y")]);
        assert_eq!(
            ClientAuthentication::from_params(&twice),
            Err(ParamError::Repeated(DuplicateParam("client_assertion".into())))
        );
        assert_eq!(ClientAuthentication::from_params(&params(&[])), Err(ParamError::Missing("client_id")));
    }

    #[test]
    fn revocation_round_trips() {
        let r = RevocationRequest { token: "ref-1".into(), token_type_hint: Some("refresh_token".into()) };
        assert_eq!(RevocationRequest::from_params(&Params::from_pairs(r.form_pairs())), Ok(r.clone()));
        assert!(!format!("{r:?}").contains("ref-1"));
        assert_eq!(
            RevocationRequest::from_params(&params(&[("token_type_hint", "x")])),
            Err(ParamError::Missing("token"))
        );
        let twice = params(&[("token", "a"), ("token", "b")]);
        assert_eq!(
            RevocationRequest::from_params(&twice),
            Err(ParamError::Repeated(DuplicateParam("token".into())))
        );
        let hints = params(&[("token", "a"), ("token_type_hint", "x"), ("token_type_hint", "y")]);
        assert_eq!(RevocationRequest::from_params(&hints).map(|r| r.token_type_hint), Ok(None));
    }
}
