//! The account page (`/account`, issue 16) through the router with a cookie-keeping [`Browser`]:
//! what it lists, and every action with the state afterwards (the token endpoint, the resource
//! check, the consent screen, the device list, legacy sign-in). Refused POSTs (no or a wrong CSRF
//! token, another origin, no cookie, an account not signed in here) change nothing.

use crate::common::*;
use crate::ui::{client_redirect, decide, par, signed_in_consent, token};
use http::{Request, StatusCode};

/// A second loopback app (its own client id and redirect URI).
fn other_app() -> TestClient {
    TestClient {
        client_id: "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fother&scope=atproto".into(),
        redirect_uri: "http://127.0.0.1/other".into(),
        ..TestClient::loopback()
    }
}

/// Tokens of one app after a browser sign-in and consent.
struct Tokens {
    access: String,
    refresh: String,
}

/// Signs `who` in on `b` (remembered) if needed and approves a request of client `c` with `scope`;
/// returns the tokens.
async fn authorize(
    h: &Harness,
    b: &mut Browser<'_>,
    c: &TestClient,
    who: &str,
    scope: &str,
    state: &str,
) -> Tokens {
    let uri = par(h, c, &[("login_hint", None), ("scope", Some(scope)), ("state", Some(state))]).await;
    let page = b.open(&c.client_id, &uri).await;
    let redirect = if page.status == StatusCode::SEE_OTHER {
        page // consent remembered: approved without a page
    } else if page.raw.contains("<h1>Sign in</h1>") {
        let consent = signed_in_consent(b, &page, who, true).await;
        decide(b, &consent, "allow", None).await
    } else {
        decide(b, &page, "allow", None).await
    };
    assert_eq!(redirect.status, StatusCode::SEE_OTHER, "{}", redirect.raw);
    let loc = redirect.header("location").unwrap();
    assert!(loc.starts_with(&format!("{}?", c.redirect_uri)), "{loc}");
    let p = redirect_params(loc);
    assert_eq!(get(&p, "state"), Some(state));
    let t = token(h, c, get(&p, "code").unwrap()).await;
    Tokens { access: t.s("access_token"), refresh: t.s("refresh_token") }
}

async fn refresh(h: &Harness, c: &TestClient, t: &mut Tokens) -> Resp {
    let r = c.token_with(h, &c.refresh_params(&t.refresh)).await;
    if r.status == StatusCode::OK {
        (t.access, t.refresh) = (r.s("access_token"), r.s("refresh_token"));
    }
    r
}

/// The fields every account-page form carries.
fn fields<'a>(csrf: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![("csrf_token", csrf), ("account", ALICE_DID)];
    f.extend_from_slice(extra);
    f
}

fn assert_back_to_account(r: &Resp, done: &str) {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with("/account?account=did%3Aplc%3Aalice") && loc.ends_with(&format!("done={done}")),
        "{loc}"
    );
}

/// The page's device ids (the `device` fields of the sign-out forms), in page order.
fn device_ids(page: &Resp) -> Vec<String> {
    page.raw
        .split("name=\"device\" value=\"")
        .skip(1)
        .map(|s| s.split_once('"').unwrap().0.to_owned())
        .collect()
}

#[tokio::test]
async fn sign_in_on_the_account_page_and_what_it_lists() {
    let h = Harness::new().await;
    let mut b = Browser::new(&h);
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.raw.contains("<h1>Your account</h1>") && page.raw.contains("action=\"/account/sign-in\""));
    assert!(b.cookie.is_some(), "a device cookie for the form's CSRF token");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", "nope")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.raw.contains("Wrong handle, email or password.") && r.raw.contains("value=\"alice.test\""));
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert_back_to_account(&r, "signed-in");
    let page = b.get(r.header("location").unwrap()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    assert!(page.raw.contains("@alice.test") && page.raw.contains("You are signed in."));
    assert!(page.raw.contains("No app can use your account right now."));
    assert!(page.raw.contains("This device"), "the device list has this browser");

    // An app authorized in this browser shows up, in the consent screen's words.
    let c = TestClient::loopback();
    authorize(&h, &mut b, &c, "alice.test", "atproto transition:generic", "l1").await;
    h.advance(120);
    let page = b.get("/account").await;
    assert!(page.raw.contains("An app on this device"), "{}", page.raw);
    assert!(page.raw.contains(&c.client_id.replace('&', "&#38;")), "the full client_id");
    assert!(
        page.raw.contains("<code>transition:generic</code>") && page.raw.contains("<code>atproto</code>")
    );
    assert!(page.raw.contains("allowed on Unknown browser (this device)"), "{}", page.raw);
    assert!(page.raw.contains("First allowed <time datetime=\"2025-06-15T15:06:40Z\">"), "{}", page.raw);
}

#[tokio::test]
async fn sign_out_of_an_app_revokes_it_at_once_and_forgets_its_consent() {
    let h = Harness::new().await;
    let mut b = Browser::new(&h);
    let (c, other) = (TestClient::loopback(), other_app());
    let mut t = authorize(&h, &mut b, &c, "alice.test", "atproto transition:generic", "a1").await;
    let mut t2 = authorize(&h, &mut b, &other, "alice.test", "atproto", "a2").await;
    // Two families of the first app (a second login), both go.
    let mut t1b = authorize(&h, &mut b, &c, "alice.test", "atproto transition:generic", "a3").await;
    assert_eq!(c.get_session(&h, &t.access).await.status, StatusCode::OK);

    let page = b.get("/account").await;
    assert!(page.raw.contains(&other.client_id.replace('&', "&#38;")), "{}", page.raw);
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b.post("/account/apps/sign-out", &fields(&csrf, &[("client_id", &c.client_id)])).await;
    assert_back_to_account(&r, "app");
    let page = b.get(r.header("location").unwrap()).await;
    assert!(page.raw.contains("Signed out of the app."));
    assert!(!page.raw.contains(&c.client_id.replace('&', "&#38;")), "the app is gone from the list");

    // At once: the refresh grant and the resource check refuse both of its families.
    let r = refresh(&h, &c, &mut t).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{}", r.raw);
    assert_eq!(refresh(&h, &c, &mut t1b).await.error(), "invalid_grant");
    assert_eq!(c.get_session(&h, &t.access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.get_session(&h, &t1b.access).await.status, StatusCode::UNAUTHORIZED);
    // The other app is untouched.
    assert_eq!(refresh(&h, &other, &mut t2).await.status, StatusCode::OK);
    assert_eq!(other.get_session(&h, &t2.access).await.status, StatusCode::OK);

    // Its consent is forgotten: the same request asks again (and prompt=none cannot pass).
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("a4"))]).await;
    let again = b.open(&c.client_id, &uri).await;
    assert!(again.raw.contains("Allow access to your account?"), "{}", again.raw);
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("a5")), ("prompt", Some("none"))]).await;
    assert_eq!(get(&client_redirect(&b.open(&c.client_id, &uri).await), "error"), Some("consent_required"));
    // The other app's consent stays remembered: approved without a page.
    let uri =
        par(&h, &other, &[("login_hint", None), ("scope", Some("atproto")), ("state", Some("a6"))]).await;
    let r = b.open(&other.client_id, &uri).await;
    assert!(r.header("location").is_some_and(|l| l.starts_with("http://127.0.0.1/other?code=")), "{}", r.raw);
}

#[tokio::test]
async fn refused_posts_change_nothing() {
    let h = Harness::new().await;
    let mut b = Browser::new(&h);
    let c = TestClient::loopback();
    let mut t = authorize(&h, &mut b, &c, "alice.test", "atproto transition:generic", "c1").await;
    let page = b.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let cid = c.client_id.clone();
    let target = [("client_id", cid.as_str())];

    // No CSRF token, a wrong one, another browser's.
    let r = b.post("/account/apps/sign-out", &[("account", ALICE_DID), ("client_id", &cid)]).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
    let r = b.post("/account/apps/sign-out", &fields(&"0".repeat(64), &target)).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
    let mut stranger = Browser::new(&h);
    let theirs = hidden(&stranger.get("/account").await, "csrf_token").unwrap();
    let r = b.post("/account/apps/sign-out", &fields(&theirs, &target)).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
    // The stranger's own cookie with its own token: alice is not signed in there.
    let r = stranger.post("/account/apps/sign-out", &fields(&theirs, &target)).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "login_required"));
    // Cross-site, and without the cookie.
    let body = form(&fields(&csrf, &target));
    for (origin, site, cookie) in
        [("https://evil.example", "cross-site", b.cookie.clone()), (ISSUER, "same-origin", None)]
    {
        let mut req = Request::post("/account/sign-out-everywhere")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .header("sec-fetch-site", site);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = h.send(req.body(axum::body::Body::from(body.clone())).unwrap()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin} {site}");
    }
    // A bad form: not form-encoded, missing fields, a device that is not hers.
    let r = b.post("/account/apps/sign-out", &fields(&csrf, &[])).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request"));
    let r = b.post("/account/devices/sign-out", &fields(&csrf, &[("device", &"ab".repeat(32))])).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request"));
    let r = b.post("/account/app-passwords/revoke", &fields(&csrf, &[("name", "no such")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Nothing changed: the app still refreshes, its consent is remembered, alice is signed in.
    assert_eq!(refresh(&h, &c, &mut t).await.status, StatusCode::OK);
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("c2"))]).await;
    assert!(b.open(&c.client_id, &uri).await.header("location").is_some_and(|l| l.contains("code=")));
    let page = b.get("/account").await;
    assert!(page.raw.contains("@alice.test") && page.raw.contains(&c.client_id.replace('&', "&#38;")));
}

#[tokio::test]
async fn sign_out_of_a_device_and_everywhere() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut laptop = Browser::new(&h);
    laptop.ip = Some("192.0.2.10:5000".parse().unwrap());
    let mut phone = Browser::new(&h);
    phone.ip = Some("198.51.100.7:443".parse().unwrap());
    let mut on_laptop = authorize(&h, &mut laptop, &c, "alice.test", "atproto", "d1").await;
    h.advance(90);
    let mut on_phone = authorize(&h, &mut phone, &c, "alice.test", "atproto", "d2").await;
    // A legacy session too (ended only by "everywhere").
    let legacy = h
        .server
        .create_session("alice.test", &atauth_crypto::SecretString::new(PASSWORD), None)
        .await
        .unwrap();

    let page = laptop.get("/account").await;
    let ids = device_ids(&page);
    assert_eq!(ids.len(), 2, "{}", page.raw);
    assert!(page.raw.contains("Sign out of this device") && page.raw.contains("Sign out of that device"));
    assert!(
        page.raw.contains("from <span class=\"mono\">192.0.2.10</span>"),
        "the address it was last seen from"
    );
    assert!(page.raw.contains("from <span class=\"mono\">198.51.100.7</span>"));
    // This device is listed first; the phone is the other one.
    let phone_id = ids[1].clone();
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = laptop.post("/account/devices/sign-out", &fields(&csrf, &[("device", &phone_id)])).await;
    assert_back_to_account(&r, "device");
    // The phone is signed out, and the app approved on it too; the laptop's session of the same
    // app is not.
    let p = phone.get("/account").await;
    assert!(p.raw.contains("action=\"/account/sign-in\""), "the phone shows the sign-in form");
    assert_eq!(refresh(&h, &c, &mut on_phone).await.error(), "invalid_grant");
    assert_eq!(refresh(&h, &c, &mut on_laptop).await.status, StatusCode::OK);
    let page = laptop.get("/account").await;
    assert_eq!(device_ids(&page).len(), 1);

    // Everywhere: every device, every family, the legacy session.
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = laptop.post("/account/sign-out-everywhere", &fields(&csrf, &[])).await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, Some("/account")));
    assert!(laptop.get("/account").await.raw.contains("action=\"/account/sign-in\""));
    assert_eq!(refresh(&h, &c, &mut on_laptop).await.error(), "invalid_grant");
    assert_eq!(c.get_session(&h, &on_laptop.access).await.status, StatusCode::UNAUTHORIZED);
    assert!(h.server.refresh_session(legacy.refresh_jwt.expose_secret()).await.is_err());
    // Signed out: the next request asks for the password again.
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("d3"))]).await;
    assert!(laptop.open(&c.client_id, &uri).await.raw.contains("<h1>Sign in</h1>"));
}

#[tokio::test]
async fn app_passwords_are_created_once_listed_and_revoked() {
    let h = Harness::new().await;
    let mut b = Browser::new(&h);
    let page = b.get("/account").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    let page = b.get(r.header("location").unwrap()).await;
    assert!(page.raw.contains("You have no app passwords."));

    let r =
        b.post("/account/app-passwords", &fields(&csrf, &[("name", "Skeets"), ("privileged", "1")])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let password = hidden_like(&r.raw, "new-app-password").expect("the new password is shown");
    assert!(atauth_server::legacy::is_app_password_shape(&password), "{password}");
    assert!(r.raw.contains("it will not be shown again") && r.raw.contains("<h3 id=\"pw-1\">Skeets"));
    // It works for legacy sign-in, and is never shown again.
    let pw = atauth_crypto::SecretString::new(password.clone());
    let session = h.server.create_session("alice.test", &pw, None).await.unwrap();
    let page = b.get("/account").await;
    let listed = "<h3 id=\"pw-1\">Skeets <span class=\"badge unverified\">Privileged</span></h3>";
    assert!(page.raw.contains(listed) && !page.raw.contains(&password), "{}", page.raw);

    // A second one with the same name, or without a name: refused, nothing created.
    let r = b.post("/account/app-passwords", &fields(&csrf, &[("name", "Skeets")])).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.raw.contains("You already have an app password with this name.")
            && !r.raw.contains("new-app-password")
    );
    let r = b.post("/account/app-passwords", &fields(&csrf, &[("name", "  ")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.server.legacy_store().list_app_passwords(ALICE_DID).await.unwrap().len(), 1);

    let r = b.post("/account/app-passwords/revoke", &fields(&csrf, &[("name", "Skeets")])).await;
    assert_back_to_account(&r, "revoked");
    assert!(b.get("/account").await.raw.contains("You have no app passwords."));
    assert!(h.server.create_session("alice.test", &pw, None).await.is_err(), "revoked");
    assert!(
        h.server.refresh_session(session.refresh_jwt.expose_secret()).await.is_err(),
        "its session ended"
    );
}

/// The list follows what an app can still use (its refresh token and family), not the access
/// token's 15 minutes; once the family has ended, a remembered consent keeps it listed as such.
#[tokio::test]
async fn visibility_follows_the_refresh_lifetime() {
    let h = Harness::new().await;
    let mut b = Browser::new(&h);
    let c = TestClient::loopback();
    authorize(&h, &mut b, &c, "alice.test", "atproto", "v1").await;
    let app = c.client_id.replace('&', "&#38;");
    h.advance(3600);
    let page = b.get("/account").await;
    assert!(
        page.raw.contains(&app) && !page.raw.contains("not signed in (permission remembered)"),
        "{}",
        page.raw
    );
    h.advance(15 * 86_400);
    let page = b.get("/account").await;
    assert!(
        page.raw.contains(&app) && page.raw.contains("not signed in (permission remembered)"),
        "{}",
        page.raw
    );
}

/// The value of the input with this `id`.
fn hidden_like(raw: &str, id: &str) -> Option<String> {
    let rest = raw.split_once(&format!("id=\"{id}\""))?.1;
    Some(rest.split_once("value=\"")?.1.split_once('"')?.0.to_owned())
}
