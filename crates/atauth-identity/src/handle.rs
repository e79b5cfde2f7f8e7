//! Handle → DID resolution behind the object-safe [`HandleResolver`] trait.
//!
//! - [`DnsHandleResolver`]: DNS TXT `_atproto.<handle>` (ID-HANDLE-04), over an injectable
//!   [`TxtLookup`] ([`HickoryTxtLookup`] in production).
//! - [`WellKnownHandleResolver`]: `https://<handle>/.well-known/atproto-did` (ID-HANDLE-05).
//! - [`AtprotoHandleResolver`]: both, in parallel, DNS preferred (ID-HANDLE-06).
//! - [`XrpcHandleResolver`]: `com.atproto.identity.resolveHandle` on a trusted service (ID-DID-08).
//!
//! None of these verify the handle against the DID document; that is the bidirectional check
//! (ID-HANDLE-07) done by [`crate::IdentityResolver`].

pub(crate) mod dns;
pub(crate) mod well_known;
pub(crate) mod xrpc;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::{Either, select};

use crate::http::{HttpError, SafeHttpClient};
use crate::syntax::{Did, DidSyntaxError, Handle, TldPolicy, UnresolvableHandle};

pub use dns::{DEFAULT_DNS_TIMEOUT, DnsHandleResolver, HickoryTxtLookup, TxtLookup, TxtLookupError};
pub use well_known::{MAX_WELL_KNOWN_BYTES, WellKnownHandleResolver};
pub use xrpc::{MAX_XRPC_RESPONSE_BYTES, RESOLVE_HANDLE_NSID, XrpcHandleResolver};

/// Resolves a handle to a DID. Object-safe.
#[async_trait::async_trait]
pub trait HandleResolver: Send + Sync + 'static {
    /// Resolves `handle`, possibly from a cache.
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError>;

    /// Resolves `handle` bypassing any cache; caches refresh their entry with the result. The default
    /// calls [`resolve_handle`](Self::resolve_handle), which is right for uncached resolvers.
    async fn resolve_handle_fresh(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        self.resolve_handle(handle).await
    }
}

#[async_trait::async_trait]
impl<T: HandleResolver + ?Sized> HandleResolver for Arc<T> {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        (**self).resolve_handle(handle).await
    }
    async fn resolve_handle_fresh(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        (**self).resolve_handle_fresh(handle).await
    }
}

/// Why resolving a handle failed. One variant per failed check.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HandleResolveError {
    /// The handle must not be resolved: disallowed TLD, `.test` outside development, or
    /// `handle.invalid` (ID-HANDLE-03).
    #[error("{handle} is not resolvable: {reason}")]
    Unresolvable {
        /// The handle.
        handle: Handle,
        /// Why.
        #[source]
        reason: UnresolvableHandle,
    },
    /// No method found a DID for the handle.
    #[error("no DID found for {handle}")]
    NotFound {
        /// The handle.
        handle: Handle,
    },
    /// `_atproto.<handle>` has `did=` records naming two different DIDs (ID-HANDLE-04).
    #[error("_atproto.{handle} has conflicting did= records: {first} and {second}")]
    ConflictingDnsRecords {
        /// The handle.
        handle: Handle,
        /// The first DID seen.
        first: Did,
        /// A different DID.
        second: Did,
    },
    /// A `did=` TXT value is not a valid DID (ID-HANDLE-04).
    #[error("_atproto.{handle} has an invalid did= record {value:?}: {source}")]
    InvalidDnsDid {
        /// The handle.
        handle: Handle,
        /// The whole TXT value.
        value: String,
        /// Why the DID is invalid.
        #[source]
        source: DidSyntaxError,
    },
    /// The TXT lookup failed (not "no records", which is [`Self::NotFound`]).
    #[error("DNS lookup for {handle} failed: {source}")]
    DnsLookup {
        /// The handle.
        handle: Handle,
        /// The lookup error.
        #[source]
        source: TxtLookupError,
    },
    /// The well-known fetch failed (ID-HANDLE-05).
    #[error("https://{handle}/.well-known/atproto-did failed: {source}")]
    WellKnownHttp {
        /// The handle.
        handle: Handle,
        /// The HTTP layer's error.
        #[source]
        source: HttpError,
    },
    /// The well-known body's first line is not a valid DID (ID-HANDLE-05).
    #[error("https://{handle}/.well-known/atproto-did did not return a valid DID: {source}")]
    InvalidWellKnownDid {
        /// The handle.
        handle: Handle,
        /// Why the DID is invalid.
        #[source]
        source: DidSyntaxError,
    },
    /// The XRPC `resolveHandle` call failed.
    #[error("resolveHandle({handle}) failed: {source}")]
    XrpcHttp {
        /// The handle.
        handle: Handle,
        /// The HTTP layer's error.
        #[source]
        source: HttpError,
    },
    /// The XRPC `resolveHandle` answer has an invalid DID.
    #[error("resolveHandle({handle}) returned an invalid DID: {source}")]
    InvalidXrpcDid {
        /// The handle.
        handle: Handle,
        /// Why the DID is invalid.
        #[source]
        source: DidSyntaxError,
    },
    /// Neither the DNS nor the HTTPS method found a DID, and at least one failed for a reason other
    /// than "not found" (ID-HANDLE-06).
    #[error("resolving {handle} failed (DNS: {dns}; HTTPS: {https})")]
    AllMethodsFailed {
        /// The handle.
        handle: Handle,
        /// The DNS method's error.
        dns: Box<HandleResolveError>,
        /// The HTTPS method's error.
        https: Box<HandleResolveError>,
    },
}

impl HandleResolveError {
    /// Whether the handle definitively has no DID (as opposed to a failure to find out).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

pub(crate) fn check_policy(handle: &Handle, policy: TldPolicy) -> Result<(), HandleResolveError> {
    handle
        .check_resolvable(policy)
        .map_err(|reason| HandleResolveError::Unresolvable { handle: handle.clone(), reason })
}

/// The standard resolver: DNS TXT and HTTPS well-known in parallel (ID-HANDLE-06).
///
/// - A DNS answer wins as soon as it arrives; the HTTPS request is then cancelled.
/// - If both answer with different DIDs, DNS is preferred (and the conflict is logged).
/// - A DNS *misconfiguration* (two different `did=` records, or an invalid one) fails the whole
///   resolution rather than letting the HTTPS answer override the domain owner's DNS (ID-HANDLE-04).
/// - Otherwise the HTTPS answer is used when DNS has none.
/// - Both "not found" → [`HandleResolveError::NotFound`]; any other failure on both sides →
///   [`HandleResolveError::AllMethodsFailed`]. An HTTPS host name that does not resolve counts as "not
///   found" when DNS also has no record.
///
/// ```no_run
/// use std::sync::Arc;
/// use atauth_identity::{AtprotoHandleResolver, Handle, HandleResolver, HickoryTxtLookup};
/// use atauth_identity::http::SafeHttpClient;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let resolver = AtprotoHandleResolver::new(
///     Arc::new(HickoryTxtLookup::from_system_conf()?),
///     SafeHttpClient::builder().build()?,
/// );
/// let did = resolver.resolve_handle(&Handle::new("jay.bsky.team")?).await?;
/// # let _ = did; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AtprotoHandleResolver {
    dns: DnsHandleResolver,
    https: WellKnownHandleResolver,
    tld_policy: TldPolicy,
}

impl AtprotoHandleResolver {
    /// Both methods with default settings and the production TLD policy.
    pub fn new(txt: Arc<dyn TxtLookup>, http: SafeHttpClient) -> Self {
        Self::from_parts(DnsHandleResolver::new(txt), WellKnownHandleResolver::new(http))
    }

    /// Combines configured method resolvers.
    pub fn from_parts(dns: DnsHandleResolver, https: WellKnownHandleResolver) -> Self {
        Self { dns, https, tld_policy: TldPolicy::production() }
    }

    /// Which TLDs may be resolved (ID-HANDLE-03); applied to both methods.
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self.dns = self.dns.tld_policy(policy);
        self.https = self.https.tld_policy(policy);
        self
    }
}

fn counts_as_not_found(err: &HandleResolveError) -> bool {
    match err {
        HandleResolveError::NotFound { .. } => true,
        // The handle's host name does not exist at all.
        HandleResolveError::WellKnownHttp { source, .. } => {
            matches!(source, HttpError::Dns { .. } | HttpError::NoAddresses { .. })
        }
        _ => false,
    }
}

fn is_dns_misconfiguration(err: &HandleResolveError) -> bool {
    matches!(err, HandleResolveError::ConflictingDnsRecords { .. } | HandleResolveError::InvalidDnsDid { .. })
}

fn combine(
    handle: &Handle,
    dns: Result<Did, HandleResolveError>,
    https: Result<Did, HandleResolveError>,
) -> Result<Did, HandleResolveError> {
    match (dns, https) {
        (Ok(dns_did), Ok(https_did)) => {
            if dns_did != https_did {
                // ID-HANDLE-06: on conflict, prefer DNS.
                tracing::warn!(%handle, %dns_did, %https_did, "DNS and HTTPS handle methods disagree; using DNS");
            }
            Ok(dns_did)
        }
        (Ok(did), Err(_)) => Ok(did),
        (Err(e), _) if is_dns_misconfiguration(&e) => Err(e),
        (Err(_), Ok(did)) => Ok(did),
        (Err(dns), Err(https)) => {
            if counts_as_not_found(&dns) && counts_as_not_found(&https) {
                Err(HandleResolveError::NotFound { handle: handle.clone() })
            } else {
                Err(HandleResolveError::AllMethodsFailed {
                    handle: handle.clone(),
                    dns: Box::new(dns),
                    https: Box::new(https),
                })
            }
        }
    }
}

#[async_trait::async_trait]
impl HandleResolver for AtprotoHandleResolver {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        check_policy(handle, self.tld_policy)?;
        let dns = std::pin::pin!(self.dns.resolve_handle(handle));
        let https = std::pin::pin!(self.https.resolve_handle(handle));
        match select(dns, https).await {
            Either::Left((dns_result, https)) => {
                if dns_result.is_ok() || dns_result.as_ref().is_err_and(is_dns_misconfiguration) {
                    return dns_result; // DNS is authoritative; the HTTPS request is dropped.
                }
                let https_result = https.await;
                combine(handle, dns_result, https_result)
            }
            Either::Right((https_result, dns)) => {
                // DNS is preferred, so its answer is always awaited.
                let dns_result = dns.await;
                combine(handle, dns_result, https_result)
            }
        }
    }
}

/// An in-memory [`HandleResolver`] for tests and fixtures.
#[derive(Debug, Clone, Default)]
pub struct MemoryHandleResolver {
    map: HashMap<Handle, Did>,
}

impl MemoryHandleResolver {
    /// An empty resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `handle` to `did`.
    #[must_use]
    pub fn with(mut self, handle: Handle, did: Did) -> Self {
        self.map.insert(handle, did);
        self
    }
}

#[async_trait::async_trait]
impl HandleResolver for MemoryHandleResolver {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        self.map.get(handle).cloned().ok_or_else(|| HandleResolveError::NotFound { handle: handle.clone() })
    }
}

/// Convenience: the standard resolver over the system DNS configuration.
pub(crate) fn system_resolver(
    http: SafeHttpClient,
    policy: TldPolicy,
) -> Result<AtprotoHandleResolver, TxtLookupError> {
    let txt = HickoryTxtLookup::from_system_conf()?;
    Ok(AtprotoHandleResolver::new(Arc::new(txt), http).tld_policy(policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Handle {
        Handle::new(s).expect("valid handle")
    }
    fn d(s: &str) -> Did {
        Did::new(s).expect("valid DID")
    }

    #[test]
    fn txt_records_only_did_values_count() {
        // ID-HANDLE-04
        let handle = h("alice.example.com");
        let records = vec![
            "v=spf1 -all".to_owned(),
            "did=did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_owned(),
            "did=did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_owned(),
        ];
        assert_eq!(
            dns::did_from_txt_records(&handle, &records).expect("one DID"),
            d("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
        );
        assert!(
            dns::did_from_txt_records(&handle, &["hello".to_owned()]).expect_err("no did=").is_not_found()
        );
    }

    #[test]
    fn txt_records_with_two_dids_fail() {
        // ID-HANDLE-04
        let handle = h("alice.example.com");
        let records = vec![
            "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
            "did=did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
        ];
        assert!(matches!(
            dns::did_from_txt_records(&handle, &records),
            Err(HandleResolveError::ConflictingDnsRecords { .. })
        ));
        assert!(matches!(
            dns::did_from_txt_records(&handle, &["did=not-a-did".to_owned()]),
            Err(HandleResolveError::InvalidDnsDid { .. })
        ));
    }

    #[test]
    fn combine_prefers_dns_and_reports_not_found() {
        // ID-HANDLE-06
        let handle = h("alice.example.com");
        let nf = || HandleResolveError::NotFound { handle: handle.clone() };
        let a = d("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
        let b = d("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb");
        assert_eq!(combine(&handle, Ok(a.clone()), Ok(b.clone())).expect("dns"), a);
        assert_eq!(combine(&handle, Err(nf()), Ok(b.clone())).expect("https"), b);
        assert!(combine(&handle, Err(nf()), Err(nf())).expect_err("none").is_not_found());
        let failed =
            HandleResolveError::DnsLookup { handle: handle.clone(), source: TxtLookupError::Timeout };
        assert!(matches!(
            combine(&handle, Err(failed), Err(nf())),
            Err(HandleResolveError::AllMethodsFailed { .. })
        ));
    }
}
