//! Password sign-in rate limiting: token buckets per identifier and per client IP address.
//!
//! Every password check through [`crate::AuthServer::sign_in_limited`] (the sign-in page of
//! [`crate::ui`] and the headless consent API of [`crate::web`]) first takes one attempt from the
//! bucket of the identifier as typed (trimmed, lowercase, without a leading `@`) and one from the
//! bucket of the client's address (IPv4 per address, IPv6 per /64, since one host usually holds a
//! whole /64). If either is empty nothing is taken and the attempt is refused with the time until
//! one is earned back, before any password hashing.
//!
//! In process, on the injected clock (tests advance a `ManualClock`, no sleeping). Memory is
//! bounded: at most [`MAX_KEYS`] buckets per kind; when full, buckets that have refilled completely
//! (so carry no information) are dropped, and if none has, a new key is let through untracked and a
//! warning is logged: flooding the table with new identifiers costs the attacker a password hash
//! per entry and is itself held back by the per-IP bucket. Several server instances each keep their
//! own buckets; a shared (Redis) limiter is future work.
//!
//! The same account reached by handle, email and DID has three identifier buckets; the per-IP
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

/// The sign-in limiter. See the module docs.
#[derive(Debug)]
pub struct SignInLimiter {
    state: Mutex<(Buckets, Buckets)>,
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

impl SignInLimiter {
    /// A limiter with these limits.
    pub fn new(limits: SignInLimits) -> Self {
        Self { state: Mutex::new((Buckets::new(limits.per_identifier), Buckets::new(limits.per_ip))) }
    }

    /// Takes one attempt for `identifier` and, when known, `ip`, at `now`. Refused (and nothing
    /// taken) when either bucket is empty.
    pub fn check(&self, identifier: &str, ip: Option<IpAddr>, now: SystemTime) -> Result<(), RateLimited> {
        let now = seconds(now);
        let ident = identifier_key(identifier);
        let ip = ip.map(ip_key);
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (idents, ips) = &mut *guard;
        let wait_ident = idents.wait(&ident, now);
        let wait_ip = ip.as_deref().and_then(|k| ips.wait(k, now));
        if let Some(wait) = wait_ident.into_iter().chain(wait_ip).reduce(f64::max) {
            return Err(RateLimited { retry_after: Duration::from_secs(wait.ceil().max(1.0) as u64) });
        }
        idents.take(&ident, now);
        if let Some(k) = ip.as_deref() {
            ips.take(k, now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> SignInLimiter {
        SignInLimiter::new(SignInLimits {
            per_identifier: RateLimit { burst: 3, refill_every: Duration::from_secs(60) },
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
}
