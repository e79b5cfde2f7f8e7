//! Interop, the truth: atrium-api's typed client over atauth sessions against Bluesky's reference
//! PDS (`@atproto/pds` with its real repo, started offline by `interop/ref-pds.mjs`).
//!
//! Through an OAuth session (consent through the reference provider's UI API) and through a legacy
//! password session, each: create a post (`createRecord`), read it (`getRecord`: a GET with a
//! query string, so the DPoP proof's `htu` must be the URL without it), upload a blob, list
//! records page by page with a cursor, force a refresh mid-way (the typed calls do not notice),
//! delete the post and see `RecordNotFound`. Then atauth-client's convenience `post` resolves a
//! mention through the PDS and writes the facet at the right byte offsets.
//!
//! If the harness is not installed the test **fails** and says to run `interop/setup.sh`, unless
//! `ATAUTH_SKIP_INTEROP=1` is set (the test kit's rule).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use atauth_atrium::AtriumSession;
use atauth_client::{AuthorizeOptions, ClientConfig, DevOptions, OAuthClient, XrpcSession};
use atauth_testkit::interop::RefPds;
use atrium_api::agent::Agent;
use atrium_api::app::bsky::feed::post;
use atrium_api::com::atproto::repo::{create_record, delete_record, get_record, list_records};
use atrium_api::types::string::{AtIdentifier, Datetime, Did, Nsid, RecordKey};
use atrium_api::types::{LimitedNonZeroU8, TryFromUnknown, TryIntoUnknown};

const REDIRECT: &str = "http://127.0.0.1:49152/callback";
const POST: &str = "app.bsky.feed.post";

fn nsid() -> Nsid {
    Nsid::new(POST.into()).unwrap()
}

fn rkey_of(uri: &str) -> RecordKey {
    RecordKey::new(uri.rsplit('/').next().unwrap().into()).unwrap()
}

async fn create<S: XrpcSession + 'static>(agent: &Agent<AtriumSession<S>>, me: &Did, text: &str) -> String {
    let record = post::RecordData {
        created_at: Datetime::now(),
        embed: None,
        entities: None,
        facets: None,
        labels: None,
        langs: None,
        reply: None,
        tags: None,
        text: text.into(),
    };
    let input = create_record::InputData {
        collection: nsid(),
        record: record.try_into_unknown().unwrap(),
        repo: AtIdentifier::Did(me.clone()),
        rkey: None,
        swap_commit: None,
        validate: None,
    };
    agent.api.com.atproto.repo.create_record(input.into()).await.unwrap().data.uri
}

async fn get<S: XrpcSession + 'static>(
    agent: &Agent<AtriumSession<S>>,
    me: &Did,
    uri: &str,
) -> Result<String, atrium_xrpc::Error<get_record::Error>> {
    let params = get_record::ParametersData {
        cid: None,
        collection: nsid(),
        repo: AtIdentifier::Did(me.clone()),
        rkey: rkey_of(uri),
    };
    let out = agent.api.com.atproto.repo.get_record(params.into()).await?;
    assert_eq!(out.data.uri, uri);
    Ok(post::Record::try_from_unknown(out.data.value).unwrap().data.text)
}

/// The typed cycle over one session; `refresh` forces a refresh of that session mid-way.
async fn typed_cycle<S, F>(agent: &Agent<AtriumSession<S>>, label: &str, refresh: F)
where
    S: XrpcSession + 'static,
    F: AsyncFnOnce(),
{
    let me = agent.did().await.unwrap();
    let first = create(agent, &me, &format!("{label}: hello from atrium over atauth")).await;
    assert_eq!(get(agent, &me, &first).await.unwrap(), format!("{label}: hello from atrium over atauth"));

    let blob = agent.api.com.atproto.repo.upload_blob(b"GIF89a not really a gif".to_vec()).await.unwrap();
    let blob = serde_json::to_value(&blob.data.blob).unwrap();
    assert_eq!(blob["size"], 23, "{blob}");

    refresh().await; // mid-way: the next typed calls must not notice

    for i in 0..3 {
        create(agent, &me, &format!("{label}: page post {i}")).await;
    }
    // Page through the collection two at a time with the cursor.
    let (mut texts, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let params = list_records::ParametersData {
            collection: nsid(),
            cursor: cursor.take(),
            limit: Some(LimitedNonZeroU8::<100>::try_from(2).unwrap()),
            repo: AtIdentifier::Did(me.clone()),
            reverse: None,
        };
        let out = agent.api.com.atproto.repo.list_records(params.into()).await.unwrap();
        pages += 1;
        for r in &out.data.records {
            texts.push(post::Record::try_from_unknown(r.value.clone()).unwrap().data.text);
        }
        match out.data.cursor {
            Some(c) if !out.data.records.is_empty() => cursor = Some(c),
            _ => break,
        }
        assert!(pages < 20, "the cursor does not end");
    }
    let ours: Vec<&String> = texts.iter().filter(|t| t.starts_with(label)).collect();
    assert_eq!(ours.len(), 4, "{texts:?}");
    assert!(pages >= 2, "more than one page: {pages}");
    assert_eq!(ours[0], &format!("{label}: page post 2"), "newest first: {texts:?}");

    let input = delete_record::InputData {
        collection: nsid(),
        repo: AtIdentifier::Did(me.clone()),
        rkey: rkey_of(&first),
        swap_commit: None,
        swap_record: None,
    };
    agent.api.com.atproto.repo.delete_record(input.into()).await.unwrap();
    match get(agent, &me, &first).await.unwrap_err() {
        atrium_xrpc::Error::XrpcResponse(e) => {
            assert_eq!(e.status, 400);
            assert!(
                matches!(
                    e.error,
                    Some(atrium_xrpc::error::XrpcErrorKind::Custom(get_record::Error::RecordNotFound(_)))
                ),
                "{:?}",
                e.error
            );
        }
        e => panic!("{e:?}"),
    }
}

fn client(ready: &RefPds) -> OAuthClient {
    let config =
        ClientConfig::loopback(&[REDIRECT], "atproto transition:generic").unwrap().with_dev(DevOptions {
            allow_http_loopback: true,
            plc_url: Some(url::Url::parse(&ready.plc_url).unwrap()),
            handle_resolver_url: Some(url::Url::parse(&ready.pds_url).unwrap()),
        });
    OAuthClient::builder(config).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_typed_atrium_calls_over_oauth_and_app_password_sessions() {
    let Some(dir) = atauth_testkit::interop::installed() else { return };
    let (_peers, ready) = atauth_testkit::interop::start_ref_pds(&dir, Duration::from_secs(600));

    // OAuth: log in with our client, consent through the reference provider's UI API.
    let client = client(&ready);
    let url = client.authorize(&ready.handle, AuthorizeOptions::default()).await.unwrap();
    let location = atauth_testkit::consent::reference_provider(&url, &ready.handle, &ready.password)
        .await
        .unwrap_or_else(|e| panic!("consent through the reference provider failed: {e}"));
    let session = client.callback_query(location.query().unwrap()).await.unwrap().session;
    let agent = Agent::new(AtriumSession::new(session.clone()).await);
    assert_eq!(agent.did().await.unwrap().as_str(), ready.did);
    typed_cycle(&agent, "oauth", async || {
        session.refresh().await.unwrap();
    })
    .await;
    assert_eq!(client.stats().refresh_requests(), 1, "the forced refresh, and no other");
    assert_eq!(session.info().await.generation, 1);

    // The same through a legacy password session (createSession, Bearer tokens, refreshSession).
    let http = atauth_identity::http::SafeHttpClient::builder().allow_http_loopback(true).build().unwrap();
    let pds = url::Url::parse(&ready.pds_url).unwrap();
    let legacy = atauth_client::PasswordSession::login(http, &pds, &ready.handle, &ready.password, None)
        .await
        .unwrap();
    // The refresh JWT carries a jti, so a rotation is visible even within the same second (the
    // access JWT has none and can come out byte-identical).
    let before = legacy.export().await.refresh_jwt;
    let agent = Agent::new(AtriumSession::new(legacy.clone()).await);
    typed_cycle(&agent, "legacy", async || {
        legacy.refresh().await.unwrap();
    })
    .await;
    assert_ne!(legacy.export().await.refresh_jwt.expose_secret(), before.expose_secret(), "refreshed");

    // atauth-client's convenience layer on the same PDS: the mention resolves through the PDS and
    // its facet sits at the UTF-8 byte offsets of "@bob.test" (after a four-byte emoji).
    let bob = ready.accounts.iter().find(|a| a.handle == "bob.test").expect("bob.test in ref-pds.mjs");
    let plain = atauth_client::Agent::new(session.clone());
    let text = "🦋 hi @bob.test, see https://atproto.com";
    let posted = plain.post(text).await.unwrap();
    let record = plain.get_record(&posted.uri).await.unwrap();
    assert_eq!(record.value["text"], text);
    let facets = record.value["facets"].as_array().unwrap();
    assert_eq!(facets[0]["index"]["byteStart"], 8);
    assert_eq!(facets[0]["index"]["byteEnd"], 17);
    assert_eq!(facets[0]["features"][0]["did"], bob.did.as_str());
    assert_eq!(facets[1]["features"][0]["uri"], "https://atproto.com");
    plain.delete_record(&posted.uri).await.unwrap();
    session.sign_out().await.unwrap();
}
