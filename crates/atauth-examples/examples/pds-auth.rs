//! Embed atauth's authorization server and its resource-server check in your own axum app, over
//! your own account store.
//!
//! - **Your accounts**: [`MyUsers`] implements atauth-server's `AccountStore` over the app's own
//!   table (here a map; in your app, your database). Everything else (PAR requests, codes, token
//!   families, devices, replay) stays in atauth's stores (`Stores::memory()` here; SQLite with
//!   `AuthServer::builder(..).data_dir(..)`).
//! - **The authorization server**: `atauth_server::web::router(server)`, merged into your router:
//!   metadata, PAR, the sign-in/consent UI, token, revocation, legacy sessions, `resolveHandle`.
//! - **Your resource routes** take the `SessionAuth` extractor: a DPoP-bound OAuth token (every
//!   RFC 9449 check, nonce, revocation) or a legacy Bearer token; `require_scope` answers 403
//!   `ScopeMissingError` when the token lacks the permission (RS-WWW-02). Here: a toy record store
//!   with `createRecord`, `getRecord` and `listRecords`.
//!
//! Offline (accounts are `did:plc`s registered in a PLC directory):
//!
//! ```sh
//! interop/node22 interop/ref-pds.mjs --plc-only          # prints {"plcUrl": "http://127.0.0.1:…"}
//! cargo run -p atauth-examples --example pds-auth -- --plc-url PLC [--port 2590]   # 0: any free port
//! ```
//!
//! It creates `alice.test` with a random password and prints it; log in with the
//! `login-and-post` example, `atauth login`, or any atproto OAuth client (issuer
//! `http://localhost:PORT`, development mode).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use atauth_crypto::SecretString;
use atauth_server::account::NewAccount;
use atauth_server::legacy::SessionAuth;
use atauth_server::store::{AccountRecord, AccountStatus, AccountStore, StoreError, Stores};
use atauth_server::{AuthServer, XrpcError};
use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The app's own users, keyed by DID. atauth reads and writes accounts only through this trait.
#[derive(Default)]
struct MyUsers {
    by_did: Mutex<HashMap<String, AccountRecord>>,
}

impl MyUsers {
    fn find(&self, pred: impl Fn(&AccountRecord) -> bool) -> Option<AccountRecord> {
        self.by_did.lock().ok()?.values().find(|a| pred(a)).cloned()
    }
}

#[async_trait]
impl AccountStore for MyUsers {
    async fn create_account(&self, account: AccountRecord) -> Result<(), StoreError> {
        let mut users = self.by_did.lock().map_err(|_| StoreError::Conflict("poisoned"))?;
        if users.contains_key(&account.did) {
            return Err(StoreError::Conflict("did"));
        }
        if users.values().any(|a| a.handle == account.handle) {
            return Err(StoreError::Conflict("handle"));
        }
        if account.email.is_some() && users.values().any(|a| a.email == account.email) {
            return Err(StoreError::Conflict("email"));
        }
        users.insert(account.did.clone(), account);
        Ok(())
    }
    async fn account_by_did(&self, did: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.find(|a| a.did == did))
    }
    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.find(|a| a.handle == handle))
    }
    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.find(|a| a.email.as_deref() == Some(email)))
    }
    async fn set_account_status(&self, did: &str, status: AccountStatus) -> Result<bool, StoreError> {
        let mut users = self.by_did.lock().map_err(|_| StoreError::Conflict("poisoned"))?;
        Ok(users.get_mut(did).map(|a| a.status = status).is_some())
    }
    async fn set_password_hash(&self, did: &str, hash: &SecretString) -> Result<bool, StoreError> {
        let mut users = self.by_did.lock().map_err(|_| StoreError::Conflict("poisoned"))?;
        Ok(users.get_mut(did).map(|a| a.password_hash = hash.clone()).is_some())
    }
}

/// The toy record store: (did, collection) → rkey → `{cid, value}`.
type Records = BTreeMap<(String, String), BTreeMap<String, Value>>;

/// Your app's state; `SessionAuth` finds the `AuthServer` in it through `FromRef`.
#[derive(Clone)]
struct App {
    auth: AuthServer,
    records: Arc<Mutex<Records>>,
}

impl FromRef<App> for AuthServer {
    fn from_ref(app: &App) -> Self {
        app.auth.clone()
    }
}

fn xrpc(status: StatusCode, error: &'static str, message: &str) -> Response {
    XrpcError::new(status, error, message).into_response()
}

/// `com.atproto.repo.createRecord` into the caller's own repo.
async fn create_record(State(app): State<App>, auth: SessionAuth, Json(input): Json<Value>) -> Response {
    let (Some(collection), Some(record)) = (input["collection"].as_str(), input.get("record")) else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "collection and record are required");
    };
    if input["repo"].as_str() != Some(auth.did()) {
        return xrpc(StatusCode::FORBIDDEN, "InvalidRequest", "you can only write to your own repo");
    }
    // RS-SCOPE-01: an OAuth token needs the granular permission or transition:generic.
    if let SessionAuth::OAuth(access) = &auth {
        let needed = format!("repo:{collection}?action=create");
        if let Err(missing) = access.require_scope(&[needed.as_str(), "transition:generic"]) {
            return xrpc(StatusCode::FORBIDDEN, "ScopeMissingError", &missing.to_string());
        }
    }
    let Ok(mut records) = app.records.lock() else {
        return xrpc(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "lock");
    };
    let repo = records.entry((auth.did().to_owned(), collection.to_owned())).or_default();
    let rkey = format!("3kexample{:04}", repo.len() + 1);
    // A content hash as CID, so the answer has the lexicon's shape; a real PDS commits to its repo.
    let digest = atauth_crypto::hash::sha256(record.to_string().as_bytes());
    let cid =
        format!("b{}", atauth_server::plc::base32_lower(&[&[1u8, 0x71, 0x12, 0x20][..], &digest].concat()));
    repo.insert(rkey.clone(), json!({ "cid": cid, "value": record }));
    Json(json!({ "uri": format!("at://{}/{collection}/{rkey}", auth.did()), "cid": cid })).into_response()
}

/// `com.atproto.repo.getRecord` (authenticated here, to show a GET with a query behind DPoP).
async fn get_record(
    State(app): State<App>,
    _auth: SessionAuth,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(repo), Some(collection), Some(rkey)) = (q.get("repo"), q.get("collection"), q.get("rkey"))
    else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "repo, collection and rkey are required");
    };
    let found =
        app.records.lock().ok().and_then(|r| r.get(&(repo.clone(), collection.clone()))?.get(rkey).cloned());
    match found {
        Some(r) => Json(json!({ "uri": format!("at://{repo}/{collection}/{rkey}"), "cid": r["cid"], "value": r["value"] }))
            .into_response(),
        None => xrpc(StatusCode::BAD_REQUEST, "RecordNotFound", "Could not locate record"),
    }
}

/// `com.atproto.repo.listRecords`, newest first, with a cursor.
async fn list_records(
    State(app): State<App>,
    _auth: SessionAuth,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(repo), Some(collection)) = (q.get("repo"), q.get("collection")) else {
        return xrpc(StatusCode::BAD_REQUEST, "InvalidRequest", "repo and collection are required");
    };
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50usize).clamp(1, 100);
    let Ok(records) = app.records.lock() else {
        return xrpc(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "lock");
    };
    let page: Vec<Value> = records
        .get(&(repo.clone(), collection.clone()))
        .into_iter()
        .flat_map(|r| r.iter().rev())
        .filter(|(k, _)| q.get("cursor").is_none_or(|c| k.as_str() < c.as_str()))
        .take(limit)
        .map(|(k, r)| json!({ "uri": format!("at://{repo}/{collection}/{k}"), "cid": r["cid"], "value": r["value"] }))
        .collect();
    let cursor =
        (page.len() == limit).then(|| page.last().and_then(|r| r["uri"].as_str()?.rsplit('/').next()));
    Json(json!({ "records": page, "cursor": cursor.flatten() })).into_response()
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut port = 2590u16;
    let mut plc = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--plc-url" => plc = Some(url::Url::parse(&args.next().ok_or("--plc-url needs a value")?)?),
            _ => return Err(format!("unknown argument {a}; usage: pds-auth --plc-url URL [--port N]").into()),
        }
    }
    let plc =
        plc.ok_or("--plc-url is required (interop/node22 interop/ref-pds.mjs --plc-only prints one)")?;
    // Bind first: with --port 0 the issuer (and the PDS URL in alice's DID document) names the
    // port the system chose.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let issuer = format!("http://localhost:{}", listener.local_addr()?.port());

    let mut stores = Stores::memory();
    stores.accounts = Arc::new(MyUsers::default());
    let auth = AuthServer::builder(&issuer)
        .dev_mode(true) // http://localhost issuer and loopback fetches: development only
        .plc_directory(plc)
        .handle_domains([".test"])
        .stores(stores)
        .build()?;
    let password = atauth_crypto::random::random_token::<12>();
    let alice = auth
        .create_account(NewAccount {
            handle: "alice.test".into(),
            email: None,
            password: SecretString::new(&password),
        })
        .await?;

    let app = App { auth: auth.clone(), records: Arc::default() };
    let resources = Router::new()
        .route("/xrpc/com.atproto.repo.createRecord", post(create_record))
        .route("/xrpc/com.atproto.repo.getRecord", get(get_record))
        .route("/xrpc/com.atproto.repo.listRecords", get(list_records))
        .with_state(app);
    let router = atauth_server::web::router(auth).merge(resources);

    println!("PDS + authorization server on {issuer}");
    println!("account: handle alice.test, did {}, password {password}", alice.did);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
