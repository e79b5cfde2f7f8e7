//! A tiny authoritative DNS server on `127.0.0.1` (UDP, a free port) answering TXT queries from a
//! table the test can change while it runs, and a [`HickoryTxtLookup`] that asks only it. Tests of
//! `_atproto` / `_lexicon` resolution use it so the production TXT path (hickory, wire format,
//! fully-qualified names) runs offline.
//!
//! ```no_run
//! # async fn demo() {
//! use atauth_identity::TxtLookup;
//! use atauth_testkit::dns::{DnsAnswer, TestDnsServer};
//!
//! let dns = TestDnsServer::start().await;
//! dns.set_txt("_lexicon.perms.example.com", &["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"]);
//! dns.set("_lexicon.broken.example.com", DnsAnswer::ServFail);
//! let records = dns.txt_lookup().txt("_lexicon.perms.example.com").await.expect("answer");
//! assert_eq!(records, ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"]);
//! assert_eq!(dns.queries(), ["_lexicon.perms.example.com."]);
//! # }
//! ```

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use atauth_identity::HickoryTxtLookup;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::TXT;
use hickory_resolver::proto::rr::{RData, Record};
use tokio::net::UdpSocket;

/// What the server answers for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer {
    /// TXT records; each record is a list of character-strings (a resolver joins them).
    Txt(Vec<Vec<String>>),
    /// NOERROR without answers (the name exists, no TXT).
    NoData,
    /// SERVFAIL.
    ServFail,
    /// No answer at all: the client times out.
    Drop,
}

type Zone = Arc<Mutex<HashMap<String, DnsAnswer>>>;

/// The running server. Names not in its table get NXDOMAIN. Dropping it stops the server.
#[derive(Debug)]
pub struct TestDnsServer {
    addr: SocketAddr,
    zone: Zone,
    queries: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

impl TestDnsServer {
    /// Binds `127.0.0.1:0` and starts answering (needs a Tokio runtime with the `net` driver).
    ///
    /// # Panics
    /// If the socket cannot be bound.
    pub async fn start() -> Self {
        let socket =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap_or_else(|e| panic!("bind DNS: {e}"));
        let addr = socket.local_addr().unwrap_or_else(|e| panic!("DNS address: {e}"));
        let zone: Zone = Arc::default();
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let task = tokio::spawn(serve(socket, Arc::clone(&zone), Arc::clone(&queries)));
        Self { addr, zone, queries, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the answer for `name` (case-insensitive, trailing dot optional).
    pub fn set(&self, name: &str, answer: DnsAnswer) {
        lock(&self.zone).insert(key(name), answer);
    }

    /// Answers `name` with one TXT record per value (each a single character-string).
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        self.set(name, DnsAnswer::Txt(values.iter().map(|v| vec![(*v).to_owned()]).collect()));
    }

    /// Forgets `name` (it gets NXDOMAIN again).
    pub fn remove(&self, name: &str) {
        lock(&self.zone).remove(&key(name));
    }

    /// Every name queried so far, as sent (fully qualified, original case), oldest first.
    pub fn queries(&self) -> Vec<String> {
        lock(&self.queries).clone()
    }

    /// A production [`HickoryTxtLookup`] whose only nameserver is this server (UDP, 500 ms timeout,
    /// one attempt, no cache so every lookup reaches the server).
    ///
    /// # Panics
    /// If hickory cannot build the resolver.
    pub fn txt_lookup(&self) -> HickoryTxtLookup {
        let mut connection = ConnectionConfig::udp();
        connection.port = self.addr.port();
        let server = NameServerConfig::new(self.addr.ip(), true, vec![connection]);
        let config = ResolverConfig::from_name_servers(vec![server]);
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        builder.options_mut().timeout = Duration::from_millis(500);
        builder.options_mut().attempts = 1;
        builder.options_mut().cache_size = 0;
        HickoryTxtLookup::new(builder.build().unwrap_or_else(|e| panic!("hickory resolver: {e}")))
    }
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: UdpSocket, zone: Zone, queries: Arc<Mutex<Vec<String>>>) {
    let mut buf = [0u8; 1500];
    while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
        let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
        let Some(q) = query.queries.first().cloned() else { continue };
        let name = q.name().to_string();
        lock(&queries).push(name.clone());
        let id = query.metadata.id;
        let answer = lock(&zone).get(&key(&name)).cloned();
        let mut response = match answer {
            Some(DnsAnswer::Drop) => continue,
            Some(DnsAnswer::Txt(records)) => {
                let mut m = Message::response(id, OpCode::Query);
                for strings in records {
                    m.add_answer(Record::from_rdata(q.name().clone(), 60, RData::TXT(TXT::new(strings))));
                }
                m
            }
            Some(DnsAnswer::NoData) => Message::response(id, OpCode::Query),
            Some(DnsAnswer::ServFail) => Message::error_msg(id, OpCode::Query, ResponseCode::ServFail),
            None => Message::error_msg(id, OpCode::Query, ResponseCode::NXDomain),
        };
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        response.add_query(q);
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}
