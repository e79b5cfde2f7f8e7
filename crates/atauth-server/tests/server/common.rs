//! Test harness: a server on a manual clock, a DPoP-signing test client, and request helpers.

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

pub use atauth_testkit::form::{encode as form, param as get, redirect_params, with_param as with};

pub const T0: u64 = 1_750_000_000;
pub const ISSUER: &str = "https://pds.example.com";
pub const ALICE_DID: &str = "did:plc:alice000000000000000000";
pub const BOB_DID: &str = "did:plc:bob00000000000000000000";
pub const PASSWORD: &str = "alice-pass-123";
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";

pub fn loopback_client_id() -> String {
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric%20transition%3Aemail"
        .to_owned()
}

pub struct Harness {
    pub server: AuthServer,
    pub router: Router,
    pub clock: Arc<ManualClock>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Resp {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<none>")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The code on an HTML error page of the sign-in UI.
    pub fn page_code(&self) -> &str {
        self.raw
            .split_once("Error code: <code>")
            .and_then(|(_, rest)| rest.split_once("</code>"))
            .map_or("<no error page>", |(code, _)| code)
    }
}

/// A stored account (scrypt in the reference format, computed once per process).
fn account(did: &str, handle: &str, email: &str) -> AccountRecord {
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

pub fn builder(clock: &Arc<ManualClock>) -> AuthServerBuilder {
    AuthServer::builder(ISSUER)
        .clock(clock.clone() as Arc<dyn Clock>)
        .service_did("did:web:pds.example.com")
        .handle_domains([".test"])
        .password_hash_concurrency(2)
        // Many logins per test; the limits themselves are tested with their defaults (ui.rs).
        .sign_in_limits(generous_limits())
}

pub fn generous_limits() -> atauth_server::SignInLimits {
    let lots = atauth_server::RateLimit { burst: 10_000, refill_every: Duration::from_secs(1) };
    atauth_server::SignInLimits { per_identifier_and_ip: lots, per_identifier: lots, per_ip: lots }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|b| b).await
    }

    pub async fn sqlite() -> Self {
        Self::with(|b| b.stores(Stores::single(SqliteStore::open_temp().unwrap()))).await
    }

    pub async fn with(f: impl FnOnce(AuthServerBuilder) -> AuthServerBuilder) -> Self {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let server = f(builder(&clock)).build().unwrap();
        server
            .stores()
            .accounts
            .create_account(account(ALICE_DID, "alice.test", "alice@example.test"))
            .await
            .unwrap();
        server
            .stores()
            .accounts
            .create_account(account(BOB_DID, "bob.test", "bob@example.test"))
            .await
            .unwrap();
        let router = atauth_server::web::router(server.clone());
        Self { server, router, clock }
    }

    pub fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, body, raw }
    }

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
    pub client_id: String,
    pub redirect_uri: String,
    pub dpop: DpopSigner,
    pub pkce: PkceVerifier,
    pub state: String,
}

impl TestClient {
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

    pub async fn par_with(&self, h: &Harness, params: &[(&'static str, String)]) -> Resp {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.post_form("/oauth/par", &pairs, Some(&self.proof(h, "POST", "/oauth/par", None))).await
    }

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

    pub fn code_params(&self, code: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.into()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_verifier", self.pkce.expose_secret().into()),
            ("client_id", self.client_id.clone()),
        ]
    }

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

    pub fn refresh_params(&self, refresh: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh.into()),
            ("client_id", self.client_id.clone()),
        ]
    }

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
    pub h: &'h Harness,
    pub cookie: Option<String>,
    pub ip: Option<std::net::SocketAddr>,
}

impl<'h> Browser<'h> {
    pub fn new(h: &'h Harness) -> Self {
        Self { h, cookie: None, ip: None }
    }

    async fn send(&mut self, mut b: http::request::Builder, body: Body) -> Resp {
        if let Some(c) = &self.cookie {
            b = b.header("cookie", c.clone());
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
    atauth_testkit::form::hidden_input(&page.raw, name)
}
