//! Server metadata: [`AuthorizationServerMetadata`] (RFC 8414 + atproto fields) and
//! [`ProtectedResourceMetadata`] (RFC 9728), with the atproto profile's checks.
//!
//! - CL-DISC-02: protected-resource `resource` equals the PDS origin; exactly one authorization server.
//! - CL-DISC-03: the issuer is a canonical origin ([`Issuer`]).
//! - CL-DISC-04: `issuer` is string-equal to the issuer the document was fetched for (T-09).
//! - CL-DISC-05 / AS-META-02: the atproto-required fields and values.
//! - CL-DISC-06: `protected_resources`, when listed, includes the PDS.
//!
//! Both are plain serde structs with `Option` fields and a flattened `extra` map, so unknown members
//! survive a round trip; a failed check is one `AsMetadataError` variant per rule.
//! `AuthorizationServerMetadata::atproto_default` builds a complete document with the reference
//! PDS's paths, for servers and tests.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::issuer::{Issuer, IssuerError, IssuerPolicy};

/// RFC 8414 authorization-server metadata with the atproto members. Unknown members are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer (CL-DISC-03/04).
    pub issuer: String,
    /// Where the browser is sent (CL-PAR-07).
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// PAR endpoint (required in atproto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Must be `true` in atproto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 7009 revocation endpoint (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Introspection endpoint (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// The AS's JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Must contain `atproto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Must contain `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// `query`, `fragment`, `form_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// Must contain `authorization_code` and `refresh_token` (AS-META-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Must contain `S256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Must contain `none` and `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Must not contain `none`; should contain `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Must contain `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// Must be `true` (RFC 9207).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Must be `true` (CIMD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
    /// Absent or `true`, never `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_request_uri_registration: Option<bool>,
    /// JAR support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    /// `request_uri` support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    /// `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_types_supported: Option<Vec<String>>,
    /// OIDC `prompt` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_values_supported: Option<Vec<String>>,
    /// Resource servers this AS serves (CL-DISC-06).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_resources: Option<Vec<String>>,
    /// Any other members.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why authorization-server metadata fails the atproto profile. One variant per check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsMetadataError {
    /// CL-DISC-04 / T-09: `issuer` is not byte-identical to the expected issuer.
    #[error("metadata issuer {found:?} does not equal the expected issuer {expected:?}")]
    IssuerMismatch {
        /// The issuer the document was fetched for.
        expected: String,
        /// The `issuer` member.
        found: String,
    },
    /// CL-DISC-03: `issuer` is not a canonical origin.
    #[error("metadata issuer is invalid: {0}")]
    InvalidIssuer(#[source] IssuerError),
    /// An endpoint is not an http(s) URL on the issuer's scheme (CL-PAR-07).
    #[error("{field} is not a valid {scheme} URL")]
    InvalidEndpoint {
        /// The member.
        field: &'static str,
        /// The required scheme.
        scheme: &'static str,
    },
    /// A required list lacks a required value (CL-DISC-05 / AS-META-02).
    #[error("{field} must contain {value:?}")]
    MissingValue {
        /// The member.
        field: &'static str,
        /// The required value.
        value: &'static str,
    },
    /// `token_endpoint_auth_signing_alg_values_supported` contains `none`.
    #[error("token_endpoint_auth_signing_alg_values_supported must not contain \"none\"")]
    SigningAlgNone,
    /// `code_challenge_methods_supported` contains `plain`.
    #[error("code_challenge_methods_supported must not contain \"plain\"")]
    PlainPkce,
    /// `require_pushed_authorization_requests` is not `true`.
    #[error("require_pushed_authorization_requests must be true")]
    ParNotRequired,
    /// No `pushed_authorization_request_endpoint`.
    #[error("pushed_authorization_request_endpoint is missing")]
    MissingParEndpoint,
    /// `authorization_response_iss_parameter_supported` is not `true` (RFC 9207).
    #[error("authorization_response_iss_parameter_supported must be true")]
    IssParameterNotSupported,
    /// `client_id_metadata_document_supported` is not `true`.
    #[error("client_id_metadata_document_supported must be true")]
    ClientIdMetadataDocumentNotSupported,
    /// `require_request_uri_registration` is `false`.
    #[error("require_request_uri_registration must not be false")]
    RequestUriRegistrationFalse,
    /// CL-DISC-06: `protected_resources` does not list the PDS.
    #[error("protected_resources does not include {resource:?}")]
    ResourceNotListed {
        /// The PDS origin.
        resource: String,
    },
}

fn contains(list: &Option<Vec<String>>, value: &str) -> bool {
    list.as_ref().is_some_and(|l| l.iter().any(|v| v == value))
}

impl AuthorizationServerMetadata {
    /// Validates the document against the atproto profile (CL-DISC-03/04/05, AS-META-02) for
    /// `expected_issuer`, the issuer string it was fetched for. Returns the first failed check.
    /// `http` issuers are accepted only if `expected_issuer` itself is one (development).
    pub fn validate_atproto(&self, expected_issuer: &str) -> Result<(), AsMetadataError> {
        use AsMetadataError as E;
        if self.issuer != expected_issuer {
            return Err(E::IssuerMismatch {
                expected: expected_issuer.to_owned(),
                found: self.issuer.clone(),
            });
        }
        let policy = IssuerPolicy { allow_http_loopback: self.issuer.starts_with("http://") };
        let issuer = Issuer::parse_with(&self.issuer, policy).map_err(E::InvalidIssuer)?;
        let scheme = if issuer.is_http() { "http" } else { "https" };
        let endpoint = |field: &'static str, value: Option<&str>| -> Result<(), AsMetadataError> {
            match value.map(Url::parse) {
                Some(Ok(u)) if u.scheme() == scheme && u.host().is_some() => Ok(()),
                _ => Err(E::InvalidEndpoint { field, scheme }),
            }
        };
        endpoint("authorization_endpoint", Some(&self.authorization_endpoint))?;
        endpoint("token_endpoint", Some(&self.token_endpoint))?;
        let par = self.pushed_authorization_request_endpoint.as_deref().ok_or(E::MissingParEndpoint)?;
        endpoint("pushed_authorization_request_endpoint", Some(par))?;
        if let Some(rev) = &self.revocation_endpoint {
            endpoint("revocation_endpoint", Some(rev))?;
        }
        if self.require_pushed_authorization_requests != Some(true) {
            return Err(E::ParNotRequired);
        }
        let required: [(&'static str, &Option<Vec<String>>, &'static str); 8] = [
            ("scopes_supported", &self.scopes_supported, "atproto"),
            ("response_types_supported", &self.response_types_supported, "code"),
            ("code_challenge_methods_supported", &self.code_challenge_methods_supported, "S256"),
            ("dpop_signing_alg_values_supported", &self.dpop_signing_alg_values_supported, "ES256"),
            ("token_endpoint_auth_methods_supported", &self.token_endpoint_auth_methods_supported, "none"),
            (
                "token_endpoint_auth_methods_supported",
                &self.token_endpoint_auth_methods_supported,
                "private_key_jwt",
            ),
            ("grant_types_supported", &self.grant_types_supported, "authorization_code"),
            ("grant_types_supported", &self.grant_types_supported, "refresh_token"),
        ];
        for (field, list, value) in required {
            // RFC 8414 §2: an absent grant_types_supported means ["authorization_code", "implicit"];
            // atproto needs refresh_token, so an absent list fails here too.
            if !contains(list, value) {
                return Err(E::MissingValue { field, value });
            }
        }
        if contains(&self.code_challenge_methods_supported, "plain") {
            return Err(E::PlainPkce);
        }
        if contains(&self.token_endpoint_auth_signing_alg_values_supported, "none") {
            return Err(E::SigningAlgNone);
        }
        if !contains(&self.token_endpoint_auth_signing_alg_values_supported, "ES256") {
            return Err(E::MissingValue {
                field: "token_endpoint_auth_signing_alg_values_supported",
                value: "ES256",
            });
        }
        if self.authorization_response_iss_parameter_supported != Some(true) {
            return Err(E::IssParameterNotSupported);
        }
        if self.client_id_metadata_document_supported != Some(true) {
            return Err(E::ClientIdMetadataDocumentNotSupported);
        }
        if self.require_request_uri_registration == Some(false) {
            return Err(E::RequestUriRegistrationFalse);
        }
        Ok(())
    }

    /// CL-DISC-06: if `protected_resources` is listed, it must include `resource` (exact string).
    pub fn check_protected_resource(&self, resource: &str) -> Result<(), AsMetadataError> {
        match &self.protected_resources {
            Some(list) if !list.iter().any(|r| r == resource) => {
                Err(AsMetadataError::ResourceNotListed { resource: resource.to_owned() })
            }
            _ => Ok(()),
        }
    }

    /// A complete, valid atproto document for `issuer` with the reference paths (`/oauth/authorize`,
    /// `/oauth/token`, `/oauth/par`, `/oauth/revoke`, `/oauth/jwks`; AS-META-04). For servers and tests.
    pub fn atproto_default(issuer: &Issuer) -> Self {
        let e = |path: &str| format!("{issuer}{path}");
        let list = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        Self {
            issuer: issuer.to_string(),
            authorization_endpoint: e("/oauth/authorize"),
            token_endpoint: e("/oauth/token"),
            pushed_authorization_request_endpoint: Some(e("/oauth/par")),
            require_pushed_authorization_requests: Some(true),
            revocation_endpoint: Some(e("/oauth/revoke")),
            introspection_endpoint: None,
            jwks_uri: Some(e("/oauth/jwks")),
            scopes_supported: list(&[
                "atproto",
                "transition:generic",
                "transition:chat.bsky",
                "transition:email",
            ]),
            response_types_supported: list(&["code"]),
            response_modes_supported: list(&["query", "fragment", "form_post"]),
            grant_types_supported: list(&["authorization_code", "refresh_token"]),
            code_challenge_methods_supported: list(&["S256"]),
            token_endpoint_auth_methods_supported: list(&["none", "private_key_jwt"]),
            token_endpoint_auth_signing_alg_values_supported: list(&["ES256", "ES256K"]),
            dpop_signing_alg_values_supported: list(&["ES256", "ES256K"]),
            authorization_response_iss_parameter_supported: Some(true),
            client_id_metadata_document_supported: Some(true),
            require_request_uri_registration: Some(true),
            request_parameter_supported: Some(false),
            request_uri_parameter_supported: Some(true),
            subject_types_supported: list(&["public"]),
            prompt_values_supported: list(&["none", "login", "consent", "select_account", "create"]),
            protected_resources: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// RFC 9728 protected-resource metadata (served by a PDS). Unknown members are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the PDS origin (CL-DISC-02).
    pub resource: String,
    /// Exactly one issuer in atproto (CL-DISC-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_servers: Option<Vec<String>>,
    /// Scopes (REF sends `[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `["header"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// Documentation URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// Any other members.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why protected-resource metadata fails CL-DISC-02. One variant per check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceMetadataError {
    /// `resource` is not string-equal to the PDS origin (RFC 9728 §3.3).
    #[error("resource {found:?} does not equal {expected:?}")]
    ResourceMismatch {
        /// The PDS origin.
        expected: String,
        /// The `resource` member.
        found: String,
    },
    /// No `authorization_servers`, or an empty list.
    #[error("no authorization server is listed")]
    NoAuthorizationServer,
    /// More than one authorization server (atproto allows exactly one).
    #[error("{count} authorization servers are listed; atproto allows exactly one")]
    MultipleAuthorizationServers {
        /// How many.
        count: usize,
    },
    /// The single authorization server is not a valid issuer (CL-DISC-03).
    #[error("authorization server is not a valid issuer: {0}")]
    InvalidIssuer(#[source] IssuerError),
}

impl ProtectedResourceMetadata {
    /// A document for `resource` (a PDS origin) naming `issuer`.
    pub fn new(resource: impl Into<String>, issuer: &Issuer) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: Some(vec![issuer.to_string()]),
            scopes_supported: Some(Vec::new()),
            bearer_methods_supported: Some(vec!["header".to_owned()]),
            resource_documentation: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Validates against CL-DISC-02 for the PDS origin `expected_resource` (no trailing slash, e.g.
    /// `https://pds.example.com`) and returns the one issuer, validated under `policy`.
    pub fn validate(
        &self,
        expected_resource: &str,
        policy: IssuerPolicy,
    ) -> Result<Issuer, ResourceMetadataError> {
        if self.resource != expected_resource {
            return Err(ResourceMetadataError::ResourceMismatch {
                expected: expected_resource.to_owned(),
                found: self.resource.clone(),
            });
        }
        match self.authorization_servers.as_deref() {
            None | Some([]) => Err(ResourceMetadataError::NoAuthorizationServer),
            Some([one]) => Issuer::parse_with(one, policy).map_err(ResourceMetadataError::InvalidIssuer),
            Some(many) => Err(ResourceMetadataError::MultipleAuthorizationServers { count: many.len() }),
        }
    }
}

/// The RFC 6454 origin of a URL as a string without trailing slash (`https://pds.example.com`):
/// the form protected-resource `resource` values and issuers take.
pub fn origin_string(url: &Url) -> String {
    url.origin().ascii_serialization()
}
