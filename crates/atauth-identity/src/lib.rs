//! atproto identity for the atauth stack: identifier syntax, handle and DID resolution, the
//! bidirectional handle check, TTL caches, and the SSRF-hardened HTTP client every outbound fetch in
//! the project goes through.
//!
//! Implements checklist §2.1 (ID-HANDLE-01 … 08, ID-DID-01 … 08) and the hardened-fetch rules
//! CL-DISC-07 / AS-CMD-01 ([`http`]).
//!
//! # Example
//!
//! Parse what a user typed, resolve it, and get a verified identity. Here the resolvers are in-memory
//! fakes; in production build the stack with [`IdentityResolver::builder`].
//!
//! ```
//! use std::sync::Arc;
//! use atauth_identity::{
//!     AtIdentifier, Did, DidDocument, Handle, IdentityErrorKind, IdentityResolver,
//!     MemoryDidResolver, MemoryHandleResolver,
//! };
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(f)
//! # }
//! # block_on(async {
//! let did = Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz")?;
//! let doc: DidDocument = serde_json::from_str(&format!(r##"{{
//!     "id": "{did}",
//!     "alsoKnownAs": ["at://alice.example.com"],
//!     "verificationMethod": [{{ "id": "{did}#atproto", "type": "Multikey", "controller": "{did}",
//!         "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF" }}],
//!     "service": [{{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
//!         "serviceEndpoint": "https://pds.example.net" }}]
//! }}"##))?;
//! let resolver = IdentityResolver::new(
//!     Arc::new(MemoryHandleResolver::new().with(Handle::new("alice.example.com")?, did.clone())),
//!     Arc::new(MemoryDidResolver::new().with(doc)),
//! );
//!
//! // Handles are case-insensitive and `@` is UI-only (ID-HANDLE-02).
//! let input = AtIdentifier::parse_user_input(" @Alice.Example.COM ")?;
//! let identity = resolver.resolve(&input).await?;
//! assert_eq!(identity.did, did);
//! assert_eq!(identity.handle, Some(Handle::new("alice.example.com")?)); // verified both ways
//! assert_eq!(identity.pds_endpoint.as_str(), "https://pds.example.net/");
//! assert!(identity.signing_key.to_did_key().starts_with("did:key:zQ3sh"));
//!
//! // `.local` handles are syntactically valid but never resolved (ID-HANDLE-03).
//! let err = resolver.resolve_input("laptop.local").await.expect_err("refused");
//! assert_eq!(err.kind(), IdentityErrorKind::Unsupported);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - [`syntax`]: [`Did`], [`Handle`], [`Nsid`], [`AtIdentifier`] (ID-HANDLE-01/02/03, ID-DID-01), re-exported
//!   from the atauth-syntax crate.
//! - [`http`]: [`SafeHttpClient`], the one outbound HTTP layer (CL-DISC-07).
//! - [`handle`]: [`HandleResolver`] with DNS TXT, HTTPS well-known, both in parallel, and XRPC
//!   (ID-HANDLE-04/05/06, ID-DID-08).
//! - [`did`]: [`DidResolver`] for `did:plc` and `did:web`, and [`DidDocument`] with the PDS endpoint,
//!   handle claim and signing key reads (ID-DID-02 … 07).
//! - [`cache`]: TTL caches with a fresh-resolution bypass (ID-HANDLE-08).
//! - [`lexicon`]: Lexicon resolution by NSID for permission sets: `_lexicon` DNS, the authority's PDS,
//!   pinned files and a cache with the SCOPE-11 lifetimes (SCOPE-10/11).
//! - [`IdentityResolver`]: the bidirectional check (ID-HANDLE-07) and [`ResolvedIdentity`].

pub mod cache;
pub mod did;
pub mod handle;
pub mod http;
mod identity;
pub mod lexicon;

/// Identifier syntax ([`Did`], [`Handle`], [`Nsid`], [`AtIdentifier`], [`TldPolicy`]): the dependency-free
/// atauth-syntax crate, re-exported here so `atauth_identity::syntax::…` and the root paths keep working.
pub use atauth_syntax as syntax;

pub use cache::{CacheConfig, CachedDidResolver, CachedHandleResolver, CachedResolver};
pub use did::{
    AtprotoDidResolver, DidDocument, DidResolveError, DidResolver, DocumentError, MemoryDidResolver,
};
pub use handle::{
    AtprotoHandleResolver, DnsHandleResolver, HandleResolveError, HandleResolver, HickoryTxtLookup,
    MemoryHandleResolver, TxtLookup, TxtLookupError, WellKnownHandleResolver, XrpcHandleResolver,
};
pub use http::{HttpError, SafeHttpClient};
pub use identity::{
    IdentityBuildError, IdentityError, IdentityErrorKind, IdentityResolver, IdentityResolverBuilder,
    ResolvedIdentity,
};
pub use syntax::{
    AtIdentifier, AtIdentifierError, Did, DidSyntaxError, Handle, HandleSyntaxError, Nsid, NsidSyntaxError,
    TldPolicy, UnresolvableHandle,
};
