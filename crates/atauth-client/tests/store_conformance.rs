//! One conformance suite for every store backend: state (single use, expiry), sessions (upsert,
//! several per DID, delete, list), the refresh lock (mutual exclusion, timeout, release), and the
//! fenced write of a refreshed session (a live guard writes; on the backends shared by processes,
//! SQLite, Postgres and Redis, a holder whose lease ran out writes nothing). Memory, SQLite (file and
//! in-memory), Postgres (a throwaway database) and Redis (a throwaway key prefix) run it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/backends.rs"]
mod backends;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atauth_client::*;
use atauth_crypto::{Algorithm, PrivateKey};
use atauth_identity::Did;
use atauth_oauth::{AccessToken, Issuer, IssuerPolicy, RefreshToken};

fn pending(expires_at: i64) -> PendingAuthorization {
    PendingAuthorization {
        issuer: Issuer::parse_with("http://localhost:2583", IssuerPolicy::development()).unwrap(),
        dpop_key: PrivateKey::generate(Algorithm::Es256).to_private_jwk(),
        pkce_verifier: atauth_client::store::StoredSecret::new("v".repeat(43)),
        expected_did: Some(Did::new("did:plc:abc").unwrap()),
        redirect_uri: "http://127.0.0.1/cb".into(),
        client_auth: ClientAuthRecord::PrivateKeyJwt { kid: "k1".into() },
        scope: "atproto".into(),
        app_state: Some("return-to=/x".into()),
        expires_at,
    }
}

fn session(did: &str, sid: &str, generation: u64) -> SessionRecord {
    SessionRecord {
        key: SessionKey { did: Did::new(did).unwrap(), session_id: sid.into() },
        issuer: Issuer::parse("https://bsky.social").unwrap(),
        pds_url: "https://pds.example.com/".into(),
        client_id: "http://localhost".into(),
        client_auth: ClientAuthRecord::None,
        dpop_key: PrivateKey::generate(Algorithm::Es256).to_private_jwk(),
        tokens: TokenSet {
            access_token: AccessToken::new(format!("at-{generation}")),
            refresh_token: Some(RefreshToken::new(format!("rt-{generation}"))),
            scope: "atproto".into(),
            expires_at: Some(1_000 + i64::try_from(generation).unwrap()),
        },
        generation,
        created_at: 1,
    }
}

async fn state_store_suite(s: &dyn StateStore) {
    let now = 1_000_000;
    s.put_state("s1", &pending(now + 600)).await.unwrap();
    let got = s.take_state("s1", now).await.unwrap().expect("stored");
    assert_eq!(got.app_state.as_deref(), Some("return-to=/x"));
    assert_eq!(got.client_auth, ClientAuthRecord::PrivateKeyJwt { kid: "k1".into() });
    assert_eq!(got.pkce_verifier.expose_secret(), "v".repeat(43));
    assert!(got.dpop_key.d.is_some(), "the DPoP private key survives the round trip");
    // CL-STATE-01: single use.
    assert!(s.take_state("s1", now).await.unwrap().is_none());
    // Expired records are not returned (and are gone).
    s.put_state("s2", &pending(now - 1)).await.unwrap();
    assert!(s.take_state("s2", now).await.unwrap().is_none());
    assert!(s.take_state("unknown", now).await.unwrap().is_none());
}

async fn session_store_suite(s: &dyn SessionStore) {
    let a = session("did:plc:aaa", "one", 0);
    let b = session("did:plc:aaa", "two", 0);
    let c = session("did:plc:ccc", "one", 0);
    for r in [&a, &b, &c] {
        s.put_session(r).await.unwrap();
    }
    let keys = s.list_sessions(&a.key.did).await.unwrap();
    assert_eq!(keys, vec![a.key.clone(), b.key.clone()], "several sessions per DID");
    // Upsert (T-12).
    let a2 = session("did:plc:aaa", "one", 1);
    s.put_session(&a2).await.unwrap();
    let got = s.get_session(&a.key).await.unwrap().unwrap();
    assert_eq!(got.generation, 1);
    assert_eq!(got.tokens.refresh_token.as_ref().unwrap().expose_secret(), "rt-1");
    assert!(got.dpop_key.d.is_some(), "T-13: DPoP private key stored");
    s.delete_session(&a.key).await.unwrap();
    s.delete_session(&a.key).await.unwrap();
    assert!(s.get_session(&a.key).await.unwrap().is_none());
    assert_eq!(s.list_sessions(&a.key.did).await.unwrap(), vec![b.key.clone()]);
    assert!(s.get_session(&c.key).await.unwrap().is_some());
    assert_eq!(s.list_all_sessions().await.unwrap(), vec![b.key.clone(), c.key.clone()]);
}

async fn lock_suite(l: Arc<dyn SessionLock>) {
    let ttl = Duration::from_secs(30);
    // Mutual exclusion among concurrent holders.
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (l, inside, max_inside) = (Arc::clone(&l), Arc::clone(&inside), Arc::clone(&max_inside));
        tasks.push(tokio::spawn(async move {
            let g = l.lock("name", ttl, Duration::from_secs(10)).await.unwrap();
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_inside.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            g.release().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(max_inside.load(Ordering::SeqCst), 1);
    // Timeout while held; other names are independent; release frees it.
    let g = l.lock("held", ttl, Duration::from_secs(1)).await.unwrap();
    let err = l.lock("held", ttl, Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout { .. }));
    l.lock("other", ttl, Duration::from_millis(100)).await.unwrap().release().await;
    g.release().await;
    l.lock("held", ttl, Duration::from_millis(500)).await.unwrap().release().await;
    // A dropped guard frees the lock too.
    drop(l.lock("dropped", ttl, Duration::from_secs(1)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    l.lock("dropped", ttl, Duration::from_secs(2)).await.unwrap().release().await;
}

/// A live guard's fenced write lands (every backend).
async fn fenced_write_suite<S: SessionStore + SessionLock>(s: &S) {
    let rec = session("did:plc:fenced", "one", 3);
    let g = s.lock(&rec.key.storage_key(), Duration::from_secs(30), Duration::from_secs(5)).await.unwrap();
    s.put_session_locked(&rec, &g).await.unwrap();
    g.release().await;
    let got = s.get_session(&rec.key).await.unwrap().unwrap();
    assert_eq!(got.generation, 3);
    assert_eq!(got.tokens.access_token.expose_secret(), "at-3");
    assert_eq!(s.list_sessions(&rec.key.did).await.unwrap(), vec![rec.key.clone()]);
    s.delete_session(&rec.key).await.unwrap();
}

/// Two handles on one backend (two processes): the lock excludes across them, a holder that died
/// loses the lock after its TTL, and a holder whose lease ran out cannot overwrite the session the
/// next holder refreshed, nor free the next holder's lock (SQLite file, Postgres, Redis).
async fn lease_suite<S: SessionStore + SessionLock>(a: &S, b: &S) {
    let long = Duration::from_secs(30);
    // Exclusion across handles; release frees.
    let g = a.lock("k", long, Duration::from_secs(1)).await.unwrap();
    let err = b.lock("k", long, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout { .. }), "{err:?}");
    g.release().await;
    b.lock("k", long, Duration::from_secs(1)).await.unwrap().release().await;

    // A holder that died (its guard never released): the lock is free again after its TTL.
    std::mem::forget(a.lock("dead", Duration::from_secs(1), Duration::from_secs(1)).await.unwrap());
    b.lock("dead", long, Duration::from_secs(10)).await.unwrap().release().await;

    // Fencing: A's lease runs out while it "refreshes"; B takes the lock and writes generation 2.
    let old = session("did:plc:lease", "one", 1);
    let new = session("did:plc:lease", "one", 2);
    let name = old.key.storage_key();
    b.put_session(&session("did:plc:lease", "one", 0)).await.unwrap();
    let ga = a.lock(&name, Duration::from_secs(1), Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gb = b.lock(&name, long, Duration::from_secs(10)).await.unwrap();
    b.put_session_locked(&new, &gb).await.unwrap();
    let err = a.put_session_locked(&old, &ga).await.unwrap_err();
    assert!(matches!(&err, StoreError::LockLost { name: n } if *n == name), "{err:?}");
    let stored = a.get_session(&old.key).await.unwrap().unwrap();
    assert_eq!(stored.generation, 2, "the expired holder wrote nothing");
    assert_eq!(stored.tokens.refresh_token.unwrap().expose_secret(), "rt-2");
    // A's late release does not free B's lock.
    ga.release().await;
    let err = a.lock(&name, long, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout { .. }), "B still holds the lock: {err:?}");
    gb.release().await;
    a.lock(&name, long, Duration::from_secs(1)).await.unwrap().release().await;
    a.delete_session(&old.key).await.unwrap();
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("atauth-client-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conformance() {
    let s = MemoryStore::new();
    state_store_suite(&s).await;
    session_store_suite(&s).await;
    lock_suite(Arc::new(MemoryLock::new())).await;
}

/// `MemoryStore` with `MemoryLock` as one value, for the fenced-write suite.
struct MemoryWithLock(MemoryStore, MemoryLock);

#[async_trait::async_trait]
impl SessionStore for MemoryWithLock {
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        self.0.get_session(key).await
    }
    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.0.put_session(record).await
    }
    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.0.delete_session(key).await
    }
    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        self.0.list_sessions(did).await
    }
    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        self.0.list_all_sessions().await
    }
}

#[async_trait::async_trait]
impl SessionLock for MemoryWithLock {
    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<LockGuard, StoreError> {
        self.1.lock(name, ttl, wait).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_fenced_write() {
    fenced_write_suite(&MemoryWithLock(MemoryStore::new(), MemoryLock::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_store_conformance() {
    let path = temp_db("conformance");
    let s = SqliteStore::open(&path).await.unwrap();
    state_store_suite(&s).await;
    session_store_suite(&s).await;
    fenced_write_suite(&s).await;
    lock_suite(Arc::new(s.clone())).await;
    // Data survives reopening (a restart).
    s.put_session(&session("did:plc:zzz", "one", 7)).await.unwrap();
    drop(s);
    let s = SqliteStore::open(&path).await.unwrap();
    let key = SessionKey { did: Did::new("did:plc:zzz").unwrap(), session_id: "one".into() };
    assert_eq!(s.get_session(&key).await.unwrap().unwrap().generation, 7);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_store_conformance() {
    let s = SqliteStore::open_in_memory().await.unwrap();
    state_store_suite(&s).await;
    session_store_suite(&s).await;
    fenced_write_suite(&s).await;
    lock_suite(Arc::new(s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_excludes_a_second_handle_on_the_same_file() {
    // Two independent handles (as two processes would have) contend through the lock table.
    let path = temp_db("two-handles");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let g = a.lock("k", Duration::from_secs(30), Duration::from_secs(1)).await.unwrap();
    let err = b.lock("k", Duration::from_secs(30), Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout { .. }));
    g.release().await;
    b.lock("k", Duration::from_secs(30), Duration::from_secs(1)).await.unwrap().release().await;
    // A holder that died: the lock expires after its TTL.
    let dead = a.lock("ttl", Duration::from_secs(1), Duration::from_secs(1)).await.unwrap();
    std::mem::forget(dead);
    b.lock("ttl", Duration::from_secs(30), Duration::from_secs(5)).await.unwrap().release().await;
    // The same lease and fencing suite as Postgres and Redis.
    lease_suite(&a, &b).await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

// ------------------------------------------------------------------------------------ Postgres ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conformance() {
    let db = backends::TestDatabase::create().await;
    let s = db.store().await;
    state_store_suite(&s).await;
    session_store_suite(&s).await;
    fenced_write_suite(&s).await;
    lock_suite(Arc::new(s.clone())).await;
    // Data survives reconnecting (a restart); a second handle is a second process.
    s.put_session(&session("did:plc:zzz", "one", 7)).await.unwrap();
    s.close().await;
    let (a, b) = (db.store().await, db.store().await);
    let key = SessionKey { did: Did::new("did:plc:zzz").unwrap(), session_id: "one".into() };
    assert_eq!(b.get_session(&key).await.unwrap().unwrap().generation, 7);
    lease_suite(&a, &b).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_racing_state_takes_exactly_one_wins() {
    let db = backends::TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let now = 1_000_000;
    for round in 0..20 {
        let state = format!("race-{round}");
        a.put_state(&state, &pending(now + 600)).await.unwrap();
        let (x, y) = tokio::join!(a.take_state(&state, now), b.take_state(&state, now));
        let wins = usize::from(x.unwrap().is_some()) + usize::from(y.unwrap().is_some());
        assert_eq!(wins, 1, "CL-STATE-01: exactly one take wins (round {round})");
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_bad_urls_and_foreign_or_other_version_schemas() {
    use atauth_client::postgres::ConnectError;
    let err = PostgresStore::connect("redis://127.0.0.1:6379").await.unwrap_err();
    assert!(matches!(err, ConnectError::Url(_)), "{err}");
    // Nothing listens on port 1.
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/postgres").await.unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1/postgres"), "the error names the target: {err}");

    // Tables of ours without a version: refused, nothing written.
    let db = backends::TestDatabase::create().await;
    db.exec("CREATE TABLE atauth_client_session (x INT)").await;
    let err = PostgresStore::connect(&db.url).await.unwrap_err();
    assert!(
        matches!(&err, ConnectError::UnknownSchema { tables } if tables == "atauth_client_session"),
        "{err}"
    );
    assert_eq!(db.tables().await, vec!["atauth_client_session"]);
    drop(db);

    // An older version: refused without `migrate`, nothing written; upgraded with it.
    let db = backends::TestDatabase::create().await;
    db.exec("CREATE TABLE atauth_client_schema (version INTEGER NOT NULL); INSERT INTO atauth_client_schema VALUES (0)")
        .await;
    let err = PostgresStore::connect(&db.url).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::NeedsMigration { found: 0, expected: atauth_client::postgres::SCHEMA_VERSION }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("migrate"), "the error says what to do: {err}");
    assert_eq!(db.tables().await, vec!["atauth_client_schema"]);
    let s = db.store_with(PostgresOptions::default().migrate(true)).await;
    s.put_session(&session("did:plc:aaa", "one", 0)).await.unwrap();
    s.close().await;
    assert_eq!(
        db.tables().await,
        vec!["atauth_client_schema", "atauth_client_session", "atauth_client_state"]
    );
    drop(db);

    // A newer version: always refused.
    let db = backends::TestDatabase::create().await;
    db.exec("CREATE TABLE atauth_client_schema (version INTEGER NOT NULL); INSERT INTO atauth_client_schema VALUES (99)")
        .await;
    let err =
        PostgresStore::connect_with(&db.url, PostgresOptions::default().migrate(true)).await.unwrap_err();
    assert!(matches!(err, ConnectError::TooNew { found: 99, .. }), "{err}");
    assert_eq!(db.tables().await, vec!["atauth_client_schema"]);
}

// --------------------------------------------------------------------------------------- Redis ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conformance() {
    let prefix = backends::TestPrefix::new();
    let s = prefix.store().await;
    state_store_suite(&s).await;
    session_store_suite(&s).await;
    fenced_write_suite(&s).await;
    lock_suite(Arc::new(s.clone())).await;
    let (a, b) = (prefix.store().await, prefix.store().await);
    lease_suite(&a, &b).await;
    // Everything lives under the prefix, and the prefix is all that is deleted.
    let other = backends::TestPrefix::new();
    other.store().await.put_session(&session("did:plc:other", "one", 0)).await.unwrap();
    assert!(s.delete_all().await.unwrap() > 0);
    assert!(s.list_all_sessions().await.unwrap().is_empty());
    assert_eq!(other.store().await.list_all_sessions().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_state_records_expire_in_redis_too() {
    let prefix = backends::TestPrefix::new();
    let s = prefix.store().await;
    let now = atauth_crypto::clock::unix_seconds(std::time::SystemTime::now());
    s.put_state("ttl", &pending(now + 600)).await.unwrap();
    let url = backends::redis_url();
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 =
        ::redis::cmd("TTL").arg(format!("{}state:ttl", prefix.prefix)).query_async(&mut conn).await.unwrap();
    assert!((600..=660).contains(&ttl), "lifetime plus at most a minute, got {ttl}");
    assert!(s.take_state("ttl", now).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refuses_bad_urls_and_credentials() {
    use atauth_client::redis::RedisConnectError;
    let err = RedisStore::connect("postgres://127.0.0.1:6379").await.unwrap_err();
    assert!(matches!(err, RedisConnectError::Url(_)), "{err}");
    let err = RedisStore::connect("redis://127.0.0.1:1").await.unwrap_err();
    assert!(matches!(err, RedisConnectError::Connect(_)), "{err}");
    // The test Redis has no password for this user: AUTH is refused at connect.
    let err = RedisStore::connect("redis://nobody:wrong@127.0.0.1:6379").await.unwrap_err();
    assert!(matches!(err, RedisConnectError::Connect(_)), "{err}");
}
