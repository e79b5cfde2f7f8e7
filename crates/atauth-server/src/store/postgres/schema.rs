//! The Postgres schema and its versioned migrations (table `atauth_schema`, one row: the version).
//!
//! Each migration runs once, in order, inside one transaction that also holds a transaction-level
//! advisory lock ([`MIGRATION_LOCK`]): instances starting at the same moment wait for each other
//! instead of applying a migration twice, and a failed migration leaves the database as it was
//! (Postgres DDL is transactional). Add a migration by appending to `MIGRATIONS`; never edit one
//! that has shipped.

use sqlx::postgres::PgPool;

use super::ConnectError;

/// The advisory-lock key the migrations hold (`"atauth"` in ASCII, then a 1).
pub const MIGRATION_LOCK: i64 = 0x6174_6175_7468_0001;

/// The migrations, version 1 first. `SCHEMA_VERSION` is their count.
const MIGRATIONS: &[&str] = &[
    // 1: the OAuth stores. Mirrors the SQLite schema; `rotated` of `refresh_tokens`: 0 current,
    // 1 rotated with no retry left, otherwise the Unix time of its rotation (see store::rules).
    "
CREATE TABLE accounts (
  did TEXT PRIMARY KEY, handle TEXT NOT NULL UNIQUE, email TEXT UNIQUE, password_hash TEXT NOT NULL,
  signing_key TEXT, created_at BIGINT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE par_requests (
  id TEXT PRIMARY KEY, request TEXT NOT NULL, dpop_jkt TEXT NOT NULL, client_auth TEXT NOT NULL,
  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, device_id TEXT
);
CREATE INDEX par_requests_expires ON par_requests (expires_at);
CREATE TABLE codes (
  hash BYTEA PRIMARY KEY, request TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL, client_auth TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, used BOOLEAN NOT NULL, session_id TEXT, device_id TEXT
);
CREATE INDEX codes_expires ON codes (expires_at);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY, client_id TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL, client_auth TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, refresh_hash BYTEA NOT NULL, refresh_expires_at BIGINT NOT NULL,
  access_jti TEXT NOT NULL, access_expires_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  device_id TEXT
);
CREATE UNIQUE INDEX sessions_access_jti ON sessions (access_jti);
CREATE INDEX sessions_sub ON sessions (sub);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE TABLE refresh_tokens (
  hash BYTEA PRIMARY KEY, session_id TEXT NOT NULL, rotated BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE TABLE device_sessions (
  id BYTEA PRIMARY KEY, accounts TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  user_agent TEXT
);
CREATE TABLE replay (key BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE INDEX replay_expires ON replay (expires_at);
CREATE TABLE client_cache (client_id TEXT PRIMARY KEY, json TEXT NOT NULL, expires_at BIGINT NOT NULL);
",
    // 2: legacy sessions (app passwords, legacy refresh tokens). `seq` keeps insertion order for
    // listing app passwords created in the same second.
    "
CREATE TABLE legacy_app_password (
  did TEXT NOT NULL, name TEXT NOT NULL, password_hash TEXT NOT NULL, privileged BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL, seq BIGSERIAL NOT NULL, PRIMARY KEY (did, name)
);
CREATE TABLE legacy_refresh_token (
  id TEXT PRIMARY KEY, did TEXT NOT NULL, app_password TEXT, privileged BOOLEAN NOT NULL,
  expires_at BIGINT NOT NULL, next_id TEXT
);
CREATE INDEX legacy_refresh_token_did ON legacy_refresh_token (did);
CREATE INDEX legacy_refresh_token_expires ON legacy_refresh_token (expires_at);
",
    // 3: the sign-in rate-limit buckets shared by the instances (keyed by SHA-256, see
    // store::postgres::limits) and the permission-set cache (SCOPE-11).
    "
CREATE TABLE sign_in_buckets (
  key BYTEA PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at DOUBLE PRECISION NOT NULL,
  burst DOUBLE PRECISION NOT NULL, rate DOUBLE PRECISION NOT NULL, full_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX sign_in_buckets_full ON sign_in_buckets (full_at);
CREATE TABLE lexicon_cache (nsid TEXT PRIMARY KEY, entry TEXT NOT NULL);
",
    // 4: sign-up invite codes (crate::signup). `used` counts the rows of `invite_code_uses`, so
    // that taking a use is one conditional UPDATE (the row lock orders racing instances).
    "
CREATE TABLE invite_codes (
  code TEXT PRIMARY KEY, uses_allowed INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,
  disabled BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL
);
CREATE TABLE invite_code_uses (
  code TEXT NOT NULL, did TEXT NOT NULL, used_at BIGINT NOT NULL, PRIMARY KEY (code, did)
);
",
    // 5: second factors, recovery codes and pending second-factor states (crate::store::factors).
    // The unique constraints decide between instances adding the same name or credential id.
    "
CREATE TABLE account_factors (
  did TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  credential_id TEXT CONSTRAINT account_factors_credential_id_key UNIQUE,
  data TEXT NOT NULL, counter BIGINT NOT NULL, created_at BIGINT NOT NULL, last_used_at BIGINT,
  PRIMARY KEY (did, id), CONSTRAINT account_factors_name_key UNIQUE (did, kind, name)
);
CREATE TABLE recovery_codes (
  did TEXT NOT NULL, code_hash BYTEA NOT NULL, used_at BIGINT, PRIMARY KEY (did, code_hash)
);
CREATE TABLE pending_factors (
  key BYTEA PRIMARY KEY, did TEXT NOT NULL, data TEXT NOT NULL, expires_at BIGINT NOT NULL
);
CREATE INDEX pending_factors_expires ON pending_factors (expires_at);
",
];

/// This build's schema version.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the database to [`SCHEMA_VERSION`]: sets up an empty one, upgrades an older one only with
/// `upgrade` (else [`ConnectError::NeedsMigration`], nothing written), refuses a newer one.
pub(super) async fn migrate(pool: &PgPool, upgrade: bool) -> Result<(), ConnectError> {
    migrate_to(pool, SCHEMA_VERSION, upgrade).await
}

/// [`migrate`] to `target` (≤ [`SCHEMA_VERSION`]); `target` below it is for tests that make a
/// database of an older version.
pub(super) async fn migrate_to(pool: &PgPool, target: i32, upgrade: bool) -> Result<(), ConnectError> {
    let m = ConnectError::Migration;
    let mut tx = pool.begin().await.map_err(m)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(m)?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('atauth_schema') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await
        .map_err(m)?;
    let found: i32 = if exists {
        sqlx::query_scalar("SELECT version FROM atauth_schema").fetch_one(&mut *tx).await.map_err(m)?
    } else {
        0
    };
    if found > SCHEMA_VERSION {
        return Err(ConnectError::TooNew { found, expected: SCHEMA_VERSION });
    }
    if found >= target {
        return Ok(());
    }
    if found > 0 && !upgrade {
        // Dropping `tx` rolls back: the lock goes, nothing was written.
        return Err(ConnectError::NeedsMigration { found, expected: SCHEMA_VERSION });
    }
    if !exists {
        sqlx::query("CREATE TABLE atauth_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(m)?;
        sqlx::query("INSERT INTO atauth_schema (version) VALUES (0)").execute(&mut *tx).await.map_err(m)?;
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(usize::try_from(target).unwrap_or(0))
        .skip(usize::try_from(found).unwrap_or(0))
    {
        // A multi-statement string runs through the simple query protocol (no binds).
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(m)?;
        tracing::info!(version = i + 1, "applied Postgres migration");
    }
    sqlx::query("UPDATE atauth_schema SET version = $1").bind(target).execute(&mut *tx).await.map_err(m)?;
    tx.commit().await.map_err(m)
}
