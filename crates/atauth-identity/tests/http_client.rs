//! `SafeHttpClient`: SSRF refusals (CL-DISC-07, AS-CMD-01), redirects, status, content type, size caps
//! and timeouts. Servers are wiremock or raw tokio listeners on 127.0.0.1, reached through the
//! development switch `allow_http_loopback`; every SSRF test asserts the typed error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use atauth_identity::http::{
    BlockReason, HttpError, HttpRequest, SafeHttpClient, StaticAddressLookup, classify_ip,
    is_loopback_destination,
};
use http::StatusCode;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URL")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

/// Production settings, with a fake DNS table.
fn prod_client(lookup: StaticAddressLookup) -> SafeHttpClient {
    SafeHttpClient::builder()
        .address_lookup(lookup)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

/// Development switch on (plain http to loopback), with a fake DNS table.
fn dev_client(lookup: StaticAddressLookup) -> SafeHttpClient {
    SafeHttpClient::builder()
        .allow_http_loopback(true)
        .address_lookup(lookup)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

async fn get(client: &SafeHttpClient, u: &str) -> Result<atauth_identity::http::HttpResponse, HttpError> {
    client.send(HttpRequest::get(url(u))).await
}

fn assert_blocked(result: Result<impl std::fmt::Debug, HttpError>, addr: &str, reason: BlockReason) {
    match result {
        Err(HttpError::Blocked { addr: a, reason: r }) => {
            assert_eq!(a, ip(addr), "blocked address");
            assert_eq!(r, reason, "block reason for {addr}");
        }
        other => panic!("expected Blocked {{ {addr}, {reason:?} }}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- SSRF: IP literals ---

#[tokio::test]
async fn loopback_literal_is_refused_without_the_dev_switch() {
    // A real listener is there: the refusal must come from the policy, not from a failed connect.
    let server = MockServer::start().await;
    let port = server.address().port();
    let client = prod_client(StaticAddressLookup::new());
    assert_blocked(
        get(&client, &format!("https://127.0.0.1:{port}/")).await,
        "127.0.0.1",
        BlockReason::Loopback,
    );
    assert!(matches!(
        get(&client, &format!("http://127.0.0.1:{port}/")).await,
        Err(HttpError::SchemeNotAllowed { scheme }) if scheme == "http"
    ));
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn special_use_literals_are_refused() {
    let client = prod_client(StaticAddressLookup::new());
    let cases = [
        ("https://10.0.0.1/", "10.0.0.1", BlockReason::Private),
        ("https://10.255.1.2:8443/x", "10.255.1.2", BlockReason::Private),
        ("https://172.16.5.4/", "172.16.5.4", BlockReason::Private),
        ("https://192.168.1.1/", "192.168.1.1", BlockReason::Private),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254", BlockReason::LinkLocal),
        ("https://100.64.0.1/", "100.64.0.1", BlockReason::SharedAddressSpace),
        ("https://0.0.0.0/", "0.0.0.0", BlockReason::Unspecified),
        ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", BlockReason::Loopback),
        ("https://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", BlockReason::LinkLocal),
        ("https://[::1]/", "::1", BlockReason::Loopback),
        ("https://[::]/", "::", BlockReason::Unspecified),
        ("https://[fd00::1]/", "fd00::1", BlockReason::UniqueLocal),
        ("https://[fe80::1]/", "fe80::1", BlockReason::LinkLocal),
        ("https://[64:ff9b::a00:1]/", "64:ff9b::a00:1", BlockReason::Private),
        ("https://[2002:a9fe:a9fe::1]/", "2002:a9fe:a9fe::1", BlockReason::LinkLocal),
        ("https://[2001:db8::1]/", "2001:db8::1", BlockReason::Documentation),
        ("https://224.0.0.1/", "224.0.0.1", BlockReason::Multicast),
        ("https://198.18.0.1/", "198.18.0.1", BlockReason::Benchmarking),
    ];
    for (u, addr, reason) in cases {
        assert_blocked(get(&client, u).await, addr, reason);
    }
}

#[tokio::test]
async fn dev_switch_opens_loopback_only() {
    let client = dev_client(StaticAddressLookup::new());
    // https may now reach loopback (refused here only because nothing listens with TLS).
    assert!(client.check_url(&url("https://127.0.0.1/")).is_ok());
    assert!(client.check_url(&url("https://[::1]/")).is_ok());
    // Every other private range stays closed, over https and http.
    assert_blocked(get(&client, "https://10.0.0.1/").await, "10.0.0.1", BlockReason::Private);
    assert_blocked(get(&client, "https://169.254.169.254/").await, "169.254.169.254", BlockReason::LinkLocal);
    assert_blocked(get(&client, "https://[fd00::1]/").await, "fd00::1", BlockReason::UniqueLocal);
    for u in ["http://10.0.0.1/", "http://169.254.169.254/", "http://93.184.215.14/"] {
        assert!(matches!(get(&client, u).await, Err(HttpError::PlainHttpToNonLoopback { .. })), "{u}");
    }
}

// ---------------------------------------------------------- SSRF: resolved addresses ---

#[tokio::test]
async fn hostname_resolving_to_private_address_is_refused() {
    let lookup = StaticAddressLookup::new()
        .with("evil.example.net", [ip("10.0.0.7")])
        .with("metadata.example.net", [ip("169.254.169.254")])
        .with("mapped.example.net", [ip("::ffff:127.0.0.1")])
        .with("loopback.example.net", [ip("127.0.0.1"), ip("::1")])
        .with("nat64.example.net", [ip("64:ff9b::c0a8:101")]);
    let client = prod_client(lookup);
    assert_blocked(get(&client, "https://evil.example.net/").await, "10.0.0.7", BlockReason::Private);
    assert_blocked(
        get(&client, "https://metadata.example.net/").await,
        "169.254.169.254",
        BlockReason::LinkLocal,
    );
    assert_blocked(
        get(&client, "https://mapped.example.net/").await,
        "::ffff:127.0.0.1",
        BlockReason::Loopback,
    );
    assert_blocked(get(&client, "https://loopback.example.net/").await, "127.0.0.1", BlockReason::Loopback);
    assert_blocked(
        get(&client, "https://nat64.example.net/").await,
        "64:ff9b::c0a8:101",
        BlockReason::Private,
    );
}

#[tokio::test]
async fn dev_http_to_a_name_with_public_address_is_refused() {
    let lookup = StaticAddressLookup::new().with("public.example.net", [ip("93.184.215.14")]);
    let client = dev_client(lookup);
    match get(&client, "http://public.example.net/").await {
        Err(HttpError::PlainHttpToNonLoopback { addr }) => assert_eq!(addr, ip("93.184.215.14")),
        other => panic!("expected PlainHttpToNonLoopback, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_addresses_are_filtered_and_the_rest_used() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_string("hi"))
        .expect(1)
        .mount(&server)
        .await;
    let port = server.address().port();
    // A private address first; the policy drops it and the connection goes to loopback.
    let lookup = StaticAddressLookup::new().with("mixed.test", [ip("10.9.9.9"), ip("127.0.0.1")]);
    let res = get(&dev_client(lookup), &format!("http://mixed.test:{port}/ok"))
        .await
        .expect("the loopback address is used");
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(&res.body[..], b"hi");
}

#[tokio::test]
async fn unknown_host_is_a_dns_error() {
    let client = prod_client(StaticAddressLookup::new());
    assert!(matches!(
        get(&client, "https://nowhere.example.net/").await,
        Err(HttpError::Dns { host, .. }) if host == "nowhere.example.net"
    ));
    let empty = prod_client(StaticAddressLookup::new().with("empty.example.net", []));
    assert!(matches!(get(&empty, "https://empty.example.net/").await, Err(HttpError::NoAddresses { .. })));
}

#[tokio::test]
async fn credentials_and_odd_schemes_are_refused() {
    let client = dev_client(StaticAddressLookup::new());
    assert!(matches!(get(&client, "http://user:pass@127.0.0.1/").await, Err(HttpError::CredentialsInUrl)));
    assert!(matches!(get(&client, "file:///etc/passwd").await, Err(HttpError::SchemeNotAllowed { .. })));
}

// ------------------------------------------------------------- responses (wiremock) ---

async fn json_server(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/meta.json")).respond_with(template).mount(&server).await;
    server
}

fn meta_url(server: &MockServer) -> Url {
    url(&format!("{}/meta.json", server.uri()))
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Meta {
    issuer: String,
}

#[tokio::test]
async fn get_json_exact_200_accepts_json() {
    let server = json_server(
        ResponseTemplate::new(200)
            .set_body_raw(r#"{"issuer":"https://as.example.com"}"#, "application/json; charset=utf-8"),
    )
    .await;
    let client = dev_client(StaticAddressLookup::new());
    let meta: Meta = client.get_json_exact_200(&meta_url(&server), 5 * 1024).await.expect("valid metadata");
    assert_eq!(meta.issuer, "https://as.example.com");
}

#[tokio::test]
async fn redirect_is_refused_and_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/meta.json"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/elsewhere"))
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = dev_client(StaticAddressLookup::new());
    match client.get_json_exact_200::<Meta>(&meta_url(&server), 1024).await {
        Err(HttpError::Redirect { status, location }) => {
            assert_eq!(status, StatusCode::FOUND);
            assert_eq!(location.as_deref(), Some("/elsewhere"));
        }
        other => panic!("expected Redirect, got {other:?}"),
    }
    // Also through the general `send`: 3xx is never a response.
    assert!(matches!(
        client.send(HttpRequest::get(meta_url(&server))).await,
        Err(HttpError::Redirect { .. })
    ));
}

#[tokio::test]
async fn status_other_than_200_is_refused() {
    for status in [201u16, 204, 404, 500] {
        let server = json_server(ResponseTemplate::new(status).set_body_raw("{}", "application/json")).await;
        let client = dev_client(StaticAddressLookup::new());
        match client.get_json_exact_200::<serde_json::Value>(&meta_url(&server), 1024).await {
            Err(HttpError::UnexpectedStatus { status: s }) => assert_eq!(s.as_u16(), status),
            other => panic!("{status}: expected UnexpectedStatus, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_refused() {
    let server = json_server(ResponseTemplate::new(200).set_body_raw(r#"{"issuer":"x"}"#, "text/html")).await;
    let client = dev_client(StaticAddressLookup::new());
    match client.get_json_exact_200::<Meta>(&meta_url(&server), 1024).await {
        Err(HttpError::UnexpectedContentType { found }) => {
            assert_eq!(found.as_deref(), Some("text/html"));
        }
        other => panic!("expected UnexpectedContentType, got {other:?}"),
    }
    let server = json_server(ResponseTemplate::new(200).set_body_bytes(br#"{"issuer":"x"}"#.to_vec())).await;
    match client.get_json_exact_200::<Meta>(&meta_url(&server), 1024).await {
        Err(HttpError::UnexpectedContentType { found: None }) => {}
        other => panic!("expected UnexpectedContentType(None), got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_json_is_a_typed_error() {
    let server = json_server(ResponseTemplate::new(200).set_body_raw("{not json", "application/json")).await;
    let client = dev_client(StaticAddressLookup::new());
    assert!(matches!(
        client.get_json_exact_200::<Meta>(&meta_url(&server), 1024).await,
        Err(HttpError::InvalidJson(_))
    ));
}

#[tokio::test]
async fn oversize_body_with_content_length_is_refused() {
    let server = json_server(
        ResponseTemplate::new(200).set_body_raw(format!("\"{}\"", "a".repeat(10 * 1024)), "application/json"),
    )
    .await;
    let client = dev_client(StaticAddressLookup::new());
    assert!(matches!(
        client.get_json_exact_200::<String>(&meta_url(&server), 1024).await,
        Err(HttpError::TooLarge { limit: 1024 })
    ));
    // The same body fits a larger cap.
    let s: String = client.get_json_exact_200(&meta_url(&server), 64 * 1024).await.expect("fits");
    assert_eq!(s.len(), 10 * 1024);
}

/// A raw HTTP/1.1 server on 127.0.0.1 that answers every connection with `head`, then calls `body`
/// with the socket (to stream or stall).
async fn raw_server<F, Fut>(head: &'static str, body: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await; // the request (small, one read suffices)
            if socket.write_all(head.as_bytes()).await.is_err() {
                continue;
            }
            tokio::spawn(body(socket));
        }
    });
    addr
}

#[tokio::test]
async fn endless_chunked_body_is_cut_off_while_streaming() {
    // No Content-Length, and the body never ends: only a streaming cap can stop this.
    let addr = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        |mut socket| async move {
            let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        },
    )
    .await;
    let client = dev_client(StaticAddressLookup::new());
    let started = Instant::now();
    let result =
        client.send(HttpRequest::get(url(&format!("http://{addr}/"))).max_response_bytes(8 * 1024)).await;
    assert!(matches!(result, Err(HttpError::TooLarge { limit: 8192 })), "got {result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "cut off early, not at the timeout");
}

#[tokio::test]
async fn slow_response_times_out() {
    let server = json_server(
        ResponseTemplate::new(200).set_body_raw("{}", "application/json").set_delay(Duration::from_secs(5)),
    )
    .await;
    let client = dev_client(StaticAddressLookup::new());
    let started = Instant::now();
    let result = client.send(HttpRequest::get(meta_url(&server)).timeout(Duration::from_millis(200))).await;
    assert!(matches!(result, Err(HttpError::Timeout)), "got {result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stalled_body_times_out() {
    // Headers arrive at once, then the body stalls: the total timeout covers the body too.
    let addr = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        |socket| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(socket);
        },
    )
    .await;
    let client = SafeHttpClient::builder()
        .allow_http_loopback(true)
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let started = Instant::now();
    let result = client.send(HttpRequest::get(url(&format!("http://{addr}/")))).await;
    assert!(matches!(result, Err(HttpError::Timeout)), "got {result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn send_posts_forms_and_returns_any_status_with_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/par"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("client_id=https%3A%2F%2Fapp.example%2Fm.json&state=a+b"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("dpop-nonce", "n-1")
                .set_body_string(r#"{"error":"use_dpop_nonce"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = dev_client(StaticAddressLookup::new());
    let res = client
        .send(HttpRequest::post_form(
            url(&format!("{}/oauth/par", server.uri())),
            &[("client_id", "https://app.example/m.json"), ("state", "a b")],
        ))
        .await
        .expect("a 400 is a response, not an error");
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.headers.get("dpop-nonce").and_then(|v| v.to_str().ok()), Some("n-1"));
    assert!(res.require_status(StatusCode::OK).is_err());
}

#[test]
fn transient_errors_are_classified() {
    assert!(HttpError::Timeout.is_transient());
    assert!(HttpError::UnexpectedStatus { status: StatusCode::BAD_GATEWAY }.is_transient());
    assert!(!HttpError::UnexpectedStatus { status: StatusCode::NOT_FOUND }.is_transient());
    assert!(!HttpError::TooLarge { limit: 1 }.is_transient());
    assert!(!HttpError::Blocked { addr: ip("10.0.0.1"), reason: BlockReason::Private }.is_transient());
}

// ------------------------------------------------------------------ IP properties ---

proptest! {
    /// An IPv4 address and its IPv4-mapped IPv6 form are judged the same.
    #[test]
    fn mapped_form_is_judged_like_ipv4(bits in any::<u32>()) {
        let v4 = Ipv4Addr::from(bits);
        prop_assert_eq!(classify_ip(IpAddr::V4(v4)), classify_ip(IpAddr::V6(v4.to_ipv6_mapped())));
        prop_assert_eq!(
            is_loopback_destination(IpAddr::V4(v4)),
            is_loopback_destination(IpAddr::V6(v4.to_ipv6_mapped()))
        );
    }

    /// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms are judged by the embedded IPv4 address, but a
    /// tunnelled loopback is never a development loopback destination.
    #[test]
    fn nat64_and_6to4_are_judged_by_embedded_ipv4(bits in any::<u32>(), tail in any::<u64>()) {
        let v4 = Ipv4Addr::from(bits);
        let [a, b, c, d] = v4.octets();
        let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        prop_assert_eq!(classify_ip(IpAddr::V6(nat64)), classify_ip(IpAddr::V4(v4)));
        let t = tail.to_be_bytes();
        let six_to_four = Ipv6Addr::new(
            0x2002, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]),
            u16::from_be_bytes([t[0], t[1]]), u16::from_be_bytes([t[2], t[3]]),
            u16::from_be_bytes([t[4], t[5]]), u16::from_be_bytes([t[6], t[7]]), 0,
        );
        prop_assert_eq!(classify_ip(IpAddr::V6(six_to_four)), classify_ip(IpAddr::V4(v4)));
        prop_assert!(!is_loopback_destination(IpAddr::V6(nat64)));
        prop_assert!(!is_loopback_destination(IpAddr::V6(six_to_four)));
    }

    /// Only global unicast IPv6 (2000::/3) can be public.
    #[test]
    fn ipv6_outside_global_unicast_is_never_public(bits in any::<u128>()) {
        let addr = Ipv6Addr::from(bits);
        let in_2000_3 = addr.segments()[0] & 0xe000 == 0x2000;
        let mapped_or_nat64 = addr.to_ipv4_mapped().is_some() || addr.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
        if !in_2000_3 && !mapped_or_nat64 {
            prop_assert!(classify_ip(IpAddr::V6(addr)).is_some(), "{}", addr);
        }
    }
}
