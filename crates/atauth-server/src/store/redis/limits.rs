//! [`SignInLimitStore`] on Redis: the sign-in rate-limit buckets shared by every instance (issue 14).
//!
//! A bucket is a hash `<prefix>{signin}:<hex SHA-256 of the bucket key>` with fields `t` (tokens)
//! and `a` (time of the last take, Unix seconds), and a TTL until it is full again (a full bucket
//! carries no information, so Redis drops it by itself). One Lua script per attempt reads the
//! buckets, decides and takes from all of them or none: Redis runs a script alone, so two instances
//! racing for a bucket's last attempt cannot both get it. The `{signin}` hash tag keeps an
//! attempt's keys in one cluster slot, as a script's keys must be.
//!
//! Errors (Redis down, timeout, auth) are [`StoreError::Backend`]: the limiter then refuses the
//! sign-in (fail closed, [`crate::ratelimit`]).

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::backend;
use crate::ratelimit::{LimitBucket, SignInLimitStore};
use crate::store::StoreError;

/// KEYS: the buckets. ARGV[1]: now; then per bucket its burst and rate (per second). Returns "0"
/// when one attempt was taken from every bucket, else the seconds until all have one (nothing
/// taken). The rule is `crate::ratelimit::level`.
const TAKE: &str = r"
local now = tonumber(ARGV[1])
local levels, ats = {}, {}
local wait = 0
for i, k in ipairs(KEYS) do
  local burst, rate = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', k, 't', 'a')
  local level, at = burst, now
  if v[1] and v[2] then
    local t, a = tonumber(v[1]), tonumber(v[2])
    level = math.min(burst, t + math.max(now - a, 0) * rate)
    at = math.max(a, now)
  end
  levels[i], ats[i] = level, at
  if level < 1 then wait = math.max(wait, (1 - level) / rate) end
end
if wait > 0 then return string.format('%.17g', wait) end
for i, k in ipairs(KEYS) do
  local burst, rate = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local t = levels[i] - 1
  redis.call('HSET', k, 't', string.format('%.17g', t), 'a', string.format('%.17g', ats[i]))
  redis.call('PEXPIRE', k, math.ceil((burst - t) / rate * 1000) + 1000)
end
return '0'
";

/// KEYS[1]: the bucket to reset, KEYS[2]: the bucket to refund. ARGV: now, the refund bucket's
/// burst and rate.
const SUCCEEDED: &str = r"
redis.call('DEL', KEYS[1])
local v = redis.call('HMGET', KEYS[2], 't', 'a')
if v[1] and v[2] then
  local now, burst, rate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
  local t, a = tonumber(v[1]), tonumber(v[2])
  local level = math.min(burst, t + math.max(now - a, 0) * rate)
  t = math.min(burst, level + 1)
  redis.call('HSET', KEYS[2], 't', string.format('%.17g', t), 'a', string.format('%.17g', math.max(a, now)))
  redis.call('PEXPIRE', KEYS[2], math.ceil((burst - t) / rate * 1000) + 1000)
end
return 1
";

/// The Redis [`SignInLimitStore`], on the connection and key prefix of a
/// [`super::RedisReplayStore`] ([`super::RedisReplayStore::sign_in_limits`]). Cheap to clone.
#[derive(Clone)]
pub struct RedisSignInLimits {
    conn: ConnectionManager,
    prefix: String,
    take: redis::Script,
    succeeded: redis::Script,
}

impl std::fmt::Debug for RedisSignInLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSignInLimits").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisSignInLimits {
    pub(super) fn new(conn: ConnectionManager, prefix: String) -> Self {
        Self { conn, prefix, take: redis::Script::new(TAKE), succeeded: redis::Script::new(SUCCEEDED) }
    }

    fn key(&self, b: &LimitBucket) -> String {
        format!("{}{{signin}}:{}", self.prefix, hex::encode(b.digest()))
    }
}

#[async_trait]
impl SignInLimitStore for RedisSignInLimits {
    async fn take(&self, buckets: &[LimitBucket], now: f64) -> Result<Option<f64>, StoreError> {
        let mut inv = self.take.prepare_invoke();
        inv.arg(now);
        for b in buckets {
            inv.key(self.key(b)).arg(b.burst()).arg(b.rate());
        }
        let mut conn = self.conn.clone();
        let answer: String = inv.invoke_async(&mut conn).await.map_err(backend)?;
        let wait: f64 = answer
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("sign-in limit script answered {answer:?}")))?;
        Ok((wait > 0.0).then_some(wait))
    }

    async fn succeeded(&self, reset: &LimitBucket, refund: &LimitBucket, now: f64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .succeeded
            .key(self.key(reset))
            .key(self.key(refund))
            .arg(now)
            .arg(refund.burst())
            .arg(refund.rate())
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn purge_full(&self, _now: f64) -> Result<u64, StoreError> {
        // Every bucket carries a TTL until it is full again: Redis drops them by itself.
        Ok(0)
    }
}
