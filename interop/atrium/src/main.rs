//! atrium-oauth (pinned in Cargo.toml) against `atauth serve --dev`, on loopback only:
//!
//! 1. `authorize`: atrium resolves the handle through the server's `resolveHandle`, the DID
//!    through the local PLC, fetches both metadata documents and sends a DPoP-bound PAR as a
//!    loopback (`http://localhost`) public client;
//! 2. `approve`: the server's headless consent API (`POST /oauth/authorize/sign-in-and-approve`)
//!    signs in and approves, answering 303 to the redirect URI;
//! 3. `callback`: atrium takes the code from that redirect and exchanges it (DPoP, PKCE);
//! 4. `getSession`: a DPoP-bound GET without a query, through atrium's session and agent;
//! 5. `getServiceAuth`: a DPoP-bound GET **with a query** (`?aud=...&lxm=...`). atrium puts the
//!    query into the proof's `htu` (RFC 9449 §4.3 compares without it; issue 15).
//!
//! Prints one JSON line (`ok`, the steps with their time, the `htu` atrium signed for the GET
//! with a query, and the server's refusal if one came) and exits 0 iff every step passed.
//!
//! Usage: atrium-interop --issuer http://localhost:PORT --plc http://127.0.0.1:PORT
//!        --handle alice.test --password PASS [--timeout SECONDS]

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrium_api::agent::Agent;
use atrium_identity::did::{CommonDidResolver, CommonDidResolverConfig};
use atrium_identity::handle::{AppViewHandleResolver, AppViewHandleResolverConfig};
use atrium_oauth::store::session::MemorySessionStore;
use atrium_oauth::store::state::MemoryStateStore;
use atrium_oauth::{
    AtprotoLocalhostClientMetadata, AuthorizeOptions, CallbackParams, KnownScope, OAuthClient,
    OAuthClientConfig, OAuthResolverConfig, Scope,
};
use atrium_xrpc::HttpClient;
use atrium_xrpc::http::{Request, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What one HTTP exchange looked like, for the report: the `htu` atrium signed (when the request
/// carried a DPoP proof) and, for a refusal, what the server said.
#[derive(Clone, Debug)]
struct Exchange {
    method: String,
    uri: String,
    htu: Option<String>,
    status: u16,
    www_authenticate: Option<String>,
    body: String,
}

/// atrium's `HttpClient` over reqwest, plain http only (no TLS stack built), no proxy (so nothing
/// leaves loopback whatever the environment says), no redirects (the consent API's 303 is read,
/// not followed). Records every exchange.
#[derive(Clone)]
struct Loopback {
    http: reqwest::Client,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Loopback {
    fn new() -> Result<Self, BoxError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self { http, log: Arc::default() })
    }

    fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The `htu` claim of a DPoP proof (a compact JWS), if it decodes.
fn proof_htu(proof: &str) -> Option<String> {
    let payload = proof.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("htu")?.as_str().map(str::to_owned)
}

impl HttpClient for Loopback {
    async fn send_http(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, BoxError> {
        let (parts, body) = request.into_parts();
        let htu = parts.headers.get("DPoP").and_then(|v| v.to_str().ok()).and_then(proof_htu);
        let res = self
            .http
            .request(parts.method.clone(), parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await?.to_vec();
        let www_authenticate =
            headers.get("WWW-Authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body_text = if status.is_success() {
            String::new()
        } else {
            String::from_utf8_lossy(&bytes).chars().take(300).collect()
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(Exchange {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                htu,
                status: status.as_u16(),
                www_authenticate,
                body: body_text,
            });
        }
        let mut out = Response::builder().status(status);
        if let Some(h) = out.headers_mut() {
            *h = headers;
        }
        Ok(out.body(bytes)?)
    }
}

struct Args {
    issuer: String,
    plc: String,
    handle: String,
    password: String,
    timeout: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        issuer: String::new(),
        plc: String::new(),
        handle: String::new(),
        password: String::new(),
        timeout: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--issuer" => a.issuer = value,
            "--plc" => a.plc = value,
            "--handle" => a.handle = value,
            "--password" => a.password = value,
            "--timeout" => a.timeout = value.parse().map_err(|_| "--timeout needs seconds")?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.issuer.is_empty() || a.plc.is_empty() || a.handle.is_empty() || a.password.is_empty() {
        return Err("usage: atrium-interop --issuer URL --plc URL --handle H --password P".into());
    }
    Ok(a)
}

/// The steps run so far, each `{name, ok, ms[, error]}`.
#[derive(Default)]
struct Steps(Vec<Value>);

impl Steps {
    /// Runs one step, records it, and passes its error on (as text) so the caller stops.
    async fn run<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        step: impl Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        let t0 = Instant::now();
        let result = step.await;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let ms = (ms * 10.0).round() / 10.0;
        match result {
            Ok(v) => {
                self.0.push(json!({ "name": name, "ok": true, "ms": ms }));
                Ok(v)
            }
            Err(e) => {
                let error = format!("{name}: {e}");
                self.0.push(json!({ "name": name, "ok": false, "ms": ms, "error": error }));
                Err(error)
            }
        }
    }
}

/// Signs in and approves through the consent API; returns the redirect's parameters.
async fn approve(http: &Loopback, a: &Args, authorize_url: &str) -> Result<CallbackParams, BoxError> {
    let (endpoint, query) = authorize_url.split_once('?').ok_or("authorize URL without a query")?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "client_id" || k == "request_uri" {
            form.append_pair(&k, &v);
        }
    }
    form.append_pair("identifier", &a.handle).append_pair("password", &a.password);
    let res = http
        .http
        .post(format!("{endpoint}/sign-in-and-approve"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.finish())
        .send()
        .await?;
    let status = res.status();
    let location = res.headers().get("Location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(location) = location else {
        let body: String = res.text().await.unwrap_or_default().chars().take(300).collect();
        return Err(format!("HTTP {status} without a redirect: {body}").into());
    };
    let (_, query) = location.split_once('?').ok_or("redirect without a query")?;
    Ok(serde_html_form::from_str(query)?)
}

async fn run(
    a: &Args,
    http: &Loopback,
    steps: &mut Steps,
    out: &mut serde_json::Map<String, Value>,
) -> Result<(), String> {
    let shared = Arc::new(http.clone());
    let client = OAuthClient::new(OAuthClientConfig {
        client_metadata: AtprotoLocalhostClientMetadata {
            redirect_uris: Some(vec!["http://127.0.0.1/callback".into()]),
            scopes: Some(vec![
                Scope::Known(KnownScope::Atproto),
                Scope::Known(KnownScope::TransitionGeneric),
            ]),
        },
        keys: None,
        resolver: OAuthResolverConfig {
            did_resolver: CommonDidResolver::new(CommonDidResolverConfig {
                plc_directory_url: a.plc.clone(),
                http_client: Arc::clone(&shared),
            }),
            // The server under test answers com.atproto.identity.resolveHandle for its handles.
            handle_resolver: AppViewHandleResolver::new(AppViewHandleResolverConfig {
                service_url: a.issuer.clone(),
                http_client: Arc::clone(&shared),
            }),
            authorization_server_metadata: Default::default(),
            protected_resource_metadata: Default::default(),
        },
        state_store: MemoryStateStore::default(),
        session_store: MemorySessionStore::default(),
        http_client: http.clone(),
    })
    .map_err(|e| format!("client: {e}"))?;

    let options = AuthorizeOptions {
        scopes: vec![Scope::Known(KnownScope::Atproto), Scope::Known(KnownScope::TransitionGeneric)],
        ..Default::default()
    };
    let authorize_url = steps.run("authorize", client.authorize(&a.handle, options)).await?;
    let params = steps.run("approve", approve(http, a, &authorize_url)).await?;
    let (session, _) = steps.run("callback", client.callback(params)).await?;
    let agent = Agent::new(session);
    let server = &agent.api.com.atproto.server;

    let me = steps.run("getSession", server.get_session()).await?;
    out.insert("did".into(), json!(me.did.as_str()));
    out.insert("handle".into(), json!(me.handle.as_str()));

    let lxm = "app.bsky.feed.getTimeline".parse().map_err(|e| format!("lxm: {e}"))?;
    let params = atrium_api::com::atproto::server::get_service_auth::ParametersData {
        aud: me.did.to_string(),
        exp: None,
        lxm: Some(lxm),
    };
    let got = steps.run("getServiceAuth", server.get_service_auth(params.into())).await;
    // What atrium signed and what the server answered for the GET with a query.
    if let Some(x) = http.exchanges().iter().rev().find(|x| x.uri.contains("getServiceAuth?")) {
        out.insert("htu".into(), json!(x.htu));
        if !(200..300).contains(&x.status) {
            out.insert(
                "refused".into(),
                json!({ "status": x.status, "wwwAuthenticate": x.www_authenticate, "body": x.body }),
            );
        }
    }
    let got = got?;
    out.insert("serviceTokenChars".into(), json!(got.token.len()));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("atrium-interop: {e}");
            std::process::exit(2);
        }
    };
    let http = match Loopback::new() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("atrium-interop: http client: {e}");
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let mut steps = Steps::default();
    let mut out = serde_json::Map::new();
    out.insert("client".into(), json!("atrium-oauth 0.2.0"));
    let result = tokio::time::timeout(Duration::from_secs(a.timeout), run(&a, &http, &mut steps, &mut out))
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {} s", a.timeout)));
    out.insert("ok".into(), json!(result.is_ok()));
    if let Err(e) = &result {
        out.insert("error".into(), json!(e));
    }
    out.insert("steps".into(), Value::Array(steps.0));
    out.insert("totalMs".into(), json!(t0.elapsed().as_millis() as u64));
    for x in http.exchanges() {
        eprintln!(
            "{} {} -> {}{}{}",
            x.method,
            x.uri,
            x.status,
            x.htu.map(|h| format!(" (DPoP htu {h})")).unwrap_or_default(),
            if x.body.is_empty() { String::new() } else { format!(" {}", x.body) }
        );
    }
    println!("{}", Value::Object(out));
    std::process::exit(if result.is_ok() { 0 } else { 1 });
}
