//! Interop: a permission-set Lexicon published for real (issue 13 "Interop"): a
//! `com.atproto.lexicon.schema` record with rkey = NSID written to an account of the reference PDS
//! (`@atproto/pds`, started by `interop/ref-pds.mjs` with its PLC directory), its `_lexicon` TXT record
//! answered by a DNS server on loopback, and resolved through our whole network path (hickory, PLC
//! DID document, the PDS's `getRecord`). SCOPE-10.
//!
//! The harness lives in `interop/` (override with `ATAUTH_INTEROP_DIR`). If it is not installed the test
//! **fails** and says to run `interop/setup.sh`, unless `ATAUTH_SKIP_INTEROP=1` is set.

use std::sync::Arc;
use std::time::Duration;

use atauth_identity::http::{HttpRequest, SafeHttpClient};
use atauth_identity::lexicon::{
    AtprotoLexiconResolver, CachedLexiconResolver, LexiconCachePolicy, LexiconOrigin, LexiconResolveError,
    LexiconResolver, MemoryLexiconCache,
};
use atauth_identity::{AtprotoDidResolver, Nsid};
use atauth_testkit::dns::TestDnsServer;
use http::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};
use url::Url;

const NSID: &str = "com.example.perms.authBasic";

fn dev_http() -> SafeHttpClient {
    SafeHttpClient::builder()
        .allow_http_loopback(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn xrpc_post(
    http: &SafeHttpClient,
    pds: &Url,
    nsid: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let url = pds.join(&format!("/xrpc/{nsid}")).expect("url");
    let mut request = HttpRequest::post_json(url, body).expect("json");
    if let Some(token) = token {
        request =
            request.header(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
    }
    let response = http.send(request).await.unwrap_or_else(|e| panic!("{nsid}: {e}"));
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status.as_u16(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_permission_set_published_on_the_reference_pds_resolves() {
    let Some(dir) = atauth_testkit::interop::installed() else {
        return;
    };
    let (_peers, ready) = atauth_testkit::interop::start_ref_pds(&dir, Duration::from_secs(600));
    let pds = Url::parse(&ready.pds_url).expect("pdsUrl");
    let plc = Url::parse(&ready.plc_url).expect("plcUrl");
    let http = dev_http();

    // Publish: log in as the account and write the Lexicon record (rkey = NSID).
    let (status, session) = xrpc_post(
        &http,
        &pds,
        "com.atproto.server.createSession",
        None,
        &json!({ "identifier": ready.handle, "password": ready.password }),
    )
    .await;
    assert_eq!(status, 200, "createSession: {session}");
    let token = session["accessJwt"].as_str().expect("accessJwt").to_owned();
    let record = json!({
        "$type": "com.atproto.lexicon.schema",
        "lexicon": 1,
        "id": NSID,
        "defs": { "main": {
            "type": "permission-set",
            "title": "Basic example access",
            "title:lang": { "fr": "Accès de base" },
            "detail": "Post and read the example feed.",
            "permissions": [
                { "type": "permission", "resource": "repo", "collection": ["com.example.perms.post"] },
                { "type": "permission", "resource": "rpc", "lxm": ["com.example.perms.getFeed"], "inheritAud": true }
            ]
        } }
    });
    let (status, written) = xrpc_post(
        &http,
        &pds,
        "com.atproto.repo.putRecord",
        Some(&token),
        &json!({ "repo": ready.did, "collection": "com.atproto.lexicon.schema", "rkey": NSID, "record": record }),
    )
    .await;
    assert_eq!(status, 200, "putRecord: {written}");
    let uri = format!("at://{}/com.atproto.lexicon.schema/{NSID}", ready.did);
    assert_eq!(written["uri"], uri.as_str());

    // `_lexicon.perms.example.com` → the account's DID, from a real DNS server on loopback.
    let dns = TestDnsServer::start().await;
    dns.set_txt("_lexicon.perms.example.com", &[&format!("did={}", ready.did)]);
    let network = AtprotoLexiconResolver::new(
        Arc::new(dns.txt_lookup()),
        Arc::new(AtprotoDidResolver::new(http.clone()).plc_directory(plc)),
        http.clone(),
    );
    let resolver =
        CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), LexiconCachePolicy::default())
            .network(Arc::new(network.clone()));

    let nsid = Nsid::new(NSID).expect("nsid");
    let got = resolver.resolve_lexicon(&nsid).await.expect("the published set resolves");
    assert_eq!(*got.document, record, "the record comes back exactly as written");
    match &got.origin {
        LexiconOrigin::Network { did, uri: got_uri, cid, pds: got_pds } => {
            assert_eq!(did.as_str(), ready.did);
            assert_eq!(got_uri, &uri);
            assert_eq!(cid.as_deref(), written["cid"].as_str(), "the CID putRecord reported");
            assert_eq!(got_pds, pds.as_str());
        }
        other => panic!("expected a network origin, got {other:?}"),
    }
    assert_eq!(dns.queries(), ["_lexicon.perms.example.com."]);

    // Cached: a second resolution asks nobody.
    resolver.resolve_lexicon(&nsid).await.expect("cached");
    assert_eq!(dns.queries().len(), 1);

    // The reference PDS's answer for an unpublished NSID of the same authority is "not found".
    let missing = Nsid::new("com.example.perms.authFull").expect("nsid");
    let err = network.resolve_lexicon(&missing).await.expect_err("not published");
    assert!(
        matches!(&err, LexiconResolveError::NotFound { did, .. } if did.as_str() == ready.did),
        "{err:?}"
    );

    // What the reference PDS validates in a Lexicon record: `lexicon` must be an integer and the rkey an
    // NSID (its `com.atproto.lexicon.schema` schema); nothing else.
    let (status, body) = xrpc_post(
        &http,
        &pds,
        "com.atproto.repo.putRecord",
        Some(&token),
        &json!({ "repo": ready.did, "collection": "com.atproto.lexicon.schema", "rkey": "com.example.perms.noVersion",
            "record": { "$type": "com.atproto.lexicon.schema", "id": "com.example.perms.noVersion" } }),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidRequest")), "no `lexicon`: {body}");
    let (status, body) = xrpc_post(
        &http,
        &pds,
        "com.atproto.repo.putRecord",
        Some(&token),
        &json!({ "repo": ready.did, "collection": "com.atproto.lexicon.schema", "rkey": "not-an-nsid", "record": record }),
    )
    .await;
    assert_eq!(status, 400, "rkey must be an NSID: {body}");

    // A record whose `id` is not its rkey (the reference PDS does not check it) is refused by us.
    let wrong = "com.example.perms.authWrong";
    let mut bad = record.clone();
    bad["id"] = json!("com.example.perms.authOther");
    let (status, body) = xrpc_post(
        &http,
        &pds,
        "com.atproto.repo.putRecord",
        Some(&token),
        &json!({ "repo": ready.did, "collection": "com.atproto.lexicon.schema", "rkey": wrong, "record": bad }),
    )
    .await;
    assert_eq!(status, 200, "putRecord (mismatched id): {body}");
    let err = network.resolve_lexicon(&Nsid::new(wrong).expect("nsid")).await.expect_err("id mismatch");
    assert!(
        matches!(&err, LexiconResolveError::IdMismatch { found, .. } if found == "com.example.perms.authOther"),
        "{err:?}"
    );
}
