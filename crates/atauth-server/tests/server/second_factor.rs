//! The second factor (issue 16) through the router: an authenticator app set up on the account
//! page, then the password alone no longer signs in anywhere (the authorization page, the account
//! page, the JSON consent API, the headless API, legacy `createSession`); the right code does,
//! once; a recovery code does, once; ten wrong codes lock the factor (429 with `Retry-After`)
//! until the injected clock moves on; refused posts (no CSRF token, another site) change nothing.
//! Codes are computed from the key the page shows, as an authenticator app would.

use crate::common::*;
use crate::ui::{client_redirect, decide, follow, par, sign_in, token};
use atauth_crypto::totp::{TotpSecret, time_step};
use http::{Request, StatusCode};
use serde_json::{Value, json};

const STEP: u64 = 30;

/// The code for the harness's current time.
fn code_now(h: &Harness, s: &TotpSecret) -> String {
    s.code_at_step(time_step(u64::try_from(h.now()).unwrap()))
}

/// A code that is certainly wrong now (not within one step either side).
fn wrong_code(h: &Harness, s: &TotpSecret) -> String {
    let now = time_step(u64::try_from(h.now()).unwrap());
    let good: Vec<String> = (now - 1..=now + 1).map(|t| s.code_at_step(t)).collect();
    (0..1000).map(|i| format!("{:06}", 123_456 + i)).find(|c| !good.contains(c)).unwrap()
}

/// The recovery codes shown on a page (the list under "Your recovery codes").
fn shown_codes(page: &Resp) -> Vec<String> {
    let Some((_, rest)) = page.raw.split_once("<ul class=\"codes mono\"") else { return Vec::new() };
    let list = rest.split_once("</ul>").unwrap().0;
    list.split("<li>").skip(1).map(|s| s.split_once("</li>").unwrap().0.to_owned()).collect()
}

/// Signs alice in on the account page of `b` (password only: she has no factor yet), sets up an
/// authenticator app there and confirms it with a code computed from the shown key. Returns the
/// key and the recovery codes shown once. The clock then moves one step on, so that the next
/// code is a new one.
async fn enrol(h: &Harness, b: &mut Browser<'_>) -> (TotpSecret, Vec<String>) {
    let page = b.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let page = b.get("/account").await;
    assert!(page.raw.contains("Two-step verification") && page.raw.contains("Off. Your password alone"));
    let r = b.post("/account/totp/setup", &[("csrf_token", &csrf), ("account", ALICE_DID)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let page = b.get(r.header("location").unwrap()).await;
    let key = page.raw.split_once("id=\"totp-key\" type=\"text\" class=\"mono\" value=\"").unwrap().1;
    let key = key.split_once('"').unwrap().0.to_owned();
    assert!(page.raw.contains("otpauth://totp/"), "the setup link is shown");
    let secret = TotpSecret::from_base32(&key).unwrap();
    assert!(
        h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap().is_empty(),
        "not yet stored"
    );

    // A wrong code stores nothing and shows the key again.
    let r = b
        .post(
            "/account/totp/confirm",
            &[
                ("csrf_token", &csrf),
                ("account", ALICE_DID),
                ("name", "Phone"),
                ("code", &wrong_code(h, &secret)),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.raw.contains("does not match the new key") && r.raw.contains(&key));
    assert!(h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap().is_empty());

    let r = b
        .post(
            "/account/totp/confirm",
            &[
                ("csrf_token", &csrf),
                ("account", ALICE_DID),
                ("name", "Phone"),
                ("code", &code_now(h, &secret)),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.raw.contains("Two-step verification is on."));
    let codes = shown_codes(&r);
    assert_eq!(codes.len(), 10, "ten recovery codes shown once");
    assert!(r.raw.contains("10 unused recovery codes left."));
    let page = b.get("/account").await;
    assert!(shown_codes(&page).is_empty(), "a reload does not show them again");
    assert!(page.raw.contains("Phone") && page.raw.contains("On. Signing in needs"));
    h.advance(STEP);
    (secret, codes)
}

/// A fresh request of the loopback client opened in a new browser, signed in with alice's
/// password: the second-factor step.
async fn password_step<'h>(h: &'h Harness, c: &TestClient) -> (Browser<'h>, Resp) {
    let uri = par(h, c, &[]).await;
    let mut b = Browser::new(h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.raw.contains("<h1>Two-step verification</h1>"), "{}", r.raw);
    assert!(r.raw.contains("autocomplete=\"one-time-code\"") && r.raw.contains("inputmode=\"numeric\""));
    assert!(r.raw.contains("@alice.test"));
    (b, r)
}

/// Posts the step's form of `page` with `field` = `value`.
async fn submit(b: &mut Browser<'_>, page: &Resp, field: &str, value: &str) -> Resp {
    let (client_id, uri, csrf) = (
        hidden(page, "client_id").unwrap(),
        hidden(page, "request_uri").unwrap(),
        hidden(page, "csrf_token").unwrap(),
    );
    b.post(
        "/oauth/authorize/second-factor",
        &[("client_id", &client_id), ("request_uri", &uri), ("csrf_token", &csrf), (field, value)],
    )
    .await
}

/// Whether alice is signed in on the browser `b` (per its device session).
async fn signed_in(h: &Harness, b: &Browser<'_>) -> bool {
    let Some(cookie) = &b.cookie else { return false };
    let value = cookie.split_once('=').unwrap().1;
    let id = atauth_server::store::TokenHash::of(value);
    h.server
        .stores()
        .devices
        .get_device(&id, h.now())
        .await
        .unwrap()
        .is_some_and(|d| d.accounts.iter().any(|a| a.did == ALICE_DID))
}

async fn create_session(h: &Harness, password: &str, token: Option<&str>) -> Resp {
    let mut body = json!({ "identifier": "alice.test", "password": password });
    if let Some(t) = token {
        body["authFactorToken"] = json!(t);
    }
    h.send(
        Request::post("/xrpc/com.atproto.server.createSession")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn password_alone_no_longer_signs_in_and_the_right_code_does_once() {
    let h = Harness::sqlite().await;
    let mut owner = Browser::new(&h);
    let (secret, _) = enrol(&h, &mut owner).await;
    let c = TestClient::loopback();

    let (mut b, step) = password_step(&h, &c).await;
    assert!(!signed_in(&h, &b).await, "the password alone signed nobody in");
    let uri = hidden(&step, "request_uri").unwrap();
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"), "the request still asks for a sign-in");

    let code = code_now(&h, &secret);
    let r = submit(&mut b, &step, "code", &code).await;
    assert!(signed_in(&h, &b).await);
    let consent = follow(&mut b, &r).await;
    assert!(consent.raw.contains("Allow access to your account?"), "{}", consent.raw);
    let p = client_redirect(&decide(&mut b, &consent, "allow", None).await);
    let t = token(&h, &c, get(&p, "code").unwrap()).await;
    assert_eq!(t.s("sub"), ALICE_DID);
    let f = h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap();
    assert_eq!(f[0].last_used_at, Some(h.now()));

    // The same code again, in another browser after the password: refused (RFC 6238 §5.2).
    let (mut other, step) = password_step(&h, &c).await;
    let r = submit(&mut other, &step, "code", &code).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.raw.contains("wrong or was already used"), "{}", r.raw);
    assert!(!signed_in(&h, &other).await);
    // The next step's code works.
    h.advance(STEP);
    let r = submit(&mut other, &step, "code", &code_now(&h, &secret)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(signed_in(&h, &other).await);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_the_page_counts_them() {
    let h = Harness::sqlite().await;
    let mut owner = Browser::new(&h);
    let (_, codes) = enrol(&h, &mut owner).await;
    let c = TestClient::loopback();
    let (mut b, step) = password_step(&h, &c).await;
    assert!(step.raw.contains("Use a recovery code instead") && step.raw.contains("<details"));
    // Typed in capitals with spaces instead of hyphens: still the code.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let r = submit(&mut b, &step, "recovery_code", &typed).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(signed_in(&h, &b).await);
    assert_eq!(h.server.stores().factors.unused_recovery_codes(ALICE_DID).await.unwrap(), 9);
    assert!(owner.get("/account").await.raw.contains("9 unused recovery codes left."));

    let (mut other, step) = password_step(&h, &c).await;
    let r = submit(&mut other, &step, "recovery_code", &codes[3]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.raw.contains("wrong or was already used") && r.raw.contains("<details class=\"below\" open>"));
    assert!(!signed_in(&h, &other).await);

    // New codes: the old ones die.
    let csrf = hidden(&owner.get("/account").await, "csrf_token").unwrap();
    let r = owner.post("/account/recovery-codes", &[("csrf_token", &csrf), ("account", ALICE_DID)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let fresh = shown_codes(&r);
    assert_eq!(fresh.len(), 10);
    let r = submit(&mut other, &step, "recovery_code", &codes[4]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "an old, unused code no longer works");
    let r = submit(&mut other, &step, "recovery_code", &fresh[0]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn ten_wrong_codes_lock_the_factor_until_the_window_passes() {
    let h = Harness::sqlite().await;
    let mut owner = Browser::new(&h);
    let (secret, codes) = enrol(&h, &mut owner).await;
    let c = TestClient::loopback();
    let (mut b, step) = password_step(&h, &c).await;
    for i in 0..10 {
        let r = submit(&mut b, &step, "code", &wrong_code(&h, &secret)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "wrong code {i}");
    }
    // Locked: even the right code (and a recovery code) is refused, checked not at all.
    let right = code_now(&h, &secret);
    let r = submit(&mut b, &step, "code", &right).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
    assert!(r.raw.contains("Too many wrong codes") && r.raw.contains("try again in 15 minutes"), "{}", r.raw);
    assert_eq!(r.header("retry-after"), Some("900"));
    let r = submit(&mut b, &step, "recovery_code", &codes[0]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.server.stores().factors.unused_recovery_codes(ALICE_DID).await.unwrap(), 10, "nothing used");
    let f = h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap();
    assert!(
        f[0].counter < i64::try_from(time_step(u64::try_from(h.now()).unwrap())).unwrap(),
        "step not spent"
    );
    assert!(!signed_in(&h, &b).await);
    // The lock is the account's, shared by every way in: legacy createSession too.
    let r = create_session(&h, PASSWORD, Some(&right)).await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded");

    // Fifteen minutes later one attempt is back, and the right code works (a new pending
    // sign-in: the first expired after five minutes).
    h.advance(15 * 60);
    let (mut b, step) = password_step(&h, &c).await;
    let r = submit(&mut b, &step, "code", &code_now(&h, &secret)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(signed_in(&h, &b).await);
}

/// On the account page (an app's request would expire with it): after five minutes the step
/// asks for the password again and signs nobody in.
#[tokio::test]
async fn the_pending_sign_in_expires_after_five_minutes() {
    let h = Harness::new().await;
    let mut owner = Browser::new(&h);
    let (secret, _) = enrol(&h, &mut owner).await;
    let mut b = Browser::new(&h);
    let csrf = hidden(&b.get("/account").await, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert!(r.raw.contains("<h1>Two-step verification</h1>"));
    h.advance(301);
    let r =
        b.post("/account/second-factor", &[("csrf_token", &csrf), ("code", &code_now(&h, &secret))]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.raw.contains("Signing in took too long") && r.raw.contains("action=\"/account/sign-in\""),
        "{}",
        r.raw
    );
    assert!(!signed_in(&h, &b).await);
    let f = h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap();
    assert!(
        f[0].counter < i64::try_from(time_step(u64::try_from(h.now()).unwrap())).unwrap(),
        "code unspent"
    );
}

#[tokio::test]
async fn csrf_less_or_cross_site_posts_change_nothing() {
    let h = Harness::new().await;
    let mut owner = Browser::new(&h);
    let (secret, _) = enrol(&h, &mut owner).await;
    let c = TestClient::loopback();
    let (mut b, step) = password_step(&h, &c).await;
    let (client_id, uri) = (hidden(&step, "client_id").unwrap(), hidden(&step, "request_uri").unwrap());
    let code = code_now(&h, &secret);

    let r = b
        .post(
            "/oauth/authorize/second-factor",
            &[("client_id", &client_id), ("request_uri", &uri), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.page_code(), "csrf_token_invalid");
    let csrf = hidden(&step, "csrf_token").unwrap();
    let cross = Request::post("/oauth/authorize/second-factor")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("cookie", b.cookie.clone().unwrap())
        .body(axum::body::Body::from(form(&[
            ("client_id", &client_id),
            ("request_uri", &uri),
            ("csrf_token", &csrf),
            ("code", &code),
        ])))
        .unwrap();
    let r = h.send(cross).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.page_code(), "cross_origin_request");
    assert!(!signed_in(&h, &b).await, "nobody signed in");
    let f = h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap();
    assert!(
        f[0].counter < i64::try_from(time_step(u64::try_from(h.now()).unwrap())).unwrap(),
        "code unspent"
    );
    // The same code still works from the real page.
    let r = submit(&mut b, &step, "code", &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);

    // A cross-site setup or removal changes nothing either.
    let page = owner.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let id = hidden(&page, "id").unwrap();
    let r = owner
        .post("/account/factors/remove", &[("account", ALICE_DID), ("id", &id), ("confirm", PASSWORD)])
        .await;
    assert_eq!(r.page_code(), "csrf_token_invalid");
    let r = owner
        .post(
            "/account/factors/remove",
            &[("csrf_token", &csrf), ("account", ALICE_DID), ("id", &id), ("confirm", "not-the-password")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.raw.contains("neither a current code nor your password"));
    assert_eq!(h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap().len(), 1);
    // With the password it goes, with the recovery codes, and the password alone signs in again.
    let r = owner
        .post(
            "/account/factors/remove",
            &[("csrf_token", &csrf), ("account", ALICE_DID), ("id", &id), ("confirm", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(h.server.stores().factors.factors_for_account(ALICE_DID).await.unwrap().is_empty());
    assert_eq!(h.server.stores().factors.unused_recovery_codes(ALICE_DID).await.unwrap(), 0);
    assert_eq!(create_session(&h, PASSWORD, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_account_page_sign_in_asks_for_the_code_too() {
    let h = Harness::new().await;
    let mut owner = Browser::new(&h);
    let (secret, _) = enrol(&h, &mut owner).await;
    let mut b = Browser::new(&h);
    let page = b.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.raw.contains("<h1>Two-step verification</h1>")
            && r.raw.contains("action=\"/account/second-factor\"")
    );
    assert!(!signed_in(&h, &b).await);
    let r =
        b.post("/account/second-factor", &[("csrf_token", &csrf), ("code", &wrong_code(&h, &secret))]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!signed_in(&h, &b).await);
    let r =
        b.post("/account/second-factor", &[("csrf_token", &csrf), ("code", &code_now(&h, &secret))]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(r.header("location").unwrap().ends_with("done=signed-in"));
    assert!(signed_in(&h, &b).await);
}

/// A JSON POST of the consent API from the front end of browser `b`.
async fn api(h: &Harness, b: &Browser<'_>, csrf: &str, path: &str, body: Value) -> Resp {
    h.send(
        Request::post(path)
            .header("content-type", "application/json")
            .header("origin", ISSUER)
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", csrf)
            .header("cookie", b.cookie.clone().unwrap())
            .body(axum::body::Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn json_api_answers_second_factor_required_then_signs_in_with_the_code() {
    let h = Harness::with(|b| b.consent_json_api(true)).await;
    let mut owner = Browser::new(&h);
    let (secret, _) = enrol(&h, &mut owner).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let q = form(&[("client_id", &c.client_id), ("request_uri", &uri)]);
    let r = b.get(&format!("/oauth/authorize/api/request?{q}")).await;
    let csrf = r.s("csrf_token");
    let ids = json!({ "client_id": c.client_id, "request_uri": uri });
    let with = |extra: Value| {
        let mut v = ids.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };

    let r = api(
        &h,
        &b,
        &csrf,
        "/oauth/authorize/api/sign-in",
        with(json!({"identifier": "alice.test", "password": PASSWORD})),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "second_factor_required");
    assert_eq!(r.body["factors"], json!(["totp"]));
    assert!(!signed_in(&h, &b).await);
    let r = api(&h, &b, &csrf, "/oauth/authorize/api/approve", with(json!({"account": ALICE_DID}))).await;
    r.assert_error(StatusCode::FORBIDDEN, "login_required");

    let r = api(
        &h,
        &b,
        &csrf,
        "/oauth/authorize/api/second-factor",
        with(json!({"code": wrong_code(&h, &secret)})),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let r = api(
        &h,
        &b,
        &csrf,
        "/oauth/authorize/api/second-factor",
        with(json!({"code": code_now(&h, &secret)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!((r.body["screen"].as_str(), r.body["account"].as_str()), (Some("consent"), Some(ALICE_DID)));
    let r = api(&h, &b, &csrf, "/oauth/authorize/api/approve", with(json!({"account": ALICE_DID}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let p = redirect_params(r.body["redirect"].as_str().unwrap());
    assert_eq!(token(&h, &c, get(&p, "code").unwrap()).await.s("sub"), ALICE_DID);

    // The request is used up: a late second factor finds nothing to complete.
    let r = api(&h, &b, &csrf, "/oauth/authorize/api/second-factor", with(json!({"code": "000000"}))).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request_uri");
}

#[tokio::test]
async fn the_headless_api_refuses_an_account_with_a_factor() {
    let h = Harness::new().await;
    let mut owner = Browser::new(&h);
    enrol(&h, &mut owner).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let r = h
        .post_form(
            "/oauth/authorize/sign-in-and-approve",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("identifier", "alice.test"),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "second_factor_required");
}

#[tokio::test]
async fn legacy_create_session_wants_the_auth_factor_token() {
    let h = Harness::new().await;
    // An app password made while the password alone still worked.
    let pw = atauth_crypto::SecretString::new(PASSWORD);
    let session = h.server.create_session("alice.test", &pw, None).await.unwrap();
    let access = h.server.verify_legacy_access(session.access_jwt.expose_secret()).await.unwrap();
    let app = h.server.create_app_password(&access, "legacy", false).await.unwrap();
    let mut owner = Browser::new(&h);
    let (secret, codes) = enrol(&h, &mut owner).await;

    let r = create_session(&h, PASSWORD, None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "AuthFactorTokenRequired");
    assert!(r.body["message"].as_str().unwrap().contains("authFactorToken"));
    let r = create_session(&h, PASSWORD, Some(&wrong_code(&h, &secret))).await;
    r.assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    assert_eq!(r.body["message"], "Token is invalid");
    let r = create_session(&h, PASSWORD, Some(&code_now(&h, &secret))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["did"], ALICE_DID);
    let r = create_session(&h, PASSWORD, Some(&codes[9])).await;
    assert_eq!(r.status, StatusCode::OK, "a recovery code works in authFactorToken");
    let r = create_session(&h, PASSWORD, Some(&codes[9])).await;
    r.assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    // App passwords skip the second factor, as in the reference PDS.
    let r = create_session(&h, app.password.expose_secret(), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // A wrong password is still the password's error, not the factor's.
    create_session(&h, "wrong", Some(&code_now(&h, &secret)))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired");
}

/// The step and the account page's section are in the catalog's languages (German here).
#[tokio::test]
async fn the_step_and_the_section_speak_german() {
    let h = Harness::new().await;
    let mut owner = Browser::new(&h);
    let (secret, _) = enrol(&h, &mut owner).await;
    let mut b = Browser::with_language(&h, "de-DE, en;q=0.5");
    let csrf = hidden(&b.get("/account").await, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.header("content-language"), Some("de"));
    assert!(r.raw.contains("<h1>Bestätigung in zwei Schritten</h1>") && r.raw.contains("6-stelliger Code"));
    assert!(r.raw.contains("Stattdessen einen Wiederherstellungscode verwenden"));
    let r =
        b.post("/account/second-factor", &[("csrf_token", &csrf), ("code", &wrong_code(&h, &secret))]).await;
    assert!(r.raw.contains("Dieser Code ist falsch oder wurde schon verwendet."), "{}", r.raw);
    let r =
        b.post("/account/second-factor", &[("csrf_token", &csrf), ("code", &code_now(&h, &secret))]).await;
    let page = b.get(r.header("location").unwrap()).await;
    assert!(
        page.raw.contains("An. Zur Anmeldung brauchen Sie")
            && page.raw.contains("10 unbenutzte Wiederherstellungscodes übrig.")
    );
}
