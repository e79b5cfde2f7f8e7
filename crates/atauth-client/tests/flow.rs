//! End-to-end client flows against the local mock AS/PDS, and one negative test per client check
//! that can fail, each asserting the typed error and the state afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atauth_client::*;
use atauth_crypto::{Algorithm, PrivateKey};
use atauth_identity::http::HttpError;
use atauth_oauth::OAuthErrorCode;
use common::*;

async fn login(w: &World, client: &OAuthClient, input: &str) -> OAuthSession {
    let url = client.authorize(input, AuthorizeOptions::default()).await.unwrap();
    let query = w.approve(&url);
    client.callback_query(&query).await.unwrap().session
}

#[tokio::test]
async fn login_from_handle_get_session_refresh_sign_out() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize("@Alice.TEST", AuthorizeOptions::default()).await.unwrap();
    // CL-PAR-07: only client_id and request_uri in the authorization URL.
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["client_id", "request_uri"]);
    {
        let st = w.st();
        let par = st.pars.values().next().unwrap();
        // CL-PAR-02: login_hint (lowercased), PKCE S256, state, exact redirect_uri, no secret.
        assert_eq!(par.fields["login_hint"], "alice.test");
        assert_eq!(par.fields["code_challenge_method"], "S256");
        assert_eq!(par.fields["redirect_uri"], "http://127.0.0.1:8080/callback");
        assert_eq!(par.fields["scope"], "atproto transition:generic");
        assert!(!par.fields.contains_key("client_secret"));
        assert!(par.fields["state"].len() >= 43);
        // CL-PAR-04: first PAR was a nonce challenge, retried once.
        assert_eq!(st.par_attempts, 2);
    }
    let done = client.callback_query(&w.approve(&url)).await.unwrap();
    let session = done.session;
    assert_eq!(session.did().as_str(), DID);
    let agent = Agent::new(session.clone());
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID);

    session.refresh().await.unwrap();
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(session.info().await.generation, 1);
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["handle"], HANDLE);

    let old_token = session.access_token_for_testing().await;
    session.sign_out().await.unwrap();
    assert_eq!(w.st().revoked.len(), 2, "refresh and access token revoked (CL-REV-01)");
    assert!(w.st().revoked.contains(&old_token.expose_secret().to_owned()));
    assert!(client.restore(session.key()).await.unwrap().is_none(), "removed from the store");
    let err = agent.query::<serde_json::Value>("com.atproto.server.getSession", &[]).await.unwrap_err();
    assert!(matches!(err, RequestError::Refresh(RefreshError::SessionNotFound)), "{err:?}");
}

#[tokio::test]
async fn login_from_did_and_from_pds_url() {
    let w = start(false).await;
    let client = client(&w);
    let s = login(&w, &client, DID).await;
    assert_eq!(s.did().as_str(), DID);
    assert!(w.st().pars.values().any(|p| p.fields.get("login_hint").map(String::as_str) == Some(DID)));

    let w = start(true).await;
    let client = common::client(&w);
    let url = client.authorize(&w.pds_origin, AuthorizeOptions::default()).await.unwrap();
    assert!(!w.st().pars.values().next().unwrap().fields.contains_key("login_hint"), "CL-DISC-01: no hint");
    let s = client.callback_query(&w.approve(&url)).await.unwrap().session;
    assert_eq!(s.did().as_str(), DID);
    assert_eq!(s.info().await.issuer, w.as_origin);
}

#[tokio::test]
async fn cl_cb_02_iss_mismatch_is_refused() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    w.knobs().callback_iss = Some(format!("{}/", w.as_origin));
    let err = client.callback_query(&w.approve(&url)).await.unwrap_err();
    assert!(matches!(err, CallbackError::IssuerMismatch { .. }), "{err:?}");
    assert_eq!(w.token_requests.load(Ordering::SeqCst), 0, "no code exchange");
}

#[tokio::test]
async fn cl_cb_02_missing_iss_is_refused() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    let q = w.approve(&url);
    let q: String = q.split('&').filter(|p| !p.starts_with("iss=")).collect::<Vec<_>>().join("&");
    assert!(matches!(client.callback_query(&q).await, Err(CallbackError::MissingIssuer)));
}

#[tokio::test]
async fn cl_state_01_state_is_single_use() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    let q = w.approve(&url);
    client.callback_query(&q).await.unwrap();
    assert!(matches!(client.callback_query(&q).await, Err(CallbackError::UnknownState)));
    assert!(matches!(
        client.callback_query("state=forged&code=x&iss=y").await,
        Err(CallbackError::UnknownState)
    ));
}

#[tokio::test]
async fn authorization_error_response_is_typed() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    let state = w.st().pars.values().next().unwrap().fields["state"].clone();
    let q = format!("error=access_denied&error_description=no&state={state}&iss={}", w.as_origin);
    let err = client.callback_query(&q).await.unwrap_err();
    assert!(
        matches!(err, CallbackError::AuthorizationError(ref e) if e.error == OAuthErrorCode::AccessDenied),
        "{err:?}"
    );
    drop(url);
}

#[tokio::test]
async fn cl_sub_01_sub_mismatch_revokes_tokens() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    w.knobs().token_sub = Some("did:plc:someoneelse234567abcdefg".into());
    let err = client.callback_query(&w.approve(&url)).await.unwrap_err();
    assert!(matches!(err, CallbackError::SubMismatch { .. }), "{err:?}");
    assert_eq!(w.st().revoked.len(), 2, "CL-SUB-03: tokens revoked");
}

#[tokio::test]
async fn cl_sub_02_issuer_of_sub_must_match() {
    let w = start(false).await;
    let other = start(false).await;
    let client = client(&w);
    let url = client.authorize(&w.pds_origin, AuthorizeOptions::default()).await.unwrap();
    // The account's PDS now names another (valid) authorization server.
    w.knobs().rs_issuer_override = Some(other.as_origin.clone());
    let err = client.callback_query(&w.approve(&url)).await.unwrap_err();
    assert!(matches!(err, CallbackError::IssuerNotAuthoritative { .. }), "{err:?}");
    assert_eq!(w.st().revoked.len(), 2);
}

#[tokio::test]
async fn cl_tok_02_non_dpop_token_type_is_refused() {
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    w.knobs().token_type = "Bearer".into();
    let err = client.callback_query(&w.approve(&url)).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallbackError::Token(TokenError::InvalidTokenResponse(
                atauth_oauth::TokenResponseError::NotDpop(_)
            ))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn t02_unbounded_nonce_challenges_stop_after_one_retry() {
    let w = start(false).await;
    w.knobs().always_new_nonce = true;
    let client = client(&w);
    let err = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(err, AuthorizeError::Par(TokenError::OAuth { status: 400, ref error }) if error.error == OAuthErrorCode::UseDpopNonce),
        "{err:?}"
    );
    assert_eq!(w.st().par_attempts, 2, "exactly one retry");
}

#[tokio::test]
async fn cl_disc_07_loopback_metadata_refused_without_dev_switch() {
    let w = start(false).await;
    let config = ClientConfig::loopback(&["http://127.0.0.1:8080/callback"], "atproto").unwrap();
    let client = OAuthClient::builder(config).identity_resolver(resolver(&w)).build().unwrap();
    let https = w.as_origin.replace("http://", "https://");
    let err = client.authorize(&https, AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthorizeError::Discovery(DiscoveryError::ResourceMetadataFetch(HttpError::Blocked { .. }))
        ),
        "{err:?}"
    );
    let err = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthorizeError::Discovery(DiscoveryError::ResourceMetadataFetch(
                HttpError::SchemeNotAllowed { .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(w.st().par_attempts, 0);
}

#[tokio::test]
async fn oversized_metadata_is_refused() {
    let w = start(false).await;
    w.knobs().metadata_padding = 100 * 1024;
    let err = client(&w).authorize(HANDLE, AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthorizeError::Discovery(DiscoveryError::AuthServerMetadataFetch(HttpError::TooLarge { .. }))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn t09_metadata_issuer_with_trailing_slash_is_refused() {
    let w = start(false).await;
    w.knobs().metadata_issuer_override = Some(format!("{}/", w.as_origin));
    let err = client(&w).authorize(HANDLE, AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthorizeError::Discovery(DiscoveryError::AuthServerMetadata(
                atauth_oauth::AsMetadataError::IssuerMismatch { .. }
            ))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn cl_disc_02_two_authorization_servers_are_refused() {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let origin = server.uri();
    Mock::given(path("/.well-known/oauth-protected-resource"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "resource": origin, "authorization_servers": ["https://a.example.com", "https://b.example.com"]})))
        .mount(&server)
        .await;
    let w = start(false).await;
    let err = client(&w).authorize(&server.uri(), AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthorizeError::Discovery(DiscoveryError::ResourceMetadata(
                atauth_oauth::ResourceMetadataError::MultipleAuthorizationServers { count: 2 }
            ))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn hostile_metadata_redirect_content_type_and_garbage() {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let w = start(false).await;
    let client = client(&w);
    let cases: [(ResponseTemplate, fn(&HttpError) -> bool); 4] = [
        (ResponseTemplate::new(302).insert_header("location", "https://evil.example.com/"), |e| {
            matches!(e, HttpError::Redirect { .. })
        }),
        (ResponseTemplate::new(200).set_body_raw("{}", "text/html"), |e| {
            matches!(e, HttpError::UnexpectedContentType { .. })
        }),
        (ResponseTemplate::new(200).set_body_raw("{not json", "application/json"), |e| {
            matches!(e, HttpError::InvalidJson(_))
        }),
        (ResponseTemplate::new(203).set_body_raw("{}", "application/json"), |e| {
            matches!(e, HttpError::UnexpectedStatus { .. })
        }),
    ];
    for (template, check) in cases {
        let server = MockServer::start().await;
        Mock::given(path("/.well-known/oauth-protected-resource"))
            .respond_with(template)
            .mount(&server)
            .await;
        let err = client.authorize(&server.uri(), AuthorizeOptions::default()).await.unwrap_err();
        match err {
            AuthorizeError::Discovery(DiscoveryError::ResourceMetadataFetch(ref e)) if check(e) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn slow_token_endpoint_times_out() {
    let w = start(false).await;
    let mut config = loopback_config();
    config.http_timeout = Duration::from_millis(700);
    let client = OAuthClient::builder(config).identity_resolver(resolver(&w)).build().unwrap();
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    w.knobs().token_delay = Some(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let err = client.callback_query(&w.approve(&url)).await.unwrap_err();
    assert!(matches!(err, CallbackError::Token(TokenError::Http(HttpError::Timeout))), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn cl_ref_04_invalid_grant_ends_the_session() {
    let w = start(false).await;
    let client = client(&w);
    let s = login(&w, &client, HANDLE).await;
    w.knobs().refresh_invalid_grant = true;
    let err = s.refresh().await.unwrap_err();
    assert!(
        matches!(err, RefreshError::SessionEnded(ref e) if e.error == OAuthErrorCode::InvalidGrant),
        "{err:?}"
    );
    assert!(client.restore(s.key()).await.unwrap().is_none());
}

#[tokio::test]
async fn cl_res_03_invalid_token_refreshes_once_and_retries() {
    let w = start(false).await;
    let client = client(&w);
    let agent = Agent::new(login(&w, &client, HANDLE).await);
    w.expire_access_tokens();
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID);
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cl_ref_03_refreshes_ahead_of_expiry() {
    let w = start(false).await;
    w.knobs().expires_in = 5; // inside the 10 s margin
    let client = client(&w);
    let agent = Agent::new(login(&w, &client, HANDLE).await);
    let _: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cl_ref_02_concurrent_forced_refresh_is_single_flight() {
    let w = start(false).await;
    let client = client(&w);
    let s = login(&w, &client, HANDLE).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, b) = (s.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let seen = s.info().await.generation;
            b.wait().await;
            s.refresh_if_generation(seen).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1, "exactly one refresh reached the AS");
    let me: serde_json::Value = Agent::new(s).query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID);
}

#[tokio::test]
async fn confidential_client_signs_a_fresh_assertion_per_attempt() {
    let w = start(false).await;
    let key = PrivateKey::generate(Algorithm::Es256);
    w.knobs().client_key = Some(key.public_key().clone());
    let keyset = Keyset::new().with_key("k1", key).unwrap();
    let config = ClientConfig::web_confidential(
        "https://app.example.com/client-metadata.json",
        &["https://app.example.com/callback"],
        "atproto",
        keyset,
        None,
    )
    .unwrap()
    .with_dev(dev());
    let client = OAuthClient::builder(config).identity_resolver(resolver(&w)).build().unwrap();
    let s = login(&w, &client, HANDLE).await;
    s.refresh().await.unwrap();
    let st = w.st();
    // PAR (2 attempts), token (1), refresh (1): four distinct jti (T-07), each with exp (T-08).
    assert!(st.assertion_jtis.len() >= 4, "{:?}", st.assertion_jtis);
    assert!(st.assertion_exps.iter().all(Option::is_some));
}

#[tokio::test]
async fn t03_t04_nonces_per_origin_and_htu_without_query() {
    let w = start(true).await;
    let client = client(&w);
    let agent = Agent::new(login(&w, &client, HANDLE).await);
    let _: serde_json::Value = agent.query("com.atproto.server.getSession", &[("x", "1")]).await.unwrap();
    let challenges_before = w.st().nonce_challenges;
    let _: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(w.st().nonce_challenges, challenges_before, "T-01: cached nonce reused, no new challenge");
    assert!(w.st().htus.iter().all(|h| !h.contains('?')), "T-04");
}

#[tokio::test]
async fn sign_out_without_revocation_endpoint_still_removes_the_session() {
    let w = start(false).await;
    w.knobs().no_revocation = true;
    let client = client(&w);
    let s = login(&w, &client, HANDLE).await;
    s.sign_out().await.unwrap();
    assert!(w.st().revoked.is_empty());
    assert!(client.restore(s.key()).await.unwrap().is_none());
}

#[tokio::test]
async fn xrpc_errors_are_typed_and_raw_bodies_work() {
    let w = start(false).await;
    let client = client(&w);
    let agent = Agent::new(login(&w, &client, HANDLE).await);
    let err = agent.query::<serde_json::Value>("com.example.missing", &[]).await.unwrap_err();
    assert_eq!(err.xrpc_error(), Some("RecordNotFound"));
    assert!(matches!(err, RequestError::Xrpc { status: 400, .. }));
    let out: serde_json::Value =
        agent.procedure_raw("com.example.echo", "image/png", vec![7u8; 1000].into()).await.unwrap();
    assert_eq!(out["len"], 1000);
    assert_eq!(out["contentType"], "image/png");
    let err = agent.query::<serde_json::Value>("not an nsid", &[]).await.unwrap_err();
    assert!(matches!(err, RequestError::InvalidRequest(_)));
}

#[tokio::test]
async fn restored_session_uses_the_stored_dpop_key() {
    let w = start(false).await;
    let store = Arc::new(MemoryStore::new());
    let build = || {
        OAuthClient::builder(loopback_config())
            .identity_resolver(resolver(&w))
            .state_store(store.clone())
            .session_store(store.clone())
            .build()
            .unwrap()
    };
    let key = login(&w, &build(), HANDLE).await.key().clone();
    // A new client (a restart) restores the session and refreshes with the same DPoP key (T-13).
    let restored = build().restore(&key).await.unwrap().unwrap();
    restored.refresh().await.unwrap();
    let me: serde_json::Value =
        Agent::new(restored).query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID);
}

#[tokio::test]
async fn authorize_rejects_unregistered_redirect_and_undeclared_scope() {
    let w = start(false).await;
    let client = client(&w);
    let opts =
        AuthorizeOptions { redirect_uri: Some("http://127.0.0.1:9999/other".into()), ..Default::default() };
    assert!(matches!(client.authorize(HANDLE, opts).await, Err(AuthorizeError::UnknownRedirectUri(_))));
    let opts = AuthorizeOptions { scope: Some("atproto transition:email".into()), ..Default::default() };
    assert!(matches!(client.authorize(HANDLE, opts).await, Err(AuthorizeError::InvalidScope)), "T-23");
    assert!(matches!(
        client.authorize("not a handle!", AuthorizeOptions::default()).await,
        Err(AuthorizeError::Discovery(DiscoveryError::InvalidInput(_)))
    ));
}

#[tokio::test]
async fn cl_disc_06_as_must_list_the_pds_when_it_lists_resources() {
    let w = start(false).await;
    w.knobs().protected_resources = Some(vec!["https://other-pds.example.com".into()]);
    let err = client(&w).authorize(HANDLE, AuthorizeOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthorizeError::Discovery(DiscoveryError::AuthServerMetadata(
                atauth_oauth::AsMetadataError::ResourceNotListed { .. }
            ))
        ),
        "{err:?}"
    );
    w.knobs().protected_resources = Some(vec![w.pds_origin.clone()]);
    client(&w).authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
}

#[tokio::test]
async fn cl_par_05_empty_request_uri_is_refused_and_nothing_is_stored() {
    let w = start(false).await;
    w.knobs().empty_request_uri = true;
    let store = Arc::new(MemoryStore::new());
    let client = OAuthClient::builder(loopback_config())
        .identity_resolver(resolver(&w))
        .state_store(store.clone())
        .build()
        .unwrap();
    let err = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap_err();
    assert!(matches!(err, AuthorizeError::Par(TokenError::UnexpectedStatus { status: 201 })), "{err:?}");
    let state = w.st().pars.values().next().unwrap().fields["state"].clone();
    assert!(store.take_state(&state, 0).await.unwrap().is_none(), "no pending authorization stored");
}

#[tokio::test]
async fn cl_res_02_tokens_never_leave_the_pds_origin() {
    let w = start(false).await;
    let client = client(&w);
    let session = login(&w, &client, HANDLE).await;
    for url in ["https://evil.example.com/xrpc/x", "//evil.example.com/xrpc/x"] {
        let err = session.send(http::Method::GET, url, None, None, 1024).await.unwrap_err();
        assert!(matches!(err, RequestError::InvalidRequest(_)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn cl_md_conf_05_rotated_keyset_keeps_refreshing_with_the_sessions_kid() {
    let w = start(false).await;
    let k1 = PrivateKey::generate(Algorithm::Es256);
    w.knobs().client_key = Some(k1.public_key().clone());
    let store = Arc::new(MemoryStore::new());
    let build = |keyset: Keyset| {
        let config = ClientConfig::web_confidential(
            "https://app.example.com/client-metadata.json",
            &["https://app.example.com/callback"],
            "atproto",
            keyset,
            None,
        )
        .unwrap()
        .with_dev(dev());
        OAuthClient::builder(config)
            .identity_resolver(resolver(&w))
            .state_store(store.clone())
            .session_store(store.clone())
            .build()
            .unwrap()
    };
    let key =
        login(&w, &build(Keyset::new().with_key("k1", k1.clone()).unwrap()), HANDLE).await.key().clone();
    // Rotation: a new key signs new sessions; k1 stays published for its sessions (CL-MD-CONF-05).
    let rotated = Keyset::new()
        .with_key("k2", PrivateKey::generate(Algorithm::Es256))
        .unwrap()
        .with_key("k1", k1)
        .unwrap();
    let client = build(rotated);
    assert_eq!(client.config().jwks().keys.len(), 2);
    client.restore(&key).await.unwrap().unwrap().refresh().await.unwrap();
    // Once k1 is removed, its sessions cannot refresh (and are kept for the app to handle).
    let client = build(Keyset::new().with_key("k2", PrivateKey::generate(Algorithm::Es256)).unwrap());
    let err = client.restore(&key).await.unwrap().unwrap().refresh().await.unwrap_err();
    assert!(
        matches!(err, RefreshError::Token(TokenError::ClientKeyMissing { ref kid }) if kid == "k1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_token_response_is_refused() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // A hostile AS: valid metadata, PAR ok, but a 1 MiB token response.
    let server = MockServer::start().await;
    let origin = server.uri();
    let issuer =
        atauth_oauth::Issuer::parse_with(&origin, atauth_oauth::IssuerPolicy::development()).unwrap();
    Mock::given(path("/.well-known/oauth-protected-resource"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"resource": origin, "authorization_servers": [origin]})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/.well-known/oauth-authorization-server"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(atauth_oauth::AuthorizationServerMetadata::atproto_default(&issuer)),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/par"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"request_uri": "urn:x", "expires_in": 60})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![b' '; 1024 * 1024], "application/json"))
        .mount(&server)
        .await;
    let w = start(false).await;
    let client = client(&w);
    let url = client.authorize(&origin, AuthorizeOptions::default()).await.unwrap();
    assert!(url.as_str().starts_with(&format!("{origin}/oauth/authorize?")));
    let state = {
        let reqs = server.received_requests().await.unwrap();
        let par = reqs.iter().find(|r| r.url.path() == "/oauth/par").unwrap();
        url::form_urlencoded::parse(&par.body).find(|(k, _)| k == "state").unwrap().1.into_owned()
    };
    let err = client.callback_query(&format!("code=c&state={state}&iss={origin}")).await.unwrap_err();
    assert!(matches!(err, CallbackError::Token(TokenError::Http(HttpError::TooLarge { .. }))), "{err:?}");
}

#[tokio::test]
async fn t11_issuer_change_ends_the_session_at_refresh() {
    let w = start(false).await;
    let other = start(false).await;
    let client = client(&w);
    let s = login(&w, &client, HANDLE).await;
    // The account migrated: its PDS now names another authorization server.
    w.knobs().rs_issuer_override = Some(other.as_origin.clone());
    let err = s.refresh().await.unwrap_err();
    assert!(matches!(err, RefreshError::IssuerChanged { .. }), "{err:?}");
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 0, "the old issuer was not asked");
    assert!(client.restore(s.key()).await.unwrap().is_none(), "session removed");
}

#[tokio::test]
async fn extra_headers_reach_the_pds_on_the_retry_too_and_credentials_are_refused() {
    use http::{HeaderMap, HeaderValue, Method};
    let w = start(false).await;
    let client = client(&w);
    let session = login(&w, &client, HANDLE).await;
    w.expire_access_tokens(); // the first attempt is refused: the header must survive the retry
    let mut headers = HeaderMap::new();
    headers.insert("atproto-proxy", HeaderValue::from_static("did:web:api.bsky.chat#bsky_chat"));
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    let res = session
        .send_xrpc_with_headers(Method::POST, "/xrpc/com.example.echo", headers, Some("hi".into()), 1 << 20)
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    let out: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(out["proxy"], "did:web:api.bsky.chat#bsky_chat");
    assert_eq!(out["contentType"], "text/plain");
    assert_eq!(out["len"], 2);
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1);
    let pds = XrpcSession::pds_url(&session).await.unwrap();
    assert_eq!(pds.trim_end_matches('/'), w.pds_origin);

    // The session's own credentials cannot be replaced, and nothing is sent.
    for name in ["authorization", "dpop", "host", "cookie"] {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static("x"));
        let before = w.st().htus.len();
        let err = session
            .send_xrpc_with_headers(
                Method::GET,
                "/xrpc/com.atproto.server.getSession",
                headers,
                None,
                1 << 20,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::InvalidRequest(_)), "{name}: {err:?}");
        assert_eq!(w.st().htus.len(), before, "{name}: no request sent");
    }
}
