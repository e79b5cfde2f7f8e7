//! DID → document: `did:plc` against a wiremock PLC directory (ID-DID-03), `did:web` on localhost with
//! the development switch (ID-DID-04), document checks (ID-DID-05/06/07) and the handle claim
//! (ID-HANDLE-07 input).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atauth_crypto::{Algorithm, PublicKey};
use atauth_identity::did::{DidWebError, DocumentError, KeyEncoding};
use atauth_identity::http::{HttpError, SafeHttpClient};
use atauth_identity::{
    AtprotoDidResolver, CacheConfig, CachedDidResolver, Did, DidDocument, DidResolveError, DidResolver,
    Handle,
};
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const OTHER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
/// Checklist §4.4: the same K-256 key as Multikey and as legacy multibase.
const K256_MULTIKEY: &str = "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF";
const K256_LEGACY: &str =
    "zQYEBzXeuTM9UR3rfvNag6L3RNAs5pQZyYPsomTsgQhsxLdEgCrPTLgFna8yqCnxPpNT7DBk6Ym3dgPKNu86vt9GR";
/// Checklist §4.4 / atproto `crypto/signature-fixtures.json`: a P-256 `did:key`.
const P256_DID_KEY: &str = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";

fn did(s: &str) -> Did {
    Did::new(s).expect("valid DID")
}

/// A well-formed atproto DID document for `id`.
fn doc_json(id: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": id,
        "alsoKnownAs": ["at://alice.example.com"],
        "verificationMethod": [{
            "id": format!("{id}#atproto"),
            "type": "Multikey",
            "controller": id,
            "publicKeyMultibase": K256_MULTIKEY
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://pds.example.net"
        }]
    })
}

fn doc(v: Value) -> DidDocument {
    serde_json::from_value(v).expect("deserialisable document")
}

fn dev_http() -> SafeHttpClient {
    SafeHttpClient::builder()
        .allow_http_loopback(true)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

async fn plc_server(did_path: &str, template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(format!("/{did_path}"))).respond_with(template).mount(&server).await;
    server
}

fn plc_resolver(server: &MockServer) -> AtprotoDidResolver {
    AtprotoDidResolver::new(dev_http()).plc_directory(Url::parse(&server.uri()).expect("url"))
}

// ------------------------------------------------------------------------ did:plc ---

#[tokio::test]
async fn plc_document_is_fetched_from_the_configured_directory() {
    // ID-DID-03: both JSON media types are accepted.
    for media_type in ["application/did+ld+json", "application/json; charset=utf-8"] {
        let server =
            plc_server(DID, ResponseTemplate::new(200).set_body_raw(doc_json(DID).to_string(), media_type))
                .await;
        let got = plc_resolver(&server).resolve_did(&did(DID)).await.expect("document");
        assert_eq!(got.id, did(DID));
        assert_eq!(got.pds_endpoint().expect("pds").as_str(), "https://pds.example.net/");
    }
}

#[tokio::test]
async fn plc_not_found_and_tombstoned_are_not_found() {
    for status in [404, 410] {
        let server = plc_server(DID, ResponseTemplate::new(status)).await;
        let err = plc_resolver(&server).resolve_did(&did(DID)).await.expect_err("missing");
        assert!(err.is_not_found(), "{status}: {err:?}");
    }
}

#[tokio::test]
async fn plc_document_with_another_id_is_rejected() {
    // ID-DID-05
    let server = plc_server(
        DID,
        ResponseTemplate::new(200).set_body_raw(doc_json(OTHER).to_string(), "application/json"),
    )
    .await;
    match plc_resolver(&server).resolve_did(&did(DID)).await {
        Err(DidResolveError::InvalidDocument {
            source: DocumentError::IdMismatch { expected, found },
            ..
        }) => assert_eq!((expected, found), (did(DID), did(OTHER))),
        other => panic!("expected IdMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn plc_fetch_is_hardened() {
    // ID-DID-03: REF refuses redirects; also wrong media type, oversize, 5xx.
    let server = plc_server(DID, ResponseTemplate::new(302).insert_header("location", "/elsewhere")).await;
    assert!(matches!(
        plc_resolver(&server).resolve_did(&did(DID)).await,
        Err(DidResolveError::Fetch { source: HttpError::Redirect { .. }, .. })
    ));
    let server =
        plc_server(DID, ResponseTemplate::new(200).set_body_raw(doc_json(DID).to_string(), "text/html"))
            .await;
    assert!(matches!(
        plc_resolver(&server).resolve_did(&did(DID)).await,
        Err(DidResolveError::Fetch { source: HttpError::UnexpectedContentType { .. }, .. })
    ));
    let server = plc_server(
        DID,
        ResponseTemplate::new(200).set_body_raw(doc_json(DID).to_string(), "application/json"),
    )
    .await;
    assert!(matches!(
        plc_resolver(&server).max_document_bytes(64).resolve_did(&did(DID)).await,
        Err(DidResolveError::Fetch { source: HttpError::TooLarge { limit: 64 }, .. })
    ));
    let server = plc_server(DID, ResponseTemplate::new(500)).await;
    assert!(matches!(
        plc_resolver(&server).resolve_did(&did(DID)).await,
        Err(DidResolveError::Fetch { source: HttpError::UnexpectedStatus { .. }, .. })
    ));
}

#[tokio::test]
async fn malformed_documents_are_rejected() {
    for body in [
        "not json".to_owned(),
        json!({ "id": "not-a-did" }).to_string(),
        json!({ "alsoKnownAs": [] }).to_string(),
        json!({ "id": DID, "service": "nope" }).to_string(),
    ] {
        let server =
            plc_server(DID, ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json")).await;
        assert!(
            matches!(
                plc_resolver(&server).resolve_did(&did(DID)).await,
                Err(DidResolveError::MalformedDocument { .. })
            ),
            "{body}"
        );
    }
}

#[tokio::test]
async fn production_resolver_refuses_a_loopback_plc_directory() {
    // CL-DISC-07: even a configured URL is subject to the SSRF policy.
    let server = plc_server(DID, ResponseTemplate::new(200)).await;
    let prod = AtprotoDidResolver::new(SafeHttpClient::builder().build().expect("client"))
        .plc_directory(Url::parse(&server.uri()).expect("url"));
    assert!(matches!(
        prod.resolve_did(&did(DID)).await,
        Err(DidResolveError::Fetch { source: HttpError::SchemeNotAllowed { .. }, .. })
    ));
}

// ------------------------------------------------------------------------ did:web ---

#[tokio::test]
async fn did_web_localhost_in_development() {
    // ID-DID-04: `localhost` with a %3A-encoded port, only with the development switch.
    let server = MockServer::start().await;
    let port = server.address().port();
    let web_did = format!("did:web:localhost%3A{port}");
    Mock::given(method("GET"))
        .and(path("/.well-known/did.json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(doc_json(&web_did).to_string(), "application/json"),
        )
        .mount(&server)
        .await;
    let dev = AtprotoDidResolver::new(dev_http()).allow_localhost_did_web(true);
    let got = dev.resolve_did(&did(&web_did)).await.expect("document");
    assert_eq!(got.id.as_str(), web_did);

    let prod = AtprotoDidResolver::new(dev_http());
    assert!(matches!(
        prod.resolve_did(&did(&web_did)).await,
        Err(DidResolveError::UnsupportedDidWeb { reason: DidWebError::LocalhostNotAllowed, .. })
    ));
}

#[tokio::test]
async fn unsupported_methods_and_did_web_forms() {
    // ID-DID-02, ID-DID-04
    let r = AtprotoDidResolver::new(dev_http());
    assert!(matches!(
        r.resolve_did(&did("did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N")).await,
        Err(DidResolveError::UnsupportedMethod { method, .. }) if method == "key"
    ));
    assert!(matches!(
        r.resolve_did(&did("did:web:example.com:users:alice")).await,
        Err(DidResolveError::UnsupportedDidWeb { reason: DidWebError::PathBased, .. })
    ));
    assert!(matches!(
        r.resolve_did(&did("did:plc:short")).await,
        Err(DidResolveError::InvalidPlcIdentifier { .. })
    ));
}

// ----------------------------------------------------------------- DID doc checks ---

#[test]
fn pds_endpoint_first_matching_service_wins() {
    // ID-DID-06: later #atproto_pds entries are ignored.
    let mut v = doc_json(DID);
    v["service"] = json!([
        { "id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "https://labeler.example" },
        { "id": format!("{DID}#atproto_pds"), "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://first.example:8443" },
        { "id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://second.example" }
    ]);
    assert_eq!(doc(v).pds_endpoint().expect("pds").as_str(), "https://first.example:8443/");
}

#[test]
fn pds_service_needs_matching_id_and_type() {
    // ID-DID-06: `<other did>#atproto_pds` and a wrong type do not count.
    let mut v = doc_json(DID);
    v["service"] = json!([
        { "id": format!("{OTHER}#atproto_pds"), "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://other.example" },
        { "id": "#atproto_pds", "type": "SomethingElse", "serviceEndpoint": "https://wrongtype.example" },
        { "id": "#atproto_pds", "type": ["AtprotoPersonalDataServer"], "serviceEndpoint": "https://right.example" }
    ]);
    assert_eq!(doc(v).pds_endpoint().expect("pds").as_str(), "https://right.example/");

    let mut v = doc_json(DID);
    v["service"] = json!([]);
    assert!(matches!(doc(v).pds_endpoint(), Err(DocumentError::NoPdsEndpoint)));
    let mut v = doc_json(DID);
    v.as_object_mut().expect("object").remove("service");
    assert!(matches!(doc(v).pds_endpoint(), Err(DocumentError::NoPdsEndpoint)));
}

#[test]
fn pds_endpoint_must_be_an_origin() {
    // ID-DID-06: scheme + host + optional port only; the first match is final even if invalid.
    type Check = fn(&DocumentError) -> bool;
    let cases: [(Value, Check); 7] = [
        (json!("https://pds.example/xrpc"), |e| matches!(e, DocumentError::PdsEndpointNotOrigin { .. })),
        (json!("https://pds.example/?q=1"), |e| matches!(e, DocumentError::PdsEndpointNotOrigin { .. })),
        (json!("https://pds.example/#frag"), |e| matches!(e, DocumentError::PdsEndpointNotOrigin { .. })),
        (json!("https://user@pds.example"), |e| matches!(e, DocumentError::PdsEndpointNotOrigin { .. })),
        (json!("ftp://pds.example"), |e| matches!(e, DocumentError::PdsEndpointScheme { .. })),
        (json!("not a url"), |e| matches!(e, DocumentError::PdsEndpointInvalidUrl { .. })),
        (json!({ "origins": ["https://pds.example"] }), |e| matches!(e, DocumentError::PdsEndpointNotString)),
    ];
    for (endpoint, check) in cases {
        let mut v = doc_json(DID);
        v["service"] = json!([
            { "id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": endpoint.clone() },
            { "id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://fallback.example" }
        ]);
        let err = doc(v).pds_endpoint().expect_err("invalid endpoint");
        assert!(check(&err), "{endpoint}: {err:?}");
    }
    // A trailing slash is fine; http is allowed at this level (the HTTP client decides).
    for ok in ["https://pds.example/", "http://localhost:2583"] {
        let mut v = doc_json(DID);
        v["service"][0]["serviceEndpoint"] = json!(ok);
        assert!(doc(v).pds_endpoint().is_ok(), "{ok}");
    }
}

#[test]
fn claimed_handle_is_the_first_valid_at_uri() {
    // ID-HANDLE-07 input: first syntactically valid `at://<handle>`, lowercased.
    let mut v = doc_json(DID);
    v["alsoKnownAs"] = json!([
        "https://alice.example.com",
        "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "at://not..valid",
        "at://Alice.Example.COM",
        "at://bob.example.com"
    ]);
    assert_eq!(doc(v).claimed_handle(), Some(Handle::new("alice.example.com").expect("valid")));
    let mut v = doc_json(DID);
    v["alsoKnownAs"] = json!(["at://alice.example.com/app.bsky.feed.post/1"]);
    assert_eq!(doc(v).claimed_handle(), None);
}

#[test]
fn signing_key_multikey_and_legacy_forms() {
    // ID-DID-07 with the checklist §4.4 vector: legacy K-256 multibase = Multikey.
    let multikey = doc(doc_json(DID)).signing_key().expect("multikey");
    assert_eq!(multikey.algorithm(), Algorithm::Es256k);
    assert_eq!(multikey.to_did_key(), format!("did:key:{K256_MULTIKEY}"));

    let mut v = doc_json(DID);
    v["verificationMethod"][0]["type"] = json!("EcdsaSecp256k1VerificationKey2019");
    v["verificationMethod"][0]["publicKeyMultibase"] = json!(K256_LEGACY);
    let d = doc(v);
    assert_eq!(d.signing_key_material().expect("material").encoding, KeyEncoding::LegacyK256);
    assert_eq!(d.signing_key().expect("legacy"), multikey);

    // P-256: Multikey from the signature fixtures, and its legacy (uncompressed, no multicodec) form.
    let p256 = PublicKey::from_did_key(P256_DID_KEY).expect("fixture key");
    let mut v = doc_json(DID);
    v["verificationMethod"][0]["publicKeyMultibase"] = json!(p256.to_multikey());
    assert_eq!(doc(v).signing_key().expect("p256 multikey"), p256);
    let legacy = format!("z{}", bs58::encode(p256.to_uncompressed()).into_string());
    let mut v = doc_json(DID);
    v["verificationMethod"][0]["type"] = json!("EcdsaSecp256r1VerificationKey2019");
    v["verificationMethod"][0]["publicKeyMultibase"] = json!(legacy);
    assert_eq!(doc(v).signing_key().expect("p256 legacy"), p256);
}

#[test]
fn signing_key_selection_rules() {
    // ID-DID-07: `#atproto` of this DID, controlled by this DID; the first such entry is final.
    let vm = |id: String, controller: &str, ty: &str, mb: Option<&str>| {
        let mut m = json!({ "id": id, "type": ty, "controller": controller });
        if let Some(mb) = mb {
            m["publicKeyMultibase"] = json!(mb);
        }
        m
    };
    let with = |methods: Vec<Value>| {
        let mut v = doc_json(DID);
        v["verificationMethod"] = Value::Array(methods);
        doc(v)
    };

    // Another DID's key, a key controlled by someone else, and a non-#atproto key are skipped.
    let d = with(vec![
        vm(format!("{OTHER}#atproto"), DID, "Multikey", Some("zBAD")),
        vm("#atproto".to_owned(), OTHER, "Multikey", Some("zBAD")),
        vm("#atproto_label".to_owned(), DID, "Multikey", Some("zBAD")),
        vm("#atproto".to_owned(), DID, "Multikey", Some(K256_MULTIKEY)),
        vm("#atproto".to_owned(), DID, "Multikey", Some("zLATER")),
    ]);
    assert_eq!(d.signing_key_material().expect("key").public_key_multibase, K256_MULTIKEY);

    assert!(matches!(
        with(vec![vm("#atproto".to_owned(), OTHER, "Multikey", Some(K256_MULTIKEY))]).signing_key(),
        Err(DocumentError::NoSigningKey)
    ));
    assert!(matches!(with(vec![]).signing_key(), Err(DocumentError::NoSigningKey)));
    assert!(matches!(
        with(vec![vm("#atproto".to_owned(), DID, "JsonWebKey2020", Some(K256_MULTIKEY))]).signing_key(),
        Err(DocumentError::UnsupportedKeyType { key_type }) if key_type == "JsonWebKey2020"
    ));
    assert!(matches!(
        with(vec![vm("#atproto".to_owned(), DID, "Multikey", None)]).signing_key(),
        Err(DocumentError::SigningKeyMissingMultibase)
    ));
    assert!(matches!(
        with(vec![vm("#atproto".to_owned(), DID, "Multikey", Some("zNotAKey"))]).signing_key(),
        Err(DocumentError::InvalidSigningKey(_))
    ));
}

#[test]
fn document_serde_round_trip() {
    let d = doc(doc_json(DID));
    let again: DidDocument = serde_json::from_str(&serde_json::to_string(&d).expect("ser")).expect("de");
    assert_eq!(again, d);
}

// ------------------------------------------------------------------------- cache ---

#[derive(Clone, Default)]
struct CountingDids {
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl DidResolver for CountingDids {
    async fn resolve_did(&self, d: &Did) -> Result<DidDocument, DidResolveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(doc(doc_json(d.as_str())))
    }
}

#[tokio::test]
async fn did_cache_and_fresh_bypass() {
    // ID-HANDLE-08, CL-SUB-02
    let inner = CountingDids::default();
    let cached = CachedDidResolver::new(inner.clone(), CacheConfig::default());
    let d = did(DID);
    cached.resolve_did(&d).await.expect("first");
    cached.resolve_did(&d).await.expect("cached");
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    cached.resolve_did_fresh(&d).await.expect("fresh");
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    cached.invalidate(&d).await;
    cached.resolve_did(&d).await.expect("after invalidate");
    assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
}
