//! [`ClientMetadata`]: the client-metadata document (CIMD / RFC 7591 fields) and its validation
//! under the atproto profile: CL-MD-01 … 15, CL-MD-CONF-*, CL-MD-PUB-*, CL-MD-NAT-*, CL-MD-LOOP-04.
//!
//! Where the spec is looser than the reference authorization server, validation follows REF so
//! that a document we accept is one the Bluesky AS accepts too (T-15: a missing
//! `token_endpoint_auth_method` is refused; native ⇒ `none`). Native `https` redirect URIs must
//! share the `client_id` origin (CL-MD-NAT-03, spec; REF does not check this).

use atauth_crypto::Jwks;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::OAuthErrorCode;
use crate::client_id::ClientId;
use crate::redirect::{RedirectUriKind, classify};
use crate::scope::{ScopeSet, ScopeSyntaxError};

/// `token_endpoint_auth_method` values atproto allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// Public client.
    None,
    /// Confidential client with a signed JWT assertion (RFC 7523).
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// `application_type` (CL-MD-05).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    /// Web application (default).
    Web,
    /// Native (mobile/desktop) application.
    Native,
}

/// A client-metadata document. Unknown members are kept in [`extra`](Self::extra) (and checked for
/// forbidden ones, CL-MD-12/14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// The client id; must equal the URL the document was fetched from (CL-MD-04).
    pub client_id: String,
    /// `web` (default) or `native` (CL-MD-05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// Grant types (CL-MD-06). Default `["authorization_code"]`.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// Response types (CL-MD-08). Default `["code"]`.
    #[serde(default = "default_response_types")]
    pub response_types: Vec<String>,
    /// Every scope the client may request (CL-MD-07).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Redirect URIs (CL-MD-09, 15).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Must be `true` (CL-MD-10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    /// `none` or `private_key_jwt`; must be present (CL-MD-11, T-15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Assertion algorithm for `private_key_jwt` (CL-MD-CONF-03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Inline public keys (CL-MD-CONF-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// URL of the public keys (CL-MD-CONF-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Display name (CL-MD-13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page (CL-MD-13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo (CL-MD-13, https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Terms of service (CL-MD-13, https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy (CL-MD-13, https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// Any other members.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}

fn default_response_types() -> Vec<String> {
    vec!["code".to_owned()]
}

/// Members that must not appear (CL-MD-12 symmetric secrets, CL-MD-14 OIDC/mTLS-only fields).
const FORBIDDEN_MEMBERS: [&str; 8] = [
    "client_secret",
    "client_secret_expires_at",
    "default_max_age",
    "userinfo_signed_response_alg",
    "id_token_signed_response_alg",
    "userinfo_encrypted_response_alg",
    "tls_client_certificate_bound_access_tokens",
    "authorization_encrypted_response_enc",
];

/// Why a client-metadata document is refused. One variant per failed check; see
/// [`oauth_error_code`](Self::oauth_error_code) for the wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientMetadataError {
    /// CL-MD-04: `client_id` differs from the URL the document was fetched from.
    #[error("client_id {found:?} does not equal the document URL {expected:?}")]
    ClientIdMismatch {
        /// The client id used.
        expected: String,
        /// The member found.
        found: String,
    },
    /// CL-MD-05: unknown `application_type`.
    #[error("unknown application_type {0:?}")]
    UnknownApplicationType(String),
    /// CL-MD-06: `authorization_code` missing from `grant_types`.
    #[error("grant_types must include authorization_code")]
    MissingAuthorizationCodeGrant,
    /// CL-MD-06: a grant other than `authorization_code` / `refresh_token`.
    #[error("grant type {0:?} is not allowed")]
    UnsupportedGrantType(String),
    /// CL-MD-06: a grant listed twice.
    #[error("grant type {0:?} is listed twice")]
    DuplicateGrantType(String),
    /// CL-MD-07: no `scope`.
    #[error("scope is missing")]
    MissingScope,
    /// CL-MD-07 / SCOPE-02: `scope` does not parse, or repeats a scope.
    #[error("scope is invalid: {0}")]
    InvalidScope(#[source] ScopeSyntaxError),
    /// CL-MD-07 / SCOPE-01: `scope` lacks `atproto`.
    #[error("scope must include atproto")]
    ScopeWithoutAtproto,
    /// CL-MD-08: `code` missing from `response_types`.
    #[error("response_types must include code")]
    MissingCodeResponseType,
    /// CL-MD-08: a response type other than `code`.
    #[error("response type {0:?} is not allowed")]
    UnsupportedResponseType(String),
    /// CL-MD-09: no redirect URIs.
    #[error("redirect_uris is empty")]
    NoRedirectUris,
    /// CL-MD-10: `dpop_bound_access_tokens` is not `true`.
    #[error("dpop_bound_access_tokens must be true")]
    DpopNotBound,
    /// CL-MD-11 / T-15: `token_endpoint_auth_method` is missing.
    #[error("token_endpoint_auth_method is missing (must be \"none\" or \"private_key_jwt\")")]
    MissingTokenEndpointAuthMethod,
    /// CL-MD-12: a symmetric method (`client_secret_basic`, `client_secret_post`, `client_secret_jwt`).
    #[error("token_endpoint_auth_method {0:?} is symmetric and not allowed")]
    SymmetricAuthMethod(String),
    /// CL-MD-11: any other unknown method.
    #[error("token_endpoint_auth_method {0:?} is not supported")]
    UnsupportedAuthMethod(String),
    /// CL-MD-11: `token_endpoint_auth_signing_alg` present with method `none`.
    #[error("token_endpoint_auth_signing_alg must be absent for public clients")]
    SigningAlgWithoutAuth,
    /// CL-MD-PUB-01: `jwks`/`jwks_uri` on a public client.
    #[error("public clients must not publish jwks or jwks_uri")]
    KeysOnPublicClient,
    /// CL-MD-12 / 14: a forbidden member (`client_secret`, OIDC-only fields, …).
    #[error("client metadata must not contain {0:?}")]
    ForbiddenMember(&'static str),
    /// CL-MD-14: `subject_type` other than `public`.
    #[error("subject_type must be \"public\"")]
    UnsupportedSubjectType,
    /// CL-MD-13: `client_uri` not same-origin with `client_id`, or `client_id` not under its path;
    /// or present on a loopback client (CL-MD-LOOP-04).
    #[error("client_uri {0:?} does not fit the client_id")]
    ClientUriMismatch(String),
    /// CL-MD-13: `logo_uri`, `tos_uri` or `policy_uri` not an https URL.
    #[error("{field} must be an https URL")]
    NonHttpsUri {
        /// The member.
        field: &'static str,
    },
    /// CL-MD-CONF-02: neither `jwks` nor `jwks_uri` for `private_key_jwt`.
    #[error("private_key_jwt clients need jwks or jwks_uri")]
    MissingKeys,
    /// CL-MD-CONF-02: both `jwks` and `jwks_uri`.
    #[error("jwks and jwks_uri must not both be present")]
    BothJwksAndJwksUri,
    /// CL-MD-CONF-02: `jwks` has no keys.
    #[error("jwks has no keys")]
    EmptyJwks,
    /// CL-MD-CONF-02: `jwks` contains private key material.
    #[error("jwks contains private key material")]
    PrivateKeyInJwks,
    /// CL-MD-CONF-04: a key without `kid`.
    #[error("every key in jwks needs a kid")]
    KeyWithoutKid,
    /// CL-MD-CONF-02: `jwks_uri` not an https URL.
    #[error("jwks_uri must be an https URL")]
    InvalidJwksUri,
    /// CL-MD-CONF-03: `token_endpoint_auth_signing_alg` missing for `private_key_jwt`.
    #[error("token_endpoint_auth_signing_alg is required for private_key_jwt")]
    MissingSigningAlg,
    /// CL-MD-CONF-03: `token_endpoint_auth_signing_alg` is `none` or unsupported.
    #[error("token_endpoint_auth_signing_alg {0:?} is not allowed")]
    UnsupportedSigningAlg(String),
    /// CL-MD-NAT-01 (REF): native clients must use `none`.
    #[error("native clients must use token_endpoint_auth_method \"none\"")]
    NativeMustBePublic,
    /// CL-MD-LOOP-04: the loopback virtual document's fixed values were changed.
    #[error("loopback client metadata must be the AS-built virtual document")]
    LoopbackMetadataMismatch,
    /// CL-MD-15: the redirect URI is not a URL.
    #[error("redirect_uri {0:?} is not an absolute URL")]
    RedirectUriNotUrl(String),
    /// CL-MD-15: userinfo or fragment in a redirect URI.
    #[error("redirect_uri {0:?} must not contain credentials or a fragment")]
    RedirectUriCredentialsOrFragment(String),
    /// CL-MD-15: `http://localhost` redirect (use the IP literal).
    #[error("redirect_uri {0:?} uses the host localhost; use 127.0.0.1 or [::1]")]
    RedirectUriLocalhost(String),
    /// CL-MD-15 / NAT-04: plain http that is not loopback-IP, or loopback-IP for a web client.
    #[error("redirect_uri {0:?} uses http, which is only allowed for loopback IPs of native clients")]
    RedirectUriHttpNotAllowed(String),
    /// CL-MD-15: an https redirect to a local host name.
    #[error("redirect_uri {0:?} points to a local host name")]
    RedirectUriLocalHost(String),
    /// CL-MD-CONF-06: an explicit default port `:443`.
    #[error("redirect_uri {0:?} must not spell out the default port")]
    RedirectUriDefaultPort(String),
    /// CL-MD-NAT-02 / T-19: a custom scheme on a web client, not the reversed client-id host, or
    /// not followed by exactly `:/`.
    #[error("redirect_uri {0:?} has an invalid private-use scheme")]
    RedirectUriBadCustomScheme(String),
    /// CL-MD-NAT-03: a native https redirect on another origin than the client id.
    #[error("redirect_uri {0:?} must have the client_id's origin")]
    RedirectUriOriginMismatch(String),
}

impl ClientMetadataError {
    /// The OAuth error code: `invalid_redirect_uri` for redirect URI problems,
    /// `invalid_client_metadata` otherwise (AS-CMD-02).
    pub fn oauth_error_code(&self) -> OAuthErrorCode {
        match self {
            Self::NoRedirectUris
            | Self::RedirectUriNotUrl(_)
            | Self::RedirectUriCredentialsOrFragment(_)
            | Self::RedirectUriLocalhost(_)
            | Self::RedirectUriHttpNotAllowed(_)
            | Self::RedirectUriLocalHost(_)
            | Self::RedirectUriDefaultPort(_)
            | Self::RedirectUriBadCustomScheme(_)
            | Self::RedirectUriOriginMismatch(_) => OAuthErrorCode::InvalidRedirectUri,
            _ => OAuthErrorCode::InvalidClientMetadata,
        }
    }
}

fn is_local_hostname(host: &str) -> bool {
    let tld = host.rsplit('.').next().unwrap_or(host);
    host == "localhost"
        || !host.contains('.')
        || ["local", "localhost", "internal", "invalid", "example"].contains(&tld)
}

fn require_https(field: &'static str, value: Option<&str>) -> Result<(), ClientMetadataError> {
    match value {
        None => Ok(()),
        Some(v) => match Url::parse(v) {
            Ok(u) if u.scheme() == "https" => Ok(()),
            _ => Err(ClientMetadataError::NonHttpsUri { field }),
        },
    }
}

impl ClientMetadata {
    /// A minimal public-client document (`none`, DPoP-bound, code + refresh grants) with these
    /// redirect URIs and scope. Adjust the fields, then [`validate`](Self::validate).
    pub fn new(client_id: impl Into<String>, redirect_uris: Vec<String>, scope: &ScopeSet) -> Self {
        Self {
            client_id: client_id.into(),
            application_type: None,
            grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            response_types: default_response_types(),
            scope: Some(scope.to_string()),
            redirect_uris,
            dpop_bound_access_tokens: Some(true),
            token_endpoint_auth_method: Some("none".to_owned()),
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            client_name: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            extra: serde_json::Map::new(),
        }
    }

    /// `application_type`, defaulting to `web` (CL-MD-05).
    pub fn application_type(&self) -> Result<ApplicationType, ClientMetadataError> {
        match self.application_type.as_deref() {
            None | Some("web") => Ok(ApplicationType::Web),
            Some("native") => Ok(ApplicationType::Native),
            Some(other) => Err(ClientMetadataError::UnknownApplicationType(other.to_owned())),
        }
    }

    /// `token_endpoint_auth_method`, required (CL-MD-11, CL-MD-12, T-15).
    pub fn auth_method(&self) -> Result<TokenEndpointAuthMethod, ClientMetadataError> {
        match self.token_endpoint_auth_method.as_deref() {
            None => Err(ClientMetadataError::MissingTokenEndpointAuthMethod),
            Some("none") => Ok(TokenEndpointAuthMethod::None),
            Some("private_key_jwt") => Ok(TokenEndpointAuthMethod::PrivateKeyJwt),
            Some(m @ ("client_secret_basic" | "client_secret_post" | "client_secret_jwt")) => {
                Err(ClientMetadataError::SymmetricAuthMethod(m.to_owned()))
            }
            Some(other) => Err(ClientMetadataError::UnsupportedAuthMethod(other.to_owned())),
        }
    }

    /// The parsed `scope` (CL-MD-07): present, grammatical, no duplicates, includes `atproto`.
    pub fn scope_set(&self) -> Result<ScopeSet, ClientMetadataError> {
        let scope = self.scope.as_deref().ok_or(ClientMetadataError::MissingScope)?;
        let set = ScopeSet::parse_unique(scope).map_err(ClientMetadataError::InvalidScope)?;
        if !set.has_atproto() {
            return Err(ClientMetadataError::ScopeWithoutAtproto);
        }
        Ok(set)
    }

    /// Validates the document fetched from (or built for) `client_id`. Returns the first failed check.
    pub fn validate(&self, client_id: &ClientId) -> Result<(), ClientMetadataError> {
        use ClientMetadataError as E;
        // CL-MD-04
        if self.client_id != client_id.as_str() {
            return Err(E::ClientIdMismatch {
                expected: client_id.as_str().to_owned(),
                found: self.client_id.clone(),
            });
        }
        let app_type = self.application_type()?;
        // CL-MD-06
        let mut seen = Vec::new();
        for g in &self.grant_types {
            if seen.contains(&g.as_str()) {
                return Err(E::DuplicateGrantType(g.clone()));
            }
            if !matches!(g.as_str(), "authorization_code" | "refresh_token") {
                return Err(E::UnsupportedGrantType(g.clone()));
            }
            seen.push(g.as_str());
        }
        if !seen.contains(&"authorization_code") {
            return Err(E::MissingAuthorizationCodeGrant);
        }
        // CL-MD-07
        self.scope_set()?;
        // CL-MD-08
        if let Some(other) = self.response_types.iter().find(|r| r.as_str() != "code") {
            return Err(E::UnsupportedResponseType(other.clone()));
        }
        if self.response_types.is_empty() {
            return Err(E::MissingCodeResponseType);
        }
        // CL-MD-10
        if self.dpop_bound_access_tokens != Some(true) {
            return Err(E::DpopNotBound);
        }
        // CL-MD-12 / 14
        for member in FORBIDDEN_MEMBERS {
            if self.extra.contains_key(member) {
                return Err(E::ForbiddenMember(member));
            }
        }
        if let Some(subject_type) = self.extra.get("subject_type")
            && subject_type.as_str() != Some("public")
        {
            return Err(E::UnsupportedSubjectType);
        }
        // CL-MD-11, CONF-02/03/04, PUB-01, NAT-01
        let method = self.auth_method()?;
        match method {
            TokenEndpointAuthMethod::None => {
                if self.token_endpoint_auth_signing_alg.is_some() {
                    return Err(E::SigningAlgWithoutAuth);
                }
                if self.jwks.is_some() || self.jwks_uri.is_some() {
                    return Err(E::KeysOnPublicClient);
                }
            }
            TokenEndpointAuthMethod::PrivateKeyJwt => {
                if app_type == ApplicationType::Native {
                    return Err(E::NativeMustBePublic);
                }
                match (&self.jwks, &self.jwks_uri) {
                    (None, None) => return Err(E::MissingKeys),
                    (Some(_), Some(_)) => return Err(E::BothJwksAndJwksUri),
                    (Some(jwks), None) => {
                        if jwks.keys.is_empty() {
                            return Err(E::EmptyJwks);
                        }
                        if jwks.has_private_members() {
                            return Err(E::PrivateKeyInJwks);
                        }
                        if jwks.keys.iter().any(|k| k.kid.as_deref().is_none_or(str::is_empty)) {
                            return Err(E::KeyWithoutKid);
                        }
                    }
                    (None, Some(uri)) => {
                        if !Url::parse(uri).is_ok_and(|u| u.scheme() == "https") {
                            return Err(E::InvalidJwksUri);
                        }
                    }
                }
                match self.token_endpoint_auth_signing_alg.as_deref() {
                    None => return Err(E::MissingSigningAlg),
                    Some("ES256" | "ES256K") => {}
                    Some(other) => return Err(E::UnsupportedSigningAlg(other.to_owned())),
                }
            }
        }
        // CL-MD-13
        require_https("logo_uri", self.logo_uri.as_deref())?;
        require_https("tos_uri", self.tos_uri.as_deref())?;
        require_https("policy_uri", self.policy_uri.as_deref())?;
        match client_id {
            ClientId::Loopback(l) => {
                // CL-MD-LOOP-04
                if let Some(uri) = &self.client_uri {
                    return Err(E::ClientUriMismatch(uri.clone()));
                }
                if method != TokenEndpointAuthMethod::None
                    || app_type != ApplicationType::Native
                    || self.redirect_uris.as_slice() != l.redirect_uris()
                {
                    return Err(E::LoopbackMetadataMismatch);
                }
            }
            ClientId::Discoverable(d) => {
                if let Some(uri) = &self.client_uri {
                    let ok = Url::parse(uri).is_ok_and(|u| {
                        u.origin() == d.url().origin() && {
                            let base = u.path().trim_end_matches('/');
                            d.url().path().starts_with(&format!("{base}/"))
                        }
                    });
                    if !ok {
                        return Err(E::ClientUriMismatch(uri.clone()));
                    }
                }
            }
        }
        // CL-MD-09, 15, CONF-06, NAT-02/03/04
        if self.redirect_uris.is_empty() {
            return Err(E::NoRedirectUris);
        }
        for uri in &self.redirect_uris {
            self.check_redirect_uri(uri, app_type, client_id)?;
        }
        Ok(())
    }

    fn check_redirect_uri(
        &self,
        uri: &str,
        app: ApplicationType,
        client_id: &ClientId,
    ) -> Result<(), ClientMetadataError> {
        use ClientMetadataError as E;
        let url = Url::parse(uri).map_err(|_| E::RedirectUriNotUrl(uri.to_owned()))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(E::RedirectUriCredentialsOrFragment(uri.to_owned()));
        }
        match classify(uri) {
            None => Err(E::RedirectUriNotUrl(uri.to_owned())),
            Some(RedirectUriKind::LoopbackName) => Err(E::RedirectUriLocalhost(uri.to_owned())),
            Some(RedirectUriKind::PlainHttp) => Err(E::RedirectUriHttpNotAllowed(uri.to_owned())),
            Some(RedirectUriKind::LoopbackIp) => {
                if app == ApplicationType::Native {
                    Ok(())
                } else {
                    Err(E::RedirectUriHttpNotAllowed(uri.to_owned()))
                }
            }
            Some(RedirectUriKind::Https) => {
                let host = url.host_str().unwrap_or_default();
                if is_local_hostname(host)
                    || matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
                {
                    return Err(E::RedirectUriLocalHost(uri.to_owned()));
                }
                // CL-MD-CONF-06: `:443` must not appear (the URL parser drops it, the string keeps it).
                let authority = uri.trim_start_matches("https://").split(['/', '?']).next().unwrap_or("");
                if authority.ends_with(":443") {
                    return Err(E::RedirectUriDefaultPort(uri.to_owned()));
                }
                if app == ApplicationType::Native
                    && let ClientId::Discoverable(d) = client_id
                    && url.origin() != d.url().origin()
                {
                    return Err(E::RedirectUriOriginMismatch(uri.to_owned()));
                }
                Ok(())
            }
            Some(RedirectUriKind::PrivateUse { scheme }) => {
                let ClientId::Discoverable(d) = client_id else {
                    return Err(E::RedirectUriBadCustomScheme(uri.to_owned()));
                };
                if app != ApplicationType::Native {
                    return Err(E::RedirectUriBadCustomScheme(uri.to_owned()));
                }
                // CL-MD-NAT-02 / T-19: scheme = reversed client_id host, then exactly ":/" and a path.
                let reversed: Vec<&str> = d.host().split('.').rev().collect();
                let after = &uri[scheme.len()..];
                let ok = scheme == reversed.join(".")
                    && after.starts_with(":/")
                    && !after.starts_with("://")
                    && scheme.contains('.');
                if ok { Ok(()) } else { Err(E::RedirectUriBadCustomScheme(uri.to_owned())) }
            }
        }
    }
}
