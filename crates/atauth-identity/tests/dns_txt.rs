//! `HickoryTxtLookup` against a tiny DNS server on 127.0.0.1 (UDP), so the production TXT path is
//! exercised offline: fully-qualified queries, multi-string TXT records, NXDOMAIN / NODATA as "not
//! found", SERVFAIL as a failure (ID-HANDLE-04).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atauth_identity::{
    Did, DnsHandleResolver, Handle, HandleResolveError, HandleResolver, HickoryTxtLookup, TxtLookup,
    TxtLookupError,
};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::TXT;
use hickory_resolver::proto::rr::{RData, Record};
use tokio::net::UdpSocket;

/// Serves: `_atproto.alice.example.com` TXT (two records, one split into two character-strings),
/// `_atproto.nodata.example.com` NOERROR with no answers, `_atproto.broken.example.com` SERVFAIL,
/// everything else NXDOMAIN. Records every queried name.
async fn dns_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let Some(q) = query.queries.first().cloned() else { continue };
            let name = q.name().to_string();
            log.lock().expect("lock").push(name.clone());
            let id = query.metadata.id;
            let mut response = match name.to_ascii_lowercase().as_str() {
                "_atproto.alice.example.com." => {
                    let mut m = Message::response(id, OpCode::Query);
                    m.add_answer(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()])),
                    ));
                    m.add_answer(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::TXT(TXT::new(vec![
                            "did=did:plc:aaaaaaaa".to_owned(),
                            "aaaaaaaaaaaaaaaa".to_owned(),
                        ])),
                    ));
                    m
                }
                "_atproto.nodata.example.com." => Message::response(id, OpCode::Query),
                "_atproto.broken.example.com." => {
                    Message::error_msg(id, OpCode::Query, ResponseCode::ServFail)
                }
                _ => Message::error_msg(id, OpCode::Query, ResponseCode::NXDomain),
            };
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(q);
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    (addr, seen)
}

fn lookup_at(addr: SocketAddr) -> HickoryTxtLookup {
    let mut connection = ConnectionConfig::udp();
    connection.port = addr.port();
    let server = NameServerConfig::new(addr.ip(), true, vec![connection]);
    let mut config = ResolverConfig::from_name_servers(vec![server]);
    // A search domain that must never be appended: queries are fully qualified.
    config.add_search("corp.example.".parse().expect("name"));
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    builder.options_mut().timeout = Duration::from_millis(500);
    builder.options_mut().attempts = 1;
    HickoryTxtLookup::new(builder.build().expect("resolver"))
}

#[tokio::test]
async fn txt_records_are_read_and_joined() {
    let (addr, seen) = dns_server().await;
    let txt = lookup_at(addr);
    let mut records = txt.txt("_atproto.alice.example.com").await.expect("records");
    records.sort();
    assert_eq!(records, vec!["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_owned(), "v=spf1 -all".to_owned()]);
    // Asked once, fully qualified: the search domain was not tried.
    assert_eq!(seen.lock().expect("lock").as_slice(), ["_atproto.alice.example.com."]);
}

#[tokio::test]
async fn dns_handle_resolver_over_hickory() {
    // ID-HANDLE-04 end to end through hickory.
    let (addr, _) = dns_server().await;
    let resolver = DnsHandleResolver::new(Arc::new(lookup_at(addr)));
    assert_eq!(
        resolver.resolve_handle(&Handle::new("Alice.Example.com").expect("handle")).await.expect("did"),
        Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").expect("did")
    );
    for missing in ["nobody.example.com", "nodata.example.com"] {
        let err = resolver.resolve_handle(&Handle::new(missing).expect("handle")).await.expect_err(missing);
        assert!(err.is_not_found(), "{missing}: {err:?}");
    }
    assert!(matches!(
        resolver.resolve_handle(&Handle::new("broken.example.com").expect("handle")).await,
        Err(HandleResolveError::DnsLookup { source: TxtLookupError::Failed(_), .. })
    ));
}

#[tokio::test]
async fn unreachable_dns_server_is_a_failure_not_a_miss() {
    // Nothing listens on this port: the lookup fails (timeout or refused), never "not found".
    let socket = std::net::UdpSocket::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    let err = lookup_at(addr).txt("_atproto.alice.example.com").await.expect_err("no server");
    assert!(!matches!(err, TxtLookupError::NotFound), "{err:?}");
}
