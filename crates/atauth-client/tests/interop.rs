//! Interop: the atauth client against the Bluesky reference PDS (`@atproto/pds` with its OAuth
//! provider) and PLC, both started by `interop/ref-pds.mjs` on loopback.
//!
//! - login from the handle, from the DID and from the PDS URL; consent through the reference
//!   provider's UI API (the HTTP dance of `interop/lib.mjs` `consentViaApi`, ported to Rust);
//!   `getSession`, forced refresh, `getSession`, sign-out, and the revoked tokens are refused;
//! - concurrent refresh: two OS processes with eight tasks each share one session store (SQLite,
//!   Postgres, Redis: one test each) and force a refresh at the same moment; exactly one refresh
//!   request is sent, every task ends with the new access token, and the session survives.
//!
//! The harness lives in `interop/` (override with `ATAUTH_INTEROP_DIR`). If it is not installed the
//! tests **fail** and say to run `interop/setup.sh`, unless `ATAUTH_SKIP_INTEROP=1` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout,
    clippy::too_many_arguments
)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atauth_client::*;
use atauth_testkit::interop::{RefPds, RefPeers};

#[path = "common/backends.rs"]
mod backends;
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:49152/callback";
const SCOPE: &str = "atproto transition:generic";

/// What `ref-pds.mjs` reports when ready (PDS and PLC URLs, the first account).
type Ready = RefPds;

/// Starts the reference PLC + PDS through the shared test kit (`None`: skipped on request).
fn start_ref_pds() -> Option<(RefPeers, Ready)> {
    let dir = atauth_testkit::interop::installed()?;
    Some(atauth_testkit::interop::start_ref_pds(&dir, Duration::from_secs(600)))
}

fn config(ready: &Ready) -> ClientConfig {
    config_with(ready, REDIRECT)
}

fn config_with(ready: &Ready, redirect: &str) -> ClientConfig {
    ClientConfig::loopback(&[redirect], SCOPE).unwrap().with_dev(DevOptions {
        allow_http_loopback: true,
        plc_url: Some(Url::parse(&ready.plc_url).unwrap()),
        handle_resolver_url: Some(Url::parse(&ready.pds_url).unwrap()),
    })
}

// ------------------------------------------------------------------ consent (provider UI API) ---

/// What `@atproto/oauth-provider-ui` does in a browser: the authorize page (cookies + CSRF), sign-in,
/// consent, then the provider's redirect endpoint, whose 303 `Location` is our callback URL.
/// Returns the callback query string.
async fn consent_via_api(authorize_url: &Url, handle: &str, password: &str) -> String {
    let location = consent_location(authorize_url, handle, password).await;
    assert_eq!(format!("{}{}", location.origin().ascii_serialization(), location.path()), REDIRECT);
    location.query().unwrap_or_default().to_owned()
}

/// The consent dance (the test kit's port of `interop/lib.mjs` `consentViaApi`); returns the
/// `Location` the provider redirects the browser to.
async fn consent_location(authorize_url: &Url, handle: &str, password: &str) -> Url {
    atauth_testkit::consent::reference_provider(authorize_url, handle, password)
        .await
        .unwrap_or_else(|e| panic!("consent through the reference provider failed: {e}"))
}

fn ms(t: Instant) -> u128 {
    t.elapsed().as_millis()
}

/// One full login, use, refresh and sign-out from `input`; prints the step timings.
async fn full_cycle(ready: &Ready, input: &str) {
    // A real loopback listener receives the redirect, as in `atauth login`.
    let listener = loopback::LoopbackListener::bind("/callback").await.unwrap();
    let redirect = listener.redirect_uri();
    let store = Arc::new(MemoryStore::new());
    let client = OAuthClient::builder(config_with(ready, &redirect))
        .state_store(store.clone())
        .session_store(store.clone())
        .build()
        .unwrap();
    let t0 = Instant::now();
    let t = Instant::now();
    let url = client.authorize(input, AuthorizeOptions::default()).await.unwrap();
    let authorize_ms = ms(t);
    let t = Instant::now();
    let waiting = tokio::spawn(listener.wait(Duration::from_secs(30)));
    let location = consent_location(&url, &ready.handle, &ready.password).await;
    assert!(location.as_str().starts_with(&redirect));
    let page = reqwest::get(location.as_str()).await.unwrap(); // the browser lands on the listener
    assert_eq!(page.status(), 200);
    let query = waiting.await.unwrap().unwrap();
    let consent_ms = ms(t);
    let t = Instant::now();
    let session = client.callback_query(&query).await.unwrap().session;
    let callback_ms = ms(t);
    assert_eq!(session.did().as_str(), ready.did);
    let agent = Agent::new(session.clone());
    let t = Instant::now();
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    let get_session_ms = ms(t);
    assert_eq!(me["did"], ready.did.as_str());
    assert_eq!(me["handle"], ready.handle.as_str());

    let t = Instant::now();
    session.refresh().await.unwrap();
    let refresh_ms = ms(t);
    assert_eq!(session.info().await.generation, 1);
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], ready.did.as_str());

    // A shadow copy of the session (same tokens, same DPoP key) to prove the server refuses them.
    let shadow_store = Arc::new(MemoryStore::new());
    let record = store.get_session(session.key()).await.unwrap().unwrap();
    shadow_store.put_session(&record).await.unwrap();
    let shadow =
        OAuthClient::builder(config_with(ready, &redirect)).session_store(shadow_store).build().unwrap();
    let shadow = shadow.restore(session.key()).await.unwrap().unwrap();

    let t = Instant::now();
    session.sign_out().await.unwrap();
    let revoke_ms = ms(t);
    assert!(client.restore(session.key()).await.unwrap().is_none());
    // The revoked access token is refused (401 → refresh), and so is the revoked refresh token.
    let err = Agent::new(shadow)
        .query::<serde_json::Value>("com.atproto.server.getSession", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Refresh(RefreshError::SessionEnded(_))),
        "revoked tokens must be refused: {err:?}"
    );
    println!(
        "interop[{input}]: authorize {authorize_ms} ms, consent {consent_ms} ms, callback {callback_ms} ms, \
         getSession {get_session_ms} ms, refresh {refresh_ms} ms, sign-out {revoke_ms} ms, total {} ms",
        ms(t0)
    );
}

/// The same Agent interface over a legacy app-password-style session (LEG-01/03, T-24).
async fn legacy_cycle(ready: &Ready) {
    let http = atauth_identity::http::SafeHttpClient::builder().allow_http_loopback(true).build().unwrap();
    let pds = Url::parse(&ready.pds_url).unwrap();
    let t = Instant::now();
    let session = PasswordSession::login(http, &pds, &ready.handle, &ready.password, None).await.unwrap();
    let agent = Agent::new(session.clone());
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["did"], ready.did.as_str());
    let before = session.export().await;
    session.refresh().await.unwrap();
    let after = session.export().await;
    assert_ne!(before.refresh_jwt.expose_secret(), after.refresh_jwt.expose_secret());
    let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(me["handle"], ready.handle.as_str());
    session.logout().await.unwrap();
    println!("interop[legacy createSession]: login, getSession, refresh, getSession, logout in {} ms", ms(t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_reference_pds_login_refresh_revoke_from_handle_did_and_url() {
    let Some((_pds, ready)) = start_ref_pds() else { return };
    full_cycle(&ready, &ready.handle).await;
    full_cycle(&ready, &ready.did).await;
    full_cycle(&ready, &ready.pds_url).await;
    legacy_cycle(&ready).await;
}

// ----------------------------------------------------------------------- concurrent refresh ---

const TASKS: usize = 8;

fn unix_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// A token's fingerprint for comparing across processes (never the token itself).
fn fingerprint(t: &atauth_oauth::AccessToken) -> String {
    atauth_crypto::hash::sha256(t.expose_secret())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The three stores of one backend, from `sqlite:<path>`, `postgres:<url>` or `redis:<prefix>`.
async fn open_store(spec: &str) -> (Arc<dyn StateStore>, Arc<dyn SessionStore>, Arc<dyn SessionLock>) {
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

/// Worker process for the `interop_concurrent_refresh_*` tests; a no-op unless started by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interop_refresh_worker_process() {
    let Ok(env) = std::env::var("ATAUTH_INTEROP_WORKER") else { return };
    let v: serde_json::Value = serde_json::from_str(&env).unwrap();
    let ready = Ready {
        pds_url: v["pds"].as_str().unwrap().into(),
        plc_url: v["plc"].as_str().unwrap().into(),
        handle: String::new(),
        did: v["did"].as_str().unwrap().into(),
        password: String::new(),
        accounts: Vec::new(),
    };
    let (states, sessions, lock) = open_store(v["store"].as_str().unwrap()).await;
    let client = OAuthClient::builder(config(&ready))
        .state_store(states)
        .session_store(sessions)
        .session_lock(lock)
        .build()
        .unwrap();
    let key = SessionKey {
        did: atauth_identity::Did::new(ready.did.as_str()).unwrap(),
        session_id: v["sid"].as_str().unwrap().into(),
    };
    let start = v["start"].as_u64().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let session = client.restore(&key).await.unwrap().expect("session in the shared store");
        tasks.push(tokio::spawn(async move {
            let seen = session.info().await.generation;
            tokio::time::sleep(Duration::from_millis(start.saturating_sub(unix_ms()))).await;
            session.refresh_if_generation(seen).await?;
            Ok::<_, RefreshError>(fingerprint(&session.access_token_for_testing().await))
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(fp) => tokens.push(fp),
            Err(e) => panic!("worker refresh failed: {e}"),
        }
    }
    println!("XP-RESULT sent={} tokens={}", client.stats().refresh_requests(), tokens.join(","));
}

/// Logs in through the reference PDS with the store `spec`, then two worker processes × [`TASKS`]
/// tasks force a refresh of that session at the same moment: exactly one refresh request is sent,
/// every task ends with the new access token, and the session survives (the reference provider
/// would end it on a replayed refresh token).
async fn concurrent_refresh(ready: &Ready, spec: &str) {
    let (states, sessions, lock) = open_store(spec).await;
    let client = OAuthClient::builder(config(ready))
        .state_store(states)
        .session_store(sessions)
        .session_lock(lock)
        .build()
        .unwrap();
    let url = client.authorize(&ready.handle, AuthorizeOptions::default()).await.unwrap();
    let query = consent_via_api(&url, &ready.handle, &ready.password).await;
    let session = client.callback_query(&query).await.unwrap().session;
    let before = fingerprint(&session.access_token_for_testing().await);

    let t = Instant::now();
    let env = serde_json::json!({
        "store": spec, "pds": ready.pds_url, "plc": ready.plc_url, "did": ready.did,
        "sid": session.key().session_id, "start": unix_ms() + 2000,
    })
    .to_string();
    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for _ in 0..2 {
        children.push(
            tokio::process::Command::new(&exe)
                .args(["--exact", "interop_refresh_worker_process", "--nocapture", "--test-threads", "1"])
                .env("ATAUTH_INTEROP_WORKER", &env)
                .output(),
        );
    }
    let mut sent = 0;
    let mut tokens = Vec::new();
    for c in children {
        let out = c.await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "worker failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let line =
            stdout.lines().find(|l| l.contains("XP-RESULT")).unwrap_or_else(|| panic!("no result: {stdout}"));
        let field =
            |name: &str| line.split(name).nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
        sent += field("sent=").parse::<u64>().unwrap();
        tokens.extend(field("tokens=").split(',').map(str::to_owned));
    }
    assert_eq!(sent, 1, "exactly one refresh request across 2 processes x {TASKS} tasks");
    session.reload().await.unwrap();
    assert_eq!(session.info().await.generation, 1);
    let after = fingerprint(&session.access_token_for_testing().await);
    assert_ne!(after, before, "the stored session holds the refreshed token");
    assert_eq!(tokens.len(), 2 * TASKS);
    assert!(tokens.iter().all(|t| *t == after), "every task holds the new token: {tokens:?} vs {after}");
    let me: serde_json::Value =
        Agent::new(session).query("com.atproto.server.getSession", &[]).await.unwrap();
    assert_eq!(
        me["did"],
        ready.did.as_str(),
        "the session survived (a replayed refresh token would kill it)"
    );
    let kind = spec.split(':').next().unwrap_or_default();
    println!(
        "interop concurrent refresh on {kind}: 2 processes x {TASKS} tasks, 1 refresh sent, {} ms",
        ms(t)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_concurrent_refresh_two_processes_share_one_sqlite_store() {
    let Some((_pds, ready)) = start_ref_pds() else { return };
    let dir = std::env::temp_dir().join(format!("atauth-client-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    concurrent_refresh(&ready, &format!("sqlite:{}", dir.join("sessions.sqlite").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_concurrent_refresh_two_processes_share_one_postgres_store() {
    let Some((_pds, ready)) = start_ref_pds() else { return };
    let db = backends::TestDatabase::create().await;
    concurrent_refresh(&ready, &format!("postgres:{}", db.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_concurrent_refresh_two_processes_share_one_redis_store() {
    let Some((_pds, ready)) = start_ref_pds() else { return };
    let prefix = backends::TestPrefix::new();
    concurrent_refresh(&ready, &format!("redis:{}", prefix.prefix)).await;
}
