//! The pages' language (`Accept-Language`, RFC 9110 §12.5.4) and the operator's branding links,
//! through the router: which language each page gets, the headers that say so, and that refusals
//! and error pages keep their status and code whatever the language.

use crate::common::*;
use crate::ui::{decide, par, sign_in};
use http::StatusCode;

/// Asserts `r` is an HTML page in `lang` with the negotiation headers.
fn assert_language(r: &Resp, lang: &str) {
    assert!(r.raw.starts_with(&format!("<!doctype html>\n<html lang=\"{lang}\">")), "{}", r.raw);
    assert_eq!(r.header("content-language"), Some(lang));
    assert_eq!(r.header("vary"), Some("Accept-Language"));
}

#[tokio::test]
async fn accept_language_picks_the_sign_in_page_language() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    for (accept, lang, heading) in [
        (Some("de-CH, en;q=0.5"), "de", "<h1>Anmelden</h1>"),
        (Some("fr-FR, de;q=0.3, en;q=0.2"), "de", "<h1>Anmelden</h1>"),
        (Some("en-GB, de;q=0.9"), "en", "<h1>Sign in</h1>"),
        (Some("fr, ja"), "en", "<h1>Sign in</h1>"),
        (Some("de;q=0, en;q=0.1"), "en", "<h1>Sign in</h1>"),
        (Some("de;q=0, fr"), "en", "<h1>Sign in</h1>"),
        (Some("en;q=0, *"), "de", "<h1>Anmelden</h1>"),
        (None, "en", "<h1>Sign in</h1>"),
    ] {
        let uri = par(&h, &c, &[]).await;
        let mut b = accept.map_or_else(|| Browser::new(&h), |a| Browser::with_language(&h, a));
        let page = b.open(&c.client_id, &uri).await;
        assert_eq!(page.status, StatusCode::OK, "{accept:?}");
        assert_language(&page, lang);
        assert!(page.raw.contains(heading), "{accept:?}: {}", page.raw);
    }
}

#[tokio::test]
async fn german_sign_in_consent_and_refusals() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::with_language(&h, "de-DE,de;q=0.9,en;q=0.8");
    let page = b.open(&c.client_id, &uri).await;
    assert!(page.raw.contains("<title>Anmelden · atauth</title>"));
    assert!(page.raw.contains("weiter zu <strong>einer App auf diesem Gerät</strong>"), "{}", page.raw);
    assert!(page.raw.contains("Diese App möchte Sie als <strong>alice.test</strong> anmelden."));
    assert!(!page.raw.contains("Password"), "no English left on the page: {}", page.raw);

    // A refused sign-in keeps its status in German.
    let r = sign_in(&mut b, &page, "alice.test", "wrong", false).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_language(&r, "de");
    assert!(r.raw.contains("Handle, E-Mail-Adresse oder Passwort ist falsch."), "{}", r.raw);

    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, false).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let consent = b.get(r.header("location").unwrap()).await;
    assert_eq!(consent.status, StatusCode::OK);
    assert_language(&consent, "de");
    assert!(consent.raw.contains("<h1>Zugriff auf Ihr Konto erlauben?</h1>"), "{}", consent.raw);
    assert!(consent.raw.contains(">Erlauben</button>") && consent.raw.contains(">Ablehnen</button>"));
    // The permissions in German too (ui/scopes.rs through the catalog's ScopeText), the scope
    // strings as they are.
    assert!(consent.raw.contains("<strong>Wissen, wer Sie sind</strong>"), "{}", consent.raw);
    assert!(consent.raw.contains("<strong>Ihre Kontodaten lesen und ändern</strong>"), "{}", consent.raw);
    assert!(consent.raw.contains("<code>transition:generic</code>"));
    assert!(!consent.raw.contains("lang=\"en\"") && !consent.raw.contains("Know who you are"));
    assert!(consent.raw.contains("Loopback-Client: läuft auf diesem Computer"));

    // The same form, answered in English for an English browser.
    b.accept_language = Some("en".into());
    let again = b.get(r.header("location").unwrap()).await;
    assert_language(&again, "en");
    assert!(again.raw.contains("<h1>Allow access to your account?</h1>"));
    assert!(again.raw.contains("<strong>Know who you are</strong>"), "{}", again.raw);
}

#[tokio::test]
async fn error_pages_keep_status_and_code_in_every_language() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut first = Browser::new(&h);
    first.open(&c.client_id, &uri).await;
    let mut de = Browser::with_language(&h, "de");
    let r = de.open(&c.client_id, &uri).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "access_denied"));
    assert_language(&r, "de");
    assert!(r.raw.contains("<h1>Diese Anmeldung wurde in einem anderen Browser begonnen</h1>"));
    assert!(r.raw.contains("Fehlercode: <code>access_denied</code>"));

    let r = de.get("/oauth/authorize?client_id=x&request_uri=x&request_uri=y").await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request"));
    assert!(r.raw.contains("Dieser Anmeldelink ist ungültig"));
    let mut en = Browser::with_language(&h, "fr;q=0.9, *;q=0");
    let r = en.get("/oauth/authorize?client_id=x&request_uri=x&request_uri=y").await;
    assert_eq!((r.status, r.page_code()), (StatusCode::BAD_REQUEST, "invalid_request"));
    assert_language(&r, "en");
    assert!(r.raw.contains("This sign-in link is not valid"));

    // A form without its CSRF token is refused in German too.
    assert_eq!(de.get("/account").await.status, StatusCode::OK);
    let r = de.post("/account/sign-out-everywhere", &[("account", ALICE_DID)]).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
    assert!(r.raw.contains("Dieses Formular ist abgelaufen"), "{}", r.raw);
}

#[tokio::test]
async fn german_account_page() {
    let h = Harness::new().await;
    let mut b = Browser::with_language(&h, "de-AT");
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_language(&page, "de");
    assert!(page.raw.contains("<h1>Ihr Konto</h1>"));
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post("/account/sign-in", &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", "")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.raw.contains("Geben Sie Ihr Handle oder Ihre E-Mail-Adresse und Ihr Passwort ein."));
    let r = b
        .post(
            "/account/sign-in",
            &[("csrf_token", &csrf), ("identifier", "alice.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = b.get(r.header("location").unwrap()).await;
    assert_language(&page, "de");
    assert!(page.raw.contains("Sie sind angemeldet."), "{}", page.raw);
    assert!(page.raw.contains("<h2 id=\"apps-h\">Verbundene Apps</h2>"));
    assert!(page.raw.contains("<h2 id=\"devices-h\">Wo Sie angemeldet sind</h2>"));
    assert!(page.raw.contains("<span class=\"badge trusted\">Dieses Gerät</span>"));
    assert!(page.raw.contains(">Überall abmelden</button>"));
}

#[tokio::test]
async fn branding_links_render_on_every_page() {
    let branding = atauth_server::Branding {
        name: "Example PDS".into(),
        home_uri: Some("https://pds.example.com/".into()),
        tos_uri: Some("https://pds.example.com/tos".into()),
        privacy_uri: Some("https://pds.example.com/privacy".into()),
        support_uri: Some("mailto:help@pds.example.com".into()),
        ..atauth_server::Branding::default()
    };
    let h = Harness::with(move |b| b.branding(branding)).await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::new(&h);
    let sign_in_page = b.open(&c.client_id, &uri).await;
    let account = b.get("/account").await;
    let error = b.get("/oauth/authorize?client_id=x&request_uri=x&request_uri=y").await;
    for page in [&sign_in_page, &account, &error] {
        assert!(page.raw.contains("<nav aria-label=\"About this server\">"), "{}", page.raw);
        for link in [
            "<a href=\"https://pds.example.com/\" rel=\"noopener noreferrer\">Home</a>",
            "<a href=\"https://pds.example.com/tos\" rel=\"noopener noreferrer\">Terms of service</a>",
            "<a href=\"https://pds.example.com/privacy\" rel=\"noopener noreferrer\">Privacy policy</a>",
            "<a href=\"mailto:help@pds.example.com\" rel=\"noopener noreferrer\">Support</a>",
        ] {
            assert!(page.raw.contains(link), "{link} missing: {}", page.raw);
        }
    }
    let mut de = Browser::with_language(&h, "de");
    let page = de.get("/account").await;
    assert!(page.raw.contains(">Nutzungsbedingungen</a>") && page.raw.contains(">Hilfe</a>"));
}

#[tokio::test]
async fn only_web_and_mailto_support_links_render() {
    for (support, shown) in [
        ("javascript:alert(1)", false),
        ("mailto:", false),
        ("data:text/html,hi", false),
        ("https://help.example.com/", true),
    ] {
        let branding = atauth_server::Branding {
            support_uri: Some(support.into()),
            ..atauth_server::Branding::default()
        };
        let h = Harness::with(move |b| b.branding(branding)).await;
        let page = Browser::new(&h).get("/account").await;
        assert_eq!(page.raw.contains(">Support</a>"), shown, "{support}");
        assert!(!page.raw.contains("javascript:") && !page.raw.contains("data:text"), "{support}");
    }
}

/// The sign-up form follows `Accept-Language` like every page: on its own and within an app's
/// request, its labels, rules and refusals in German, and the sign-in pages' link to it.
#[tokio::test]
async fn german_sign_up_form_and_its_refusals() {
    let h = Harness::new().await;
    let mut b = Browser::with_language(&h, "de-DE,de;q=0.9,en;q=0.5");
    let page = b.get("/account/sign-up").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_language(&page, "de");
    assert!(page.raw.contains("<title>Konto erstellen · atauth</title>"), "{}", page.raw);
    assert!(page.raw.contains("<h1>Konto erstellen</h1>"));
    assert!(page.raw.contains("bei <strong>atauth</strong>. Damit können Sie sich dann bei Apps anmelden."));
    for (id, label) in [("handle", "Handle"), ("email", "E-Mail-Adresse"), ("password", "Passwort")] {
        assert!(page.raw.contains(&format!("<label class=\"field\" for=\"{id}\">{label}</label>")), "{id}");
    }
    assert!(page.raw.contains("<li>Mindestens 8 Zeichen, davon mindestens 5 verschiedene</li>"));
    assert!(page.raw.contains("Einladungscode <span class=\"optional\">(optional)</span>"));
    assert!(page.raw.contains(">Konto erstellen</button>"));
    assert!(page.raw.contains("Sie haben schon ein Konto? <a href=\"/account\">Anmelden</a>"));
    for english in ["Create", "Password", "Email", "Invite code", "Already have"] {
        assert!(!page.raw.contains(english), "no English left ({english}): {}", page.raw);
    }

    // A refused sign-up: the same status, its message in German, nothing created.
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/account/sign-up",
            &[
                ("csrf_token", &csrf),
                ("handle", "ivan"),
                ("domain", ".test"),
                ("email", "ivan@example.com"),
                ("password", "12345678"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_language(&r, "de");
    assert!(
        r.raw.contains(
            "<div class=\"alert error\" role=\"alert\" id=\"form-error\">Ihr Passwort ist eine einfache \
             Zeichenfolge. Wählen Sie etwas, das schwerer zu erraten ist.</div>"
        ),
        "{}",
        r.raw
    );
    assert!(h.server.stores().accounts.account_by_handle("ivan.test").await.unwrap().is_none());
    let r = b
        .post(
            "/account/sign-up",
            &[
                ("csrf_token", &csrf),
                ("handle", "ivan"),
                ("domain", ".elsewhere"),
                ("email", "ivan@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.raw.contains("Handles auf diesem Server enden auf .test."), "{}", r.raw);

    // The account page's sign-in form links to it in German.
    let mut fresh = Browser::with_language(&h, "de");
    let account = fresh.get("/account").await;
    assert!(
        account.raw.contains("Neu hier? <a href=\"/account/sign-up\">Konto erstellen</a>"),
        "{}",
        account.raw
    );

    // Within an app's request (prompt=create): German, with the app's name and the cancel button.
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[("login_hint", None), ("prompt", Some("create"))]).await;
    let page = b.open(&c.client_id, &uri).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_language(&page, "de");
    assert!(page.raw.contains("<h1>Konto erstellen</h1>"), "{}", page.raw);
    assert!(page.raw.contains("weiter zu <strong>einer App auf diesem Gerät</strong>"), "{}", page.raw);
    assert!(page.raw.contains("Dieses Konto auf diesem Gerät merken"));
    assert!(page.raw.contains("Abbrechen und zur App zurückkehren"));
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = b
        .post(
            "/oauth/authorize/sign-up",
            &[
                ("client_id", c.client_id.as_str()),
                ("request_uri", uri.as_str()),
                ("csrf_token", csrf.as_str()),
                ("handle", "ivan"),
                ("email", "ivan@example.com"),
                ("password", "aaaaaaaaaa"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_language(&r, "de");
    assert!(
        r.raw.contains("Verwenden Sie mindestens 5 verschiedene Zeichen in Ihrem Passwort."),
        "{}",
        r.raw
    );
    assert!(r.raw.contains("value=\"ivan\""), "what was typed stays");
    assert!(h.server.stores().accounts.account_by_handle("ivan.test").await.unwrap().is_none());
    // An English browser gets the same request's form in English.
    b.accept_language = Some("en".into());
    let page = b.open(&c.client_id, &uri).await;
    assert_language(&page, "en");
    assert!(page.raw.contains("<h1>Create an account</h1>"));
}

/// The account page lists an app's permissions in the page's language.
#[tokio::test]
async fn german_account_page_lists_permissions_in_german() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut b = Browser::with_language(&h, "de");
    let page = b.open(&c.client_id, &uri).await;
    let r = sign_in(&mut b, &page, "alice.test", PASSWORD, true).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let consent = b.get(r.header("location").unwrap()).await;
    let r = decide(&mut b, &consent, "allow", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let account = b.get("/account").await;
    assert_language(&account, "de");
    assert!(account.raw.contains("<strong>Wissen, wer Sie sind</strong>"), "{}", account.raw);
    assert!(account.raw.contains("<strong>Ihre Kontodaten lesen und ändern</strong>"), "{}", account.raw);
    assert!(!account.raw.contains("Know who you are"));
}
