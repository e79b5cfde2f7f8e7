//! Lexicon resolution for permission sets over the real network path (SCOPE-10): `_lexicon` TXT from a
//! UDP DNS server on loopback through hickory, the authority's `did:web:localhost` document and its
//! PDS's `com.atproto.repo.getRecord` from a local HTTP server, all through `SafeHttpClient`. One test
//! (at least) per `LexiconResolveError` variant, the size cap, and the SSRF policy on the PDS address.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atauth_identity::did::{DidResolveError, DocumentError};
use atauth_identity::http::{AddressLookup, BlockReason, HttpError, SafeHttpClient, StaticAddressLookup};
use atauth_identity::lexicon::{
    AtprotoLexiconResolver, CachedLexiconResolver, DEFAULT_MAX_LEXICON_BYTES, DevOnlyTxtOverride,
    LexiconCachePolicy, LexiconOrigin, LexiconResolveError, LexiconResolver, MemoryLexiconCache,
};
use atauth_identity::{AtprotoDidResolver, DidResolver, MemoryDidResolver, Nsid, TldPolicy, TxtLookupError};
use atauth_testkit::dns::{DnsAnswer, TestDnsServer};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NSID: &str = "com.example.perms.authBasic";
const TXT_NAME: &str = "_lexicon.perms.example.com";

fn nsid() -> Nsid {
    Nsid::new(NSID).expect("nsid")
}

fn dev_http() -> SafeHttpClient {
    SafeHttpClient::builder()
        .allow_http_loopback(true)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// A permission-set Lexicon document for `id`.
fn permission_set(id: &str) -> Value {
    json!({
        "$type": "com.atproto.lexicon.schema",
        "lexicon": 1,
        "id": id,
        "defs": { "main": {
            "type": "permission-set",
            "title": "Basic access",
            "permissions": [
                { "type": "permission", "resource": "repo", "collection": ["com.example.perms.post"] },
                { "type": "permission", "resource": "rpc", "lxm": ["com.example.perms.getFeed"], "inheritAud": true }
            ]
        } }
    })
}

fn did_doc(did: &str, pds: &str) -> Value {
    json!({
        "id": did,
        "alsoKnownAs": ["at://perms.example.com"],
        "verificationMethod": [{ "id": format!("{did}#atproto"), "type": "Multikey", "controller": did,
            "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF" }],
        "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds }]
    })
}

/// The authority: a `did:web:localhost%3A<port>` whose document and PDS are the same local HTTP server,
/// and the DNS server pointing `_lexicon.perms.example.com` at it.
struct Authority {
    dns: TestDnsServer,
    server: MockServer,
    did: String,
}

impl Authority {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let port = server.address().port();
        let did = format!("did:web:localhost%3A{port}");
        let dns = TestDnsServer::start().await;
        dns.set_txt(TXT_NAME, &[&format!("did={did}")]);
        let me = Self { dns, server, did };
        me.serve_did_doc(did_doc(&me.did, &format!("http://localhost:{port}"))).await;
        me
    }

    fn pds(&self) -> String {
        format!("http://localhost:{}", self.server.address().port())
    }

    async fn serve_did_doc(&self, doc: Value) {
        Mock::given(method("GET"))
            .and(path("/.well-known/did.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(doc))
            .mount(&self.server)
            .await;
    }

    /// Answers getRecord for `rkey` with `template`.
    async fn serve_record(&self, rkey: &str, template: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path("/xrpc/com.atproto.repo.getRecord"))
            .and(query_param("repo", self.did.as_str()))
            .and(query_param("collection", "com.atproto.lexicon.schema"))
            .and(query_param("rkey", rkey))
            .respond_with(template)
            .mount(&self.server)
            .await;
    }

    fn record_body(&self, value: &Value) -> Value {
        json!({
            "uri": format!("at://{}/com.atproto.lexicon.schema/{NSID}", self.did),
            "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
            "value": value
        })
    }

    async fn serve_set(&self, value: &Value) {
        self.serve_record(NSID, ResponseTemplate::new(200).set_body_json(self.record_body(value))).await;
    }

    fn did_resolver(&self) -> Arc<dyn DidResolver> {
        Arc::new(AtprotoDidResolver::new(dev_http()).allow_localhost_did_web(true))
    }

    /// The production resolver stack, relaxed only as far as loopback needs: hickory against the test
    /// DNS server, `did:web:localhost`, http to loopback.
    fn resolver(&self) -> AtprotoLexiconResolver {
        AtprotoLexiconResolver::new(Arc::new(self.dns.txt_lookup()), self.did_resolver(), dev_http())
    }

    async fn getrecord_calls(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/xrpc/com.atproto.repo.getRecord")
            .count()
    }
}

async fn resolve_err(resolver: &impl LexiconResolver) -> LexiconResolveError {
    resolver.resolve_lexicon(&nsid()).await.expect_err("resolution must fail")
}

// ------------------------------------------------------------------------------------ success ---

#[tokio::test]
async fn published_permission_set_resolves_through_dns_did_and_pds() {
    // SCOPE-10 end to end.
    let auth = Authority::start().await;
    let set = permission_set(NSID);
    auth.serve_set(&set).await;

    let got = auth.resolver().resolve_lexicon(&nsid()).await.expect("resolved");
    assert_eq!(got.nsid, nsid());
    assert_eq!(*got.document, set, "the record value, unmodified");
    match &got.origin {
        LexiconOrigin::Network { did, uri, cid, pds } => {
            assert_eq!(did.as_str(), auth.did);
            assert_eq!(uri, &format!("at://{}/com.atproto.lexicon.schema/{NSID}", auth.did));
            assert_eq!(cid.as_deref(), Some("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"));
            assert_eq!(pds, &format!("{}/", auth.pds()));
        }
        other => panic!("expected a network origin, got {other:?}"),
    }
    // Exactly one DNS name, fully qualified: no walking up or down the tree (SCOPE-10).
    assert_eq!(auth.dns.queries(), [format!("{TXT_NAME}.")]);
    assert_eq!(auth.getrecord_calls().await, 1);
}

#[tokio::test]
async fn record_just_under_the_cap_is_accepted() {
    let auth = Authority::start().await;
    let mut set = permission_set(NSID);
    let overhead = serde_json::to_vec(&auth.record_body(&set)).expect("json").len();
    set["description"] = json!("x".repeat(DEFAULT_MAX_LEXICON_BYTES - overhead - 64));
    let body = serde_json::to_vec(&auth.record_body(&set)).expect("json");
    assert!(body.len() <= DEFAULT_MAX_LEXICON_BYTES && body.len() > DEFAULT_MAX_LEXICON_BYTES - 200);
    auth.serve_record(NSID, ResponseTemplate::new(200).set_body_raw(body, "application/json")).await;
    let got = auth.resolver().resolve_lexicon(&nsid()).await.expect("under the cap");
    assert_eq!(*got.document, set);
}

// ------------------------------------------------------------------------------ DNS failures ---

#[tokio::test]
async fn no_txt_record_is_not_published() {
    let auth = Authority::start().await;
    for answer in [None, Some(DnsAnswer::NoData), Some(DnsAnswer::Txt(vec![vec!["v=spf1 -all".to_owned()]]))]
    {
        match &answer {
            None => auth.dns.remove(TXT_NAME),
            Some(a) => auth.dns.set(TXT_NAME, a.clone()),
        }
        let err = resolve_err(&auth.resolver()).await;
        assert!(
            matches!(&err, LexiconResolveError::NoAuthorityRecord { name, .. } if name == TXT_NAME),
            "{answer:?}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "permission set com.example.perms.authBasic is not published: no TXT record did=<DID> at \
             _lexicon.perms.example.com"
        );
    }
    assert_eq!(auth.getrecord_calls().await, 0);
}

#[tokio::test]
async fn malformed_txt_record_is_refused() {
    let auth = Authority::start().await;
    auth.dns.set_txt(TXT_NAME, &["did=not a did"]);
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(&err, LexiconResolveError::MalformedAuthorityRecord { value, .. } if value == "did=not a did"),
        "{err:?}"
    );
}

#[tokio::test]
async fn two_dids_in_txt_are_refused() {
    let auth = Authority::start().await;
    auth.dns
        .set_txt(TXT_NAME, &["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did=did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"]);
    let err = resolve_err(&auth.resolver()).await;
    match err {
        LexiconResolveError::ConflictingAuthorityRecords { first, second, .. } => {
            let mut dids = [first.to_string(), second.to_string()];
            dids.sort();
            assert_eq!(dids, ["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"]);
        }
        other => panic!("expected ConflictingAuthorityRecords, got {other:?}"),
    }
    // The same DID twice (e.g. split over records) is fine.
    auth.dns.set(
        TXT_NAME,
        DnsAnswer::Txt(vec![vec![format!("did={}", auth.did)], vec!["did=".to_owned(), auth.did.clone()]]),
    );
    auth.serve_set(&permission_set(NSID)).await;
    auth.resolver().resolve_lexicon(&nsid()).await.expect("one DID");
}

#[tokio::test]
async fn dns_failure_is_a_lookup_failure_not_a_miss() {
    let auth = Authority::start().await;
    auth.dns.set(TXT_NAME, DnsAnswer::ServFail);
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(err, LexiconResolveError::DnsLookupFailed { source: TxtLookupError::Failed(_), .. }),
        "{err:?}"
    );
    assert!(err.is_transient());

    // No answer at all: our own DNS timeout fires first.
    auth.dns.set(TXT_NAME, DnsAnswer::Drop);
    let err = resolve_err(&auth.resolver().dns_timeout(Duration::from_millis(100))).await;
    assert!(
        matches!(err, LexiconResolveError::DnsLookupFailed { source: TxtLookupError::Timeout, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn authority_domain_must_be_a_resolvable_dns_name() {
    let auth = Authority::start().await;
    // `.test` / `.local` authorities are never looked up in production (ID-HANDLE-03 rules).
    for (nsid, domain) in [("test.example.authBasic", "example.test"), ("local.corp.authBasic", "corp.local")]
    {
        let err = auth.resolver().resolve_lexicon(&Nsid::new(nsid).expect("nsid")).await.expect_err(nsid);
        assert!(
            matches!(&err, LexiconResolveError::UnresolvableAuthorityDomain { domain: d, .. } if d == domain),
            "{nsid}: {err:?}"
        );
    }
    // An NSID may be longer than a DNS name can be (317 vs 253 characters).
    let seg = "a".repeat(63);
    let long = Nsid::new(format!("{seg}.{seg}.{seg}.{seg}.authBasic")).expect("a valid NSID");
    let err = auth.resolver().resolve_lexicon(&long).await.expect_err("too long for DNS");
    assert!(matches!(err, LexiconResolveError::InvalidAuthorityDomain { .. }), "{err:?}");
    assert!(auth.dns.queries().is_empty(), "nothing was looked up: {:?}", auth.dns.queries());

    // The development policy allows `.test`.
    auth.dns.set_txt("_lexicon.example.test", &["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]);
    let dev = auth.resolver().tld_policy(TldPolicy::development());
    let err = dev
        .resolve_lexicon(&Nsid::new("test.example.authBasic").expect("nsid"))
        .await
        .expect_err("no DID doc");
    assert!(matches!(err, LexiconResolveError::DidResolutionFailed { .. }), "{err:?}");
}

// ------------------------------------------------------------------------- DID / PDS failures ---

#[tokio::test]
async fn unresolvable_authority_did_fails() {
    let auth = Authority::start().await;
    // A did:web on a port where nothing serves a document (404 from the local server).
    let other = MockServer::start().await;
    let did = format!("did:web:localhost%3A{}", other.address().port());
    auth.dns.set_txt(TXT_NAME, &[&format!("did={did}")]);
    let err = resolve_err(&auth.resolver()).await;
    match err {
        LexiconResolveError::DidResolutionFailed {
            did: d, source: DidResolveError::NotFound { .. }, ..
        } => {
            assert_eq!(d.as_str(), did);
        }
        other => panic!("expected DidResolutionFailed/NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn authority_without_pds_fails() {
    let auth = Authority::start().await;
    let mut doc = did_doc(&auth.did, &auth.pds());
    doc["service"] = json!([]);
    auth.server.reset().await;
    auth.serve_did_doc(doc).await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(err, LexiconResolveError::NoPds { source: DocumentError::NoPdsEndpoint, .. }),
        "{err:?}"
    );
}

/// A resolver whose DID documents come from memory and whose record fetches use `http`.
/// `_lexicon.perms.example.com` is answered by the dev-only override (the DNS path has its own tests).
fn resolver_with_pds(did: &str, pds: &str, http: SafeHttpClient) -> AtprotoLexiconResolver {
    let doc = serde_json::from_value(did_doc(did, pds)).expect("doc");
    let dids: Arc<dyn DidResolver> = Arc::new(MemoryDidResolver::new().with(doc));
    let txt = DevOnlyTxtOverride::new().with_did(TXT_NAME, did);
    AtprotoLexiconResolver::new(Arc::new(txt), dids, http)
}

#[tokio::test]
async fn pds_on_a_private_address_is_refused_by_the_production_policy() {
    // Issue 13 "Done when": a TXT record pointing at a private IP gets a clear error. The DID document
    // is real (fetched from loopback with the dev client); the record fetch uses the production policy.
    let auth = Authority::start().await;
    auth.server.reset().await;
    auth.serve_did_doc(did_doc(&auth.did, "https://10.0.0.7")).await;
    let prod = SafeHttpClient::builder().build().expect("client");
    let resolver =
        AtprotoLexiconResolver::new(Arc::new(auth.dns.txt_lookup()), auth.did_resolver(), prod.clone());
    let err = resolve_err(&resolver).await;
    match &err {
        LexiconResolveError::PdsAddressRefused { pds, source: HttpError::Blocked { reason, .. }, .. } => {
            assert_eq!(pds.as_str(), "https://10.0.0.7/");
            assert_eq!(*reason, BlockReason::Private);
        }
        other => panic!("expected PdsAddressRefused/Blocked, got {other:?}"),
    }
    assert!(err.to_string().contains("is not an allowed destination"), "{err}");
    assert!(!err.is_transient());

    // A host name resolving to a private address is refused after resolution, too.
    let lookup: Arc<dyn AddressLookup> =
        Arc::new(StaticAddressLookup::new().with("pds.example.com", ["192.168.1.20".parse().expect("ip")]));
    let prod = SafeHttpClient::builder().address_lookup_arc(lookup).build().expect("client");
    let resolver = resolver_with_pds("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "https://pds.example.com", prod);
    let err = resolve_err(&resolver).await;
    assert!(
        matches!(
            err,
            LexiconResolveError::PdsAddressRefused {
                source: HttpError::Blocked { reason: BlockReason::Private, .. },
                ..
            }
        ),
        "{err:?}"
    );

    // Loopback is refused in production, and plain http to a private address even in development.
    let prod = SafeHttpClient::builder().build().expect("client");
    let resolver = resolver_with_pds("did:plc:ewvi7nxzyoun6zhxrhs64oiz", &auth.pds(), prod);
    let err = resolve_err(&resolver).await;
    assert!(
        matches!(
            err,
            LexiconResolveError::PdsAddressRefused { source: HttpError::SchemeNotAllowed { .. }, .. }
        ),
        "{err:?}"
    );
    let resolver = resolver_with_pds("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "http://10.1.2.3", dev_http());
    let err = resolve_err(&resolver).await;
    assert!(
        matches!(
            err,
            LexiconResolveError::PdsAddressRefused { source: HttpError::PlainHttpToNonLoopback { .. }, .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_pds_fails_as_transient() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let resolver = resolver_with_pds(
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        &format!("http://localhost:{port}"),
        dev_http(),
    );
    let err = resolve_err(&resolver).await;
    assert!(matches!(err, LexiconResolveError::PdsUnreachable { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn missing_record_is_not_found() {
    let auth = Authority::start().await;
    // The reference PDS: 400 RecordNotFound.
    auth.serve_record(
        NSID,
        ResponseTemplate::new(400)
            .set_body_json(json!({ "error": "RecordNotFound", "message": "Could not locate record" })),
    )
    .await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(matches!(&err, LexiconResolveError::NotFound { did, .. } if did.as_str() == auth.did), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("permission set {NSID} is not published in the repository of its authority {}", auth.did)
    );
    // Other servers: 404.
    auth.server.reset().await;
    auth.serve_did_doc(did_doc(&auth.did, &auth.pds())).await;
    auth.serve_record(NSID, ResponseTemplate::new(404)).await;
    assert!(matches!(resolve_err(&auth.resolver()).await, LexiconResolveError::NotFound { .. }));
}

#[tokio::test]
async fn pds_errors_are_reported_with_status_and_error_name() {
    let auth = Authority::start().await;
    auth.serve_record(
        NSID,
        ResponseTemplate::new(502)
            .set_body_json(json!({ "error": "UpstreamFailure\"<script>", "message": "x" })),
    )
    .await;
    let err = resolve_err(&auth.resolver()).await;
    match &err {
        LexiconResolveError::PdsRefused { status, error, .. } => {
            assert_eq!(status.as_u16(), 502);
            assert_eq!(error.as_deref(), Some("UpstreamFailurescript"), "only letters and digits are kept");
        }
        other => panic!("expected PdsRefused, got {other:?}"),
    }
    assert!(err.is_transient());
    auth.server.reset().await;
    auth.serve_did_doc(did_doc(&auth.did, &auth.pds())).await;
    auth.serve_record(NSID, ResponseTemplate::new(401).set_body_json(json!({ "error": "AuthRequired" })))
        .await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(&err, LexiconResolveError::PdsRefused { status, .. } if status.as_u16() == 401),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().ends_with("refused getRecord (HTTP 401 Unauthorized, AuthRequired)"), "{err}");
}

// ---------------------------------------------------------------------------------- size cap ---

#[tokio::test]
async fn five_megabyte_record_is_refused() {
    // Issue 13 "Done when": a lexicon record of 5 MB. Declared by Content-Length: refused before reading.
    let auth = Authority::start().await;
    let mut set = permission_set(NSID);
    set["description"] = json!("x".repeat(5 * 1024 * 1024));
    auth.serve_record(NSID, ResponseTemplate::new(200).set_body_json(auth.record_body(&set))).await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(matches!(err, LexiconResolveError::TooLarge { limit: DEFAULT_MAX_LEXICON_BYTES, .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("permission set {NSID}: the record is larger than 262144 bytes"));
}

/// An HTTP/1.1 server on loopback answering every request with a chunked JSON body that never ends
/// (up to 64 MiB); counts the bytes it managed to send before the client hung up.
fn endless_body_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b' '; 64 * 1024];
        let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
        for _ in 0..1024 {
            if stream.write_all(&framed).is_err() {
                return;
            }
            counter.fetch_add(64 * 1024, Ordering::SeqCst);
        }
    });
    (port, sent)
}

#[tokio::test]
async fn endless_chunked_record_is_cut_at_the_cap() {
    // No Content-Length: the cap is enforced while streaming, without buffering the rest.
    let (port, sent) = endless_body_server();
    let resolver = resolver_with_pds(
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        &format!("http://localhost:{port}"),
        dev_http(),
    );
    let err = resolve_err(&resolver).await;
    assert!(matches!(err, LexiconResolveError::TooLarge { limit: DEFAULT_MAX_LEXICON_BYTES, .. }), "{err:?}");
    // Give the writer a moment to notice the closed connection, then check it never got near 64 MiB.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = sent.load(Ordering::SeqCst);
    assert!(total < 16 * 1024 * 1024, "the server sent {total} bytes before the client hung up");
}

// --------------------------------------------------------------------------- record checks ---

#[tokio::test]
async fn response_that_is_not_a_record_is_invalid() {
    let auth = Authority::start().await;
    let cases: Vec<(ResponseTemplate, &str)> = vec![
        (ResponseTemplate::new(200).set_body_raw("<html></html>", "text/html"), "content type text/html"),
        (ResponseTemplate::new(200).set_body_raw("{not json", "application/json"), "not a getRecord output"),
        (ResponseTemplate::new(200).set_body_json(json!({ "uri": "at://x" })), "not a getRecord output"),
        (ResponseTemplate::new(302).insert_header("location", "https://elsewhere.example/"), "redirect"),
    ];
    for (template, want) in cases {
        auth.server.reset().await;
        auth.serve_did_doc(did_doc(&auth.did, &auth.pds())).await;
        auth.serve_record(NSID, template).await;
        let err = resolve_err(&auth.resolver()).await;
        assert!(
            matches!(&err, LexiconResolveError::InvalidResponse { reason, .. } if reason.contains(want)),
            "{want}: {err:?}"
        );
    }
}

#[tokio::test]
async fn record_from_another_uri_is_refused() {
    let auth = Authority::start().await;
    let mut body = auth.record_body(&permission_set(NSID));
    body["uri"] = json!(format!("at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/com.atproto.lexicon.schema/{NSID}"));
    auth.serve_record(NSID, ResponseTemplate::new(200).set_body_json(body)).await;
    let err = resolve_err(&auth.resolver()).await;
    match err {
        LexiconResolveError::UriMismatch { expected, found, .. } => {
            assert_eq!(expected, format!("at://{}/com.atproto.lexicon.schema/{NSID}", auth.did));
            assert!(found.starts_with("at://did:plc:aaaa"));
        }
        other => panic!("expected UriMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn record_of_another_type_is_refused() {
    let auth = Authority::start().await;
    let mut set = permission_set(NSID);
    set["$type"] = json!("app.bsky.feed.post");
    auth.serve_set(&set).await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(&err, LexiconResolveError::WrongRecordType { found, .. } if found == "app.bsky.feed.post"),
        "{err:?}"
    );

    auth.server.reset().await;
    auth.serve_did_doc(did_doc(&auth.did, &auth.pds())).await;
    let mut set = permission_set(NSID);
    set.as_object_mut().expect("object").remove("$type");
    auth.serve_set(&set).await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(&err, LexiconResolveError::WrongRecordType { found, .. } if found == "(none)"),
        "{err:?}"
    );
}

#[tokio::test]
async fn document_with_another_id_is_refused() {
    let auth = Authority::start().await;
    auth.serve_set(&permission_set("com.example.perms.authFull")).await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(&err, LexiconResolveError::IdMismatch { found, .. } if found == "com.example.perms.authFull"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "permission set {NSID}: the Lexicon document's id is com.example.perms.authFull, expected {NSID}"
        )
    );
}

#[tokio::test]
async fn document_of_another_lexicon_version_is_refused() {
    let auth = Authority::start().await;
    let mut set = permission_set(NSID);
    set["lexicon"] = json!(2);
    auth.serve_set(&set).await;
    let err = resolve_err(&auth.resolver()).await;
    assert!(
        matches!(&err, LexiconResolveError::UnsupportedLexiconVersion { found, .. } if found == "2"),
        "{err:?}"
    );
}

#[tokio::test]
async fn slow_pds_times_out() {
    let auth = Authority::start().await;
    auth.serve_record(
        NSID,
        ResponseTemplate::new(200)
            .set_body_json(auth.record_body(&permission_set(NSID)))
            .set_delay(Duration::from_secs(3)),
    )
    .await;
    // The request timeout: the PDS is unreachable in time.
    let err = resolve_err(&auth.resolver().fetch_timeout(Duration::from_millis(300))).await;
    assert!(matches!(err, LexiconResolveError::PdsUnreachable { source: HttpError::Timeout, .. }), "{err:?}");
    // The overall bound on the whole resolution.
    let err = resolve_err(&auth.resolver().timeout(Duration::from_millis(300))).await;
    assert!(matches!(err, LexiconResolveError::Timeout { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("permission set {NSID}: resolution timed out"));
}

#[tokio::test]
async fn error_descriptions_are_safe_for_oauth() {
    // RFC 6749 §5.2: error_description is printable ASCII without `"` and `\`; the TXT value is
    // attacker-controlled.
    let auth = Authority::start().await;
    auth.dns.set_txt(TXT_NAME, &["did=\"évil\\"]);
    let err = resolve_err(&auth.resolver()).await;
    assert!(matches!(err, LexiconResolveError::MalformedAuthorityRecord { .. }), "{err:?}");
    let description = err.oauth_error_description();
    assert!(description.chars().all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'), "{description}");
    assert!(description.contains("_lexicon.perms.example.com is malformed"), "{description}");
}

// ------------------------------------------------------------------------ dev-only override ---

#[tokio::test]
async fn dev_override_answers_listed_names_and_falls_back_for_others() {
    let auth = Authority::start().await;
    auth.serve_set(&permission_set(NSID)).await;
    // The real DNS server no longer knows the name; the override does.
    auth.dns.remove(TXT_NAME);
    let txt =
        DevOnlyTxtOverride::new().with_did(TXT_NAME, &auth.did).fallback(Arc::new(auth.dns.txt_lookup()));
    let resolver = AtprotoLexiconResolver::new(Arc::new(txt), auth.did_resolver(), dev_http());
    let got = resolver.resolve_lexicon(&nsid()).await.expect("through the override");
    assert_eq!(got.document["id"], NSID);
    assert!(auth.dns.queries().is_empty(), "a listed name never reaches DNS");

    // Other names go to the fallback (the real DNS server).
    let other = Nsid::new("com.example.other.authBasic").expect("nsid");
    let err = resolver.resolve_lexicon(&other).await.expect_err("not listed, not in DNS");
    assert!(matches!(err, LexiconResolveError::NoAuthorityRecord { .. }), "{err:?}");
    assert_eq!(auth.dns.queries(), ["_lexicon.other.example.com."]);
}

// --------------------------------------------------------------------------- network disabled ---

#[tokio::test]
async fn without_network_an_unpinned_set_is_unknown() {
    let resolver =
        CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), LexiconCachePolicy::default());
    let err = resolver.resolve_lexicon(&nsid()).await.expect_err("nothing pinned, no network");
    assert!(matches!(err, LexiconResolveError::NetworkDisabled { .. }), "{err:?}");
    assert_eq!(err.nsid(), &nsid());
}
