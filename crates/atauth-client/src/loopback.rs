//! [`LoopbackListener`]: the one-shot HTTP listener on `127.0.0.1` that receives the authorization
//! redirect of a loopback (CLI / desktop) login (RFC 8252 §7.3, CL-MD-LOOP, CL-MD-NAT-04).
//!
//! It binds before the authorization starts (so the redirect URI, with its port, goes into the
//! loopback client id), answers the browser with a small HTML page, and hands back the query
//! string for [`OAuthClient::callback_query`](crate::OAuthClient::callback_query). Requests to
//! other paths get 404 and are ignored; each request head is bounded (8 KiB, 10 s).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use atauth_client::{AuthorizeOptions, ClientConfig, OAuthClient, loopback::LoopbackListener};
//!
//! let listener = LoopbackListener::bind("/callback").await?;
//! let config = ClientConfig::loopback(&[&listener.redirect_uri()], "atproto transition:generic")?;
//! let client = OAuthClient::builder(config).build()?;
//! let url = client.authorize("alice.bsky.social", AuthorizeOptions::default()).await?;
//! println!("Open {url}"); // and try to open a browser
//! let query = listener.wait(Duration::from_secs(300)).await?;
//! let session = client.callback_query(&query).await?.session;
//! # let _ = session; Ok(()) }
//! ```

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

const DONE_PAGE: &str = "<!doctype html><html lang=en><meta charset=utf-8><title>Signed in</title>\
<body style=\"font-family:sans-serif;margin:3em\"><p id=done>You can close this window and return to the application.</p></body></html>";

/// Why waiting for the redirect failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// Binding or accepting failed.
    #[error("loopback listener I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// No redirect arrived in time.
    #[error("no authorization redirect arrived in time")]
    Timeout,
}

/// A listener on `127.0.0.1:<port>` for one authorization redirect.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    port: u16,
    path: String,
}

impl LoopbackListener {
    /// Binds `127.0.0.1` on a free port; `path` is the redirect path (e.g. `/callback`).
    pub async fn bind(path: &str) -> Result<Self, LoopbackError> {
        Self::bind_port(0, path).await
    }

    /// Binds `127.0.0.1:port` (0 = a free port).
    pub async fn bind_port(port: u16, path: &str) -> Result<Self, LoopbackError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        Ok(Self { listener, port, path })
    }

    /// The redirect URI to register: `http://127.0.0.1:<port><path>`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for `GET <path>?<query>` and returns the query string (without `?`).
    pub async fn wait(self, timeout: Duration) -> Result<String, LoopbackError> {
        tokio::time::timeout(timeout, async {
            loop {
                let (stream, _) = self.listener.accept().await?;
                if let Some(query) = self.handle(stream).await {
                    return Ok(query);
                }
            }
        })
        .await
        .map_err(|_| LoopbackError::Timeout)?
    }

    /// Reads one request head; answers it; returns the query if it was the redirect.
    async fn handle(&self, mut stream: TcpStream) -> Option<String> {
        let mut buf = Vec::with_capacity(1024);
        let read = tokio::time::timeout(HEAD_TIMEOUT, async {
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Some(())
        })
        .await;
        if !matches!(read, Ok(Some(()))) {
            return None;
        }
        let head = String::from_utf8_lossy(&buf);
        let mut parts = head.lines().next().unwrap_or_default().split(' ');
        let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let hit = method == "GET" && path == self.path;
        let response = if hit {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{DONE_PAGE}",
                DONE_PAGE.len()
            )
        } else {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        hit.then(|| query.to_owned())
    }
}
