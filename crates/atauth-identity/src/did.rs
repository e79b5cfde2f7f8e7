//! DID → DID document resolution for the two blessed methods, `did:plc` and `did:web` (ID-DID-02,
//! ID-DID-03, ID-DID-04), behind the object-safe [`DidResolver`] trait.
//!
//! Every resolver here fetches through [`SafeHttpClient`] (no redirects, size cap, JSON media type,
//! exact 200) and checks that the document's `id` equals the DID (ID-DID-05).

pub(crate) mod document;

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use http::header::{self, HeaderValue};
use url::Url;

use crate::http::{HttpError, HttpRequest, SafeHttpClient};
use crate::syntax::{Did, HandleSyntaxError, TldPolicy, UnresolvableHandle, validate_dns_name};

pub use document::{
    DidDocument, DocumentError, KeyEncoding, PDS_SERVICE_FRAGMENT, PDS_SERVICE_TYPE, SIGNING_KEY_FRAGMENT,
    Service, ServiceType, SigningKeyMaterial, VerificationMethod,
};

/// The public PLC directory (ID-DID-03).
pub const DEFAULT_PLC_DIRECTORY: &str = "https://plc.directory";

/// Media types accepted for DID documents (ID-DID-03).
pub const DID_DOCUMENT_MEDIA_TYPES: [&str; 3] =
    ["application/json", "application/did+ld+json", "application/did+json"];

/// Default cap on a DID document's size.
pub const DEFAULT_MAX_DID_DOCUMENT_BYTES: usize = 64 * 1024;

/// Resolves a DID to its document. Object-safe; implementations must check the document `id`
/// (ID-DID-05).
#[async_trait::async_trait]
pub trait DidResolver: Send + Sync + 'static {
    /// Resolves `did`, possibly from a cache.
    async fn resolve_did(&self, did: &Did) -> Result<DidDocument, DidResolveError>;

    /// Resolves `did` bypassing any cache (e.g. before trusting a PDS/issuer binding, CL-SUB-02, or
    /// after a signature failed with a cached key). Caches refresh their entry with the result. The
    /// default calls [`resolve_did`](Self::resolve_did), which is right for uncached resolvers.
    async fn resolve_did_fresh(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        self.resolve_did(did).await
    }
}

#[async_trait::async_trait]
impl<T: DidResolver + ?Sized> DidResolver for Arc<T> {
    async fn resolve_did(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        (**self).resolve_did(did).await
    }
    async fn resolve_did_fresh(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        (**self).resolve_did_fresh(did).await
    }
}

/// Why a `did:web` DID cannot be resolved (ID-DID-04).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidWebError {
    /// Path-based `did:web` (`did:web:example.com:user`) is not supported in atproto.
    #[error("path-based did:web is not supported")]
    PathBased,
    /// A percent sign other than the `%3A` port separator.
    #[error("did:web may only percent-encode the port separator (%3A)")]
    InvalidPercentEncoding,
    /// The host is not a valid DNS name.
    #[error("did:web host is not a valid hostname: {0}")]
    InvalidHost(#[source] HandleSyntaxError),
    /// The host's TLD must not be resolved (same rules as handles).
    #[error("did:web host must not be resolved: {0}")]
    Unresolvable(#[source] UnresolvableHandle),
    /// A port on a host other than `localhost`.
    #[error("did:web ports are only allowed for localhost in development")]
    PortNotAllowed,
    /// `localhost` without the development switch.
    #[error("did:web:localhost is only allowed in development")]
    LocalhostNotAllowed,
    /// The port is not a number in 1–65535.
    #[error("did:web port is invalid")]
    InvalidPort,
}

/// Why resolving a DID failed. One variant per failed check.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DidResolveError {
    /// The DID method is not `plc` or `web` (ID-DID-02).
    #[error("DID method {method:?} is not supported (only did:plc and did:web)")]
    UnsupportedMethod {
        /// The DID.
        did: Did,
        /// Its method.
        method: String,
    },
    /// A `did:plc` whose identifier is not 24 base32 characters.
    #[error("{did} is not a valid did:plc identifier")]
    InvalidPlcIdentifier {
        /// The DID.
        did: Did,
    },
    /// A `did:web` that atproto does not resolve (ID-DID-04).
    #[error("{did} cannot be resolved: {reason}")]
    UnsupportedDidWeb {
        /// The DID.
        did: Did,
        /// What is wrong with it.
        #[source]
        reason: DidWebError,
    },
    /// The directory or host says the DID does not exist (404), or it was deactivated (410).
    #[error("{did} not found")]
    NotFound {
        /// The DID.
        did: Did,
    },
    /// Fetching the document failed (network, SSRF policy, status, media type, size, redirect).
    #[error("fetching the DID document for {did} failed: {source}")]
    Fetch {
        /// The DID.
        did: Did,
        /// The HTTP layer's error.
        #[source]
        source: HttpError,
    },
    /// The body is not a DID document (invalid JSON, wrong member types, invalid `id`).
    #[error("the DID document for {did} is malformed: {source}")]
    MalformedDocument {
        /// The DID.
        did: Did,
        /// The JSON error.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The document failed a check, e.g. its `id` is another DID (ID-DID-05).
    #[error("the DID document for {did} is invalid: {source}")]
    InvalidDocument {
        /// The DID.
        did: Did,
        /// The failed check.
        #[source]
        source: DocumentError,
    },
}

impl DidResolveError {
    /// Whether the DID definitively does not exist (as opposed to a failure to find out).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// The standard resolver: `did:plc` from a PLC directory, `did:web` from `/.well-known/did.json`.
///
/// ```
/// use atauth_identity::{AtprotoDidResolver, http::SafeHttpClient};
///
/// let http = SafeHttpClient::builder().build()?;
/// let resolver = AtprotoDidResolver::new(http)
///     .plc_directory(url::Url::parse("https://plc.directory")?);
/// # let _ = resolver;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AtprotoDidResolver {
    http: SafeHttpClient,
    plc_directory: Url,
    tld_policy: TldPolicy,
    allow_localhost_did_web: bool,
    max_document_bytes: usize,
}

impl AtprotoDidResolver {
    /// A resolver using `https://plc.directory`, production TLD policy, no `did:web:localhost`.
    pub fn new(http: SafeHttpClient) -> Self {
        Self {
            http,
            plc_directory: Url::parse(DEFAULT_PLC_DIRECTORY).expect("the default PLC URL is valid"),
            tld_policy: TldPolicy::production(),
            allow_localhost_did_web: false,
            max_document_bytes: DEFAULT_MAX_DID_DOCUMENT_BYTES,
        }
    }

    /// The PLC directory base URL (ID-DID-03). A path, if any, is kept: `<base>/<did>`.
    #[must_use]
    pub fn plc_directory(mut self, url: Url) -> Self {
        self.plc_directory = url;
        self
    }

    /// Which `did:web` host TLDs may be resolved (ID-DID-04; same rules as handles).
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }

    /// **Development only.** Resolve `did:web:localhost%3A<port>` from
    /// `http://localhost:<port>/.well-known/did.json` (ID-DID-04). The HTTP client must also allow
    /// loopback ([`crate::http::SafeHttpClientBuilder::allow_http_loopback`]).
    #[must_use]
    pub fn allow_localhost_did_web(mut self, allow: bool) -> Self {
        self.allow_localhost_did_web = allow;
        self
    }

    /// Cap on the document size. Default 64 KiB.
    #[must_use]
    pub fn max_document_bytes(mut self, limit: usize) -> Self {
        self.max_document_bytes = limit;
        self
    }

    /// The document URL for `did`, or why it cannot be resolved. No network access.
    pub fn document_url(&self, did: &Did) -> Result<Url, DidResolveError> {
        match did.method() {
            "plc" => self.plc_url(did),
            "web" => did_web_url(did, self.tld_policy, self.allow_localhost_did_web)
                .map_err(|reason| DidResolveError::UnsupportedDidWeb { did: did.clone(), reason }),
            other => Err(DidResolveError::UnsupportedMethod { did: did.clone(), method: other.to_owned() }),
        }
    }

    fn plc_url(&self, did: &Did) -> Result<Url, DidResolveError> {
        let id = did.identifier();
        let valid = id.len() == 24 && id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'));
        if !valid {
            return Err(DidResolveError::InvalidPlcIdentifier { did: did.clone() });
        }
        let mut url = self.plc_directory.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| DidResolveError::InvalidPlcIdentifier { did: did.clone() })?;
            segments.pop_if_empty().push(did.as_str());
        }
        Ok(url)
    }

    async fn fetch(&self, did: &Did, url: Url) -> Result<DidDocument, DidResolveError> {
        let fetch_err = |source| DidResolveError::Fetch { did: did.clone(), source };
        let request = HttpRequest::get(url)
            .header(header::ACCEPT, HeaderValue::from_static("application/did+ld+json, application/json"))
            .max_response_bytes(self.max_document_bytes);
        let response = self.http.send(request).await.map_err(fetch_err)?;
        match response.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(DidResolveError::NotFound { did: did.clone() });
            }
            status => return Err(fetch_err(HttpError::UnexpectedStatus { status })),
        }
        let response = response.require_media_type(&DID_DOCUMENT_MEDIA_TYPES).map_err(fetch_err)?;
        let doc: DidDocument = serde_json::from_slice(&response.body)
            .map_err(|e| DidResolveError::MalformedDocument { did: did.clone(), source: Arc::new(e) })?;
        // ID-DID-05: the document must describe the DID we asked for.
        doc.check_id(did).map_err(|source| DidResolveError::InvalidDocument { did: did.clone(), source })?;
        Ok(doc)
    }
}

#[async_trait::async_trait]
impl DidResolver for AtprotoDidResolver {
    async fn resolve_did(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        let url = self.document_url(did)?;
        self.fetch(did, url).await
    }
}

/// Builds the `did:web` document URL (ID-DID-04): hostname-level only, the same TLD rules as handles,
/// a port only for `localhost` in development.
fn did_web_url(did: &Did, policy: TldPolicy, allow_localhost: bool) -> Result<Url, DidWebError> {
    let id = did.identifier();
    if id.contains(':') {
        return Err(DidWebError::PathBased);
    }
    let (host, port) = match id.find("%3A").or_else(|| id.find("%3a")) {
        Some(i) => (&id[..i], Some(&id[i + 3..])),
        None => (id, None),
    };
    if host.contains('%') || port.is_some_and(|p| p.contains('%')) {
        return Err(DidWebError::InvalidPercentEncoding);
    }
    let host = host.to_ascii_lowercase();
    let url = if host == "localhost" {
        if !allow_localhost {
            return Err(DidWebError::LocalhostNotAllowed);
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(DidWebError::InvalidPort),
            },
        };
        match port {
            Some(p) => format!("http://localhost:{p}/.well-known/did.json"),
            None => "http://localhost/.well-known/did.json".to_owned(),
        }
    } else {
        if port.is_some() {
            return Err(DidWebError::PortNotAllowed);
        }
        validate_dns_name(&host).map_err(DidWebError::InvalidHost)?;
        policy.check_name(&host).map_err(DidWebError::Unresolvable)?;
        format!("https://{host}/.well-known/did.json")
    };
    Url::parse(&url).map_err(|_| DidWebError::InvalidPort)
}

/// An in-memory [`DidResolver`] for tests and fixtures: returns the documents it was given and
/// [`DidResolveError::NotFound`] for everything else.
#[derive(Debug, Clone, Default)]
pub struct MemoryDidResolver {
    docs: HashMap<Did, DidDocument>,
}

impl MemoryDidResolver {
    /// An empty resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a document under its own `id`.
    #[must_use]
    pub fn with(mut self, doc: DidDocument) -> Self {
        self.docs.insert(doc.id.clone(), doc);
        self
    }
}

#[async_trait::async_trait]
impl DidResolver for MemoryDidResolver {
    async fn resolve_did(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        let doc =
            self.docs.get(did).cloned().ok_or_else(|| DidResolveError::NotFound { did: did.clone() })?;
        doc.check_id(did).map_err(|source| DidResolveError::InvalidDocument { did: did.clone(), source })?;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did(s: &str) -> Did {
        Did::new(s).expect("valid DID")
    }

    fn resolver() -> AtprotoDidResolver {
        AtprotoDidResolver::new(SafeHttpClient::builder().build().expect("client"))
    }

    #[test]
    fn plc_url_is_directory_plus_did() {
        let url = resolver().document_url(&did("did:plc:ewvi7nxzyoun6zhxrhs64oiz")).expect("url");
        assert_eq!(url.as_str(), "https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz");
        let r = resolver().plc_directory(Url::parse("http://127.0.0.1:2582/").expect("url"));
        let url = r.document_url(&did("did:plc:ewvi7nxzyoun6zhxrhs64oiz")).expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1:2582/did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    }

    #[test]
    fn plc_identifier_must_be_24_base32_chars() {
        for bad in ["did:plc:abc", "did:plc:ewvi7nxzyoun6zhxrhs64oi1", "did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ"] {
            assert!(
                matches!(
                    resolver().document_url(&did(bad)),
                    Err(DidResolveError::InvalidPlcIdentifier { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsupported_methods_are_distinguished() {
        // ID-DID-02
        let err = resolver()
            .document_url(&did("did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N"))
            .expect_err("did:key is not resolvable");
        assert!(matches!(err, DidResolveError::UnsupportedMethod { method, .. } if method == "key"));
    }

    #[test]
    fn did_web_is_hostname_level_only() {
        // ID-DID-04
        let r = resolver();
        assert_eq!(
            r.document_url(&did("did:web:Example.COM")).expect("url").as_str(),
            "https://example.com/.well-known/did.json"
        );
        let cases = [
            ("did:web:example.com:u:alice", DidWebError::PathBased),
            ("did:web:example.com%3A8443", DidWebError::PortNotAllowed),
            ("did:web:localhost%3A1234", DidWebError::LocalhostNotAllowed),
            ("did:web:localhost", DidWebError::LocalhostNotAllowed),
            ("did:web:ex%41mple.com", DidWebError::InvalidPercentEncoding),
            (
                "did:web:laptop.local",
                DidWebError::Unresolvable(UnresolvableHandle::DisallowedTld { tld: "local".to_owned() }),
            ),
            ("did:web:alice.test", DidWebError::Unresolvable(UnresolvableHandle::TestTldNotAllowed)),
            ("did:web:single", DidWebError::InvalidHost(HandleSyntaxError::TooFewLabels)),
        ];
        for (input, want) in cases {
            match r.document_url(&did(input)) {
                Err(DidResolveError::UnsupportedDidWeb { reason, .. }) => {
                    assert_eq!(reason, want, "{input}");
                }
                other => panic!("{input}: expected UnsupportedDidWeb, got {other:?}"),
            }
        }
        let dev = resolver().allow_localhost_did_web(true);
        assert_eq!(
            dev.document_url(&did("did:web:localhost%3A1234")).expect("url").as_str(),
            "http://localhost:1234/.well-known/did.json"
        );
        assert!(matches!(
            dev.document_url(&did("did:web:localhost%3A99999")),
            Err(DidResolveError::UnsupportedDidWeb { reason: DidWebError::InvalidPort, .. })
        ));
    }
}
