//! Metadata, JWKS, CORS, limits, health and metrics.

use crate::common::*;
use atauth_server::AuthServer;
use axum::body::Body;
use http::{Request, StatusCode};

#[tokio::test]
async fn as_meta_02_authorization_server_metadata_has_every_atproto_field() {
    let h = Harness::new().await;
    let r = h.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let m = &r.body;
    let meta: atauth_oauth::AuthorizationServerMetadata = serde_json::from_value(m.clone()).unwrap();
    meta.validate_atproto(ISSUER).unwrap();
    assert_eq!(m["issuer"], ISSUER);
    assert_eq!(m["authorization_endpoint"], format!("{ISSUER}/oauth/authorize"));
    assert_eq!(m["token_endpoint"], format!("{ISSUER}/oauth/token"));
    assert_eq!(m["pushed_authorization_request_endpoint"], format!("{ISSUER}/oauth/par"));
    assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/oauth/revoke"));
    assert_eq!(m["jwks_uri"], format!("{ISSUER}/oauth/jwks"));
    assert_eq!(m["require_pushed_authorization_requests"], true);
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(m["client_id_metadata_document_supported"], true);
    assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert!(
        m["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap().iter().all(|a| a != "none")
    );
    assert!(m["dpop_signing_alg_values_supported"].as_array().unwrap().contains(&"ES256".into()));
    assert!(m["scopes_supported"].as_array().unwrap().contains(&"atproto".into()));
    assert_ne!(m["require_request_uri_registration"], false);
}

#[tokio::test]
async fn rs_meta_01_protected_resource_metadata() {
    let h = Harness::new().await;
    let r = h.get("/.well-known/oauth-protected-resource").await;
    assert_eq!(r.status, StatusCode::OK);
    let meta: atauth_oauth::ProtectedResourceMetadata = serde_json::from_value(r.body).unwrap();
    let issuer = meta.validate(ISSUER, atauth_oauth::IssuerPolicy::production()).unwrap();
    assert_eq!(issuer.as_str(), ISSUER);
}

#[tokio::test]
async fn jwks_is_public_and_rotation_keeps_old_tokens_valid() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let r = h.get("/oauth/jwks").await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 1);
    assert!(!r.raw.contains("\"d\""));
    h.server.rotate_signing_key().unwrap();
    let r = h.get("/oauth/jwks").await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 2, "old key stays published");
    assert_eq!(c.get_session(&h, t["access_token"].as_str().unwrap()).await.status, StatusCode::OK);
    let t2 = c.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    let kid = atauth_crypto::jws::decode(t2.body["access_token"].as_str().unwrap())
        .unwrap()
        .header()
        .kid
        .clone()
        .unwrap();
    assert_eq!(kid, h.server.signing_keys().current_kid(), "new tokens use the new key");
}

#[tokio::test]
async fn t21_cors_exposes_dpop_nonce_and_www_authenticate() {
    let h = Harness::new().await;
    let pre = Request::builder()
        .method("OPTIONS")
        .uri("/oauth/token")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "dpop,content-type")
        .body(Body::empty())
        .unwrap();
    let r = h.send(pre).await;
    assert!(r.status.is_success());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let allowed = r.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    assert!(allowed.contains("dpop") && allowed.contains("authorization"));
    let get = Request::get("/.well-known/oauth-authorization-server")
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    let r = h.send(get).await;
    let exposed = r.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    assert!(exposed.contains("dpop-nonce") && exposed.contains("www-authenticate"), "{exposed}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let h = Harness::with(|b| b.max_body_bytes(1024)).await;
    let req = Request::post("/oauth/par")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("client_id={}", "a".repeat(4096))))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn health_endpoint() {
    let h = Harness::new().await;
    let r = h.get("/xrpc/_health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["version"].is_string());
}

#[tokio::test]
async fn metrics_endpoint_renders_prometheus_text() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
    let h = Harness::new().await;
    let router = atauth_server::web::router_with_metrics(h.server.clone(), Some(handle));
    let h = Harness { router, ..h };
    let c = TestClient::loopback();
    c.login(&h).await;
    let r = h.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.raw.contains("atauth_http_requests_total"), "{}", r.raw);
    assert!(r.raw.contains("atauth_tokens_issued_total"));
    assert!(r.raw.contains("route=\"/oauth/token\""), "requests are labelled by route: {}", r.raw);
    assert!(!r.raw.contains("cod-") && !r.raw.contains("ref-"), "no secrets in metrics");
    assert_eq!(Harness::new().await.get("/metrics").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consent_api_can_be_disabled() {
    let h = Harness::with(|b| b.password_consent_api(false)).await;
    let r = h.post_form("/oauth/authorize/sign-in-and-approve", &[("client_id", "x")], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The headless consent API skips the consent screen, so a production server does not serve it
/// unless the operator asks; development mode does (issue 16).
#[tokio::test]
async fn consent_api_is_off_by_default_outside_development_mode() {
    let production = AuthServer::builder(ISSUER).build().unwrap();
    assert!(!production.config().password_consent_api);
    let router = atauth_server::web::router(production);
    let req = http::Request::post("/oauth/authorize/sign-in-and-approve")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("client_id=x"))
        .unwrap();
    assert_eq!(send(&router, req).await.status, StatusCode::NOT_FOUND);

    let dev = AuthServer::builder("http://localhost:2583").dev_mode(true).build().unwrap();
    assert!(dev.config().password_consent_api);
    let explicit = AuthServer::builder(ISSUER).password_consent_api(true).build().unwrap();
    assert!(explicit.config().password_consent_api);
}
