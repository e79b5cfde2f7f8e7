//! Lexicon resolution by NSID, for permission sets (`include:<nsid>` scopes).
//!
//! Implements the network and caching side of checklist SCOPE-10 and SCOPE-11 (atproto Lexicon spec
//! §Lexicon Publication and Resolution; permission spec §Resolution and Caching). What a resolved
//! document *means* (is it a `permission-set`, which permissions count) is not decided here: every
//! resolver returns the Lexicon document as raw JSON ([`ResolvedLexicon::document`]) for the permission
//! model in atauth-oauth to validate.
//!
//! - [`AtprotoLexiconResolver`]: the network path. NSID → authority domain (the NSID without its name
//!   segment, reversed) → DNS TXT `_lexicon.<domain>` = `did=<DID>` (exactly that name: no walking up
//!   or down the DNS tree) → the DID document → its `#atproto_pds` endpoint →
//!   `GET /xrpc/com.atproto.repo.getRecord?repo=<DID>&collection=com.atproto.lexicon.schema&rkey=<NSID>`
//!   through [`SafeHttpClient`](crate::http::SafeHttpClient) (SSRF policy, no redirects, timeouts, a
//!   [`DEFAULT_MAX_LEXICON_BYTES`] body cap enforced while streaming).
//! - [`LexiconDir`]: Lexicon documents pinned by the operator in a directory (`atauth serve
//!   --lexicon-dir DIR`), consulted before any cache or network.
//! - [`CachedLexiconResolver`]: local directory, then a [`LexiconCache`] with the SCOPE-11 lifetimes
//!   ([`LexiconCachePolicy`]), then the network; a stale entry is served when a refresh fails.
//!   [`MemoryLexiconCache`] is the in-process backend; persistent backends implement the same trait.
//!   [`LayeredLexiconCache`] keeps a memory copy in front of a persistent one.
//! - [`DevOnlyTxtOverride`]: fixed TXT answers for `--dev` servers and tests (never in production).
//!
//! Every failure is a [`LexiconResolveError`] variant whose `Display` text is written to be shown to an
//! app developer as an OAuth `invalid_scope` `error_description`
//! ([`LexiconResolveError::oauth_error_description`] makes it safe for that field).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use atauth_identity::http::SafeHttpClient;
//! use atauth_identity::lexicon::{
//!     AtprotoLexiconResolver, CachedLexiconResolver, LexiconCachePolicy, LexiconDir, LexiconResolver,
//!     MemoryLexiconCache,
//! };
//! use atauth_identity::{AtprotoDidResolver, HickoryTxtLookup, Nsid};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let http = SafeHttpClient::builder().build()?;
//! let network = AtprotoLexiconResolver::new(
//!     Arc::new(HickoryTxtLookup::from_system_conf()?),
//!     Arc::new(AtprotoDidResolver::new(http.clone())),
//!     http,
//! );
//! let resolver = CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), LexiconCachePolicy::default())
//!     .local_dir(LexiconDir::load("/etc/atauth/lexicons")?)
//!     .network(Arc::new(network));
//! let set = resolver.resolve_lexicon(&Nsid::new("app.example.authFull")?).await?;
//! assert_eq!(set.document["id"], "app.example.authFull");
//! # Ok(()) }
//! ```

mod cache;
mod dev;
mod dir;
mod resolve;

use std::path::PathBuf;
use std::sync::Arc;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::did::{DidResolveError, DocumentError};
use crate::handle::TxtLookupError;
use crate::http::HttpError;
use crate::syntax::{Did, HandleSyntaxError, Nsid, UnresolvableHandle};

pub use cache::{
    CachedLexicon, CachedLexiconResolver, DEFAULT_LEXICON_CACHE_CAPACITY, DEFAULT_LEXICON_MAX_AGE,
    DEFAULT_LEXICON_RETRY_AFTER_FAILURE, DEFAULT_LEXICON_STALE_AFTER, LayeredLexiconCache, LexiconCache,
    LexiconCacheError, LexiconCachePolicy, LexiconCachePolicyError, MAX_LEXICON_STALE_AFTER,
    MemoryLexiconCache,
};
pub use dev::DevOnlyTxtOverride;
pub use dir::{LexiconDir, LexiconDirError};
pub use resolve::{
    AtprotoLexiconResolver, DEFAULT_LEXICON_DNS_TIMEOUT, DEFAULT_LEXICON_FETCH_TIMEOUT,
    DEFAULT_LEXICON_TIMEOUT, DEFAULT_MAX_LEXICON_BYTES,
};

/// The record collection Lexicon schemas are published in (Lexicon spec §Lexicon Publication).
pub const LEXICON_SCHEMA_COLLECTION: &str = "com.atproto.lexicon.schema";

/// The DNS label prefixed to the authority domain (`_lexicon.<domain>`).
pub const LEXICON_DNS_PREFIX: &str = "_lexicon";

/// The only Lexicon language version there is (`"lexicon": 1`).
pub const LEXICON_VERSION: u64 = 1;

/// The authority domain of `nsid`: the NSID without its name segment, reversed and lowercased
/// (`app.example.feed.authPost` → `feed.example.app`). SCOPE-10.
pub fn lexicon_authority_domain(nsid: &Nsid) -> String {
    let mut labels: Vec<&str> = nsid.authority().split('.').collect();
    labels.reverse();
    labels.join(".").to_ascii_lowercase()
}

/// The one DNS name whose TXT records name the authority's DID: `_lexicon.<authority domain>`.
/// Resolution never tries any other name (SCOPE-10: no recursive DNS walking).
pub fn lexicon_dns_name(nsid: &Nsid) -> String {
    format!("{LEXICON_DNS_PREFIX}.{}", lexicon_authority_domain(nsid))
}

/// Resolves a Lexicon document by NSID. Object-safe.
#[async_trait::async_trait]
pub trait LexiconResolver: Send + Sync + 'static {
    /// The Lexicon document for `nsid`, for a new authorization request (SCOPE-11: a cached value
    /// older than the cache's maximum age is not used).
    async fn resolve_lexicon(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconResolveError>;

    /// The Lexicon document for `nsid` when recomputing an existing session's permissions (token
    /// refresh). SCOPE-11: existing sessions are not affected by a cached set's expiry, so a cache
    /// serves its stale value past the maximum age when a refresh fails. The default calls
    /// [`resolve_lexicon`](Self::resolve_lexicon), which is right for uncached resolvers.
    async fn resolve_lexicon_for_existing_session(
        &self,
        nsid: &Nsid,
    ) -> Result<ResolvedLexicon, LexiconResolveError> {
        self.resolve_lexicon(nsid).await
    }
}

#[async_trait::async_trait]
impl<T: LexiconResolver + ?Sized> LexiconResolver for Arc<T> {
    async fn resolve_lexicon(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconResolveError> {
        (**self).resolve_lexicon(nsid).await
    }
    async fn resolve_lexicon_for_existing_session(
        &self,
        nsid: &Nsid,
    ) -> Result<ResolvedLexicon, LexiconResolveError> {
        (**self).resolve_lexicon_for_existing_session(nsid).await
    }
}

/// A Lexicon document found for an NSID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedLexicon {
    /// The NSID asked for; the document's `id` equals it.
    pub nsid: Nsid,
    /// The Lexicon document, unmodified: the record `value` for network results (with `$type`
    /// `com.atproto.lexicon.schema`), the file's JSON object for pinned files. Always a JSON object
    /// with `"lexicon": 1` and `"id"` = [`nsid`](Self::nsid); everything else is for the caller to
    /// validate. Shared, so that handing a cached document out costs a reference count, and so that
    /// a caller can tell by pointer ([`Arc::ptr_eq`]) that it is the same document it already checked.
    pub document: Arc<serde_json::Value>,
    /// Where it came from.
    pub origin: LexiconOrigin,
}

/// Where a [`ResolvedLexicon`] came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LexiconOrigin {
    /// Published in an atproto repository and fetched from its PDS.
    Network {
        /// The repository (the authority's DID from `_lexicon` DNS).
        did: Did,
        /// The record's `at://` URI.
        uri: String,
        /// The record's CID, as the PDS reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cid: Option<String>,
        /// The PDS the record was fetched from (its origin URL, e.g. `https://pds.example.com/`).
        pds: String,
    },
    /// Pinned by the operator in a [`LexiconDir`].
    LocalFile {
        /// The file.
        path: PathBuf,
    },
}

/// Why a Lexicon could not be resolved. One variant per failed check.
///
/// The `Display` text names the NSID and the failed step in words an app developer can act on; it is
/// meant as the `error_description` of an OAuth `invalid_scope` error (pass it through
/// [`oauth_error_description`](Self::oauth_error_description)). Internal details (transport errors)
/// stay in [`std::error::Error::source`] for logs.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LexiconResolveError {
    /// The NSID's authority, reversed, is not a valid DNS name (e.g. longer than 253 characters).
    #[error("permission set {nsid}: its authority {domain} is not a valid domain name")]
    InvalidAuthorityDomain {
        /// The NSID.
        nsid: Nsid,
        /// The authority domain.
        domain: String,
        /// Why it is not a DNS name.
        #[source]
        reason: HandleSyntaxError,
    },
    /// The authority domain's TLD is never resolved (`.local`, `.arpa`, `.test` outside development…).
    #[error("permission set {nsid}: its authority {domain} is not resolvable ({reason})")]
    UnresolvableAuthorityDomain {
        /// The NSID.
        nsid: Nsid,
        /// The authority domain.
        domain: String,
        /// The TLD rule it breaks.
        #[source]
        reason: UnresolvableHandle,
    },
    /// `_lexicon.<domain>` does not exist or has no `did=` TXT record.
    #[error("permission set {nsid} is not published: no TXT record did=<DID> at {name}")]
    NoAuthorityRecord {
        /// The NSID.
        nsid: Nsid,
        /// The DNS name queried.
        name: String,
    },
    /// A `did=` TXT value is not a valid DID.
    #[error("permission set {nsid}: the TXT record at {name} is malformed ({value} is not did=<DID>)")]
    MalformedAuthorityRecord {
        /// The NSID.
        nsid: Nsid,
        /// The DNS name queried.
        name: String,
        /// The TXT value (shortened to 100 characters).
        value: String,
    },
    /// `_lexicon.<domain>` names two different DIDs.
    #[error(
        "permission set {nsid}: the TXT records at {name} name two different DIDs ({first} and {second})"
    )]
    ConflictingAuthorityRecords {
        /// The NSID.
        nsid: Nsid,
        /// The DNS name queried.
        name: String,
        /// The first DID.
        first: Did,
        /// Another DID.
        second: Did,
    },
    /// The TXT lookup failed (timeout, SERVFAIL, network) rather than finding nothing.
    #[error("permission set {nsid}: the DNS lookup of {name} failed")]
    DnsLookupFailed {
        /// The NSID.
        nsid: Nsid,
        /// The DNS name queried.
        name: String,
        /// The resolver's error.
        #[source]
        source: TxtLookupError,
    },
    /// The authority's DID could not be resolved to a document.
    #[error("permission set {nsid}: its authority {did} could not be resolved ({source})")]
    DidResolutionFailed {
        /// The NSID.
        nsid: Nsid,
        /// The authority DID.
        did: Did,
        /// The DID resolver's error.
        source: DidResolveError,
    },
    /// The authority's DID document has no usable `#atproto_pds` endpoint.
    #[error("permission set {nsid}: the DID document of its authority {did} has no usable PDS ({source})")]
    NoPds {
        /// The NSID.
        nsid: Nsid,
        /// The authority DID.
        did: Did,
        /// The document check that failed.
        source: DocumentError,
    },
    /// The PDS address is refused by the outbound HTTP policy (private, loopback, link-local…
    /// addresses; non-https URLs). Checklist CL-DISC-07 applied to SCOPE-10.
    #[error(
        "permission set {nsid}: the PDS {pds} of its authority {did} is not an allowed destination ({source})"
    )]
    PdsAddressRefused {
        /// The NSID.
        nsid: Nsid,
        /// The authority DID.
        did: Did,
        /// The PDS endpoint (origin URL).
        pds: String,
        /// The policy refusal.
        source: HttpError,
    },
    /// The PDS could not be reached (DNS, connection, timeout).
    #[error("permission set {nsid}: the PDS {pds} of its authority {did} could not be reached")]
    PdsUnreachable {
        /// The NSID.
        nsid: Nsid,
        /// The authority DID.
        did: Did,
        /// The PDS endpoint (origin URL).
        pds: String,
        /// The transport error.
        #[source]
        source: HttpError,
    },
    /// The PDS answered `getRecord` with an error other than "record not found".
    #[error("permission set {nsid}: the PDS {pds} refused getRecord (HTTP {status}{})",
        error.as_deref().map(|e| format!(", {e}")).unwrap_or_default())]
    PdsRefused {
        /// The NSID.
        nsid: Nsid,
        /// The PDS endpoint (origin URL).
        pds: String,
        /// The HTTP status.
        status: StatusCode,
        /// The XRPC `error` name, if the body had one (shortened, ASCII letters and digits only).
        error: Option<String>,
    },
    /// The authority's repository has no `com.atproto.lexicon.schema` record for the NSID.
    #[error("permission set {nsid} is not published in the repository of its authority {did}")]
    NotFound {
        /// The NSID.
        nsid: Nsid,
        /// The authority DID.
        did: Did,
    },
    /// The record (response body) is larger than the cap; it was not read past the cap.
    #[error("permission set {nsid}: the record is larger than {limit} bytes")]
    TooLarge {
        /// The NSID.
        nsid: Nsid,
        /// The cap in bytes.
        limit: usize,
    },
    /// The `getRecord` answer is not a record: wrong content type, invalid JSON, missing `uri` or
    /// `value`, a redirect.
    #[error("permission set {nsid}: the PDS {pds} returned an invalid getRecord response ({reason})")]
    InvalidResponse {
        /// The NSID.
        nsid: Nsid,
        /// The PDS endpoint (origin URL).
        pds: String,
        /// What is wrong.
        reason: String,
    },
    /// The record's `uri` is not `at://<DID>/com.atproto.lexicon.schema/<NSID>`.
    #[error("permission set {nsid}: the PDS returned the record {found}, expected {expected}")]
    UriMismatch {
        /// The NSID.
        nsid: Nsid,
        /// The URI asked for.
        expected: String,
        /// The URI returned (shortened to 100 characters).
        found: String,
    },
    /// The record's `$type` is not `com.atproto.lexicon.schema`.
    #[error("permission set {nsid}: the record's $type is {found}, expected com.atproto.lexicon.schema")]
    WrongRecordType {
        /// The NSID.
        nsid: Nsid,
        /// The `$type` found (shortened; `(none)` if absent).
        found: String,
    },
    /// The document's `id` is not the NSID asked for.
    #[error("permission set {nsid}: the Lexicon document's id is {found}, expected {nsid}")]
    IdMismatch {
        /// The NSID.
        nsid: Nsid,
        /// The `id` found (shortened; `(none)` if absent).
        found: String,
    },
    /// The document is not a Lexicon document of version 1 (`"lexicon": 1`).
    #[error("permission set {nsid}: the document is not a version 1 Lexicon (lexicon is {found})")]
    UnsupportedLexiconVersion {
        /// The NSID.
        nsid: Nsid,
        /// The `lexicon` value found (shortened; `(none)` if absent).
        found: String,
    },
    /// The whole resolution (DNS, DID, record) took longer than the resolver's overall timeout.
    #[error("permission set {nsid}: resolution timed out")]
    Timeout {
        /// The NSID.
        nsid: Nsid,
    },
    /// The NSID is not pinned locally and this server does not resolve Lexicons over the network.
    #[error("permission set {nsid} is not known to this server (not pinned, and network resolution is off)")]
    NetworkDisabled {
        /// The NSID.
        nsid: Nsid,
    },
}

impl LexiconResolveError {
    /// The NSID that failed.
    pub fn nsid(&self) -> &Nsid {
        match self {
            Self::InvalidAuthorityDomain { nsid, .. }
            | Self::UnresolvableAuthorityDomain { nsid, .. }
            | Self::NoAuthorityRecord { nsid, .. }
            | Self::MalformedAuthorityRecord { nsid, .. }
            | Self::ConflictingAuthorityRecords { nsid, .. }
            | Self::DnsLookupFailed { nsid, .. }
            | Self::DidResolutionFailed { nsid, .. }
            | Self::NoPds { nsid, .. }
            | Self::PdsAddressRefused { nsid, .. }
            | Self::PdsUnreachable { nsid, .. }
            | Self::PdsRefused { nsid, .. }
            | Self::NotFound { nsid, .. }
            | Self::TooLarge { nsid, .. }
            | Self::InvalidResponse { nsid, .. }
            | Self::UriMismatch { nsid, .. }
            | Self::WrongRecordType { nsid, .. }
            | Self::IdMismatch { nsid, .. }
            | Self::UnsupportedLexiconVersion { nsid, .. }
            | Self::Timeout { nsid }
            | Self::NetworkDisabled { nsid } => nsid,
        }
    }

    /// Whether retrying later might succeed (DNS/network failures, timeouts, 5xx), as opposed to a
    /// definitive answer (not published, malformed, refused by policy).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::DnsLookupFailed { .. } | Self::PdsUnreachable { .. } | Self::Timeout { .. } => true,
            Self::DidResolutionFailed { source, .. } => {
                matches!(source, DidResolveError::Fetch { source, .. } if source.is_transient())
            }
            Self::PdsRefused { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    /// The `Display` text made safe for an OAuth `error_description` (RFC 6749 §5.2: printable ASCII
    /// without `"` and `\`): other characters become `?`, double quotes become single quotes, and the
    /// text is cut at 400 characters.
    pub fn oauth_error_description(&self) -> String {
        sanitize_description(&self.to_string())
    }
}

/// Printable ASCII except `"` and `\`, at most 400 characters.
pub(crate) fn sanitize_description(text: &str) -> String {
    const MAX: usize = 400;
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        out.replace_range(MAX - 3.., "...");
    }
    out
}

/// Shortens untrusted text (TXT values, fields of a fetched record) before it goes into an error.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 100;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX).collect();
        s.push_str("...");
        s
    }
}

/// Checks the members every Lexicon document must have, wherever it came from: a JSON object with
/// `"lexicon": 1` and `"id"` equal to `nsid`. SCOPE-10.
pub(crate) fn check_document(nsid: &Nsid, document: &serde_json::Value) -> Result<(), LexiconResolveError> {
    let found_id = match document.get("id") {
        Some(serde_json::Value::String(id)) => id.as_str(),
        Some(other) => {
            return Err(LexiconResolveError::IdMismatch {
                nsid: nsid.clone(),
                found: shorten(&other.to_string()),
            });
        }
        None => "(none)",
    };
    if found_id != nsid.as_str() {
        return Err(LexiconResolveError::IdMismatch { nsid: nsid.clone(), found: shorten(found_id) });
    }
    match document.get("lexicon") {
        Some(v) if v.as_u64() == Some(LEXICON_VERSION) => Ok(()),
        Some(v) => Err(LexiconResolveError::UnsupportedLexiconVersion {
            nsid: nsid.clone(),
            found: shorten(&v.to_string()),
        }),
        None => Err(LexiconResolveError::UnsupportedLexiconVersion {
            nsid: nsid.clone(),
            found: "(none)".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nsid(s: &str) -> Nsid {
        Nsid::new(s).expect("valid NSID")
    }

    #[test]
    fn authority_domain_drops_the_name_and_reverses() {
        // SCOPE-10, Lexicon spec §Lexicon Publication and Resolution examples.
        assert_eq!(lexicon_authority_domain(&nsid("app.toy.record")), "toy.app");
        assert_eq!(
            lexicon_dns_name(&nsid("edu.university.dept.lab.blogging.getBlogPost")),
            "_lexicon.blogging.lab.dept.university.edu"
        );
        // The name segment's case is irrelevant; the domain is lowercased.
        assert_eq!(lexicon_dns_name(&nsid("App.Example.Feed.authPost")), "_lexicon.feed.example.app");
    }

    #[test]
    fn descriptions_are_safe_for_oauth() {
        let text = "a \"quoted\" value with é and \\ and \n newline";
        assert_eq!(sanitize_description(text), "a 'quoted' value with ? and / and ? newline");
        let long = "x".repeat(1000);
        let cut = sanitize_description(&long);
        assert_eq!(cut.len(), 400);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn document_must_be_a_v1_lexicon_with_the_nsid_as_id() {
        let n = nsid("com.example.perms.authBasic");
        let ok = serde_json::json!({ "lexicon": 1, "id": "com.example.perms.authBasic", "defs": {} });
        assert!(check_document(&n, &ok).is_ok());
        let other = serde_json::json!({ "lexicon": 1, "id": "com.example.perms.authFull" });
        assert!(matches!(
            check_document(&n, &other),
            Err(LexiconResolveError::IdMismatch { found, .. }) if found == "com.example.perms.authFull"
        ));
        let no_id = serde_json::json!({ "lexicon": 1 });
        assert!(matches!(
            check_document(&n, &no_id),
            Err(LexiconResolveError::IdMismatch { found, .. }) if found == "(none)"
        ));
        let v2 = serde_json::json!({ "lexicon": 2, "id": "com.example.perms.authBasic" });
        assert!(matches!(
            check_document(&n, &v2),
            Err(LexiconResolveError::UnsupportedLexiconVersion { found, .. }) if found == "2"
        ));
        let missing = serde_json::json!({ "id": "com.example.perms.authBasic" });
        assert!(matches!(
            check_document(&n, &missing),
            Err(LexiconResolveError::UnsupportedLexiconVersion { found, .. }) if found == "(none)"
        ));
    }
}
