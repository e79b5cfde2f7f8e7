//! The sign-up pages through the router, without a PLC directory: which page shows when, the
//! links between sign-in and sign-up, and the per-address limit (shared through the sign-in limit
//! store). Sign-ups that register a DID are in `tests/interop_signup.rs` (the reference PLC).

use std::sync::Arc;
use std::time::Duration;

use atauth_server::RateLimit;
use atauth_server::ratelimit::MemorySignInLimits;
use http::StatusCode;

use crate::common::*;

/// PAR with these changes to the default parameters and a fresh PKCE challenge (AS-PAR-07);
/// returns the `request_uri`.
async fn par(h: &Harness, c: &TestClient, edits: &[(&'static str, Option<&str>)]) -> String {
    let challenge = atauth_crypto::pkce::PkceVerifier::generate().challenge();
    let mut p = with(&c.par_params(), "code_challenge", Some(&challenge));
    for (k, v) in edits {
        p = with(&p, k, *v);
    }
    let r = c.par_with(h, &p).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.body["request_uri"].as_str().unwrap().to_owned()
}

/// A sign-up post from the standalone page of `b` with a weak password (refused before any DID
/// work, so no PLC directory is needed).
async fn weak_sign_up(b: &mut Browser<'_>, csrf: &str) -> Resp {
    b.post(
        "/account/sign-up",
        &[
            ("csrf_token", csrf),
            ("handle", "ivan"),
            ("domain", ".test"),
            ("email", "ivan@example.com"),
            ("password", "12345678"),
        ],
    )
    .await
}

#[tokio::test]
async fn prompt_create_shows_the_sign_up_page_and_sign_in_links_to_it() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[("login_hint", None), ("prompt", Some("create"))]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    assert!(page.raw.contains("<h1>Create an account</h1>"), "{}", page.raw);
    assert!(page.raw.contains("action=\"/oauth/authorize/sign-up\""));
    for (id, label) in [("handle", "Handle"), ("email", "Email"), ("password", "Password")] {
        assert!(page.raw.contains(&format!("<label class=\"field\" for=\"{id}\">{label}</label>")), "{id}");
    }
    assert!(page.raw.contains("autocomplete=\"new-password\""));
    assert!(page.raw.contains("aria-describedby=\"password-rules\""), "the rules are read with the field");
    assert!(page.raw.contains("<span class=\"suffix\" aria-hidden=\"true\">.test</span>"));
    assert!(page.raw.contains("Cancel and return to the app"), "the request can still be cancelled");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "no scripts: {csp}");
    // "Already have an account? Sign in" leads to the sign-in page of the same request.
    let sign_in_href = page.raw.split_once("Already have an account? <a href=\"").unwrap().1;
    let sign_in_href = sign_in_href.split_once('"').unwrap().0.replace("&#38;", "&").replace("&amp;", "&");
    let sign_in = b.get(&sign_in_href).await;
    assert!(sign_in.raw.contains("<h1>Sign in</h1>"), "{}", sign_in.raw);

    // Without prompt=create the sign-in page links to sign-up.
    let uri = par(&h, &c, &[("login_hint", None)]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"));
    let href = page.raw.split_once("New here? <a href=\"").expect("a sign-up link").1;
    let href = href.split_once('"').unwrap().0.replace("&#38;", "&").replace("&amp;", "&");
    assert!(href.ends_with("&sign_up=1"), "{href}");
    let page = b.get(&href).await;
    assert!(page.raw.contains("<h1>Create an account</h1>"), "{}", page.raw);
}

#[tokio::test]
async fn a_request_for_a_particular_account_offers_no_sign_up() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    // The default request carries login_hint=alice.test (AS-AUTHZ-02): a new account could not
    // answer it, so prompt=create shows the sign-in page, without a sign-up link.
    let uri = par(&h, &c, &[("prompt", Some("create"))]).await;
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<h1>Sign in</h1>"), "{}", page.raw);
    assert!(!page.raw.contains("Create an account"));
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/oauth/authorize/sign-up",
            &[
                ("client_id", &c.client_id),
                ("request_uri", &uri),
                ("csrf_token", &csrf),
                ("handle", "ivan"),
                ("email", "ivan@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!((r.status, r.page_code()), (StatusCode::NOT_FOUND, "sign_up_unavailable"));
    assert!(h.server.stores().accounts.account_by_handle("ivan.test").await.unwrap().is_none());
    // The request is untouched: the sign-in page still opens.
    assert_eq!(b.open(&c.client_id, &uri).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_server_without_handle_domains_offers_no_sign_up() {
    let h = Harness::with(|b| b.handle_domains(Vec::<String>::new())).await;
    let mut b = Browser::new(&h);
    let r = b.get("/account/sign-up").await;
    assert_eq!((r.status, r.page_code()), (StatusCode::NOT_FOUND, "sign_up_unavailable"));
    let account = b.get("/account").await;
    assert!(account.raw.contains("<h1>Your account</h1>") && !account.raw.contains("Create an account"));
    let csrf = hidden(&account, "csrf_token").unwrap();
    let r = weak_sign_up(&mut b, &csrf).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::NOT_FOUND, "sign_up_unavailable"));

    // With domains, the account page's sign-in form links to the sign-up page.
    let h = Harness::new().await;
    let mut b = Browser::new(&h);
    let account = b.get("/account").await;
    assert!(account.raw.contains("New here? <a href=\"/account/sign-up\">Create an account</a>"));
}

#[tokio::test]
async fn sign_up_attempts_are_limited_per_address_and_the_limit_is_shared_through_the_store() {
    let shared = Arc::new(MemorySignInLimits::default());
    let limit = RateLimit { burst: 2, refill_every: Duration::from_secs(600) };
    let s1 = shared.clone();
    let h = Harness::with(move |b| b.sign_up_limit(limit).sign_in_limit_store(s1)).await;
    let s2 = shared.clone();
    let other_instance = Harness::with(move |b| b.sign_up_limit(limit).sign_in_limit_store(s2)).await;

    let mut b = Browser::new(&h);
    b.ip = Some("192.0.2.1:5000".parse().unwrap());
    let page = b.get("/account/sign-up").await;
    let csrf = hidden(&page, "csrf_token").unwrap();
    assert_eq!(weak_sign_up(&mut b, &csrf).await.status, StatusCode::BAD_REQUEST);

    // The second attempt from the same address, on another instance sharing the limit store.
    let mut b2 = Browser::new(&other_instance);
    b2.ip = Some("192.0.2.1:6000".parse().unwrap());
    let page2 = b2.get("/account/sign-up").await;
    let csrf2 = hidden(&page2, "csrf_token").unwrap();
    assert_eq!(weak_sign_up(&mut b2, &csrf2).await.status, StatusCode::BAD_REQUEST);

    let r = weak_sign_up(&mut b, &csrf).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
    assert!(
        r.raw.contains("Too many sign-up attempts from your network. Try again in 10 minutes."),
        "{}",
        r.raw
    );
    assert_eq!(r.header("retry-after"), Some("600"));
    assert!(r.raw.contains("value=\"ivan\""), "what was typed stays");

    // Another address is not limited, and neither is signing in from this one.
    let mut c = Browser::new(&h);
    c.ip = Some("198.51.100.7:5000".parse().unwrap());
    let page = c.get("/account/sign-up").await;
    let csrf_c = hidden(&page, "csrf_token").unwrap();
    assert_eq!(weak_sign_up(&mut c, &csrf_c).await.status, StatusCode::BAD_REQUEST);
    let account = b.get("/account").await;
    let r = b
        .post(
            "/account/sign-in",
            &[
                ("csrf_token", &hidden(&account, "csrf_token").unwrap()),
                ("identifier", "alice.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "sign-in has its own buckets: {}", r.raw);

    // An attempt is earned back after the refill time.
    h.advance(600);
    assert_eq!(weak_sign_up(&mut b, &csrf).await.status, StatusCode::BAD_REQUEST);
}
