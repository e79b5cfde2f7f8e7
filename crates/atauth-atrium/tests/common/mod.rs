//! A small PDS for the adapter's tests, from atauth-server's public API only: the authorization
//! server's router (OAuth, legacy sessions, `resolveHandle`) plus record routes behind its
//! [`SessionAuth`] extractor (DPoP-bound OAuth tokens and legacy Bearer tokens), an in-memory repo,
//! and a server clock the test moves to expire access tokens. It records every request (method,
//! path, `atproto-proxy`) so tests can count refreshes from the server's side.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use atauth_client::{AuthorizeOptions, ClientConfig, DevOptions, OAuthClient, OAuthSession};
use atauth_crypto::ManualClock;
use atauth_server::legacy::{LegacyOptions, SessionAuth};
use atauth_server::password::hash_with_salt;
use atauth_server::store::{AccountRecord, AccountStatus};
use atauth_server::{AuthServer, XrpcError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const ALICE: &str = "did:plc:alice00000000000000000000";
pub const BOB: &str = "did:plc:bob0000000000000000000000";
pub const PASSWORD: &str = "alice-pass-123";
const SALT: &str = "00112233445566778899aabbccddeeff";
/// Access tokens (OAuth and legacy) live this long on the server's clock: longer than the client's
/// refresh-ahead margin (10 s + up to 30 s of jitter), so only the server's clock expires them.
pub const ACCESS_LIFETIME: Duration = Duration::from_secs(60);

/// One stored record.
#[derive(Debug, Clone)]
pub struct Stored {
    pub cid: String,
    pub value: Value,
}

/// What the PDS holds and saw.
#[derive(Debug, Default)]
pub struct Repo {
    /// (did, collection) → rkey → record.
    pub records: BTreeMap<(String, String), BTreeMap<String, Stored>>,
    pub blobs: BTreeMap<String, (String, Vec<u8>)>,
    pub next_rkey: u64,
    /// `METHOD path` of every request, with its `atproto-proxy` header.
    pub requests: Vec<(String, Option<String>)>,
    /// Writes allowed before `createRecord` answers 429 `RateLimitExceeded` with `ratelimit-*`
    /// headers (the reference PDS limits repo writes the same way); `None`: no limit.
    pub write_limit: Option<usize>,
}

#[derive(Clone)]
pub struct PdsState {
    pub server: AuthServer,
    pub repo: Arc<Mutex<Repo>>,
}

impl FromRef<PdsState> for AuthServer {
    fn from_ref(state: &PdsState) -> Self {
        state.server.clone()
    }
}

/// A CIDv1 (sha-256) in base32 for `codec` (0x71 dag-cbor, 0x55 raw). The bytes hashed are the JSON,
/// not DAG-CBOR: what matters here is a well-formed, content-derived CID.
fn cid(codec: u8, bytes: &[u8]) -> String {
    let mut raw = vec![0x01, codec, 0x12, 0x20];
    raw.extend_from_slice(&atauth_crypto::hash::sha256(bytes));
    format!("b{}", atauth_server::plc::base32_lower(&raw))
}

fn xrpc(status: StatusCode, error: &'static str, message: &str) -> Response {
    XrpcError::new(status, error, message).into_response()
}

fn json_ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// RS-SCOPE-01 for writes: OAuth sessions need `repo:<collection>?action=<action>` or
/// `transition:generic`; legacy sessions may write.
fn may_write(auth: &SessionAuth, collection: &str, action: &str) -> Result<(), Response> {
    let SessionAuth::OAuth(access) = auth else { return Ok(()) };
    let scope = format!("repo:{collection}?action={action}");
    access
        .require_scope(&[scope.as_str(), "transition:generic"])
        .map_err(|e| xrpc(StatusCode::FORBIDDEN, "ScopeMissingError", &e.to_string()))
}

async fn create_record(State(st): State<PdsState>, auth: SessionAuth, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "body is not JSON");
    };
    let (Some(repo), Some(collection), Some(record)) =
        (input["repo"].as_str(), input["collection"].as_str(), input.get("record"))
    else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "repo, collection and record are required");
    };
    if repo != auth.did() {
        return xrpc(StatusCode::FORBIDDEN, "InvalidRequest", "not your repo");
    }
    if let Err(r) = may_write(&auth, collection, "create") {
        return r;
    }
    let mut r = st.repo.lock().unwrap();
    if r.write_limit.is_some_and(|limit| r.next_rkey as usize >= limit) {
        let reset = st.server.now() + 60;
        let mut res = xrpc(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", "Rate Limit Exceeded");
        let h = res.headers_mut();
        h.insert("ratelimit-limit", HeaderValue::from(r.write_limit.unwrap_or_default()));
        h.insert("ratelimit-remaining", HeaderValue::from(0));
        h.insert("ratelimit-reset", HeaderValue::from(reset));
        return res;
    }
    r.next_rkey += 1;
    let rkey = format!("3kaaaaaaaa{:03}", r.next_rkey);
    let cid = cid(0x71, record.to_string().as_bytes());
    r.records
        .entry((repo.to_owned(), collection.to_owned()))
        .or_default()
        .insert(rkey.clone(), Stored { cid: cid.clone(), value: record.clone() });
    json_ok(json!({ "uri": format!("at://{repo}/{collection}/{rkey}"), "cid": cid }))
}

async fn get_record(
    State(st): State<PdsState>,
    _auth: SessionAuth,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let (Some(repo), Some(collection), Some(rkey)) = (q.get("repo"), q.get("collection"), q.get("rkey"))
    else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "repo, collection and rkey are required");
    };
    let r = st.repo.lock().unwrap();
    match r.records.get(&(repo.clone(), collection.clone())).and_then(|c| c.get(rkey)) {
        Some(s) => json_ok(json!({
            "uri": format!("at://{repo}/{collection}/{rkey}"), "cid": s.cid, "value": s.value
        })),
        None => xrpc(StatusCode::BAD_REQUEST, "RecordNotFound", "Could not locate record"),
    }
}

async fn list_records(
    State(st): State<PdsState>,
    _auth: SessionAuth,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let (Some(repo), Some(collection)) = (q.get("repo"), q.get("collection")) else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "repo and collection are required");
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50).clamp(1, 100);
    let r = st.repo.lock().unwrap();
    let empty = BTreeMap::new();
    let all = r.records.get(&(repo.clone(), collection.clone())).unwrap_or(&empty);
    // Newest first; the cursor is the last rkey returned.
    let page: Vec<(&String, &Stored)> = all
        .iter()
        .rev()
        .filter(|(k, _)| q.get("cursor").is_none_or(|c| k.as_str() < c.as_str()))
        .take(limit)
        .collect();
    let records: Vec<Value> = page
        .iter()
        .map(|(k, s)| json!({ "uri": format!("at://{repo}/{collection}/{k}"), "cid": s.cid, "value": s.value }))
        .collect();
    let mut out = json!({ "records": records });
    if page.len() == limit
        && let Some((k, _)) = page.last()
    {
        out["cursor"] = json!(k);
    }
    json_ok(out)
}

async fn delete_record(State(st): State<PdsState>, auth: SessionAuth, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "body is not JSON");
    };
    let (Some(repo), Some(collection), Some(rkey)) =
        (input["repo"].as_str(), input["collection"].as_str(), input["rkey"].as_str())
    else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "repo, collection and rkey are required");
    };
    if repo != auth.did() {
        return xrpc(StatusCode::FORBIDDEN, "InvalidRequest", "not your repo");
    }
    if let Err(r) = may_write(&auth, collection, "delete") {
        return r;
    }
    let mut r = st.repo.lock().unwrap();
    r.records.get_mut(&(repo.to_owned(), collection.to_owned())).and_then(|c| c.remove(rkey));
    json_ok(json!({}))
}

async fn upload_blob(
    State(st): State<PdsState>,
    auth: SessionAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let SessionAuth::OAuth(access) = &auth
        && let Err(e) = access.require_scope(&["blob:*/*", "transition:generic"])
    {
        return xrpc(StatusCode::FORBIDDEN, "ScopeMissingError", &e.to_string());
    }
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("*/*").to_owned();
    let cid = cid(0x55, &body);
    let size = body.len();
    st.repo.lock().unwrap().blobs.insert(cid.clone(), (mime.clone(), body.to_vec()));
    json_ok(json!({ "blob": { "$type": "blob", "ref": { "$link": cid }, "mimeType": mime, "size": size } }))
}

/// An app-view call a PDS would forward when `atproto-proxy` names the app view.
async fn get_profile(
    auth: SessionAuth,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let proxy = headers.get("atproto-proxy").and_then(|v| v.to_str().ok());
    if proxy != Some(atauth_atrium::BSKY_APPVIEW) {
        return xrpc(StatusCode::NOT_IMPLEMENTED, "MethodNotImplemented", "no app view for this request");
    }
    let actor = q.get("actor").map_or(auth.did(), String::as_str);
    let handle = if actor == BOB || actor == "bob.test" { "bob.test" } else { "alice.test" };
    let did = if handle == "bob.test" { BOB } else { ALICE };
    json_ok(json!({ "did": did, "handle": handle, "displayName": handle.trim_end_matches(".test") }))
}

async fn record_requests(State(st): State<PdsState>, req: Request, next: Next) -> Response {
    let proxy = req.headers().get("atproto-proxy").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let line = format!("{} {}", req.method(), req.uri().path());
    st.repo.lock().unwrap().requests.push((line, proxy));
    let mut res = next.run(req).await;
    // RS-DPOP-03: a fresh nonce on every resource response.
    if let Ok(n) = HeaderValue::from_str(&st.server.dpop_nonce()) {
        res.headers_mut().insert("dpop-nonce", n);
    }
    res
}

/// A running PDS.
pub struct Pds {
    pub url: String,
    pub server: AuthServer,
    pub clock: Arc<ManualClock>,
    pub repo: Arc<Mutex<Repo>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Pds {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

async fn add_account(server: &AuthServer, did: &str, handle: &str) {
    server
        .stores()
        .accounts
        .create_account(AccountRecord {
            did: did.into(),
            handle: handle.into(),
            email: None,
            password_hash: hash_with_salt(PASSWORD, SALT).unwrap(),
            signing_key_hex: None,
            created_at: now() as i64,
            status: AccountStatus::Active,
        })
        .await
        .unwrap();
}

impl Pds {
    /// Starts the PDS on `127.0.0.1` (issuer `http://localhost:PORT`) with `alice.test` and `bob.test`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let clock = Arc::new(ManualClock::at_unix(now()));
        let server = AuthServer::builder(&url)
            .dev_mode(true)
            .handle_domains([".test"])
            .clock(clock.clone())
            .access_token_lifetime(ACCESS_LIFETIME)
            .password_hash_concurrency(1)
            .legacy(LegacyOptions { access_lifetime: ACCESS_LIFETIME, ..LegacyOptions::default() })
            .build()
            .unwrap();
        add_account(&server, ALICE, "alice.test").await;
        add_account(&server, BOB, "bob.test").await;
        let st = PdsState { server: server.clone(), repo: Arc::default() };
        let records = Router::new()
            .route("/xrpc/com.atproto.repo.createRecord", post(create_record))
            .route("/xrpc/com.atproto.repo.getRecord", get(get_record))
            .route("/xrpc/com.atproto.repo.listRecords", get(list_records))
            .route("/xrpc/com.atproto.repo.deleteRecord", post(delete_record))
            .route("/xrpc/com.atproto.repo.uploadBlob", post(upload_blob))
            .route("/xrpc/app.bsky.actor.getProfile", get(get_profile))
            .with_state(st.clone());
        let app = atauth_server::web::router(server.clone())
            .merge(records)
            .layer(middleware::from_fn_with_state(st.clone(), record_requests));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self { url, server, clock, repo: st.repo, stop: Some(tx) }
    }

    /// How many requests matched `METHOD path`.
    pub fn count(&self, line: &str) -> usize {
        self.repo.lock().unwrap().requests.iter().filter(|(l, _)| l == line).count()
    }

    /// The `atproto-proxy` header of the last request to `METHOD path`.
    pub fn last_proxy(&self, line: &str) -> Option<String> {
        self.repo.lock().unwrap().requests.iter().rev().find(|(l, _)| l == line).and_then(|(_, p)| p.clone())
    }

    /// Moves the server's clock past the access-token lifetime: every access token issued so far is
    /// now expired (the client's clock is not moved, so only the server's answer tells it).
    pub fn expire_access_tokens(&self) {
        self.clock.advance(ACCESS_LIFETIME + Duration::from_secs(5));
    }

    /// An OAuth client for this PDS: a loopback client, alice's and bob's identities in memory.
    pub fn client(&self) -> OAuthClient {
        let config =
            ClientConfig::loopback(&["http://127.0.0.1:49152/callback"], "atproto transition:generic")
                .unwrap()
                .with_dev(DevOptions { allow_http_loopback: true, plc_url: None, handle_resolver_url: None });
        OAuthClient::builder(config)
            .identity_resolver(atauth_testkit::identity::resolver(ALICE, "alice.test", &self.url))
            .build()
            .unwrap()
    }

    /// Logs alice in through the server's consent API, granting `scope` (default: all requested).
    pub async fn login(&self, client: &OAuthClient, scope: Option<&str>) -> OAuthSession {
        let options = AuthorizeOptions { scope: scope.map(str::to_owned), ..AuthorizeOptions::default() };
        let url = client.authorize("alice.test", options).await.unwrap();
        let redirect =
            atauth_testkit::consent::atauth_interim(&url, "alice.test", PASSWORD, true).await.unwrap();
        client.callback_query(redirect.query().unwrap()).await.unwrap().session
    }

    /// A legacy (password) session for alice.
    pub async fn password_login(&self) -> atauth_client::PasswordSession {
        let http =
            atauth_identity::http::SafeHttpClient::builder().allow_http_loopback(true).build().unwrap();
        let pds = url::Url::parse(&self.url).unwrap();
        atauth_client::PasswordSession::login(http, &pds, "alice.test", PASSWORD, None).await.unwrap()
    }
}
