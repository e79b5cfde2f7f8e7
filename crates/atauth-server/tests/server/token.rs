//! Token endpoint negative tests (AS-TOK-*, AS-CODE-*, AS-REF-*): status, error code, and what
//! changed (nothing for binding failures; the family for replay and mismatches).

use crate::common::*;
use atauth_crypto::dpop::{DpopSigner, ProofParams};
use http::StatusCode;

/// Refused code request; afterwards the correct request still redeems the code (nothing burned).
async fn code_refused(
    h: &Harness,
    c: &TestClient,
    code: &str,
    params: &[(&'static str, String)],
    proof: Option<String>,
    error: &str,
) {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let proof = proof.unwrap_or_else(|| c.proof(h, "POST", "/oauth/token", None));
    let r = h.post_form("/oauth/token", &pairs, Some(&proof)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, error), "{}", r.raw);
    assert!(r.body["access_token"].is_null(), "nothing issued");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let ok = c.token_with(h, &c.code_params(code)).await;
    assert_eq!(ok.status, StatusCode::OK, "the code survived the refused request: {}", ok.raw);
}

#[tokio::test]
async fn as_tok_03_binding_checks_burn_nothing() {
    let h = Harness::new().await;
    let other_verifier = atauth_crypto::pkce::PkceVerifier::generate();
    type Case = Box<dyn Fn(&TestClient, &str) -> Vec<(&'static str, String)>>;
    let cases: Vec<(Case, &str)> = vec![
        (
            Box::new(|c, code| {
                with(&c.code_params(code), "redirect_uri", Some("http://127.0.0.1:1234/callback"))
            }),
            "invalid_grant",
        ),
        (Box::new(|c, code| with(&c.code_params(code), "redirect_uri", None)), "invalid_request"),
        (Box::new(|c, code| with(&c.code_params(code), "code_verifier", None)), "invalid_request"),
        (
            Box::new(|c, code| with(&c.code_params(code), "code_verifier", Some("too-short"))),
            "invalid_request",
        ),
        (
            Box::new(move |c, code| {
                with(&c.code_params(code), "code_verifier", Some(other_verifier.expose_secret()))
            }),
            "invalid_grant",
        ),
        (
            Box::new(|c, code| {
                with(
                    &c.code_params(code),
                    "client_id",
                    Some("http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"),
                )
            }),
            "invalid_grant",
        ),
        (Box::new(|c, code| with(&c.code_params(code), "client_id", None)), "invalid_request"),
        (
            Box::new(|c, code| with(&c.code_params(code), "grant_type", Some("password"))),
            "unsupported_grant_type",
        ),
        (Box::new(|c, code| with(&c.code_params(code), "grant_type", None)), "invalid_request"),
        (Box::new(|c, code| with(&c.code_params(code), "code", Some("cod-unknown"))), "invalid_grant"),
        (Box::new(|c, code| with(&c.code_params(code), "client_assertion", Some("a.b.c"))), "invalid_client"),
    ];
    for (make, error) in cases {
        let c = TestClient::loopback();
        let code = c.authorize(&h).await;
        code_refused(&h, &c, &code, &make(&c, &code), None, error).await;
    }
}

#[tokio::test]
async fn as_tok_03_dpop_key_must_be_the_one_bound_at_par() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let thief = DpopSigner::generate();
    let proof = thief.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/token"),
        nonce: Some(&h.server.dpop_nonce()),
        access_token: None,
        iat: h.now(),
    });
    code_refused(&h, &c, &code, &c.code_params(&code), Some(proof), "invalid_grant").await;
}

#[tokio::test]
async fn t14_nonce_and_proof_errors_come_before_the_code_is_touched() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let no_nonce = c.dpop.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/token"),
        nonce: None,
        access_token: None,
        iat: h.now(),
    });
    code_refused(&h, &c, &code, &c.code_params(&code), Some(no_nonce), "use_dpop_nonce").await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let pairs = c.code_params(&code);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/token", &pairs, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
    assert_eq!(c.token_with(&h, &c.code_params(&code)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn as_code_01_codes_expire() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    h.advance(301);
    let r = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(r.body["access_token"].is_null());
}

#[tokio::test]
async fn as_code_02_reused_code_revokes_what_it_issued() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let first = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!((again.status, again.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(again.body["access_token"].is_null());
    let at = first.body["access_token"].as_str().unwrap();
    assert_eq!(c.get_session(&h, at).await.status, StatusCode::UNAUTHORIZED, "first access token revoked");
    let r = c.token_with(&h, &c.refresh_params(first.body["refresh_token"].as_str().unwrap())).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "first refresh token revoked"
    );
}

#[tokio::test]
async fn as_ref_01_replayed_refresh_token_revokes_the_family() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();
    let next = c.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!(next.status, StatusCode::OK);
    let replay = c.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(replay.raw.contains("replayed"));
    let r2 = next.body["refresh_token"].as_str().unwrap();
    let after = c.token_with(&h, &c.refresh_params(r2)).await;
    assert_eq!(
        (after.status, after.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "newest token dead too"
    );
    assert_eq!(
        c.get_session(&h, next.body["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn as_ref_02_refresh_with_another_dpop_key_revokes() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let thief = TestClient { dpop: DpopSigner::generate(), ..TestClient::loopback() };
    let r = thief.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(r.body["access_token"].is_null());
    assert_eq!(c.get_session(&h, t["access_token"].as_str().unwrap()).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn as_ref_02_refresh_from_another_client_revokes() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let other = "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fother&scope=atproto";
    let r = c
        .token_with(
            &h,
            &with(&c.refresh_params(t["refresh_token"].as_str().unwrap()), "client_id", Some(other)),
        )
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let again = c.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "family revoked");
}

#[tokio::test]
async fn as_ref_03_refresh_after_session_lifetime_fails() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    h.advance(14 * 86_400);
    let r = c.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let r = c.token_with(&h, &c.refresh_params("ref-00")).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let r = c.token_with(&h, &with(&c.refresh_params("x"), "refresh_token", None)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
}

#[tokio::test]
async fn access_tokens_never_outlive_the_session() {
    let h = Harness::with(|b| {
        b.lifetimes(atauth_server::Lifetimes {
            public_session: std::time::Duration::from_secs(600),
            ..atauth_server::Lifetimes::default()
        })
    })
    .await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    assert_eq!(t["expires_in"], 600, "AS-REF-03: capped at the session end");
}
