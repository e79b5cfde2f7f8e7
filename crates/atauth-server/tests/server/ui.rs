//! The sign-in and consent UI (`atauth_server::ui`) through the router: every branch of sign-in,
//! account choice, consent and the error pages, with a cookie-keeping [`Browser`]. Assertions are
//! on key content (no HTML snapshots), status, headers, and the state afterwards.

use crate::common::*;
use http::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

thread_local! {
    /// The PKCE verifier of the last PAR on this thread (each PAR needs a fresh challenge, AS-PAR-07).
    static LAST_PKCE: std::cell::RefCell<Option<atauth_crypto::pkce::PkceVerifier>> = const { std::cell::RefCell::new(None) };
}

/// PAR with these changes to the default parameters (login_hint alice.test) and a fresh PKCE
/// challenge; returns the request_uri. [`token`] redeems a code with the matching verifier.
pub(crate) async fn par(h: &Harness, c: &TestClient, edits: &[(&'static str, Option<&str>)]) -> String {
    let pkce = atauth_crypto::pkce::PkceVerifier::generate();
    let mut p = with(&c.par_params(), "code_challenge", Some(&pkce.challenge()));
    for (k, v) in edits {
        p = with(&p, k, *v);
    }
    let r = c.par_with(h, &p).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    LAST_PKCE.with(|l| *l.borrow_mut() = Some(pkce));
    r.body["request_uri"].as_str().unwrap().to_owned()
}

/// Redeems `code` from the last PAR's request.
pub(crate) async fn token(h: &Harness, c: &TestClient, code: &str) -> Resp {
    let verifier = LAST_PKCE.with(|l| l.borrow().as_ref().unwrap().expose_secret().to_owned());
    let r = c.token_with(h, &with(&c.code_params(code), "code_verifier", Some(&verifier))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r
}

/// Submits the sign-in form of `page`.
pub(crate) async fn sign_in(
    b: &mut Browser<'_>,
    page: &Resp,
    identifier: &str,
    password: &str,
    remember: bool,
) -> Resp {
    let (client_id, uri, csrf) = (
        hidden(page, "client_id").unwrap(),
        hidden(page, "request_uri").unwrap(),
        hidden(page, "csrf_token").unwrap(),
    );
    let mut f = vec![
        ("client_id", client_id.as_str()),
        ("request_uri", uri.as_str()),
        ("csrf_token", csrf.as_str()),
        ("identifier", identifier),
        ("password", password),
    ];
    if remember {
        f.push(("remember", "1"));
    }
    b.post("/oauth/authorize/sign-in", &f).await
}

/// Submits the consent form of `page` with `decision` and these scopes (default: as ticked).
pub(crate) async fn decide(
    b: &mut Browser<'_>,
    page: &Resp,
    decision: &str,
    scopes: Option<&[&str]>,
) -> Resp {
    let (client_id, uri, csrf) = (
        hidden(page, "client_id").unwrap(),
        hidden(page, "request_uri").unwrap(),
        hidden(page, "csrf_token").unwrap(),
    );
    let account = hidden(page, "account").unwrap_or_default();
    let ticked = ticked_scopes(page);
    let scopes: Vec<&str> =
        scopes.map_or_else(|| ticked.iter().map(String::as_str).collect(), <[&str]>::to_vec);
    let mut f = vec![
        ("client_id", client_id.as_str()),
        ("request_uri", uri.as_str()),
        ("csrf_token", csrf.as_str()),
        ("account", account.as_str()),
        ("decision", decision),
    ];
    f.extend(scopes.iter().map(|s| ("scope", *s)));
    b.post("/oauth/authorize/consent", &f).await
}

/// The scope inputs a browser would submit (hidden ones and checked boxes).
fn ticked_scopes(page: &Resp) -> Vec<String> {
    page.raw
        .split("name=\"scope\" value=\"")
        .skip(1)
        .map(|s| s.split_once('"').unwrap().0.to_owned())
        .collect()
}

/// Follows a 303 within the UI.
pub(crate) async fn follow(b: &mut Browser<'_>, r: &Resp) -> Resp {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let loc = r.header("location").unwrap().to_owned();
    assert!(loc.starts_with("/oauth/authorize?"), "stays in the UI: {loc}");
    b.get(&loc).await
}

/// Sign in on `page`, follow to the consent page.
pub(crate) async fn signed_in_consent(b: &mut Browser<'_>, page: &Resp, ident: &str, remember: bool) -> Resp {
    let r = sign_in(b, page, ident, PASSWORD, remember).await;
    let consent = follow(b, &r).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.raw);
    assert!(consent.raw.contains("Allow access to your account?"), "{}", consent.raw);
    consent
}

pub(crate) fn client_redirect(r: &Resp) -> Vec<(String, String)> {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with(LOOPBACK_REDIRECT), "{loc}");
    redirect_params(loc)
}

fn assert_ui_headers(r: &Resp) {
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no scripts at all");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn as_authz_02_sign_in_page_prefills_and_locks_the_login_hint() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_ui_headers(&page);
    assert!(page.raw.contains("<h1>Sign in</h1>"));
    assert!(page.raw.contains("value=\"alice.test\""), "login_hint pre-filled");
    assert!(page.raw.contains(" readonly"), "and locked");
    assert!(page.raw.contains("App passwords can&#39;t be used here"));
    assert!(
        page.raw.contains("to continue to <strong>an app on this device</strong>"),
        "loopback client named as such"
    );
    let set = page.header("set-cookie").unwrap();
    for attr in ["__Host-atauth-device=", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }

    // A DID hint of a local account is shown as its handle.
    let uri = par(&h, &c, &[("login_hint", Some(ALICE_DID)), ("state", Some("s2"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("value=\"alice.test\""), "{}", page.raw);
}

#[tokio::test]
async fn dev_issuer_cookie_is_not_secure() {
    // The http://localhost development issuer: browsers drop `Secure` cookies over http.
    const DEV: &str = "http://localhost:2583";
    let clock = std::sync::Arc::new(atauth_crypto::ManualClock::at_unix(T0));
    let server = atauth_server::AuthServer::builder(DEV)
        .dev_mode(true)
        .clock(clock.clone() as std::sync::Arc<dyn atauth_crypto::Clock>)
        .build()
        .unwrap();
    let h = Harness { router: atauth_server::web::router(server.clone()), server, clock };
    let c = TestClient::loopback();
    let proof = c.dpop.proof(&atauth_crypto::dpop::ProofParams {
        method: "POST",
        url: &format!("{DEV}/oauth/par"),
        nonce: Some(&h.server.dpop_nonce()),
        access_token: None,
        iat: h.now(),
    });
    let pairs: Vec<(&str, String)> = c.par_params();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/par", &pairs, Some(&proof)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let page = Browser::new(&h).open(&c.client_id, r.body["request_uri"].as_str().unwrap()).await;
    let set = page.header("set-cookie").unwrap();
    assert!(
        set.starts_with("atauth-device=") && set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
}

#[tokio::test]
async fn as_authz_06_sign_in_consent_approve_redirects_with_code_state_iss() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    assert_ui_headers(&consent);
    // Key content: the client id in full, the account, the scopes in plain words.
    assert!(
        consent.raw.contains("http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"),
        "client_id shown"
    );
    assert!(consent.raw.contains("Loopback client"));
    assert!(consent.raw.contains("@alice.test") && consent.raw.contains(ALICE_DID));
    assert!(consent.raw.contains("Know who you are") && consent.raw.contains("Always included."));
    assert!(consent.raw.contains("Read and change your account data"));
    assert!(consent.raw.contains("<code>transition:generic</code>"));
    assert_eq!(ticked_scopes(&consent), ["atproto", "transition:generic"]);
    assert!(!consent.raw.contains(">Switch<"), "a login_hint fixes the account");

    let r = decide(&mut b, &consent, "allow", None).await;
    assert_ui_headers(&r);
    let p = client_redirect(&r);
    assert_eq!(get(&p, "state"), Some(c.state.as_str()));
    assert_eq!(get(&p, "iss"), Some(ISSUER));
    let code = get(&p, "code").unwrap();
    assert!(code.starts_with("cod-"), "AS-CODE-01");
    let t = token(&h, &c, code).await;
    assert_eq!(
        (t.body["sub"].as_str(), t.body["scope"].as_str()),
        (Some(ALICE_DID), Some("atproto transition:generic"))
    );

    // AS-AUTHZ-01: the request is single use; a reload after the decision is an error page.
    let again = b.open(&c.client_id, &uri).await;
    assert_eq!((again.status, again.page_code()), (StatusCode::BAD_REQUEST, "invalid_request_uri"));
    assert!(again.raw.contains("This sign-in link has expired"));
    assert_ui_headers(&again);
    // Submitting the old consent form again issues nothing.
    let r = decide(&mut b, &consent, "allow", None).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request_uri"));
}

#[tokio::test]
async fn as_authz_06_deny_redirects_with_access_denied_and_iss() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    let p = client_redirect(&decide(&mut b, &consent, "deny", None).await);
    assert_eq!(get(&p, "error"), Some("access_denied"));
    assert_eq!(get(&p, "iss"), Some(ISSUER));
    assert_eq!(get(&p, "state"), Some(c.state.as_str()));
    assert!(get(&p, "code").is_none());

    // Cancel from the sign-in page, without signing in.
    let uri = par(&h, &c, &[("state", Some("s2"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("Cancel and return to the app"));
    let p = client_redirect(&decide(&mut b, &page, "deny", None).await);
    assert_eq!((get(&p, "error"), get(&p, "iss")), (Some("access_denied"), Some(ISSUER)));
}

#[tokio::test]
async fn wrong_csrf_token_is_403_and_changes_nothing() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let forged = format!("{}0", &csrf[..csrf.len() - 1]).replace(&csrf, "0".repeat(64).as_str());
    for token in [forged.as_str(), ""] {
        let r = b
            .post(
                "/oauth/authorize/sign-in",
                &[
                    ("client_id", &c.client_id),
                    ("request_uri", &uri),
                    ("csrf_token", token),
                    ("identifier", "alice.test"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
        assert_ui_headers(&r);
        let r = b
            .post(
                "/oauth/authorize/consent",
                &[
                    ("client_id", &c.client_id),
                    ("request_uri", &uri),
                    ("csrf_token", token),
                    ("decision", "deny"),
                ],
            )
            .await;
        assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
    }
    // Nothing changed: still not signed in, the request still open.
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"), "not signed in");
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    assert!(get(&client_redirect(&decide(&mut b, &consent, "allow", None).await), "code").is_some());
}

#[tokio::test]
async fn posts_without_cookie_or_from_another_origin_are_refused() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    let fields = [
        ("client_id", c.client_id.as_str()),
        ("request_uri", uri.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "deny"),
    ];

    // No cookie (a cross-site POST under SameSite=Lax looks like this).
    let mut stranger = Browser::new(&h);
    let r = stranger.post("/oauth/authorize/consent", &fields).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "session_expired"));

    // Another origin, even with the cookie and the token.
    let req = http::Request::post("/oauth/authorize/consent")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("cookie", b.cookie.clone().unwrap())
        .body(axum::body::Body::from(form(&fields)))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "cross_origin_request"));

    // Not a form.
    let req = http::Request::post("/oauth/authorize/consent")
        .header("content-type", "application/json")
        .header("cookie", b.cookie.clone().unwrap())
        .body(axum::body::Body::from("{}"))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::BAD_REQUEST);

    // The request survived all of it.
    let p = client_redirect(&b.post("/oauth/authorize/consent", &fields).await);
    assert_eq!(get(&p, "error"), Some("access_denied"));
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_and_signs_nobody_in() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "alice.test", "not-the-password", true).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.raw.contains("Wrong handle, email or password."));
    assert!(r.raw.contains("value=\"alice.test\""), "identifier kept");
    assert!(!r.raw.contains("not-the-password"), "password never echoed");
    let unknown = sign_in(&mut b, &page, "carol.test", PASSWORD, true).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "unknown account looks the same");
    let empty = sign_in(&mut b, &page, "alice.test", "", true).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"), "still signed out");
    // By email works.
    signed_in_consent(&mut b, &page, "ALICE@example.test", false).await;
}

#[tokio::test]
async fn as_authz_02_login_hint_mismatch_is_refused_and_nothing_is_stored() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await; // login_hint alice.test
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "bob.test", PASSWORD, true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.raw.contains("The app asked for a different account."));
    // Bob is not signed in on the device: a request without hint shows the sign-in page.
    let uri2 = par(&h, &c, &[("login_hint", None), ("state", Some("s2"))]).await;
    let page2 = b.open(&c.client_id, &uri2).await;
    assert!(page2.raw.contains("<h1>Sign in</h1>"));
    // Approving as bob by forging the consent form fails too.
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/oauth/authorize/consent",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("csrf_token", &csrf),
                ("decision", "allow"),
                ("account", BOB_DID),
                ("scope", "atproto"),
            ],
        )
        .await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "login_required"));
    // Alice can still finish.
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    assert!(get(&client_redirect(&decide(&mut b, &consent, "allow", None).await), "code").is_some());
}

#[tokio::test]
async fn as_authz_01_expired_request_is_an_error_page() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    h.advance(301);
    let r = b.open(&c.client_id, &uri).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request_uri"));
    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, false).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request_uri"));
    let r = b.get("/oauth/authorize?client_id=x&request_uri=x&request_uri=y").await;
    assert_eq!(
        (r.status, r.page_code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "duplicate parameter"
    );
}

#[tokio::test]
async fn as_par_08_request_is_bound_to_the_first_browser() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut a = Browser::new(&h);
    a.open(&c.client_id, &uri).await;
    let mut other = Browser::new(&h);
    let r = other.open(&c.client_id, &uri).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "access_denied"));
    assert!(r.raw.contains("started in another browser"));
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_identifier_and_per_ip() {
    // The default limits: 10 per (identifier, address) then one a minute; 30 per address then one
    // per 10 s.
    let h = Harness::with(|b| b.sign_in_limits(atauth_server::SignInLimits::default())).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut b = Browser::new(&h);
    b.ip = Some("192.0.2.10:5000".parse().unwrap());
    let page = b.open(&c.client_id, &uri).await;
    for _ in 0..10 {
        assert_eq!(
            sign_in(&mut b, &page, "alice.test", "wrong", false).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, false).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(
        r.raw.contains("Too many sign-in attempts. For your security, try again in 60 seconds."),
        "{}",
        r.raw
    );
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(b.open(&c.client_id, &uri).await.raw.contains("<h1>Sign in</h1>"), "nobody signed in");
    h.advance(60);
    signed_in_consent(&mut b, &page, "alice.test", false).await;

    // Per address: 30 attempts (whatever the identifier), then refused.
    let h = Harness::with(|b| b.sign_in_limits(atauth_server::SignInLimits::default())).await;
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut b = Browser::new(&h);
    b.ip = Some("[2001:db8::1]:5000".parse().unwrap());
    let page = b.open(&c.client_id, &uri).await;
    for i in 0..30 {
        let r = sign_in(&mut b, &page, &format!("user{i}.test"), "wrong", false).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    b.ip = Some("[2001:db8::2]:5000".parse().unwrap()); // same /64
    assert_eq!(
        sign_in(&mut b, &page, "alice.test", PASSWORD, false).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    b.ip = Some("[2001:db8:0:1::1]:5000".parse().unwrap()); // another /64
    signed_in_consent(&mut b, &page, "alice.test", false).await;
}

/// Issue 15: failures from another address must not lock the user out (the tight limit is per
/// (identifier, address)), the per-identifier ceiling still bounds a spread-out attack, and a
/// success resets the user's own count.
#[tokio::test]
async fn sign_in_failures_elsewhere_do_not_lock_the_user_out() {
    let h = Harness::with(|b| b.sign_in_limits(atauth_server::SignInLimits::default())).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut attacker = Browser::new(&h);
    attacker.ip = Some("198.51.100.7:5000".parse().unwrap());
    let page = attacker.open(&c.client_id, &uri).await;
    for _ in 0..10 {
        let r = sign_in(&mut attacker, &page, "alice.test", "wrong", false).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = sign_in(&mut attacker, &page, "alice.test", "wrong", false).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the attacker's own address is held back");

    // The user, from their own address, signs in at once.
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut user = Browser::new(&h);
    user.ip = Some("192.0.2.10:5000".parse().unwrap());
    let page = user.open(&c.client_id, &uri).await;
    for _ in 0..9 {
        assert_eq!(
            sign_in(&mut user, &page, "alice.test", "typo", false).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    signed_in_consent(&mut user, &page, "alice.test", false).await;
    // The success reset the user's count: ten more typos are allowed before the limit.
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut again = Browser::new(&h);
    again.ip = user.ip;
    let page = again.open(&c.client_id, &uri).await;
    for _ in 0..10 {
        assert_eq!(
            sign_in(&mut again, &page, "alice.test", "typo", false).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&mut again, &page, "alice.test", "typo", false).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn headless_consent_api_shares_the_rate_limit() {
    let h = Harness::with(|b| b.sign_in_limits(atauth_server::SignInLimits::default())).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    for _ in 0..10 {
        let r = h
            .post_form(
                "/oauth/authorize/sign-in-and-approve",
                &[
                    ("client_id", &c.client_id),
                    ("request_uri", &uri),
                    ("identifier", "alice.test"),
                    ("password", "x"),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
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
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RateLimitExceeded"))
    );
}

#[tokio::test]
async fn as_authz_07_deactivated_account_cannot_sign_in_or_approve() {
    use atauth_server::store::AccountStatus;
    let h = Harness::new().await;
    let c = TestClient::loopback();
    h.server.stores().accounts.set_account_status(ALICE_DID, AccountStatus::Deactivated).await.unwrap();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.raw.contains("This account is deactivated."));

    // Signed in while active, deactivated before approving: the core answers access_denied.
    h.server.stores().accounts.set_account_status(ALICE_DID, AccountStatus::Active).await.unwrap();
    let consent = signed_in_consent(&mut b, &page, "alice.test", true).await;
    h.server.stores().accounts.set_account_status(ALICE_DID, AccountStatus::Deactivated).await.unwrap();
    let p = client_redirect(&decide(&mut b, &consent, "allow", None).await);
    assert_eq!(get(&p, "error"), Some("access_denied"));
    assert!(get(&p, "code").is_none(), "nothing issued");
}

#[tokio::test]
async fn as_authz_04_scopes_can_be_removed_but_not_atproto() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    // Dropping atproto (by editing the form) is refused and consumes nothing.
    let r = decide(&mut b, &consent, "allow", Some(&["transition:generic"])).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_scope"));
    // Adding a scope that was not requested is refused too.
    let r = decide(&mut b, &consent, "allow", Some(&["atproto", "transition:email"])).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_scope"));
    // Unticking transition:generic is fine.
    let p = client_redirect(&decide(&mut b, &consent, "allow", Some(&["atproto"])).await);
    let t = token(&h, &c, get(&p, "code").unwrap()).await;
    assert_eq!(t.body["scope"], "atproto");
}

#[tokio::test]
async fn remembered_accounts_get_a_picker_and_unremembered_ones_are_forgotten() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut b = Browser::new(&h);
    // alice, remembered.
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("s1"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", true).await;
    assert!(consent.raw.contains(">Switch<"), "no hint: the account can be switched");
    client_redirect(&decide(&mut b, &consent, "allow", None).await);
    // Next request (prompt=consent, else her remembered consent would skip the page): straight to
    // consent for alice (one account).
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("s2")), ("prompt", Some("consent"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("Allow access to your account?") && page.raw.contains("@alice.test"));
    // "Use another account": bob, remembered too.
    let page = b
        .get(&format!(
            "/oauth/authorize?{}&sign_in=1",
            form(&[("client_id", &c.client_id), ("request_uri", &uri)])
        ))
        .await;
    assert!(page.raw.contains("<h1>Sign in</h1>"));
    assert!(page.raw.contains("Choose an account that is already signed in"));
    let consent = signed_in_consent(&mut b, &page, "bob.test", true).await;
    assert!(consent.raw.contains("@bob.test"));
    client_redirect(&decide(&mut b, &consent, "deny", None).await);
    // Two remembered accounts: the picker.
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("s3"))]).await;
    let picker = b.open(&c.client_id, &uri).await;
    assert!(picker.raw.contains("Choose an account"), "{}", picker.raw);
    assert!(picker.raw.contains("@alice.test") && picker.raw.contains("@bob.test"));
    assert!(picker.raw.contains("Use another account"));
    // Choosing bob.
    let href = format!(
        "/oauth/authorize?{}",
        form(&[("client_id", &c.client_id), ("request_uri", &uri), ("account", BOB_DID)])
    );
    let consent = b.get(&href).await;
    assert!(consent.raw.contains("@bob.test") && consent.raw.contains("Allow access"));
    let p = client_redirect(&decide(&mut b, &consent, "allow", None).await);
    let t = token(&h, &c, get(&p, "code").unwrap()).await;
    assert_eq!(t.body["sub"], BOB_DID);
    // With a login_hint, only that account: alice, whose consent is remembered (AS-AUTHZ-05), so
    // the request is approved for her without a page.
    let uri = par(&h, &c, &[("state", Some("s4"))]).await;
    let p = client_redirect(&b.open(&c.client_id, &uri).await);
    let t = token(&h, &c, get(&p, "code").unwrap()).await;
    assert_eq!(t.body["sub"], ALICE_DID);

    // Unremembered sign-ins last only for their request.
    let mut b2 = Browser::new(&h);
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("s5"))]).await;
    let page = b2.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b2, &page, "alice.test", false).await;
    client_redirect(&decide(&mut b2, &consent, "allow", None).await);
    let uri = par(&h, &c, &[("login_hint", None), ("state", Some("s6"))]).await;
    assert!(b2.open(&c.client_id, &uri).await.raw.contains("<h1>Sign in</h1>"));
}

#[tokio::test]
async fn as_authz_03_prompt_values() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut b = Browser::new(&h);

    // prompt=none, nobody signed in: login_required.
    let uri = par(&h, &c, &[("prompt", Some("none")), ("state", Some("p1"))]).await;
    let p = client_redirect(&b.open(&c.client_id, &uri).await);
    assert_eq!((get(&p, "error"), get(&p, "iss")), (Some("login_required"), Some(ISSUER)));
    // prompt=select_account, nobody signed in: account_selection_required.
    let uri = par(&h, &c, &[("prompt", Some("select_account")), ("state", Some("p2"))]).await;
    let p = client_redirect(&b.open(&c.client_id, &uri).await);
    assert_eq!(get(&p, "error"), Some("account_selection_required"));

    // Sign alice in (remembered).
    let uri = par(&h, &c, &[("state", Some("p3"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", true).await;
    client_redirect(&decide(&mut b, &consent, "allow", None).await);

    // prompt=none, signed in, consent remembered (AS-AUTHZ-05): approved without interaction.
    let uri = par(&h, &c, &[("prompt", Some("none")), ("state", Some("p4"))]).await;
    let p = client_redirect(&b.open(&c.client_id, &uri).await);
    assert_eq!((get(&p, "error"), get(&p, "state")), (None, Some("p4")));
    assert!(get(&p, "code").is_some_and(|c| c.starts_with("cod-")));
    // prompt=none for a wider scope than was granted: consent_required.
    let wider = "atproto transition:generic transition:email";
    let uri = par(&h, &c, &[("prompt", Some("none")), ("state", Some("p4b")), ("scope", Some(wider))]).await;
    let p = client_redirect(&b.open(&c.client_id, &uri).await);
    assert_eq!(get(&p, "error"), Some("consent_required"));
    // prompt=select_account with one account: the picker anyway.
    let uri = par(&h, &c, &[("prompt", Some("select_account")), ("state", Some("p5"))]).await;
    assert!(b.open(&c.client_id, &uri).await.raw.contains("Choose an account"));
    // prompt=consent: the consent screen (always shown anyway).
    let uri = par(&h, &c, &[("prompt", Some("consent")), ("state", Some("p6"))]).await;
    assert!(b.open(&c.client_id, &uri).await.raw.contains("Allow access to your account?"));
    // prompt=login: the remembered sign-in does not count; the password is asked again.
    h.advance(5);
    let uri = par(&h, &c, &[("prompt", Some("login")), ("state", Some("p7"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"), "{}", page.raw);
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/oauth/authorize/consent",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("csrf_token", &csrf),
                ("decision", "allow"),
                ("account", ALICE_DID),
                ("scope", "atproto"),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.page_code()),
        (StatusCode::FORBIDDEN, "login_required"),
        "no approval without re-auth"
    );
    // Signed in again: her consent is remembered, so the code comes straight after the sign-in
    // (prompt=login asks for the password again, not for consent).
    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, true).await;
    let p = client_redirect(&follow(&mut b, &r).await);
    assert_eq!(get(&p, "state"), Some("p7"));
    assert!(get(&p, "code").is_some());
}

#[tokio::test]
async fn remembered_sign_in_expires_with_the_device_session() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut b = Browser::new(&h);
    let uri = par(&h, &c, &[("state", Some("e1"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", true).await;
    client_redirect(&decide(&mut b, &consent, "allow", None).await);
    h.advance(30 * 86_400);
    let uri = par(&h, &c, &[("state", Some("e2"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"), "30 days later the password is asked again");
}

/// A public web client whose metadata (with a name and logo) is served by a local mock.
async fn web_client() -> (MockServer, TestClient) {
    let mock = MockServer::start().await;
    let client_id = format!("{}/client-metadata.json", mock.uri());
    let doc = json!({
        "client_id": client_id,
        "application_type": "web",
        "client_name": "Totally Bluesky",
        "logo_uri": "https://app.example.com/logo.png",
        "dpop_bound_access_tokens": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example.com/callback"],
        "response_types": ["code"],
        "scope": "atproto transition:generic",
        "token_endpoint_auth_method": "none",
    });
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(doc.to_string(), "application/json"))
        .mount(&mock)
        .await;
    let tc = TestClient {
        client_id,
        redirect_uri: "https://app.example.com/callback".into(),
        ..TestClient::loopback()
    };
    (mock, tc)
}

#[tokio::test]
async fn as_cmd_06_untrusted_clients_show_their_client_id_not_their_claims() {
    let h = Harness::with(|b| b.dev_mode(true)).await;
    let (_mock, c) = web_client().await;
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    assert!(consent.raw.contains(&c.client_id), "full client_id URL");
    assert!(consent.raw.contains("Unverified app"));
    assert!(consent.raw.contains("This server has not verified this app."));
    assert!(!consent.raw.contains("Totally Bluesky"), "unverified name not shown");
    assert!(!consent.raw.contains("logo.png"), "unverified logo not shown");
    assert!(
        consent.raw.contains("Afterwards you go back to <span class=\"mono\">https://app.example.com</span>")
    );
}

#[tokio::test]
async fn as_cmd_06_trusted_clients_show_name_and_logo() {
    let (_mock, c) = web_client().await;
    let id = c.client_id.clone();
    let h = Harness::with(move |b| b.dev_mode(true).trusted_clients([id])).await;
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("to continue to <strong>Totally Bluesky</strong>"));
    let consent = signed_in_consent(&mut b, &page, "alice.test", false).await;
    assert!(consent.raw.contains("Totally Bluesky") && consent.raw.contains("Verified by this server"));
    assert!(consent.raw.contains("src=\"https://app.example.com/logo.png\""));
    assert!(consent.raw.contains(&c.client_id), "client_id still shown");
    assert!(!consent.raw.contains("Unverified app"));
}

#[tokio::test]
async fn branding_is_configuration_and_the_stylesheet_is_served() {
    let branding = atauth_server::Branding {
        name: "Example PDS".into(),
        tos_uri: Some("https://pds.example.com/tos".into()),
        privacy_uri: Some("javascript:alert(1)".into()),
        primary_color: Some("#ff0066".into()),
        ..atauth_server::Branding::default()
    };
    let h = Harness::with(move |b| b.branding(branding)).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let page = Browser::new(&h).open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<title>Sign in · Example PDS</title>"));
    assert!(page.raw.contains("href=\"https://pds.example.com/tos\""));
    assert!(!page.raw.contains("javascript:"), "only web URLs become links");
    let css_href =
        page.raw.split_once("rel=\"stylesheet\" href=\"").unwrap().1.split_once('"').unwrap().0.to_owned();
    let css = h.get(&css_href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.raw.starts_with(":root { --accent: #ff0066; }"));
}

#[tokio::test]
async fn markup_is_escaped() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "<script>alert(1)</script>", "x", false).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.raw.contains("<script>") && r.raw.contains("&#60;script&#62;"), "{}", r.raw);
}

#[tokio::test]
async fn app_passwords_are_refused_on_the_sign_in_form() {
    let h = Harness::new().await;
    let pw = atauth_crypto::SecretString::new(PASSWORD);
    let session = h.server.create_session("alice.test", &pw, None).await.unwrap();
    let access = h.server.verify_legacy_access(session.access_jwt.expose_secret()).await.unwrap();
    let app = h.server.create_app_password(&access, "ui test", false).await.unwrap();
    // The app password is real: createSession takes it.
    h.server.create_session("alice.test", &app.password, None).await.unwrap();

    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "alice.test", app.password.expose_secret(), true).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "only the account password signs in here");
    assert!(r.raw.contains("Wrong handle, email or password."));
    assert!(b.open(&c.client_id, &uri).await.raw.contains("<h1>Sign in</h1>"), "nobody signed in");
}

/// AS-AUTHZ-05: consent given after a remembered sign-in is remembered for that client on this
/// device; the same or a narrower request skips the page, a wider one asks again, what was
/// unticked counts as not granted, `prompt=consent` always asks, and a sign-in without "remember"
/// remembers nothing.
#[tokio::test]
async fn as_authz_05_remembered_consent() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut b = Browser::new(&h);
    let uri = par(&h, &c, &[("state", Some("r1"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", true).await;
    // Alice unticks transition:generic: only atproto is granted (and remembered).
    let p = client_redirect(&decide(&mut b, &consent, "allow", Some(&["atproto"])).await);
    assert_eq!(token(&h, &c, get(&p, "code").unwrap()).await.body["scope"], "atproto");

    // The same scope as before asks again: transition:generic was not granted.
    let uri = par(&h, &c, &[("state", Some("r2"))]).await;
    let consent = b.open(&c.client_id, &uri).await;
    assert!(consent.raw.contains("Allow access to your account?"), "{}", consent.raw);
    let p = client_redirect(&decide(&mut b, &consent, "allow", None).await);
    assert_eq!(token(&h, &c, get(&p, "code").unwrap()).await.body["scope"], "atproto transition:generic");

    // Now granted in full: the same request and a narrower one get a code without a page.
    for (state, scope) in [("r3", "atproto transition:generic"), ("r4", "atproto")] {
        let uri = par(&h, &c, &[("state", Some(state)), ("scope", Some(scope))]).await;
        let p = client_redirect(&b.open(&c.client_id, &uri).await);
        assert_eq!(get(&p, "state"), Some(state));
        let t = token(&h, &c, get(&p, "code").unwrap()).await;
        assert_eq!((t.body["sub"].as_str(), t.body["scope"].as_str()), (Some(ALICE_DID), Some(scope)));
    }
    // A wider request asks again; so does prompt=consent.
    let wider = "atproto transition:generic transition:email";
    let uri = par(&h, &c, &[("state", Some("r5")), ("scope", Some(wider))]).await;
    assert!(b.open(&c.client_id, &uri).await.raw.contains("Allow access to your account?"));
    let uri = par(&h, &c, &[("state", Some("r6")), ("prompt", Some("consent"))]).await;
    assert!(b.open(&c.client_id, &uri).await.raw.contains("Allow access to your account?"));

    // Another browser, sign-in not remembered: its approval is not remembered either.
    let mut b2 = Browser::new(&h);
    let uri = par(&h, &c, &[("state", Some("r7"))]).await;
    let page = b2.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b2, &page, "alice.test", false).await;
    client_redirect(&decide(&mut b2, &consent, "allow", None).await);
    let uri = par(&h, &c, &[("state", Some("r8"))]).await;
    assert!(b2.open(&c.client_id, &uri).await.raw.contains("<h1>Sign in</h1>"));
}

/// AS-AUTHZ-05: a wider request asks again and shows only what is new; what was granted before is
/// folded away under "You already allowed" and still ticked, so allowing grants the whole request.
#[tokio::test]
async fn as_authz_05_wider_request_shows_only_what_is_new() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let mut b = Browser::new(&h);
    let uri = par(&h, &c, &[("state", Some("w1"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    let consent = signed_in_consent(&mut b, &page, "alice.test", true).await;
    assert!(consent.raw.contains("It will be able to"), "first time: one list");
    assert!(!consent.raw.contains("You already allowed"), "{}", consent.raw);
    client_redirect(&decide(&mut b, &consent, "allow", None).await);

    let wider = "atproto transition:generic transition:email";
    let uri = par(&h, &c, &[("state", Some("w2")), ("scope", Some(wider))]).await;
    let consent = b.open(&c.client_id, &uri).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.raw);
    let (new, old) = consent.raw.split_once("<details class=\"granted\">").expect("a folded list");
    assert!(new.contains("New: it also asks to") && new.contains("<code>transition:email</code>"));
    assert!(!new.contains("<code>transition:generic</code>") && !new.contains("<code>atproto</code>"));
    assert!(old.contains("You already allowed 2 permissions on this device"), "{old}");
    assert!(old.contains("<code>transition:generic</code>") && old.contains("<code>atproto</code>"));
    assert!(!old.contains("<code>transition:email</code>"));
    // Every line is still submitted: allowing grants the whole request.
    assert_eq!(ticked_scopes(&consent), ["transition:email", "atproto", "transition:generic"]);
    let p = client_redirect(&decide(&mut b, &consent, "allow", None).await);
    assert_eq!(token(&h, &c, get(&p, "code").unwrap()).await.body["scope"], wider);

    // prompt=consent for what is covered: nothing new, so one plain list again.
    let uri = par(&h, &c, &[("state", Some("w3")), ("prompt", Some("consent"))]).await;
    let consent = b.open(&c.client_id, &uri).await;
    assert!(consent.raw.contains("It will be able to") && !consent.raw.contains("You already allowed"));
}
