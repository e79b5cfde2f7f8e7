//! One conformance suite for every store backend: state (single use, expiry), sessions (upsert,
//! several per DID, delete, list), and the refresh lock (mutual exclusion, timeout, release).
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_store_conformance() {
    let path = temp_db("conformance");
    let s = SqliteStore::open(&path).await.unwrap();
    state_store_suite(&s).await;
    session_store_suite(&s).await;
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
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
