//! A stateful mock authorization server + PDS (axum, 127.0.0.1) for the client's tests: DPoP
//! nonces in both challenge forms, PAR, code and refresh grants with rotation, revocation, and a
//! DPoP-bound `getSession`. Knobs in [`Knobs`] make it misbehave in one specific way at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err,
    dead_code,
    unreachable_pub,
    missing_docs
)]

pub mod backends;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atauth_client::{ClientConfig, DevOptions, OAuthClient};
use atauth_crypto::dpop::{DpopRequest, DpopVerifier};
use atauth_crypto::jws;
use atauth_crypto::{PublicKey, SignaturePolicy};
use atauth_identity::{DidDocument, IdentityResolver};
use atauth_oauth::{AuthorizationServerMetadata, Issuer, IssuerPolicy};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
pub const HANDLE: &str = "alice.test";

/// Ways to misbehave.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub callback_iss: Option<String>,
    pub token_sub: Option<String>,
    pub token_type: String,
    pub expires_in: i64,
    /// Every AS response is a nonce challenge with a brand-new nonce (T-02).
    pub always_new_nonce: bool,
    /// Refuse every refresh with invalid_grant.
    pub refresh_invalid_grant: bool,
    /// Delay token responses (slow server).
    pub token_delay: Option<Duration>,
    /// No revocation endpoint in the metadata.
    pub no_revocation: bool,
    /// The PDS's protected-resource metadata names this issuer instead.
    pub rs_issuer_override: Option<String>,
    /// AS metadata `issuer` override (T-09).
    pub metadata_issuer_override: Option<String>,
    /// Oversized AS metadata body (bytes of padding).
    pub metadata_padding: usize,
    /// Public key for verifying client assertions (confidential clients).
    pub client_key: Option<PublicKey>,
    /// AS metadata `protected_resources` (CL-DISC-06).
    pub protected_resources: Option<Vec<String>>,
    /// PAR answers 201 with an empty `request_uri` (CL-PAR-05).
    pub empty_request_uri: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            callback_iss: None,
            token_sub: None,
            token_type: "DPoP".into(),
            expires_in: 3600,
            always_new_nonce: false,
            refresh_invalid_grant: false,
            token_delay: None,
            no_revocation: false,
            rs_issuer_override: None,
            metadata_issuer_override: None,
            metadata_padding: 0,
            client_key: None,
            protected_resources: None,
            empty_request_uri: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParRecord {
    pub fields: HashMap<String, String>,
    pub jkt: String,
}

#[derive(Debug, Default)]
pub struct MockState {
    pub pars: HashMap<String, ParRecord>,
    pub codes: HashMap<String, ParRecord>,
    /// access token -> (did, jkt, expired)
    pub access: HashMap<String, (String, String, bool)>,
    /// live refresh token -> (did, jkt)
    pub refresh: HashMap<String, (String, String)>,
    pub revoked: Vec<String>,
    pub assertion_jtis: Vec<String>,
    pub assertion_exps: Vec<Option<i64>>,
    pub par_attempts: u32,
    pub htus: Vec<String>,
    pub nonce_challenges: u32,
}

pub struct World {
    pub as_origin: String,
    pub pds_origin: String,
    pub knobs: Mutex<Knobs>,
    pub state: Mutex<MockState>,
    pub nonce: AtomicU64,
    pub refreshes: AtomicU64,
    pub token_requests: AtomicU64,
    pub counter: AtomicU64,
}

fn now() -> i64 {
    atauth_crypto::clock::unix_seconds(std::time::SystemTime::now())
}

impl World {
    fn current_nonce(&self) -> String {
        format!("nonce-{}", self.nonce.load(Ordering::SeqCst))
    }

    fn next(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::SeqCst))
    }

    pub fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap()
    }

    pub fn st(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap()
    }

    /// Simulates the user approving: returns the callback query for an authorize URL.
    pub fn approve(&self, authorize_url: &url::Url) -> String {
        let request_uri =
            authorize_url.query_pairs().find(|(k, _)| k == "request_uri").unwrap().1.into_owned();
        let par = self.st().pars.get(&request_uri).cloned().expect("unknown request_uri");
        let code = self.next("code");
        self.st().codes.insert(code.clone(), par.clone());
        let iss = self.knobs().callback_iss.clone().unwrap_or_else(|| self.as_origin.clone());
        let state = par.fields.get("state").cloned().unwrap_or_default();
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &state)
            .append_pair("iss", &iss)
            .finish()
    }

    /// Marks every access token expired (the RS answers invalid_token).
    pub fn expire_access_tokens(&self) {
        for v in self.st().access.values_mut() {
            v.2 = true;
        }
    }
}

type W = State<Arc<World>>;

fn oauth_error(status: StatusCode, error: &str, nonce: Option<String>) -> Response {
    let mut res = (status, axum::Json(json!({"error": error, "error_description": error}))).into_response();
    if let Some(n) = nonce {
        res.headers_mut().insert("dpop-nonce", n.parse().unwrap());
    }
    res
}

/// Checks the DPoP proof for an AS endpoint; returns the jkt, or a ready error response.
fn check_as_dpop(w: &World, headers: &HeaderMap, path: &str) -> Result<String, Response> {
    if w.knobs().always_new_nonce {
        w.nonce.fetch_add(1, Ordering::SeqCst);
        w.st().nonce_challenges += 1;
        return Err(oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", Some(w.current_nonce())));
    }
    let proof = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", Some(w.current_nonce())))?;
    let url = format!("{}{}", w.as_origin, path);
    let v =
        DpopVerifier::default().verify(proof, &DpopRequest::new("POST", &url), now(), None).map_err(|e| {
            oauth_error(StatusCode::BAD_REQUEST, &format!("invalid_dpop_proof: {e}"), Some(w.current_nonce()))
        })?;
    if v.nonce.as_deref() != Some(w.current_nonce().as_str()) {
        w.st().nonce_challenges += 1;
        return Err(oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", Some(w.current_nonce())));
    }
    Ok(v.jkt)
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Verifies a client assertion if the world expects one (T-07, T-08).
fn check_assertion(w: &World, f: &HashMap<String, String>) -> Result<(), Response> {
    let Some(key) = w.knobs().client_key.clone() else { return Ok(()) };
    let bad = || oauth_error(StatusCode::BAD_REQUEST, "invalid_client", Some(w.current_nonce()));
    let assertion = f.get("client_assertion").ok_or_else(bad)?;
    let token = jws::decode(assertion).map_err(|_| bad())?;
    token.verify(&key, SignaturePolicy::AllowHighS).map_err(|_| bad())?;
    let claims: serde_json::Value = token.claims().map_err(|_| bad())?;
    if claims["aud"] != w.as_origin.as_str() || token.header().kid.is_none() {
        return Err(bad());
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
    let mut st = w.st();
    if st.assertion_jtis.contains(&jti) {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_client", Some(w.current_nonce())));
    }
    st.assertion_jtis.push(jti);
    st.assertion_exps.push(claims["exp"].as_i64());
    Ok(())
}

async fn rs_metadata(State(w): W) -> Response {
    let iss = w.knobs().rs_issuer_override.clone().unwrap_or_else(|| w.as_origin.clone());
    axum::Json(json!({"resource": w.pds_origin, "authorization_servers": [iss]})).into_response()
}

async fn as_metadata(State(w): W) -> Response {
    let issuer = Issuer::parse_with(&w.as_origin, IssuerPolicy::development()).unwrap();
    let mut m = AuthorizationServerMetadata::atproto_default(&issuer);
    let k = w.knobs().clone();
    if let Some(i) = k.metadata_issuer_override {
        m.issuer = i;
    }
    if k.no_revocation {
        m.revocation_endpoint = None;
    }
    m.protected_resources = k.protected_resources.clone();
    let mut v = serde_json::to_value(&m).unwrap();
    if k.metadata_padding > 0 {
        v["padding"] = "x".repeat(k.metadata_padding).into();
    }
    axum::Json(v).into_response()
}

async fn par(State(w): W, headers: HeaderMap, body: Bytes) -> Response {
    w.st().par_attempts += 1;
    let f = form(&body);
    if let Err(e) = check_assertion(&w, &f) {
        return e;
    }
    let jkt = match check_as_dpop(&w, &headers, "/oauth/par") {
        Ok(j) => j,
        Err(r) => return r,
    };
    let mut request_uri = format!("urn:ietf:params:oauth:request_uri:{}", w.next("req"));
    if w.knobs().empty_request_uri {
        request_uri.clear();
    }
    w.st().pars.insert(request_uri.clone(), ParRecord { fields: f, jkt });
    let mut res = (StatusCode::CREATED, axum::Json(json!({"request_uri": request_uri, "expires_in": 300})))
        .into_response();
    res.headers_mut().insert("dpop-nonce", w.current_nonce().parse().unwrap());
    res
}

async fn token(State(w): W, headers: HeaderMap, body: Bytes) -> Response {
    w.token_requests.fetch_add(1, Ordering::SeqCst);
    let delay = w.knobs().token_delay;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let f = form(&body);
    if let Err(e) = check_assertion(&w, &f) {
        return e;
    }
    let jkt = match check_as_dpop(&w, &headers, "/oauth/token") {
        Ok(j) => j,
        Err(r) => return r,
    };
    let k = w.knobs().clone();
    let nonce = Some(w.current_nonce());
    let did = match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            let Some(par) = w.st().codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", nonce);
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let challenge = atauth_crypto::pkce::s256_challenge(&verifier);
            if par.fields.get("code_challenge") != Some(&challenge)
                || par.fields.get("redirect_uri") != f.get("redirect_uri")
                || par.jkt != jkt
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", nonce);
            }
            k.token_sub.clone().unwrap_or_else(|| DID.to_owned())
        }
        Some("refresh_token") => {
            w.refreshes.fetch_add(1, Ordering::SeqCst);
            if k.refresh_invalid_grant {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", nonce);
            }
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            let Some((did, bound)) = w.st().refresh.remove(&rt) else {
                // Replay: REF revokes the whole session.
                w.st().refresh.clear();
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", nonce);
            };
            if bound != jkt {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", nonce);
            }
            did
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", nonce),
    };
    let at = w.next("at");
    let rt = w.next("rt");
    {
        let mut st = w.st();
        st.access.insert(at.clone(), (did.clone(), jkt.clone(), false));
        st.refresh.insert(rt.clone(), (did.clone(), jkt));
    }
    let mut res = axum::Json(json!({
        "access_token": at, "token_type": k.token_type, "refresh_token": rt,
        "scope": "atproto transition:generic", "sub": did, "expires_in": k.expires_in
    }))
    .into_response();
    res.headers_mut().insert("dpop-nonce", w.current_nonce().parse().unwrap());
    res
}

async fn revoke(State(w): W, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = check_as_dpop(&w, &headers, "/oauth/revoke") {
        return r;
    }
    if let Some(t) = f.get("token") {
        let mut st = w.st();
        st.revoked.push(t.clone());
        st.access.remove(t);
        st.refresh.remove(t);
    }
    StatusCode::OK.into_response()
}

fn rs_challenge(w: &World, error: &str) -> Response {
    let mut res = (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "InvalidToken", "message": error})))
        .into_response();
    res.headers_mut().insert(
        "www-authenticate",
        format!("DPoP error=\"{error}\", error_description=\"{error}\"").parse().unwrap(),
    );
    res.headers_mut().insert("dpop-nonce", w.current_nonce().parse().unwrap());
    res
}

/// Checks `Authorization: DPoP` + proof (with `ath`, RS nonce); returns the DID.
fn check_rs(w: &World, method: &str, path: &str, headers: &HeaderMap) -> Result<String, Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(token) = auth.strip_prefix("DPoP ") else {
        return Err(rs_challenge(w, "invalid_token"));
    };
    let proof = headers.get("dpop").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let url = format!("{}{}", w.pds_origin, path);
    w.st().htus.push(
        jws::decode(proof)
            .ok()
            .and_then(|j| j.claims::<serde_json::Value>().ok())
            .map(|c| c["htu"].to_string())
            .unwrap_or_default(),
    );
    let v = DpopVerifier::default()
        .verify(proof, &DpopRequest::new(method, &url).with_access_token(token), now(), None)
        .map_err(|_| rs_challenge(w, "invalid_dpop_proof"))?;
    if v.nonce.as_deref() != Some(w.current_nonce().as_str()) {
        w.st().nonce_challenges += 1;
        return Err(rs_challenge(w, "use_dpop_nonce"));
    }
    let Some((did, jkt, expired)) = w.st().access.get(token).cloned() else {
        return Err(rs_challenge(w, "invalid_token"));
    };
    if expired || jkt != v.jkt {
        return Err(rs_challenge(w, "invalid_token"));
    }
    Ok(did)
}

async fn get_session(State(w): W, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let _ = q;
    match check_rs(&w, "GET", "/xrpc/com.atproto.server.getSession", &headers) {
        Ok(did) => {
            let mut res = axum::Json(json!({"did": did, "handle": HANDLE})).into_response();
            res.headers_mut().insert("dpop-nonce", w.current_nonce().parse().unwrap());
            res
        }
        Err(r) => r,
    }
}

async fn echo(State(w): W, headers: HeaderMap, body: Bytes) -> Response {
    match check_rs(&w, "POST", "/xrpc/com.example.echo", &headers) {
        Ok(_) => axum::Json(json!({
            "len": body.len(),
            "contentType": headers.get("content-type").and_then(|v| v.to_str().ok()),
            "proxy": headers.get("atproto-proxy").and_then(|v| v.to_str().ok()),
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn not_found(State(w): W, headers: HeaderMap) -> Response {
    match check_rs(&w, "GET", "/xrpc/com.example.missing", &headers) {
        Ok(_) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "RecordNotFound", "message": "nope"})))
            .into_response(),
        Err(r) => r,
    }
}

fn app(w: Arc<World>) -> Router {
    Router::new()
        .route("/.well-known/oauth-protected-resource", get(rs_metadata))
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/oauth/par", post(par))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/xrpc/com.atproto.server.getSession", get(get_session))
        .route("/xrpc/com.example.echo", post(echo))
        .route("/xrpc/com.example.missing", get(not_found))
        .with_state(w)
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, origin)
}

/// Starts the mock. With `split`, the AS and the PDS run on two origins (T-03).
pub async fn start(split: bool) -> Arc<World> {
    let (l1, o1) = bind().await;
    let (l2, o2) = if split {
        let (l, o) = bind().await;
        (Some(l), o)
    } else {
        (None, o1.clone())
    };
    let w = Arc::new(World {
        as_origin: o1,
        pds_origin: o2,
        knobs: Mutex::new(Knobs::default()),
        state: Mutex::new(MockState::default()),
        nonce: AtomicU64::new(1),
        refreshes: AtomicU64::new(0),
        token_requests: AtomicU64::new(0),
        counter: AtomicU64::new(1),
    });
    let a = app(Arc::clone(&w));
    tokio::spawn(async move { axum::serve(l1, a).await.unwrap() });
    if let Some(l2) = l2 {
        let a = app(Arc::clone(&w));
        tokio::spawn(async move { axum::serve(l2, a).await.unwrap() });
    }
    w
}

pub fn did_doc(pds: &str) -> DidDocument {
    atauth_testkit::identity::did_doc(DID, HANDLE, pds)
}

pub fn resolver(w: &World) -> IdentityResolver {
    resolver_for(&w.pds_origin)
}

pub fn resolver_for(pds_origin: &str) -> IdentityResolver {
    atauth_testkit::identity::resolver(DID, HANDLE, pds_origin)
}

pub fn dev() -> DevOptions {
    DevOptions { allow_http_loopback: true, ..Default::default() }
}

pub fn loopback_config() -> ClientConfig {
    ClientConfig::loopback(&["http://127.0.0.1:8080/callback"], "atproto transition:generic")
        .unwrap()
        .with_dev(dev())
}

pub fn client(w: &World) -> OAuthClient {
    OAuthClient::builder(loopback_config()).identity_resolver(resolver(w)).build().unwrap()
}
