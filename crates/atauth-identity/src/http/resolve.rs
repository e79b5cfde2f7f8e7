//! Host name → address lookup, and the filtering `reqwest` resolver that applies the SSRF policy to the
//! *resolved* addresses (CL-DISC-07). Checking the URL's host name is not enough: any name can point at
//! `127.0.0.1` or `169.254.169.254`, so the check happens after DNS, on exactly the addresses the
//! connector will use.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::ip::{BlockReason, classify_ip, is_loopback_destination};

/// Resolves a host name to IP addresses. Injectable so tests can point names anywhere.
///
/// Implementations return every address the name has; the HTTP layer filters them.
#[async_trait::async_trait]
pub trait AddressLookup: Send + Sync + 'static {
    /// Looks up the addresses of `host` (a DNS name, never an IP literal).
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread, via `tokio::net::lookup_host`).
/// This honours `/etc/hosts`, which is what maps `localhost` in development.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemAddressLookup;

#[async_trait::async_trait]
impl AddressLookup for SystemAddressLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// A fixed table of host name → addresses, for tests and development setups. Names not in the table
/// fail with [`io::ErrorKind::NotFound`].
///
/// ```
/// use atauth_identity::http::StaticAddressLookup;
///
/// let lookup = StaticAddressLookup::new()
///     .with("pds.example.com", ["127.0.0.1".parse()?])
///     .with("evil.example.com", ["10.0.0.1".parse()?]);
/// # let _ = lookup;
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticAddressLookup {
    table: HashMap<String, Vec<IpAddr>>,
}

impl StaticAddressLookup {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the addresses for `host` (matched case-insensitively).
    #[must_use]
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.table.insert(host.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }
}

#[async_trait::async_trait]
impl AddressLookup for StaticAddressLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self.table
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host not in static table"))
    }
}

/// Which resolved addresses a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressPolicy {
    /// Public unicast only (plus loopback when `allow_loopback`).
    Public { allow_loopback: bool },
    /// Loopback only: used for plain `http://` in development mode.
    LoopbackOnly,
}

/// Why an address was refused under a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Blocked(BlockReason),
    NotLoopback,
}

impl AddressPolicy {
    pub(crate) fn check(self, ip: IpAddr) -> Result<(), Refusal> {
        match self {
            Self::LoopbackOnly => {
                if is_loopback_destination(ip) {
                    Ok(())
                } else {
                    Err(Refusal::NotLoopback)
                }
            }
            Self::Public { allow_loopback } => {
                if allow_loopback && is_loopback_destination(ip) {
                    return Ok(());
                }
                match classify_ip(ip) {
                    None => Ok(()),
                    Some(reason) => Err(Refusal::Blocked(reason)),
                }
            }
        }
    }
}

/// The error our resolver hands to `reqwest`; recovered from the error's source chain by
/// [`super::HttpError`] mapping.
#[derive(Debug)]
pub(crate) enum ResolveRejection {
    Refused { addr: IpAddr, refusal: Refusal },
    LookupFailed { host: String, source: Arc<io::Error> },
    NoAddresses { host: String },
}

impl fmt::Display for ResolveRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { addr, refusal } => write!(f, "address {addr} refused: {refusal:?}"),
            Self::LookupFailed { host, source } => write!(f, "lookup of {host} failed: {source}"),
            Self::NoAddresses { host } => write!(f, "{host} has no addresses"),
        }
    }
}

impl std::error::Error for ResolveRejection {}

/// A `reqwest` resolver that looks names up with an [`AddressLookup`] and drops every address the
/// policy refuses. If nothing is left, the connection fails with the first refusal.
pub(crate) struct FilteringResolver {
    pub(crate) lookup: Arc<dyn AddressLookup>,
    pub(crate) policy: AddressPolicy,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = Arc::clone(&self.lookup);
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = lookup.lookup(&host).await.map_err(|e| {
                Box::new(ResolveRejection::LookupFailed { host: host.clone(), source: Arc::new(e) })
                    as Box<dyn std::error::Error + Send + Sync>
            })?;
            let mut allowed = Vec::with_capacity(ips.len());
            let mut first_refusal = None;
            for ip in ips {
                match policy.check(ip) {
                    Ok(()) => allowed.push(SocketAddr::new(ip, 0)),
                    Err(refusal) => {
                        tracing::warn!(%host, %ip, ?refusal, "refusing resolved address (SSRF policy)");
                        first_refusal.get_or_insert((ip, refusal));
                    }
                }
            }
            if allowed.is_empty() {
                let err = match first_refusal {
                    Some((addr, refusal)) => ResolveRejection::Refused { addr, refusal },
                    None => ResolveRejection::NoAddresses { host },
                };
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
