//! CL-REF-02 / T-12 across OS processes: two child processes (this test binary, re-executed) with
//! eight tasks each share one SQLite session store and force a refresh at the same moment against
//! the mock AS; exactly one refresh reaches the AS and the session survives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atauth_client::*;
use common::*;

const TASKS: usize = 8;

fn unix_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// The worker: does nothing unless started by `two_processes_share_one_refresh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_process_child() {
    let Ok(db) = std::env::var("ATAUTH_XP_DB") else { return };
    let pds = std::env::var("ATAUTH_XP_PDS").unwrap();
    let sid = std::env::var("ATAUTH_XP_SID").unwrap();
    let start: u64 = std::env::var("ATAUTH_XP_START_MS").unwrap().parse().unwrap();
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let client = OAuthClient::builder(loopback_config())
        .identity_resolver(resolver_for(&pds))
        .state_store(store.clone())
        .session_store(store.clone())
        .session_lock(store)
        .build()
        .unwrap();
    let key = SessionKey { did: atauth_identity::Did::new(DID).unwrap(), session_id: sid };
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let session = client.restore(&key).await.unwrap().expect("session in the shared store");
        tasks.push(tokio::spawn(async move {
            let seen = session.info().await.generation;
            let wait = start.saturating_sub(unix_ms());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            session.refresh_if_generation(seen).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    println!("XP-RESULT ok={ok} sent={}", client.stats().refresh_requests());
    assert_eq!(ok, TASKS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_refresh() {
    let w = start(false).await;
    let dir = std::env::temp_dir().join(format!("atauth-client-xp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sessions.sqlite");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let client = OAuthClient::builder(loopback_config())
        .identity_resolver(resolver(&w))
        .state_store(store.clone())
        .session_store(store.clone())
        .session_lock(store.clone())
        .build()
        .unwrap();
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    let session = client.callback_query(&w.approve(&url)).await.unwrap().session;

    let exe = std::env::current_exe().unwrap();
    let start_ms = unix_ms() + 1500;
    let mut children = Vec::new();
    for _ in 0..2 {
        children.push(
            tokio::process::Command::new(&exe)
                .args(["--exact", "cross_process_child", "--nocapture", "--test-threads", "1"])
                .env("ATAUTH_XP_DB", &db)
                .env("ATAUTH_XP_PDS", &w.pds_origin)
                .env("ATAUTH_XP_SID", &session.key().session_id)
                .env("ATAUTH_XP_START_MS", start_ms.to_string())
                .output(),
        );
    }
    let mut sent = 0;
    for c in children {
        let out = c.await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout
            .lines()
            .find(|l| l.contains("XP-RESULT"))
            .unwrap_or_else(|| panic!("no result line: {stdout}"));
        sent +=
            line.rsplit("sent=").next().unwrap().split_whitespace().next().unwrap().parse::<u64>().unwrap();
    }
    assert_eq!(sent, 1, "exactly one refresh request across both processes");
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1, "exactly one refresh reached the AS");
    session.reload().await.unwrap();
    assert_eq!(session.info().await.generation, 1);
    let me: serde_json::Value =
        Agent::new(session).query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID, "the session survived");
    let _ = std::fs::remove_dir_all(&dir);
}
