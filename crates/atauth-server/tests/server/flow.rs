//! The whole flow: PAR → authorize → consent → code → tokens → resource → refresh → revoke.

use crate::common::*;
use atauth_crypto::jws;
use axum::body::Body;
use http::{Request, StatusCode};

async fn full_flow(h: &Harness) {
    let c = TestClient::loopback();
    let uri = c.par(h).await;
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:req-"));

    // The authorization page loads the pending request, repeatedly (AS-AUTHZ-01).
    let q = form(&[("client_id", &c.client_id), ("request_uri", &uri)]);
    let mut browser = Browser::new(h);
    for _ in 0..2 {
        let page = browser.get(&format!("/oauth/authorize?{q}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
        assert!(page.raw.contains("value=\"alice.test\""), "login_hint pre-filled");
        assert!(page.raw.contains("Sign in"));
    }

    // AS-AUTHZ-06: code, state and iss in the redirect.
    let redirect = c.consent(h, &uri, "alice.test").await;
    assert_eq!(get(&redirect, "state"), Some(c.state.as_str()));
    assert_eq!(get(&redirect, "iss"), Some(ISSUER));
    let code = get(&redirect, "code").unwrap().to_owned();
    assert!(code.starts_with("cod-") && code.len() == 68, "AS-CODE-01 high-entropy code");

    // The request is single use.
    let again = browser.get(&format!("/oauth/authorize?{q}")).await;
    assert_eq!((again.status, again.page_code()), (StatusCode::BAD_REQUEST, "invalid_request_uri"));

    // AS-TOK-04
    let r = c.token_with(h, &c.code_params(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["token_type"], "DPoP");
    assert_eq!(r.body["sub"], ALICE_DID);
    assert_eq!(r.body["scope"], "atproto transition:generic");
    assert_eq!(r.body["expires_in"], 900, "default access-token lifetime is 15 minutes");
    assert!(r.body["refresh_token"].as_str().unwrap().starts_with("ref-"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert!(r.header("dpop-nonce").is_some(), "AS-TOK-01 DPoP-Nonce on every response");

    // AS-FMT-02/03: an ES256 at+jwt bound to the client's DPoP key.
    let at = r.body["access_token"].as_str().unwrap().to_owned();
    let decoded = jws::decode(&at).unwrap();
    assert_eq!(decoded.header().typ.as_deref(), Some("at+jwt"));
    assert_eq!(decoded.header().alg, "ES256");
    let claims: serde_json::Value = decoded.claims().unwrap();
    assert_eq!(claims["cnf"]["jkt"], c.dpop.jkt());
    assert_eq!(claims["aud"], "did:web:pds.example.com");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["client_id"], c.client_id);

    // RS: getSession behind the DPoP extractor (RS-DPOP-01).
    let s = c.get_session(h, &at).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    assert_eq!(s.body["did"], ALICE_DID);
    assert_eq!(s.body["handle"], "alice.test");
    assert!(s.body.get("email").is_none(), "no email without transition:email (LEG-08)");
    assert!(s.header("dpop-nonce").is_some(), "RS-DPOP-03");

    // Refresh rotates (AS-REF-01); the old access token stops working at once (stateful).
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    h.advance(60);
    let r2 = c.token_with(h, &c.refresh_params(&refresh)).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.raw);
    let at2 = r2.body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = r2.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    assert_eq!(c.get_session(h, &at2).await.status, StatusCode::OK);
    let old = c.get_session(h, &at).await;
    assert_eq!((old.status, old.error()), (StatusCode::UNAUTHORIZED, "invalid_token"));

    // Revocation (AS-REV-01) ends the family.
    let revoke_proof = c.proof(h, "POST", "/oauth/revoke", None);
    let rv = h
        .post_form("/oauth/revoke", &[("token", &refresh2), ("client_id", &c.client_id)], Some(&revoke_proof))
        .await;
    assert_eq!(rv.status, StatusCode::OK, "{}", rv.raw);
    assert_eq!(c.get_session(h, &at2).await.status, StatusCode::UNAUTHORIZED);
    let r3 = c.token_with(h, &c.refresh_params(&refresh2)).await;
    assert_eq!((r3.status, r3.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn full_flow_memory_store() {
    full_flow(&Harness::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_sqlite_store() {
    full_flow(&Harness::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_keys_survive_a_restart() {
    let dir = std::env::temp_dir()
        .join(format!("atauth-restart-{}", hex::encode(atauth_crypto::random::random_bytes::<6>())));
    let h1 = Harness::with(|b| b.data_dir(&dir)).await;
    let c = TestClient::loopback();
    let tokens = c.login(&h1).await;
    drop(h1);
    // A new process: same data directory, same clock reading. Accounts are already there.
    let clock = std::sync::Arc::new(atauth_crypto::ManualClock::at_unix(T0));
    let server = builder(&clock).data_dir(&dir).build().unwrap();
    let h2 = Harness { router: atauth_server::web::router(server.clone()), server, clock };
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        c.get_session(&h2, at).await.status,
        StatusCode::OK,
        "access token verifies with the persisted key"
    );
    let r = c.token_with(&h2, &c.refresh_params(tokens["refresh_token"].as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::OK, "refresh works after restart: {}", r.raw);
    drop(h2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The SQLite default keeps DPoP `jti`s in memory (issue 18), so a restart forgets them; the nonce
/// key is bound to the process, so a proof accepted before the restart is refused after it
/// (`use_dpop_nonce`) instead of being accepted a second time (AS-DPOP-03, AS-DPOP-05).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_accepted_before_a_restart_is_refused_after_it() {
    let dir = std::env::temp_dir()
        .join(format!("atauth-replay-restart-{}", hex::encode(atauth_crypto::random::random_bytes::<6>())));
    let h1 = Harness::with(|b| b.data_dir(&dir)).await;
    let c = TestClient::loopback();
    let tokens = c.login(&h1).await;
    let at = tokens["access_token"].as_str().unwrap();
    let path = "/xrpc/com.atproto.server.getSession";
    let proof = c.proof(&h1, "GET", path, Some(at));
    let request = || {
        Request::get(path)
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", &proof)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h1.send(request()).await.status, StatusCode::OK);
    let replay = h1.send(request()).await;
    replay.assert_error(StatusCode::UNAUTHORIZED, "invalid_dpop_proof");
    assert!(replay.raw.contains("already used"), "refused as a replay: {}", replay.raw);
    let old_nonce = h1.server.dpop_nonce();
    drop(h1);

    // A new process on the same directory, at the same moment: the proof's nonce is still inside
    // its time window, but it was issued by the earlier process.
    let clock = std::sync::Arc::new(atauth_crypto::ManualClock::at_unix(T0));
    let server = builder(&clock).data_dir(&dir).build().unwrap();
    let h2 = Harness { router: atauth_server::web::router(server.clone()), server, clock };
    assert_ne!(h2.server.dpop_nonce(), old_nonce, "the restarted server issues other nonces");
    let after = h2.send(request()).await;
    after.assert_error(StatusCode::UNAUTHORIZED, "use_dpop_nonce");
    assert_eq!(after.header("dpop-nonce"), Some(h2.server.dpop_nonce().as_str()));
    // The client retries with the new nonce, as after any nonce rotation.
    assert_eq!(c.get_session(&h2, at).await.status, StatusCode::OK);
    drop(h2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn email_only_with_transition_email_scope() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let params = with(&c.par_params(), "scope", Some("atproto transition:email"));
    let r = c.par_with(&h, &params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let redirect = c.consent(&h, r.body["request_uri"].as_str().unwrap(), "alice@example.test").await;
    let t = c.token_with(&h, &c.code_params(get(&redirect, "code").unwrap())).await;
    let s = c.get_session(&h, t.body["access_token"].as_str().unwrap()).await;
    assert_eq!(s.body["email"], "alice@example.test");
}

#[tokio::test]
async fn user_can_grant_less_but_must_keep_atproto() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = c.par(&h).await;
    let base = [
        ("client_id", c.client_id.as_str()),
        ("request_uri", uri.as_str()),
        ("identifier", "alice.test"),
        ("password", PASSWORD),
    ];
    let mut p = base.to_vec();
    p.push(("scope", "transition:generic"));
    let r = h.post_form("/oauth/authorize/sign-in-and-approve", &p, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_scope"), "AS-AUTHZ-04");
    let mut p = base.to_vec();
    p.push(("scope", "atproto transition:chat.bsky"));
    let r = h.post_form("/oauth/authorize/sign-in-and-approve", &p, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_scope"), "cannot add scopes");
    let mut p = base.to_vec();
    p.push(("scope", "atproto"));
    let r = h.post_form("/oauth/authorize/sign-in-and-approve", &p, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the request survived the refusals: {}", r.raw);
    let code = get(&redirect_params(r.header("location").unwrap()), "code").unwrap().to_owned();
    let t = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!(t.body["scope"], "atproto");
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_iss() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = c.par(&h).await;
    let r = h
        .post_form(
            "/oauth/authorize/sign-in-and-approve",
            &[("client_id", &c.client_id), ("request_uri", &uri), ("decision", "deny")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let p = redirect_params(r.header("location").unwrap());
    assert_eq!(get(&p, "error"), Some("access_denied"));
    assert_eq!(get(&p, "iss"), Some(ISSUER));
    assert_eq!(get(&p, "state"), Some(c.state.as_str()));
    assert!(get(&p, "code").is_none());
}

#[tokio::test]
async fn prompt_none_redirects_login_required() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let r = c.par_with(&h, &with(&c.par_params(), "prompt", Some("none"))).await;
    let q = form(&[("client_id", &c.client_id), ("request_uri", r.body["request_uri"].as_str().unwrap())]);
    let page = h.get(&format!("/oauth/authorize?{q}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let p = redirect_params(page.header("location").unwrap());
    assert_eq!(get(&p, "error"), Some("login_required"), "AS-AUTHZ-03");
    assert_eq!(get(&p, "iss"), Some(ISSUER));
}

#[tokio::test]
async fn as_authz_07_inactive_account_cannot_authorize() {
    use atauth_server::store::AccountStatus;
    let h = Harness::new().await;
    h.server.stores().accounts.set_account_status(ALICE_DID, AccountStatus::Deactivated).await.unwrap();
    let c = TestClient::loopback();
    let uri = c.par(&h).await;
    let p = c.consent(&h, &uri, "alice.test").await;
    assert_eq!(get(&p, "error"), Some("access_denied"));
    assert!(get(&p, "code").is_none(), "nothing issued");
}

#[tokio::test]
async fn as_authz_02_login_hint_binds_the_account() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = c.par(&h).await; // login_hint alice.test
    let r = h
        .post_form(
            "/oauth/authorize/sign-in-and-approve",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("identifier", "bob.test"),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::FORBIDDEN, "access_denied"));
    // Nothing consumed: alice can still approve.
    let p = c.consent(&h, &uri, "alice.test").await;
    assert!(get(&p, "code").is_some());
}

#[tokio::test]
async fn wrong_password_issues_nothing() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = c.par(&h).await;
    let r = h
        .post_form(
            "/oauth/authorize/sign-in-and-approve",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("identifier", "alice.test"),
                ("password", "nope"),
            ],
            None,
        )
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::UNAUTHORIZED, "AuthenticationRequired"));
    let unknown = h
        .post_form(
            "/oauth/authorize/sign-in-and-approve",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("identifier", "carol.test"),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(unknown.raw, r.raw, "unknown account and wrong password look the same");
    assert!(get(&c.consent(&h, &uri, "alice.test").await, "code").is_some());
}

#[tokio::test]
async fn as_par_08_request_uri_expires_and_belongs_to_its_client() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = c.par(&h).await;
    let other = "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fother&scope=atproto";
    let r =
        h.get(&format!("/oauth/authorize?{}", form(&[("client_id", other), ("request_uri", &uri)]))).await;
    assert_eq!(
        (r.status, r.page_code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "AS-AUTHZ-01 client binding"
    );
    h.advance(300);
    let r = h
        .get(&format!("/oauth/authorize?{}", form(&[("client_id", &c.client_id), ("request_uri", &uri)])))
        .await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request_uri"));
    let r = h.get(&format!("/oauth/authorize?{}", form(&[("client_id", &c.client_id)]))).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request"), "PAR required");
}

#[tokio::test]
async fn resolve_handle_for_hosted_handles() {
    let h = Harness::new().await;
    let r = h.get("/xrpc/com.atproto.identity.resolveHandle?handle=Alice.Test").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["did"], ALICE_DID);
    let r = h.get("/xrpc/com.atproto.identity.resolveHandle?handle=carol.test").await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "HandleNotFound"));
    let r = h.get("/xrpc/com.atproto.identity.resolveHandle?handle=alice.example.com").await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "HandleNotFound"), "not a hosted domain");
}

#[tokio::test]
async fn sign_in_by_handle_did_or_email() {
    let h = Harness::new().await;
    let pw = atauth_crypto::SecretString::new(PASSWORD);
    for ident in ["alice.test", "@Alice.Test", ALICE_DID, "ALICE@example.test"] {
        assert_eq!(h.server.sign_in(ident, &pw).await.unwrap().did, ALICE_DID, "{ident}");
    }
}
