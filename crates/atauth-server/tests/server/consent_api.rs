//! The JSON consent API for custom front ends (`/oauth/authorize/api/…`, docs/CONSENT-API.md)
//! through the router, on the SQLite store: a front end's whole login ending in a token, deny,
//! every CSRF refusal (each with its code, and the request still usable afterwards), the shared
//! sign-in rate limit, a subset of the scopes granted, remembered consent, and the switch.

use crate::common::*;
use crate::ui::{par, token};
use http::StatusCode;
use serde_json::{Value, json};

const REQUEST: &str = "/oauth/authorize/api/request";
const SIGN_IN: &str = "/oauth/authorize/api/sign-in";
const APPROVE: &str = "/oauth/authorize/api/approve";
const DENY: &str = "/oauth/authorize/api/deny";

async fn api_harness() -> Harness {
    Harness::with(|b| {
        b.stores(atauth_server::store::Stores::single(
            atauth_server::store::SqliteStore::open_temp().unwrap(),
        ))
        .consent_json_api(true)
    })
    .await
}

/// A single-page front end on the server's origin: keeps the device cookie and the CSRF token,
/// sends what a browser's `fetch` sends.
struct Spa<'h> {
    h: &'h Harness,
    cookie: Option<String>,
    csrf: String,
    client_id: String,
    request_uri: String,
}

impl<'h> Spa<'h> {
    fn new(h: &'h Harness, c: &TestClient, request_uri: &str) -> Self {
        Self {
            h,
            cookie: None,
            csrf: String::new(),
            client_id: c.client_id.clone(),
            request_uri: request_uri.to_owned(),
        }
    }

    async fn send(&mut self, b: http::request::Builder, body: String) -> Resp {
        let b = match &self.cookie {
            Some(c) => b.header("cookie", c),
            None => b,
        };
        let r = self.h.send(b.body(axum::body::Body::from(body)).unwrap()).await;
        if let Some(set) = r.header("set-cookie") {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        r
    }

    /// `GET …/api/request` for this request; keeps the CSRF token it answers.
    async fn describe(&mut self) -> Resp {
        let q = form(&[("client_id", &self.client_id), ("request_uri", &self.request_uri)]);
        let b = http::Request::get(format!("{REQUEST}?{q}")).header("sec-fetch-site", "same-origin");
        let r = self.send(b, String::new()).await;
        if let Some(t) = r.body["csrf_token"].as_str() {
            self.csrf = t.to_owned();
        }
        r
    }

    /// The body's fields plus this request's `client_id` and `request_uri`.
    fn body(&self, fields: Value) -> String {
        let mut b = json!({ "client_id": self.client_id, "request_uri": self.request_uri });
        let Value::Object(fields) = fields else { panic!("fields must be an object") };
        for (k, v) in fields {
            b[k] = v;
        }
        b.to_string()
    }

    /// A POST as the front end sends it, with `headers` replacing or adding to the usual ones
    /// (`None` drops one).
    async fn post_with(&mut self, path: &str, fields: Value, headers: Headers<'_>) -> Resp {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, Option<&str>)> = vec![
            ("content-type", Some("application/json")),
            ("origin", Some(ISSUER)),
            ("sec-fetch-site", Some("same-origin")),
            ("x-csrf-token", Some(&csrf)),
        ];
        for (k, v) in headers {
            all.retain(|(n, _)| n != k);
            all.push((k, *v));
        }
        let mut b = http::Request::post(path);
        for (k, v) in all {
            if let Some(v) = v {
                b = b.header(k, v);
            }
        }
        let body = self.body(fields);
        self.send(b, body).await
    }

    async fn post(&mut self, path: &str, fields: Value) -> Resp {
        self.post_with(path, fields, &[]).await
    }

    async fn sign_in(&mut self, identifier: &str, password: &str, remember: bool) -> Resp {
        self.post(SIGN_IN, json!({ "identifier": identifier, "password": password, "remember": remember }))
            .await
    }
}

/// Headers to replace (`Some`) or drop (`None`) on a POST.
type Headers<'a> = &'a [(&'a str, Option<&'a str>)];

fn assert_api_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!((r.status, r.error()), (status, code), "{}", r.raw);
    assert!(r.body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.raw);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// The client's redirect from an API answer `{"redirect"}`.
fn redirect_of(r: &Resp) -> Vec<(String, String)> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let url = r.body["redirect"].as_str().unwrap_or_else(|| panic!("no redirect in {}", r.raw));
    assert!(url.starts_with(LOOPBACK_REDIRECT), "{url}");
    redirect_params(url)
}

#[tokio::test]
async fn consent_api_sign_in_approve_and_token_exchange() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut spa = Spa::new(&h, &c, &uri);

    // The request described, with a device cookie and a CSRF token.
    let d = spa.describe().await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.raw);
    assert!(d.header("set-cookie").is_some_and(|c| c.contains("HttpOnly")), "a device session");
    assert_eq!(d.body["csrf_token"].as_str().map(str::len), Some(64));
    assert_eq!(d.body["request"]["client_id"], c.client_id.as_str());
    assert_eq!(d.body["request"]["request_uri"], uri.as_str());
    assert_eq!(d.body["request"]["scope"], "atproto transition:generic");
    assert_eq!(d.body["request"]["login_hint"], "alice.test");
    assert_eq!(d.body["client"]["client_id"], c.client_id.as_str());
    assert_eq!(d.body["client"]["loopback"], true);
    assert_eq!(d.body["client"]["title"], "An app on this device");
    // The consent screen's words (ui/scopes.rs), atproto first and required.
    assert_eq!(d.body["scopes"][0]["scope"], "atproto");
    assert_eq!(d.body["scopes"][0]["title"], "Know who you are");
    assert_eq!(d.body["scopes"][0]["required"], true);
    assert_eq!(d.body["scopes"][1]["scope"], "transition:generic");
    assert_eq!(d.body["scopes"][1]["title"], "Read and change your account data");
    assert_eq!(d.body["scopes"][1]["required"], false);
    assert_eq!(d.body["sign_in"], json!({ "identifier": "alice.test", "locked": true }), "AS-AUTHZ-02");
    assert_eq!(d.body["accounts"], json!([]), "nobody signed in on this device yet");
    assert_eq!(d.body["screen"], "sign_in");

    // Sign in: the answer is the request again, on the consent screen for alice.
    let s = spa.sign_in("alice.test", PASSWORD, false).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    assert!(s.header("set-cookie").is_none(), "the same device session");
    assert_eq!(s.body["screen"], "consent");
    assert_eq!(s.body["account"], ALICE_DID);
    assert_eq!(s.body["accounts"][0]["did"], ALICE_DID);
    assert_eq!(s.body["accounts"][0]["handle"], "alice.test");
    assert_eq!(s.body["accounts"][0]["remembered"], false);
    assert_eq!(s.body["accounts"][0]["consent_remembered"], false);
    assert_eq!(s.body["csrf_token"].as_str(), Some(spa.csrf.as_str()), "one token per device");

    // Approve: JSON with the redirect (code, state, iss), not a 303.
    let a = spa.post(APPROVE, json!({ "account": ALICE_DID })).await;
    let p = redirect_of(&a);
    assert_eq!(get(&p, "state"), Some(c.state.as_str()));
    assert_eq!(get(&p, "iss"), Some(ISSUER), "AS-AUTHZ-06");
    let t = token(&h, &c, get(&p, "code").unwrap()).await;
    assert_eq!(t.body["sub"], ALICE_DID);
    assert_eq!(t.body["scope"], "atproto transition:generic");

    // The request is used up; the device forgot the unremembered sign-in.
    let again = spa.describe().await;
    assert_api_error(&again, StatusCode::BAD_REQUEST, "invalid_request_uri");
}

#[tokio::test]
async fn consent_api_deny_sends_access_denied_to_the_client() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut spa = Spa::new(&h, &c, &uri);
    assert_eq!(spa.describe().await.status, StatusCode::OK);
    let p = redirect_of(&spa.post(DENY, json!({})).await);
    assert_eq!(get(&p, "error"), Some("access_denied"));
    assert_eq!(get(&p, "state"), Some(c.state.as_str()));
    assert_eq!(get(&p, "iss"), Some(ISSUER));
    assert!(get(&p, "code").is_none());
    // Consumed: approving afterwards finds no request.
    let r = spa.post(APPROVE, json!({ "account": ALICE_DID })).await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request_uri");
}

#[tokio::test]
async fn consent_api_refuses_calls_without_its_csrf_protection_and_changes_nothing() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut spa = Spa::new(&h, &c, &uri);
    assert_eq!(spa.describe().await.status, StatusCode::OK);
    let wrong = "0".repeat(64);
    let approve = || json!({ "account": ALICE_DID });

    // Sign-in itself needs the token: a forged sign-in signs nobody in.
    let creds = json!({ "identifier": "alice.test", "password": PASSWORD });
    let r = spa.post_with(SIGN_IN, creds.clone(), &[("x-csrf-token", None)]).await;
    assert_api_error(&r, StatusCode::FORBIDDEN, "csrf_token_invalid");
    let d = spa.describe().await;
    assert_eq!((d.body["screen"].as_str(), &d.body["accounts"]), (Some("sign_in"), &json!([])));

    assert_eq!(spa.sign_in("alice.test", PASSWORD, false).await.status, StatusCode::OK);
    let cases: [(Headers<'_>, StatusCode, &str); 8] = [
        (&[("x-csrf-token", None)], StatusCode::FORBIDDEN, "csrf_token_invalid"),
        (&[("x-csrf-token", Some(&wrong))], StatusCode::FORBIDDEN, "csrf_token_invalid"),
        (&[("content-type", Some("text/plain"))], StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_content_type"),
        (
            &[("content-type", Some("application/x-www-form-urlencoded"))],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_content_type",
        ),
        (&[("content-type", None)], StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_content_type"),
        (&[("origin", Some("https://evil.example"))], StatusCode::FORBIDDEN, "cross_origin_request"),
        (&[("sec-fetch-site", Some("cross-site"))], StatusCode::FORBIDDEN, "cross_origin_request"),
        (&[("sec-fetch-site", Some("same-site"))], StatusCode::FORBIDDEN, "cross_origin_request"),
    ];
    for (headers, status, code) in cases {
        let r = spa.post_with(APPROVE, approve(), headers).await;
        assert_api_error(&r, status, code);
        let r = spa.post_with(DENY, json!({}), headers).await;
        assert_api_error(&r, status, code);
    }
    // Without the device cookie: no session to act for.
    let cookie = spa.cookie.take();
    assert_api_error(&spa.post(APPROVE, approve()).await, StatusCode::FORBIDDEN, "session_expired");
    spa.cookie = cookie;
    // A token of another device does not fit this one.
    let mut stranger = Spa::new(&h, &c, &par(&h, &c, &[]).await);
    stranger.describe().await;
    let mut other = Spa::new(&h, &c, &uri);
    other.cookie = spa.cookie.clone();
    other.csrf = stranger.csrf.clone();
    assert_api_error(&other.post(APPROVE, approve()).await, StatusCode::FORBIDDEN, "csrf_token_invalid");
    // A misspelt field is refused rather than ignored (it would grant every scope).
    let r = spa.post(APPROVE, json!({ "account": ALICE_DID, "scope": "atproto" })).await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = spa.post_with(APPROVE, approve(), &[]).await;
    // …and the request is still there, with alice still signed in: approving works now.
    let p = redirect_of(&r);
    assert!(get(&p, "code").is_some());
}

#[tokio::test]
async fn consent_api_describe_refuses_cross_site_callers() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let q = form(&[("client_id", &c.client_id), ("request_uri", &uri)]);
    let r = h
        .send(
            http::Request::get(format!("{REQUEST}?{q}"))
                .header("sec-fetch-site", "cross-site")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_api_error(&r, StatusCode::FORBIDDEN, "cross_origin_request");
    assert!(r.header("set-cookie").is_none(), "no device session opened");
    // Still usable from the server's own origin.
    assert_eq!(Spa::new(&h, &c, &uri).describe().await.status, StatusCode::OK);
}

#[tokio::test]
async fn consent_api_sign_in_refusals_leave_the_request_usable() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut spa = Spa::new(&h, &c, &uri);
    spa.describe().await;
    assert_api_error(
        &spa.sign_in("alice.test", "wrong", false).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_api_error(
        &spa.sign_in("nobody.test", PASSWORD, false).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // AS-AUTHZ-02: the request is for alice.
    assert_api_error(
        &spa.sign_in("bob.test", PASSWORD, false).await,
        StatusCode::FORBIDDEN,
        "account_mismatch",
    );
    assert_api_error(&spa.sign_in("alice.test", "", false).await, StatusCode::BAD_REQUEST, "invalid_request");
    // Approving for an account that is not signed in here.
    let r = spa.post(APPROVE, json!({ "account": ALICE_DID })).await;
    assert_api_error(&r, StatusCode::FORBIDDEN, "login_required");
    let d = spa.describe().await;
    assert_eq!(d.body["accounts"], json!([]), "nobody was signed in");
    assert_eq!(spa.sign_in("alice.test", PASSWORD, false).await.body["screen"], "consent");
    assert!(get(&redirect_of(&spa.post(APPROVE, json!({ "account": ALICE_DID })).await), "code").is_some());
}

#[tokio::test]
async fn consent_api_sign_in_shares_the_rate_limit_of_the_pages() {
    let h =
        Harness::with(|b| b.consent_json_api(true).sign_in_limits(atauth_server::SignInLimits::default()))
            .await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut spa = Spa::new(&h, &c, &uri);
    spa.describe().await;
    for _ in 0..10 {
        assert_eq!(spa.sign_in("alice.test", "typo", false).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = spa.sign_in("alice.test", PASSWORD, false).await;
    assert_api_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The same buckets as the HTML form: the page (in the same browser, which the request is
    // bound to) refuses the right password too.
    let mut b = Browser::new(&h);
    b.cookie = spa.cookie.clone();
    let page = b.open(&c.client_id, &uri).await;
    let form = crate::ui::sign_in(&mut b, &page, "alice.test", PASSWORD, false).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
    // Nothing signed in, nothing consumed: after the refill alice gets through.
    assert_eq!(spa.describe().await.body["accounts"], json!([]));
    h.advance(61);
    assert_eq!(spa.sign_in("alice.test", PASSWORD, false).await.body["screen"], "consent");
}

#[tokio::test]
async fn consent_api_approve_of_a_scope_subset_grants_exactly_that_scope() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let wider = "atproto transition:generic transition:email";
    let uri = par(&h, &c, &[("scope", Some(wider))]).await;
    let mut spa = Spa::new(&h, &c, &uri);
    let d = spa.describe().await;
    let described: Vec<&str> =
        d.body["scopes"].as_array().unwrap().iter().map(|s| s["scope"].as_str().unwrap()).collect();
    assert_eq!(described, ["atproto", "transition:generic", "transition:email"]);
    spa.sign_in("alice.test", PASSWORD, false).await;
    // AS-AUTHZ-04: atproto cannot be dropped, nothing unrequested added; neither consumes.
    let r = spa.post(APPROVE, json!({ "account": ALICE_DID, "scopes": ["transition:email"] })).await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_scope");
    let r = spa
        .post(APPROVE, json!({ "account": ALICE_DID, "scopes": ["atproto", "transition:chat.bsky"] }))
        .await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_scope");
    // Any order; the grant keeps the request's.
    let r =
        spa.post(APPROVE, json!({ "account": ALICE_DID, "scopes": ["transition:email", "atproto"] })).await;
    let t = token(&h, &c, get(&redirect_of(&r), "code").unwrap()).await;
    assert_eq!(t.body["scope"], "atproto transition:email");
}

#[tokio::test]
async fn consent_api_remembers_consent_like_the_pages() {
    let h = api_harness().await;
    let c = TestClient::loopback();
    let uri = par(&h, &c, &[]).await;
    let mut spa = Spa::new(&h, &c, &uri);
    spa.describe().await;
    assert_eq!(spa.sign_in("alice.test", PASSWORD, true).await.body["accounts"][0]["remembered"], true);
    redirect_of(&spa.post(APPROVE, json!({ "account": ALICE_DID })).await);

    // AS-AUTHZ-05: the same scope again on this device ends without a screen.
    let uri = par(&h, &c, &[]).await;
    let mut next = Spa::new(&h, &c, &uri);
    next.cookie = spa.cookie.clone();
    let r = next.describe().await;
    let p = redirect_of(&r);
    assert_eq!(token(&h, &c, get(&p, "code").unwrap()).await.body["scope"], "atproto transition:generic");

    // A wider request asks again, naming what was granted before.
    let uri = par(&h, &c, &[("scope", Some("atproto transition:generic transition:email"))]).await;
    let mut wider = Spa::new(&h, &c, &uri);
    wider.cookie = spa.cookie.clone();
    let d = wider.describe().await;
    assert_eq!(d.body["screen"], "consent", "{}", d.raw);
    assert_eq!(d.body["accounts"][0]["consent_remembered"], false);
    assert_eq!(d.body["accounts"][0]["already_granted"], json!(["atproto", "transition:generic"]));
}

#[tokio::test]
async fn consent_api_is_off_by_default_outside_development_mode() {
    let h = Harness::new().await;
    assert!(!h.server.config().consent_json_api);
    for (method, path) in [("GET", REQUEST), ("POST", SIGN_IN), ("POST", APPROVE), ("POST", DENY)] {
        let r = h
            .send(
                http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{}"))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let dev = atauth_server::AuthServer::builder("http://localhost:2583").dev_mode(true).build().unwrap();
    assert!(dev.config().consent_json_api);
    assert!(dev.config().password_consent_api, "the headless route keeps its own switch");
    let prod = atauth_server::AuthServer::builder(ISSUER).consent_json_api(true).build().unwrap();
    assert!(prod.config().consent_json_api && !prod.config().password_consent_api);
}
