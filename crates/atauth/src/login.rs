//! `atauth login <handle|did|pds-url>`: log in from a terminal as a loopback OAuth client.
//!
//! 1. Bind the redirect listener on **127.0.0.1** (a free port unless `--port`), so the client id is
//!    `http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3APORT%2Fcallback&scope=…` (CL-MD-LOOP).
//! 2. `authorize`: identity resolution, metadata discovery, PAR with PKCE and DPoP.
//! 3. Print the URL (always: SSH sessions and headless machines have no browser to open), open it
//!    in the browser (cargo feature `browser`, unless `--no-browser`), and show a spinner.
//! 4. Wait for `GET /callback`, `--timeout` (exit 5), or Ctrl-C / SIGTERM (exit 130; nothing is
//!    saved). A callback for an unknown `state` is answered 400 and waited past.
//! 5. Finish the authorization (all callback checks of the client library), confirm the session with
//!    an authenticated `getSession` (which also gives the handle to show), save the session (0600),
//!    and revoke the session it replaces, if any.
//!
//! `--app-password` instead logs in with `com.atproto.server.createSession` (a legacy session).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atauth_client::{
    Agent, AuthorizeError, AuthorizeOptions, CallbackError, DiscoveryError, MemoryStore, OAuthClient,
    OAuthSession, PasswordSession, RequestError, SessionStore as _,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use url::Url;

use crate::callback::{self, Delivered, Reply};
use crate::cli::LoginArgs;
use crate::durations;
use crate::error::CliError;
use crate::output;
use crate::paths::DirLock;
use crate::prompt;
use crate::session_file::{self, DevSettings, FileStore, OAuthClientSettings, Saved};
use crate::signals::Signals;

/// Runs `atauth login`.
pub(crate) async fn run(args: LoginArgs) -> Result<(), CliError> {
    let mut signals = Signals::install();
    let dir = session_file::dir_from(args.session.session_dir.as_ref())?;
    if args.app_password {
        return app_password(&args, &dir).await;
    }
    // Loopback only: the redirect listener is never reachable from another machine.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .map_err(|e| CliError::failed(format!("could not listen on 127.0.0.1:{}", args.port), e))?;
    let port = listener.local_addr().map_err(|e| CliError::failed("listener address", e))?.port();
    let settings = OAuthClientSettings {
        handle: None,
        redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        scope: args.scope.clone(),
        dev: DevSettings::from(&args.dev),
    };
    let store = Arc::new(FileStore::new(&dir, settings.clone()));
    let client = session_file::oauth_client(&settings, store.clone())?;
    let url = client
        .authorize(&args.input, AuthorizeOptions::default())
        .await
        .map_err(|e| authorize_error(&args.input, e))?;

    output::note("Open this URL in a browser to log in:");
    output::note("");
    output::note(url.as_str());
    output::note("");
    if !args.no_browser {
        open_browser(&url);
    }

    let mut listener = callback::start(listener);
    let spinner = spinner(args.timeout);
    let outcome = tokio::select! {
        r = wait_for_callback(&client, &store, &dir, &mut listener.callbacks) => r,
        () = tokio::time::sleep(args.timeout) => Err(CliError::Timeout(durations::display(args.timeout))),
        _ = signals.recv() => Err(CliError::Interrupted),
    };
    spinner.finish_and_clear();
    listener.stop().await;
    let (session, handle) = outcome?;
    let who = match &handle {
        Some(h) => format!("{h} ({})", session.did()),
        None => session.did().to_string(),
    };
    output::say(&format!("Logged in as {who}"));
    output::note(&format!("Session saved in {}", session_file::path_in(&dir).display()));
    Ok(())
}

fn spinner(timeout: Duration) -> ProgressBar {
    // Drawn only when stderr is a terminal; invisible in pipes and tests.
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        pb.set_style(style);
    }
    pb.set_message(format!(
        "Waiting for the login in the browser (Ctrl-C to cancel; gives up after {})",
        durations::display(timeout)
    ));
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

#[cfg(feature = "browser")]
fn open_browser(url: &Url) {
    let url = url.to_string();
    // Detached: a text-mode browser may hold the call until it exits.
    std::mem::drop(tokio::task::spawn_blocking(move || match webbrowser::open(&url) {
        Ok(()) => tracing::debug!("opened the browser"),
        Err(e) => tracing::info!(error = %e, "could not open a browser; open the URL yourself"),
    }));
}

#[cfg(not(feature = "browser"))]
fn open_browser(_url: &Url) {}

/// Waits for the callback that completes this login; returns the session and its handle.
async fn wait_for_callback(
    client: &OAuthClient,
    store: &FileStore,
    dir: &Path,
    callbacks: &mut mpsc::Receiver<Delivered>,
) -> Result<(OAuthSession, Option<String>), CliError> {
    loop {
        let Some(Delivered { query, reply }) = callbacks.recv().await else {
            return Err(CliError::Failed("the callback listener stopped".into()));
        };
        let is_callback = url::form_urlencoded::parse(query.as_bytes())
            .any(|(k, _)| k == "state" || k == "code" || k == "error");
        if !is_callback {
            let _ = reply.send(Reply { ok: false, message: "This is not an OAuth callback.".into() });
            continue;
        }
        // From here until the session is saved, no other atauth process touches the session file.
        let lock = DirLock::acquire(dir).await?;
        let previous = match session_file::load(dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the unreadable previous session");
                None
            }
        };
        let session = match client.callback_query(&query).await {
            Ok(done) => done.session,
            Err(CallbackError::UnknownState) => {
                tracing::warn!("ignored a callback for an unknown or expired login attempt");
                let _ = reply.send(Reply {
                    ok: false,
                    message: "This login attempt is unknown or has expired.".into(),
                });
                continue;
            }
            Err(e) => {
                let err = callback_error(e);
                let _ = reply.send(Reply { ok: false, message: format!("{err}.") });
                return Err(err);
            }
        };
        let handle = match Agent::new(session.clone())
            .query::<serde_json::Value>("com.atproto.server.getSession", &[])
            .await
        {
            Ok(me) => me["handle"].as_str().map(str::to_owned),
            Err(e) => {
                tracing::warn!(error = %e, "getSession after login failed");
                None
            }
        };
        store.set_handle(handle.clone())?;
        let shown = handle.clone().unwrap_or_else(|| session.did().to_string());
        let _ = reply.send(Reply { ok: true, message: format!("atauth is now logged in as {shown}.") });
        if let Some(old) = previous {
            revoke_replaced(old).await;
        }
        drop(lock);
        return Ok((session, handle));
    }
}

/// Best effort: revoke the session a new login replaces (its file entry is already overwritten).
pub(crate) async fn revoke_replaced(old: Saved) {
    let who = old.describe();
    match old {
        Saved::Oauth { client, session } => {
            let memory = Arc::new(MemoryStore::new());
            if memory.put_session(&session).await.is_err() {
                return;
            }
            let Ok(c) = session_file::oauth_client(&client, memory) else { return };
            if let Ok(Some(s)) = c.restore(&session.key).await {
                let _ = s.sign_out().await;
                tracing::info!(account = %who, "revoked the previous session");
            }
        }
        Saved::AppPassword { dev, session } => {
            let Ok(http) = dev.http_client() else { return };
            if let Err(e) = PasswordSession::resume(http, session).logout().await {
                tracing::warn!(account = %who, error = %e, "could not end the previous app-password session");
            }
        }
    }
}

fn authorize_error(input: &str, e: AuthorizeError) -> CliError {
    match e {
        AuthorizeError::Discovery(DiscoveryError::InvalidInput(_)) => CliError::Config(format!(
            "{input:?} is not a handle (alice.bsky.social), a DID (did:plc:…) or a server URL (https://…)"
        )),
        AuthorizeError::Discovery(d) => CliError::failed(format!("could not find where {input} logs in"), d),
        other => CliError::failed("could not start the login", other),
    }
}

fn callback_error(e: CallbackError) -> CliError {
    match e {
        CallbackError::AuthorizationError(r) => {
            CliError::Refused(format!("the authorization server refused the login: {r}"))
        }
        other => CliError::failed("the login could not be completed", other),
    }
}

async fn app_password(args: &LoginArgs, dir: &Path) -> Result<(), CliError> {
    let input = args.input.trim();
    if input.contains("://") {
        return Err(CliError::Config(
            "--app-password needs a handle or DID (the PDS is found from it), not a URL".into(),
        ));
    }
    let dev = DevSettings::from(&args.dev);
    let http = dev.http_client()?;
    let identity = dev
        .identity_resolver(http.clone())?
        .resolve_input(input)
        .await
        .map_err(|e| CliError::failed(format!("could not resolve {input}"), e))?;
    let password = prompt::read_password(args.password_stdin, &format!("App password for {input}: "))?;
    let session = PasswordSession::login(http, &identity.pds_endpoint, input, password.expose_secret(), None)
        .await
        .map_err(|e| match e.xrpc_error() {
            Some("AuthenticationRequired") => {
                CliError::Refused(format!("{input}: wrong identifier or password"))
            }
            Some("AuthFactorTokenRequired") => CliError::Refused(
                "this account needs a sign-in code sent by email; use an app password instead".into(),
            ),
            Some("AccountTakedown") => CliError::Refused(format!("{input}: the account is taken down")),
            _ => legacy_error("could not log in", &e),
        })?;
    let data = session.export().await;
    let lock = DirLock::acquire(dir).await?;
    let previous = session_file::load(dir).unwrap_or(None);
    let saved = Saved::AppPassword { dev, session: data };
    session_file::save(dir, &saved)?;
    if let Some(old) = previous {
        revoke_replaced(old).await;
    }
    drop(lock);
    output::say(&format!("Logged in as {} with an app password (legacy session)", saved.describe()));
    output::note(&format!("Session saved in {}", session_file::path_in(dir).display()));
    Ok(())
}

/// Maps a legacy-session request error.
pub(crate) fn legacy_error(context: &str, e: &RequestError) -> CliError {
    match e {
        RequestError::Xrpc { status: 401, .. } => CliError::Refused(format!("{context}: {e}")),
        other => CliError::failed(context, other),
    }
}
