//! The Redis replay store (issue 14) against the Redis at `ATAUTH_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`): each test uses its own key prefix and deletes it afterwards, also when
//! it fails. Fail-closed is shown on a redis-server of the test's own, stopped mid-test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use atauth_server::ratelimit::SignInLimitStore as _;
use atauth_server::store::redis::{RedisConnectError, RedisOptions, RedisReplayStore};
use atauth_server::store::{ReplayStore, StoreError, conformance};

fn url() -> String {
    std::env::var("ATAUTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A store under a fresh prefix whose keys are deleted when the guard drops.
struct Prefixed(RedisReplayStore);

impl Prefixed {
    async fn new() -> Self {
        let mut o = RedisOptions::default();
        o.prefix = format!("atauth-test-{}:", hex::encode(atauth_crypto::random::random_bytes::<8>()));
        let store = RedisReplayStore::connect_with(&url(), o).await.unwrap_or_else(|e| {
            panic!("Redis tests need a server at {} (ATAUTH_TEST_REDIS_URL): {e}", url())
        });
        Self(store)
    }
}

impl Drop for Prefixed {
    fn drop(&mut self) {
        let store = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(store.delete_all()).ok()
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replay_store_passes_conformance_suite() {
    let s = Prefixed::new().await;
    conformance::replay_store_suite(&s.0).await;
    let again = Prefixed::new().await;
    assert!(
        again.0.check_and_record([7u8; 32], 2_000_000_000, 1_800_000_000).await.unwrap(),
        "prefixes are apart"
    );
}

/// Two instances (two connections) recording one `jti` at the same moment: exactly one accepts it
/// (AS-DPOP-05, AS-CAUTH-02).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_record_a_jti_once() {
    let a = Prefixed::new().await;
    let mut o = RedisOptions::default();
    o.prefix = a.0.prefix().to_owned();
    let b = RedisReplayStore::connect_with(&url(), o).await.unwrap();
    for i in 0..50u8 {
        let key = [i; 32];
        let gate = Arc::new(tokio::sync::Barrier::new(2));
        let (sa, sb, ga, gb) = (a.0.clone(), b.clone(), gate.clone(), gate);
        let ta = tokio::spawn(async move {
            ga.wait().await;
            sa.check_and_record(key, 1_800_000_060, 1_800_000_000).await.unwrap()
        });
        let tb = tokio::spawn(async move {
            gb.wait().await;
            sb.check_and_record(key, 1_800_000_060, 1_800_000_000).await.unwrap()
        });
        let (x, y) = (ta.await.unwrap(), tb.await.unwrap());
        assert!(x ^ y, "round {i}: exactly one records ({x}, {y})");
    }
}

/// The sign-in limit buckets on Redis (issue 14) pass the suite every limit store passes; their
/// keys live under the store's prefix and carry a TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sign_in_limits_pass_the_suite() {
    let s = Prefixed::new().await;
    conformance::sign_in_limit_suite(&s.0.sign_in_limits()).await;
    let client = redis::Client::open(url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}{{signin}}:*", s.0.prefix())).query_async(&mut c).await.unwrap();
    assert!(!keys.is_empty(), "buckets under the prefix");
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query_async(&mut c).await.unwrap();
        assert!(ttl > 0, "{k} has a TTL ({ttl})");
        assert!(!k.contains("alice"), "no identifier in the clear: {k}");
    }
}

/// Two instances (two connections) taking the last attempt of a bucket at the same moment: exactly
/// one gets it; the refused one takes nothing from its other bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_take_the_last_sign_in_attempt_once() {
    use atauth_server::ratelimit::{LimitBucket, SignInLimitStore as _};
    let a = Prefixed::new().await;
    let mut o = RedisOptions::default();
    o.prefix = a.0.prefix().to_owned();
    let b = RedisReplayStore::connect_with(&url(), o).await.unwrap();
    let (la, lb) = (a.0.sign_in_limits(), b.sign_in_limits());
    let limit = |burst| atauth_server::RateLimit { burst, refill_every: std::time::Duration::from_secs(60) };
    for i in 0..50 {
        let pair = LimitBucket { key: format!("pair:-\u{0}user{i}.test"), limit: limit(1) };
        let ip_a = LimitBucket { key: format!("ip:a{i}"), limit: limit(5) };
        let ip_b = LimitBucket { key: format!("ip:b{i}"), limit: limit(5) };
        let gate = Arc::new(tokio::sync::Barrier::new(2));
        let (sa, sb, ga, gb) = (la.clone(), lb.clone(), gate.clone(), gate);
        let (wa, wb) = (vec![pair.clone(), ip_a.clone()], vec![ip_b.clone(), pair]);
        let ta = tokio::spawn(async move {
            ga.wait().await;
            sa.take(&wa, 1_800_000_000.0).await.unwrap()
        });
        let tb = tokio::spawn(async move {
            gb.wait().await;
            sb.take(&wb, 1_800_000_000.0).await.unwrap()
        });
        let (x, y) = (ta.await.unwrap(), tb.await.unwrap());
        assert!(x.is_none() ^ y.is_none(), "round {i}: exactly one takes the last attempt ({x:?}, {y:?})");
        let loser = if x.is_none() { ip_b } else { ip_a };
        for n in 0..5 {
            assert_eq!(la.take(std::slice::from_ref(&loser), 1_800_000_000.0).await.unwrap(), None, "{n}");
        }
        assert!(la.take(&[loser], 1_800_000_000.0).await.unwrap().is_some(), "the loser lost nothing");
    }
}

/// Records expire in Redis by themselves (the TTL): nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_a_ttl() {
    let s = Prefixed::new().await;
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
            .unwrap();
    assert!(s.0.check_and_record([1; 32], now + 1, now).await.unwrap());
    assert!(!s.0.check_and_record([1; 32], now + 1, now).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert!(s.0.check_and_record([1; 32], now + 10, now).await.unwrap(), "the record expired in Redis (TTL)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_refused_auth_are_errors_at_connect() {
    assert!(matches!(
        RedisReplayStore::connect("http://127.0.0.1:6379").await,
        Err(RedisConnectError::Url(_))
    ));
    let mut o = RedisOptions::default();
    o.connection_timeout = std::time::Duration::from_secs(2);
    assert!(matches!(
        RedisReplayStore::connect_with("redis://127.0.0.1:1", o).await,
        Err(RedisConnectError::Connect(_))
    ));
    // The test server has no password: AUTH with one is refused, at connect, not at the first request.
    let with_password = url().replacen("redis://", "redis://:wrong-password@", 1);
    let err = RedisReplayStore::connect(&with_password).await.expect_err("AUTH refused");
    assert!(matches!(err, RedisConnectError::Connect(_)), "{err}");
}

/// Redis going away: every check fails with `Backend` (the server answers `server_error`: fail
/// closed, never "not a replay"); once it is back, checks succeed again without reconnecting by
/// hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_and_recovers() {
    let Ok(status) = std::process::Command::new("redis-server").arg("--version").output() else {
        panic!("redis-server is needed for this test (apt-get install redis-server)")
    };
    assert!(status.status.success());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = || {
        Killed(
            std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let wait_up = || async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    };
    let server = start();
    wait_up().await;
    let mut o = RedisOptions::default();
    o.response_timeout = std::time::Duration::from_millis(500);
    o.connection_timeout = std::time::Duration::from_millis(500);
    let s = RedisReplayStore::connect_with(&format!("redis://127.0.0.1:{port}"), o).await.unwrap();
    assert!(s.check_and_record([2; 32], 1_800_000_060, 1_800_000_000).await.unwrap());

    let limits = s.sign_in_limits();
    let bucket = atauth_server::ratelimit::LimitBucket {
        key: "ip:192.0.2.1".into(),
        limit: atauth_server::RateLimit { burst: 5, refill_every: std::time::Duration::from_secs(10) },
    };
    assert_eq!(limits.take(std::slice::from_ref(&bucket), 1_800_000_000.0).await.unwrap(), None);

    drop(server);
    for _ in 0..3 {
        let r = s.check_and_record([3; 32], 1_800_000_060, 1_800_000_000).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "fail closed while down: {r:?}");
        let r = limits.take(std::slice::from_ref(&bucket), 1_800_000_000.0).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "sign-in limits fail closed too: {r:?}");
    }

    let server = start();
    wait_up().await;
    let mut ok = false;
    for _ in 0..40 {
        if let Ok(new) = s.check_and_record([3; 32], 1_800_000_060, 1_800_000_000).await {
            assert!(new, "the new server has no record");
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(server);
    assert!(ok, "the store reconnected after Redis came back");
}

/// A child process killed (and reaped) when dropped, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
