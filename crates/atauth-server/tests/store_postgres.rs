//! The Postgres backend (issue 14) against the Postgres server at `ATAUTH_TEST_POSTGRES_URL`
//! (default 127.0.0.1:5432, user postgres, trust auth): each test makes its own database and drops
//! it afterwards, also when it fails ([`TestDatabase`]).
//!
//! First the conformance suites every backend passes, unchanged; then what only a shared database
//! can get wrong: two instances (two pools) racing for one refresh token (keyed or not), code,
//! `request_uri`, `jti` or code challenge — exactly one wins; the migrations (versioned, refused without `--migrate` on an older
//! schema, refused on a newer one, safe when two instances start at once); bad URLs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use atauth_server::store::postgres::testing::TestDatabase;
use atauth_server::store::postgres::{ConnectError, PostgresOptions, schema::SCHEMA_VERSION};
use atauth_server::store::*;

const T0: i64 = 1_800_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_conformance_suite() {
    let db = TestDatabase::create().await;
    conformance::run_all(&db.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_legacy_store_passes_conformance_suite() {
    let db = TestDatabase::create().await;
    conformance::legacy::run_all(PostgresLegacyStore::in_store(&db.store().await)).await;
}

/// The suite passes when its calls alternate between two instances of the same database: nothing
/// an instance keeps in memory decides an outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_pass_the_token_suite_together() {
    struct Alternating(Vec<PostgresStore>, std::sync::atomic::AtomicUsize);
    impl Alternating {
        fn next(&self) -> &PostgresStore {
            &self.0[self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.0.len()]
        }
    }
    #[async_trait::async_trait]
    impl TokenStore for Alternating {
        async fn put_code(&self, code: CodeRecord) -> Result<(), StoreError> {
            self.next().put_code(code).await
        }
        async fn get_code(&self, hash: &TokenHash) -> Result<Option<CodeRecord>, StoreError> {
            self.next().get_code(hash).await
        }
        async fn redeem_code(
            &self,
            hash: &TokenHash,
            now: i64,
            session: SessionRecord,
        ) -> Result<RedeemOutcome, StoreError> {
            self.next().redeem_code(hash, now, session).await
        }
        async fn rotate_refresh(&self, old: &RefreshKey, r: Rotation) -> Result<RotateOutcome, StoreError> {
            self.next().rotate_refresh(old, r).await
        }
        async fn session_by_access_jti(
            &self,
            jti: &str,
            now: i64,
        ) -> Result<Option<SessionRecord>, StoreError> {
            self.next().session_by_access_jti(jti, now).await
        }
        async fn session_by_refresh(&self, hash: &RefreshKey) -> Result<Option<SessionRecord>, StoreError> {
            self.next().session_by_refresh(hash).await
        }
        async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
            self.next().session(id).await
        }
        async fn sessions_for_account(&self, sub: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
            self.next().sessions_for_account(sub, now).await
        }
        async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
            self.next().revoke_session(id).await
        }
        async fn revoke_account_sessions(
            &self,
            sub: &str,
            client_id: Option<&str>,
            device_id: Option<&str>,
        ) -> Result<u64, StoreError> {
            self.next().revoke_account_sessions(sub, client_id, device_id).await
        }
        async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
            self.next().purge_expired_tokens(now).await
        }
    }
    let db = TestDatabase::create().await;
    let both = Alternating(vec![db.store().await, db.store().await], Default::default());
    conformance::token_store_suite(&both).await;
}

// ------------------------------------------------------------------------------------- races ---

fn request() -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: "https://app.example.com/client-metadata.json".into(),
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "atproto".into(),
        state: None,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        login_hint: None,
        prompt: None,
        response_mode: None,
    }
}

/// An unbound request pushed at `T0`, expiring five minutes later.
fn pending(id: String) -> PendingRequest {
    PendingRequest {
        id,
        request: request(),
        dpop_jkt: "jkt".into(),
        client_auth: ClientAuthBinding::None,
        created_at: T0,
        expires_at: T0 + 300,
        device_id: None,
    }
}

fn code(hash: TokenHash) -> CodeRecord {
    CodeRecord {
        code_hash: hash,
        request: request(),
        sub: "did:plc:race".into(),
        scope: "atproto".into(),
        dpop_jkt: "jkt".into(),
        client_auth: ClientAuthBinding::None,
        created_at: T0,
        expires_at: T0 + 300,
        used: false,
        session_id: None,
        device_id: None,
    }
}

fn session(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        client_id: "https://app.example.com/client-metadata.json".into(),
        sub: "did:plc:race".into(),
        scope: "atproto".into(),
        dpop_jkt: "jkt".into(),
        client_auth: ClientAuthBinding::None,
        created_at: T0,
        expires_at: T0 + 86_400,
        refresh_hash: TokenHash::of(&format!("ref-{id}")),
        refresh_expires_at: T0 + 86_400,
        access_jti: format!("tok-{id}"),
        access_expires_at: T0 + 900,
        updated_at: T0,
        device_id: None,
    }
}

fn rotation(tag: &str, grace: i64) -> Rotation {
    Rotation {
        now: T0 + 100,
        client_id: "https://app.example.com/client-metadata.json".into(),
        dpop_jkt: "jkt".into(),
        client_auth: ClientAuthBinding::None,
        new_refresh_hash: TokenHash::of(&format!("ref-{tag}")),
        new_refresh_expires_at: T0 + 86_400,
        new_access_jti: format!("tok-{tag}"),
        new_access_expires_at: T0 + 1000,
        retry_grace: grace,
    }
}

/// Runs `a` and `b` at the same moment on two tasks (released together by a barrier).
async fn race<A, B, T>(a: A, b: B) -> (T, T)
where
    A: Future<Output = T> + Send + 'static,
    B: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let (ga, gb) = (gate.clone(), gate);
    let ta = tokio::spawn(async move {
        ga.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        gb.wait().await;
        b.await
    });
    (ta.await.expect("task a"), tb.await.expect("task b"))
}

const ROUNDS: usize = 20;

/// Two instances rotating one refresh token at once, the grace off: one rotates, the other is the
/// replay that revokes the family (AS-REF-01); never two live successors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_without_grace_one_rotates_the_other_revokes() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    // Unkeyed tokens take the locking path; keyed ones its compare-and-set first.
    for (i, keyed) in (0..2 * ROUNDS).map(|i| (i, i % 2 == 1)) {
        let id = format!("fam-{i}");
        a.put_code(code(TokenHash::of(&format!("cod-{i}")))).await.unwrap();
        assert_eq!(
            a.redeem_code(&TokenHash::of(&format!("cod-{i}")), T0, session(&id)).await.unwrap(),
            RedeemOutcome::Redeemed
        );
        let old = TokenHash::of(&format!("ref-{id}"));
        let key = RefreshKey { hash: old, family: keyed.then(|| id.clone()) };
        let key2 = key.clone();
        let (ra, rb) = (a.clone(), b.clone());
        let (ta, tb) = (format!("{id}-a"), format!("{id}-b"));
        let (oa, ob) =
            race(async move { ra.rotate_refresh(&key, rotation(&ta, 0)).await.unwrap() }, async move {
                rb.rotate_refresh(&key2, rotation(&tb, 0)).await.unwrap()
            })
            .await;
        let rotated = [&oa, &ob].iter().filter(|o| matches!(o, RotateOutcome::Rotated(_))).count();
        let replayed = [&oa, &ob].iter().filter(|o| **o == &RotateOutcome::Replayed).count();
        assert_eq!((rotated, replayed), (1, 1), "round {i}: exactly one wins: {oa:?} / {ob:?}");
        assert_eq!(a.session(&id).await.unwrap(), None, "round {i}: the replay revoked the family");
    }
}

/// With the lost-response grace on, the loser of the race is the retry: the family rotates afresh
/// and only the last pair lives; the winner's successor is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_with_grace_leave_exactly_one_live_token() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    for (i, keyed) in (0..2 * ROUNDS).map(|i| (i, i % 2 == 1)) {
        let id = format!("fam-{i}");
        a.put_code(code(TokenHash::of(&format!("cod-{i}")))).await.unwrap();
        a.redeem_code(&TokenHash::of(&format!("cod-{i}")), T0, session(&id)).await.unwrap();
        let old = TokenHash::of(&format!("ref-{id}"));
        let key = RefreshKey { hash: old, family: keyed.then(|| id.clone()) };
        let key2 = key.clone();
        let (ra, rb) = (a.clone(), b.clone());
        let (ta, tb) = (format!("{id}-a"), format!("{id}-b"));
        let (oa, ob) =
            race(async move { ra.rotate_refresh(&key, rotation(&ta, 30)).await.unwrap() }, async move {
                rb.rotate_refresh(&key2, rotation(&tb, 30)).await.unwrap()
            })
            .await;
        let (first, retried) = match (oa, ob) {
            (RotateOutcome::Rotated(f), RotateOutcome::Retried(r))
            | (RotateOutcome::Retried(r), RotateOutcome::Rotated(f)) => (f, r),
            other => panic!("round {i}: expected one rotation and one retry, got {other:?}"),
        };
        let stored = b.session(&id).await.unwrap().expect("family lives");
        assert_eq!(stored.refresh_hash, retried.refresh_hash, "round {i}: the retry's token is current");
        assert_eq!(
            b.session_by_access_jti(&first.access_jti, T0 + 101).await.unwrap(),
            None,
            "round {i}: the first rotation's access token is dead"
        );
        let mut again = rotation(&format!("{id}-c"), 30);
        again.now = T0 + 102;
        assert_eq!(
            b.rotate_refresh(&first.refresh_hash.into(), again).await.unwrap(),
            RotateOutcome::Replayed,
            "round {i}: the first rotation's refresh token is a replay"
        );
    }
}

/// Two instances redeeming one code at once: one redeems, the other is the reuse that revokes what
/// the code issued (AS-CODE-01/02); the loser's family is never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_code_redemptions_exactly_one_wins() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    for i in 0..ROUNDS {
        let c = TokenHash::of(&format!("cod-{i}"));
        a.put_code(code(c)).await.unwrap();
        let (ra, rb) = (a.clone(), b.clone());
        let (sa, sb) = (session(&format!("fam-{i}-a")), session(&format!("fam-{i}-b")));
        let (oa, ob) = race(async move { ra.redeem_code(&c, T0 + 1, sa).await.unwrap() }, async move {
            rb.redeem_code(&c, T0 + 1, sb).await.unwrap()
        })
        .await;
        let mut outcomes = [oa, ob];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, [RedeemOutcome::Redeemed, RedeemOutcome::Reused], "round {i}");
        for fam in ["a", "b"] {
            assert_eq!(a.session(&format!("fam-{i}-{fam}")).await.unwrap(), None, "round {i}: {fam}");
        }
        let stored = a.get_code(&c).await.unwrap().expect("code kept");
        assert!(stored.used, "round {i}");
    }
}

/// A `request_uri` is single use across instances (AS-AUTHZ-01), and a `jti` is recorded once
/// (AS-DPOP-05).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_request_takes_and_jtis_exactly_one_wins() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    for i in 0..ROUNDS {
        let id = format!("req-{i}");
        a.put_request(pending(id.clone())).await.unwrap();
        let (ra, rb, ia, ib) = (a.clone(), b.clone(), id.clone(), id.clone());
        let (ta, tb) = race(async move { ra.take_request(&ia, T0 + 1).await.unwrap() }, async move {
            rb.take_request(&ib, T0 + 1).await.unwrap()
        })
        .await;
        assert_eq!(usize::from(ta.is_some()) + usize::from(tb.is_some()), 1, "round {i}: one take");

        let key = atauth_crypto::hash::sha256(format!("jti-{i}").as_bytes());
        let (ra, rb) = (a.clone(), b.clone());
        let (ja, jb) =
            race(async move { ra.check_and_record(key, T0 + 60, T0).await.unwrap() }, async move {
                rb.check_and_record(key, T0 + 60, T0).await.unwrap()
            })
            .await;
        assert!(ja ^ jb, "round {i}: exactly one records the jti ({ja}, {jb})");

        // Two PARs with one code challenge (AS-PAR-07), each written with its replay record in
        // one statement: one is stored, the other is refused and leaves nothing.
        let key = atauth_crypto::hash::sha256(format!("pkce-{i}").as_bytes());
        let (pa, pb) = (pending(format!("req-once-{i}-a")), pending(format!("req-once-{i}-b")));
        let (ra, rb) = (a.clone(), b.clone());
        let (oa, ob) =
            race(async move { ra.put_request_once(pa, key, T0 + 60, T0).await.unwrap() }, async move {
                rb.put_request_once(pb, key, T0 + 60, T0).await.unwrap()
            })
            .await;
        assert!(oa ^ ob, "round {i}: exactly one request is stored ({oa}, {ob})");
        for (stored, side) in [(oa, "a"), (ob, "b")] {
            let found = a.get_request(&format!("req-once-{i}-{side}"), T0).await.unwrap();
            assert_eq!(found.is_some(), stored, "round {i}: {side} stored only if it won");
        }

        // Two devices binding one unbound request: one wins, the other is refused.
        let id = format!("req-bind-{i}");
        a.put_request(pending(id.clone())).await.unwrap();
        let (ra, rb, ia, ib) = (a.clone(), b.clone(), id.clone(), id.clone());
        let (ba, bb) =
            race(async move { ra.bind_request_device(&ia, "dev-a", T0).await.unwrap() }, async move {
                rb.bind_request_device(&ib, "dev-b", T0).await.unwrap()
            })
            .await;
        assert!(ba ^ bb, "round {i}: exactly one device binds ({ba}, {bb})");
        let bound = a.get_request(&id, T0).await.unwrap().and_then(|r| r.device_id);
        assert_eq!(bound.as_deref(), Some(if ba { "dev-a" } else { "dev-b" }), "round {i}");
    }
}

/// Two sign-ins on one device through two instances at once: both accounts are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_device_sign_ins_keep_both_accounts() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    for i in 0..ROUNDS {
        let id = TokenHash::of(&format!("dev-{i}"));
        a.put_device(DeviceSession {
            id,
            accounts: vec![],
            created_at: T0,
            expires_at: T0 + 100,
            user_agent: None,
        })
        .await
        .unwrap();
        let acct = |did: &str| DeviceAccount {
            did: did.into(),
            authenticated_at: T0,
            remember: true,
            consents: Vec::new(),
            last_seen_at: T0,
            ip: None,
        };
        let (ra, rb, x, y) = (a.clone(), b.clone(), acct("did:plc:x"), acct("did:plc:y"));
        let (ua, ub) =
            race(async move { ra.upsert_device_account(&id, x, T0 + 200, T0).await.unwrap() }, async move {
                rb.upsert_device_account(&id, y, T0 + 200, T0).await.unwrap()
            })
            .await;
        assert!(ua && ub);
        let mut dids: Vec<_> = a
            .get_device(&id, T0)
            .await
            .unwrap()
            .expect("device")
            .accounts
            .into_iter()
            .map(|a| a.did)
            .collect();
        dids.sort();
        assert_eq!(dids, ["did:plc:x", "did:plc:y"], "round {i}: no lost update");
    }
}

// -------------------------------------------------------------------------------- migrations ---

async fn version_of(db: &TestDatabase) -> i32 {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(db.url()).await.unwrap();
    let v = sqlx::query_scalar("SELECT version FROM atauth_schema").fetch_one(&pool).await.unwrap();
    pool.close().await;
    v
}

async fn table_exists(db: &TestDatabase, table: &str) -> bool {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(db.url()).await.unwrap();
    let e =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&pool).await.unwrap();
    pool.close().await;
    e
}

/// An empty database is set up on first connect; two instances starting at once both succeed and
/// the migrations run once (the advisory lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_database_is_set_up_once_by_instances_starting_together() {
    let db = TestDatabase::create().await;
    let (u1, u2) = (db.url().to_owned(), db.url().to_owned());
    let (a, b) = race(async move { PostgresStore::connect(&u1).await.map(|_| ()) }, async move {
        PostgresStore::connect(&u2).await.map(|_| ())
    })
    .await;
    a.expect("first instance");
    b.expect("second instance");
    assert_eq!(version_of(&db).await, SCHEMA_VERSION);
}

/// A database an older release left is refused without `--migrate` (one clear error, nothing
/// written), upgraded with it; a newer one is always refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_schema_needs_migrate_and_newer_is_refused() {
    let db = TestDatabase::create().await;
    db.set_up_old_version(1).await;
    let err = PostgresStore::connect(db.url()).await.expect_err("older schema without --migrate");
    assert!(
        matches!(err, ConnectError::NeedsMigration { found: 1, expected } if expected == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("--migrate"), "the error says what to do: {err}");
    assert_eq!(version_of(&db).await, 1, "nothing written");
    assert!(!table_exists(&db, "legacy_refresh_token").await, "nothing written");

    let store = PostgresStore::connect_with(db.url(), TestDatabase::migrating()).await.expect("--migrate");
    assert_eq!(version_of(&db).await, SCHEMA_VERSION);
    assert!(table_exists(&db, "legacy_refresh_token").await);
    conformance::legacy::run_all(PostgresLegacyStore::in_store(&store)).await;
    store.close().await;

    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(db.url()).await.unwrap();
    sqlx::query("UPDATE atauth_schema SET version = 99").execute(&pool).await.unwrap();
    pool.close().await;
    for options in [PostgresOptions::default(), TestDatabase::migrating()] {
        let err = PostgresStore::connect_with(db.url(), options).await.expect_err("newer schema");
        assert!(matches!(err, ConnectError::TooNew { found: 99, .. }), "{err}");
    }
}

/// Bad URLs and unreachable servers are errors, not panics; a closed store answers `Backend`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_a_closed_pool_are_errors() {
    let err = PostgresStore::connect("mysql://localhost/x").await.expect_err("not postgres");
    assert!(matches!(err, ConnectError::Url(_)), "{err}");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/atauth").await.expect_err("refused");
    assert!(matches!(err, ConnectError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1/atauth"), "names the target: {err}");
    let db = TestDatabase::create().await;
    let err = PostgresStore::connect(&format!("{}_missing", db.url())).await.expect_err("no such database");
    assert!(matches!(err, ConnectError::Connect { .. }), "{err}");

    let store = db.store().await;
    store.close().await;
    assert!(matches!(store.account_by_did("did:plc:x").await, Err(StoreError::Backend(_))));
}

// ----------------------------------------------------- sign-in limits and permission-set cache ---

/// The shared sign-in limit buckets (issue 14) pass the suite every limit store passes, and so do
/// two instances alternating call by call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sign_in_limits_pass_the_suite() {
    use atauth_server::ratelimit::{LimitBucket, SignInLimitStore};
    let db = TestDatabase::create().await;
    conformance::sign_in_limit_suite(&db.store().await).await;

    struct Alternating(Vec<PostgresStore>, std::sync::atomic::AtomicUsize);
    impl Alternating {
        fn next(&self) -> &PostgresStore {
            &self.0[self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.0.len()]
        }
    }
    #[async_trait::async_trait]
    impl SignInLimitStore for Alternating {
        async fn take(&self, b: &[LimitBucket], now: f64) -> Result<Option<f64>, StoreError> {
            self.next().take(b, now).await
        }
        async fn succeeded(&self, r: &LimitBucket, f: &LimitBucket, now: f64) -> Result<(), StoreError> {
            self.next().succeeded(r, f, now).await
        }
        async fn purge_full(&self, now: f64) -> Result<u64, StoreError> {
            self.next().purge_full(now).await
        }
    }
    let db = TestDatabase::create().await;
    let two = Alternating(vec![db.store().await, db.store().await], Default::default());
    conformance::sign_in_limit_suite(&two).await;
    assert!(two.0[0].purge_full(1_900_000_000.0).await.unwrap() > 0, "purge deletes the full rows");
}

/// Two instances taking the last attempt of a bucket at the same moment: exactly one gets it, and
/// the refused one takes nothing from the other buckets of its attempt (all or nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_take_the_last_sign_in_attempt_once() {
    use atauth_server::ratelimit::{LimitBucket, SignInLimitStore};
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let limit = |burst| atauth_server::RateLimit { burst, refill_every: std::time::Duration::from_secs(60) };
    for i in 0..ROUNDS {
        let pair = LimitBucket { key: format!("pair:-\u{0}user{i}.test"), limit: limit(1) };
        let ip_a = LimitBucket { key: format!("ip:a{i}"), limit: limit(5) };
        let ip_b = LimitBucket { key: format!("ip:b{i}"), limit: limit(5) };
        let (sa, sb, wa, wb) =
            (a.clone(), b.clone(), vec![pair.clone(), ip_a.clone()], vec![ip_b.clone(), pair]);
        let (x, y) = race(async move { sa.take(&wa, 1_800_000_000.0).await.unwrap() }, async move {
            sb.take(&wb, 1_800_000_000.0).await.unwrap()
        })
        .await;
        assert!(x.is_none() ^ y.is_none(), "round {i}: exactly one takes the last attempt ({x:?}, {y:?})");
        let loser = if x.is_none() { ip_b } else { ip_a };
        for n in 0..5 {
            assert_eq!(a.take(std::slice::from_ref(&loser), 1_800_000_000.0).await.unwrap(), None, "{n}");
        }
        assert!(
            a.take(&[loser], 1_800_000_000.0).await.unwrap().is_some(),
            "the loser's bucket lost nothing"
        );
    }
}

/// The permission-set cache (SCOPE-11) on Postgres passes the `LexiconCache` suite, and what one
/// instance cached another reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lexicon_cache_passes_the_suite_and_is_shared() {
    use atauth_identity::lexicon::LexiconCache as _;
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    atauth_testkit::lexicon::lexicon_cache_suite(&a).await;
    let entry = atauth_testkit::lexicon::entry("app.example.authFull", 1_750_000_000, "Full access");
    a.put(&entry).await.unwrap();
    let nsid = atauth_identity::Nsid::new("app.example.authFull").unwrap();
    assert_eq!(b.get(&nsid).await.unwrap(), Some(entry), "instance B reads what A cached");
    b.remove(&nsid).await.unwrap();
    assert_eq!(a.get(&nsid).await.unwrap(), None);
}

/// A database of the previous release (version 2) needs `--migrate` for the new tables, and gets
/// them with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_is_migrated_to_the_shared_limits_and_cache() {
    let db = TestDatabase::create().await;
    db.set_up_old_version(2).await;
    let err = PostgresStore::connect(db.url()).await.expect_err("version 2 without --migrate");
    assert!(matches!(err, ConnectError::NeedsMigration { found: 2, .. }), "{err}");
    assert!(!table_exists(&db, "sign_in_buckets").await, "nothing written");
    let store = PostgresStore::connect_with(db.url(), TestDatabase::migrating()).await.expect("--migrate");
    assert!(table_exists(&db, "sign_in_buckets").await && table_exists(&db, "lexicon_cache").await);
    conformance::sign_in_limit_suite(&store).await;
}

/// A database of the release before second factors (version 4) needs `--migrate` for the factor
/// tables, and gets them with it; the accounts stay and the factor suite passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_4_is_migrated_to_the_factor_tables() {
    let db = TestDatabase::create().await;
    db.set_up_old_version(4).await;
    let err = PostgresStore::connect(db.url()).await.expect_err("version 4 without --migrate");
    assert!(matches!(err, ConnectError::NeedsMigration { found: 4, .. }), "{err}");
    assert!(!table_exists(&db, "account_factors").await, "nothing written");
    let store = PostgresStore::connect_with(db.url(), TestDatabase::migrating()).await.expect("--migrate");
    for table in ["account_factors", "recovery_codes", "pending_factors"] {
        assert!(table_exists(&db, table).await, "{table}");
    }
    conformance::factor_store_suite(&store).await;
}

/// Two instances of one database racing for one recovery code and one TOTP step: exactly one wins
/// each (the suite's races run on one pool; these on two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_use_a_recovery_code_and_a_step_once() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let did = "did:plc:racingfactors0000000000";
    a.add_factor(FactorRecord {
        did: did.into(),
        id: "f".into(),
        kind: FactorKind::Totp,
        name: "Phone".into(),
        credential_id: None,
        data: atauth_crypto::SecretString::new("{}"),
        counter: 0,
        created_at: T0,
        last_used_at: None,
    })
    .await
    .unwrap();
    let code = TokenHash::of("abcde-fghij");
    a.replace_recovery_codes(did, &[code]).await.unwrap();
    for round in 0..5_i64 {
        let (x, y) = tokio::join!(
            a.advance_factor_counter(did, "f", 100 + round, T0),
            b.advance_factor_counter(did, "f", 100 + round, T0)
        );
        assert!(x.unwrap() ^ y.unwrap(), "round {round}: exactly one instance accepts the step");
    }
    let (x, y) = tokio::join!(a.use_recovery_code(did, &code, T0), b.use_recovery_code(did, &code, T0));
    assert!(x.unwrap() ^ y.unwrap(), "exactly one instance uses the code");
    assert_eq!(b.unused_recovery_codes(did).await.unwrap(), 0);
}
