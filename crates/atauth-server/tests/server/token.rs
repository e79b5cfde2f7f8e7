//! Token endpoint negative tests (AS-TOK-*, AS-CODE-*, AS-REF-*): status, error code, and what
//! changed (nothing for binding failures; the family for replay and mismatches).

use crate::common::*;
use atauth_crypto::dpop::{DpopSigner, ProofParams};
use http::StatusCode;

/// Refused code request; afterwards the correct request still redeems the code (nothing burned).
async fn code_refused(
    h: &Harness,
    c: &TestClient,
    code: &str,
    params: &[(&'static str, String)],
    proof: Option<String>,
    error: &str,
) {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let proof = proof.unwrap_or_else(|| c.proof(h, "POST", "/oauth/token", None));
    let r = h.post_form("/oauth/token", &pairs, Some(&proof)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, error), "{}", r.raw);
    assert!(r.body["access_token"].is_null(), "nothing issued");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let ok = c.token_with(h, &c.code_params(code)).await;
    assert_eq!(ok.status, StatusCode::OK, "the code survived the refused request: {}", ok.raw);
}

#[tokio::test]
async fn as_tok_03_binding_checks_burn_nothing() {
    let h = Harness::new().await;
    let other_verifier = atauth_crypto::pkce::PkceVerifier::generate();
    type Case = Box<dyn Fn(&TestClient, &str) -> Vec<(&'static str, String)>>;
    let cases: Vec<(Case, &str)> = vec![
        (
            Box::new(|c, code| {
                with(&c.code_params(code), "redirect_uri", Some("http://127.0.0.1:1234/callback"))
            }),
            "invalid_grant",
        ),
        (Box::new(|c, code| with(&c.code_params(code), "redirect_uri", None)), "invalid_request"),
        (Box::new(|c, code| with(&c.code_params(code), "code_verifier", None)), "invalid_request"),
        (
            Box::new(|c, code| with(&c.code_params(code), "code_verifier", Some("too-short"))),
            "invalid_request",
        ),
        (
            Box::new(move |c, code| {
                with(&c.code_params(code), "code_verifier", Some(other_verifier.expose_secret()))
            }),
            "invalid_grant",
        ),
        (
            Box::new(|c, code| {
                with(
                    &c.code_params(code),
                    "client_id",
                    Some("http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"),
                )
            }),
            "invalid_grant",
        ),
        (Box::new(|c, code| with(&c.code_params(code), "client_id", None)), "invalid_request"),
        (
            Box::new(|c, code| with(&c.code_params(code), "grant_type", Some("password"))),
            "unsupported_grant_type",
        ),
        (Box::new(|c, code| with(&c.code_params(code), "grant_type", None)), "invalid_request"),
        (Box::new(|c, code| with(&c.code_params(code), "code", Some("cod-unknown"))), "invalid_grant"),
        (Box::new(|c, code| with(&c.code_params(code), "client_assertion", Some("a.b.c"))), "invalid_client"),
    ];
    for (make, error) in cases {
        let c = TestClient::loopback();
        let code = c.authorize(&h).await;
        code_refused(&h, &c, &code, &make(&c, &code), None, error).await;
    }
}

#[tokio::test]
async fn as_tok_03_dpop_key_must_be_the_one_bound_at_par() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let thief = DpopSigner::generate();
    let proof = thief.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/token"),
        nonce: Some(&h.server.dpop_nonce()),
        access_token: None,
        iat: h.now(),
    });
    code_refused(&h, &c, &code, &c.code_params(&code), Some(proof), "invalid_grant").await;
}

#[tokio::test]
async fn t14_nonce_and_proof_errors_come_before_the_code_is_touched() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let no_nonce = c.dpop.proof(&ProofParams {
        method: "POST",
        url: &format!("{ISSUER}/oauth/token"),
        nonce: None,
        access_token: None,
        iat: h.now(),
    });
    code_refused(&h, &c, &code, &c.code_params(&code), Some(no_nonce), "use_dpop_nonce").await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let pairs = c.code_params(&code);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.post_form("/oauth/token", &pairs, None).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
    assert_eq!(c.token_with(&h, &c.code_params(&code)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn as_code_01_codes_expire() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    h.advance(301);
    let r = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(r.body["access_token"].is_null());
}

#[tokio::test]
async fn as_code_02_reused_code_revokes_what_it_issued() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let code = c.authorize(&h).await;
    let first = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!((again.status, again.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(again.body["access_token"].is_null());
    let at = first.body["access_token"].as_str().unwrap();
    assert_eq!(c.get_session(&h, at).await.status, StatusCode::UNAUTHORIZED, "first access token revoked");
    let r = c.token_with(&h, &c.refresh_params(first.body["refresh_token"].as_str().unwrap())).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "first refresh token revoked"
    );
}

/// Logs `c` in and refreshes once; returns the first refresh token and the refresh response.
async fn logged_in_and_refreshed(h: &Harness, c: &TestClient) -> (String, Resp) {
    let t = c.login(h).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();
    let next = c.token_with(h, &c.refresh_params(&r1)).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.raw);
    (r1, next)
}

/// The refresh token in `issued` (a token response) is refused: its family is gone.
async fn assert_refresh_refused(h: &Harness, c: &TestClient, issued: &Resp, why: &str) {
    let r = c.token_with(h, &c.refresh_params(issued.body["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{why}");
}

#[tokio::test]
async fn as_ref_01_replayed_refresh_token_revokes_the_family() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let (r1, next) = logged_in_and_refreshed(&h, &c).await;
    // Outside the lost-response retry grace (30 s by default), even the same client and key replay.
    h.advance(31);
    let replay = c.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(replay.raw.contains("replayed"));
    assert_refresh_refused(&h, &c, &next, "newest token dead too").await;
    assert_eq!(
        c.get_session(&h, next.body["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Issue 15 (bluesky-social/atproto#4656): a client whose refresh response was lost retries with the
/// old token and the same DPoP key within the grace, and keeps its session; the lost token set is
/// dead, the retry works once, and AS-REF-01 holds for every other replay.
#[tokio::test]
async fn as_ref_01_lost_refresh_response_is_retried_within_the_grace_once() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    // The first refresh's response is the one the client never sees.
    let (r1, lost) = logged_in_and_refreshed(&h, &c).await;
    h.advance(20);
    let retry = c.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.raw);
    let at = retry.body["access_token"].as_str().unwrap();
    assert_eq!(c.get_session(&h, at).await.status, StatusCode::OK, "the session survives");
    assert_eq!(
        c.get_session(&h, lost.body["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED,
        "the lost access token was replaced"
    );
    // The retried token set rotates on as usual.
    let r3 = retry.body["refresh_token"].as_str().unwrap();
    let next = c.token_with(&h, &c.refresh_params(r3)).await;
    assert_eq!(next.status, StatusCode::OK);
    // The one retry is spent: the old token again revokes the family.
    let again = c.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!((again.status, again.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_refresh_refused(&h, &c, &next, "family revoked").await;
}

/// Issue 15: inside the retry grace, the replaced token with another DPoP key (a thief who copied
/// it) is AS-REF-02: the family is revoked, the rightful client's current token included.
#[tokio::test]
async fn as_ref_02_replaced_token_with_another_key_inside_the_grace_revokes() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let (r1, next) = logged_in_and_refreshed(&h, &c).await;
    let thief = TestClient { dpop: DpopSigner::generate(), ..TestClient::loopback() };
    let r = thief.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_refresh_refused(&h, &c, &next, "family revoked").await;
}

/// `refresh_retry_grace` = 0 turns the retry off: an immediate replay revokes (AS-REF-01).
#[tokio::test]
async fn as_ref_01_retry_grace_zero_revokes_at_once() {
    let h = Harness::with(|b| {
        b.lifetimes(atauth_server::Lifetimes {
            refresh_retry_grace: std::time::Duration::ZERO,
            ..atauth_server::Lifetimes::default()
        })
    })
    .await;
    let c = TestClient::loopback();
    let (r1, next) = logged_in_and_refreshed(&h, &c).await;
    let replay = c.token_with(&h, &c.refresh_params(&r1)).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_refresh_refused(&h, &c, &next, "family revoked").await;
}

#[tokio::test]
async fn as_ref_02_refresh_with_another_dpop_key_revokes() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let thief = TestClient { dpop: DpopSigner::generate(), ..TestClient::loopback() };
    let r = thief.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(r.body["access_token"].is_null());
    assert_eq!(c.get_session(&h, t["access_token"].as_str().unwrap()).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn as_ref_02_refresh_from_another_client_revokes() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let other = "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fother&scope=atproto";
    let r = c
        .token_with(
            &h,
            &with(&c.refresh_params(t["refresh_token"].as_str().unwrap()), "client_id", Some(other)),
        )
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let again = c.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "family revoked");
}

#[tokio::test]
async fn as_ref_03_refresh_after_session_lifetime_fails() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    h.advance(14 * 86_400);
    let r = c.token_with(&h, &c.refresh_params(t["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let r = c.token_with(&h, &c.refresh_params("ref-00")).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let r = c.token_with(&h, &with(&c.refresh_params("x"), "refresh_token", None)).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
}

#[tokio::test]
async fn access_tokens_never_outlive_the_session() {
    let h = Harness::with(|b| {
        b.lifetimes(atauth_server::Lifetimes {
            public_session: std::time::Duration::from_secs(600),
            ..atauth_server::Lifetimes::default()
        })
    })
    .await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    assert_eq!(t["expires_in"], 600, "AS-REF-03: capped at the session end");
}

/// A TCP proxy in front of the server that forwards each request whole and, while `drop` is set,
/// throws the server's response away and closes the client's connection: a response lost in
/// transit after the server acted on the request.
mod lossy_proxy {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one HTTP/1.1 request (headers and a `Content-Length` body).
    async fn read_request(s: &mut TcpStream) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed mid-request");
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return buf;
            }
        }
    }

    /// Starts the proxy; returns its address and the switch that drops responses.
    pub async fn start(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let drop = Arc::new(AtomicBool::new(false));
        let switch = drop.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let drop = switch.clone();
                tokio::spawn(async move {
                    let request = read_request(&mut inbound).await;
                    let mut outbound = TcpStream::connect(upstream).await.unwrap();
                    outbound.write_all(&request).await.unwrap();
                    let mut response = Vec::new();
                    outbound.read_to_end(&mut response).await.unwrap();
                    if !drop.load(Ordering::SeqCst) {
                        inbound.write_all(&response).await.unwrap();
                    }
                    // Dropping `inbound` closes the client's connection, with or without an answer.
                });
            }
        });
        (addr, drop)
    }

    /// POSTs a form over a fresh connection; `None` when the connection closed without an answer.
    pub async fn post_form(addr: SocketAddr, path: &str, body: &str, dpop: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             dpop: {dpop}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        if raw.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Some((status, body))
    }
}

/// Issue 15 over real sockets: a proxy loses the refresh response after the server rotated; the
/// client retries the same refresh token with the same key and keeps its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_ref_01_refresh_response_lost_by_a_proxy_is_recoverable() {
    use std::sync::atomic::Ordering;
    let h = Harness::new().await;
    let c = TestClient::loopback();
    let t = c.login(&h).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(atauth_server::web::serve(h.server.clone(), listener, None, std::future::pending()));
    let (proxy, drop_responses) = lossy_proxy::start(upstream).await;
    let body = form(&c.refresh_params(&r1).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());

    drop_responses.store(true, Ordering::SeqCst);
    let lost =
        lossy_proxy::post_form(proxy, "/oauth/token", &body, &c.proof(&h, "POST", "/oauth/token", None))
            .await;
    assert_eq!(lost, None, "the proxy dropped the response");

    drop_responses.store(false, Ordering::SeqCst);
    let (status, answer) =
        lossy_proxy::post_form(proxy, "/oauth/token", &body, &c.proof(&h, "POST", "/oauth/token", None))
            .await
            .expect("an answer");
    assert_eq!(status, 200, "{answer}");
    let tokens: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(c.get_session(&h, at).await.status, StatusCode::OK, "the session survived");
    let next = c.token_with(&h, &c.refresh_params(tokens["refresh_token"].as_str().unwrap())).await;
    assert_eq!(next.status, StatusCode::OK, "and refreshes on");
}
