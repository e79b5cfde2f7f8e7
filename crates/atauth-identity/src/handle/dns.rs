//! Handle → DID by DNS TXT `_atproto.<handle>` (ID-HANDLE-04).

use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

use super::{HandleResolveError, HandleResolver};
use crate::syntax::{Did, Handle, TldPolicy};

/// Why a TXT lookup failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TxtLookupError {
    /// The name does not exist (NXDOMAIN) or has no TXT records.
    #[error("no TXT records")]
    NotFound,
    /// The lookup did not finish in time.
    #[error("TXT lookup timed out")]
    Timeout,
    /// Any other resolver failure (SERVFAIL, network, configuration).
    #[error("TXT lookup failed: {0}")]
    Failed(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

/// Looks up TXT records. Injectable, so tests use a fake DNS.
#[async_trait::async_trait]
pub trait TxtLookup: Send + Sync + 'static {
    /// The TXT records at `name` (a fully-qualified name without the trailing dot), each record's
    /// character-strings concatenated. Records that are not UTF-8 may be skipped.
    async fn txt(&self, name: &str) -> Result<Vec<String>, TxtLookupError>;
}

/// [`TxtLookup`] over `hickory-resolver`.
#[derive(Clone)]
pub struct HickoryTxtLookup {
    resolver: TokioResolver,
}

impl std::fmt::Debug for HickoryTxtLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryTxtLookup").finish_non_exhaustive()
    }
}

impl HickoryTxtLookup {
    /// A resolver configured from the system (`/etc/resolv.conf`).
    pub fn from_system_conf() -> Result<Self, TxtLookupError> {
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| TxtLookupError::Failed(Arc::new(e)))?
            .build()
            .map_err(|e| TxtLookupError::Failed(Arc::new(e)))?;
        Ok(Self { resolver })
    }

    /// Wraps a configured resolver.
    pub fn new(resolver: TokioResolver) -> Self {
        Self { resolver }
    }
}

#[async_trait::async_trait]
impl TxtLookup for HickoryTxtLookup {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TxtLookupError> {
        // Fully qualified (trailing dot): never expanded with the host's search domains.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => {
                        let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                        String::from_utf8(bytes).ok()
                    }
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Err(TxtLookupError::NotFound),
            Err(e) => Err(TxtLookupError::Failed(Arc::new(e))),
        }
    }
}

/// Default timeout for the DNS method.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves handles with DNS TXT `_atproto.<handle>` (ID-HANDLE-04).
///
/// Only values starting with `did=` count; the rest of the value must be a valid DID. Several records
/// naming the same DID are fine; two different DIDs fail with
/// [`HandleResolveError::ConflictingDnsRecords`], and a malformed `did=` value fails with
/// [`HandleResolveError::InvalidDnsDid`]. DNSSEC is not required.
#[derive(Clone)]
pub struct DnsHandleResolver {
    txt: Arc<dyn TxtLookup>,
    timeout: Duration,
    tld_policy: TldPolicy,
}

impl std::fmt::Debug for DnsHandleResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsHandleResolver")
            .field("timeout", &self.timeout)
            .field("tld_policy", &self.tld_policy)
            .finish_non_exhaustive()
    }
}

impl DnsHandleResolver {
    /// A resolver using `txt` for lookups, production TLD policy.
    pub fn new(txt: Arc<dyn TxtLookup>) -> Self {
        Self { txt, timeout: DEFAULT_DNS_TIMEOUT, tld_policy: TldPolicy::production() }
    }

    /// Overall timeout of one lookup. Default 5 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Which TLDs may be resolved (ID-HANDLE-03).
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }
}

/// Picks the DID out of `_atproto` TXT values (ID-HANDLE-04).
pub(crate) fn did_from_txt_records(handle: &Handle, records: &[String]) -> Result<Did, HandleResolveError> {
    let mut found: Option<Did> = None;
    for value in records {
        let Some(raw) = value.strip_prefix("did=") else {
            continue; // ID-HANDLE-04: values not starting with `did=` are ignored.
        };
        let did = Did::new(raw).map_err(|source| HandleResolveError::InvalidDnsDid {
            handle: handle.clone(),
            value: value.clone(),
            source,
        })?;
        match &found {
            None => found = Some(did),
            Some(first) if *first == did => {}
            Some(first) => {
                return Err(HandleResolveError::ConflictingDnsRecords {
                    handle: handle.clone(),
                    first: first.clone(),
                    second: did,
                });
            }
        }
    }
    found.ok_or_else(|| HandleResolveError::NotFound { handle: handle.clone() })
}

#[async_trait::async_trait]
impl HandleResolver for DnsHandleResolver {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        super::check_policy(handle, self.tld_policy)?;
        let name = format!("_atproto.{handle}");
        let records = match tokio::time::timeout(self.timeout, self.txt.txt(&name)).await {
            Ok(Ok(records)) => records,
            Ok(Err(TxtLookupError::NotFound)) => {
                return Err(HandleResolveError::NotFound { handle: handle.clone() });
            }
            Ok(Err(source)) => {
                return Err(HandleResolveError::DnsLookup { handle: handle.clone(), source });
            }
            Err(_elapsed) => {
                return Err(HandleResolveError::DnsLookup {
                    handle: handle.clone(),
                    source: TxtLookupError::Timeout,
                });
            }
        };
        did_from_txt_records(handle, &records)
    }
}
