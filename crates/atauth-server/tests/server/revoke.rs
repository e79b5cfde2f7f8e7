//! Revocation (RFC 7009, AS-REV-01): 200 for everything a client may not learn about; only the
//! caller's own families are revoked.

use crate::common::*;
use http::StatusCode;

async fn revoke(h: &Harness, c: &TestClient, pairs: &[(&str, &str)]) -> Resp {
    h.post_form("/oauth/revoke", pairs, Some(&c.proof(h, "POST", "/oauth/revoke", None))).await
}

#[tokio::test]
async fn as_rev_01_access_token_revokes_the_family() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let at = t["access_token"].as_str().unwrap();
    let r =
        revoke(&h, &c, &[("token", at), ("token_type_hint", "access_token"), ("client_id", &c.client_id)])
            .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("dpop-nonce").is_some());
    // Issue 15: `{}` as JSON, as the reference answers (the browser client parses it).
    assert_eq!((r.header("content-type"), r.raw.as_str()), (Some("application/json"), "{}"));
    assert_eq!(c.get_session(&h, at).await.status, StatusCode::UNAUTHORIZED);
    let r = c.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn as_rev_01_unknown_and_invalid_tokens_answer_200() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    for token in ["ref-0000", "garbage", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"] {
        let r = revoke(&h, &c, &[("token", token), ("client_id", &c.client_id)]).await;
        assert_eq!(r.status, StatusCode::OK, "{token}: {}", r.raw);
        assert_eq!(r.raw, "{}", "the same answer as for a real token");
    }
}

#[tokio::test]
async fn as_rev_01_another_clients_token_is_not_revoked() {
    let h = Harness::new().await;
    let victim = TestClient::loopback();
    let t = victim.login(&h).await;
    let other = TestClient {
        client_id: "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fother&scope=atproto".into(),
        ..TestClient::loopback()
    };
    let r = revoke(
        &h,
        &other,
        &[("token", t["refresh_token"].as_str().unwrap()), ("client_id", &other.client_id)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "no oracle");
    assert_eq!(
        victim.get_session(&h, t["access_token"].as_str().unwrap()).await.status,
        StatusCode::OK,
        "nothing revoked"
    );
}

#[tokio::test]
async fn revoke_refusals() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let r = revoke(&h, &c, &[("client_id", &c.client_id)]).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
    let r = revoke(&h, &c, &[("token", refresh)]).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
    let stale = c.dpop.proof(&atauth_crypto::dpop::ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/revoke"),
        nonce: None,
        access_token: None,
        iat: h.now(),
    });
    let r =
        h.post_form("/oauth/revoke", &[("token", refresh), ("client_id", &c.client_id)], Some(&stale)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "use_dpop_nonce"));
    assert_eq!(
        c.get_session(&h, t["access_token"].as_str().unwrap()).await.status,
        StatusCode::OK,
        "nothing revoked"
    );
}
