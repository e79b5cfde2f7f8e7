//! atauth-client's convenience layer (`atauth_client::api`, no typed-API crate) against the same
//! real atauth-server as the adapter's tests (the test PDS lives here, with the adapter): a post
//! whose facets carry UTF-8 byte offsets and a resolved mention, like, follow, blob upload, records
//! listed page by page with cursors, delete, profile through the app-view proxy, and the typed
//! errors `ExpiredToken` and `ScopeMissing { needed }`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use atauth_client::Agent;
use atauth_client::api::ApiError;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_like_follow_blob_and_paginate() {
    let pds = Pds::start().await;
    let client = pds.client();
    let agent = Agent::new(pds.login(&client, None).await);

    let text = "🦋 hi @bob.test and @nobody.test, read https://atproto.com/guides.";
    let post = agent.post(text).await.unwrap();
    let record = agent.get_record(&post.uri).await.unwrap();
    assert_eq!(record.cid.as_deref(), Some(post.cid.as_str()));
    assert_eq!(record.value["text"], text);
    assert_eq!(record.value["$type"], "app.bsky.feed.post");
    let facets = record.value["facets"].as_array().unwrap();
    assert_eq!(facets.len(), 2, "the unknown handle stays plain text: {facets:?}");
    let range = |f: &serde_json::Value| {
        let (s, e) = (f["index"]["byteStart"].as_u64().unwrap(), f["index"]["byteEnd"].as_u64().unwrap());
        &text[s as usize..e as usize]
    };
    assert_eq!(range(&facets[0]), "@bob.test");
    assert_eq!(facets[0]["index"]["byteStart"], 8, "🦋 is four bytes");
    assert_eq!(facets[0]["features"][0]["$type"], "app.bsky.richtext.facet#mention");
    assert_eq!(facets[0]["features"][0]["did"], BOB);
    assert_eq!(range(&facets[1]), "https://atproto.com/guides");
    assert_eq!(facets[1]["features"][0]["uri"], "https://atproto.com/guides");

    let like = agent.like(&post).await.unwrap();
    let like = agent.get_record(&like.uri).await.unwrap();
    assert_eq!(like.value["subject"]["uri"], post.uri.as_str());
    assert_eq!(like.value["subject"]["cid"], post.cid.as_str());
    let follow = agent.follow(BOB).await.unwrap();
    assert_eq!(agent.get_record(&follow.uri).await.unwrap().value["subject"], BOB);
    assert!(matches!(agent.follow("bob.test").await, Err(ApiError::Request(_))), "a handle is not a DID");

    let blob = agent.upload_blob(vec![0x89, b'P', b'N', b'G'].into(), "image/png").await.unwrap();
    assert_eq!(blob["$type"], "blob");
    assert_eq!(blob["mimeType"], "image/png");
    assert_eq!(blob["size"], 4);
    assert!(blob["ref"]["$link"].as_str().unwrap().starts_with("bafkrei"));

    // Five more posts; pages of two, newest first, until the cursor runs out.
    for i in 0..5 {
        agent.post(&format!("post {i}")).await.unwrap();
    }
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = agent.list_records(ALICE, "app.bsky.feed.post", 2, cursor.as_deref()).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|r| r.value["text"].as_str().unwrap().to_owned()));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["post 4", "post 3", "post 2", "post 1", "post 0", text]);
    assert_eq!(pages, 4, "2 + 2 + 2 and an empty last page");

    agent.delete_record(&post.uri).await.unwrap();
    let err = agent.get_record(&post.uri).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Xrpc { status: 400, error: Some(e), .. } if e == "RecordNotFound"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_missing_names_the_scope_and_writes_nothing() {
    let pds = Pds::start().await;
    let client = pds.client();
    let agent = Agent::new(pds.login(&client, Some("atproto")).await);
    match agent.post("not allowed").await.unwrap_err() {
        ApiError::ScopeMissing { needed } => {
            assert_eq!(needed.as_deref(), Some("repo:app.bsky.feed.post?action=create"));
        }
        e => panic!("{e:?}"),
    }
    match agent.upload_blob(vec![1, 2, 3].into(), "image/png").await.unwrap_err() {
        ApiError::ScopeMissing { needed } => assert_eq!(needed.as_deref(), Some("blob:*/*")),
        e => panic!("{e:?}"),
    }
    let repo = pds.repo.lock().unwrap();
    assert!(repo.records.is_empty() && repo.blobs.is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_after_the_refresh_is_expired_token() {
    let pds = Pds::start().await;
    let client = pds.client();
    let session = pds.login(&client, None).await;
    let agent = Agent::new(session.clone());
    let post = agent.post("before").await.unwrap();
    // Every token is revoked server-side (the account signs out everywhere): the session's one
    // refresh fails, which the caller sees as the session having ended.
    session.sign_out().await.unwrap();
    let err = agent.get_record(&post.uri).await.unwrap_err();
    assert!(matches!(err, ApiError::Request(atauth_client::RequestError::Refresh(_))), "{err:?}");

    // A legacy session whose refresh token was deleted: the server's 400 ExpiredToken after the
    // one refresh attempt is ExpiredToken.
    let legacy = pds.password_login().await;
    let agent = Agent::new(legacy.clone());
    let post = agent.post("legacy").await.unwrap();
    legacy.logout().await.unwrap();
    pds.expire_access_tokens();
    let err = agent.get_record(&post.uri).await.unwrap_err();
    assert!(matches!(err, ApiError::ExpiredToken), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_carries_the_reset_time() {
    let pds = Pds::start().await;
    let client = pds.client();
    let agent = Agent::new(pds.login(&client, None).await);
    pds.repo.lock().unwrap().write_limit = Some(2);
    agent.post("one").await.unwrap();
    agent.post("two").await.unwrap();
    let now = pds.server.now();
    match agent.post("three").await.unwrap_err() {
        ApiError::RateLimited { reset } => assert_eq!(reset, Some(now + 60)),
        e => panic!("{e:?}"),
    }
    let page = agent.list_records(ALICE, "app.bsky.feed.post", 10, None).await.unwrap();
    assert_eq!(page.items.len(), 2, "the refused post was not written");
}
