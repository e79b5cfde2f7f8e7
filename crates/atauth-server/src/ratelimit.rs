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
//! In process, on the injected clock (tests advance a `ManualClock`, no sleeping). Memory is
//! bounded: at most [`MAX_KEYS`] buckets per kind; when full, buckets that have refilled completely
//! (so carry no information) are dropped, and if none has, a new key is let through untracked and a
//! warning is logged: flooding the table with new identifiers costs the attacker a password hash
//! per entry and is itself held back by the per-address bucket. Several server instances each keep
//! their own buckets; a shared (Redis) limiter is future work.
//!
//! The same account reached by handle, email and DID has three identifier buckets; the per-address
//! bucket bounds the total.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::config::{RateLimit, SignInLimits};

/// The most buckets kept per kind (identifier, IP).
pub const MAX_KEYS: usize = 100_000;

/// A sign-in attempt was refused by the rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-in attempts; retry in {} s", retry_after.as_secs())]
pub struct RateLimited {
    /// How long until an attempt is available again (rounded up to whole seconds).
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: f64,
}

#[derive(Debug)]
struct Buckets {
    limit: RateLimit,
    map: HashMap<String, Bucket>,
}

impl Buckets {
    fn new(limit: RateLimit) -> Self {
        Self { limit, map: HashMap::new() }
    }

    fn rate(&self) -> f64 {
        1.0 / self.limit.refill_every.as_secs_f64().max(1e-3)
    }

    fn burst(&self) -> f64 {
        f64::from(self.limit.burst.max(1))
    }

    /// Tokens in `key`'s bucket at `now`.
    fn level(&self, key: &str, now: f64) -> f64 {
        self.map
            .get(key)
            .map_or(self.burst(), |b| (b.tokens + (now - b.at).max(0.0) * self.rate()).min(self.burst()))
    }

    /// Seconds until `key` has one token, or `None` if it has one now.
    fn wait(&self, key: &str, now: f64) -> Option<f64> {
        let level = self.level(key, now);
        (level < 1.0).then(|| (1.0 - level) / self.rate())
    }

    /// Forgets `key` (its bucket is full again).
    fn reset(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Gives one attempt back to `key` (never above the burst).
    fn refund(&mut self, key: &str, now: f64) {
        if self.map.contains_key(key) {
            let tokens = (self.level(key, now) + 1.0).min(self.burst());
            self.map.insert(key.to_owned(), Bucket { tokens, at: now });
        }
    }

    fn take(&mut self, key: &str, now: f64) {
        let tokens = self.level(key, now) - 1.0;
        if !self.map.contains_key(key) && self.map.len() >= MAX_KEYS {
            let (burst, rate) = (self.burst(), self.rate());
            self.map.retain(|_, b| b.tokens + (now - b.at).max(0.0) * rate < burst);
            if self.map.len() >= MAX_KEYS {
                tracing::warn!(keys = self.map.len(), "sign-in rate limiter full; attempt not tracked");
                return;
            }
        }
        self.map.insert(key.to_owned(), Bucket { tokens, at: now });
    }
}

/// The three kinds of bucket (see the module docs).
#[derive(Debug)]
struct State {
    pairs: Buckets,
    idents: Buckets,
    ips: Buckets,
}

/// The sign-in limiter. See the module docs.
#[derive(Debug)]
pub struct SignInLimiter {
    state: Mutex<State>,
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

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The bucket key of an (identifier, address) pair; without a known address, the identifier's.
fn pair_key(ident: &str, ip: Option<&str>) -> String {
    format!("{}\u{0}{ident}", ip.unwrap_or("-"))
}

impl SignInLimiter {
    /// A limiter with these limits.
    pub fn new(limits: SignInLimits) -> Self {
        Self {
            state: Mutex::new(State {
                pairs: Buckets::new(limits.per_identifier_and_ip),
                idents: Buckets::new(limits.per_identifier),
                ips: Buckets::new(limits.per_ip),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one attempt for `identifier` from `ip` (when known) at `now`. Refused (and nothing
    /// taken) when any of its buckets is empty.
    pub fn check(&self, identifier: &str, ip: Option<IpAddr>, now: SystemTime) -> Result<(), RateLimited> {
        let now = seconds(now);
        let ident = identifier_key(identifier);
        let ip = ip.map(ip_key);
        let pair = pair_key(&ident, ip.as_deref());
        let mut guard = self.lock();
        let State { pairs, idents, ips } = &mut *guard;
        let waits =
            [pairs.wait(&pair, now), idents.wait(&ident, now), ip.as_deref().and_then(|k| ips.wait(k, now))];
        if let Some(wait) = waits.into_iter().flatten().reduce(f64::max) {
            return Err(RateLimited { retry_after: Duration::from_secs(wait.ceil().max(1.0) as u64) });
        }
        pairs.take(&pair, now);
        idents.take(&ident, now);
        if let Some(k) = ip.as_deref() {
            ips.take(k, now);
        }
        Ok(())
    }

    /// Records that a checked attempt succeeded: the (identifier, address) pair starts afresh and
    /// the identifier's ceiling gets the attempt back, so only failures count against a user.
    pub fn succeeded(&self, identifier: &str, ip: Option<IpAddr>, now: SystemTime) {
        let now = seconds(now);
        let ident = identifier_key(identifier);
        let ip = ip.map(ip_key);
        let mut guard = self.lock();
        guard.pairs.reset(&pair_key(&ident, ip.as_deref()));
        guard.idents.refund(&ident, now);
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

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn per_identifier_burst_then_refill() {
        let l = limiter();
        for _ in 0..3 {
            l.check("Alice.test", None, at(0)).unwrap();
        }
        let e = l.check("@alice.test", None, at(0)).unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(60), "same key after normalisation");
        l.check("bob.test", None, at(0)).unwrap();
        l.check("alice.test", None, at(60)).unwrap();
        assert!(l.check("alice.test", None, at(60)).is_err());
    }

    #[test]
    fn per_ip_limit_spans_identifiers_and_ipv6_per_64() {
        let l = limiter();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for i in 0..5 {
            l.check(&format!("user{i}.test"), Some(if i % 2 == 0 { a } else { b }), at(0)).unwrap();
        }
        assert!(l.check("user9.test", Some(a), at(0)).is_err(), "same /64");
        l.check("user9.test", Some("2001:db8:1:3::1".parse().unwrap()), at(0)).unwrap();
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn refused_attempt_takes_nothing() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.check("alice.test", Some(ip), at(0)).unwrap();
        }
        for _ in 0..10 {
            assert!(l.check("alice.test", Some(ip), at(0)).is_err());
        }
        // The IP bucket lost only the 3 accepted attempts.
        l.check("bob.test", Some(ip), at(0)).unwrap();
        l.check("carol.test", Some(ip), at(0)).unwrap();
        assert!(l.check("dave.test", Some(ip), at(0)).is_err());
    }

    #[test]
    fn failures_from_another_address_do_not_lock_the_user_out() {
        let l = limiter();
        let attacker: IpAddr = "198.51.100.7".parse().unwrap();
        let user: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.check("alice.test", Some(attacker), at(0)).unwrap();
        }
        assert!(l.check("alice.test", Some(attacker), at(0)).is_err(), "the attacker's pair is spent");
        l.check("alice.test", Some(user), at(0)).unwrap();
    }

    #[test]
    fn the_identifier_ceiling_bounds_guessing_spread_over_addresses() {
        let l = limiter();
        for i in 0..6 {
            let ip: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            l.check("alice.test", Some(ip), at(0)).unwrap();
        }
        let e = l.check("alice.test", Some("192.0.2.1".parse().unwrap()), at(0)).unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(120));
    }

    #[test]
    fn success_resets_the_pair_and_refunds_the_ceiling() {
        let l = SignInLimiter::new(SignInLimits {
            per_identifier_and_ip: RateLimit { burst: 3, refill_every: Duration::from_secs(60) },
            per_identifier: RateLimit { burst: 5, refill_every: Duration::from_secs(120) },
            per_ip: RateLimit { burst: 7, refill_every: Duration::from_secs(10) },
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // Two failures and a success: the pair starts afresh, the ceiling lost only the failures.
        for _ in 0..3 {
            l.check("alice.test", Some(ip), at(0)).unwrap();
        }
        l.succeeded("alice.test", Some(ip), at(0));
        for _ in 0..3 {
            l.check("Alice.test", Some(ip), at(0)).unwrap();
        }
        // Ceiling: 5 - 3 + 1 - 3 = 0, although the pair would allow more after another reset.
        l.succeeded("alice.test", Some(ip), at(0));
        l.check("alice.test", Some(ip), at(0)).unwrap();
        assert!(l.check("alice.test", Some(ip), at(0)).is_err(), "the ceiling is spent");
        // The address bucket (7) bounds work, successes included: it is spent too.
        assert!(l.check("bob.test", Some(ip), at(0)).is_err());
    }
}
