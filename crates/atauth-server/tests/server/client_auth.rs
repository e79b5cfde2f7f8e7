//! Discoverable clients: metadata fetched through the SSRF-safe client (AS-CMD-01 … 03), and
//! confidential clients with `private_key_jwt` (AS-CAUTH-01 … 05, T-06, T-07, T-09). The client's
//! metadata is served by a local wiremock server (dev mode allows loopback http client ids).

use crate::common::*;
use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::{Algorithm, PrivateKey};
use http::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECT: &str = "https://app.example.com/callback";

struct Conf {
    mock: MockServer,
    client_id: String,
    key: PrivateKey,
    key2: PrivateKey,
}

fn metadata(client_id: &str, key: &PrivateKey, key2: &PrivateKey) -> Value {
    json!({
        "client_id": client_id,
        "application_type": "web",
        "client_name": "Confidential test client",
        "dpop_bound_access_tokens": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT],
        "response_types": ["code"],
        "scope": "atproto transition:generic",
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": { "keys": [key.public_key().to_jwk().with_kid("k1"), key2.public_key().to_jwk().with_kid("k2")] }
    })
}

async fn conf(doc: impl FnOnce(&str, &PrivateKey, &PrivateKey) -> ResponseTemplate) -> Conf {
    let mock = MockServer::start().await;
    let client_id = format!("{}/client-metadata.json", mock.uri());
    let key = PrivateKey::generate(Algorithm::Es256);
    let key2 = PrivateKey::generate(Algorithm::Es256);
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(doc(&client_id, &key, &key2))
        .mount(&mock)
        .await;
    Conf { mock, client_id, key, key2 }
}

fn ok_doc(client_id: &str, key: &PrivateKey, key2: &PrivateKey) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(metadata(client_id, key, key2).to_string(), "application/json")
}

async fn harness() -> Harness {
    Harness::with(|b| b.dev_mode(true)).await
}

fn assertion(
    h: &Harness,
    key: &PrivateKey,
    kid: Option<&str>,
    client_id: &str,
    edit: impl FnOnce(&mut Value),
) -> String {
    let mut claims = json!({
        "iss": client_id, "sub": client_id, "aud": ISSUER,
        "jti": atauth_crypto::random::generate_jti(), "iat": h.now(), "exp": h.now() + 60,
    });
    edit(&mut claims);
    let mut header = JwsHeader::new("ES256", None);
    if let Some(k) = kid {
        header = header.with_kid(k);
    }
    jws::sign(&header, &claims, key).unwrap()
}

fn client(c: &Conf) -> TestClient {
    TestClient { client_id: c.client_id.clone(), redirect_uri: REDIRECT.into(), ..TestClient::loopback() }
}

fn with_assertion(params: Vec<(&'static str, String)>, a: &str) -> Vec<(&'static str, String)> {
    let mut p = params;
    p.push(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()));
    p.push(("client_assertion", a.into()));
    p
}

#[tokio::test]
async fn confidential_client_full_flow_and_key_binding() {
    let h = harness().await;
    let c = conf(ok_doc).await;
    let tc = client(&c);
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let r = tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let redirect = tc.consent(&h, r.body["request_uri"].as_str().unwrap(), "alice.test").await;
    let code = get(&redirect, "code").unwrap().to_owned();

    // Token request without an assertion: invalid_client, nothing burned (AS-TOK-02).
    let r = tc.token_with(&h, &tc.code_params(&code)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_client"));
    // With the other published key: the binding to the PAR key fails (AS-TOK-03, AS-CAUTH-04).
    let a2 = assertion(&h, &c.key2, Some("k2"), &c.client_id, |_| {});
    let r = tc.token_with(&h, &with_assertion(tc.code_params(&code), &a2)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let t = tc.token_with(&h, &with_assertion(tc.code_params(&code), &a)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.raw);
    let refresh = t.body["refresh_token"].as_str().unwrap().to_owned();

    // Refresh without assertion: refused before the token is looked at; the family survives.
    let r = tc.token_with(&h, &tc.refresh_params(&refresh)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_client"));
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let t2 = tc.token_with(&h, &with_assertion(tc.refresh_params(&refresh), &a)).await;
    assert_eq!(t2.status, StatusCode::OK, "{}", t2.raw);
    // Refresh with another key of the client: AS-CAUTH-04, family revoked.
    let refresh2 = t2.body["refresh_token"].as_str().unwrap().to_owned();
    let a2 = assertion(&h, &c.key2, Some("k2"), &c.client_id, |_| {});
    let r = tc.token_with(&h, &with_assertion(tc.refresh_params(&refresh2), &a2)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let r = tc.token_with(&h, &with_assertion(tc.refresh_params(&refresh2), &a)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "family revoked");
}

#[tokio::test]
async fn as_cauth_assertion_checks() {
    let h = harness().await;
    let c = conf(ok_doc).await;
    let id = c.client_id.clone();
    type Edit = Box<dyn Fn(&mut Value)>;
    let now = h.now();
    let cases: Vec<(&str, Option<&str>, Edit, &str)> = vec![
        ("no kid", None, Box::new(|_| {}), "invalid_client"),
        ("unknown kid", Some("k9"), Box::new(|_| {}), "invalid_client"),
        (
            "aud = token endpoint",
            Some("k1"),
            Box::new(|v| v["aud"] = json!(format!("{ISSUER}/oauth/token"))),
            "invalid_client",
        ),
        (
            "aud with trailing slash (T-09)",
            Some("k1"),
            Box::new(|v| v["aud"] = json!(format!("{ISSUER}/"))),
            "invalid_client",
        ),
        (
            "iss",
            Some("k1"),
            Box::new(|v| v["iss"] = json!("https://evil.example.com/c.json")),
            "invalid_client",
        ),
        ("sub", Some("k1"), Box::new(|v| v["sub"] = json!("someone")), "invalid_client"),
        (
            "no jti",
            Some("k1"),
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("jti");
            }),
            "invalid_client",
        ),
        (
            "no iat",
            Some("k1"),
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("iat");
            }),
            "invalid_client",
        ),
        (
            "too old",
            Some("k1"),
            Box::new(move |v| {
                v["iat"] = json!(now - 91);
                v["exp"] = json!(now + 60);
            }),
            "invalid_client",
        ),
        (
            "too far in the future",
            Some("k1"),
            Box::new(move |v| v["iat"] = json!(now + 31)),
            "invalid_client",
        ),
        (
            "expired",
            Some("k1"),
            Box::new(move |v| {
                v["iat"] = json!(now - 50);
                v["exp"] = json!(now - 40);
            }),
            "invalid_client",
        ),
    ];
    for (name, kid, edit, error) in cases {
        let tc = client(&c);
        let a = assertion(&h, &c.key, kid, &id, |v| edit(v));
        let r = tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await;
        assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, error), "{name}: {}", r.raw);
        // Nothing recorded: the same client and PKCE with a good assertion succeed.
        let good = assertion(&h, &c.key, Some("k1"), &id, |_| {});
        assert_eq!(
            tc.par_with(&h, &with_assertion(tc.par_params(), &good)).await.status,
            StatusCode::CREATED,
            "{name}"
        );
    }
    // Missing assertion / wrong type.
    let tc = client(&c);
    assert_eq!(tc.par_with(&h, &tc.par_params()).await.error(), "invalid_client");
    let a = assertion(&h, &c.key, Some("k1"), &id, |_| {});
    let mut p = with_assertion(tc.par_params(), &a);
    p = with(&p, "client_assertion_type", Some("urn:other"));
    assert_eq!(tc.par_with(&h, &p).await.error(), "invalid_client");
    // ES256K header where ES256 is declared.
    let k256 = PrivateKey::generate(Algorithm::Es256k);
    let bad = jws::sign(
        &JwsHeader::new("ES256K", None).with_kid("k1"),
        &json!({"iss": id, "sub": id, "aud": ISSUER, "jti": "x1", "iat": now}),
        &k256,
    )
    .unwrap();
    assert_eq!(tc.par_with(&h, &with_assertion(tc.par_params(), &bad)).await.error(), "invalid_client");
}

#[tokio::test]
async fn t06_small_future_skew_is_accepted() {
    let h = harness().await;
    let c = conf(ok_doc).await;
    let tc = client(&c);
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |v| v["iat"] = json!(h.now() + 20));
    assert_eq!(tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn as_cauth_02_assertion_replay_is_refused() {
    let h = harness().await;
    let c = conf(ok_doc).await;
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let tc = client(&c);
    assert_eq!(tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await.status, StatusCode::CREATED);
    let tc2 = client(&c);
    let r = tc2.par_with(&h, &with_assertion(tc2.par_params(), &a)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_client"));
}

#[tokio::test]
async fn t07_nonce_retry_with_the_same_assertion_is_not_a_replay() {
    use atauth_crypto::dpop::ProofParams;
    let h = harness().await;
    let c = conf(ok_doc).await;
    let tc = client(&c);
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let params = with_assertion(tc.par_params(), &a);
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = tc.dpop.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/par"),
        nonce: None,
        access_token: None,
        iat: h.now(),
    });
    let r = h.post_form("/oauth/par", &pairs, Some(&first)).await;
    assert_eq!(r.error(), "use_dpop_nonce");
    let r = h.post_form("/oauth/par", &pairs, Some(&tc.proof(&h, "POST", "/oauth/par", None))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
}

#[tokio::test]
async fn as_cauth_05_dpop_key_must_differ_from_client_key() {
    let h = harness().await;
    let c = conf(ok_doc).await;
    let tc = TestClient { dpop: atauth_crypto::dpop::DpopSigner::new(c.key.clone()), ..client(&c) };
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let r = tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
}

async fn metadata_refused(doc: impl FnOnce(&str, &PrivateKey, &PrivateKey) -> ResponseTemplate, error: &str) {
    let h = harness().await;
    let c = conf(doc).await;
    let tc = client(&c);
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let r = tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, error), "{}", r.raw);
    assert!(
        h.server.stores().clients.get_client(&c.client_id, h.now()).await.unwrap().is_none(),
        "AS-CMD-03: errors are never cached"
    );
}

#[tokio::test]
async fn as_cmd_01_redirects_are_not_followed() {
    metadata_refused(
        |_, _, _| ResponseTemplate::new(302).insert_header("location", "https://elsewhere.example.com/"),
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn as_cmd_01_only_200_counts() {
    metadata_refused(|_, _, _| ResponseTemplate::new(404), "invalid_client_metadata").await;
    metadata_refused(
        |id, k, k2| {
            ResponseTemplate::new(203).set_body_raw(metadata(id, k, k2).to_string(), "application/json")
        },
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn as_cmd_01_json_content_type_only() {
    metadata_refused(
        |id, k, k2| ResponseTemplate::new(200).set_body_raw(metadata(id, k, k2).to_string(), "text/html"),
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn as_cmd_01_size_cap() {
    metadata_refused(
        |id, k, k2| {
            let mut m = metadata(id, k, k2);
            m["client_name"] = json!("x".repeat(6000));
            ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json")
        },
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn as_cmd_02_document_is_validated() {
    metadata_refused(
        |id, k, k2| {
            let mut m = metadata(id, k, k2);
            m["client_id"] = json!(format!("{id}?other"));
            ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json")
        },
        "invalid_client_metadata",
    )
    .await;
    metadata_refused(
        |id, k, k2| {
            let mut m = metadata(id, k, k2);
            m.as_object_mut().unwrap().remove("token_endpoint_auth_method");
            ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json")
        },
        "invalid_client_metadata",
    )
    .await;
    metadata_refused(
        |id, k, k2| {
            let mut m = metadata(id, k, k2);
            m["dpop_bound_access_tokens"] = json!(false);
            ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json")
        },
        "invalid_client_metadata",
    )
    .await;
    metadata_refused(
        |id, k, k2| {
            let mut m = metadata(id, k, k2);
            m["redirect_uris"] = json!(["http://app.example.com/callback"]);
            ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json")
        },
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn as_cmd_03_valid_documents_are_cached() {
    let h = harness().await;
    let mock = MockServer::start().await;
    let client_id = format!("{}/client-metadata.json", mock.uri());
    let key = PrivateKey::generate(Algorithm::Es256);
    // The first fetch fails (not cached), the second succeeds and is cached: exactly two fetches for three PARs.
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(metadata(&client_id, &key, &key).to_string(), "application/json"),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let c = Conf { mock, client_id: client_id.clone(), key: key.clone(), key2: key };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let tc = client(&c);
        let a = assertion(&h, &c.key, Some("k1"), &client_id, |_| {});
        statuses.push(tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await.status);
    }
    assert_eq!(statuses, vec![StatusCode::BAD_REQUEST, StatusCode::CREATED, StatusCode::CREATED]);
    assert!(h.server.stores().clients.get_client(&client_id, h.now()).await.unwrap().is_some());
    c.mock.verify().await;
}

#[tokio::test]
/// CL-MD-CONF-02: `jwks_uri` must be https, even in dev mode (so the fetch path cannot be driven by
/// this plain-http mock; it shares `SafeHttpClient::get_json_exact_200` with the metadata fetch).
async fn jwks_uri_must_be_https() {
    let h = harness().await;
    let mock = MockServer::start().await;
    let client_id = format!("{}/client-metadata.json", mock.uri());
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut m = metadata(&client_id, &key, &key);
    m.as_object_mut().unwrap().remove("jwks");
    m["jwks_uri"] = json!(format!("{}/jwks.json", mock.uri()));
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json"))
        .mount(&mock)
        .await;
    let jwks = json!({ "keys": [key.public_key().to_jwk().with_kid("k1")] });
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(jwks.to_string(), "application/json"))
        .mount(&mock)
        .await;
    let tc =
        TestClient { client_id: client_id.clone(), redirect_uri: REDIRECT.into(), ..TestClient::loopback() };
    let a = assertion(&h, &key, Some("k1"), &client_id, |_| {});
    let r = tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_client_metadata"), "{}", r.raw);
    assert!(r.raw.contains("jwks_uri"));
}

#[tokio::test]
async fn as_tok_05_grant_must_be_in_client_metadata() {
    let h = harness().await;
    let mock = MockServer::start().await;
    let client_id = format!("{}/client-metadata.json", mock.uri());
    let m = json!({
        "client_id": client_id, "application_type": "web", "dpop_bound_access_tokens": true,
        "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT], "response_types": ["code"],
        "scope": "atproto transition:generic", "token_endpoint_auth_method": "none"
    });
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json"))
        .mount(&mock)
        .await;
    let tc =
        TestClient { client_id: client_id.clone(), redirect_uri: REDIRECT.into(), ..TestClient::loopback() };
    let t = tc.login(&h).await;
    assert!(t.get("refresh_token").is_none(), "no refresh_token grant, no refresh token (AS-TOK-04)");
    let r = tc.token_with(&h, &tc.refresh_params("ref-whatever")).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn as_cmd_04_removing_the_bound_key_from_metadata_revokes_the_session() {
    let h = harness().await;
    let c = conf(ok_doc).await;
    let tc = client(&c);
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let r = tc.par_with(&h, &with_assertion(tc.par_params(), &a)).await;
    let redirect = tc.consent(&h, r.body["request_uri"].as_str().unwrap(), "alice.test").await;
    let a = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let t = tc.token_with(&h, &with_assertion(tc.code_params(get(&redirect, "code").unwrap()), &a)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.raw);
    let refresh = t.body["refresh_token"].as_str().unwrap().to_owned();

    // The client publishes only k2 now (k1 leaked); once our cache refetches, k1's families die.
    c.mock.reset().await;
    let mut m = metadata(&c.client_id, &c.key, &c.key2);
    m["jwks"]["keys"] = json!([c.key2.public_key().to_jwk().with_kid("k2")]);
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(m.to_string(), "application/json"))
        .mount(&c.mock)
        .await;
    h.server.invalidate_client(&c.client_id).await.unwrap();
    let old = assertion(&h, &c.key, Some("k1"), &c.client_id, |_| {});
    let r = tc.token_with(&h, &with_assertion(tc.refresh_params(&refresh), &old)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_client"));
    assert!(
        h.server
            .stores()
            .tokens
            .session_by_refresh(&atauth_server::store::RefreshKey::of(&refresh))
            .await
            .unwrap()
            .is_none(),
        "family revoked"
    );
    assert_eq!(
        tc.get_session(&h, t.body["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
}
