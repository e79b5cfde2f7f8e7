//! The conformance suite of [`SignInLimitStore`] backends (memory, Redis, Postgres): the same
//! token-bucket outcomes on every backend, to the millisecond.

use std::time::Duration;

use crate::config::RateLimit;
use crate::ratelimit::{LimitBucket, SignInLimitStore};

const T0: f64 = 1_800_000_000.0;

fn bucket(key: &str, burst: u32, refill_secs: u64) -> LimitBucket {
    LimitBucket {
        key: key.to_owned(),
        limit: RateLimit { burst, refill_every: Duration::from_secs(refill_secs) },
    }
}

#[track_caller]
fn assert_wait(got: Option<f64>, want: f64, what: &str) {
    match got {
        Some(w) => assert!((w - want).abs() < 1e-3, "{what}: waits {w} s, expected {want} s"),
        None => panic!("{what}: taken, expected a refusal waiting {want} s"),
    }
}

async fn take<S: SignInLimitStore + ?Sized>(s: &S, buckets: &[&LimitBucket], now: f64) -> Option<f64> {
    let owned: Vec<LimitBucket> = buckets.iter().map(|b| (*b).clone()).collect();
    s.take(&owned, now).await.expect("take")
}

/// Runs every check against a store without buckets under these keys: burst then refusal with the
/// time until the slowest bucket refills, all-or-nothing takes, refill over time (fractional
/// seconds too), a clock behind the last take, reset and refund on success (capped, only for a
/// tracked bucket), independent keys, purging only full buckets.
///
/// # Panics
/// On the first rule the backend breaks, naming it.
pub async fn sign_in_limit_suite<S: SignInLimitStore + ?Sized>(s: &S) {
    let pair = bucket("pair:192.0.2.1\u{0}alice.test", 3, 60);
    let ident = bucket("id:alice.test", 5, 120);
    let ip = bucket("ip:192.0.2.1", 4, 10);

    // Burst, then refused with the time until one is earned back; nothing taken when refused.
    for i in 0..3 {
        assert_eq!(take(s, &[&pair, &ident], T0).await, None, "attempt {i} of the burst");
    }
    assert_wait(take(s, &[&pair, &ident], T0).await, 60.0, "the pair is spent");
    assert_wait(take(s, &[&pair, &ident], T0).await, 60.0, "still spent");
    assert_eq!(take(s, &[&ident], T0).await, None, "the refusals took nothing from the identifier");
    assert_eq!(take(s, &[&ident], T0).await, None);
    assert_wait(take(s, &[&ident], T0).await, 120.0, "identifier: 5 - 3 - 2 = 0");

    // Refill: the answer is the slowest bucket's wait.
    assert_wait(take(s, &[&pair, &ident], T0 + 30.0).await, 90.0, "pair 0.5, identifier 0.25");
    assert_wait(take(s, &[&pair, &ident], T0 + 60.5).await, 59.5, "pair 1, identifier ~0.5");
    assert_eq!(take(s, &[&pair, &ident], T0 + 120.0).await, None, "both have one at +120 s");
    // Now the pair holds 2 - 1 = 1 and the identifier 0.
    assert_wait(take(s, &[&ident], T0 + 120.0).await, 120.0, "the identifier is spent again");

    // A clock behind the last take (another instance's) refills nothing and breaks nothing.
    assert_wait(take(s, &[&ident], T0 + 100.0).await, 120.0, "an earlier clock refills nothing");

    // Success: the pair starts afresh, the identifier gets one attempt back.
    s.succeeded(&pair, &ident, T0 + 120.0).await.expect("succeeded");
    for i in 0..3 {
        assert_eq!(take(s, &[&pair], T0 + 120.0).await, None, "reset pair, attempt {i}");
    }
    assert_wait(take(s, &[&pair], T0 + 120.0).await, 60.0, "a reset pair has its burst, no more");
    assert_eq!(take(s, &[&ident], T0 + 120.0).await, None, "the refunded attempt");
    assert_wait(take(s, &[&ident], T0 + 120.0).await, 120.0, "only one was refunded");

    // A refund never goes above the burst, and an untracked bucket is not created by one.
    assert_eq!(take(s, &[&ip], T0).await, None);
    for _ in 0..3 {
        s.succeeded(&pair, &ip, T0).await.expect("succeeded");
    }
    for i in 0..4 {
        assert_eq!(take(s, &[&ip], T0).await, None, "ip attempt {i} after refunds");
    }
    assert_wait(take(s, &[&ip], T0).await, 10.0, "refunds stop at the burst (4)");
    let fresh = bucket("id:bob.test", 2, 60);
    s.succeeded(&pair, &fresh, T0).await.expect("refund of an untracked bucket");
    assert_eq!(take(s, &[&fresh], T0).await, None);
    assert_eq!(take(s, &[&fresh], T0).await, None);
    assert_wait(take(s, &[&fresh], T0).await, 60.0, "untracked bucket: its burst, no refund on top");

    // Keys are independent; a refusal of one bucket in a set holds back the others only then.
    let other_ip = bucket("ip:198.51.100.7", 4, 10);
    assert_wait(take(s, &[&other_ip, &fresh], T0).await, 60.0, "refused by the spent bucket");
    for i in 0..4 {
        assert_eq!(take(s, &[&other_ip], T0).await, None, "other address, attempt {i}: untouched");
    }

    // Purge: buckets full again go, the others stay (still refusing).
    let _ = s.purge_full(T0 + 40.0).await.expect("purge");
    assert_wait(take(s, &[&fresh], T0 + 40.0).await, 20.0, "a bucket not yet full survives the purge");
    let _ = s.purge_full(T0 + 10_000.0).await.expect("purge all");
    for b in [&pair, &ident, &ip, &fresh, &other_ip] {
        for i in 0..b.limit.burst {
            assert_eq!(take(s, &[b], T0 + 10_000.0).await, None, "{} full after the purge ({i})", b.key);
        }
        assert!(take(s, &[b], T0 + 10_000.0).await.is_some(), "{}: the burst, no more", b.key);
    }
}
