//! `web::serve` on a real loopback socket: serves, then stops gracefully when asked.

use std::time::Duration;

use atauth_identity::http::{HttpRequest, SafeHttpClient};
use atauth_server::AuthServer;
use url::Url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_and_shuts_down_gracefully() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = AuthServer::builder(format!("http://localhost:{port}")).dev_mode(true).build().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(atauth_server::web::serve(server, listener, None, async move {
        let _ = stopped.await;
    }));
    let http = SafeHttpClient::builder().allow_http_loopback(true).build().unwrap();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource")).unwrap();
    let res = http.send(HttpRequest::get(url.clone())).await.unwrap();
    assert_eq!(res.status, 200);
    let body: serde_json::Value = res.json().unwrap();
    assert_eq!(body["authorization_servers"][0], format!("http://localhost:{port}"));

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), task).await.expect("serve stops within 5 s");
    result.unwrap().unwrap();
    assert!(http.send(HttpRequest::get(url)).await.is_err(), "no longer listening");
}
