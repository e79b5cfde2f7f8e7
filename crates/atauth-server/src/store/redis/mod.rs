//! Redis backend for the short-lived, shared data (cargo feature `redis`, issue 14): the
//! [`ReplayStore`] of DPoP proof `jti`s (AS-DPOP-05), client-assertion `jti`s (AS-CAUTH-02) and
//! PKCE challenges (AS-PAR-07), and the sign-in rate-limit buckets ([`RedisSignInLimits`], on the
//! same connection). Optional: without `--redis-url` the same records live in the Postgres (or
//! SQLite / memory) store, which passes the same conformance suites.
//!
//! **One record, one atomic step.** A key `<prefix>{replay}:<hex>` holds the record's expiry (Unix
//! seconds) with a Redis TTL to match (`SET … PX`); a small Lua script reads and sets it in one step
//! (Redis runs a script alone), so of two instances recording the same `jti` exactly one gets
//! "new". The script compares the stored expiry with the caller's `now` rather than relying on the
//! TTL alone, so an injected clock (tests) sees the same outcomes as on every other backend; in
//! real time it is `SET NX PX`.
//!
//! **Redis down: fail closed.** Every error (connection refused, timeout after
//! [`RedisOptions::response_timeout`], auth) is a [`StoreError::Backend`]: the request that needed
//! the replay check is refused with `server_error` (HTTP 500) rather than accepted unchecked. The
//! connection manager reconnects in the background; requests succeed again once Redis is back,
//! without restarting atauth.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ReplayStore, StoreError};

mod limits;

pub use limits::RedisSignInLimits;

/// How [`RedisReplayStore::connect_with`] connects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prepended to every key (default `atauth:`), so several services (or tests) share a Redis.
    pub prefix: String,
    /// How long one command may take before it fails (default 2 s).
    pub response_timeout: Duration,
    /// How long connecting may take (default 5 s).
    pub connection_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "atauth:".to_owned(),
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// Why [`RedisReplayStore::connect`] failed: one clear message at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// Not a `redis://` / `rediss://` / `redis+unix://` URL.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Unreachable, refused, or refused the credentials (`AUTH`).
    #[error("could not connect to Redis: {0}")]
    Connect(#[source] redis::RedisError),
}

/// The Redis [`ReplayStore`]. Cheap to clone (one multiplexed connection). See the module docs.
#[derive(Clone)]
pub struct RedisReplayStore {
    conn: ConnectionManager,
    prefix: String,
    check: redis::Script,
    purge: redis::Script,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// KEYS[1]: the record, KEYS[2]: the expiry index. ARGV: expires_at, now, TTL in ms, the index
/// member. 1 if new (or expired by `now`), else 0.
const CHECK_AND_RECORD: &str = r"
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
return 1
";

/// KEYS[1]: the expiry index. ARGV: now, the record-key prefix, batch size. Deletes up to a batch
/// of records expired by `now` and their index entries; returns {records deleted, entries seen}.
const PURGE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, m in ipairs(due) do
  local k = ARGV[2] .. m
  local v = redis.call('GET', k)
  if v and tonumber(v) <= tonumber(ARGV[1]) then n = n + redis.call('DEL', k) end
  redis.call('ZREM', KEYS[1], m)
end
return {n, #due}
";

const PURGE_BATCH: usize = 5000;

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl RedisReplayStore {
    /// Connects with [`RedisOptions::default`] and checks the connection with a `PING`. `url`:
    /// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS is not built in).
    pub async fn connect(url: &str) -> Result<Self, RedisConnectError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects with `options`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(RedisConnectError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            // Reconnection attempts at start only; later failures reconnect in the background.
            .set_number_of_retries(1);
        let mut conn =
            ConnectionManager::new_with_config(client, config).await.map_err(RedisConnectError::Connect)?;
        // The manager connects without a command; a PING makes a refused AUTH an error here.
        let _: String =
            redis::cmd("PING").query_async(&mut conn).await.map_err(RedisConnectError::Connect)?;
        Ok(Self {
            conn,
            prefix: options.prefix,
            check: redis::Script::new(CHECK_AND_RECORD),
            purge: redis::Script::new(PURGE),
        })
    }

    /// The sign-in rate-limit buckets on the same connection and key prefix.
    pub fn sign_in_limits(&self) -> RedisSignInLimits {
        RedisSignInLimits::new(self.conn.clone(), self.prefix.clone())
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Records are `<prefix>{replay}:<hex>`; the hash tag keeps them and the index in one
    /// cluster slot, as a script's keys must be.
    fn record_prefix(&self) -> String {
        format!("{}{{replay}}:", self.prefix)
    }

    fn index_key(&self) -> String {
        format!("{}{{replay}}-index", self.prefix)
    }

    /// Deletes every key under the prefix (tests clean up with it); how many.
    pub async fn delete_all(&self) -> Result<u64, StoreError> {
        let keys = self.keys(&format!("{}*", self.prefix)).await?;
        let mut conn = self.conn.clone();
        let mut n = 0;
        for chunk in keys.chunks(500) {
            let d: u64 = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await.map_err(backend)?;
            n += d;
        }
        Ok(n)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            out.extend(batch);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError> {
        // The TTL only cleans up; at least 1 s so that a record is never created already expired.
        let ttl_ms = expires_at.saturating_sub(now).max(1).saturating_mul(1000);
        let mut conn = self.conn.clone();
        let member = hex::encode(key);
        let new: i64 = self
            .check
            .key(format!("{}{member}", self.record_prefix()))
            .key(self.index_key())
            .arg(expires_at)
            .arg(now)
            .arg(ttl_ms)
            .arg(&member)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(new == 1)
    }

    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError> {
        // Redis drops records at their TTL by itself; the index (a sorted set by expiry) finds the
        // ones expired by `now` without a scan, in batches so no script runs long.
        let (index, prefix) = (self.index_key(), self.record_prefix());
        let mut conn = self.conn.clone();
        let mut purged = 0;
        loop {
            let (n, seen): (u64, usize) = self
                .purge
                .key(&index)
                .arg(now)
                .arg(&prefix)
                .arg(PURGE_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(backend)?;
            purged += n;
            if seen < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}
