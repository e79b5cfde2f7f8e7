//! Server CPU per request for the hot endpoints, in process through the axum `Router` (no sockets):
//! refresh grant (SQLite), PAR, and a DPoP-bound resource request (getSession).
//!
//! `cargo bench -p atauth-server --bench endpoints` (release profile). DPoP proofs are signed before
//! the timed loop, so the figures are the server's work plus the in-process request/response plumbing
//! of the loop itself (building the request, reading the body, parsing one JSON field): an upper bound
//! of the server's own CPU. CPU time is the process's utime + stime from `/proc/self/stat`.
//!
//! Allocations are counted by `stats_alloc`'s instrumented system allocator (every thread: the
//! runtime's, the SQLite store's, the loop's own; a `realloc` counts as one), reported per request
//! with the bytes they asked for.
//!
//! `BENCH_STORE=default|memory|sqlite|sqlite-memreplay` picks the store (`default`: what `atauth
//! serve` runs, the builder's SQLite data directory with DPoP `jti`s in memory; `sqlite`, the
//! bench's default: every replay record in SQLite). 3000 sequential requests, one at a time, 10:22
//! UTC on 2026-12-07 (CPU and allocations per request; docs/BENCHMARKS.md has the bytes and the
//! figures under concurrent load):
//!
//! | store | refresh | PAR | getSession |
//! |---|---|---|---|
//! | default | 170 µs, 202 | 157 µs, 187 | 173 µs, 162 |
//! | sqlite | 230 µs, 209 | 213 µs, 194 | 203 µs, 169 |
//! | memory | 97 µs, 197 | 77 µs, 174 | 70 µs, 147 |
//!
//! One request at a time is the SQLite store's worst case: each write (a refresh's rotation, a
//! PAR's one write) and each read wakes a store thread and waits for it, a write for its own
//! commit. Under concurrent load writes share commits; docs/BENCHMARKS.md has those figures and the
//! profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::alloc::System;
use std::time::Instant;

use atauth_crypto::dpop::{DpopSigner, ProofParams};
use atauth_crypto::pkce::PkceVerifier;
use atauth_crypto::{Clock, SecretString, SystemClock};
use atauth_server::store::{AccountRecord, AccountStatus, SqliteStore, Stores};
use atauth_server::{AuthServer, web};
use atauth_testkit::form::encode as form;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt as _;

const ISSUER: &str = "https://pds.example.com";
const CLIENT_ID: &str =
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric";

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Wall clock, CPU seconds and the allocation counters at the start of a timed loop.
struct Mark(Instant, f64, Region<'static, System>);

impl Mark {
    fn now() -> Self {
        Self(Instant::now(), cpu_seconds(), Region::new(GLOBAL))
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 (utime, stime) are at index 11 and 12 after the command name.
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

async fn send(router: &axum::Router, req: Request<Body>) -> (u16, serde_json::Value, Option<String>) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null), location)
}

fn post(path: &str, body: String, dpop: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(p) = dpop {
        b = b.header("dpop", p);
    }
    b.body(Body::from(body)).unwrap()
}

fn proof(signer: &DpopSigner, server: &AuthServer, method: &str, path: &str, at: Option<&str>) -> String {
    let nonce = server.dpop_nonce();
    signer.proof(&ProofParams {
        method,
        url: &format!("{ISSUER}{path}"),
        nonce: Some(&nonce),
        access_token: at,
        iat: SystemClock.unix_now(),
    })
}

fn report(name: &str, n: usize, start: &Mark) {
    let (wall, cpu) = (start.0.elapsed().as_secs_f64(), cpu_seconds() - start.1);
    // Every thread's: the runtime's, the SQLite store's, and the loop's own.
    let change = start.2.change();
    let (allocs, bytes) = (change.allocations + change.reallocations, change.bytes_allocated);
    let per = |x: f64| x / n as f64;
    println!(
        "{name:<28} {n:>6} req  {:>8.1} µs wall/req  {:>8.1} µs CPU/req  {:>8.0} req/s  {:>6.0} allocs/req  {:>8.0} bytes/req",
        per(wall) * 1e6,
        per(cpu) * 1e6,
        n as f64 / wall,
        per(allocs as f64),
        per(bytes as f64),
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        // BENCH_STORE=sqlite (the bench's default) | default (what `atauth serve` runs) | memory |
        // sqlite-memreplay (tokens in SQLite, one-time identifiers in process memory).
        let choice = std::env::var("BENCH_STORE").unwrap_or_else(|_| "sqlite".into());
        let data_dir = std::env::temp_dir().join(format!("atauth-endpoints-bench-{}", std::process::id()));
        let builder = AuthServer::builder(ISSUER);
        let builder = match choice.as_str() {
            "default" => builder.data_dir(&data_dir),
            "memory" => builder.stores(Stores::memory()),
            "sqlite-memreplay" => builder.stores(Stores {
                replay: std::sync::Arc::new(atauth_server::store::MemoryStore::default()),
                ..Stores::single(SqliteStore::open_temp().unwrap())
            }),
            _ => builder.stores(Stores::single(SqliteStore::open_temp().unwrap())),
        };
        println!("store: {choice}");
        let server = builder.handle_domains([".test"]).password_consent_api(true).build().unwrap();
        let hash = atauth_server::password::hash_with_salt("pw", "00112233445566778899aabbccddeeff").unwrap();
        server
            .stores()
            .accounts
            .create_account(AccountRecord {
                did: "did:plc:bench0000000000000000000".into(),
                handle: "bench.test".into(),
                email: None,
                password_hash: hash,
                signing_key_hex: None,
                created_at: 0,
                status: AccountStatus::Active,
            })
            .await
            .unwrap();
        let router = web::router(server.clone());
        let signer = DpopSigner::generate();

        // ---- PAR
        let pars: Vec<(String, String)> = (0..n)
            .map(|_| {
                let pkce = PkceVerifier::generate();
                let body = form(&[
                    ("client_id", CLIENT_ID),
                    ("response_type", "code"),
                    ("redirect_uri", "http://127.0.0.1/callback"),
                    ("scope", "atproto transition:generic"),
                    ("state", "s"),
                    ("code_challenge", &pkce.challenge()),
                    ("code_challenge_method", "S256"),
                ]);
                (body, proof(&signer, &server, "POST", "/oauth/par", None))
            })
            .collect();
        let start = Mark::now();
        let mut last_uri = String::new();
        for (body, p) in pars {
            let (status, v, _) = send(&router, post("/oauth/par", body, Some(&p))).await;
            assert_eq!(status, 201, "{v}");
            last_uri = v["request_uri"].as_str().unwrap().to_owned();
        }
        report("PAR (loopback client)", n, &start);

        // ---- one login
        let pkce = PkceVerifier::generate();
        let body = form(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("scope", "atproto transition:generic"),
            ("state", "s"),
            ("code_challenge", &pkce.challenge()),
            ("code_challenge_method", "S256"),
        ]);
        let (_, v, _) = send(
            &router,
            post("/oauth/par", body, Some(&proof(&signer, &server, "POST", "/oauth/par", None))),
        )
        .await;
        let uri = v["request_uri"].as_str().unwrap().to_owned();
        let _ = last_uri;
        let (_, _, loc) = send(
            &router,
            post(
                "/oauth/authorize/sign-in-and-approve",
                form(&[
                    ("client_id", CLIENT_ID),
                    ("request_uri", &uri),
                    ("identifier", "bench.test"),
                    ("password", "pw"),
                ]),
                None,
            ),
        )
        .await;
        let loc = loc.unwrap();
        let code =
            url::Url::parse(&loc).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let (status, v, _) = send(
            &router,
            post(
                "/oauth/token",
                form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1/callback"),
                    ("code_verifier", pkce.expose_secret()),
                    ("client_id", CLIENT_ID),
                ]),
                Some(&proof(&signer, &server, "POST", "/oauth/token", None)),
            ),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let mut refresh = v["refresh_token"].as_str().unwrap().to_owned();
        let _ = SecretString::new("");

        // ---- refresh grant (SQLite)
        let proofs: Vec<String> =
            (0..n).map(|_| proof(&signer, &server, "POST", "/oauth/token", None)).collect();
        let start = Mark::now();
        let mut access = String::new();
        for p in proofs {
            let body = form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", CLIENT_ID),
            ]);
            let (status, v, _) = send(&router, post("/oauth/token", body, Some(&p))).await;
            assert_eq!(status, 200, "{v}");
            refresh = v["refresh_token"].as_str().unwrap().to_owned();
            access = v["access_token"].as_str().unwrap().to_owned();
        }
        report("refresh grant", n, &start);

        // ---- resource request
        let path = "/xrpc/com.atproto.server.getSession";
        let proofs: Vec<String> =
            (0..n).map(|_| proof(&signer, &server, "GET", path, Some(&access))).collect();
        let start = Mark::now();
        for p in proofs {
            let req = Request::get(path)
                .header("authorization", format!("DPoP {access}"))
                .header("dpop", p)
                .body(Body::empty())
                .unwrap();
            let (status, v, _) = send(&router, req).await;
            assert_eq!(status, 200, "{v}");
        }
        report("getSession (DPoP-bound)", n, &start);
        drop((router, server));
        let _ = std::fs::remove_dir_all(&data_dir);
    });
}
