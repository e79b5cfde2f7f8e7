//! Two instances, one service (issue 14): two `AuthServer`s over one Postgres database (two pools),
//! sharing the signing-key file and the DPoP nonce secret as `atauth serve` instances do. A login
//! and its refreshes may land on either; what one instance did, the other knows.

use std::sync::Arc;

use atauth_crypto::SecretBytes;
use atauth_server::keys::SigningKeys;
use atauth_server::ratelimit::SignInLimitStore;
use atauth_server::store::postgres::testing::TestDatabase;
use atauth_server::store::redis::{RedisOptions, RedisReplayStore};
use atauth_server::store::{PostgresLegacyStore, PostgresStore, Stores};
use http::StatusCode;

use crate::common::*;

/// Instance A (which created the accounts) and instance B, on one database and one clock.
struct Pair {
    a: Harness,
    b: Harness,
    _db: TestDatabase,
    _dir: atauth_testkit::fs::TempDir,
}

/// The builder settings of one instance: its own pool on the database, the shared key file, nonce
/// secret and legacy secret.
fn instance(
    store: &PostgresStore,
    keys_file: &std::path::Path,
    nonce: &SecretBytes,
) -> impl FnOnce(atauth_server::AuthServerBuilder) -> atauth_server::AuthServerBuilder {
    let legacy = atauth_server::legacy::LegacyOptions {
        jwt_secret: Some(SecretBytes::new(vec![7; 32])),
        store: Some(Arc::new(PostgresLegacyStore::in_store(store))),
        ..Default::default()
    };
    let (stores, keys, nonce) =
        (Stores::single(store.clone()), SigningKeys::load(keys_file).unwrap(), nonce.clone());
    move |b| b.stores(stores).signing_keys(keys).nonce_secret(nonce).legacy(legacy)
}

async fn pair() -> Pair {
    pair_with(|_, b| b).await
}

/// [`pair`] with `extra` applied to each instance's builder (given that instance's store).
async fn pair_with(
    extra: impl Fn(&PostgresStore, atauth_server::AuthServerBuilder) -> atauth_server::AuthServerBuilder,
) -> Pair {
    let db = TestDatabase::create().await;
    let dir = atauth_testkit::fs::TempDir::new("two-instances");
    let keys_file = dir.path().join("keys.json");
    SigningKeys::generate().save(&keys_file).unwrap();
    let nonce = SecretBytes::new(atauth_crypto::random::random_bytes::<32>().to_vec());
    let (sa, sb) = (db.store().await, db.store().await);
    let a = Harness::with(|b| extra(&sa, instance(&sa, &keys_file, &nonce)(b))).await;
    let b_server = extra(&sb, instance(&sb, &keys_file, &nonce)(builder(&a.clock))).build().unwrap();
    let b = Harness {
        router: atauth_server::web::router(b_server.clone()),
        server: b_server,
        clock: a.clock.clone(),
    };
    Pair { a, b, _db: db, _dir: dir }
}

/// A PAR request pushed on A is approved on B; the code is redeemed on A and once more on B, which
/// is the reuse that revokes what it issued (AS-CODE-02) — on both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_on_a_consent_on_b_and_a_code_redeems_once_across_instances() {
    let Pair { a, b, _db, _dir } = pair().await; // `_db` (not `..`): the database lives to the end
    let c = TestClient::loopback();
    let request_uri = c.par(&a).await;
    let params = c.consent(&b, &request_uri, "alice.test").await;
    let code = get(&params, "code").unwrap().to_owned();
    let t = c.token_with(&a, &c.code_params(&code)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.raw);
    let at = t.body["access_token"].as_str().unwrap();
    assert_eq!(c.get_session(&b, at).await.status, StatusCode::OK, "B accepts A's access token");

    let again = c.token_with(&b, &c.code_params(&code)).await;
    assert_eq!((again.status, again.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{}", again.raw);
    assert_eq!(
        c.get_session(&a, at).await.status,
        StatusCode::UNAUTHORIZED,
        "the reuse on B revoked A's session"
    );
    let r = c.token_with(&a, &c.refresh_params(t.body["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

/// Logged in through A, refreshed through B; the rotated-away token replayed on A (after the retry
/// grace) revokes the family on both (AS-REF-01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_on_b_and_a_replay_on_a_revokes_on_both() {
    let Pair { a, b, _db, _dir } = pair().await; // `_db` (not `..`): the database lives to the end
    let c = TestClient::loopback();
    let t = c.login(&a).await;
    let r1 = t["refresh_token"].as_str().unwrap();
    let r = c.token_with(&b, &c.refresh_params(r1)).await;
    assert_eq!(r.status, StatusCode::OK, "B refreshes A's session: {}", r.raw);
    let (at2, r2) = (r.body["access_token"].as_str().unwrap(), r.body["refresh_token"].as_str().unwrap());
    assert_ne!(r1, r2);
    assert_eq!(c.get_session(&a, at2).await.status, StatusCode::OK, "A accepts B's new access token");

    a.advance(60);
    let replay = c.token_with(&a, &c.refresh_params(r1)).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{}", replay.raw);
    let r = c.token_with(&b, &c.refresh_params(r2)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "the family is gone on B too"
    );
    assert_eq!(c.get_session(&b, at2).await.status, StatusCode::UNAUTHORIZED);
}

/// A DPoP proof used on A is a replay on B (AS-DPOP-05); a revocation on A is seen by B's resource
/// check (AS-REV-01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_used_on_a_is_refused_on_b_and_revocation_on_a_holds_on_b() {
    let Pair { a, b, _db, _dir } = pair().await; // `_db` (not `..`): the database lives to the end
    let c = TestClient::loopback();
    let t = c.login(&a).await;
    let at = t["access_token"].as_str().unwrap();
    let path = "/xrpc/com.atproto.server.getSession";
    let proof = c.proof(&a, "GET", path, Some(at));
    let req = |proof: String| {
        http::Request::get(path)
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", proof)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(a.send(req(proof.clone())).await.status, StatusCode::OK);
    let replayed = b.send(req(proof)).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED, "the same proof on B: {}", replayed.raw);
    assert_eq!(
        b.send(req(c.proof(&b, "GET", path, Some(at)))).await.status,
        StatusCode::OK,
        "a fresh proof works"
    );

    let revoke = a
        .post_form(
            "/oauth/revoke",
            &[("token", t["refresh_token"].as_str().unwrap()), ("client_id", &c.client_id)],
            Some(&c.proof(&a, "POST", "/oauth/revoke", None)),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK);
    assert_eq!(c.get_session(&b, at).await.status, StatusCode::UNAUTHORIZED, "B sees A's revocation");
}

// ------------------------------------------------------------------------------ sign-in limits ---

/// One password attempt through the headless consent API from 192.0.2.10.
async fn attempt(h: &Harness, c: &TestClient, request_uri: &str, password: &str) -> Resp {
    let body = form(&[
        ("client_id", c.client_id.as_str()),
        ("request_uri", request_uri),
        ("identifier", "alice.test"),
        ("password", password),
    ]);
    let mut req = http::Request::post("/oauth/authorize/sign-in-and-approve")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>("192.0.2.10:5000".parse().unwrap()));
    h.send(req).await
}

/// A sign-in burst alternating between A and B spends one budget: the default pair limit (10, then
/// one a minute) refuses the 11th attempt, on A, which has itself seen only five (per-instance
/// limits would let it through). A minute later one attempt is back, for both together.
async fn a_burst_over_both_hits_one_limit(Pair { a, b, _db, _dir }: Pair) {
    let c = TestClient::loopback();
    let uri = c.par(&a).await;
    for i in 0..10 {
        let h = if i % 2 == 0 { &a } else { &b };
        let r = attempt(h, &c, &uri, "wrong-password").await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("AuthenticationRequired")),
            "attempt {i}: {}",
            r.raw
        );
    }
    for (name, h) in [("A", &a), ("B", &b)] {
        let r = attempt(h, &c, &uri, PASSWORD).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("RateLimitExceeded")),
            "{name} refuses even the right password: {}",
            r.raw
        );
        assert!(r.body["message"].as_str().unwrap().contains("60 seconds"), "{}", r.raw);
    }
    a.advance(60);
    let r = attempt(&b, &c, &uri, "wrong-password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "one attempt earned back, spent on B: {}", r.raw);
    let r = attempt(&a, &c, &uri, PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "and only one, for both: {}", r.raw);
}

/// Shared on Postgres (no Redis): one limit over both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_burst_over_two_instances_hits_one_limit_on_postgres() {
    let pair = pair_with(|store, b| {
        b.sign_in_limits(atauth_server::SignInLimits::default())
            .sign_in_limit_store(Arc::new(store.clone()) as Arc<dyn SignInLimitStore>)
    })
    .await;
    a_burst_over_both_hits_one_limit(pair).await;
}

/// Shared on Redis: each instance with its own connection, one key prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_burst_over_two_instances_hits_one_limit_on_redis() {
    let prefix = format!("atauth-test-{}:", hex::encode(atauth_crypto::random::random_bytes::<8>()));
    let (ra, rb) = (redis_store(&prefix).await, redis_store(&prefix).await);
    let _clean = DeleteOnDrop(ra.clone());
    let stores = std::sync::Mutex::new(vec![rb, ra]);
    let pair = pair_with(|_, b| {
        let r = stores.lock().unwrap().pop().unwrap();
        b.sign_in_limits(atauth_server::SignInLimits::default())
            .sign_in_limit_store(Arc::new(r.sign_in_limits()) as Arc<dyn SignInLimitStore>)
    })
    .await;
    a_burst_over_both_hits_one_limit(pair).await;
}

fn redis_url() -> String {
    std::env::var("ATAUTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn redis_store(prefix: &str) -> RedisReplayStore {
    let mut o = RedisOptions::default();
    o.prefix = prefix.to_owned();
    RedisReplayStore::connect_with(&redis_url(), o)
        .await
        .unwrap_or_else(|e| panic!("these tests need Redis at {} (ATAUTH_TEST_REDIS_URL): {e}", redis_url()))
}

/// Deletes the store's keys when dropped (also when the test fails).
struct DeleteOnDrop(RedisReplayStore);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let store = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(store.delete_all()).ok()
        })
        .join();
    }
}

/// A redis-server of the test's own on a free port, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = Self { port, child: None };
        r.restart().await;
        r
    }

    async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Redis down: sign-in fails closed. The consent API answers 503 `ServiceUnavailable` and the
/// sign-in page 503 with a message, even for the right password (no password is checked, no one is
/// signed in); once Redis is back, sign-in works again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_fails_closed_while_the_limit_store_is_down_and_recovers() {
    let mut redis = PrivateRedis::start().await;
    let mut o = RedisOptions::default();
    o.response_timeout = std::time::Duration::from_millis(500);
    o.connection_timeout = std::time::Duration::from_millis(500);
    let store =
        RedisReplayStore::connect_with(&format!("redis://127.0.0.1:{}", redis.port), o).await.unwrap();
    let limits: Arc<dyn SignInLimitStore> = Arc::new(store.sign_in_limits());
    let h = Harness::with(|b| {
        b.sign_in_limits(atauth_server::SignInLimits::default()).sign_in_limit_store(limits)
    })
    .await;
    let c = TestClient::loopback();
    let uri = c.par(&h).await;
    assert_eq!(attempt(&h, &c, &uri, "wrong-password").await.status, StatusCode::UNAUTHORIZED);

    redis.stop();
    let r = attempt(&h, &c, &uri, PASSWORD).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ServiceUnavailable")),
        "{}",
        r.raw
    );
    let mut browser = Browser::new(&h);
    browser.ip = Some("192.0.2.10:5000".parse().unwrap());
    let page = browser.open(&c.client_id, &uri).await;
    let r = crate::ui::sign_in(&mut browser, &page, "alice.test", PASSWORD, false).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert!(r.raw.contains("Sign-in is temporarily unavailable. Please try again in a minute."), "{}", r.raw);
    assert!(browser.open(&c.client_id, &uri).await.raw.contains("<h1>Sign in</h1>"), "nobody signed in");

    redis.restart().await;
    let mut recovered = None;
    for _ in 0..50 {
        let r = attempt(&h, &c, &uri, PASSWORD).await;
        if r.status != StatusCode::SERVICE_UNAVAILABLE {
            recovered = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = recovered.expect("sign-in works again once Redis is back");
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
}
