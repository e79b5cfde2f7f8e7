//! Client configuration: the client id and metadata (web confidential, web public, native,
//! loopback), the client-authentication keyset, and development switches.

use std::time::Duration;

use atauth_crypto::{Algorithm, Jwks, PrivateKey};
use atauth_oauth::client_metadata::ClientMetadataError;
use atauth_oauth::{ClientId, ClientIdError, ClientMetadata, LoopbackClientId, ScopeSet, ScopeSyntaxError};
use url::Url;

/// Client-authentication keys for `private_key_jwt`, each with a `kid` (CL-MD-CONF-04/05).
///
/// The first key signs assertions for new sessions; every key stays usable for the sessions that
/// started with it (refreshes use the session's `kid`, CL-REF-01). Rotate by putting a new key
/// first and removing the old one only when its sessions are gone.
#[derive(Clone, Default)]
pub struct Keyset {
    keys: Vec<(String, PrivateKey)>,
}

/// Why a keyset is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeysetError {
    /// Two keys share a `kid`.
    #[error("duplicate kid {0:?}")]
    DuplicateKid(String),
    /// A `kid` is empty.
    #[error("empty kid")]
    EmptyKid,
    /// Assertions must be ES256 (CL-MD-CONF-03).
    #[error("key {0:?} is not an ES256 key")]
    NotEs256(String),
}

impl Keyset {
    /// An empty keyset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key (ES256 only).
    pub fn with_key(mut self, kid: impl Into<String>, key: PrivateKey) -> Result<Self, KeysetError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(KeysetError::EmptyKid);
        }
        if self.keys.iter().any(|(k, _)| *k == kid) {
            return Err(KeysetError::DuplicateKid(kid));
        }
        if key.algorithm() != Algorithm::Es256 {
            return Err(KeysetError::NotEs256(kid));
        }
        self.keys.push((kid, key));
        Ok(self)
    }

    /// The key new sessions sign with.
    pub fn signing_key(&self) -> Option<(&str, &PrivateKey)> {
        self.keys.first().map(|(k, key)| (k.as_str(), key))
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&PrivateKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// The public JWKS to publish (`kid`, `alg`, `use: sig`; no private members).
    pub fn public_jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .map(|(kid, key)| {
                    let mut jwk = key.public_key().to_jwk().with_kid(kid.clone());
                    jwk.alg = Some(key.algorithm().jws_name().to_owned());
                    jwk.use_ = Some("sig".to_owned());
                    jwk
                })
                .collect(),
        }
    }

    /// Whether the keyset is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl std::fmt::Debug for Keyset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyset").field("kids", &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>()).finish()
    }
}

/// **Development switches** for offline use against local servers (the interop harness). All off by
/// default; never enable them in production.
#[derive(Debug, Clone, Default)]
pub struct DevOptions {
    /// Allow plain `http://` to loopback addresses (PDS, issuer, PLC) and `http://localhost` issuers.
    pub allow_http_loopback: bool,
    /// PLC directory URL (default `https://plc.directory`).
    pub plc_url: Option<Url>,
    /// Resolve handles with `com.atproto.identity.resolveHandle` on this server instead of DNS/HTTPS
    /// (also allows `.test` handles).
    pub handle_resolver_url: Option<Url>,
}

/// Why a client configuration is invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The client id is invalid.
    #[error("invalid client id: {0}")]
    ClientId(#[from] ClientIdError),
    /// The scope is invalid.
    #[error("invalid scope: {0}")]
    Scope(#[from] ScopeSyntaxError),
    /// The metadata fails validation (the AS would refuse it).
    #[error("invalid client metadata: {0}")]
    Metadata(#[from] ClientMetadataError),
    /// The keyset is invalid.
    #[error("invalid keyset: {0}")]
    Keyset(#[from] KeysetError),
    /// `private_key_jwt` without keys, or keys on a public client.
    #[error("private_key_jwt needs a non-empty keyset, and public clients must not have one")]
    KeysetMismatch,
    /// Building the HTTP client or resolver failed.
    #[error("could not build the HTTP stack: {0}")]
    Http(String),
}

/// A complete client configuration: id, validated metadata, keys, switches.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) client_id: ClientId,
    pub(crate) metadata: ClientMetadata,
    pub(crate) keyset: Option<Keyset>,
    /// Development switches.
    pub dev: DevOptions,
    /// Total timeout for each outbound HTTP request (default 10 s).
    pub http_timeout: Duration,
    /// How long a pending authorization stays valid (default 10 minutes).
    pub state_ttl: Duration,
    /// Scopes the callback requires in the granted scope (CL-SUB-05); default only `atproto`.
    pub required_scopes: Vec<String>,
    /// Re-resolve the account's issuer before every refresh (CL-SUB-02 as REF does; T-11).
    /// Default `true`.
    pub verify_issuer_on_refresh: bool,
}

fn jwks_uri_or_inline(metadata: &mut ClientMetadata, keyset: &Keyset, jwks_uri: Option<Url>) {
    match jwks_uri {
        Some(uri) => metadata.jwks_uri = Some(uri.to_string()),
        None => metadata.jwks = Some(keyset.public_jwks()),
    }
}

impl ClientConfig {
    fn finish(
        client_id: ClientId,
        metadata: ClientMetadata,
        keyset: Option<Keyset>,
    ) -> Result<Self, ConfigError> {
        metadata.validate(&client_id)?;
        let confidential = metadata.token_endpoint_auth_method.as_deref() == Some("private_key_jwt");
        if confidential != keyset.as_ref().is_some_and(|k| !k.is_empty()) {
            return Err(ConfigError::KeysetMismatch);
        }
        Ok(Self {
            client_id,
            metadata,
            keyset,
            dev: DevOptions::default(),
            http_timeout: Duration::from_secs(10),
            state_ttl: Duration::from_secs(600),
            required_scopes: Vec::new(),
            verify_issuer_on_refresh: true,
        })
    }

    /// A loopback development client (`http://localhost?redirect_uri=…&scope=…`, CL-MD-LOOP), as a
    /// CLI uses it: `redirect_uris` like `http://127.0.0.1:PORT/callback`.
    pub fn loopback(redirect_uris: &[&str], scope: &str) -> Result<Self, ConfigError> {
        let id = LoopbackClientId::new(redirect_uris, &ScopeSet::parse(scope)?)?;
        let metadata = id.metadata();
        Self::finish(ClientId::Loopback(id), metadata, None)
    }

    /// A web public client (browser-side app; CL-MD-PUB-01).
    pub fn web_public(client_id: &str, redirect_uris: &[&str], scope: &str) -> Result<Self, ConfigError> {
        let id = ClientId::parse(client_id)?;
        let metadata = base_metadata(client_id, redirect_uris, scope)?;
        Self::finish(id, ClientMetadata { application_type: Some("web".into()), ..metadata }, None)
    }

    /// A web confidential client (`private_key_jwt`, CL-MD-CONF-*). The keyset is published inline in
    /// the metadata, or at `jwks_uri` if given.
    pub fn web_confidential(
        client_id: &str,
        redirect_uris: &[&str],
        scope: &str,
        keyset: Keyset,
        jwks_uri: Option<Url>,
    ) -> Result<Self, ConfigError> {
        let id = ClientId::parse(client_id)?;
        let mut metadata = ClientMetadata {
            application_type: Some("web".into()),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            token_endpoint_auth_signing_alg: Some("ES256".into()),
            ..base_metadata(client_id, redirect_uris, scope)?
        };
        jwks_uri_or_inline(&mut metadata, &keyset, jwks_uri);
        Self::finish(id, metadata, Some(keyset))
    }

    /// A native (mobile/desktop) public client (CL-MD-NAT-*): custom-scheme redirects such as
    /// `com.example.app:/callback`, loopback IPs or same-origin https.
    pub fn native(client_id: &str, redirect_uris: &[&str], scope: &str) -> Result<Self, ConfigError> {
        let id = ClientId::parse(client_id)?;
        let metadata = base_metadata(client_id, redirect_uris, scope)?;
        Self::finish(id, ClientMetadata { application_type: Some("native".into()), ..metadata }, None)
    }

    /// A client from a complete metadata document (validated here) and, for `private_key_jwt`, its keys.
    pub fn from_metadata(metadata: ClientMetadata, keyset: Option<Keyset>) -> Result<Self, ConfigError> {
        let id = ClientId::parse(&metadata.client_id)?;
        Self::finish(id, metadata, keyset)
    }

    /// Sets display fields (`client_name`, `client_uri`) and re-validates.
    pub fn with_display(
        mut self,
        client_name: Option<&str>,
        client_uri: Option<&str>,
    ) -> Result<Self, ConfigError> {
        self.metadata.client_name = client_name.map(str::to_owned);
        self.metadata.client_uri = client_uri.map(str::to_owned);
        self.metadata.validate(&self.client_id)?;
        Ok(self)
    }

    /// Sets the development switches.
    #[must_use]
    pub fn with_dev(mut self, dev: DevOptions) -> Self {
        self.dev = dev;
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The metadata document (serve it at the client id URL, 200 + `application/json`, T-16).
    pub fn metadata(&self) -> &ClientMetadata {
        &self.metadata
    }

    /// The public JWKS (empty for public clients).
    pub fn jwks(&self) -> Jwks {
        self.keyset.as_ref().map(Keyset::public_jwks).unwrap_or_default()
    }

    /// The keyset.
    pub fn keyset(&self) -> Option<&Keyset> {
        self.keyset.as_ref()
    }
}

fn base_metadata(
    client_id: &str,
    redirect_uris: &[&str],
    scope: &str,
) -> Result<ClientMetadata, ConfigError> {
    let scope = ScopeSet::parse_unique(scope)?;
    Ok(ClientMetadata::new(client_id, redirect_uris.iter().map(|s| (*s).to_owned()).collect(), &scope))
}
