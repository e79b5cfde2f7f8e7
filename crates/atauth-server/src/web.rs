//! The axum adapter: a [`Router`] with every endpoint at the reference PDS's paths, the
//! [`DpopAuth`] extractor (and [`require_dpop_auth`] middleware) for resource routes, CORS, body
//! limits, `DPoP-Nonce` on every OAuth and resource response, metrics, health, and [`serve`] with
//! graceful shutdown.
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server` | RFC 8414 metadata (AS-META-01 … 04) |
//! | `GET /.well-known/oauth-protected-resource` | RFC 9728 metadata (RS-META-01) |
//! | `GET /oauth/jwks` | the token-signing JWKS |
//! | `POST /oauth/par` | [`crate::par`] → 201 |
//! | `GET /oauth/authorize`, `POST /oauth/authorize/sign-in`, `POST /oauth/authorize/consent` | the sign-in and consent UI, [`crate::ui`] |
//! | `POST /oauth/authorize/sign-in-and-approve` | **headless password consent API**, see below |
//! | `POST /oauth/token` | [`crate::token`] |
//! | `POST /oauth/revoke` | [`crate::revoke`] → 200 |
//! | `GET /xrpc/com.atproto.server.getSession` | behind [`DpopAuth`] |
//! | `GET /xrpc/com.atproto.identity.resolveHandle` | hosted handles |
//! | `GET /xrpc/_health`, `GET /_health` | liveness + version |
//! | `GET /metrics` | Prometheus text, when a [`PrometheusHandle`] is given |
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
//! UI ([`AuthServer::sign_in_limited`]). It bypasses the consent screen, so an operator who does
//! not need it should turn it off with `AuthServerBuilder::password_consent_api(false)`.

use std::future::Future;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, OriginalUri, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::account::XrpcError;
use crate::authorize::AuthorizeOutcome;
use crate::dpop::DpopInput;
use crate::error::OAuthError;
use crate::params::Params;
use crate::resource::VerifiedAccess;
use crate::server::AuthServer;

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
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/par", post(par))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/xrpc/com.atproto.server.getSession", get(get_session))
        .route("/xrpc/com.atproto.identity.resolveHandle", get(resolve_handle))
        .merge(crate::legacy::web::routes())
        .layer(middleware::map_response_with_state(nonce_server, add_dpop_nonce))
        .layer(cors());
    let mut browser = crate::ui::routes(&state.server);
    if consent_api {
        browser = browser.route("/oauth/authorize/sign-in-and-approve", post(sign_in_and_approve));
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

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// An OAuth error as an HTTP response: status, `{"error","error_description"}`, optional
/// `WWW-Authenticate`, `Cache-Control: no-store`.
pub fn oauth_error_response(e: &OAuthError) -> Response {
    let body = serde_json::to_string(&e.body()).unwrap_or_default();
    let mut res = no_store(json_response(e.status, body));
    if let Some(w) = e.www_authenticate.as_deref().and_then(|w| HeaderValue::from_str(w).ok()) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, w);
    }
    res
}

/// An XRPC error response `{"error","message"}`.
pub fn xrpc_error_response(e: &XrpcError) -> Response {
    let body = serde_json::json!({ "error": e.error, "message": e.message }).to_string();
    json_response(e.status, body)
}

fn redirect_303(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(loc) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, loc);
            no_store(res)
        }
        Err(_) => oauth_error_response(&OAuthError::server_error()),
    }
}

// ------------------------------------------------------------------------------- request parts ---

fn header_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    // A non-UTF-8 value cannot be a valid proof or token; an empty string fails the checks.
    headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect()
}

/// Parses a form or JSON body (RFC 6749: form; the reference also accepts JSON).
fn body_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Ok(Params::from_form(body)),
        "application/json" => Params::from_json(body).ok_or_else(|| {
            OAuthError::bad_request(crate::error::OAuthErrorCode::InvalidRequest, "invalid JSON body")
        }),
        _ => Err(OAuthError::bad_request(
            crate::error::OAuthErrorCode::InvalidRequest,
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )),
    }
}

// ------------------------------------------------------------------------------------ handlers ---

async fn as_metadata(State(server): State<AuthServer>) -> Response {
    json_response(StatusCode::OK, server.authorization_server_metadata_json().to_owned())
}

async fn resource_metadata(State(server): State<AuthServer>) -> Response {
    json_response(StatusCode::OK, server.protected_resource_metadata_json().to_owned())
}

async fn jwks(State(server): State<AuthServer>) -> Response {
    json_response(StatusCode::OK, server.jwks_json())
}

async fn par(
    State(server): State<AuthServer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match body_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return oauth_error_response(&e),
    };
    let proofs = header_values(&headers, &DPOP);
    let dpop = DpopInput { proofs: &proofs, method: "POST", path: uri.path() };
    match server.par(&params, &dpop).await {
        Ok(r) => no_store(json_response(StatusCode::CREATED, serde_json::to_string(&r).unwrap_or_default())),
        Err(e) => {
            tracing::debug!(error = %e, "PAR refused");
            oauth_error_response(&e.oauth_error())
        }
    }
}

async fn token(
    State(server): State<AuthServer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match body_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return oauth_error_response(&e),
    };
    let proofs = header_values(&headers, &DPOP);
    let dpop = DpopInput { proofs: &proofs, method: "POST", path: uri.path() };
    match server.token(&params, &dpop).await {
        Ok(r) => no_store(json_response(StatusCode::OK, serde_json::to_string(&r).unwrap_or_default())),
        Err(e) => {
            tracing::debug!(error = %e, "token request refused");
            oauth_error_response(&e.oauth_error())
        }
    }
}

async fn revoke(
    State(server): State<AuthServer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match body_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return oauth_error_response(&e),
    };
    let proofs = header_values(&headers, &DPOP);
    let dpop = DpopInput { proofs: &proofs, method: "POST", path: uri.path() };
    match server.revoke(&params, &dpop).await {
        Ok(_) => no_store(StatusCode::OK.into_response()),
        Err(e) => {
            tracing::debug!(error = %e, "revocation refused");
            oauth_error_response(&e.oauth_error())
        }
    }
}

async fn sign_in_and_approve(
    State(server): State<AuthServer>,
    crate::ui::ClientIp(ip): crate::ui::ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match body_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return oauth_error_response(&e),
    };
    let get = |k: &str| params.get(k).ok().flatten();
    let view = match server.load_authorization(get("client_id"), get("request_uri")).await {
        Ok(AuthorizeOutcome::Interaction(v)) => v,
        Ok(AuthorizeOutcome::Redirect(r)) => return redirect_303(&r.url),
        Err(e) => return oauth_error_response(&e.oauth_error()),
    };
    if get("decision") == Some("deny") {
        return match server.deny(&view.request_id).await {
            Ok(r) => redirect_303(&r.url),
            Err(e) => oauth_error_response(&e.oauth_error()),
        };
    }
    let password = atauth_crypto::SecretString::new(get("password").unwrap_or_default());
    let account = match server.sign_in_limited(get("identifier").unwrap_or_default(), &password, ip).await {
        Ok(a) => a,
        Err(e) => return xrpc_error_response(&e.xrpc_error()),
    };
    match server.approve(&view.request_id, &account.did, get("scope"), None).await {
        Ok(r) => redirect_303(&r.url),
        Err(e) => oauth_error_response(&e.oauth_error()),
    }
}

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

// ------------------------------------------------------------------------- resource server side ---

/// An authenticated DPoP-bound resource request: use as an extractor in a PDS route
/// (RS-DPOP-01 … 03). Rejections are 401 with a `WWW-Authenticate: DPoP` challenge, a `DPoP-Nonce`
/// header and an XRPC body `{"error","message"}` (RS-WWW-01).
///
/// ```no_run
/// use atauth_server::web::DpopAuth;
/// async fn whoami(DpopAuth(access): DpopAuth) -> String { access.did }
/// let app: axum::Router<atauth_server::AuthServer> = axum::Router::new()
///     .route("/xrpc/com.example.whoami", axum::routing::get(whoami));
/// ```
#[derive(Debug, Clone)]
pub struct DpopAuth(pub VerifiedAccess);

/// The rejection of [`DpopAuth`].
#[derive(Debug)]
pub struct DpopAuthRejection {
    error: OAuthError,
    nonce: String,
}

impl DpopAuthRejection {
    /// The underlying error.
    pub fn error(&self) -> &OAuthError {
        &self.error
    }
}

impl IntoResponse for DpopAuthRejection {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": self.error.code.as_str(), "message": self.error.description });
        let mut res = json_response(self.error.status, body.to_string());
        let h = res.headers_mut();
        if let Some(w) = self.error.www_authenticate.as_deref().and_then(|w| HeaderValue::from_str(w).ok()) {
            h.insert(header::WWW_AUTHENTICATE, w);
        }
        if let Ok(n) = HeaderValue::from_str(&self.nonce) {
            h.insert(DPOP_NONCE, n);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        h.insert(header::VARY, HeaderValue::from_static("Authorization"));
        res
    }
}

async fn verify_parts(server: &AuthServer, parts: &Parts) -> Result<VerifiedAccess, DpopAuthRejection> {
    let path =
        parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.path(), |o| o.0.path()).to_owned();
    let authz = header_values(&parts.headers, &header::AUTHORIZATION);
    let proofs = header_values(&parts.headers, &DPOP);
    let dpop = DpopInput { proofs: &proofs, method: parts.method.as_str(), path: &path };
    server
        .verify_resource(&authz, &dpop)
        .await
        .map_err(|e| DpopAuthRejection { error: e.oauth_error(), nonce: server.dpop_nonce() })
}

impl<S> FromRequestParts<S> for DpopAuth
where
    AuthServer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = DpopAuthRejection;

    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let server = AuthServer::from_ref(state);
        async move {
            if let Some(done) = parts.extensions.get::<VerifiedAccess>() {
                return Ok(Self(done.clone()));
            }
            verify_parts(&server, parts).await.map(Self)
        }
    }
}

/// Middleware form of [`DpopAuth`] for a whole router:
/// `.layer(axum::middleware::from_fn_with_state(server, require_dpop_auth))`. Verified requests get
/// a [`VerifiedAccess`] extension (which [`DpopAuth`] then reuses); every response gets a fresh
/// `DPoP-Nonce` (RS-DPOP-03).
pub async fn require_dpop_auth(State(server): State<AuthServer>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match verify_parts(&server, &parts).await {
        Ok(access) => {
            parts.extensions.insert(access);
            let mut res = next.run(Request::from_parts(parts, body)).await;
            if let Ok(n) = HeaderValue::from_str(&server.dpop_nonce()) {
                res.headers_mut().insert(DPOP_NONCE, n);
            }
            res
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// Legacy Bearer or DPoP-bound OAuth ([`crate::legacy::web::SessionAuth`], LEG-08).
async fn get_session(state: State<AuthServer>, auth: crate::legacy::web::SessionAuth) -> Response {
    crate::legacy::web::get_session(state, auth).await
}

async fn resolve_handle(State(server): State<AuthServer>, RawQuery(query): RawQuery) -> Response {
    let params = Params::from_form(query.unwrap_or_default().as_bytes());
    let Ok(Some(handle)) = params.get("handle") else {
        return xrpc_error_response(&XrpcError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "handle is required",
        ));
    };
    match server.resolve_local_handle(handle).await {
        Ok(Some(did)) => json_response(StatusCode::OK, serde_json::json!({ "did": did }).to_string()),
        Ok(None) => xrpc_error_response(&XrpcError::new(
            StatusCode::BAD_REQUEST,
            "HandleNotFound",
            "Unable to resolve handle",
        )),
        Err(e) => {
            tracing::error!(error = %e, "resolveHandle store");
            xrpc_error_response(&XrpcError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal Server Error",
            ))
        }
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
    tracing::info!(addr = ?listener.local_addr().ok(), "atauth-server listening");
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    maintenance.abort();
    result
}
