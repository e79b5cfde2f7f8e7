//! Postgres backend (cargo feature `postgres`, issue 14): every server store trait on one shared
//! database, so several `atauth serve` instances behind one name see the same accounts, requests,
//! codes, token families, device sessions, replay records and client-metadata cache.
//!
//! Driver: sqlx with only its `postgres`, `runtime-tokio` and rustls features, and plain
//! `sqlx::query` with binds (no compile-time checked macros, which would need a live database to
//! build). Every statement is a `&'static str` assembled at compile time; a [`PgPool`] of
//! connections prepares each once per connection and caches it.
//!
//! **Atomicity across instances.** Postgres runs at `READ COMMITTED`, where two transactions may
//! each read a row and then both write it. So every read-then-write holds a row lock or is one
//! conditional statement, and two instances racing cannot both win:
//!
//! | operation | how |
//! |---|---|
//! | refresh rotation | a family's current keyed token: one statement whose `UPDATE … WHERE refresh_hash = <presented>` is a compare-and-set (Postgres re-checks it on the newest row version after waiting for a concurrent writer); anything else, or a lost compare-and-set: one transaction where the family's `sessions` row is locked (`FOR UPDATE`) before the presented token's state is read, so rotations, retries and revocations of one family queue up |
//! | code redemption | one transaction; the code row is locked (`FOR UPDATE`): the second redeemer sees `used` and revokes (AS-CODE-02) |
//! | taking a PAR request (single use, AS-AUTHZ-01) | one `DELETE … RETURNING`: only one caller gets the row |
//! | binding a request to a device | one conditional `UPDATE … WHERE device_id IS NULL OR device_id = $2` |
//! | replay records (`jti`) | one `INSERT … ON CONFLICT DO UPDATE … WHERE expired` |
//! | a pushed request with its code challenge's record | the same insert in a `WITH`, and the request inserted only `WHERE EXISTS` its `RETURNING` row: one statement |
//! | device accounts | one transaction with the device row locked |
//! | sign-in limit buckets | one `INSERT … ON CONFLICT DO UPDATE … WHERE level >= 1` of the attempt's buckets in key order, rolled back if one was refused |
//!
//! **Migrations** ([`schema`]) are versioned (table `atauth_schema`) and run under a transaction-level
//! advisory lock, so instances starting together apply each migration once. An empty database is set
//! up on connect; an existing database of an older version is migrated only when asked
//! ([`PostgresOptions::migrate`], `atauth serve --migrate`), otherwise connecting fails with an error
//! that says so and writes nothing; a database of a newer version is always refused.

mod accounts;
mod clients;
mod devices;
mod factors;
mod legacy;
mod lexicons;
mod limits;
mod replay;
mod requests;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use self::legacy::PostgresLegacyStore;
use super::{StoreError, TokenHash};

/// How [`PostgresStore::connect_with`] opens the pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Largest number of connections in the pool (default 16).
    pub max_connections: u32,
    /// How long a store call waits for a free connection, or for a new one while the database is
    /// unreachable, before failing with [`StoreError::Backend`] (answered as `server_error`;
    /// default 5 s). The pool reconnects by itself when the database comes back.
    pub acquire_timeout: Duration,
    /// Apply pending migrations to a database of an older schema version (`atauth serve
    /// --migrate`). An empty database is always set up.
    pub migrate: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5), migrate: false }
    }
}

/// The Postgres store: every OAuth store trait ([`super::AccountStore`], [`super::RequestStore`],
/// [`super::TokenStore`], [`super::DeviceStore`], [`super::ReplayStore`],
/// [`super::ClientMetadataCache`]), the sign-in limit buckets
/// ([`crate::ratelimit::SignInLimitStore`]) and the permission-set cache
/// ([`atauth_identity::lexicon::LexiconCache`]); [`PostgresLegacyStore`] shares its pool. Cheap to
/// clone. See the module docs.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
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

/// Why [`PostgresStore::connect`] failed. Each is one clear message at start; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a `postgres://` / `postgresql://` URL sqlx understands.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The database could not be reached or refused the connection (host, port, credentials,
    /// database name).
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
        "the database schema is version {found}, older than this build's {expected}: \
         run with --migrate (PostgresOptions::migrate) to upgrade it"
    )]
    NeedsMigration {
        /// The stored version.
        found: i32,
        /// This build's version.
        expected: i32,
    },
    /// The schema is newer than this build's: an older binary must not write to it.
    #[error("the database schema is version {found}, newer than this build's {expected}: upgrade atauth")]
    TooNew {
        /// The stored version.
        found: i32,
        /// This build's version.
        expected: i32,
    },
    /// A migration failed (rolled back).
    #[error("migrating the database failed: {0}")]
    Migration(#[source] sqlx::Error),
}

impl PostgresStore {
    /// Connects with [`PostgresOptions::default`] and sets up an empty database. `url`:
    /// `postgres://user:password@host:port/database`, with libpq URL options such as
    /// `?sslmode=verify-full` (TLS through rustls; the default `prefer` uses TLS when offered).
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with `options`; see [`PostgresOptions::migrate`] for what happens to the schema.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, ConnectError> {
        // sqlx reads any scheme as Postgres; a `mysql://` or `redis://` URL here is a mistake.
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
        // One plain connection first: the pool would retry a refused connection until its timeout
        // and then report only that; this reports the cause (refused, bad password, no database).
        let probe = sqlx::PgConnection::connect_with(&connect)
            .await
            .map_err(|source| ConnectError::Connect { target: target.clone(), source })?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // No ping before every use (a round trip per store call): a connection broken by a
            // database restart fails its next call once (`server_error`) and is then replaced.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|source| ConnectError::Connect { target, source })?;
        schema::migrate(&pool, options.migrate).await?;
        Ok(Self { pool })
    }

    /// A store over an existing pool whose database is already at this build's schema (checked).
    pub async fn from_pool(pool: PgPool) -> Result<Self, ConnectError> {
        schema::migrate(&pool, false).await?;
        Ok(Self { pool })
    }

    /// The connection pool (shared with [`PostgresLegacyStore`]).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ------------------------------------------------------------------------------- row mapping ---

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Maps a unique violation to [`StoreError::Conflict`]`(what)`, anything else to a backend error.
fn conflict_or_backend(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(e),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash_from(v: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(v).map(TokenHash).map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into()))
}
