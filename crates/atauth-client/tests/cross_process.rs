//! CL-REF-02 / T-12 across OS processes: two child processes (this test binary, re-executed) with
//! eight tasks each share one session store and force a refresh at the same moment against the mock
//! AS; exactly one refresh reaches the AS, every task ends with the new access token, and the
//! session survives. Once per shared backend: SQLite (one file), Postgres (a throwaway database),
//! Redis (a throwaway key prefix).
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

/// A token's fingerprint for comparing across processes (never the token itself).
fn fingerprint(t: &atauth_oauth::AccessToken) -> String {
    atauth_crypto::hash::sha256(t.expose_secret())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The three stores of one backend, from `sqlite:<path>`, `postgres:<url>` or `redis:<prefix>`.
async fn open(spec: &str) -> (Arc<dyn StateStore>, Arc<dyn SessionStore>, Arc<dyn SessionLock>) {
    let (kind, arg) = spec.split_once(':').unwrap();
    match kind {
        "sqlite" => {
            let s = Arc::new(SqliteStore::open(arg).await.unwrap());
            (s.clone(), s.clone(), s)
        }
        "postgres" => {
            let s = Arc::new(PostgresStore::connect(arg).await.unwrap());
            (s.clone(), s.clone(), s)
        }
        "redis" => {
            let options = RedisOptions::default().prefix(arg);
            let s = Arc::new(RedisStore::connect_with(&backends::redis_url(), options).await.unwrap());
            (s.clone(), s.clone(), s)
        }
        _ => panic!("unknown store {spec}"),
    }
}

/// The worker: does nothing unless started by one of the tests below.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_process_child() {
    let Ok(spec) = std::env::var("ATAUTH_XP_STORE") else { return };
    let pds = std::env::var("ATAUTH_XP_PDS").unwrap();
    let sid = std::env::var("ATAUTH_XP_SID").unwrap();
    let start: u64 = std::env::var("ATAUTH_XP_START_MS").unwrap().parse().unwrap();
    let (states, sessions, lock) = open(&spec).await;
    let client = OAuthClient::builder(loopback_config())
        .identity_resolver(resolver_for(&pds))
        .state_store(states)
        .session_store(sessions)
        .session_lock(lock)
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
            session.refresh_if_generation(seen).await?;
            Ok::<_, RefreshError>(fingerprint(&session.access_token_for_testing().await))
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().expect("every task's refresh succeeds"));
    }
    println!("XP-RESULT sent={} tokens={}", client.stats().refresh_requests(), tokens.join(","));
}

/// Two children × [`TASKS`] tasks on `spec`, after a login through `store`'s client; checks the
/// outcome described in the module docs.
async fn two_processes_share_one_refresh(spec: &str) {
    let w = start(false).await;
    let (states, sessions, lock) = open(spec).await;
    let client = OAuthClient::builder(loopback_config())
        .identity_resolver(resolver(&w))
        .state_store(states)
        .session_store(sessions)
        .session_lock(lock)
        .build()
        .unwrap();
    let url = client.authorize(HANDLE, AuthorizeOptions::default()).await.unwrap();
    let session = client.callback_query(&w.approve(&url)).await.unwrap().session;
    let before = fingerprint(&session.access_token_for_testing().await);

    let exe = std::env::current_exe().unwrap();
    let start_ms = unix_ms() + 1500;
    let mut children = Vec::new();
    for _ in 0..2 {
        children.push(
            tokio::process::Command::new(&exe)
                .args(["--exact", "cross_process_child", "--nocapture", "--test-threads", "1"])
                .env("ATAUTH_XP_STORE", spec)
                .env("ATAUTH_XP_PDS", &w.pds_origin)
                .env("ATAUTH_XP_SID", &session.key().session_id)
                .env("ATAUTH_XP_START_MS", start_ms.to_string())
                .output(),
        );
    }
    let mut sent = 0;
    let mut tokens = Vec::new();
    for c in children {
        let out = c.await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout
            .lines()
            .find(|l| l.contains("XP-RESULT"))
            .unwrap_or_else(|| panic!("no result line: {stdout}"));
        let field =
            |name: &str| line.split(name).nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
        sent += field("sent=").parse::<u64>().unwrap();
        tokens.extend(field("tokens=").split(',').map(str::to_owned));
    }
    assert_eq!(sent, 1, "exactly one refresh request across both processes");
    assert_eq!(w.refreshes.load(Ordering::SeqCst), 1, "exactly one refresh reached the AS");
    session.reload().await.unwrap();
    assert_eq!(session.info().await.generation, 1);
    let after = fingerprint(&session.access_token_for_testing().await);
    assert_ne!(after, before, "the stored session holds the refreshed token");
    assert_eq!(tokens.len(), 2 * TASKS);
    assert!(tokens.iter().all(|t| *t == after), "every task holds the new token: {tokens:?} vs {after}");
    let me: serde_json::Value =
        Agent::new(session).query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], DID, "the session survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_refresh_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("atauth-client-xp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sessions.sqlite");
    two_processes_share_one_refresh(&format!("sqlite:{}", db.display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_refresh_on_postgres() {
    let db = backends::TestDatabase::create().await;
    two_processes_share_one_refresh(&format!("postgres:{}", db.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_refresh_on_redis() {
    let prefix = backends::TestPrefix::new();
    two_processes_share_one_refresh(&format!("redis:{}", prefix.prefix)).await;
}
