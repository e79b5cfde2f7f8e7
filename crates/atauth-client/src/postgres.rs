//! [`PostgresStore`] (cargo feature `postgres`): state store, session store and cross-process
//! refresh lock on one Postgres database, so several app processes (or machines) share sessions and
//! refresh each exactly once (CL-REF-02, T-12). sqlx with the same features as the server crate.
//!
//! **Records** are the same JSON documents the SQLite store keeps, in `TEXT` columns: the DPoP
//! private key travels inside the session record (T-13) and the PKCE verifier inside the pending
//! authorization, exactly as on SQLite; protect the database like any store of credentials.
//! `take_state` is one `DELETE … RETURNING` (single use, CL-STATE-01); `put_session` one upsert.
//!
//! **The refresh lock** is a session-level advisory lock (`pg_advisory_lock`, key: the first 8 bytes
//! of SHA-256 over the lock name) held on a connection of its own, taken from a second, small pool
//! so that lock holders never starve the store calls they make while holding it. Why not a lock row
//! as on SQLite: a waiter on an advisory lock is woken by Postgres the moment the holder unlocks (no
//! polling), and the lock dies with the holder's connection, so a crashed process frees it at once.
//! A holder that hangs with its connection open is bounded by the lock's time-to-live: the
//! connection runs with `idle_session_timeout` = TTL, so Postgres ends it (and frees the lock) once
//! the holder has been silent that long. Waiting is bounded server-side by `lock_timeout`.
//! Tasks of one process queue on an in-process mutex first, so a process holds at most one
//! connection per lock name.
//!
//! **Fencing.** The refreshed session is written *on the lock's connection*
//! ([`SessionStore::put_session_locked`]): a session-level advisory lock is held for exactly as long
//! as that connection lives, so a write that succeeds there was made while the lock was held, and a
//! holder whose lease ran out (connection ended by `idle_session_timeout`) gets
//! [`StoreError::LockLost`] and writes nothing, instead of overwriting a newer session.
//!
//! Connection poolers in *transaction* mode (PgBouncer `pool_mode = transaction`) break
//! session-level advisory locks: point the store at Postgres directly or at a session-mode pool.
//!
//! **Migrations** are versioned (table `atauth_client_schema`) and run under a transaction-level
//! advisory lock, so processes starting together apply each once. An empty database is set up on
//! connect; one of an older version is migrated only with [`PostgresOptions::migrate`], otherwise
//! connecting fails with [`ConnectError::NeedsMigration`] and writes nothing; a newer version, or
//! `atauth_client_*` tables without a version, are always refused.

use std::sync::Arc;
use std::time::Duration;

use atauth_identity::Did;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _, Postgres};

use crate::error::StoreError;
use crate::store::{
    LockGuard, MemoryLock, PendingAuthorization, SessionKey, SessionLock, SessionRecord, SessionStore,
    StateStore,
};

/// How [`PostgresStore::connect_with`] opens its pools. Build it from [`Default`] with the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Largest number of connections for store calls (default 8).
    pub max_connections: u32,
    /// Largest number of connections holding refresh locks at once (default 8): at most this many
    /// sessions refresh at the same moment in one process; further refreshes of other sessions wait.
    pub max_lock_connections: u32,
    /// How long a store call waits for a free connection before failing (default 5 s).
    pub acquire_timeout: Duration,
    /// Apply pending migrations to a database of an older schema version (default off).
    pub migrate: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            max_lock_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            migrate: false,
        }
    }
}

impl PostgresOptions {
    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`max_lock_connections`](Self::max_lock_connections).
    pub fn max_lock_connections(mut self, n: u32) -> Self {
        self.max_lock_connections = n;
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    pub fn acquire_timeout(mut self, t: Duration) -> Self {
        self.acquire_timeout = t;
        self
    }

    /// Sets [`migrate`](Self::migrate).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// Why [`PostgresStore::connect`] failed. Each is one clear message; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a `postgres://` / `postgresql://` URL.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The database could not be reached or refused the connection.
    #[error("could not connect to Postgres at {target}: {source}")]
    Connect {
        /// `host:port/database`, without credentials.
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema is older than this build's and migration was not asked for.
    #[error(
        "the atauth-client schema is version {found}, older than this build's {expected}: \
         connect with PostgresOptions::migrate(true) to upgrade it"
    )]
    NeedsMigration {
        /// The stored version.
        found: i32,
        /// This build's version.
        expected: i32,
    },
    /// The schema is newer than this build's: an older binary must not write to it.
    #[error("the atauth-client schema is version {found}, newer than this build's {expected}: upgrade")]
    TooNew {
        /// The stored version.
        found: i32,
        /// This build's version.
        expected: i32,
    },
    /// `atauth_client_*` tables exist but no schema version: not a database this crate set up.
    #[error(
        "the database has atauth_client_* tables ({tables}) but no atauth_client_schema version: refusing to use it"
    )]
    UnknownSchema {
        /// The tables found.
        tables: String,
    },
    /// A migration failed (rolled back).
    #[error("migrating the database failed: {0}")]
    Migration(#[source] sqlx::Error),
}

/// The advisory-lock key migrations hold (`"atauth"` in ASCII, then `c1`: distinct from the
/// server's migration lock, so a server and a client sharing a database do not wait on each other).
const MIGRATION_LOCK: i64 = 0x6174_6175_7468_00c1;

/// The migrations, version 1 first. Append only; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: pending authorizations by `state`, sessions by (DID, session id); JSON records as on SQLite.
    "
CREATE TABLE atauth_client_state (
  state TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at BIGINT NOT NULL
);
CREATE INDEX atauth_client_state_expires ON atauth_client_state (expires_at);
CREATE TABLE atauth_client_session (
  did TEXT NOT NULL, session_id TEXT NOT NULL, record TEXT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (did, session_id)
);
",
];

/// This build's schema version.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

const UPSERT_SESSION: &str = "INSERT INTO atauth_client_session (did, session_id, record, updated_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (did, session_id) \
     DO UPDATE SET record = EXCLUDED.record, updated_at = EXCLUDED.updated_at";

/// State, sessions and refresh locks on Postgres. Cheap to clone. See the module docs.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    lock_pool: PgPool,
    local: MemoryLock,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = self.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field("host", &o.get_host())
            .field("database", &o.get_database())
            .finish_non_exhaustive()
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn now_unix() -> i64 {
    atauth_crypto::clock::unix_seconds(std::time::SystemTime::now())
}

/// The advisory-lock key of a lock name: SHA-256 over a domain prefix and the name, first 8 bytes.
/// The same in every process and build; two names sharing a key only serialise needlessly.
fn lock_key(name: &str) -> i64 {
    let digest = atauth_crypto::hash::sha256(format!("atauth-client lock\0{name}"));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Milliseconds for a Postgres duration setting: at least 1 (0 would mean "no limit").
fn setting_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).clamp(1, i32::MAX as u64)
}

/// How long [`PostgresStore::close`] waits for refresh locks still held.
pub const CLOSE_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The lock's connection, shared by the guard's fence and its release.
type LockConn = Arc<tokio::sync::Mutex<Option<PoolConnection<Postgres>>>>;

/// The fence of a Postgres lock: the connection that holds the advisory lock.
struct PgFence {
    name: String,
    conn: LockConn,
}

impl PostgresStore {
    /// Connects with [`PostgresOptions::default`] and sets up an empty database. `url`:
    /// `postgres://user:password@host:port/database` (libpq options such as `?sslmode=verify-full`
    /// work; TLS through rustls).
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with `options`; see [`PostgresOptions::migrate`] for what happens to the schema.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, ConnectError> {
        // sqlx reads any scheme as Postgres; a `redis://` URL here is a mistake.
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConnectError::Url("the URL must start with postgres:// or postgresql://".into()));
        }
        let connect: PgConnectOptions =
            url.parse().map_err(|e: sqlx::Error| ConnectError::Url(e.to_string()))?;
        let target = format!(
            "{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("(default)")
        );
        // One plain connection first, so the error names the cause (refused, password, database)
        // instead of the pool's timeout.
        let probe = sqlx::PgConnection::connect_with(&connect)
            .await
            .map_err(|source| ConnectError::Connect { target: target.clone(), source })?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await
            .map_err(|source| ConnectError::Connect { target: target.clone(), source })?;
        migrate(&pool, options.migrate).await?;
        // Lock connections are pinged before use: a lock on a connection the database already
        // dropped would be no lock. Waiting for one is bounded by the caller's `wait`.
        let lock_pool = PgPoolOptions::new()
            .max_connections(options.max_lock_connections.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3600))
            .test_before_acquire(true)
            .connect_lazy_with(connect);
        Ok(Self { pool, lock_pool, local: MemoryLock::new() })
    }

    /// The pool used for store calls.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the store: later calls fail at once. Waits for store calls in flight, and at most
    /// [`CLOSE_LOCK_WAIT`] for refresh locks still held (a connection that still holds one is
    /// closed when its guard is released, or dropped).
    pub async fn close(&self) {
        let locks = self.lock_pool.close();
        self.pool.close().await;
        let _ = tokio::time::timeout(CLOSE_LOCK_WAIT, locks).await;
    }

    /// Takes the advisory lock on a lock connection, waiting until `deadline`.
    async fn lock_remote(
        &self,
        name: &str,
        ttl: Duration,
        deadline: tokio::time::Instant,
    ) -> Result<PoolConnection<Postgres>, StoreError> {
        let timeout = || StoreError::LockTimeout { name: name.to_owned() };
        let mut conn = tokio::time::timeout_at(deadline, self.lock_pool.acquire())
            .await
            .map_err(|_| timeout())?
            .map_err(backend)?;
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        // One round trip, one implicit transaction: if the lock times out the settings roll back
        // with it; if it is taken, the connection keeps `idle_session_timeout` = TTL (the lease)
        // until release. The numbers are ours (computed above), not input: safe to splice.
        let sql = format!(
            "SET lock_timeout = {}; SELECT pg_advisory_lock({}); RESET lock_timeout; \
             SET idle_session_timeout = {}",
            setting_ms(wait),
            lock_key(name),
            setting_ms(ttl)
        );
        match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await {
            Ok(_) => Ok(conn),
            // 55P03 lock_not_available: `lock_timeout` ran out.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55P03") => Err(timeout()),
            Err(e) => {
                let _ = conn.close().await;
                Err(backend(e))
            }
        }
    }
}

/// Unlocks and hands the connection back to the pool, or closes it if that fails (a connection
/// that may still hold the lock must not be reused).
async fn release(name: String, conn: LockConn) {
    let Some(mut conn) = conn.lock().await.take() else { return };
    let sql = format!("SELECT pg_advisory_unlock({}); RESET idle_session_timeout", lock_key(&name));
    if sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await.is_err() {
        let _ = conn.close().await;
    }
}

/// Brings the database to [`SCHEMA_VERSION`]; see the module docs.
async fn migrate(pool: &PgPool, upgrade: bool) -> Result<(), ConnectError> {
    migrate_to(pool, SCHEMA_VERSION, upgrade).await
}

async fn migrate_to(pool: &PgPool, target: i32, upgrade: bool) -> Result<(), ConnectError> {
    let m = ConnectError::Migration;
    let mut tx = pool.begin().await.map_err(m)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(m)?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('atauth_client_schema') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await
        .map_err(m)?;
    let found: i32 = if exists {
        sqlx::query_scalar("SELECT version FROM atauth_client_schema").fetch_one(&mut *tx).await.map_err(m)?
    } else {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename LIKE 'atauth\\_client\\_%' ORDER BY tablename",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(m)?;
        if !tables.is_empty() {
            return Err(ConnectError::UnknownSchema { tables: tables.join(", ") });
        }
        0
    };
    if found > SCHEMA_VERSION {
        return Err(ConnectError::TooNew { found, expected: SCHEMA_VERSION });
    }
    if found >= target {
        return Ok(());
    }
    if exists && !upgrade {
        // Dropping `tx` rolls back: nothing was written.
        return Err(ConnectError::NeedsMigration { found, expected: SCHEMA_VERSION });
    }
    if !exists {
        sqlx::raw_sql(
            "CREATE TABLE atauth_client_schema (version INTEGER NOT NULL); \
             INSERT INTO atauth_client_schema (version) VALUES (0)",
        )
        .execute(&mut *tx)
        .await
        .map_err(m)?;
    }
    let (from, to) = (usize::try_from(found).unwrap_or(0), usize::try_from(target).unwrap_or(0));
    for (i, sql) in MIGRATIONS.iter().enumerate().take(to).skip(from) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(m)?;
        tracing::info!(version = i + 1, "applied atauth-client Postgres migration");
    }
    sqlx::query("UPDATE atauth_client_schema SET version = $1")
        .bind(target)
        .execute(&mut *tx)
        .await
        .map_err(m)?;
    tx.commit().await.map_err(m)
}

#[async_trait::async_trait]
impl StateStore for PostgresStore {
    async fn put_state(&self, state: &str, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let json = serde_json::to_string(pending)?;
        sqlx::query("DELETE FROM atauth_client_state WHERE expires_at < $1")
            .bind(now_unix())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO atauth_client_state (state, record, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (state) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at",
        )
        .bind(state)
        .bind(json)
        .bind(pending.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn take_state(&self, state: &str, now: i64) -> Result<Option<PendingAuthorization>, StoreError> {
        // DELETE … RETURNING: one caller gets the row (CL-STATE-01).
        let row: Option<(String, i64)> =
            sqlx::query_as("DELETE FROM atauth_client_state WHERE state = $1 RETURNING record, expires_at")
                .bind(state)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        match row {
            Some((json, exp)) if exp > now => Ok(Some(serde_json::from_str(&json)?)),
            _ => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT record FROM atauth_client_session WHERE did = $1 AND session_id = $2")
                .bind(key.did.as_str())
                .bind(&key.session_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        json.map(|j| serde_json::from_str(&j)).transpose().map_err(StoreError::from)
    }

    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)?;
        sqlx::query(UPSERT_SESSION)
            .bind(record.key.did.as_str())
            .bind(&record.key.session_id)
            .bind(json)
            .bind(now_unix())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Writes on the connection that holds `guard`'s advisory lock (see the module docs); a guard
    /// of another store falls back to [`put_session`](SessionStore::put_session).
    async fn put_session_locked(&self, record: &SessionRecord, guard: &LockGuard) -> Result<(), StoreError> {
        let Some(fence) = guard.fence::<PgFence>() else { return self.put_session(record).await };
        let lost = || StoreError::LockLost { name: fence.name.clone() };
        let json = serde_json::to_string(record)?;
        let mut slot = fence.conn.lock().await;
        let conn = slot.as_mut().ok_or_else(lost)?;
        let result = sqlx::query(UPSERT_SESSION)
            .bind(record.key.did.as_str())
            .bind(&record.key.session_id)
            .bind(json)
            .bind(now_unix())
            .execute(&mut **conn)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                // The connection is gone or failing: the lock cannot be shown to be held, so the
                // write counts as not made, and the connection is not reused.
                if let Some(conn) = slot.take() {
                    let _ = conn.close().await;
                }
                match e {
                    sqlx::Error::Database(db)
                        if !db.code().is_some_and(|c| c.starts_with("57") || c.starts_with("08")) =>
                    {
                        Err(StoreError::Backend(Box::new(sqlx::Error::Database(db))))
                    }
                    _ => Err(lost()),
                }
            }
        }
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM atauth_client_session WHERE did = $1 AND session_id = $2")
            .bind(key.did.as_str())
            .bind(&key.session_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        // COLLATE "C": byte order, the order of every other backend.
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT session_id FROM atauth_client_session WHERE did = $1 ORDER BY session_id COLLATE \"C\"",
        )
        .bind(did.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(ids.into_iter().map(|session_id| SessionKey { did: did.clone(), session_id }).collect())
    }

    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT did, session_id FROM atauth_client_session \
             ORDER BY did COLLATE \"C\", session_id COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        // Rows were written from valid DIDs; skip any that are not (foreign writes).
        Ok(rows
            .into_iter()
            .filter_map(|(did, session_id)| Some(SessionKey { did: Did::new(did).ok()?, session_id }))
            .collect())
    }
}

#[async_trait::async_trait]
impl SessionLock for PostgresStore {
    /// Takes the in-process lock first, then the advisory lock on a lock connection, both within
    /// `wait`; the connection's `idle_session_timeout` is `ttl` (see the module docs).
    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<LockGuard, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let local = self.local.lock_local(name, wait).await?;
        let conn = self.lock_remote(name, ttl, deadline).await?;
        let conn: LockConn = Arc::new(tokio::sync::Mutex::new(Some(conn)));
        let fence = PgFence { name: name.to_owned(), conn: Arc::clone(&conn) };
        let name = name.to_owned();
        Ok(LockGuard::new(move || {
            Some(Box::pin(async move {
                release(name, conn).await;
                drop(local);
            }))
        })
        .with_fence(fence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        // Fixed across processes and builds (two processes must compute the same key): the value
        // is SHA-256("atauth-client lock\0did:plc:a|s1")[..8] as a big-endian i64, by Python.
        assert_eq!(lock_key("did:plc:a|s1"), 4_640_684_820_747_098_238);
        assert_ne!(lock_key("did:plc:a|s1"), lock_key("did:plc:a|s2"));
        assert_ne!(lock_key(""), MIGRATION_LOCK);
    }

    #[test]
    fn settings_are_never_zero() {
        assert_eq!(setting_ms(Duration::ZERO), 1);
        assert_eq!(setting_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(setting_ms(Duration::from_secs(u64::MAX)), i32::MAX as u64);
    }
}
