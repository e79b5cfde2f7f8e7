//! The axum adapter (cargo feature `web`, on by default): a [`Router`] with every endpoint at the
//! reference PDS's paths, the [`DpopAuth`] extractor (and [`require_dpop_auth`] middleware) for
//! resource routes, CORS, body limits, `DPoP-Nonce` on every OAuth and resource response, metrics,
//! health, and [`serve`] with graceful shutdown.
//!
//! One module per surface; each only parses the request, calls the framework-free core and maps
//! the result (errors answer through their `IntoResponse`):
//!
//! | module | what |
//! |---|---|
//! | [`oauth`] | metadata, JWKS, PAR, token, revocation, the headless consent API; the [`oauth::OAuthForm`] body extractor |
//! | [`xrpc`] | `getSession`, `resolveHandle`, the [`DpopAuth`] extractor and [`require_dpop_auth`] |
//! | [`legacy`] | `createSession` & co., app passwords, the [`legacy::LegacyAuth`] and [`crate::legacy::SessionAuth`] extractors |
//! | [`service_auth`] | `getServiceAuth` and the [`service_auth::ServiceAuth`] extractor |
//! | [`ui`] | the sign-in and consent pages and the JSON consent API: router, handlers, client address, CSRF check |
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server` | RFC 8414 metadata (AS-META-01 … 04) |
//! | `GET /.well-known/oauth-protected-resource` | RFC 9728 metadata (RS-META-01) |
//! | `GET /oauth/jwks` | the token-signing JWKS |
//! | `POST /oauth/par` | [`crate::par`] → 201 |
//! | `GET /oauth/authorize`, `POST /oauth/authorize/sign-in`, `POST /oauth/authorize/consent` | the sign-in and consent UI, [`crate::ui`] |
//! | `GET /oauth/authorize/api/request`, `POST /oauth/authorize/api/{sign-in,approve,deny}` | the **JSON consent API** for custom front ends, see below |
//! | `POST /oauth/authorize/sign-in-and-approve` | **headless password consent API**, see below |
//! | `POST /oauth/token` | [`crate::token`] |
//! | `POST /oauth/revoke` | [`crate::revoke`] → 200 |
//! | `GET /xrpc/com.atproto.server.getSession` | legacy Bearer or DPoP ([`crate::legacy::SessionAuth`]) |
//! | `GET /xrpc/com.atproto.identity.resolveHandle` | hosted handles |
//! | `GET /xrpc/_health`, `GET /_health` | liveness + version |
//! | `GET /metrics` | Prometheus text, when a [`PrometheusHandle`] is given |
//!
//! # The JSON consent API (custom front ends)
//!
//! `GET /oauth/authorize/api/request` (describe a pushed request: client, scopes in the consent
//! screen's words, accounts signed in on the device, the CSRF token; opens the device session),
//! `POST /oauth/authorize/api/sign-in`, `…/api/approve` (a chosen subset of the scopes) and
//! `…/api/deny`, each answering JSON (`{"redirect": …}` where the request ends) for a single-page
//! front end the operator serves on this origin. The same steps as the HTML pages
//! (`ui::flow`): device session, sign-in rate limits, remembered consent, scope rules. Every
//! `POST` needs `Content-Type: application/json`, a same-origin `Origin` / `Sec-Fetch-Site` and
//! the device's CSRF token in `X-CSRF-Token`; a refused call changes nothing. Off unless the
//! server runs in development mode or the operator turns it on
//! (`AuthServerBuilder::consent_json_api(true)`, `atauth serve --consent-json-api true`). The
//! contract, with error codes and examples, is docs/CONSENT-API.md.
//!
//! # The headless consent API
//!
//! `POST /oauth/authorize/sign-in-and-approve` (form or JSON: `client_id`, `request_uri`,
//! `identifier`, `password`, optional `scope` to grant less than requested, optional
//! `decision=deny`) signs the user in and decides in one step, answering **303** to the client's
//! `redirect_uri` with `code`/`error`, `state` and `iss`. It came before the HTML UI and is kept,
//! deliberately, for what a browser page cannot serve: the router tests, the benchmarks
//! (`benches/endpoints.rs`), the Rust interop test against the reference client
//! (`tests/interop_ref.rs`) and scripted logins. It needs the password on every call and sets no
//! cookie, so it has no CSRF surface; its password checks share the sign-in rate limits of the
//! UI ([`AuthServer::sign_in_limited`]). It bypasses the consent screen and carries no CSRF
//! token, so it is off unless the server runs in development mode or the operator turns it on
//! (`AuthServerBuilder::password_consent_api(true)`, `atauth serve --consent-api true`); front ends
//! use the JSON consent API above instead. It stays a separate route with its own switch rather
//! than a use of the JSON API, because its callers (scripts, benchmarks, tests without a browser)
//! have no device cookie to carry a CSRF token with.

pub mod legacy;
pub mod oauth;
pub mod service_auth;
pub mod ui;
pub mod xrpc;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::{OAuthError, XrpcError};
use crate::server::AuthServer;
pub use xrpc::{DpopAuth, DpopAuthRejection, require_dpop_auth};

/// `DPoP` request header.
pub const DPOP: HeaderName = HeaderName::from_static(atauth_crypto::dpop::wire::DPOP_HEADER);
/// `DPoP-Nonce` response header.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static(atauth_crypto::dpop::wire::DPOP_NONCE_HEADER);

/// Router state: the server and the optional metrics handle.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The core.
    pub server: AuthServer,
    /// Renders `/metrics` when present.
    pub metrics: Option<PrometheusHandle>,
}

impl FromRef<AppState> for AuthServer {
    fn from_ref(state: &AppState) -> Self {
        state.server.clone()
    }
}

/// The whole router (no metrics endpoint).
pub fn router(server: AuthServer) -> Router {
    router_with_metrics(server, None)
}

/// The whole router; `/metrics` renders `metrics` when given (install the recorder once per
/// process, e.g. `PrometheusBuilder::new().install_recorder()`).
pub fn router_with_metrics(server: AuthServer, metrics: Option<PrometheusHandle>) -> Router {
    let limit = server.config().max_body_bytes;
    let consent_api = server.config().password_consent_api;
    let nonce_server = server.clone();
    let state = AppState { server, metrics };

    // OAuth + resource API: CORS for browser clients, exposing DPoP-Nonce and WWW-Authenticate
    // (T-21, AS-META-01, RS-DPOP-03), and a fresh DPoP-Nonce on every response (AS-DPOP-03).
    let api = Router::new()
        .route("/.well-known/oauth-authorization-server", get(oauth::as_metadata))
        .route("/.well-known/oauth-protected-resource", get(oauth::resource_metadata))
        .route("/oauth/jwks", get(oauth::jwks))
        .route("/oauth/par", post(oauth::par))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/xrpc/com.atproto.server.getSession", get(legacy::get_session))
        .route("/xrpc/com.atproto.identity.resolveHandle", get(xrpc::resolve_handle))
        .merge(legacy::routes())
        .layer(middleware::map_response_with_state(nonce_server, add_dpop_nonce))
        .layer(cors());
    let mut browser = ui::routes(&state.server);
    if consent_api {
        browser = browser.route("/oauth/authorize/sign-in-and-approve", post(oauth::sign_in_and_approve));
    }
    Router::new()
        .merge(api)
        .merge(browser)
        .route("/xrpc/_health", get(health))
        .route("/_health", get(health))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn(observe))
        .layer(RequestBodyLimitLayer::new(limit))
        .with_state(state)
}

/// The CORS policy of the API routes (T-21).
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            DPOP,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("atproto-proxy"),
        ])
        .expose_headers([DPOP_NONCE, header::WWW_AUTHENTICATE])
        .max_age(std::time::Duration::from_secs(600))
}

async fn add_dpop_nonce(State(server): State<AuthServer>, mut res: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&server.dpop_nonce()) {
        res.headers_mut().insert(DPOP_NONCE, v);
    }
    res
}

/// Request logging and metrics: method, route, status, latency. Never the query or body.
async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let elapsed = start.elapsed();
    tracing::info!(%method, route = %route, status, micros = elapsed.as_micros() as u64, "request");
    metrics::counter!("atauth_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("atauth_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    res
}

// --------------------------------------------------------------------------------- responses ---

fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// `value` as a JSON response; a value that cannot be serialised (a bug) is logged and answered
/// 500 rather than sent as an empty document.
fn json_value(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_response(status, body),
        Err(e) => crate::error::internal("serialising a response", &e).into_response(),
    }
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// An OAuth error as an HTTP response: status, `{"error","error_description"}`, optional
/// `WWW-Authenticate`, `Cache-Control: no-store`.
pub fn oauth_error_response(e: &OAuthError) -> Response {
    let mut res = no_store(json_value(e.status, &e.body()));
    if let Some(w) = e.www_authenticate.as_deref().and_then(|w| HeaderValue::from_str(w).ok()) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, w);
    }
    res
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        oauth_error_response(&self)
    }
}

/// An XRPC error response `{"error","message"}`.
pub fn xrpc_error_response(e: &XrpcError) -> Response {
    let body = serde_json::json!({ "error": e.error, "message": e.message }).to_string();
    json_response(e.status, body)
}

impl IntoResponse for XrpcError {
    fn into_response(self) -> Response {
        xrpc_error_response(&self)
    }
}

fn redirect_303(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(loc) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, loc);
            no_store(res)
        }
        Err(_) => OAuthError::server_error().into_response(),
    }
}

// ------------------------------------------------------------------------------- request parts ---

fn header_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    // A non-UTF-8 value cannot be a valid proof or token; an empty string fails the checks.
    headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect()
}

/// The one `Authorization` header (a non-UTF-8 value counts as malformed, not missing).
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""))
}

/// The request path as the client sent it (before any nesting).
fn original_path(parts: &axum::http::request::Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.path(), |o| o.0.path())
        .to_owned()
}

// ------------------------------------------------------------------------------------ handlers ---

async fn health() -> Response {
    json_response(StatusCode::OK, format!("{{\"version\":\"{}\"}}", env!("CARGO_PKG_VERSION")))
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(h) => {
            let mut res = h.render().into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// --------------------------------------------------------------------------------------- serve ---

/// Serves `router(server)` (plus `metrics`) on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish, and stops the maintenance task (which purges expired
/// codes, sessions, device sessions and replay records every minute).
pub async fn serve(
    server: AuthServer,
    listener: tokio::net::TcpListener,
    metrics: Option<PrometheusHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let maintenance = {
        let server = server.clone();
        let mut rx = rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = server.purge_expired().await {
                            tracing::warn!(error = %e, "purging expired records failed");
                        }
                    }
                    _ = rx.changed() => break,
                }
            }
        })
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let mut stop = rx;
    let app = router_with_metrics(server, metrics);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "atauth-server listening");
    }
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    maintenance.abort();
    result
}
