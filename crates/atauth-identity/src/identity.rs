//! The high-level [`IdentityResolver`]: handle or DID in, verified identity out.
//!
//! Implements the bidirectional handle check (ID-HANDLE-07) on top of the handle and DID resolvers:
//!
//! - **From a handle**: handle → DID → document, and the document's first valid `at://` handle must be
//!   the same handle, or the resolution fails with [`IdentityError::HandleMismatch`] (mandatory when an
//!   OAuth flow starts from a handle). A mismatch seen through cached data is retried once fresh, so a
//!   handle change within the cache TTL does not lock the user out.
//! - **From a DID**: document → claimed handle → DID; the handle is reported only if it resolves back
//!   to the same DID, otherwise `handle` is `None` (the DID, not the handle, is the identity,
//!   ID-HANDLE-08).

use std::sync::Arc;

use url::Url;

use crate::cache::{CacheConfig, CachedDidResolver, CachedHandleResolver};
use crate::did::{AtprotoDidResolver, DidDocument, DidResolveError, DidResolver, DocumentError};
use crate::handle::{
    self, DnsHandleResolver, HandleResolveError, HandleResolver, TxtLookup, TxtLookupError,
    WellKnownHandleResolver, XrpcHandleResolver,
};
use crate::http::SafeHttpClient;
use crate::syntax::{AtIdentifier, AtIdentifierError, Did, Handle, TldPolicy};

/// A resolved and checked identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResolvedIdentity {
    /// The account's DID: the stable identifier (ID-HANDLE-08).
    pub did: Did,
    /// The handle, only if it passed the bidirectional check (ID-HANDLE-07).
    pub handle: Option<Handle>,
    /// The PDS origin from the `#atproto_pds` service (ID-DID-06).
    pub pds_endpoint: Url,
    /// The `#atproto` signing key (ID-DID-07).
    pub signing_key: atauth_crypto::PublicKey,
    /// The whole DID document.
    pub doc: DidDocument,
}

/// Coarse classification of an [`IdentityError`], for mapping to user-facing or protocol errors in one
/// place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityErrorKind {
    /// The input is not a syntactically valid handle or DID.
    InvalidSyntax,
    /// Valid syntax, but not resolvable by policy: unsupported DID method (ID-DID-02), unsupported
    /// `did:web` form (ID-DID-04), or a disallowed handle TLD (ID-HANDLE-03).
    Unsupported,
    /// The handle or DID definitively does not exist.
    NotFound,
    /// Resolution could not complete (network, DNS, HTTP status, SSRF refusal, bad answers).
    ResolutionFailed,
    /// The DID document is malformed or lacks what atproto needs (ID-DID-05/06/07).
    DocumentInvalid,
    /// The handle's DID does not claim the handle back (ID-HANDLE-07).
    HandleMismatch,
}

/// Why resolving an identity failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The input is neither a valid handle nor a valid DID.
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(#[from] AtIdentifierError),
    /// Handle → DID failed.
    #[error(transparent)]
    Handle(#[from] HandleResolveError),
    /// DID → document failed.
    #[error(transparent)]
    Did(#[from] DidResolveError),
    /// The document lacks a usable PDS endpoint or signing key.
    #[error("the DID document of {did} is unusable: {source}")]
    Document {
        /// The DID.
        did: Did,
        /// The failed check.
        #[source]
        source: DocumentError,
    },
    /// The handle resolved to `did`, but `did`'s document does not claim the handle (ID-HANDLE-07).
    #[error("{handle} resolves to {did}, but that DID's document claims {claimed:?}")]
    HandleMismatch {
        /// The handle that was resolved.
        handle: Handle,
        /// The DID it resolved to.
        did: Did,
        /// The handle the document claims, if any.
        claimed: Option<Handle>,
    },
}

impl IdentityError {
    /// The coarse kind of failure.
    pub fn kind(&self) -> IdentityErrorKind {
        use IdentityErrorKind as K;
        match self {
            Self::InvalidIdentifier(_) => K::InvalidSyntax,
            Self::Handle(HandleResolveError::Unresolvable { .. }) => K::Unsupported,
            Self::Handle(HandleResolveError::NotFound { .. }) => K::NotFound,
            Self::Handle(_) => K::ResolutionFailed,
            Self::Did(DidResolveError::UnsupportedMethod { .. })
            | Self::Did(DidResolveError::UnsupportedDidWeb { .. }) => K::Unsupported,
            Self::Did(DidResolveError::InvalidPlcIdentifier { .. }) => K::InvalidSyntax,
            Self::Did(DidResolveError::NotFound { .. }) => K::NotFound,
            Self::Did(DidResolveError::MalformedDocument { .. })
            | Self::Did(DidResolveError::InvalidDocument { .. })
            | Self::Document { .. } => K::DocumentInvalid,
            Self::Did(_) => K::ResolutionFailed,
            Self::HandleMismatch { .. } => K::HandleMismatch,
        }
    }
}

/// Failure to build an [`IdentityResolver`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityBuildError {
    /// The system DNS configuration could not be loaded for TXT lookups.
    #[error("could not set up DNS TXT lookups: {0}")]
    Dns(#[source] TxtLookupError),
}

/// Resolves handles and DIDs to verified identities. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use atauth_identity::*;
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(f)
/// # }
/// # block_on(async {
/// // Fakes for the example; in production use `IdentityResolver::builder(http).build()?`.
/// let did = Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz")?;
/// let doc: DidDocument = serde_json::from_value(serde_json::json!({
///     "id": did,
///     "alsoKnownAs": ["at://alice.example.com"],
///     "verificationMethod": [{
///         "id": "#atproto", "type": "Multikey", "controller": did,
///         "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
///     }],
///     "service": [{
///         "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
///         "serviceEndpoint": "https://pds.example.net"
///     }]
/// }))?;
/// let resolver = IdentityResolver::new(
///     Arc::new(MemoryHandleResolver::new().with(Handle::new("alice.example.com")?, did.clone())),
///     Arc::new(MemoryDidResolver::new().with(doc)),
/// );
///
/// let id = resolver.resolve_input("@Alice.Example.com").await?;
/// assert_eq!(id.did, did);
/// assert_eq!(id.handle.as_ref().map(Handle::as_str), Some("alice.example.com"));
/// assert_eq!(id.pds_endpoint.as_str(), "https://pds.example.net/");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IdentityResolver {
    handles: Arc<dyn HandleResolver>,
    dids: Arc<dyn DidResolver>,
    tld_policy: TldPolicy,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver").field("tld_policy", &self.tld_policy).finish_non_exhaustive()
    }
}

impl IdentityResolver {
    /// Combines resolvers (inject fakes here in tests). Production TLD policy.
    pub fn new(handles: Arc<dyn HandleResolver>, dids: Arc<dyn DidResolver>) -> Self {
        Self { handles, dids, tld_policy: TldPolicy::production() }
    }

    /// A builder for the standard stack over `http`.
    pub fn builder(http: SafeHttpClient) -> IdentityResolverBuilder {
        IdentityResolverBuilder::new(http)
    }

    /// Which handle TLDs may be resolved (ID-HANDLE-03).
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }

    /// The handle resolver in use.
    pub fn handle_resolver(&self) -> &Arc<dyn HandleResolver> {
        &self.handles
    }

    /// The DID resolver in use.
    pub fn did_resolver(&self) -> &Arc<dyn DidResolver> {
        &self.dids
    }

    /// Parses user input (`@` stripped, handle lowercased; ID-HANDLE-02) and resolves it.
    pub async fn resolve_input(&self, input: &str) -> Result<ResolvedIdentity, IdentityError> {
        let id = AtIdentifier::parse_user_input(input)?;
        self.resolve(&id).await
    }

    /// Resolves a handle or DID, using caches.
    pub async fn resolve(&self, id: &AtIdentifier) -> Result<ResolvedIdentity, IdentityError> {
        match id {
            AtIdentifier::Did(did) => self.start_from_did(did, false).await,
            AtIdentifier::Handle(handle) => self.start_from_handle(handle, false).await,
        }
    }

    /// Resolves a handle or DID bypassing caches (CL-SUB-02, key rotation).
    pub async fn resolve_fresh(&self, id: &AtIdentifier) -> Result<ResolvedIdentity, IdentityError> {
        match id {
            AtIdentifier::Did(did) => self.start_from_did(did, true).await,
            AtIdentifier::Handle(handle) => self.start_from_handle(handle, true).await,
        }
    }

    /// Resolves a DID; the handle is included only if verified both ways.
    pub async fn resolve_did(&self, did: &Did) -> Result<ResolvedIdentity, IdentityError> {
        self.start_from_did(did, false).await
    }

    /// Resolves a handle and requires its DID document to claim it (ID-HANDLE-07).
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<ResolvedIdentity, IdentityError> {
        self.start_from_handle(handle, false).await
    }

    async fn handle_to_did(&self, handle: &Handle, fresh: bool) -> Result<Did, HandleResolveError> {
        if fresh {
            self.handles.resolve_handle_fresh(handle).await
        } else {
            self.handles.resolve_handle(handle).await
        }
    }

    async fn did_to_doc(&self, did: &Did, fresh: bool) -> Result<DidDocument, DidResolveError> {
        if fresh { self.dids.resolve_did_fresh(did).await } else { self.dids.resolve_did(did).await }
    }

    async fn start_from_handle(
        &self,
        handle: &Handle,
        fresh: bool,
    ) -> Result<ResolvedIdentity, IdentityError> {
        handle::check_policy(handle, self.tld_policy)?;
        let mut fresh = fresh;
        loop {
            let did = self.handle_to_did(handle, fresh).await?;
            let doc = self.did_to_doc(&did, fresh).await?;
            let claimed = doc.claimed_handle();
            // ID-HANDLE-07: the DID document must claim the handle back.
            if claimed.as_ref() == Some(handle) {
                return build(did, Some(handle.clone()), doc);
            }
            if !fresh {
                // Possibly stale cache entries (a handle change within the TTL): retry once, fresh.
                fresh = true;
                continue;
            }
            return Err(IdentityError::HandleMismatch { handle: handle.clone(), did, claimed });
        }
    }

    async fn start_from_did(&self, did: &Did, fresh: bool) -> Result<ResolvedIdentity, IdentityError> {
        let doc = self.did_to_doc(did, fresh).await?;
        let handle = match doc.claimed_handle() {
            Some(claimed) if claimed.is_resolvable(self.tld_policy) => {
                match self.handle_to_did(&claimed, fresh).await {
                    Ok(back) if &back == did => Some(claimed),
                    Ok(other) => {
                        tracing::debug!(%did, handle = %claimed, %other, "claimed handle resolves to another DID");
                        None
                    }
                    Err(e) => {
                        tracing::debug!(%did, handle = %claimed, error = %e, "claimed handle did not resolve");
                        None
                    }
                }
            }
            _ => None,
        };
        build(did.clone(), handle, doc)
    }
}

fn build(did: Did, handle: Option<Handle>, doc: DidDocument) -> Result<ResolvedIdentity, IdentityError> {
    let document_err = |source| IdentityError::Document { did: did.clone(), source };
    let pds_endpoint = doc.pds_endpoint().map_err(document_err)?;
    let signing_key = doc.signing_key().map_err(document_err)?;
    Ok(ResolvedIdentity { did, handle, pds_endpoint, signing_key, doc })
}

/// Builder for the standard [`IdentityResolver`] stack: handle resolution (DNS TXT + HTTPS
/// well-known, or an XRPC service), `did:plc` + `did:web`, TTL caches, all over one
/// [`SafeHttpClient`].
///
/// ```
/// use atauth_identity::{IdentityResolver, TldPolicy, http::SafeHttpClient};
///
/// // Development against a local PLC and PDS (the interop harness):
/// let http = SafeHttpClient::builder().allow_http_loopback(true).build()?;
/// let resolver = IdentityResolver::builder(http)
///     .plc_directory(url::Url::parse("http://127.0.0.1:2582")?)
///     .xrpc_handle_resolver(url::Url::parse("http://localhost:2583")?)
///     .tld_policy(TldPolicy::development())
///     .build()?;
/// # let _ = resolver;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct IdentityResolverBuilder {
    http: SafeHttpClient,
    plc_directory: Option<Url>,
    xrpc_handle_resolver: Option<Url>,
    txt_lookup: Option<Arc<dyn TxtLookup>>,
    tld_policy: TldPolicy,
    allow_localhost_did_web: bool,
    cache: Option<CacheConfig>,
}

impl std::fmt::Debug for IdentityResolverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolverBuilder")
            .field("plc_directory", &self.plc_directory)
            .field("xrpc_handle_resolver", &self.xrpc_handle_resolver)
            .field("tld_policy", &self.tld_policy)
            .field("allow_localhost_did_web", &self.allow_localhost_did_web)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl IdentityResolverBuilder {
    fn new(http: SafeHttpClient) -> Self {
        Self {
            http,
            plc_directory: None,
            xrpc_handle_resolver: None,
            txt_lookup: None,
            tld_policy: TldPolicy::production(),
            allow_localhost_did_web: false,
            cache: Some(CacheConfig::default()),
        }
    }

    /// The PLC directory (default `https://plc.directory`, ID-DID-03).
    #[must_use]
    pub fn plc_directory(mut self, url: Url) -> Self {
        self.plc_directory = Some(url);
        self
    }

    /// Resolve handles with `com.atproto.identity.resolveHandle` on this service **instead of** DNS and
    /// HTTPS (ID-DID-08). The bidirectional check still applies.
    #[must_use]
    pub fn xrpc_handle_resolver(mut self, base: Url) -> Self {
        self.xrpc_handle_resolver = Some(base);
        self
    }

    /// The TXT resolver for the DNS method (default: system configuration via hickory).
    #[must_use]
    pub fn txt_lookup(mut self, txt: Arc<dyn TxtLookup>) -> Self {
        self.txt_lookup = Some(txt);
        self
    }

    /// Handle and `did:web` TLD policy (ID-HANDLE-03, ID-DID-04). Default production.
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }

    /// **Development only.** Resolve `did:web:localhost%3A<port>` over plain http.
    #[must_use]
    pub fn allow_localhost_did_web(mut self, allow: bool) -> Self {
        self.allow_localhost_did_web = allow;
        self
    }

    /// Cache settings (default 5-minute TTL, ID-HANDLE-08).
    #[must_use]
    pub fn cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Disables caching.
    #[must_use]
    pub fn no_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Builds the resolver.
    pub fn build(self) -> Result<IdentityResolver, IdentityBuildError> {
        let policy = self.tld_policy;
        let handles: Arc<dyn HandleResolver> = match (self.xrpc_handle_resolver, self.txt_lookup) {
            (Some(base), _) => {
                let r = XrpcHandleResolver::new(self.http.clone(), base).tld_policy(policy);
                wrap_handles(r, self.cache)
            }
            (None, Some(txt)) => {
                let r = handle::AtprotoHandleResolver::from_parts(
                    DnsHandleResolver::new(txt),
                    WellKnownHandleResolver::new(self.http.clone()),
                )
                .tld_policy(policy);
                wrap_handles(r, self.cache)
            }
            (None, None) => {
                let r =
                    handle::system_resolver(self.http.clone(), policy).map_err(IdentityBuildError::Dns)?;
                wrap_handles(r, self.cache)
            }
        };
        let mut dids = AtprotoDidResolver::new(self.http)
            .tld_policy(policy)
            .allow_localhost_did_web(self.allow_localhost_did_web);
        if let Some(plc) = self.plc_directory {
            dids = dids.plc_directory(plc);
        }
        let dids: Arc<dyn DidResolver> = match self.cache {
            Some(config) => Arc::new(CachedDidResolver::new(dids, config)),
            None => Arc::new(dids),
        };
        Ok(IdentityResolver::new(handles, dids).tld_policy(policy))
    }
}

fn wrap_handles<R: HandleResolver>(r: R, cache: Option<CacheConfig>) -> Arc<dyn HandleResolver> {
    match cache {
        Some(config) => Arc::new(CachedHandleResolver::new(r, config)),
        None => Arc::new(r),
    }
}
