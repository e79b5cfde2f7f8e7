//! An in-process atauth-server for integration tests (feature `server`): the server on a manual
//! clock with two accounts, its router driven with `tower::oneshot`, a DPoP-signing OAuth client,
//! and a browser for the sign-in UI. Also the pieces other harnesses reuse: [`account_record`]
//! (an account whose password hash is computed once per process) and [`Resp`], a response read
//! whole.

// A harness step that fails is a failed test: it panics with the cause.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use atauth_crypto::dpop::{DpopSigner, ProofParams};
use atauth_crypto::pkce::PkceVerifier;
use atauth_crypto::{Clock, ManualClock, SecretString};
use atauth_server::store::{AccountRecord, AccountStatus, SqliteStore, Stores};
use atauth_server::{AuthServer, AuthServerBuilder};
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::form::{encode as form, param as get, redirect_params};

/// The harness clock's start (Unix seconds).
pub const T0: u64 = 1_750_000_000;
/// The harness server's issuer.
pub const ISSUER: &str = "https://pds.example.com";
/// `alice.test`, the first account.
pub const ALICE_DID: &str = "did:plc:alice000000000000000000";
/// `bob.test`, the second account.
pub const BOB_DID: &str = "did:plc:bob00000000000000000000";
/// Both accounts' password.
pub const PASSWORD: &str = "alice-pass-123";
/// The redirect URI of [`TestClient::loopback`].
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";

/// A loopback (development) client id asking for `atproto transition:generic transition:email`.
pub fn loopback_client_id() -> String {
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric%20transition%3Aemail"
        .to_owned()
}

/// A server on a manual clock with accounts alice and bob, and its router.
pub struct Harness {
    /// The server core.
    pub server: AuthServer,
    /// Its full router (`web::router`).
    pub router: Router,
    /// The clock the server reads; advance it with [`Harness::advance`].
    pub clock: Arc<ManualClock>,
}

/// A response read whole.
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text.
    pub raw: String,
}

/// Sends one request through `router` and reads the whole response.
pub async fn send(router: &Router, req: Request<Body>) -> Resp {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, body, raw }
}

impl Resp {
    /// Asserts the status and the JSON `error` code together (the failure shows the body).
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, error: &str) {
        assert_eq!((self.status, self.body["error"].as_str()), (status, Some(error)), "{}", self.raw);
    }

    /// A string field of the JSON body; panics naming the field when it is absent.
    #[track_caller]
    pub fn s(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("no {key} in {}", self.raw)).to_owned()
    }

    /// The JSON `error` code, or `<none>`.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<none>")
    }
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The code on an HTML error page of the sign-in UI.
    pub fn page_code(&self) -> &str {
        self.raw
            .split_once("<p class=\"code\">")
            .and_then(|(_, rest)| rest.split_once("<code>"))
            .and_then(|(_, rest)| rest.split_once("</code>"))
            .map_or("<no error page>", |(code, _)| code)
    }
}

/// A stored, active account with password [`PASSWORD`] (scrypt in the reference format, computed
/// once per process) created at [`T0`].
pub fn account_record(did: &str, handle: &str, email: &str) -> AccountRecord {
    static HASH: std::sync::OnceLock<SecretString> = std::sync::OnceLock::new();
    let hash = HASH
        .get_or_init(|| {
            atauth_server::password::hash_with_salt(PASSWORD, "00112233445566778899aabbccddeeff").unwrap()
        })
        .clone();
    AccountRecord {
        did: did.into(),
        handle: handle.into(),
        email: Some(email.into()),
        password_hash: hash,
        signing_key_hex: None,
        created_at: T0 as i64,
        status: AccountStatus::Active,
    }
}

/// The harness's server builder: issuer, service DID, `.test` handles, generous sign-in and
/// sign-up limits.
pub fn builder(clock: &Arc<ManualClock>) -> AuthServerBuilder {
    AuthServer::builder(ISSUER)
        .clock(clock.clone() as Arc<dyn Clock>)
        .service_did("did:web:pds.example.com")
        .handle_domains([".test"])
        .password_hash_concurrency(2)
        // The OAuth tests log in through the headless consent API (off by default outside dev mode).
        .password_consent_api(true)
        // Many logins per test; the limits themselves are tested with their defaults (ui.rs).
        .sign_in_limits(generous_limits())
        // Likewise many sign-up attempts (the limit is tested on its own, signup.rs).
        .sign_up_limit(atauth_server::RateLimit { burst: 10_000, refill_every: Duration::from_secs(1) })
}

/// Sign-in limits no test reaches (many logins per test; the limits are tested with their defaults).
pub fn generous_limits() -> atauth_server::SignInLimits {
    let lots = atauth_server::RateLimit { burst: 10_000, refill_every: Duration::from_secs(1) };
    atauth_server::SignInLimits { per_identifier_and_ip: lots, per_identifier: lots, per_ip: lots }
}

impl Harness {
    /// A harness on in-memory stores.
    pub async fn new() -> Self {
        Self::with(|b| b).await
    }

    /// A harness on a temporary SQLite store.
    pub async fn sqlite() -> Self {
        Self::with(|b| b.stores(Stores::single(SqliteStore::open_temp().unwrap()))).await
    }

    /// A harness whose builder `f` may change first.
    pub async fn with(f: impl FnOnce(AuthServerBuilder) -> AuthServerBuilder) -> Self {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let server = f(builder(&clock)).build().unwrap();
        server
            .stores()
            .accounts
            .create_account(account_record(ALICE_DID, "alice.test", "alice@example.test"))
            .await
            .unwrap();
        server
            .stores()
            .accounts
            .create_account(account_record(BOB_DID, "bob.test", "bob@example.test"))
            .await
            .unwrap();
        let router = atauth_server::web::router(server.clone());
        Self { server, router, clock }
    }

    /// The harness time (Unix seconds).
    pub fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    /// Moves the clock forward.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Sends a request through the router.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        send(&self.router, req).await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// POST a form with an optional DPoP proof.
    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)], dpop: Option<&str>) -> Resp {
        let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(p) = dpop {
            b = b.header("dpop", p);
        }
        self.send(b.body(Body::from(form(pairs))).unwrap()).await
    }
}

/// A client: a DPoP key, PKCE, and knowledge of the server's nonce.
pub struct TestClient {
    /// Its client id.
    pub client_id: String,
    /// Its redirect URI.
    pub redirect_uri: String,
    /// Its DPoP key.
    pub dpop: DpopSigner,
    /// This login's PKCE verifier.
    pub pkce: PkceVerifier,
    /// This login's `state`.
    pub state: String,
}

impl TestClient {
    /// A loopback client with fresh keys.
    pub fn loopback() -> Self {
        Self {
            client_id: loopback_client_id(),
            redirect_uri: LOOPBACK_REDIRECT.into(),
            dpop: DpopSigner::generate(),
            pkce: PkceVerifier::generate(),
            state: atauth_crypto::random::generate_state(),
        }
    }

    /// A proof for `method path` at the harness's time with the server's current nonce.
    pub fn proof(&self, h: &Harness, method: &str, path: &str, access_token: Option<&str>) -> String {
        let nonce = h.server.dpop_nonce();
        self.dpop.proof(&ProofParams {
            method,
            url: &format!("{ISSUER}{path}"),
            nonce: Some(&nonce),
            access_token,
            iat: h.now(),
        })
    }

    /// The PAR parameters of a normal request (alice, `atproto transition:generic`).
    pub fn par_params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", self.client_id.clone()),
            ("response_type", "code".into()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", "atproto transition:generic".into()),
            ("state", self.state.clone()),
            ("code_challenge", self.pkce.challenge()),
            ("code_challenge_method", "S256".into()),
            ("login_hint", "alice.test".into()),
        ]
    }

    /// PAR with these parameters and a valid proof.
    pub async fn par_with(&self, h: &Harness, params: &[(&'static str, String)]) -> Resp {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.post_form("/oauth/par", &pairs, Some(&self.proof(h, "POST", "/oauth/par", None))).await
    }

    /// PAR with [`Self::par_params`]; returns the `request_uri`.
    pub async fn par(&self, h: &Harness) -> String {
        let r = self.par_with(h, &self.par_params()).await;
        assert_eq!(r.status, StatusCode::CREATED, "PAR failed: {}", r.raw);
        r.body["request_uri"].as_str().unwrap().to_owned()
    }

    /// Approves through the interim consent API; returns the redirect's query parameters.
    pub async fn consent(&self, h: &Harness, request_uri: &str, identifier: &str) -> Vec<(String, String)> {
        let r = h
            .post_form(
                "/oauth/authorize/sign-in-and-approve",
                &[
                    ("client_id", &self.client_id),
                    ("request_uri", request_uri),
                    ("identifier", identifier),
                    ("password", PASSWORD),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "consent failed: {}", r.raw);
        redirect_params(r.header("location").unwrap())
    }

    /// PAR + consent; returns the code.
    pub async fn authorize(&self, h: &Harness) -> String {
        let uri = self.par(h).await;
        let params = self.consent(h, &uri, "alice.test").await;
        get(&params, "code").unwrap().to_owned()
    }

    /// The token-request parameters redeeming `code`.
    pub fn code_params(&self, code: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.into()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_verifier", self.pkce.expose_secret().into()),
            ("client_id", self.client_id.clone()),
        ]
    }

    /// A token request with these parameters and a valid proof.
    pub async fn token_with(&self, h: &Harness, params: &[(&'static str, String)]) -> Resp {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.post_form("/oauth/token", &pairs, Some(&self.proof(h, "POST", "/oauth/token", None))).await
    }

    /// Full login: returns the token response body.
    pub async fn login(&self, h: &Harness) -> Value {
        let code = self.authorize(h).await;
        let r = self.token_with(h, &self.code_params(&code)).await;
        assert_eq!(r.status, StatusCode::OK, "token failed: {}", r.raw);
        r.body
    }

    /// The token-request parameters of a refresh.
    pub fn refresh_params(&self, refresh: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh.into()),
            ("client_id", self.client_id.clone()),
        ]
    }

    /// `getSession` with this access token and a valid proof.
    pub async fn get_session(&self, h: &Harness, access_token: &str) -> Resp {
        let path = "/xrpc/com.atproto.server.getSession";
        let req = Request::get(path)
            .header("authorization", format!("DPoP {access_token}"))
            .header("dpop", self.proof(h, "GET", path, Some(access_token)))
            .body(Body::empty())
            .unwrap();
        h.send(req).await
    }
}

/// A browser for the sign-in UI: keeps the device cookie, sends `Origin` on POSTs, and can claim a
/// client address (`ConnectInfo`, as `web::serve` records it).
pub struct Browser<'h> {
    /// The harness it talks to.
    pub h: &'h Harness,
    /// The device cookie, once set.
    pub cookie: Option<String>,
    /// The client address it claims.
    pub ip: Option<std::net::SocketAddr>,
    /// The `Accept-Language` it sends on every request, if any.
    pub accept_language: Option<String>,
}

impl<'h> Browser<'h> {
    /// A browser without cookies.
    pub fn new(h: &'h Harness) -> Self {
        Self { h, cookie: None, ip: None, accept_language: None }
    }

    /// A browser without cookies that asks for pages in `accept_language`.
    pub fn with_language(h: &'h Harness, accept_language: &str) -> Self {
        Self { accept_language: Some(accept_language.to_owned()), ..Self::new(h) }
    }

    async fn send(&mut self, mut b: http::request::Builder, body: Body) -> Resp {
        if let Some(c) = &self.cookie {
            b = b.header("cookie", c.clone());
        }
        if let Some(l) = &self.accept_language {
            b = b.header("accept-language", l.clone());
        }
        let mut req = b.body(body).unwrap();
        if let Some(ip) = self.ip {
            req.extensions_mut().insert(axum::extract::ConnectInfo(ip));
        }
        let r = self.h.send(req).await;
        if let Some(set) = r.header("set-cookie") {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        r
    }

    /// GET a page.
    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(Request::get(path), Body::empty()).await
    }

    /// POST a form from our own pages (same origin).
    pub async fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let b = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", ISSUER)
            .header("sec-fetch-site", "same-origin");
        self.send(b, Body::from(form(pairs))).await
    }

    /// The authorization page of a pushed request.
    pub async fn open(&mut self, client_id: &str, request_uri: &str) -> Resp {
        self.get(&format!(
            "/oauth/authorize?{}",
            form(&[("client_id", client_id), ("request_uri", request_uri)])
        ))
        .await
    }
}

/// The value of the hidden input `name` on a page.
pub fn hidden(page: &Resp, name: &str) -> Option<String> {
    crate::form::hidden_input(&page.raw, name)
}
