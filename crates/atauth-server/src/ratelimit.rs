//! Password sign-in rate limiting: token buckets per (identifier, client address), per identifier
//! and per client address.
//!
//! Every password check through [`crate::AuthServer::sign_in_limited`] (the sign-in page of
//! [`crate::ui`] and the headless consent API of [`crate::web`]) and legacy `createSession` first
//! takes one attempt from three buckets, before any password hashing:
//!
//! - the **(identifier, address)** pair: the tight limit (default 10, then one a minute). It is what
//!   stops password guessing from one place, and it is **reset when a sign-in succeeds**, so a
//!   user's own typos never add up across days;
//! - the **identifier** alone: a looser ceiling (default 100, then one every 36 s) that bounds
//!   guessing spread over many addresses. Keying the tight limit by identifier alone (as before)
//!   let anyone lock a user out by failing ten times a minute from anywhere; now an attacker
//!   locks out only their own addresses until they spend the whole ceiling;
//! - the **address** (IPv4 per address, IPv6 per /64, since one host usually holds a whole /64),
//!   which bounds the hashing work one client can cause whatever identifiers it types.
//!
//! The identifier is taken as typed (trimmed, lowercase, without a leading `@`). If any bucket is
//! empty nothing is taken and the attempt is refused with the time until one is earned back. A
//! success gives the attempt back to the identifier ceiling and empties nothing else; the address
//! bucket keeps it (it bounds work, not failures). docs/DEVIATIONS.md compares these limits with
//! the reference PDS's.
//!
//! **Where the buckets live** ([`SignInLimitStore`], on the injected clock):
//!
//! - by default in process ([`MemorySignInLimits`]): each server instance has its own buckets;
//! - shared by every instance (issue 14): on Redis (`store::redis::RedisSignInLimits`, one Lua
//!   script per attempt) or on Postgres (`store::postgres::PostgresStore`, one conditional upsert of
//!   the three buckets in one transaction). `atauth serve` picks Redis when `--redis-url` is given,
//!   else Postgres with `--database-url`, else memory.
//!
//! Every backend applies the same rules ([`level`]), and each attempt is all or nothing: two
//! instances racing for the last attempt of a bucket cannot both get it. The conformance suite
//! `store::conformance::sign_in_limit_suite` pins the outcomes for every backend.
//!
//! **A shared store that cannot be reached fails closed**: the attempt is refused with
//! [`LimitError::Unavailable`] (HTTP 503; the sign-in page says sign-in is temporarily
//! unavailable) and no password is checked, so an outage never means unlimited guesses. Recording
//! a success (resetting the pair) is best effort: when it fails the user's earlier failures still
//! count, and a warning is logged.
//!
//! The same account reached by handle, email and DID has three identifier buckets; the per-address
//! bucket bounds the total.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::config::{RateLimit, SignInLimits};
use crate::store::StoreError;

/// The second-factor lockout ([`SignInLimiter::check_second_factor`]): one bucket per account, 10
/// attempts, then one every 15 minutes. Ten wrong codes in a row lock the account's second factor;
/// a right one refills the bucket.
pub const SECOND_FACTOR_LIMIT: RateLimit =
    RateLimit { burst: 10, refill_every: Duration::from_secs(15 * 60) };

/// The most buckets [`MemorySignInLimits`] keeps (the three kinds together).
pub const MAX_KEYS: usize = 300_000;

/// A sign-in attempt was refused by the rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-in attempts; retry in {} s", retry_after.as_secs())]
pub struct RateLimited {
    /// How long until an attempt is available again (rounded up to whole seconds).
    pub retry_after: Duration,
}

/// Why [`SignInLimiter::check`] refused an attempt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A bucket is empty.
    #[error(transparent)]
    Limited(#[from] RateLimited),
    /// The shared limit store could not be reached: fail closed (no password is checked).
    #[error("the sign-in limit store is unavailable: {0}")]
    Unavailable(#[source] StoreError),
}

/// One bucket an attempt draws from: its key (kind-tagged, see [`SignInLimiter`]) and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitBucket {
    /// The bucket's key, e.g. `ip:192.0.2.1`. Shared stores keep only its SHA-256 ([`Self::digest`]),
    /// so no identifier or address is stored in the clear.
    pub key: String,
    /// Its size and refill rate.
    pub limit: RateLimit,
}

impl LimitBucket {
    /// Bucket size (at least 1).
    pub fn burst(&self) -> f64 {
        f64::from(self.limit.burst.max(1))
    }

    /// Attempts earned back per second.
    pub fn rate(&self) -> f64 {
        1.0 / self.limit.refill_every.as_secs_f64().max(1e-3)
    }

    /// SHA-256 of the key: what shared stores key the bucket by.
    pub fn digest(&self) -> [u8; 32] {
        atauth_crypto::hash::sha256(self.key.as_bytes())
    }
}

/// The tokens in a bucket that held `tokens` at `at` (Unix seconds), at `now`: refilled at `rate`
/// per second, at most `burst`. A clock behind `at` (another instance's) refills nothing. The one
/// rule every [`SignInLimitStore`] applies (the Lua script and the SQL spell out the same).
pub fn level(tokens: f64, at: f64, now: f64, burst: f64, rate: f64) -> f64 {
    (tokens + (now - at).max(0.0) * rate).min(burst)
}

/// Where the buckets live. Every method is atomic: of two callers (two instances) racing for a
/// bucket's last attempt exactly one gets it.
#[async_trait]
pub trait SignInLimitStore: Send + Sync + 'static {
    /// Takes one attempt from every bucket in `buckets` at `now` (Unix seconds), or from none:
    /// `Ok(None)` when taken, `Ok(Some(seconds))` when refused, with the time until every bucket
    /// has an attempt again. A bucket never seen is full. After a take a bucket's time is
    /// `max(its time, now)`.
    async fn take(&self, buckets: &[LimitBucket], now: f64) -> Result<Option<f64>, StoreError>;

    /// A checked attempt succeeded: `reset` is forgotten (full again) and `refund`, if it is
    /// tracked, gets one attempt back (never above its burst).
    async fn succeeded(&self, reset: &LimitBucket, refund: &LimitBucket, now: f64) -> Result<(), StoreError>;

    /// Drops buckets that are full again at `now` (they carry no information); how many. A store
    /// whose records expire by themselves (Redis TTLs) may return 0.
    async fn purge_full(&self, now: f64) -> Result<u64, StoreError>;
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: f64,
    burst: f64,
    rate: f64,
}

impl Bucket {
    fn level(&self, now: f64) -> f64 {
        level(self.tokens, self.at, now, self.burst, self.rate)
    }
}

/// The in-process [`SignInLimitStore`] (one server instance). Memory is bounded: at most
/// [`MAX_KEYS`] buckets; when full, buckets that have refilled completely (so carry no
/// information) are dropped, and if none has, a new key is let through untracked and a warning is
/// logged: flooding the table with new identifiers costs the attacker a password hash per entry
/// and is itself held back by the per-address bucket.
#[derive(Debug, Default)]
pub struct MemorySignInLimits {
    map: Mutex<HashMap<String, Bucket>>,
}

impl MemorySignInLimits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many buckets are tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no bucket is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SignInLimitStore for MemorySignInLimits {
    async fn take(&self, buckets: &[LimitBucket], now: f64) -> Result<Option<f64>, StoreError> {
        let mut map = self.lock();
        let levels: Vec<f64> =
            buckets.iter().map(|b| map.get(&b.key).map_or(b.burst(), |s| s.level(now))).collect();
        let wait = buckets
            .iter()
            .zip(&levels)
            .filter(|(_, l)| **l < 1.0)
            .map(|(b, l)| (1.0 - l) / b.rate())
            .reduce(f64::max);
        if wait.is_some() {
            return Ok(wait);
        }
        for (b, l) in buckets.iter().zip(levels) {
            let at = map.get(&b.key).map_or(now, |s| s.at.max(now));
            if !map.contains_key(&b.key) && map.len() >= MAX_KEYS {
                map.retain(|_, s| s.level(now) < s.burst);
                if map.len() >= MAX_KEYS {
                    tracing::warn!(keys = map.len(), "sign-in rate limiter full; attempt not tracked");
                    continue;
                }
            }
            map.insert(b.key.clone(), Bucket { tokens: l - 1.0, at, burst: b.burst(), rate: b.rate() });
        }
        Ok(None)
    }

    async fn succeeded(&self, reset: &LimitBucket, refund: &LimitBucket, now: f64) -> Result<(), StoreError> {
        let mut map = self.lock();
        map.remove(&reset.key);
        if let Some(s) = map.get_mut(&refund.key) {
            s.tokens = (s.level(now) + 1.0).min(refund.burst());
            s.at = s.at.max(now);
            s.burst = refund.burst();
            s.rate = refund.rate();
        }
        Ok(())
    }

    async fn purge_full(&self, now: f64) -> Result<u64, StoreError> {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| s.level(now) < s.burst);
        Ok(u64::try_from(before - map.len()).unwrap_or(0))
    }
}

/// The sign-in limiter: the three limits over a [`SignInLimitStore`]. See the module docs.
///
/// Bucket keys: `pair:<address>\0<identifier>` (`-` for an unknown address), `id:<identifier>`,
/// `ip:<address>`.
pub struct SignInLimiter {
    limits: SignInLimits,
    store: Arc<dyn SignInLimitStore>,
}

impl std::fmt::Debug for SignInLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLimiter").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// The bucket key of an identifier as typed.
pub fn identifier_key(identifier: &str) -> String {
    let t = identifier.trim().to_lowercase();
    t.strip_prefix('@').map(str::to_owned).unwrap_or(t)
}

/// The bucket key of an address: IPv4 (also IPv4-mapped IPv6) per address, IPv6 per /64.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The lockout bucket of an account's second factor.
fn second_factor_bucket(did: &str) -> LimitBucket {
    LimitBucket { key: format!("2fa:{did}"), limit: SECOND_FACTOR_LIMIT }
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl SignInLimiter {
    /// A limiter with these limits, its buckets in process ([`MemorySignInLimits`]).
    pub fn new(limits: SignInLimits) -> Self {
        Self::with_store(limits, Arc::new(MemorySignInLimits::default()))
    }

    /// A limiter with these limits, its buckets in `store` (shared by instances).
    pub fn with_store(limits: SignInLimits, store: Arc<dyn SignInLimitStore>) -> Self {
        Self { limits, store }
    }

    /// The pair bucket and the identifier bucket of an attempt.
    fn pair_and_identifier(&self, identifier: &str, ip: Option<&str>) -> (LimitBucket, LimitBucket) {
        let ident = identifier_key(identifier);
        let pair = LimitBucket {
            key: format!("pair:{}\u{0}{ident}", ip.unwrap_or("-")),
            limit: self.limits.per_identifier_and_ip,
        };
        (pair, LimitBucket { key: format!("id:{ident}"), limit: self.limits.per_identifier })
    }

    /// Takes one attempt for `identifier` from `ip` (when known) at `now`. Refused (and nothing
    /// taken) when any of its buckets is empty, or when a shared store cannot be reached.
    pub async fn check(
        &self,
        identifier: &str,
        ip: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<(), LimitError> {
        let ip = ip.map(ip_key);
        let (pair, ident) = self.pair_and_identifier(identifier, ip.as_deref());
        let mut buckets = vec![pair, ident];
        if let Some(k) = ip {
            buckets.push(LimitBucket { key: format!("ip:{k}"), limit: self.limits.per_ip });
        }
        match self.store.take(&buckets, seconds(now)).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(LimitError::Limited(RateLimited {
                retry_after: Duration::from_secs(wait.ceil().max(1.0) as u64),
            })),
            Err(e) => {
                tracing::error!(error = %e, "sign-in limit store unavailable; attempt refused");
                Err(LimitError::Unavailable(e))
            }
        }
    }

    /// Takes one sign-up attempt for the address `ip` (`None`: one bucket shared by every client
    /// whose address is unknown) at `now` from its bucket `signup:<address>` of `limit`
    /// ([`crate::signup`]), in the same store as the sign-in buckets.
    pub async fn check_sign_up(
        &self,
        ip: Option<IpAddr>,
        limit: RateLimit,
        now: SystemTime,
    ) -> Result<(), LimitError> {
        let key = format!("signup:{}", ip.map_or_else(|| "-".to_owned(), ip_key));
        match self.store.take(&[LimitBucket { key, limit }], seconds(now)).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(LimitError::Limited(RateLimited {
                retry_after: Duration::from_secs(wait.ceil().max(1.0) as u64),
            })),
            Err(e) => {
                tracing::error!(error = %e, "rate-limit store unavailable; sign-up refused");
                Err(LimitError::Unavailable(e))
            }
        }
    }

    /// Takes one second-factor attempt of account `did` (bucket `2fa:<did>`, [`SECOND_FACTOR_LIMIT`],
    /// in the same store as the sign-in buckets, so shared by every instance on Redis or Postgres),
    /// before the code is checked: a refused attempt checks nothing and changes nothing.
    ///
    /// # Errors
    /// [`LimitError::Limited`] when the account's second factor is locked, with the time until the
    /// next attempt; [`LimitError::Unavailable`] when the shared store cannot be reached (fail
    /// closed).
    pub async fn check_second_factor(&self, did: &str, now: SystemTime) -> Result<(), LimitError> {
        let bucket = second_factor_bucket(did);
        match self.store.take(std::slice::from_ref(&bucket), seconds(now)).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(LimitError::Limited(RateLimited {
                retry_after: Duration::from_secs(wait.ceil().max(1.0) as u64),
            })),
            Err(e) => {
                tracing::error!(error = %e, "rate-limit store unavailable; second factor refused");
                Err(LimitError::Unavailable(e))
            }
        }
    }

    /// A second factor of `did` was right: its lockout bucket is full again (best effort).
    pub async fn second_factor_succeeded(&self, did: &str, now: SystemTime) {
        // The refund bucket is one no attempt ever takes from: nothing to give back.
        let refund = LimitBucket { key: format!("2fa-none:{did}"), limit: SECOND_FACTOR_LIMIT };
        if let Err(e) = self.store.succeeded(&second_factor_bucket(did), &refund, seconds(now)).await {
            tracing::warn!(error = %e, "could not reset the second-factor lockout");
        }
    }

    /// Records that a checked attempt succeeded: the (identifier, address) pair starts afresh and
    /// the identifier's ceiling gets the attempt back, so only failures count against a user. Best
    /// effort: a store error is logged, not returned.
    pub async fn succeeded(&self, identifier: &str, ip: Option<IpAddr>, now: SystemTime) {
        let ip = ip.map(ip_key);
        let (pair, ident) = self.pair_and_identifier(identifier, ip.as_deref());
        if let Err(e) = self.store.succeeded(&pair, &ident, seconds(now)).await {
            tracing::warn!(error = %e, "could not record a successful sign-in in the limit store");
        }
    }

    /// Drops buckets that are full again at `now`; how many.
    pub async fn purge_full(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.store.purge_full(seconds(now)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> SignInLimiter {
        SignInLimiter::new(SignInLimits {
            per_identifier_and_ip: RateLimit { burst: 3, refill_every: Duration::from_secs(60) },
            per_identifier: RateLimit { burst: 6, refill_every: Duration::from_secs(120) },
            per_ip: RateLimit { burst: 5, refill_every: Duration::from_secs(10) },
        })
    }

    fn refused(r: Result<(), LimitError>) -> RateLimited {
        match r {
            Err(LimitError::Limited(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[tokio::test]
    async fn per_identifier_burst_then_refill() {
        let l = limiter();
        for _ in 0..3 {
            l.check("Alice.test", None, at(0)).await.unwrap();
        }
        let e = refused(l.check("@alice.test", None, at(0)).await);
        assert_eq!(e.retry_after, Duration::from_secs(60), "same key after normalisation");
        l.check("bob.test", None, at(0)).await.unwrap();
        l.check("alice.test", None, at(60)).await.unwrap();
        assert!(l.check("alice.test", None, at(60)).await.is_err());
    }

    #[tokio::test]
    async fn per_ip_limit_spans_identifiers_and_ipv6_per_64() {
        let l = limiter();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for i in 0..5 {
            l.check(&format!("user{i}.test"), Some(if i % 2 == 0 { a } else { b }), at(0)).await.unwrap();
        }
        assert!(l.check("user9.test", Some(a), at(0)).await.is_err(), "same /64");
        l.check("user9.test", Some("2001:db8:1:3::1".parse().unwrap()), at(0)).await.unwrap();
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[tokio::test]
    async fn refused_attempt_takes_nothing() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.check("alice.test", Some(ip), at(0)).await.unwrap();
        }
        for _ in 0..10 {
            assert!(l.check("alice.test", Some(ip), at(0)).await.is_err());
        }
        // The IP bucket lost only the 3 accepted attempts.
        l.check("bob.test", Some(ip), at(0)).await.unwrap();
        l.check("carol.test", Some(ip), at(0)).await.unwrap();
        assert!(l.check("dave.test", Some(ip), at(0)).await.is_err());
    }

    #[tokio::test]
    async fn failures_from_another_address_do_not_lock_the_user_out() {
        let l = limiter();
        let attacker: IpAddr = "198.51.100.7".parse().unwrap();
        let user: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.check("alice.test", Some(attacker), at(0)).await.unwrap();
        }
        assert!(l.check("alice.test", Some(attacker), at(0)).await.is_err(), "the attacker's pair is spent");
        l.check("alice.test", Some(user), at(0)).await.unwrap();
    }

    #[tokio::test]
    async fn the_identifier_ceiling_bounds_guessing_spread_over_addresses() {
        let l = limiter();
        for i in 0..6 {
            let ip: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            l.check("alice.test", Some(ip), at(0)).await.unwrap();
        }
        let e = refused(l.check("alice.test", Some("192.0.2.1".parse().unwrap()), at(0)).await);
        assert_eq!(e.retry_after, Duration::from_secs(120));
    }

    #[tokio::test]
    async fn success_resets_the_pair_and_refunds_the_ceiling() {
        let l = SignInLimiter::new(SignInLimits {
            per_identifier_and_ip: RateLimit { burst: 3, refill_every: Duration::from_secs(60) },
            per_identifier: RateLimit { burst: 5, refill_every: Duration::from_secs(120) },
            per_ip: RateLimit { burst: 7, refill_every: Duration::from_secs(10) },
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // Two failures and a success: the pair starts afresh, the ceiling lost only the failures.
        for _ in 0..3 {
            l.check("alice.test", Some(ip), at(0)).await.unwrap();
        }
        l.succeeded("alice.test", Some(ip), at(0)).await;
        for _ in 0..3 {
            l.check("Alice.test", Some(ip), at(0)).await.unwrap();
        }
        // Ceiling: 5 - 3 + 1 - 3 = 0, although the pair would allow more after another reset.
        l.succeeded("alice.test", Some(ip), at(0)).await;
        l.check("alice.test", Some(ip), at(0)).await.unwrap();
        assert!(l.check("alice.test", Some(ip), at(0)).await.is_err(), "the ceiling is spent");
        // The address bucket (7) bounds work, successes included: it is spent too.
        assert!(l.check("bob.test", Some(ip), at(0)).await.is_err());
    }
}
