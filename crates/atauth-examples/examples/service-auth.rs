//! A service (feed generator, labeler, app view, …) that accepts inter-service JWTs, and calls
//! another service with a JWT of its own.
//!
//! - The service is `did:web:localhost%3APORT` (development form of did:web) and serves its DID
//!   document at `/.well-known/did.json`: an `#atproto` signing key and an `#example_svc` service.
//! - `GET /xrpc/com.example.hello` takes the `ServiceAuth` extractor: the caller's JWT must have
//!   `aud` = `did:web:…#example_svc`, `lxm` = `com.example.hello`, an unexpired `exp`, a signature
//!   by the `#atproto` key of the caller's DID document, and an unseen `jti` (SVC-05/06; 401
//!   otherwise).
//! - It then calls a service with its **own** JWT (iss = its DID, signed with its key, `lxm` =
//!   `com.example.callback`): here it calls itself, so the example needs nothing else running; the
//!   receiving side resolves `did:web:localhost%3APORT` and checks the signature like any other.
//! - Then the example plays the user: an app-password session at the PDS asks
//!   `com.atproto.server.getServiceAuth` for a token and calls the service with it, twice (the
//!   second is refused: replayed `jti`).
//!
//! Offline against `scripts/demo.sh` (it prints the PLC URL and alice's password):
//!
//! ```sh
//! cargo run -p atauth-examples --example service-auth -- \
//!   --pds http://localhost:2583 --plc-url PLC --handle alice.test --password PASSWORD [--port 2600]
//! ```
//!
//! `--port 0` takes any free port.

use std::sync::Arc;
use std::time::Duration;

use atauth_client::{Agent, PasswordSession};
use atauth_crypto::random::generate_jti;
use atauth_crypto::{Algorithm, Clock, PrivateKey, SystemClock};
use atauth_identity::http::{HttpRequest, SafeHttpClient};
use atauth_identity::{AtprotoDidResolver, DidResolver};
use atauth_server::service_auth::{ServiceAuthVerifier, ServiceClaims, sign_service_jwt};
use atauth_server::store::MemoryStore;
use atauth_server::web::service_auth::ServiceAuth;
use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use url::Url;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SERVICE_ID: &str = "example_svc";

/// The service's state: its identity and key, and the verifier of incoming JWTs.
#[derive(Clone)]
struct Service {
    did: String,
    url: String,
    key: Arc<PrivateKey>,
    verifier: ServiceAuthVerifier,
    http: SafeHttpClient,
}

impl FromRef<Service> for ServiceAuthVerifier {
    fn from_ref(s: &Service) -> Self {
        s.verifier.clone()
    }
}

/// `/.well-known/did.json`: how other services find this one's key.
async fn did_document(State(s): State<Service>) -> Json<Value> {
    Json(json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": s.did,
        "verificationMethod": [{
            "id": format!("{}#atproto", s.did), "type": "Multikey", "controller": s.did,
            "publicKeyMultibase": s.key.public_key().to_multikey(),
        }],
        "service": [{ "id": format!("#{SERVICE_ID}"), "type": "ExampleService", "serviceEndpoint": s.url }],
    }))
}

/// Signs a JWT of this service for a call of `lxm` at `aud` (SVC-03: short-lived, one `jti`).
fn own_token(s: &Service, aud: &str, lxm: &str) -> Result<String, Error> {
    let now = SystemClock.unix_now();
    let claims = ServiceClaims {
        iat: now,
        iss: s.did.clone(),
        aud: aud.to_owned(),
        exp: now + 60,
        lxm: Some(lxm.to_owned()),
        jti: generate_jti(),
    };
    Ok(sign_service_jwt(&s.key, &claims)?)
}

/// Called by users (through their PDS's `getServiceAuth`): verifies them, then calls the callback
/// service with this service's own JWT.
async fn hello(State(s): State<Service>, ServiceAuth(caller): ServiceAuth) -> Response {
    let callback = async {
        let aud = format!("{}#{SERVICE_ID}", s.did);
        let token = own_token(&s, &aud, "com.example.callback")?;
        let req = HttpRequest::get(Url::parse(&format!("{}/xrpc/com.example.callback", s.url))?)
            .header(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?);
        let res = s.http.send(req).await?;
        Ok::<Value, Error>(serde_json::from_slice(&res.body)?)
    };
    match callback.await {
        Ok(answer) => Json(json!({ "hello": caller.claims.iss, "callback": answer })).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The other side of the call: accepts another service's JWT, verified the same way.
async fn callback(ServiceAuth(caller): ServiceAuth) -> Json<Value> {
    Json(json!({ "verified_caller": caller.claims.iss, "lxm": caller.claims.lxm }))
}

struct Args {
    pds: Url,
    plc: Url,
    handle: String,
    password: String,
    port: u16,
}

fn args() -> Result<Args, Error> {
    let (mut pds, mut plc, mut handle, mut password, mut port) = (None, None, None, None, 2600u16);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--pds" => pds = Some(Url::parse(&value)?),
            "--plc-url" => plc = Some(Url::parse(&value)?),
            "--handle" => handle = Some(value),
            "--password" => password = Some(value),
            "--port" => port = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let usage = "usage: service-auth --pds URL --plc-url URL --handle H --password P [--port N]";
    Ok(Args {
        pds: pds.ok_or(usage)?,
        plc: plc.ok_or(usage)?,
        handle: handle.ok_or(usage)?,
        password: password.ok_or(usage)?,
        port,
    })
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args()?;
    // Development switches: plain http to loopback, did:web:localhost%3APORT, the local PLC.
    let http =
        SafeHttpClient::builder().allow_http_loopback(true).timeout(Duration::from_secs(10)).build()?;
    let dids: Arc<dyn DidResolver> = Arc::new(
        AtprotoDidResolver::new(http.clone()).plc_directory(a.plc.clone()).allow_localhost_did_web(true),
    );
    // Bind first: the DID names the port (with --port 0, the one the system chose).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", a.port)).await?;
    let port = listener.local_addr()?.port();
    let did = format!("did:web:localhost%3A{port}");
    let verifier = ServiceAuthVerifier::new(
        format!("{did}#{SERVICE_ID}"),
        dids,
        Arc::new(MemoryStore::default()), // jti replay records; use a shared store with several instances
        Arc::new(SystemClock),
    );
    let url = format!("http://localhost:{port}");
    let service = Service {
        did: did.clone(),
        url: url.clone(),
        key: Arc::new(PrivateKey::generate(Algorithm::Es256k)),
        verifier,
        http: http.clone(),
    };
    let app = Router::new()
        .route("/.well-known/did.json", get(did_document))
        .route("/xrpc/com.example.hello", get(hello))
        .route("/xrpc/com.example.callback", get(callback))
        .with_state(service);
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("service {did} on {url}");

    // The user's side: a service token from the PDS, for this service and this method.
    let session = PasswordSession::login(http.clone(), &a.pds, &a.handle, &a.password, None).await?;
    let agent = Agent::new(session);
    let aud = format!("{did}#{SERVICE_ID}");
    let out: Value = agent
        .query("com.atproto.server.getServiceAuth", &[("aud", &aud), ("lxm", "com.example.hello")])
        .await?;
    let token = out["token"].as_str().ok_or("getServiceAuth returned no token")?;
    for attempt in ["first call", "same token again"] {
        let req = HttpRequest::get(Url::parse(&format!("{url}/xrpc/com.example.hello"))?)
            .header(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?);
        let res = http.send(req).await?;
        println!("{attempt}: {} {}", res.status, String::from_utf8_lossy(&res.body));
    }
    Ok(())
}
