//! PAR negative tests (AS-PAR-01 … 08, AS-DPOP-*): each asserts status, error code, and that
//! nothing was recorded: the same client can then push a valid request with the same PKCE challenge.

use crate::common::*;
use atauth_crypto::dpop::{DpopSigner, ProofParams};
use http::StatusCode;

/// Pushes `params` (with a proof from `proof`), expects the refusal, then proves nothing was stored
/// or recorded: the valid request with the same challenge still succeeds.
async fn refused(
    h: &Harness,
    c: &TestClient,
    params: &[(&'static str, String)],
    proof: Option<String>,
    status: StatusCode,
    error: &str,
) {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let proof = proof.unwrap_or_else(|| c.proof(h, "POST", "/oauth/par", None));
    let r = h.post_form("/oauth/par", &pairs, Some(&proof)).await;
    assert_eq!((r.status, r.error()), (status, error), "{}", r.raw);
    assert!(r.body["request_uri"].is_null(), "nothing issued");
    assert!(r.header("dpop-nonce").is_some(), "AS-DPOP-03: nonce on error responses too");
    let ok = c.par_with(h, &c.par_params()).await;
    assert_eq!(ok.status, StatusCode::CREATED, "nothing recorded by the refused request: {}", ok.raw);
}

#[tokio::test]
async fn as_par_01_success_shape() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let r = c.par_with(&h, &c.par_params()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["expires_in"], 300);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("dpop-nonce").is_some());
}

#[tokio::test]
async fn as_par_01_get_is_not_allowed() {
    let h = Harness::new().await;
    assert_eq!(h.get("/oauth/par").await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn as_par_04_dpop_is_required() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let pairs: Vec<(&str, String)> = c.par_params();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/par", &pairs, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_dpop_proof"), "T-20");
    assert_eq!(c.par_with(&h, &c.par_params()).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn as_dpop_03_missing_nonce_is_use_dpop_nonce_with_header() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let proof = c.dpop.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/par"),
        nonce: None,
        access_token: None,
        iat: h.now(),
    });
    refused(&h, &c, &c.par_params(), Some(proof), StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
}

#[tokio::test]
async fn as_dpop_03_stale_nonce_is_refused_after_rotation() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let old_nonce = h.server.dpop_nonce();
    h.advance(181); // three 60 s periods later the old nonce is out of the window
    let proof = c.dpop.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/par"),
        nonce: Some(&old_nonce),
        access_token: None,
        iat: h.now(),
    });
    refused(&h, &c, &c.par_params(), Some(proof), StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
}

#[tokio::test]
async fn as_dpop_02_htu_and_htm_must_match() {
    let h = Harness::new().await;
    let nonce = h.server.dpop_nonce();
    for (method, url) in [
        ("POST", "https://other.example.com/oauth/par"),
        ("POST", "http://pds.example.com/oauth/par"),
        ("GET", "https://pds.example.com/oauth/par"),
        ("POST", "https://pds.example.com/oauth/token"),
    ] {
        let c = TestClient::loopback();
        let proof =
            c.dpop.proof(&ProofParams { method, url, nonce: Some(&nonce), access_token: None, iat: h.now() });
        refused(&h, &c, &c.par_params(), Some(proof), StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    }
}

#[tokio::test]
async fn as_dpop_04_iat_window() {
    let h = Harness::new().await;
    let nonce = h.server.dpop_nonce();
    for iat in [h.now() - 191, h.now() + 181] {
        let c = TestClient::loopback();
        let proof = c.dpop.proof(&ProofParams {
            method: "POST",
            url: &format!("{ISSUER}/oauth/par"),
            nonce: Some(&nonce),
            access_token: None,
            iat,
        });
        refused(&h, &c, &c.par_params(), Some(proof), StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    }
}

#[tokio::test]
async fn as_dpop_05_replayed_proof_is_refused() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let proof = c.proof(&h, "POST", "/oauth/par", None);
    let pairs = c.par_params();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(h.post_form("/oauth/par", &pairs, Some(&proof)).await.status, StatusCode::CREATED);
    let c2 = TestClient { dpop: c.dpop.clone(), ..TestClient::loopback() };
    let pairs2 = c2.par_params();
    let pairs2: Vec<(&str, &str)> = pairs2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/par", &pairs2, Some(&proof)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
}

#[tokio::test]
async fn as_dpop_01_two_dpop_headers_are_refused() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let req = http::Request::post("/oauth/par")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", c.proof(&h, "POST", "/oauth/par", None))
        .header("dpop", c.proof(&h, "POST", "/oauth/par", None))
        .body(axum::body::Body::from(form(
            &c.par_params().iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(),
        )))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
}

#[tokio::test]
async fn as_par_03_parameter_checks() {
    let h = Harness::new().await;
    let cases: Vec<(&'static str, Option<&str>, &str)> = vec![
        ("client_id", None, "invalid_request"),
        ("client_id", Some("http://localhost:8080"), "invalid_client"),
        ("client_id", Some("https://127.0.0.1/c.json"), "invalid_client"),
        ("response_type", Some("token"), "unsupported_response_type"),
        ("response_type", None, "unsupported_response_type"),
        ("code_challenge", None, "invalid_request"),
        ("code_challenge", Some("short"), "invalid_request"),
        ("code_challenge_method", Some("plain"), "invalid_request"),
        ("code_challenge_method", None, "invalid_request"),
        ("redirect_uri", Some("http://127.0.0.1/other"), "invalid_request"),
        ("redirect_uri", Some("http://localhost/callback"), "invalid_request"),
        ("redirect_uri", Some("http://127.0.0.1/callback?x=1"), "invalid_request"),
        ("state", None, "invalid_request"),
        ("scope", None, "invalid_scope"),
        ("scope", Some("transition:generic"), "invalid_scope"),
        ("scope", Some("atproto  transition:generic"), "invalid_scope"),
        ("scope", Some("atproto transition:chat.bsky"), "invalid_scope"),
        ("scope", Some("atproto openid"), "invalid_scope"),
        ("login_hint", Some("not a handle"), "invalid_request"),
        ("prompt", Some("bogus"), "invalid_request"),
        ("response_mode", Some("form_post"), "invalid_request"),
        ("dpop_jkt", Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "invalid_request"),
        ("request_uri", Some("urn:ietf:params:oauth:request_uri:req-x"), "invalid_request"),
        ("request", Some("eyJ.eyJ.sig"), "request_not_supported"),
        ("nonce", Some("n"), "invalid_request"),
        ("id_token_hint", Some("x"), "invalid_request"),
        ("client_assertion", Some("eyJ.eyJ.sig"), "invalid_client"),
    ];
    for (key, value, error) in cases {
        let c = TestClient::loopback();
        let params = with(&c.par_params(), key, value);
        refused(&h, &c, &params, None, StatusCode::BAD_REQUEST, error).await;
    }
}

#[tokio::test]
async fn as_par_03_include_scopes_are_refused_until_permission_sets_resolve() {
    let h = Harness::new().await;
    let c = TestClient {
        client_id: "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20include%3Acom.example.authFull".into(),
        ..TestClient::loopback()
    };
    let p = with(&c.par_params(), "scope", Some("atproto include:com.example.authFull"));
    let r = c.par_with(&h, &p).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_scope"),
        "AS-PAR-06 not implemented: refuse"
    );
}

#[tokio::test]
async fn as_par_03_granular_scopes_are_accepted_when_declared() {
    let h = Harness::new().await;
    let c = TestClient {
        client_id: "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20repo%3Aapp.bsky.feed.post".into(),
        ..TestClient::loopback()
    };
    let r = c.par_with(&h, &with(&c.par_params(), "scope", Some("atproto repo:app.bsky.feed.post"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
}

#[tokio::test]
async fn duplicate_parameters_are_refused() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut p = c.par_params();
    p.push(("scope", "atproto".into()));
    refused(&h, &c, &p, None, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn as_par_07_code_challenge_reuse_is_refused() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    assert_eq!(c.par_with(&h, &c.par_params()).await.status, StatusCode::CREATED);
    let r = c.par_with(&h, &c.par_params()).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
    assert!(r.raw.contains("code_challenge"));
}

#[tokio::test]
async fn as_par_03_loopback_redirect_port_is_ignored_and_default_redirect_used() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let r =
        c.par_with(&h, &with(&c.par_params(), "redirect_uri", Some("http://127.0.0.1:53124/callback"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "CL-MD-LOOP-03: {}", r.raw);
    let c2 = TestClient::loopback();
    let r = c2.par_with(&h, &with(&c2.par_params(), "redirect_uri", None)).await;
    assert_eq!(r.status, StatusCode::CREATED, "sole registered redirect URI is the default: {}", r.raw);
}

#[tokio::test]
async fn par_accepts_json_bodies_and_refuses_other_content_types() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let body: serde_json::Map<String, serde_json::Value> =
        c.par_params().into_iter().map(|(k, v)| (k.to_owned(), serde_json::Value::String(v))).collect();
    let req = http::Request::post("/oauth/par")
        .header("content-type", "application/json")
        .header("dpop", c.proof(&h, "POST", "/oauth/par", None))
        .body(axum::body::Body::from(serde_json::Value::Object(body).to_string()))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::CREATED);
    let req = http::Request::post("/oauth/par")
        .header("content-type", "text/plain")
        .header("dpop", c.proof(&h, "POST", "/oauth/par", None))
        .body(axum::body::Body::from("client_id=x"))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
    let _ = DpopSigner::generate();
}

/// AS-DPOP-01 at the endpoint: structurally bad proofs are `invalid_dpop_proof` and record nothing.
/// (Every RFC 9449 §4.3 check also has a unit test in atauth-crypto's DPoP suite.)
#[tokio::test]
async fn as_dpop_01_proof_structure_checks_at_the_endpoint() {
    use atauth_crypto::jws::{self, JwsHeader};
    use atauth_crypto::{Algorithm, PrivateKey, b64};
    let h = Harness::new().await;
    let key = PrivateKey::generate(Algorithm::Es256);
    let nonce = h.server.dpop_nonce();
    let claims = |jti: Option<&str>| {
        let mut c = serde_json::json!({ "htm": "POST", "htu": format!("{ISSUER}/oauth/par"), "iat": h.now(), "nonce": nonce });
        if let Some(j) = jti {
            c["jti"] = serde_json::json!(j);
        }
        c
    };
    let jwk = key.public_key().to_jwk();
    let good_header = JwsHeader::new("ES256", Some("dpop+jwt")).with_jwk(&jwk);
    let mut proofs = vec![
        (
            "typ JWT",
            jws::sign(&JwsHeader::new("ES256", Some("JWT")).with_jwk(&jwk), &claims(Some("a1")), &key)
                .unwrap(),
        ),
        ("no jwk", jws::sign(&JwsHeader::new("ES256", Some("dpop+jwt")), &claims(Some("a2")), &key).unwrap()),
        ("no jti", jws::sign(&good_header, &claims(None), &key).unwrap()),
        ("not a JWS", "not.a.jws".to_owned()),
    ];
    // `jwk` carrying the private scalar (built by hand: `with_jwk` strips private members).
    let private = serde_json::to_value(key.to_private_jwk()).unwrap();
    let header = serde_json::json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": private });
    let input =
        format!("{}.{}", b64::encode(header.to_string()), b64::encode(claims(Some("a3")).to_string()));
    proofs.push(("jwk with d", format!("{input}.{}", b64::encode(key.sign(input.as_bytes())))));
    // alg none, no signature.
    let header = serde_json::json!({ "typ": "dpop+jwt", "alg": "none", "jwk": jwk });
    proofs.push((
        "alg none",
        format!("{}.{}.", b64::encode(header.to_string()), b64::encode(claims(Some("a4")).to_string())),
    ));
    // Signed by another key than the embedded one.
    let other = PrivateKey::generate(Algorithm::Es256);
    proofs.push(("foreign signature", jws::sign(&good_header, &claims(Some("a5")), &other).unwrap()));
    for (name, proof) in proofs {
        let c = TestClient::loopback();
        let pairs = c.par_params();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = h.post_form("/oauth/par", &pairs, Some(&proof)).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            "{name}: {}",
            r.raw
        );
        assert_eq!(
            c.par_with(&h, &c.par_params()).await.status,
            StatusCode::CREATED,
            "{name}: nothing recorded"
        );
    }
}

/// RFC 9449 §10.1 (issue 15): a PAR without a `DPoP` header but with `dpop_jkt` is accepted, as the
/// reference accepts it; the code is bound to that key, so the token request must prove it.
#[tokio::test]
async fn rfc9449_10_par_with_dpop_jkt_and_no_proof_binds_the_code_to_that_key() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let params = with(&c.par_params(), "dpop_jkt", Some(c.dpop.jkt()));
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/par", &pairs, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let uri = r.body["request_uri"].as_str().unwrap().to_owned();
    let code_params = c.consent(&h, &uri, "alice.test").await;
    let code = get(&code_params, "code").unwrap().to_owned();

    // Another key at the token endpoint: refused, and the code stays redeemable (T-14).
    let thief = TestClient { dpop: DpopSigner::generate(), ..TestClient::loopback() };
    let r = thief.token_with(&h, &c.code_params(&code)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{}", r.raw);
    let r = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

/// RFC 9449 §10.1: `dpop_jkt` naming another key than the proof's is refused; a malformed one sent
/// without a proof too; with neither a proof nor `dpop_jkt` DPoP is missing (AS-PAR-04, stricter
/// than the reference: docs/DEVIATIONS.md). Nothing is stored in any case.
#[tokio::test]
async fn rfc9449_10_par_dpop_jkt_refusals() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let other = DpopSigner::generate();
    let params = with(&c.par_params(), "dpop_jkt", Some(other.jkt()));
    let r = c.par_with(&h, &params).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "{}", r.raw);

    let params = with(&c.par_params(), "dpop_jkt", Some("not-a-thumbprint"));
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/par", &pairs, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "{}", r.raw);

    let params = c.par_params();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/par", &pairs, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_dpop_proof"), "{}", r.raw);

    // Nothing was recorded: the same PKCE challenge still pushes (AS-PAR-07 not tripped).
    assert_eq!(c.par_with(&h, &c.par_params()).await.status, StatusCode::CREATED);
}
