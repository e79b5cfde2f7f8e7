//! Discovery: handle / DID / server URL → identity → protected-resource metadata → issuer →
//! authorization-server metadata, validated at every step (CL-DISC-01 … 07).
//!
//! All fetches use the [`SafeHttpClient`] (SSRF checks, no redirects, exact 200, JSON only, size
//! and time caps; CL-DISC-07). Authorization-server metadata is cached for a few minutes; identity
//! caching is atauth-identity's. Starting from a server URL, a 404 for its protected-resource
//! metadata means the URL is the issuer itself (CL-DISC-01).

use std::sync::Arc;
use std::time::Duration;

use atauth_identity::http::{HttpError, SafeHttpClient};
use atauth_identity::{AtIdentifier, Did, IdentityResolver, ResolvedIdentity};
use atauth_oauth::metadata::origin_string;
use atauth_oauth::{
    AuthorizationServerMetadata, Issuer, IssuerPolicy, ProtectedResourceMetadata,
    WELL_KNOWN_AUTHORIZATION_SERVER, WELL_KNOWN_PROTECTED_RESOURCE,
};
use url::Url;

use crate::error::DiscoveryError;

/// Cap on a metadata document (protected-resource or authorization-server).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// What the user typed, classified (CL-DISC-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginInput {
    /// A handle or DID (`login_hint` is sent; `sub` must match, CL-SUB-01).
    Identifier(AtIdentifier),
    /// A PDS or entryway URL (no `login_hint`; `sub` is verified by re-resolution, CL-SUB-02).
    Server(Url),
}

impl LoginInput {
    /// Parses user input: `http(s)://…` is a server; anything else a handle (lowercased, `@`
    /// stripped, ID-HANDLE-02) or DID.
    pub fn parse(input: &str) -> Result<Self, DiscoveryError> {
        let t = input.trim();
        if t.starts_with("https://") || t.starts_with("http://") {
            return Url::parse(t)
                .map(Self::Server)
                .map_err(|_| DiscoveryError::InvalidInput(input.to_owned()));
        }
        AtIdentifier::parse_user_input(t)
            .map(Self::Identifier)
            .map_err(|_| DiscoveryError::InvalidInput(input.to_owned()))
    }
}

/// The result of discovery.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The resolved identity, when the flow started from a handle or DID.
    pub identity: Option<ResolvedIdentity>,
    /// The PDS origin (the protected resource), if known.
    pub pds: Option<Url>,
    /// The issuer.
    pub issuer: Issuer,
    /// Its validated metadata.
    pub metadata: Arc<AuthorizationServerMetadata>,
}

/// Resolves identities and OAuth servers.
#[derive(Clone)]
pub struct Discovery {
    pub(crate) http: SafeHttpClient,
    pub(crate) identity: IdentityResolver,
    pub(crate) policy: IssuerPolicy,
    as_cache: moka::future::Cache<String, Arc<AuthorizationServerMetadata>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery over `http` and `identity`; `policy` decides whether http loopback issuers are ok.
    pub fn new(http: SafeHttpClient, identity: IdentityResolver, policy: IssuerPolicy) -> Self {
        let as_cache =
            moka::future::Cache::builder().max_capacity(1000).time_to_live(Duration::from_secs(300)).build();
        Self { http, identity, policy, as_cache }
    }

    /// The identity resolver.
    pub fn identity(&self) -> &IdentityResolver {
        &self.identity
    }

    /// Runs discovery for `input` (CL-DISC-01).
    pub async fn discover(&self, input: &LoginInput) -> Result<Discovered, DiscoveryError> {
        match input {
            LoginInput::Identifier(id) => {
                let identity = self.identity.resolve(id).await?;
                let (issuer, metadata) = self.issuer_for_pds(&identity.pds_endpoint).await?;
                Ok(Discovered {
                    pds: Some(identity.pds_endpoint.clone()),
                    identity: Some(identity),
                    issuer,
                    metadata,
                })
            }
            LoginInput::Server(url) => {
                // Protected-resource metadata first; a 404 means the URL is the issuer itself.
                match self.fetch_resource_metadata(url).await {
                    Ok(rs) => {
                        let issuer = rs.validate(&origin_string(url), self.policy)?;
                        let metadata = self.authorization_server(&issuer).await?;
                        metadata.check_protected_resource(&origin_string(url))?;
                        Ok(Discovered { identity: None, pds: Some(url.clone()), issuer, metadata })
                    }
                    Err(DiscoveryError::NoOAuthSupport) => {
                        let issuer = Issuer::from_origin_of(url, self.policy)?;
                        let metadata = self.authorization_server(&issuer).await?;
                        Ok(Discovered { identity: None, pds: None, issuer, metadata })
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// PDS → protected-resource metadata → issuer → AS metadata (CL-DISC-02/04/05/06).
    pub async fn issuer_for_pds(
        &self,
        pds: &Url,
    ) -> Result<(Issuer, Arc<AuthorizationServerMetadata>), DiscoveryError> {
        let resource = origin_string(pds);
        let rs = self.fetch_resource_metadata(pds).await?;
        let issuer = rs.validate(&resource, self.policy)?;
        let metadata = self.authorization_server(&issuer).await?;
        metadata.check_protected_resource(&resource)?;
        Ok((issuer, metadata))
    }

    /// Re-resolves `did` without caches and returns its PDS's issuer (CL-SUB-02, T-10, T-11).
    pub async fn issuer_for_did_fresh(&self, did: &Did) -> Result<(Issuer, Url), DiscoveryError> {
        let identity = self.identity.resolve_fresh(&AtIdentifier::Did(did.clone())).await?;
        let (issuer, _) = self.issuer_for_pds(&identity.pds_endpoint).await?;
        Ok((issuer, identity.pds_endpoint))
    }

    async fn fetch_resource_metadata(&self, pds: &Url) -> Result<ProtectedResourceMetadata, DiscoveryError> {
        let url = Url::parse(&format!("{}{}", origin_string(pds), WELL_KNOWN_PROTECTED_RESOURCE))
            .map_err(|_| DiscoveryError::InvalidInput(pds.to_string()))?;
        match self.http.get_json_exact_200(&url, MAX_METADATA_BYTES).await {
            Ok(m) => Ok(m),
            Err(HttpError::UnexpectedStatus { status }) if status.as_u16() == 404 => {
                Err(DiscoveryError::NoOAuthSupport)
            }
            Err(e) => Err(DiscoveryError::ResourceMetadataFetch(e)),
        }
    }

    /// The validated metadata of `issuer` (cached; CL-DISC-04/05).
    pub async fn authorization_server(
        &self,
        issuer: &Issuer,
    ) -> Result<Arc<AuthorizationServerMetadata>, DiscoveryError> {
        if let Some(m) = self.as_cache.get(issuer.as_str()).await {
            return Ok(m);
        }
        let url = Url::parse(&format!("{issuer}{WELL_KNOWN_AUTHORIZATION_SERVER}"))
            .map_err(|_| DiscoveryError::InvalidInput(issuer.to_string()))?;
        let metadata: AuthorizationServerMetadata = self
            .http
            .get_json_exact_200(&url, MAX_METADATA_BYTES)
            .await
            .map_err(DiscoveryError::AuthServerMetadataFetch)?;
        metadata.validate_atproto(issuer.as_str())?;
        let metadata = Arc::new(metadata);
        self.as_cache.insert(issuer.as_str().to_owned(), Arc::clone(&metadata)).await;
        Ok(metadata)
    }
}
