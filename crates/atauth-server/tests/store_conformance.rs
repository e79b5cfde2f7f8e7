//! Every store backend passes the same conformance suite (`atauth_server::store::conformance`).

use atauth_server::store::{MemoryStore, ProofReplaySet, SqliteStore, conformance};

#[tokio::test]
async fn memory_store_passes_conformance_suite() {
    conformance::run_all(&MemoryStore::default()).await;
}

/// The in-memory DPoP `jti` set of the SQLite default (issue 18) keeps the replay semantics.
#[tokio::test]
async fn proof_replay_set_passes_the_replay_suite() {
    conformance::replay_store_suite(&ProofReplaySet::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_conformance_suite() {
    conformance::run_all(&SqliteStore::open_temp().unwrap()).await;
}

/// Tokens and sessions survive a restart: reopen the same file and rotate the refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tokens_survive_reopen() {
    use atauth_server::store::*;
    let path = std::env::temp_dir().join(format!("atauth-reopen-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let session = SessionRecord {
        id: "ses-1".into(),
        client_id: "http://localhost".into(),
        sub: "did:plc:abc".into(),
        scope: "atproto".into(),
        dpop_jkt: "jkt".into(),
        client_auth: ClientAuthBinding::None,
        created_at: 1000,
        expires_at: 100_000,
        refresh_hash: TokenHash::of("ref-a"),
        refresh_expires_at: 100_000,
        access_jti: "tok-a".into(),
        access_expires_at: 2000,
        updated_at: 1000,
        device_id: None,
    };
    {
        let s = SqliteStore::open(&path).unwrap();
        s.put_code(CodeRecord {
            code_hash: TokenHash::of("cod-a"),
            request: AuthorizationRequest {
                client_id: "http://localhost".into(),
                redirect_uri: "http://127.0.0.1/".into(),
                scope: "atproto".into(),
                state: None,
                code_challenge: "c".into(),
                login_hint: None,
                prompt: None,
                response_mode: None,
            },
            sub: "did:plc:abc".into(),
            scope: "atproto".into(),
            dpop_jkt: "jkt".into(),
            client_auth: ClientAuthBinding::None,
            created_at: 1000,
            expires_at: 1300,
            used: false,
            session_id: None,
            device_id: None,
        })
        .await
        .unwrap();
        assert_eq!(
            s.redeem_code(&TokenHash::of("cod-a"), 1001, session.clone()).await.unwrap(),
            RedeemOutcome::Redeemed
        );
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.session("ses-1").await.unwrap(), Some(session));
    let r = Rotation {
        now: 1500,
        client_id: "http://localhost".into(),
        dpop_jkt: "jkt".into(),
        client_auth: ClientAuthBinding::None,
        new_refresh_hash: TokenHash::of("ref-b"),
        new_refresh_expires_at: 200_000,
        new_access_jti: "tok-b".into(),
        new_access_expires_at: 2500,
        retry_grace: 30,
    };
    assert!(matches!(s.rotate_refresh(&TokenHash::of("ref-a"), r).await.unwrap(), RotateOutcome::Rotated(_)));
    drop(s);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The SQLite store is the server's permission-set cache (SCOPE-11): it passes the `LexiconCache`
/// suite, and an entry survives reopening the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lexicon_cache_passes_the_suite_and_survives_reopen() {
    use atauth_identity::lexicon::LexiconCache as _;
    atauth_testkit::lexicon::lexicon_cache_suite(&SqliteStore::open_temp().unwrap()).await;

    let dir = atauth_testkit::fs::TempDir::new("lexicon-cache");
    let path = dir.join("atauth.sqlite");
    let entry = atauth_testkit::lexicon::entry("app.example.authFull", 1_750_000_000, "Full access");
    SqliteStore::open(&path).unwrap().put(&entry).await.unwrap();
    let reopened = SqliteStore::open(&path).unwrap();
    let nsid = atauth_identity::Nsid::new("app.example.authFull").unwrap();
    assert_eq!(reopened.get(&nsid).await.unwrap(), Some(entry));
}

/// A database of schema version 2 (before invite codes) is migrated to 3 on open: its accounts
/// stay, the invite tables appear, and the version is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schema_2_is_migrated_to_3_with_the_invite_tables() {
    use atauth_server::store::{AccountStore as _, InviteRedeemOutcome};
    let dir = atauth_testkit::fs::TempDir::new("schema-3");
    let path = dir.join("atauth.sqlite");
    let alice =
        atauth_testkit::server::account_record("did:plc:migrated0alice000000000", "alice.test", "a@x.test");
    SqliteStore::open(&path).unwrap().create_account(alice.clone()).await.unwrap();
    // What a version-2 build left: no invite tables, user_version 2.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE invite_codes; DROP TABLE invite_code_uses; PRAGMA user_version = 2;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.account_by_did(&alice.did).await.unwrap(), Some(alice), "accounts survive");
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4, "migrated through 3 to the current version");
    store.put_invite_code(atauth_server::signup::new_invite_code(1, 1_750_000_000)).await.unwrap();
    let code = store.list_invite_codes().await.unwrap().remove(0).code;
    let bob =
        atauth_testkit::server::account_record("did:plc:migrated0bob00000000000", "bob.test", "b@x.test");
    assert_eq!(store.create_account_with_invite(bob, &code).await.unwrap(), InviteRedeemOutcome::Created);
}

/// A database of schema version 3 (before second factors) is migrated to 4 on open: its accounts
/// and invite codes stay, the factor tables appear, and the version is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schema_3_is_migrated_to_4_with_the_factor_tables() {
    use atauth_server::store::{AccountStore as _, FactorKind, FactorRecord, FactorStore as _, TokenHash};
    let dir = atauth_testkit::fs::TempDir::new("schema-4");
    let path = dir.join("atauth.sqlite");
    let alice =
        atauth_testkit::server::account_record("did:plc:migrated4alice000000000", "alice.test", "a@x.test");
    let old = SqliteStore::open(&path).unwrap();
    old.create_account(alice.clone()).await.unwrap();
    old.put_invite_code(atauth_server::signup::new_invite_code(1, 1_750_000_000)).await.unwrap();
    drop(old);
    // What a version-3 build left: no factor tables, user_version 3.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE account_factors; DROP TABLE recovery_codes; DROP TABLE pending_factors; \
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.account_by_did(&alice.did).await.unwrap(), Some(alice.clone()), "accounts survive");
    assert_eq!(store.list_invite_codes().await.unwrap().len(), 1, "invite codes survive");
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    let totp = FactorRecord {
        did: alice.did.clone(),
        id: "f1".into(),
        kind: FactorKind::Totp,
        name: "Phone".into(),
        credential_id: None,
        data: atauth_crypto::SecretString::new("{}"),
        counter: 0,
        created_at: 1_750_000_000,
        last_used_at: None,
    };
    store.add_factor(totp.clone()).await.unwrap();
    assert_eq!(store.factors_for_account(&alice.did).await.unwrap(), vec![totp]);
    store.replace_recovery_codes(&alice.did, &[TokenHash::of("c")]).await.unwrap();
    assert_eq!(store.unused_recovery_codes(&alice.did).await.unwrap(), 1);
}

/// The in-process sign-in limit buckets pass the suite every limit store passes (Redis and Postgres
/// run it in store_redis.rs and store_postgres.rs), and a purge at a time when all are full drops
/// them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_sign_in_limits_pass_the_suite() {
    use atauth_server::ratelimit::{MemorySignInLimits, SignInLimitStore as _};
    let s = MemorySignInLimits::default();
    conformance::sign_in_limit_suite(&s).await;
    let tracked = s.len() as u64;
    assert!(tracked > 0);
    assert_eq!(s.purge_full(1_900_000_000.0).await.unwrap(), tracked);
    assert!(s.is_empty());
}
