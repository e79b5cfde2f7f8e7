//! Permission-set caching (SCOPE-11) over the real network path, with a manual clock: fresh entries
//! skip the network, stale ones are refreshed, a failed refresh keeps serving the stale copy (and is
//! not retried on every request), the maximum age applies to new sessions only, pinned files win,
//! and a broken cache backend degrades to network resolution. Plus the `LexiconCache` conformance
//! suite for the memory backend.

use std::sync::Arc;
use std::time::Duration;

use atauth_crypto::ManualClock;
use atauth_identity::http::SafeHttpClient;
use atauth_identity::lexicon::{
    AtprotoLexiconResolver, CachedLexicon, CachedLexiconResolver, LayeredLexiconCache, LexiconCache,
    LexiconCacheError, LexiconCachePolicy, LexiconDir, LexiconOrigin, LexiconResolveError, LexiconResolver,
    MemoryLexiconCache,
};
use atauth_identity::{AtprotoDidResolver, Nsid};
use atauth_testkit::dns::TestDnsServer;
use atauth_testkit::fs::TempDir;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NSID: &str = "com.example.perms.authBasic";
const MIN: Duration = Duration::from_secs(60);

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

fn set(title: &str) -> Value {
    json!({
        "$type": "com.atproto.lexicon.schema", "lexicon": 1, "id": NSID,
        "defs": { "main": { "type": "permission-set", "title": title, "permissions": [] } }
    })
}

/// A published set: DNS server + one local HTTP server as `did:web` host and PDS.
struct Published {
    dns: TestDnsServer,
    server: MockServer,
    did: String,
}

impl Published {
    async fn start(title: &str) -> Self {
        let server = MockServer::start().await;
        let did = format!("did:web:localhost%3A{}", server.address().port());
        let dns = TestDnsServer::start().await;
        dns.set_txt("_lexicon.perms.example.com", &[&format!("did={did}")]);
        let me = Self { dns, server, did };
        me.publish(Some(title)).await;
        me
    }

    /// Serves the DID document and either the set with `title` or a 500 for getRecord.
    async fn publish(&self, title: Option<&str>) {
        self.publish_slow(title, Duration::ZERO).await;
    }

    /// Like [`publish`](Self::publish), getRecord answering after `delay`.
    async fn publish_slow(&self, title: Option<&str>, delay: Duration) {
        self.server.reset().await;
        let port = self.server.address().port();
        let did = &self.did;
        Mock::given(method("GET"))
            .and(path("/.well-known/did.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": did,
                "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": format!("http://localhost:{port}") }]
            })))
            .mount(&self.server)
            .await;
        let template = match title {
            Some(title) => ResponseTemplate::new(200).set_body_json(json!({
                "uri": format!("at://{did}/com.atproto.lexicon.schema/{NSID}"),
                "value": set(title)
            })),
            None => ResponseTemplate::new(500).set_body_json(json!({ "error": "InternalServerError" })),
        }
        .set_delay(delay);
        Mock::given(method("GET"))
            .and(path("/xrpc/com.atproto.repo.getRecord"))
            .respond_with(template)
            .mount(&self.server)
            .await;
    }

    fn network(&self) -> Arc<dyn LexiconResolver> {
        Arc::new(AtprotoLexiconResolver::new(
            Arc::new(self.dns.txt_lookup()),
            Arc::new(AtprotoDidResolver::new(dev_http()).allow_localhost_did_web(true)),
            dev_http(),
        ))
    }

    /// getRecord requests since the last `publish` (which resets the server's journal).
    async fn fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/xrpc/com.atproto.repo.getRecord")
            .count()
    }
}

fn title(doc: &Value) -> &str {
    doc["defs"]["main"]["title"].as_str().unwrap_or("(none)")
}

#[tokio::test]
async fn stale_entries_are_refreshed_and_kept_when_the_refresh_fails() {
    // SCOPE-11 with the default policy: stale after 1 h, 5 min between failed refreshes.
    let publ = Published::start("v1").await;
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let cache = Arc::new(MemoryLexiconCache::new());
    let resolver = CachedLexiconResolver::new(cache.clone(), LexiconCachePolicy::default())
        .network(publ.network())
        .clock(clock.clone());

    // First use: from the network, then cached.
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("v1").document), "v1");
    assert_eq!(publ.fetches().await, 1);
    assert_eq!(cache.len(), 1);

    // Fresh for 1 h: no network even though the published set changed.
    publ.publish(Some("v2")).await;
    clock.advance(59 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("cached").document), "v1");
    assert_eq!(publ.fetches().await, 0);

    // Stale: refreshed from the network.
    clock.advance(2 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("v2").document), "v2");
    assert_eq!(publ.fetches().await, 1);

    // The PDS breaks. Once stale, the refresh fails and the stale copy is served.
    publ.publish(None).await;
    clock.advance(61 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("stale v2").document), "v2");
    assert_eq!(publ.fetches().await, 1);
    let entry = cache.get(&nsid()).await.expect("get").expect("entry");
    assert_eq!(entry.last_failure_at, Some(clock_now(&clock)));

    // Within 5 min of the failure the network is not asked again.
    clock.advance(4 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("stale v2").document), "v2");
    assert_eq!(publ.fetches().await, 1);

    // After it, another attempt (still failing, still served).
    clock.advance(2 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("stale v2").document), "v2");
    assert_eq!(publ.fetches().await, 2);

    // The PDS recovers: the next attempt (5 min later) refreshes and clears the failure.
    publ.publish(Some("v3")).await;
    clock.advance(6 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("v3").document), "v3");
    let entry = cache.get(&nsid()).await.expect("get").expect("entry");
    assert_eq!(entry.last_failure_at, None);
    assert_eq!(entry.fetched_at, clock_now(&clock));
}

fn clock_now(clock: &ManualClock) -> std::time::SystemTime {
    use atauth_crypto::Clock;
    clock.now()
}

#[tokio::test]
async fn unresolvable_set_without_cache_fails() {
    // SCOPE-11: at session start, not resolvable and not cached → the request fails.
    let publ = Published::start("v1").await;
    publ.publish(None).await;
    let cache = Arc::new(MemoryLexiconCache::new());
    let resolver =
        CachedLexiconResolver::new(cache.clone(), LexiconCachePolicy::default()).network(publ.network());
    let err = resolver.resolve_lexicon(&nsid()).await.expect_err("nothing to fall back on");
    assert!(
        matches!(&err, LexiconResolveError::PdsRefused { status, .. } if status.as_u16() == 500),
        "{err:?}"
    );
    assert!(cache.is_empty(), "failures are not cached");
}

#[tokio::test]
async fn max_age_applies_to_new_sessions_only() {
    // SCOPE-11: "expiration" for new sessions; existing sessions are not affected by it.
    let publ = Published::start("v1").await;
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let policy = LexiconCachePolicy::new(60 * MIN, 120 * MIN, 15 * MIN).expect("policy");
    let resolver = CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), policy)
        .network(publ.network())
        .clock(clock.clone());
    resolver.resolve_lexicon(&nsid()).await.expect("v1");

    publ.publish(None).await;
    clock.advance(119 * MIN);
    // Stale but not expired: served to a new session despite the failed refresh.
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("stale").document), "v1");

    clock.advance(10 * MIN);
    // Expired (129 min since the last successful fetch): a new session fails with the refresh error…
    let err = resolver.resolve_lexicon(&nsid()).await.expect_err("expired for new sessions");
    assert!(matches!(err, LexiconResolveError::PdsRefused { .. }), "{err:?}");
    // …while an existing session's refresh still gets the cached set.
    let kept = resolver.resolve_lexicon_for_existing_session(&nsid()).await.expect("existing session");
    assert_eq!(title(&kept.document), "v1");

    // A successful refresh makes it usable for new sessions again.
    publ.publish(Some("v2")).await;
    clock.advance(6 * MIN);
    assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("v2").document), "v2");
}

#[tokio::test]
async fn pinned_files_are_used_before_cache_and_network() {
    let publ = Published::start("network").await;
    let dir = TempDir::new("lexicon-pinned");
    let mut pinned = set("pinned");
    pinned.as_object_mut().expect("object").remove("$type"); // Lexicon files have no $type.
    std::fs::write(dir.join("basic.json"), pinned.to_string()).expect("write");
    let resolver =
        CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), LexiconCachePolicy::default())
            .local_dir(LexiconDir::load(dir.path()).expect("load"))
            .network(publ.network());
    let got = resolver.resolve_lexicon(&nsid()).await.expect("pinned");
    assert_eq!(*got.document, pinned);
    assert!(matches!(&got.origin, LexiconOrigin::LocalFile { path } if path.ends_with("basic.json")));
    assert!(publ.dns.queries().is_empty(), "no DNS for a pinned set");
    assert_eq!(publ.fetches().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_network_resolution() {
    // A burst of authorization requests for a set nobody has cached yet: one DNS lookup, one getRecord.
    let publ = Published::start("v1").await;
    publ.publish_slow(Some("v1"), Duration::from_millis(300)).await;
    let resolver = Arc::new(
        CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), LexiconCachePolicy::default())
            .network(publ.network()),
    );
    let burst = |resolver: Arc<CachedLexiconResolver>| async move {
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let r = Arc::clone(&resolver);
                tokio::spawn(async move { r.resolve_lexicon(&nsid()).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        results
    };
    for result in burst(Arc::clone(&resolver)).await {
        assert_eq!(title(&result.expect("resolved").document), "v1");
    }
    assert_eq!(publ.fetches().await, 1);
    assert_eq!(publ.dns.queries().len(), 1);

    // Failures are shared too: every waiter gets the error at once, after one attempt.
    let uncached = Arc::new(
        CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), LexiconCachePolicy::default())
            .network(publ.network()),
    );
    publ.publish_slow(None, Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    for result in burst(uncached).await {
        assert!(matches!(result, Err(LexiconResolveError::PdsRefused { .. })), "{result:?}");
    }
    assert_eq!(publ.fetches().await, 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not queued one after another: {:?}",
        started.elapsed()
    );
}

/// A backend that always fails.
struct BrokenCache;

#[async_trait::async_trait]
impl LexiconCache for BrokenCache {
    async fn get(&self, _: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError> {
        Err(LexiconCacheError::new(std::io::Error::other("database is down")))
    }
    async fn put(&self, _: &CachedLexicon) -> Result<(), LexiconCacheError> {
        Err(LexiconCacheError::new(std::io::Error::other("database is down")))
    }
    async fn remove(&self, _: &Nsid) -> Result<(), LexiconCacheError> {
        Err(LexiconCacheError::new(std::io::Error::other("database is down")))
    }
}

#[tokio::test]
async fn broken_cache_backend_degrades_to_the_network() {
    let publ = Published::start("v1").await;
    let resolver = CachedLexiconResolver::new(Arc::new(BrokenCache), LexiconCachePolicy::default())
        .network(publ.network());
    for _ in 0..2 {
        assert_eq!(title(&resolver.resolve_lexicon(&nsid()).await.expect("network").document), "v1");
    }
    assert_eq!(publ.fetches().await, 2, "nothing could be cached, so both went to the network");
}

#[tokio::test]
async fn memory_cache_passes_the_conformance_suite() {
    atauth_testkit::lexicon::lexicon_cache_suite(&MemoryLexiconCache::new()).await;
}

#[tokio::test]
async fn memory_cache_evicts_the_oldest_entry_when_full() {
    let cache = MemoryLexiconCache::with_capacity(2);
    let a = atauth_testkit::lexicon::entry("com.example.a.set", 1_000, "a");
    let b = atauth_testkit::lexicon::entry("com.example.b.set", 3_000, "b");
    let c = atauth_testkit::lexicon::entry("com.example.c.set", 2_000, "c");
    for e in [&a, &b, &c] {
        cache.put(e).await.expect("put");
    }
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get(&a.lexicon.nsid).await.expect("get"), None, "a was fetched longest ago");
    assert!(cache.get(&b.lexicon.nsid).await.expect("get").is_some());
    assert!(cache.get(&c.lexicon.nsid).await.expect("get").is_some());
    // Replacing an existing key never evicts.
    cache.put(&b).await.expect("put");
    assert_eq!(cache.len(), 2);
    assert!(cache.get(&c.lexicon.nsid).await.expect("get").is_some());
}

#[tokio::test]
async fn layered_cache_passes_the_conformance_suite() {
    let durable = Arc::new(MemoryLexiconCache::new());
    atauth_testkit::lexicon::lexicon_cache_suite(&LayeredLexiconCache::new(durable.clone())).await;
    assert!(durable.is_empty(), "removals reach the durable cache");
}

#[tokio::test]
async fn layered_cache_reads_the_durable_cache_once_then_answers_from_memory() {
    let durable = Arc::new(MemoryLexiconCache::new());
    let layered = LayeredLexiconCache::new(durable.clone());
    let entry = atauth_testkit::lexicon::entry("com.example.a.set", 1_000, "a");
    let nsid = entry.lexicon.nsid.clone();
    // Written by another process sharing the durable cache.
    durable.put(&entry).await.expect("put");
    let first = layered.get(&nsid).await.expect("get").expect("found in the durable cache");
    assert_eq!(first, entry);
    // Gone from the durable cache behind this layer's back: the memory copy still answers, and it is
    // the same shared document, not a copy.
    durable.remove(&nsid).await.expect("remove");
    let second = layered.get(&nsid).await.expect("get").expect("served from memory");
    assert!(Arc::ptr_eq(&first.lexicon.document, &second.lexicon.document));
    // Writes reach both layers.
    let newer = atauth_testkit::lexicon::entry("com.example.a.set", 2_000, "a2");
    layered.put(&newer).await.expect("put");
    assert_eq!(durable.get(&nsid).await.expect("get"), Some(newer.clone()));
    assert_eq!(layered.get(&nsid).await.expect("get"), Some(newer));
}

/// A durable cache whose writes fail.
struct FailingWrites(MemoryLexiconCache);

#[async_trait::async_trait]
impl LexiconCache for FailingWrites {
    async fn get(&self, nsid: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError> {
        self.0.get(nsid).await
    }
    async fn put(&self, _: &CachedLexicon) -> Result<(), LexiconCacheError> {
        Err(LexiconCacheError::new(std::io::Error::other("disk full")))
    }
    async fn remove(&self, nsid: &Nsid) -> Result<(), LexiconCacheError> {
        self.0.remove(nsid).await
    }
}

#[tokio::test]
async fn layered_cache_does_not_run_ahead_of_a_failing_durable_cache() {
    let layered = LayeredLexiconCache::new(Arc::new(FailingWrites(MemoryLexiconCache::new())));
    let entry = atauth_testkit::lexicon::entry("com.example.a.set", 1_000, "a");
    assert!(layered.put(&entry).await.is_err(), "the durable failure is reported");
    assert_eq!(layered.get(&entry.lexicon.nsid).await.expect("get"), None, "memory did not keep it");
}
