//! Handle → DID: DNS TXT through a fake DNS (ID-HANDLE-04), HTTPS well-known against wiremock
//! (ID-HANDLE-05), both in parallel (ID-HANDLE-06), TLD policy (ID-HANDLE-03), the XRPC resolver
//! (ID-DID-08) and the TTL cache (ID-HANDLE-08).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atauth_identity::http::{BlockReason, HttpError, SafeHttpClient, StaticAddressLookup};
use atauth_identity::{
    AtprotoHandleResolver, CacheConfig, CachedHandleResolver, Did, DnsHandleResolver, Handle,
    HandleResolveError, HandleResolver, TldPolicy, TxtLookup, TxtLookupError, UnresolvableHandle,
    WellKnownHandleResolver, XrpcHandleResolver,
};
use url::Url;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DID_A: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const DID_B: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

fn did(s: &str) -> Did {
    Did::new(s).expect("valid DID")
}

fn handle(s: &str) -> Handle {
    Handle::new(s).expect("valid handle")
}

/// A fake DNS: a table of TXT answers, an optional delay, and a call counter.
#[derive(Clone, Default)]
struct FakeDns {
    answers: Arc<HashMap<String, Result<Vec<String>, TxtLookupError>>>,
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

impl FakeDns {
    fn new(
        answers: impl IntoIterator<Item = (&'static str, Result<Vec<&'static str>, TxtLookupError>)>,
    ) -> Self {
        let answers = answers
            .into_iter()
            .map(|(name, a)| (name.to_owned(), a.map(|v| v.into_iter().map(str::to_owned).collect())))
            .collect();
        Self { answers: Arc::new(answers), ..Self::default() }
    }

    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TxtLookup for FakeDns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TxtLookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.answers.get(name).cloned().unwrap_or(Err(TxtLookupError::NotFound))
    }
}

/// A development HTTP client whose fake address table maps each handle to 127.0.0.1, where a
/// wiremock server plays the handle's web host.
fn loopback_http(hosts: &[&str]) -> SafeHttpClient {
    let lookup = hosts
        .iter()
        .fold(StaticAddressLookup::new(), |l, h| l.with(h, ["127.0.0.1".parse::<IpAddr>().expect("ip")]));
    SafeHttpClient::builder()
        .allow_http_loopback(true)
        .address_lookup(lookup)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

async fn well_known_server(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/atproto-did"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn well_known(server: &MockServer, hosts: &[&str]) -> WellKnownHandleResolver {
    WellKnownHandleResolver::new(loopback_http(hosts)).dev_http_port(Some(server.address().port()))
}

fn combined(dns: &FakeDns, server: &MockServer, hosts: &[&str]) -> AtprotoHandleResolver {
    AtprotoHandleResolver::from_parts(
        DnsHandleResolver::new(Arc::new(dns.clone())),
        well_known(server, hosts),
    )
}

// ----------------------------------------------------------------------- DNS TXT ---

#[tokio::test]
async fn dns_method_uses_only_did_values() {
    // ID-HANDLE-04
    let dns = FakeDns::new([(
        "_atproto.alice.example.com",
        Ok(vec!["google-site-verification=abc", "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]),
    )]);
    let resolver = DnsHandleResolver::new(Arc::new(dns.clone()));
    assert_eq!(resolver.resolve_handle(&handle("alice.example.com")).await.expect("did"), did(DID_A));
    assert_eq!(dns.calls(), 1);
}

#[tokio::test]
async fn dns_method_with_two_different_dids_fails() {
    // ID-HANDLE-04: two valid did= records with different DIDs → failure.
    let dns = FakeDns::new([(
        "_atproto.alice.example.com",
        Ok(vec!["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did=did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"]),
    )]);
    let resolver = DnsHandleResolver::new(Arc::new(dns));
    match resolver.resolve_handle(&handle("alice.example.com")).await {
        Err(HandleResolveError::ConflictingDnsRecords { first, second, .. }) => {
            assert_eq!((first, second), (did(DID_A), did(DID_B)));
        }
        other => panic!("expected ConflictingDnsRecords, got {other:?}"),
    }
}

#[tokio::test]
async fn dns_conflict_is_not_overridden_by_https() {
    // ID-HANDLE-04 + ID-HANDLE-06: an ambiguous DNS answer fails the handle even if HTTPS answers.
    let dns = FakeDns::new([(
        "_atproto.alice.example.com",
        Ok(vec!["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did=did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"]),
    )]);
    let server = well_known_server(ResponseTemplate::new(200).set_body_string(DID_A)).await;
    let resolver = combined(&dns, &server, &["alice.example.com"]);
    assert!(matches!(
        resolver.resolve_handle(&handle("alice.example.com")).await,
        Err(HandleResolveError::ConflictingDnsRecords { .. })
    ));
}

#[tokio::test]
async fn dns_timeout_is_a_lookup_error() {
    let dns =
        FakeDns::new([("_atproto.alice.example.com", Ok(vec!["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]))])
            .delayed(Duration::from_secs(5));
    let resolver = DnsHandleResolver::new(Arc::new(dns)).timeout(Duration::from_millis(50));
    assert!(matches!(
        resolver.resolve_handle(&handle("alice.example.com")).await,
        Err(HandleResolveError::DnsLookup { source: TxtLookupError::Timeout, .. })
    ));
}

// --------------------------------------------------------------- HTTPS well-known ---

#[tokio::test]
async fn well_known_uses_first_line_trimmed() {
    // ID-HANDLE-05
    let server = well_known_server(
        ResponseTemplate::new(200).set_body_raw(format!("  {DID_A}  \r\nsomething else\n"), "text/plain"),
    )
    .await;
    let resolver = well_known(&server, &["alice.example.com"]);
    assert_eq!(resolver.resolve_handle(&handle("alice.example.com")).await.expect("did"), did(DID_A));
}

#[tokio::test]
async fn well_known_refuses_redirects() {
    // ID-HANDLE-05 (REF refuses redirects; so do we).
    let server = well_known_server(
        ResponseTemplate::new(301)
            .insert_header("location", "https://elsewhere.example.com/.well-known/atproto-did"),
    )
    .await;
    let resolver = well_known(&server, &["alice.example.com"]);
    assert!(matches!(
        resolver.resolve_handle(&handle("alice.example.com")).await,
        Err(HandleResolveError::WellKnownHttp { source: HttpError::Redirect { .. }, .. })
    ));
}

#[tokio::test]
async fn well_known_with_invalid_did_fails() {
    let server = well_known_server(ResponseTemplate::new(200).set_body_string("<html>hello</html>")).await;
    let resolver = well_known(&server, &["alice.example.com"]);
    assert!(matches!(
        resolver.resolve_handle(&handle("alice.example.com")).await,
        Err(HandleResolveError::InvalidWellKnownDid { .. })
    ));
}

#[tokio::test]
async fn well_known_404_is_not_found_and_500_is_a_failure() {
    let server = well_known_server(ResponseTemplate::new(404)).await;
    let resolver = well_known(&server, &["alice.example.com"]);
    assert!(resolver.resolve_handle(&handle("alice.example.com")).await.expect_err("404").is_not_found());
    let server = well_known_server(ResponseTemplate::new(500)).await;
    let resolver = well_known(&server, &["alice.example.com"]);
    assert!(matches!(
        resolver.resolve_handle(&handle("alice.example.com")).await,
        Err(HandleResolveError::WellKnownHttp { source: HttpError::UnexpectedStatus { .. }, .. })
    ));
}

#[tokio::test]
async fn well_known_host_on_private_address_is_refused() {
    // CL-DISC-07: a handle is a host name an attacker controls; it must not reach the internal network.
    let lookup =
        StaticAddressLookup::new().with("evil.example.com", ["10.1.2.3".parse::<IpAddr>().expect("ip")]);
    let http = SafeHttpClient::builder().address_lookup(lookup).build().expect("client");
    let resolver = WellKnownHandleResolver::new(http);
    match resolver.resolve_handle(&handle("evil.example.com")).await {
        Err(HandleResolveError::WellKnownHttp { source: HttpError::Blocked { addr, reason }, .. }) => {
            assert_eq!(addr, "10.1.2.3".parse::<IpAddr>().expect("ip"));
            assert_eq!(reason, BlockReason::Private);
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
}

// ------------------------------------------------------------------- both methods ---

#[tokio::test]
async fn conflicting_dns_and_https_answers_prefer_dns() {
    // ID-HANDLE-06, with HTTPS answering first (DNS is slower) so the DNS answer must be awaited.
    let dns =
        FakeDns::new([("_atproto.alice.example.com", Ok(vec!["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]))])
            .delayed(Duration::from_millis(150));
    let server = well_known_server(ResponseTemplate::new(200).set_body_string(DID_B)).await;
    let resolver = combined(&dns, &server, &["alice.example.com"]);
    assert_eq!(resolver.resolve_handle(&handle("alice.example.com")).await.expect("did"), did(DID_A));
}

#[tokio::test]
async fn dns_answer_wins_without_waiting_for_https() {
    // ID-HANDLE-06: the methods run in parallel; a DNS answer ends the resolution.
    let dns =
        FakeDns::new([("_atproto.alice.example.com", Ok(vec!["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]))]);
    let server = well_known_server(
        ResponseTemplate::new(200).set_body_string(DID_B).set_delay(Duration::from_secs(10)),
    )
    .await;
    let resolver = combined(&dns, &server, &["alice.example.com"]);
    let started = Instant::now();
    assert_eq!(resolver.resolve_handle(&handle("alice.example.com")).await.expect("did"), did(DID_A));
    assert!(started.elapsed() < Duration::from_secs(2), "did not wait for the slow HTTPS method");
}

#[tokio::test]
async fn https_is_used_when_dns_has_no_record() {
    let dns = FakeDns::new([]);
    let server = well_known_server(ResponseTemplate::new(200).set_body_string(DID_B)).await;
    let resolver = combined(&dns, &server, &["alice.example.com"]);
    assert_eq!(resolver.resolve_handle(&handle("alice.example.com")).await.expect("did"), did(DID_B));
    assert_eq!(dns.calls(), 1);
}

#[tokio::test]
async fn both_methods_not_found_is_not_found() {
    let dns = FakeDns::new([]);
    let server = well_known_server(ResponseTemplate::new(404)).await;
    let resolver = combined(&dns, &server, &["alice.example.com"]);
    assert!(resolver.resolve_handle(&handle("alice.example.com")).await.expect_err("none").is_not_found());
}

#[tokio::test]
async fn both_methods_failing_reports_both() {
    let dns = FakeDns::new([(
        "_atproto.alice.example.com",
        Err(TxtLookupError::Failed(Arc::new(std::io::Error::other("SERVFAIL")))),
    )]);
    let server = well_known_server(ResponseTemplate::new(503)).await;
    let resolver = combined(&dns, &server, &["alice.example.com"]);
    match resolver.resolve_handle(&handle("alice.example.com")).await {
        Err(HandleResolveError::AllMethodsFailed { dns, https, .. }) => {
            assert!(matches!(*dns, HandleResolveError::DnsLookup { .. }));
            assert!(matches!(*https, HandleResolveError::WellKnownHttp { .. }));
        }
        other => panic!("expected AllMethodsFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn disallowed_tlds_never_touch_the_network() {
    // ID-HANDLE-03
    let dns = FakeDns::new([]);
    let server = well_known_server(ResponseTemplate::new(200).set_body_string(DID_A)).await;
    let resolver = combined(&dns, &server, &["laptop.local", "alice.test", "handle.invalid"]);
    for (h, want) in [
        ("laptop.local", UnresolvableHandle::DisallowedTld { tld: "local".to_owned() }),
        ("alice.test", UnresolvableHandle::TestTldNotAllowed),
        ("handle.invalid", UnresolvableHandle::InvalidSentinel),
    ] {
        match resolver.resolve_handle(&handle(h)).await {
            Err(HandleResolveError::Unresolvable { reason, .. }) => assert_eq!(reason, want, "{h}"),
            other => panic!("{h}: expected Unresolvable, got {other:?}"),
        }
    }
    assert_eq!(dns.calls(), 0);
    assert!(server.received_requests().await.unwrap_or_default().is_empty());

    // `.test` is allowed in development.
    let dev = combined(&dns, &server, &["alice.test"]).tld_policy(TldPolicy::development());
    assert_eq!(dev.resolve_handle(&handle("alice.test")).await.expect("did"), did(DID_A));
}

// -------------------------------------------------------------------------- XRPC ---

async fn xrpc_server(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/xrpc/com.atproto.identity.resolveHandle"))
        .and(query_param("handle", "alice.test"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn xrpc(server: &MockServer) -> XrpcHandleResolver {
    let http = SafeHttpClient::builder().allow_http_loopback(true).build().expect("client");
    XrpcHandleResolver::new(http, Url::parse(&server.uri()).expect("url"))
        .tld_policy(TldPolicy::development())
}

#[tokio::test]
async fn xrpc_resolver_returns_the_did() {
    // ID-DID-08
    let server =
        xrpc_server(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "did": DID_A }))).await;
    // User input is lowercased before it is sent (ID-HANDLE-02).
    let h = Handle::parse_user_input("@Alice.TEST").expect("valid");
    assert_eq!(xrpc(&server).resolve_handle(&h).await.expect("did"), did(DID_A));
}

#[tokio::test]
async fn xrpc_resolver_maps_errors() {
    let server = xrpc_server(ResponseTemplate::new(400).set_body_json(serde_json::json!({
        "error": "InvalidRequest", "message": "Unable to resolve handle"
    })))
    .await;
    assert!(xrpc(&server).resolve_handle(&handle("alice.test")).await.expect_err("400").is_not_found());

    let server =
        xrpc_server(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "did": "nope" }))).await;
    assert!(matches!(
        xrpc(&server).resolve_handle(&handle("alice.test")).await,
        Err(HandleResolveError::InvalidXrpcDid { .. })
    ));

    let server =
        xrpc_server(ResponseTemplate::new(200).set_body_string(format!("{{\"did\":\"{DID_A}\"}}"))).await;
    assert!(matches!(
        xrpc(&server).resolve_handle(&handle("alice.test")).await,
        Err(HandleResolveError::XrpcHttp { source: HttpError::UnexpectedContentType { .. }, .. })
    ));

    // `.test` only with the development policy (ID-HANDLE-03).
    let http = SafeHttpClient::builder().allow_http_loopback(true).build().expect("client");
    let prod = XrpcHandleResolver::new(http, Url::parse(&server.uri()).expect("url"));
    assert!(matches!(
        prod.resolve_handle(&handle("alice.test")).await,
        Err(HandleResolveError::Unresolvable { .. })
    ));
}

// ------------------------------------------------------------------------- cache ---

/// Counts calls; answers `DID_A` for `alice.example.com`, fails with NotFound otherwise.
#[derive(Clone, Default)]
struct Counting {
    calls: Arc<AtomicUsize>,
    answer: Arc<std::sync::Mutex<Option<Did>>>,
}

#[async_trait::async_trait]
impl HandleResolver for Counting {
    async fn resolve_handle(&self, h: &Handle) -> Result<Did, HandleResolveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = self.answer.lock().expect("lock").clone();
        answer.ok_or_else(|| HandleResolveError::NotFound { handle: h.clone() })
    }
}

#[tokio::test]
async fn cache_serves_repeats_and_fresh_bypasses_it() {
    // ID-HANDLE-08
    let inner = Counting::default();
    *inner.answer.lock().expect("lock") = Some(did(DID_A));
    let cached = CachedHandleResolver::new(inner.clone(), CacheConfig::default());
    let h = handle("alice.example.com");

    // Concurrent first lookups share one resolution.
    let (a, b) = tokio::join!(cached.resolve_handle(&h), cached.resolve_handle(&h));
    assert_eq!((a.expect("a"), b.expect("b")), (did(DID_A), did(DID_A)));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cached.resolve_handle(&h).await.expect("cached"), did(DID_A));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1);

    // The handle moves to another DID: the cache still says A; a fresh resolution sees B and
    // refreshes the entry (CL-SUB-02).
    *inner.answer.lock().expect("lock") = Some(did(DID_B));
    assert_eq!(cached.resolve_handle(&h).await.expect("cached"), did(DID_A));
    assert_eq!(cached.resolve_handle_fresh(&h).await.expect("fresh"), did(DID_B));
    assert_eq!(cached.resolve_handle(&h).await.expect("refreshed"), did(DID_B));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cache_does_not_keep_failures_and_expires() {
    let inner = Counting::default();
    let cached =
        CachedHandleResolver::new(inner.clone(), CacheConfig::default().ttl(Duration::from_millis(100)));
    let h = handle("alice.example.com");
    assert!(cached.resolve_handle(&h).await.is_err());
    *inner.answer.lock().expect("lock") = Some(did(DID_A));
    assert_eq!(cached.resolve_handle(&h).await.expect("not cached as failure"), did(DID_A));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(cached.resolve_handle(&h).await.expect("expired, resolved again"), did(DID_A));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
}
