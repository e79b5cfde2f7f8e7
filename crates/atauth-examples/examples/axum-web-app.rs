//! "Log in with atproto": a web app on the atauth client.
//!
//! `/` shows a sign-in form; `POST /login` starts the authorization and redirects to the user's
//! authorization server; `/oauth/callback` finishes it and sets a session cookie; `/` then shows the
//! DID and handle from an authenticated `com.atproto.server.getSession` and a form that posts
//! (`atauth_client::Agent::post`: link and mention facets included); `POST /logout` revokes the
//! tokens at the authorization server and deletes the session. Sessions (and pending
//! authorizations) live in SQLite (`DB`, default `axum-web-app.sqlite`), so they survive restarts.
//!
//! In production set `PUBLIC_URL=https://app.example.com`: the app is then a **confidential client**
//! (`private_key_jwt`): its client-metadata document is served at
//! `<PUBLIC_URL>/oauth-client-metadata.json` and names `<PUBLIC_URL>/jwks.json`, where the public
//! half of its ES256 key is served (`ATAUTH_CLIENT_KEY_HEX`, a P-256 scalar in hex; a new key is
//! generated if unset, which invalidates the sessions on restart: they are bound to the key id).
//!
//! Without `PUBLIC_URL` (development, offline) it is a loopback client (`http://localhost?…`, no
//! metadata document to host: authorization servers accept it from `127.0.0.1` redirect URIs):
//!
//! ```sh
//! cargo run -p atauth-examples --example axum-web-app
//! # then open http://127.0.0.1:8080 (not localhost: CL-MD-LOOP-05)
//! ```
//!
//! Offline against `scripts/demo.sh` (sign-in and getSession) or the reference PDS of `interop/`
//! (`interop/node22 interop/ref-pds.mjs` prints its URLs; posting works there too), add
//! `ATAUTH_DEV_PLC_URL=<the PLC URL> ATAUTH_DEV_HANDLE_RESOLVER=<the server URL>` (both also allow
//! plain http to loopback).
//!
//! The session cookie holds the DID and the random session id; real apps should sign or encrypt
//! their cookies (e.g. `tower-cookies` with a private jar).

use std::sync::Arc;

use atauth_client::api::ApiError;
use atauth_client::axum_routes::{ClientRoutes, router};
use atauth_client::{
    Agent, AuthorizeOptions, CallbackResult, ClientConfig, DevOptions, Keyset, OAuthClient, SessionKey,
    SqliteStore,
};
use atauth_crypto::{Algorithm, PrivateKey};
use atauth_identity::Did;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, body::Body};

const COOKIE: &str = "atauth_session";

#[derive(Clone)]
struct AppState {
    client: OAuthClient,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>atauth example</title>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">{body}</body></html>"
    ))
}

fn session_key(headers: &HeaderMap) -> Option<SessionKey> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == COOKIE)?.1;
    let (did, session_id) = value.split_once('|')?;
    Some(SessionKey { did: Did::new(did).ok()?, session_id: session_id.to_owned() })
}

async fn home(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let login_form = "<h1>atauth example</h1><form method=post action=/login>\
        <label>Handle, DID or server URL <input name=input placeholder=alice.bsky.social required></label> \
        <button>Log in with Bluesky</button></form>";
    let Some(key) = session_key(&headers) else { return page(login_form).into_response() };
    let Ok(Some(session)) = app.client.restore(&key).await else { return page(login_form).into_response() };
    let agent = Agent::new(session);
    match agent.query::<serde_json::Value>("com.atproto.server.getSession", &[]).await {
        Ok(me) => page(&format!(
            "<h1>Signed in</h1><p>DID: <code id=did>{}</code></p><p>Handle: <code id=handle>{}</code></p>\
             <form method=post action=/post><input name=text size=50 required \
             placeholder=\"hello @bob.test, see https://atproto.com\"> <button>Post</button></form>\
             <form method=post action=/logout><button>Sign out</button></form>",
            escape(me["did"].as_str().unwrap_or_default()),
            escape(me["handle"].as_str().unwrap_or_default()),
        ))
        .into_response(),
        Err(e) => {
            page(&format!("<p>Session error: {}</p>{login_form}", escape(&e.to_string()))).into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    input: String,
}

#[derive(serde::Deserialize)]
struct PostForm {
    text: String,
}

/// Posts for the signed-in user; the typed errors say what to do (sign in again, wait, …).
async fn post_text(State(app): State<AppState>, headers: HeaderMap, Form(form): Form<PostForm>) -> Response {
    let Some(key) = session_key(&headers) else { return Redirect::to("/").into_response() };
    let Ok(Some(session)) = app.client.restore(&key).await else { return Redirect::to("/").into_response() };
    let message = match Agent::new(session).post(&form.text).await {
        Ok(post) => format!("Posted <code>{}</code>", escape(&post.uri)),
        Err(ApiError::ScopeMissing { needed }) => {
            format!("Sign in again and grant {}", escape(needed.as_deref().unwrap_or("the permission")))
        }
        Err(ApiError::RateLimited { reset }) => format!("Rate limited until {reset:?}; try later"),
        Err(e) => format!("Could not post: {}", escape(&e.to_string())),
    };
    page(&format!("<p>{message}</p><p><a href=/>Back</a></p>")).into_response()
}

async fn login(State(app): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    match app.client.authorize(&form.input, AuthorizeOptions::default()).await {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(e) => page(&format!(
            "<p>Could not start the sign-in: {}</p><p><a href=/>Back</a></p>",
            escape(&e.to_string())
        ))
        .into_response(),
    }
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(key) = session_key(&headers)
        && let Ok(Some(session)) = app.client.restore(&key).await
    {
        let _ = session.sign_out().await;
    }
    let mut res = Redirect::to("/").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static("atauth_session=; Path=/; Max-Age=0; HttpOnly"));
    res
}

async fn logged_in(done: CallbackResult) -> Response {
    let key = done.session.key();
    let cookie = format!("{COOKIE}={}|{}; Path=/; HttpOnly; SameSite=Lax", key.did, key.session_id);
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// The whole app: the client's routes (metadata, JWKS, callback) plus the pages.
fn app(client: OAuthClient) -> Router {
    let routes = ClientRoutes::default();
    let state = AppState { client: client.clone() };
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/post", post(post_text))
        .route("/logout", post(logout))
        .with_state(state)
        .merge(router(client, &routes, logged_in))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, Body::from("not found")) })
}

fn config(addr: &str) -> Result<ClientConfig, Box<dyn std::error::Error>> {
    let scope = "atproto transition:generic";
    let mut config = match std::env::var("PUBLIC_URL") {
        Ok(public) => {
            let public = public.trim_end_matches('/');
            let key = match std::env::var("ATAUTH_CLIENT_KEY_HEX") {
                Ok(hex) => PrivateKey::from_hex(Algorithm::Es256, &hex)?,
                Err(_) => PrivateKey::generate(Algorithm::Es256),
            };
            ClientConfig::web_confidential(
                &format!("{public}/oauth-client-metadata.json"),
                &[&format!("{public}/oauth/callback")],
                scope,
                Keyset::new().with_key("key-1", key)?,
                // Publish the keys at jwks_uri (served by ClientRoutes) rather than inline, so a
                // key rotation does not change the metadata document.
                Some(format!("{public}/jwks.json").parse()?),
            )?
            .with_display(Some("atauth example"), Some(public))?
        }
        Err(_) => ClientConfig::loopback(&[&format!("http://{addr}/oauth/callback")], scope)?,
    };
    let plc = std::env::var("ATAUTH_DEV_PLC_URL").ok().map(|u| u.parse()).transpose()?;
    let resolver = std::env::var("ATAUTH_DEV_HANDLE_RESOLVER").ok().map(|u| u.parse()).transpose()?;
    if plc.is_some() || resolver.is_some() {
        config = config.with_dev(DevOptions {
            allow_http_loopback: true,
            plc_url: plc,
            handle_resolver_url: resolver,
        });
    }
    Ok(config)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let store = Arc::new(
        SqliteStore::open(std::env::var("DB").unwrap_or_else(|_| "axum-web-app.sqlite".into())).await?,
    );
    let client = OAuthClient::builder(config(&addr)?)
        .state_store(store.clone())
        .session_store(store.clone())
        .session_lock(store)
        .build()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{addr}");
    #[allow(clippy::print_stdout)]
    {
        println!("open http://{addr}");
    }
    axum::serve(listener, app(client)).await?;
    Ok(())
}
