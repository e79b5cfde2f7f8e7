//! `IdentityResolver`: the bidirectional handle check (ID-HANDLE-07) and error kinds, over the full
//! standard stack (XRPC handle resolver + PLC directory, both wiremock on loopback) and over fakes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use atauth_identity::http::SafeHttpClient;
use atauth_identity::{
    AtIdentifier, CacheConfig, CachedDidResolver, Did, DidDocument, DidResolveError, DidResolver,
    DocumentError, Handle, IdentityError, IdentityErrorKind, IdentityResolver, MemoryHandleResolver,
    TldPolicy,
};
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ALICE: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const BOB: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const K256_MULTIKEY: &str = "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF";

fn did(s: &str) -> Did {
    Did::new(s).expect("valid DID")
}

fn handle(s: &str) -> Handle {
    Handle::new(s).expect("valid handle")
}

fn doc_json(id: &str, aka: &[&str], pds: &str) -> Value {
    json!({
        "id": id,
        "alsoKnownAs": aka.iter().map(|h| format!("at://{h}")).collect::<Vec<_>>(),
        "verificationMethod": [{
            "id": format!("{id}#atproto"), "type": "Multikey", "controller": id,
            "publicKeyMultibase": K256_MULTIKEY
        }],
        "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds }]
    })
}

/// One wiremock server playing both the PLC directory and the PDS's `resolveHandle`.
struct Net {
    server: MockServer,
}

impl Net {
    async fn start() -> Self {
        Self { server: MockServer::start().await }
    }

    async fn plc(&self, did: &str, doc: Value) {
        Mock::given(method("GET"))
            .and(path(format!("/{did}")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(doc.to_string(), "application/did+ld+json"))
            .mount(&self.server)
            .await;
    }

    async fn handle(&self, handle: &str, did: &str) {
        Mock::given(method("GET"))
            .and(path("/xrpc/com.atproto.identity.resolveHandle"))
            .and(query_param("handle", handle))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "did": did })))
            .mount(&self.server)
            .await;
    }

    fn resolver(&self) -> IdentityResolver {
        let base = Url::parse(&self.server.uri()).expect("url");
        let http = SafeHttpClient::builder()
            .allow_http_loopback(true)
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        IdentityResolver::builder(http)
            .plc_directory(base.clone())
            .xrpc_handle_resolver(base)
            .tld_policy(TldPolicy::development())
            .build()
            .expect("resolver")
    }
}

#[tokio::test]
async fn handle_input_is_verified_both_ways() {
    // ID-HANDLE-07
    let net = Net::start().await;
    net.handle("alice.test", ALICE).await;
    net.plc(ALICE, doc_json(ALICE, &["alice.test"], "http://localhost:2583")).await;
    let id = net.resolver().resolve_input("@Alice.Test").await.expect("identity");
    assert_eq!(id.did, did(ALICE));
    assert_eq!(id.handle, Some(handle("alice.test")));
    assert_eq!(id.pds_endpoint.as_str(), "http://localhost:2583/");
    assert_eq!(id.signing_key.to_did_key(), format!("did:key:{K256_MULTIKEY}"));
    assert_eq!(id.doc.id, did(ALICE));
}

#[tokio::test]
async fn handle_not_claimed_by_its_did_document_fails() {
    // ID-HANDLE-07: alice.test points at BOB, whose document claims bob.test.
    let net = Net::start().await;
    net.handle("alice.test", BOB).await;
    net.plc(BOB, doc_json(BOB, &["bob.test"], "https://pds.example.net")).await;
    let err = net.resolver().resolve_input("alice.test").await.expect_err("mismatch");
    assert_eq!(err.kind(), IdentityErrorKind::HandleMismatch);
    match err {
        IdentityError::HandleMismatch { handle: h, did: d, claimed } => {
            assert_eq!((h, d, claimed), (handle("alice.test"), did(BOB), Some(handle("bob.test"))));
        }
        other => panic!("expected HandleMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn did_input_reports_only_a_verified_handle() {
    // ID-HANDLE-07 from a DID: claimed handle must resolve back to the DID.
    let net = Net::start().await;
    net.plc(ALICE, doc_json(ALICE, &["alice.test"], "https://pds.example.net")).await;
    net.plc(BOB, doc_json(BOB, &["alice.test"], "https://pds.example.net")).await;
    net.handle("alice.test", ALICE).await;
    let r = net.resolver();

    let a = r.resolve(&AtIdentifier::Did(did(ALICE))).await.expect("alice");
    assert_eq!(a.handle, Some(handle("alice.test")));

    // BOB claims alice.test, but alice.test resolves to ALICE: BOB has no verified handle.
    let b = r.resolve_did(&did(BOB)).await.expect("bob resolves, without handle");
    assert_eq!(b.did, did(BOB));
    assert_eq!(b.handle, None);
}

#[tokio::test]
async fn did_whose_claimed_handle_does_not_resolve_has_no_handle() {
    let net = Net::start().await;
    net.plc(ALICE, doc_json(ALICE, &["ghost.test"], "https://pds.example.net")).await;
    let id = net.resolver().resolve_did(&did(ALICE)).await.expect("identity");
    assert_eq!(id.handle, None);
    // `handle.invalid` is never resolved (ID-HANDLE-03).
    let net = Net::start().await;
    net.plc(ALICE, doc_json(ALICE, &["handle.invalid"], "https://pds.example.net")).await;
    let id = net.resolver().resolve_did(&did(ALICE)).await.expect("identity");
    assert_eq!(id.handle, None);
    assert!(
        net.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .all(|r| !r.url.path().starts_with("/xrpc"))
    );
}

#[tokio::test]
async fn document_without_pds_or_key_is_document_invalid() {
    // ID-DID-06 / ID-DID-07
    let net = Net::start().await;
    let mut no_pds = doc_json(ALICE, &[], "https://pds.example.net");
    no_pds["service"] = json!([]);
    net.plc(ALICE, no_pds).await;
    let mut no_key = doc_json(BOB, &[], "https://pds.example.net");
    no_key["verificationMethod"] = json!([]);
    net.plc(BOB, no_key).await;
    let r = net.resolver();
    let err = r.resolve_did(&did(ALICE)).await.expect_err("no PDS");
    assert_eq!(err.kind(), IdentityErrorKind::DocumentInvalid);
    assert!(matches!(err, IdentityError::Document { source: DocumentError::NoPdsEndpoint, .. }));
    let err = r.resolve_did(&did(BOB)).await.expect_err("no key");
    assert!(matches!(err, IdentityError::Document { source: DocumentError::NoSigningKey, .. }));
}

#[tokio::test]
async fn error_kinds_distinguish_the_failure() {
    // ID-DID-02: invalid syntax vs unsupported method vs not found vs resolution failed.
    let net = Net::start().await;
    Mock::given(method("GET"))
        .and(path("/xrpc/com.atproto.identity.resolveHandle"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": "InvalidRequest" })))
        .mount(&net.server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/{BOB}")))
        .respond_with(ResponseTemplate::new(502))
        .mount(&net.server)
        .await;
    let r = net.resolver();
    let kind = |input: &'static str| {
        let r = r.clone();
        async move { r.resolve_input(input).await.expect_err(input).kind() }
    };
    assert_eq!(kind("not a handle").await, IdentityErrorKind::InvalidSyntax);
    assert_eq!(kind("did:PLC:x").await, IdentityErrorKind::InvalidSyntax);
    assert_eq!(kind("did:plc:tooshort").await, IdentityErrorKind::InvalidSyntax);
    assert_eq!(kind("laptop.local").await, IdentityErrorKind::Unsupported);
    assert_eq!(
        kind("did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N").await,
        IdentityErrorKind::Unsupported
    );
    assert_eq!(kind("did:web:example.com:path").await, IdentityErrorKind::Unsupported);
    assert_eq!(kind("nobody.test").await, IdentityErrorKind::NotFound);
    assert_eq!(kind(ALICE).await, IdentityErrorKind::NotFound);
    assert_eq!(kind(BOB).await, IdentityErrorKind::ResolutionFailed);
}

#[tokio::test]
async fn test_tld_needs_the_development_policy() {
    // ID-HANDLE-03: the same stack with the production policy refuses `.test` before any request.
    let net = Net::start().await;
    net.handle("alice.test", ALICE).await;
    let base = Url::parse(&net.server.uri()).expect("url");
    let http = SafeHttpClient::builder().allow_http_loopback(true).build().expect("client");
    let prod = IdentityResolver::builder(http)
        .plc_directory(base.clone())
        .xrpc_handle_resolver(base)
        .build()
        .expect("resolver");
    let err = prod.resolve_input("alice.test").await.expect_err("refused");
    assert_eq!(err.kind(), IdentityErrorKind::Unsupported);
    assert!(net.server.received_requests().await.unwrap_or_default().is_empty());
}

/// A DID resolver whose document can be swapped, to simulate a handle change.
#[derive(Clone)]
struct Mutable {
    doc: Arc<Mutex<DidDocument>>,
}

#[async_trait::async_trait]
impl DidResolver for Mutable {
    async fn resolve_did(&self, d: &Did) -> Result<DidDocument, DidResolveError> {
        let doc = self.doc.lock().expect("lock").clone();
        if &doc.id == d { Ok(doc) } else { Err(DidResolveError::NotFound { did: d.clone() }) }
    }
}

#[tokio::test]
async fn stale_cached_document_is_re_resolved_once_on_mismatch() {
    // ID-HANDLE-07 + ID-HANDLE-08: the account renamed alice.test → alice2.test within the cache TTL.
    let old: DidDocument =
        serde_json::from_value(doc_json(ALICE, &["alice.test"], "https://pds.example.net")).expect("doc");
    let new: DidDocument =
        serde_json::from_value(doc_json(ALICE, &["alice2.test"], "https://pds.example.net")).expect("doc");
    let source = Mutable { doc: Arc::new(Mutex::new(old)) };
    let dids = Arc::new(CachedDidResolver::new(source.clone(), CacheConfig::default()));
    let handles = Arc::new(
        MemoryHandleResolver::new()
            .with(handle("alice.test"), did(ALICE))
            .with(handle("alice2.test"), did(ALICE)),
    );
    let r = IdentityResolver::new(handles, dids).tld_policy(TldPolicy::development());
    assert_eq!(r.resolve_input("alice.test").await.expect("old").handle, Some(handle("alice.test")));

    *source.doc.lock().expect("lock") = new;
    let id = r.resolve_input("alice2.test").await.expect("fresh retry sees the new document");
    assert_eq!(id.handle, Some(handle("alice2.test")));
    // The cache now holds the new document, so the old handle no longer verifies.
    let err = r.resolve_input("alice.test").await.expect_err("old handle");
    assert_eq!(err.kind(), IdentityErrorKind::HandleMismatch);
}

#[tokio::test]
async fn default_builder_uses_the_system_dns_configuration() {
    // No XRPC resolver: DNS TXT (hickory, system configuration) + HTTPS well-known. Building must not
    // touch the network; refusing `.local` proves the policy is wired in.
    let http = SafeHttpClient::builder().build().expect("client");
    let r = IdentityResolver::builder(http).build().expect("system DNS configuration");
    let err = r.resolve_input("laptop.local").await.expect_err("refused");
    assert_eq!(err.kind(), IdentityErrorKind::Unsupported);
}
