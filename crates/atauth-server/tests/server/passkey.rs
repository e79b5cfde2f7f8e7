//! Passkeys (issue 16) through the router, with a software authenticator
//! (`atauth_testkit::passkey`: a real P-256 key answering the server's options as a browser on
//! the issuer's origin would; the server verifies it as it verifies Chromium, whose own run is
//! `interop/passkey.mjs`): a passkey added on the account page is then asked for after the
//! password and signs in; an assertion made with another account's passkey is refused with its
//! own message and changes nothing; a replayed assertion and a counter that did not advance are
//! refused; challenges expire; the options calls need their CSRF protection; the JSON API takes
//! the assertion too.

use crate::common::*;
use crate::ui::{client_redirect, decide, follow, par, sign_in, token};
use atauth_testkit::passkey::SoftPasskey;
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};

/// POSTs JSON from our own pages' script: the device cookie, `Origin`, `X-CSRF-Token`.
async fn post_json(b: &Browser<'_>, path: &str, csrf: Option<&str>, body: &Value) -> Resp {
    let mut req = Request::post(path)
        .header("content-type", "application/json")
        .header("origin", ISSUER)
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = &b.cookie {
        req = req.header("cookie", c.clone());
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    b.h.send(req.body(Body::from(body.to_string())).unwrap()).await
}

/// Signs `handle` in on the account page of `b` with the password (no factor yet).
async fn account_sign_in(b: &mut Browser<'_>, handle: &str) -> String {
    let page = b.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post("/account/sign-in", &[("csrf_token", &csrf), ("identifier", handle), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    csrf
}

/// Adds a passkey named `name` to `did`, signed in on `b`, through the page's two calls.
async fn add_passkey(b: &mut Browser<'_>, csrf: &str, did: &str, name: &str, key: &mut SoftPasskey) -> Resp {
    let r = post_json(b, "/account/passkeys/options", Some(csrf), &json!({ "account": did })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let credential = key.create(&r.body["publicKey"]).to_string();
    b.post(
        "/account/passkeys",
        &[("csrf_token", csrf), ("account", did), ("name", name), ("credential", &credential)],
    )
    .await
}

/// A fresh request of `c` opened in a new browser, signed in with `handle`'s password: the
/// second-factor step.
async fn password_step<'h>(h: &'h Harness, c: &TestClient, handle: &str) -> (Browser<'h>, Resp) {
    let uri = par(h, c, &[("login_hint", Some(handle))]).await;
    let mut b = Browser::new(h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, handle, PASSWORD, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.raw.contains("<h1>Two-step verification</h1>"), "{}", r.raw);
    (b, r)
}

/// The step's passkey options (what the script fetches).
async fn sign_in_options(b: &Browser<'_>, step: &Resp) -> Resp {
    let body = json!({
        "client_id": hidden(step, "client_id").unwrap(),
        "request_uri": hidden(step, "request_uri").unwrap(),
    });
    post_json(b, "/oauth/authorize/passkey/options", hidden(step, "csrf_token").as_deref(), &body).await
}

/// Posts the step's passkey form with `credential`.
async fn submit_passkey(b: &mut Browser<'_>, step: &Resp, credential: &Value) -> Resp {
    let (client_id, uri, csrf) = (
        hidden(step, "client_id").unwrap(),
        hidden(step, "request_uri").unwrap(),
        hidden(step, "csrf_token").unwrap(),
    );
    let credential = credential.to_string();
    b.post(
        "/oauth/authorize/second-factor",
        &[
            ("client_id", &client_id),
            ("request_uri", &uri),
            ("csrf_token", &csrf),
            ("credential", &credential),
        ],
    )
    .await
}

/// Whether `did` is signed in on the browser `b` (per its device session).
async fn signed_in(h: &Harness, b: &Browser<'_>, did: &str) -> bool {
    let Some(cookie) = &b.cookie else { return false };
    let id = atauth_server::store::TokenHash::of(cookie.split_once('=').unwrap().1);
    h.server
        .stores()
        .devices
        .get_device(&id, h.now())
        .await
        .unwrap()
        .is_some_and(|d| d.accounts.iter().any(|a| a.did == did))
}

async fn passkey_counter(h: &Harness, did: &str) -> (i64, Option<i64>) {
    let f = h.server.passkeys_of(did).await.unwrap();
    (f[0].counter, f[0].last_used_at)
}

fn user_handle(did: &str) -> Vec<u8> {
    atauth_server::passkey::user_handle(did).to_vec()
}

#[tokio::test]
async fn a_passkey_added_on_the_account_page_is_then_required_and_signs_in() {
    let h = Harness::sqlite().await;
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    let page = owner.get("/account").await;
    // The section, its form hidden until the script shows it, the script, and the CSP that
    // allows it on this page only.
    assert!(page.raw.contains("<h3 id=\"passkeys-h\">Passkeys</h3>"), "{}", page.raw);
    assert!(page.raw.contains("data-passkey=\"register\"") && page.raw.contains(" hidden"));
    assert!(page.raw.contains("<script src=\"/oauth/assets/atauth-passkey.js?v="), "the script, versioned");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let js = h.get("/oauth/assets/atauth-passkey.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));

    let mut key = SoftPasskey::new(ISSUER);
    let r =
        post_json(&owner, "/account/passkeys/options", Some(&csrf), &json!({ "account": ALICE_DID })).await;
    let options = &r.body["publicKey"];
    assert_eq!(options["rp"]["id"], "pds.example.com");
    assert_eq!(options["user"]["name"], "alice.test");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "preferred");
    let credential = key.create(options).to_string();
    let added = owner
        .post(
            "/account/passkeys",
            &[("csrf_token", &csrf), ("account", ALICE_DID), ("name", "Laptop"), ("credential", &credential)],
        )
        .await;
    // The account's first factor: the answer shows its recovery codes, once.
    assert_eq!(added.status, StatusCode::OK, "{}", added.raw);
    assert!(added.raw.contains("Passkey added.") && added.raw.contains("<ul class=\"codes mono\""));
    let f = h.server.passkeys_of(ALICE_DID).await.unwrap();
    assert_eq!((f.len(), f[0].name.as_str(), f[0].counter), (1, "Laptop", 1));
    assert_eq!(f[0].credential_id.as_deref(), Some(key.id_b64().as_str()));
    let page = owner.get("/account").await;
    assert!(page.raw.contains("<li class=\"row passkey\">") && page.raw.contains("Laptop"));
    assert!(page.raw.contains("On. Signing in needs your password and one of your passkeys"));

    // The password alone no longer signs in: the step offers the passkey.
    let c = TestClient::loopback();
    let (mut b, step) = password_step(&h, &c, "alice.test").await;
    assert!(
        step.raw.contains("data-passkey=\"sign-in\"") && step.raw.contains("Use a passkey"),
        "{}",
        step.raw
    );
    assert!(step.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert!(!signed_in(&h, &b, ALICE_DID).await);
    let r = sign_in_options(&b, &step).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let options = &r.body["publicKey"];
    assert_eq!(options["allowCredentials"][0]["id"], key.id_b64().as_str());
    assert_eq!(options["rpId"], "pds.example.com");
    let assertion = key.get(options, Some(&user_handle(ALICE_DID)));
    let r = submit_passkey(&mut b, &step, &assertion).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(signed_in(&h, &b, ALICE_DID).await);
    assert_eq!(passkey_counter(&h, ALICE_DID).await, (2, Some(h.now())));
    let consent = follow(&mut b, &r).await;
    assert!(consent.raw.contains("Allow access to your account?"), "{}", consent.raw);
    let p = client_redirect(&decide(&mut b, &consent, "allow", None).await);
    let t = token(&h, &c, get(&p, "code").unwrap()).await;
    assert_eq!(t.s("sub"), ALICE_DID);
}

#[tokio::test]
async fn an_assertion_with_another_accounts_passkey_is_refused_and_changes_nothing() {
    let h = Harness::sqlite().await;
    let (mut alice_key, mut bob_key) = (SoftPasskey::new(ISSUER), SoftPasskey::new(ISSUER));
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    assert_eq!(
        add_passkey(&mut owner, &csrf, ALICE_DID, "Alice's key", &mut alice_key).await.status,
        StatusCode::OK
    );
    let csrf = account_sign_in(&mut owner, "bob.test").await;
    assert_eq!(
        add_passkey(&mut owner, &csrf, BOB_DID, "Bob's key", &mut bob_key).await.status,
        StatusCode::OK
    );

    let c = TestClient::loopback();
    let (mut b, step) = password_step(&h, &c, "bob.test").await;
    let options = sign_in_options(&b, &step).await.body["publicKey"].clone();
    // Alice's authenticator answers Bob's challenge (a confused or hostile front end offered her
    // credential): the server finds the passkey by its id, and it is Alice's.
    let alice_before = passkey_counter(&h, ALICE_DID).await;
    let r = submit_passkey(&mut b, &step, &alice_key.get(&options, Some(&user_handle(ALICE_DID)))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(r.raw.contains("<h1>Two-step verification</h1>"), "still on the step");
    assert!(r.raw.contains("This passkey belongs to another account."), "{}", r.raw);
    // Nothing changed: nobody signed in, Alice's passkey untouched, Bob's sign-in still pending
    // and his challenge still answerable.
    assert!(!signed_in(&h, &b, BOB_DID).await && !signed_in(&h, &b, ALICE_DID).await);
    assert_eq!(passkey_counter(&h, ALICE_DID).await, alice_before);
    let r = submit_passkey(&mut b, &step, &bob_key.get(&options, Some(&user_handle(BOB_DID)))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(signed_in(&h, &b, BOB_DID).await && !signed_in(&h, &b, ALICE_DID).await);
}

#[tokio::test]
async fn a_replayed_assertion_and_a_counter_that_did_not_advance_are_refused() {
    let h = Harness::sqlite().await;
    let mut key = SoftPasskey::new(ISSUER);
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    add_passkey(&mut owner, &csrf, ALICE_DID, "Laptop", &mut key).await;
    let c = TestClient::loopback();

    let (mut b, step) = password_step(&h, &c, "alice.test").await;
    let assertion = key.get(&sign_in_options(&b, &step).await.body["publicKey"], None);
    assert_eq!(submit_passkey(&mut b, &step, &assertion).await.status, StatusCode::SEE_OTHER);

    // The same assertion in another browser after the password: its challenge was another one,
    // and this browser has none either.
    let (mut other, step) = password_step(&h, &c, "alice.test").await;
    let r = submit_passkey(&mut other, &step, &assertion).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert!(r.raw.contains("The passkey prompt expired."), "{}", r.raw);
    // With a challenge of its own, the old assertion does not match it.
    sign_in_options(&other, &step).await;
    let r = submit_passkey(&mut other, &step, &assertion).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    assert!(r.raw.contains("could not be verified"), "{}", r.raw);
    assert!(!signed_in(&h, &other, ALICE_DID).await);

    // A copy of the key whose counter is behind: refused as a possible clone.
    let before = passkey_counter(&h, ALICE_DID).await;
    let options = sign_in_options(&other, &step).await.body["publicKey"].clone();
    key.counter = 1;
    let r = submit_passkey(&mut other, &step, &key.get(&options, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    assert!(r.raw.contains("may have been copied"), "{}", r.raw);
    assert!(!signed_in(&h, &other, ALICE_DID).await);
    assert_eq!(passkey_counter(&h, ALICE_DID).await, before);
}

#[tokio::test]
async fn passkey_challenges_expire_after_five_minutes() {
    let h = Harness::sqlite().await;
    let mut key = SoftPasskey::new(ISSUER);
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    let r =
        post_json(&owner, "/account/passkeys/options", Some(&csrf), &json!({ "account": ALICE_DID })).await;
    let credential = key.create(&r.body["publicKey"]).to_string();
    h.advance(301);
    let r = owner
        .post(
            "/account/passkeys",
            &[("csrf_token", &csrf), ("account", ALICE_DID), ("name", "Laptop"), ("credential", &credential)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert!(r.raw.contains("The passkey prompt expired."), "{}", r.raw);
    assert!(h.server.passkeys_of(ALICE_DID).await.unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn options_calls_need_json_the_same_origin_and_the_csrf_token() {
    let h = Harness::sqlite().await;
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    let body = json!({ "account": ALICE_DID });
    post_json(&owner, "/account/passkeys/options", None, &body)
        .await
        .assert_error(StatusCode::FORBIDDEN, "csrf_token_invalid");
    post_json(&owner, "/account/passkeys/options", Some("0".repeat(64).as_str()), &body)
        .await
        .assert_error(StatusCode::FORBIDDEN, "csrf_token_invalid");
    let form = owner.post("/account/passkeys/options", &[("account", ALICE_DID)]).await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let cross = Request::post("/account/passkeys/options")
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .header("cookie", owner.cookie.clone().unwrap())
        .header("x-csrf-token", csrf.as_str())
        .body(Body::from(body.to_string()))
        .unwrap();
    h.send(cross).await.assert_error(StatusCode::FORBIDDEN, "cross_origin_request");
    post_json(&owner, "/account/passkeys/options", Some(&csrf), &json!({ "account": BOB_DID }))
        .await
        .assert_error(StatusCode::FORBIDDEN, "login_required");
    // None of these stored a challenge: finishing finds none.
    let mut key = SoftPasskey::new(ISSUER);
    let fake = json!({ "rp": { "id": "pds.example.com" }, "challenge": "AAAA" });
    let credential = key.create(&fake).to_string();
    let r = owner
        .post(
            "/account/passkeys",
            &[("csrf_token", &csrf), ("account", ALICE_DID), ("name", "Laptop"), ("credential", &credential)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(h.server.passkeys_of(ALICE_DID).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_json_api_takes_a_passkey_as_the_second_factor() {
    let h = Harness::with(|b| {
        b.stores(atauth_server::store::Stores::single(
            atauth_server::store::SqliteStore::open_temp().unwrap(),
        ))
        .consent_json_api(true)
    })
    .await;
    let mut key = SoftPasskey::new(ISSUER);
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    add_passkey(&mut owner, &csrf, ALICE_DID, "Laptop", &mut key).await;

    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let q = form(&[("client_id", &c.client_id), ("request_uri", &uri)]);
    let described = b.get(&format!("/oauth/authorize/api/request?{q}")).await;
    let api_csrf = described.s("csrf_token");
    let ids = json!({ "client_id": c.client_id, "request_uri": uri });
    let mut sign_in = ids.clone();
    sign_in["identifier"] = json!("alice.test");
    sign_in["password"] = json!(PASSWORD);
    let r = post_json(&b, "/oauth/authorize/api/sign-in", Some(&api_csrf), &sign_in).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "second_factor_required");
    assert_eq!(r.body["factors"], json!(["passkey"]));

    let r = post_json(&b, "/oauth/authorize/api/passkey-options", Some(&api_csrf), &ids).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let assertion = key.get(&r.body["publicKey"], Some(&user_handle(ALICE_DID)));
    let mut wrong = ids.clone();
    wrong["passkey"] = SoftPasskey::new(ISSUER).get(&r.body["publicKey"], None);
    post_json(&b, "/oauth/authorize/api/second-factor", Some(&api_csrf), &wrong)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "passkey_unknown");
    let mut body = ids.clone();
    body["passkey"] = assertion;
    let r = post_json(&b, "/oauth/authorize/api/second-factor", Some(&api_csrf), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!((r.body["screen"].as_str(), r.body["account"].as_str()), (Some("consent"), Some(ALICE_DID)));
}

#[tokio::test]
async fn the_account_pages_own_sign_in_takes_a_passkey_and_german_pages_word_it() {
    let h = Harness::sqlite().await;
    let mut key = SoftPasskey::new(ISSUER);
    let mut owner = Browser::new(&h);
    let csrf = account_sign_in(&mut owner, "alice.test").await;
    add_passkey(&mut owner, &csrf, ALICE_DID, "Laptop", &mut key).await;

    // Another browser, in German: the password, then the step with the passkey first.
    let mut b = Browser::with_language(&h, "de-DE");
    let page = b.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let step = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.raw);
    assert!(
        step.raw.contains("Passkey verwenden") && step.raw.contains("Verwenden Sie Ihren Passkey"),
        "{}",
        step.raw
    );
    assert!(step.raw.contains("data-options=\"/account/sign-in/passkey-options\""));
    assert!(step.raw.contains("data-passkey-fallback"), "the note for browsers without the script");
    assert!(!signed_in(&h, &b, ALICE_DID).await);

    let r = post_json(&b, "/account/sign-in/passkey-options", Some(&csrf), &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // Another account's passkey is refused here too, in German.
    let stranger = {
        let mut other = Browser::new(&h);
        let csrf = account_sign_in(&mut other, "bob.test").await;
        let mut bob_key = SoftPasskey::new(ISSUER);
        add_passkey(&mut other, &csrf, BOB_DID, "Bob", &mut bob_key).await;
        bob_key.get(&r.body["publicKey"], None).to_string()
    };
    let refused = b.post("/account/second-factor", &[("csrf_token", &csrf), ("credential", &stranger)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.raw);
    assert!(refused.raw.contains("gehört zu einem anderen Konto"), "{}", refused.raw);
    assert!(!signed_in(&h, &b, ALICE_DID).await && !signed_in(&h, &b, BOB_DID).await);

    let credential = key.get(&r.body["publicKey"], Some(&user_handle(ALICE_DID))).to_string();
    let r = b.post("/account/second-factor", &[("csrf_token", &csrf), ("credential", &credential)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(signed_in(&h, &b, ALICE_DID).await);
    let page = b.get(r.header("location").unwrap()).await;
    assert!(page.raw.contains("<h4 id=\"passkey-1\">Laptop</h4>") && page.raw.contains("Passkey hinzufügen"));
}

#[tokio::test]
async fn pages_without_passkeys_keep_the_policy_without_scripts() {
    let h = Harness::sqlite().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(!csp.contains("script-src") && csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!page.raw.contains("<script"));
}
