//! createSession is scrypt-bound; a burst of concurrent logins must not stall other endpoints.
//!
//! `cargo bench -p atauth-server --bench login_burst` (release). In process through the `Router` on a
//! 2-worker multi-threaded runtime (memory stores, sign-in rate limits lifted): measures the latency of
//! legacy `getSession` (HS256 verify + account read), one request per millisecond for 2 s, while idle, then again while 16 tasks
//! log in back to back (scrypt N=2^14 on the bounded blocking pool, `password_hash_concurrency`), and
//! reports p50/p99 of both plus the logins completed per second and wall time per login.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atauth_server::config::{RateLimit, SignInLimits};
use atauth_server::store::{AccountRecord, AccountStatus};
use atauth_server::{AuthServer, web};
use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

const PASSWORD: &str = "bench-pass-123";
const SAMPLES: usize = 2000;
const LOGIN_TASKS: usize = 16;

async fn call(router: &Router, req: Request<Body>) -> (u16, Vec<u8>) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

fn login_request() -> Request<Body> {
    Request::post("/xrpc/com.atproto.server.createSession")
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"identifier":"bench.example.com","password":"{PASSWORD}"}}"#)))
        .unwrap()
}

async fn get_session_latencies(router: &Router, access: &str) -> Vec<Duration> {
    // Open loop: one request per millisecond for SAMPLES ms, so the login load runs throughout.
    let mut out = Vec::with_capacity(SAMPLES);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..SAMPLES {
        tick.tick().await;
        let req = Request::get("/xrpc/com.atproto.server.getSession")
            .header("authorization", format!("Bearer {access}"))
            .body(Body::empty())
            .unwrap();
        let t = Instant::now();
        let (status, _) = call(router, req).await;
        out.push(t.elapsed());
        assert_eq!(status, 200);
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let lifted = RateLimit { burst: 1_000_000, refill_every: Duration::from_millis(1) };
        let server = AuthServer::builder("https://pds.example.com")
            .service_did("did:web:pds.example.com")
            .sign_in_limits(SignInLimits { per_identifier_and_ip: lifted, per_identifier: lifted, per_ip: lifted })
            .build()
            .unwrap();
        server
            .stores()
            .accounts
            .create_account(AccountRecord {
                did: "did:plc:bench000000000000000000".into(),
                handle: "bench.example.com".into(),
                email: None,
                password_hash: atauth_server::password::hash_with_salt(PASSWORD, "0123456789abcdef0123456789abcdef")
                    .unwrap(),
                signing_key_hex: None,
                created_at: 0,
                status: AccountStatus::Active,
            })
            .await
            .unwrap();
        let router = web::router(server);
        let (status, body) = call(&router, login_request()).await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let access = v["accessJwt"].as_str().unwrap().to_owned();

        // Single login wall time, idle.
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(call(&router, login_request()).await.0, 200);
        }
        let single_ms = t.elapsed().as_secs_f64() * 100.0;

        let _ = get_session_latencies(&router, &access).await; // warm-up
        let idle = get_session_latencies(&router, &access).await;

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..LOGIN_TASKS {
            let (router, stop, done) = (router.clone(), stop.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(call(&router, login_request()).await.0, 200);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = done.load(Ordering::Relaxed);
        let t = Instant::now();
        let loaded = get_session_latencies(&router, &access).await;
        let elapsed = t.elapsed().as_secs_f64();
        let logins = done.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        println!("createSession, one at a time: {single_ms:.1} ms wall per login");
        println!(
            "getSession idle:              p50 {:.0} µs  p99 {:.0} µs",
            pct(&idle, 0.5),
            pct(&idle, 0.99)
        );
        println!(
            "getSession under {LOGIN_TASKS} login loops: p50 {:.0} µs  p99 {:.0} µs  ({logins} logins in {elapsed:.2} s = {:.0}/s)",
            pct(&loaded, 0.5),
            pct(&loaded, 0.99),
            logins as f64 / elapsed
        );
        println!("p99 ratio loaded/idle: {:.2}", pct(&loaded, 0.99) / pct(&idle, 0.99));
    });
}
