//! The axum routes (feature `axum`): metadata and JWKS served as 200 `application/json` (T-16), the
//! callback handler maps failures to short user-facing answers, and success reaches `on_login`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use atauth_client::axum_routes::{ClientRoutes, router};
use atauth_client::{AuthorizeOptions, ClientConfig, Keyset, OAuthClient};
use atauth_crypto::{Algorithm, PrivateKey};
use axum::response::IntoResponse;

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    base
}

#[tokio::test]
async fn metadata_and_jwks_are_served_as_json() {
    let keyset = Keyset::new().with_key("k1", PrivateKey::generate(Algorithm::Es256)).unwrap();
    let config = ClientConfig::web_confidential(
        "https://app.example.com/oauth-client-metadata.json",
        &["https://app.example.com/oauth/callback"],
        "atproto",
        keyset,
        None,
    )
    .unwrap();
    let client = OAuthClient::builder(config).build().unwrap();
    let base = serve(router(client, &ClientRoutes::default(), |_| async { "ok".into_response() })).await;
    let http = reqwest::Client::new();
    let res = http.get(format!("{base}/oauth-client-metadata.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let meta: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(meta["client_id"], "https://app.example.com/oauth-client-metadata.json");
    assert_eq!(meta["dpop_bound_access_tokens"], true);
    let res = http.get(format!("{base}/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let jwks: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert!(jwks["keys"][0].get("d").is_none(), "no private key material");
}

#[tokio::test]
async fn callback_route_logs_in_and_refuses_bad_state() {
    let w = common::start(false).await;
    let client = common::client(&w);
    let app =
        router(client.clone(), &ClientRoutes::default(), |done: atauth_client::CallbackResult| async move {
            done.session.did().to_string().into_response()
        });
    let base = serve(app).await;
    let http = reqwest::Client::new();
    let res = http.get(format!("{base}/oauth/callback?state=nope&code=x&iss=y")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let url = client.authorize(common::HANDLE, AuthorizeOptions::default()).await.unwrap();
    let res = http.get(format!("{base}/oauth/callback?{}", w.approve(&url))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), common::DID);
}
