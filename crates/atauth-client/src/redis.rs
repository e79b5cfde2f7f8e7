//! [`RedisStore`] (cargo feature `redis`): state store (with TTL), session store and cross-process
//! refresh lock on one Redis, so several app processes share sessions and refresh each exactly once
//! (CL-REF-02, T-12). The same `redis` crate and features as the server crate.
//!
//! **Keys** (prefix configurable, default `atauth-client:`):
//!
//! | key | holds |
//! |---|---|
//! | `<prefix>state:<state>` | a pending authorization (JSON), with a Redis TTL of its lifetime plus a minute; taken with `GETDEL` (single use, CL-STATE-01) |
//! | `<prefix>{s}:session:<did>\|<session id>` | a session record (JSON) |
//! | `<prefix>{s}:did:<did>` | a set of the DID's session ids |
//! | `<prefix>{s}:index` | a set of every `<did>\|<session id>` |
//! | `<prefix>{s}:lock:<name>` | a refresh lock's token, with a TTL |
//!
//! Records are the same JSON documents the SQLite store keeps: the DPoP private key travels inside
//! the session record (T-13), the PKCE verifier inside the pending authorization; protect the Redis
//! (ACL, network, persistence settings) like any store of credentials. Sessions are kept until
//! deleted, so the Redis must persist (RDB/AOF) if sessions are to survive its restart. The `{s}`
//! hash tag keeps a session, its indexes and its lock in one Redis Cluster slot, as the scripts
//! that change them together require.
//!
//! **The refresh lock** is `SET <lock key> <token> NX PX <ttl>` with a random token, polled with a
//! jittered backoff (tasks of one process queue on an in-process mutex first, so only one of them
//! polls). Release is a compare-and-delete script: a holder whose lease ran out cannot delete the
//! lock a later holder took. **Fencing**: the refreshed session is written by a script that first
//! checks the lock key still holds the guard's token ([`SessionStore::put_session_locked`]); a
//! holder whose lease expired gets [`StoreError::LockLost`] and writes nothing, so it cannot
//! overwrite the session a later holder refreshed.

use std::time::Duration;

use atauth_crypto::random::random_token;
use atauth_identity::Did;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::StoreError;
use crate::store::{
    LockGuard, MemoryLock, PendingAuthorization, SessionKey, SessionLock, SessionRecord, SessionStore,
    StateStore,
};

/// How [`RedisStore::connect_with`] connects. Build it from [`Default`] with the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prepended to every key (default `atauth-client:`), so several apps (or tests) share a Redis.
    pub prefix: String,
    /// How long one command may take before it fails (default 2 s).
    pub response_timeout: Duration,
    /// How long connecting may take (default 5 s).
    pub connection_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "atauth-client:".to_owned(),
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(5),
        }
    }
}

impl RedisOptions {
    /// Sets [`prefix`](Self::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`response_timeout`](Self::response_timeout).
    pub fn response_timeout(mut self, t: Duration) -> Self {
        self.response_timeout = t;
        self
    }

    /// Sets [`connection_timeout`](Self::connection_timeout).
    pub fn connection_timeout(mut self, t: Duration) -> Self {
        self.connection_timeout = t;
        self
    }
}

/// Why [`RedisStore::connect`] failed: one clear message; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// Not a `redis://` / `redis+unix://` URL.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Unreachable, refused, or refused the credentials (`AUTH`).
    #[error("could not connect to Redis: {0}")]
    Connect(#[source] redis::RedisError),
}

/// KEYS: the session, the DID's set, the index. ARGV: the record, the session id, the index member.
const PUT: &str = r"
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
";

/// KEYS: the lock, then as [`PUT`]. ARGV: the token, then as [`PUT`]. 1 if written, 0 if the lock
/// no longer holds the token (nothing written).
const PUT_FENCED: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[4])
return 1
";

/// KEYS: the session, the DID's set, the index. ARGV: the session id, the index member.
const DELETE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
";

/// KEYS: the lock. ARGV: the token. Deletes the lock only if it still holds the token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// How long a state record outlives its `expires_at` in Redis (clock skew between processes; the
/// record's own `expires_at` decides, the TTL only cleans up).
const STATE_TTL_SLACK_SECS: i64 = 60;

fn backend(e: redis::RedisError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn now_unix() -> i64 {
    atauth_crypto::clock::unix_seconds(std::time::SystemTime::now())
}

/// The fence of a Redis lock: its key and the token this guard set.
struct RedisFence {
    name: String,
    key: String,
    token: String,
}

/// State, sessions and refresh locks on Redis. Cheap to clone (one multiplexed connection that
/// reconnects by itself). See the module docs.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    local: MemoryLock,
    put: redis::Script,
    put_fenced: redis::Script,
    delete: redis::Script,
    release: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with [`RedisOptions::default`] and checks the connection (and credentials) with a
    /// `PING`. `url`: `redis://[user:password@]host[:port][/db]`.
    pub async fn connect(url: &str) -> Result<Self, RedisConnectError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects with `options`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(RedisConnectError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            .set_number_of_retries(1);
        let mut conn =
            ConnectionManager::new_with_config(client, config).await.map_err(RedisConnectError::Connect)?;
        // The manager may connect without a command; a PING makes a refused AUTH an error here.
        let _: String =
            redis::cmd("PING").query_async(&mut conn).await.map_err(RedisConnectError::Connect)?;
        Ok(Self {
            conn,
            prefix: options.prefix,
            local: MemoryLock::new(),
            put: redis::Script::new(PUT),
            put_fenced: redis::Script::new(PUT_FENCED),
            delete: redis::Script::new(DELETE),
            release: redis::Script::new(RELEASE),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn state_key(&self, state: &str) -> String {
        format!("{}state:{state}", self.prefix)
    }

    fn session_key(&self, key: &SessionKey) -> String {
        format!("{}{{s}}:session:{}", self.prefix, key.storage_key())
    }

    fn did_key(&self, did: &Did) -> String {
        format!("{}{{s}}:did:{did}", self.prefix)
    }

    fn index_key(&self) -> String {
        format!("{}{{s}}:index", self.prefix)
    }

    fn lock_key(&self, name: &str) -> String {
        format!("{}{{s}}:lock:{name}", self.prefix)
    }

    /// Deletes every key under the prefix (for tests and for removing an app's data); how many.
    pub async fn delete_all(&self) -> Result<u64, StoreError> {
        // The prefix is literal: escape the glob characters of SCAN's MATCH.
        let mut pattern = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut n = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            if !batch.is_empty() {
                let d: u64 = redis::cmd("DEL").arg(&batch).query_async(&mut conn).await.map_err(backend)?;
                n += d;
            }
            if next == 0 {
                return Ok(n);
            }
            cursor = next;
        }
    }

    /// Tries once to set the lock key to `token` for `ttl`.
    async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(set.is_some())
    }
}

#[async_trait::async_trait]
impl StateStore for RedisStore {
    async fn put_state(&self, state: &str, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let json = serde_json::to_string(pending)?;
        let secs = pending.expires_at.saturating_sub(now_unix()).max(0).saturating_add(STATE_TTL_SLACK_SECS);
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(self.state_key(state))
            .arg(json)
            .arg("EX")
            .arg(secs)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn take_state(&self, state: &str, now: i64) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut conn = self.conn.clone();
        // GETDEL: one caller gets the record (CL-STATE-01).
        let json: Option<String> =
            redis::cmd("GETDEL").arg(self.state_key(state)).query_async(&mut conn).await.map_err(backend)?;
        let Some(json) = json else { return Ok(None) };
        let pending: PendingAuthorization = serde_json::from_str(&json)?;
        Ok((pending.expires_at > now).then_some(pending))
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let json: Option<String> =
            redis::cmd("GET").arg(self.session_key(key)).query_async(&mut conn).await.map_err(backend)?;
        json.map(|j| serde_json::from_str(&j)).transpose().map_err(StoreError::from)
    }

    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)?;
        let mut conn = self.conn.clone();
        let _: i64 = self
            .put
            .key(self.session_key(&record.key))
            .key(self.did_key(&record.key.did))
            .key(self.index_key())
            .arg(json)
            .arg(&record.key.session_id)
            .arg(record.key.storage_key())
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Writes only if the lock still holds the guard's token, in one script (see the module docs);
    /// a guard of another store falls back to [`put_session`](SessionStore::put_session).
    async fn put_session_locked(&self, record: &SessionRecord, guard: &LockGuard) -> Result<(), StoreError> {
        let Some(fence) = guard.fence::<RedisFence>() else { return self.put_session(record).await };
        let json = serde_json::to_string(record)?;
        let mut conn = self.conn.clone();
        let written: i64 = self
            .put_fenced
            .key(&fence.key)
            .key(self.session_key(&record.key))
            .key(self.did_key(&record.key.did))
            .key(self.index_key())
            .arg(&fence.token)
            .arg(json)
            .arg(&record.key.session_id)
            .arg(record.key.storage_key())
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        if written == 1 { Ok(()) } else { Err(StoreError::LockLost { name: fence.name.clone() }) }
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .delete
            .key(self.session_key(key))
            .key(self.did_key(&key.did))
            .key(self.index_key())
            .arg(&key.session_id)
            .arg(key.storage_key())
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.did_key(did)).query_async(&mut conn).await.map_err(backend)?;
        ids.sort();
        Ok(ids.into_iter().map(|session_id| SessionKey { did: did.clone(), session_id }).collect())
    }

    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        let mut conn = self.conn.clone();
        let members: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.index_key()).query_async(&mut conn).await.map_err(backend)?;
        // A DID never contains '|', so the first one separates it from the session id. Members that
        // do not parse (foreign writes) are skipped.
        let mut keys: Vec<SessionKey> = members
            .into_iter()
            .filter_map(|m| {
                let (did, sid) = m.split_once('|')?;
                Some(SessionKey { did: Did::new(did).ok()?, session_id: sid.to_owned() })
            })
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[async_trait::async_trait]
impl SessionLock for RedisStore {
    /// Takes the in-process lock first, then `SET NX PX` with a fresh token, polling with a jittered
    /// backoff until `wait` elapses.
    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<LockGuard, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let local = self.local.lock_local(name, wait).await?;
        let key = self.lock_key(name);
        let token = random_token::<16>();
        let mut delay = Duration::from_millis(5);
        while !self.try_lock(&key, &token, ttl).await? {
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::LockTimeout { name: name.to_owned() });
            }
            let [j] = atauth_crypto::random::random_bytes::<1>();
            tokio::time::sleep(delay + Duration::from_millis(u64::from(j % 10))).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        let fence = RedisFence { name: name.to_owned(), key: key.clone(), token: token.clone() };
        let store = self.clone();
        Ok(LockGuard::new(move || {
            Some(Box::pin(async move {
                let mut conn = store.conn.clone();
                // Compare-and-delete: never frees a lock a later holder took after our lease ran out.
                let _: Result<i64, _> = store.release.key(&key).arg(&token).invoke_async(&mut conn).await;
                drop(local);
            }))
        })
        .with_fence(fence))
    }
}
