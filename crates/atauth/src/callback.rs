//! The loopback redirect listener of `atauth login`: `GET /callback` on `127.0.0.1:PORT` (never
//! `0.0.0.0`; the caller binds it). Each callback request is handed to the login task, which finishes
//! the authorization and decides what the browser sees; every other path is 404.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

/// What the browser is shown after a callback.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Whether the login succeeded.
    pub(crate) ok: bool,
    /// One sentence for the page (no secrets).
    pub(crate) message: String,
}

/// A callback the browser delivered: its query string and where to send the page.
#[derive(Debug)]
pub(crate) struct Delivered {
    /// The raw query string (without `?`).
    pub(crate) query: String,
    /// Answer with the page to show.
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The running listener.
#[derive(Debug)]
pub(crate) struct Listener {
    /// Callbacks as they arrive.
    pub(crate) callbacks: mpsc::Receiver<Delivered>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Serves `GET /callback` on `listener`.
pub(crate) fn start(listener: tokio::net::TcpListener) -> Listener {
    let (tx, rx) = mpsc::channel::<Delivered>(4);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = Router::new().route("/callback", get(callback)).with_state(tx);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "callback listener stopped with an error");
        }
    });
    Listener { callbacks: rx, stop: stop_tx, task }
}

impl Listener {
    /// Stops accepting and lets the last answer reach the browser (at most 2 s).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut task).await.is_err() {
            task.abort();
        }
    }
}

async fn callback(State(tx): State<mpsc::Sender<Delivered>>, RawQuery(query): RawQuery) -> Response {
    let (reply_tx, reply_rx) = oneshot::channel();
    let delivered = Delivered { query: query.unwrap_or_default(), reply: reply_tx };
    let reply = if tx.send(delivered).await.is_ok() {
        reply_rx.await.unwrap_or(Reply { ok: false, message: "atauth login is no longer waiting.".into() })
    } else {
        Reply { ok: false, message: "atauth login is no longer waiting.".into() }
    };
    page(&reply)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(reply: &Reply) -> Response {
    let title = if reply.ok { "Logged in" } else { "Login failed" };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>atauth: {title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em\">\
         <h1>{title}</h1><p>{}</p><p>You can close this window and return to the terminal.</p></body></html>",
        escape(&reply.message)
    );
    let status = if reply.ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
