//! Legacy app-password sessions behind the same Agent interface (LEG-01, LEG-03, LEG-07, T-24).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use atauth_client::{Agent, PasswordSession, RequestError};
use atauth_identity::http::SafeHttpClient;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

fn session_body(n: u32) -> serde_json::Value {
    serde_json::json!({"did": DID, "handle": "alice.test", "accessJwt": format!("access-{n}"), "refreshJwt": format!("refresh-{n}")})
}

/// getSession: `access-0` is expired (400 ExpiredToken, as the reference PDS answers, T-24).
struct GetSession;
impl Respond for GetSession {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        match req.headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Bearer access-1") => ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"did": DID, "handle": "alice.test"})),
            Some("Bearer access-0") => ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "ExpiredToken", "message": "Token has expired"})),
            _ => ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "AuthMissing"})),
        }
    }
}

fn http() -> SafeHttpClient {
    SafeHttpClient::builder().allow_http_loopback(true).build().unwrap()
}

#[tokio::test]
async fn t24_expired_token_400_refreshes_once_with_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(0)))
        .mount(&server)
        .await;
    let refreshes = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&refreshes);
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.refreshSession"))
        .and(header("authorization", "Bearer refresh-0")) // LEG-03: the refresh token, not the access token
        .respond_with(move |_: &Request| {
            r.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(session_body(1))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(GetSession)
        .mount(&server)
        .await;

    let url = url::Url::parse(&server.uri()).unwrap();
    let session = PasswordSession::login(http(), &url, "alice.test", "app-pass", None).await.unwrap();
    let agent = Agent::new(session.clone());
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID);
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(session.export().await.access_jwt.expose_secret(), "access-1");
    let _: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(refreshes.load(Ordering::SeqCst), 1, "no refresh while the token works");
}

#[tokio::test]
async fn wrong_password_is_a_typed_xrpc_error() {
    let server = MockServer::start().await;
    Mock::given(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
        ))
        .mount(&server)
        .await;
    let url = url::Url::parse(&server.uri()).unwrap();
    let err = PasswordSession::login(http(), &url, "alice.test", "wrong", None).await.unwrap_err();
    assert_eq!(err.xrpc_error(), Some("AuthenticationRequired"));
    assert!(matches!(err, RequestError::Xrpc { status: 401, .. }));
}

#[tokio::test]
async fn failed_refresh_is_returned_not_retried_forever() {
    let server = MockServer::start().await;
    Mock::given(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(0)))
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.atproto.server.refreshSession"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"error": "ExpiredToken", "message": "Token has been revoked"}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.atproto.server.getSession")).respond_with(GetSession).mount(&server).await;
    let url = url::Url::parse(&server.uri()).unwrap();
    let agent = Agent::new(PasswordSession::login(http(), &url, "alice.test", "p", None).await.unwrap());
    let err = agent.query::<serde_json::Value>("com.atproto.server.getSession", &[]).await.unwrap_err();
    assert_eq!(err.xrpc_error(), Some("ExpiredToken"));
}

#[tokio::test]
async fn extra_headers_are_forwarded_and_credentials_refused() {
    use atauth_client::XrpcSession;
    use http::{HeaderMap, HeaderValue, Method};
    let server = MockServer::start().await;
    Mock::given(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(1)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/xrpc/app.bsky.actor.getProfile"))
        .and(header("atproto-proxy", "did:web:api.bsky.app#bsky_appview"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"did": DID})))
        .expect(1)
        .mount(&server)
        .await;
    let url = url::Url::parse(&server.uri()).unwrap();
    let session = PasswordSession::login(http(), &url, "alice.test", "p", None).await.unwrap();
    assert_eq!(session.pds_url().await.as_deref(), Some(url.as_str()));
    let mut headers = HeaderMap::new();
    headers.insert("atproto-proxy", HeaderValue::from_static("did:web:api.bsky.app#bsky_appview"));
    let res = session
        .send_xrpc_with_headers(Method::GET, "/xrpc/app.bsky.actor.getProfile?actor=x", headers, None, 4096)
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer stolen"));
    let err = session
        .send_xrpc_with_headers(Method::GET, "/xrpc/app.bsky.actor.getProfile?actor=x", headers, None, 4096)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::InvalidRequest(_)), "{err:?}");
}
