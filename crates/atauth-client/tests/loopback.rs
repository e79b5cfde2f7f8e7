//! The loopback redirect listener used by CLI logins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use atauth_client::loopback::{LoopbackError, LoopbackListener};

#[tokio::test]
async fn receives_the_redirect_query_and_ignores_other_paths() {
    let listener = LoopbackListener::bind("/callback").await.unwrap();
    let uri = listener.redirect_uri();
    assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
    let waiting = tokio::spawn(listener.wait(Duration::from_secs(10)));
    let base = uri.trim_end_matches("/callback").to_owned();
    let miss = reqwest::get(format!("{base}/favicon.ico")).await.unwrap();
    assert_eq!(miss.status(), 404);
    let hit = reqwest::get(format!("{uri}?code=c&state=s&iss=http%3A%2F%2Flocalhost%3A1")).await.unwrap();
    assert_eq!(hit.status(), 200);
    assert!(hit.text().await.unwrap().contains("close this window"));
    assert_eq!(waiting.await.unwrap().unwrap(), "code=c&state=s&iss=http%3A%2F%2Flocalhost%3A1");
}

#[tokio::test]
async fn times_out_and_survives_garbage() {
    let listener = LoopbackListener::bind("cb").await.unwrap();
    let port = listener.port();
    let waiting = tokio::spawn(listener.wait(Duration::from_millis(500)));
    // A client that sends garbage and hangs up does not end the wait early.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"\x00\x01garbage").await.unwrap();
    drop(s);
    assert!(matches!(waiting.await.unwrap(), Err(LoopbackError::Timeout)));
}
