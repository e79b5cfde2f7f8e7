//! atrium-api's typed client over atauth sessions, against a real atauth-server (in process, on a
//! socket): its authorization server, its legacy sessions, its resource-server extractor in front
//! of record routes (`common`). OAuth (DPoP) and app-password sessions; a forced expired access
//! token causes exactly one refresh and the typed calls do not notice (CL-RES-03, T-24); the
//! `atproto-proxy` header reaches the PDS; a missing scope is the spec'd 403 (RS-WWW-02).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use atauth_atrium::{AtriumSession, BSKY_APPVIEW};
use atauth_client::{RequestError, XrpcSession};
use atrium_api::agent::Agent;
use atrium_api::app::bsky::feed::post;
use atrium_api::com::atproto::repo::{create_record, get_record};
use atrium_api::types::string::{AtIdentifier, Datetime, Did, Nsid, RecordKey};
use atrium_api::types::{TryFromUnknown, TryIntoUnknown};
use atrium_xrpc::http::Request;
use atrium_xrpc::{HttpClient, XrpcClient};
use common::*;

fn post_record(text: &str) -> atrium_api::types::Unknown {
    post::RecordData {
        created_at: Datetime::now(),
        embed: None,
        entities: None,
        facets: None,
        labels: None,
        langs: None,
        reply: None,
        tags: None,
        text: text.into(),
    }
    .try_into_unknown()
    .unwrap()
}

async fn create_post<S: XrpcSession + 'static>(agent: &Agent<AtriumSession<S>>, text: &str) -> String {
    let did = agent.did().await.unwrap();
    let out = agent
        .api
        .com
        .atproto
        .repo
        .create_record(
            create_record::InputData {
                collection: Nsid::new("app.bsky.feed.post".into()).unwrap(),
                record: post_record(text),
                repo: AtIdentifier::Did(did),
                rkey: None,
                swap_commit: None,
                validate: None,
            }
            .into(),
        )
        .await
        .unwrap();
    out.data.uri
}

async fn read_post<S: XrpcSession + 'static>(
    agent: &Agent<AtriumSession<S>>,
    uri: &str,
) -> Result<String, atrium_xrpc::Error<get_record::Error>> {
    let mut parts = uri.trim_start_matches("at://").splitn(3, '/');
    let (repo, collection, rkey) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let out = agent
        .api
        .com
        .atproto
        .repo
        .get_record(
            get_record::ParametersData {
                cid: None,
                collection: Nsid::new(collection.into()).unwrap(),
                repo: AtIdentifier::Did(Did::new(repo.into()).unwrap()),
                rkey: RecordKey::new(rkey.into()).unwrap(),
            }
            .into(),
        )
        .await?;
    assert_eq!(out.data.uri, uri);
    Ok(post::Record::try_from_unknown(out.data.value).unwrap().data.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_typed_create_and_get_survive_an_expired_token_with_exactly_one_refresh() {
    let pds = Pds::start().await;
    let client = pds.client();
    let session = pds.login(&client, None).await;
    let agent = Agent::new(AtriumSession::new(session.clone()).await);
    assert_eq!(agent.did().await.unwrap().as_str(), ALICE);

    let uri = create_post(&agent, "hello from atrium over atauth").await;
    assert!(uri.starts_with(&format!("at://{ALICE}/app.bsky.feed.post/")), "{uri}");
    // A GET with a query string: the DPoP proof's htu is the URL without it (T-04).
    assert_eq!(read_post(&agent, &uri).await.unwrap(), "hello from atrium over atauth");
    assert_eq!(client.stats().refresh_requests(), 0);
    let tokens_before = pds.count("POST /oauth/token");

    pds.expire_access_tokens();
    assert_eq!(read_post(&agent, &uri).await.unwrap(), "hello from atrium over atauth");
    assert_eq!(client.stats().refresh_requests(), 1, "exactly one refresh");
    assert_eq!(pds.count("POST /oauth/token"), tokens_before + 1);
    assert_eq!(session.info().await.generation, 1);
    // And the new token keeps working without another refresh.
    let second = create_post(&agent, "after the refresh").await;
    assert_eq!(read_post(&agent, &second).await.unwrap(), "after the refresh");
    assert_eq!(client.stats().refresh_requests(), 1);

    // A record that does not exist is atrium's typed error.
    let missing = format!("at://{ALICE}/app.bsky.feed.post/3kzzzzzzzzzzz");
    match read_post(&agent, &missing).await.unwrap_err() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_password_session_typed_calls_refresh_once_on_expired_token() {
    let pds = Pds::start().await;
    let session = pds.password_login().await;
    let agent = Agent::new(AtriumSession::new(session.clone()).await);
    let uri = create_post(&agent, "legacy hello").await;
    assert_eq!(read_post(&agent, &uri).await.unwrap(), "legacy hello");
    assert_eq!(pds.count("POST /xrpc/com.atproto.server.refreshSession"), 0);

    pds.expire_access_tokens(); // the server now answers 400 ExpiredToken (T-24)
    assert_eq!(read_post(&agent, &uri).await.unwrap(), "legacy hello");
    assert_eq!(pds.count("POST /xrpc/com.atproto.server.refreshSession"), 1, "exactly one refresh");
    let me = agent.api.com.atproto.server.get_session().await.unwrap();
    assert_eq!(me.data.did.as_str(), ALICE);
    assert_eq!(pds.count("POST /xrpc/com.atproto.server.refreshSession"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atproto_proxy_header_for_app_view_calls() {
    let pds = Pds::start().await;
    let client = pds.client();
    let session = pds.login(&client, None).await;
    let actor = || {
        atrium_api::app::bsky::actor::get_profile::ParametersData {
            actor: AtIdentifier::Did(Did::new(BOB.into()).unwrap()),
        }
        .into()
    };

    // Without a proxy the PDS has nothing to forward to.
    let plain = Agent::new(AtriumSession::new(session.clone()).await);
    let err = plain.api.app.bsky.actor.get_profile(actor()).await.unwrap_err();
    assert!(matches!(&err, atrium_xrpc::Error::XrpcResponse(e) if e.status == 501), "{err:?}");
    assert_eq!(pds.last_proxy("GET /xrpc/app.bsky.actor.getProfile"), None);

    // Per namespace: app.bsky.* carries the header, com.atproto.* does not.
    let routed = Agent::new(
        AtriumSession::new(session.clone()).await.with_namespace_proxy("app.bsky.", BSKY_APPVIEW).unwrap(),
    );
    let profile = routed.api.app.bsky.actor.get_profile(actor()).await.unwrap();
    assert_eq!(profile.data.handle.as_str(), "bob.test");
    assert_eq!(pds.last_proxy("GET /xrpc/app.bsky.actor.getProfile").as_deref(), Some(BSKY_APPVIEW));
    routed.api.com.atproto.server.get_session().await.unwrap();
    assert_eq!(pds.last_proxy("GET /xrpc/com.atproto.server.getSession"), None);

    // atrium's own way: Agent::api_with_proxy (CloneWithProxy).
    let (did, service) = BSKY_APPVIEW.split_once('#').unwrap();
    let api = plain.api_with_proxy(Did::new(did.into()).unwrap(), service);
    let profile = api.app.bsky.actor.get_profile(actor()).await.unwrap();
    assert_eq!(profile.data.did.as_str(), BOB);
    // An invalid service id fails the request instead of silently dropping the header.
    let bad = plain.api_with_proxy(Did::new(did.into()).unwrap(), "not a service");
    let before = pds.count("GET /xrpc/app.bsky.actor.getProfile");
    let err = bad.app.bsky.actor.get_profile(actor()).await.unwrap_err();
    assert!(matches!(err, atrium_xrpc::Error::HttpClient(_)), "{err:?}");
    assert_eq!(pds.count("GET /xrpc/app.bsky.actor.getProfile"), before, "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_missing_is_403_and_tokens_never_leave_the_pds() {
    let pds = Pds::start().await;
    let client = pds.client();
    let session = pds.login(&client, Some("atproto")).await; // no transition:generic, no repo:*
    let xrpc = AtriumSession::new(session.clone()).await;
    let agent = Agent::new(xrpc.clone());
    let did = agent.did().await.unwrap();
    let err = agent
        .api
        .com
        .atproto
        .repo
        .create_record(
            create_record::InputData {
                collection: Nsid::new("app.bsky.feed.post".into()).unwrap(),
                record: post_record("not allowed"),
                repo: AtIdentifier::Did(did),
                rkey: None,
                swap_commit: None,
                validate: None,
            }
            .into(),
        )
        .await
        .unwrap_err();
    match err {
        atrium_xrpc::Error::XrpcResponse(e) => {
            assert_eq!(e.status, 403);
            let Some(atrium_xrpc::error::XrpcErrorKind::Undefined(body)) = e.error else {
                panic!("{:?}", e.error)
            };
            assert_eq!(body.error.as_deref(), Some("ScopeMissingError"));
        }
        e => panic!("{e:?}"),
    }
    assert!(pds.repo.lock().unwrap().records.is_empty(), "nothing written");

    // CL-RES-02: a request URI on another origin is refused before anything is sent.
    let before = pds.repo.lock().unwrap().requests.len();
    let req = Request::builder()
        .uri("http://127.0.0.1:9/xrpc/com.atproto.server.getSession")
        .body(Vec::new())
        .unwrap();
    let err = xrpc.send_http(req).await.unwrap_err();
    assert!(matches!(err.downcast_ref::<RequestError>(), Some(RequestError::InvalidRequest(_))), "{err}");
    // …and so is a caller-supplied Authorization header.
    let req = Request::builder()
        .uri(format!("{}/xrpc/com.atproto.server.getSession", xrpc.base_uri()))
        .header("authorization", "Bearer someone-elses")
        .body(Vec::new())
        .unwrap();
    let err = xrpc.send_http(req).await.unwrap_err();
    assert!(matches!(err.downcast_ref::<RequestError>(), Some(RequestError::InvalidRequest(_))), "{err}");
    assert_eq!(pds.repo.lock().unwrap().requests.len(), before);
}

/// CL-RES-02 without a server: URIs that merely start like the PDS URL are refused before any
/// connection; a URI on the PDS is sent (and fails to connect: nothing listens on port 9).
#[tokio::test]
async fn uris_that_only_look_like_the_pds_are_refused_before_sending() {
    let data: atauth_client::PasswordSessionData = serde_json::from_value(serde_json::json!({
        "did": ALICE, "handle": "alice.test", "service": "http://127.0.0.1:9",
        "access_jwt": "a", "refresh_jwt": "r"
    }))
    .unwrap();
    let http = atauth_identity::http::SafeHttpClient::builder().allow_http_loopback(true).build().unwrap();
    let xrpc = AtriumSession::new(atauth_client::PasswordSession::resume(http, data)).await;
    assert_eq!(xrpc.base_uri(), "http://127.0.0.1:9");
    let send = |uri: &'static str| {
        let xrpc = xrpc.clone();
        async move {
            let req = Request::builder().uri(uri).body(Vec::new()).unwrap();
            let err = xrpc.send_http(req).await.unwrap_err();
            err.downcast::<RequestError>().map(|e| *e).unwrap()
        }
    };
    for uri in [
        "http://127.0.0.1:90/xrpc/com.atproto.server.getSession",
        "http://127.0.0.1:9@evil.example/xrpc/com.atproto.server.getSession",
        "https://127.0.0.1:9/xrpc/com.atproto.server.getSession",
    ] {
        assert!(matches!(send(uri).await, RequestError::InvalidRequest(_)), "{uri}");
    }
    let err = send("http://127.0.0.1:9/xrpc/com.atproto.server.getSession").await;
    assert!(matches!(err, RequestError::Http(_)), "sent, and the connection was refused: {err:?}");
}
