//! The schema of the SQLite store and its migrations (`PRAGMA user_version`).

use rusqlite::Connection;

use super::backend;
use crate::store::StoreError;

/// 2: device sessions hold several accounts (`device_sessions`, replacing `devices`).
/// 3: sign-up invite codes (`invite_codes`, `invite_code_uses`).
/// 4: second factors (`account_factors`, `recovery_codes`, `pending_factors`).
/// 5: keyed refresh tokens ([`crate::store::RefreshKey`]): `sessions.prev_refresh_hash` and
///    `sessions.prev_rotated_at` hold the token the latest rotation replaced, so a rotation of a
///    keyed token writes the `sessions` row alone. An older binary would not find keyed tokens
///    (it looks every token up in `refresh_tokens`), hence the version.
pub(super) const SCHEMA_VERSION: i64 = 5;

/// Run before [`SCHEMA`] on a database of an older version. Device sessions are short-lived browser
/// sign-ins, so the old table is dropped rather than converted: users sign in again.
const MIGRATE_TO_2: &str = "DROP TABLE IF EXISTS devices;";

/// Run on a database older than 3 (a new database too): the invite codes of sign-up
/// ([`crate::signup`]). `used` counts the rows of `invite_code_uses`, so that taking a use is one
/// conditional `UPDATE`.
const MIGRATE_TO_3: &str = "
CREATE TABLE IF NOT EXISTS invite_codes (
  code TEXT PRIMARY KEY, uses_allowed INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS invite_code_uses (
  code TEXT NOT NULL, did TEXT NOT NULL, used_at INTEGER NOT NULL, PRIMARY KEY (code, did)
) WITHOUT ROWID;
";

/// Run on a database older than 4 (a new database too): second factors, recovery codes and
/// pending second-factor states ([`crate::store::factors`]).
const MIGRATE_TO_4: &str = "
CREATE TABLE IF NOT EXISTS account_factors (
  did TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, credential_id TEXT UNIQUE,
  data TEXT NOT NULL, counter INTEGER NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER,
  PRIMARY KEY (did, id), UNIQUE (did, kind, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recovery_codes (
  did TEXT NOT NULL, code_hash BLOB NOT NULL, used_at INTEGER, PRIMARY KEY (did, code_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_factors (
  key BLOB PRIMARY KEY, did TEXT NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Added to `sessions` on a database older than 5 (a new database gets them from [`SCHEMA`]), each
/// only where it is missing. `prev_rotated_at` uses the markers of `refresh_tokens.rotated`
/// ([`crate::store::rules`]); 1 = no retry left.
const MIGRATE_TO_5: [(&str, &str); 2] = [
    ("prev_refresh_hash", "ALTER TABLE sessions ADD COLUMN prev_refresh_hash BLOB"),
    ("prev_rotated_at", "ALTER TABLE sessions ADD COLUMN prev_rotated_at INTEGER NOT NULL DEFAULT 1"),
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
  did TEXT PRIMARY KEY, handle TEXT NOT NULL UNIQUE, email TEXT UNIQUE, password_hash TEXT NOT NULL,
  signing_key TEXT, created_at INTEGER NOT NULL, status TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS par_requests (
  id TEXT PRIMARY KEY, request TEXT NOT NULL, dpop_jkt TEXT NOT NULL, client_auth TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, device_id TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS codes (
  hash BLOB PRIMARY KEY, request TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL, client_auth TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, used INTEGER NOT NULL, session_id TEXT, device_id TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, client_id TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL, client_auth TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, refresh_hash BLOB NOT NULL, refresh_expires_at INTEGER NOT NULL,
  access_jti TEXT NOT NULL, access_expires_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  device_id TEXT, prev_refresh_hash BLOB, prev_rotated_at INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS sessions_access_jti ON sessions(access_jti);
CREATE INDEX IF NOT EXISTS sessions_sub ON sessions(sub);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_at);
-- Tokens found by hash: unkeyed ones (issued before schema 4) and each family's first token.
-- rotated: 0 current; 1 rotated with no retry left; otherwise the Unix time of its rotation.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  hash BLOB PRIMARY KEY, session_id TEXT NOT NULL, rotated INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens(session_id);
CREATE TABLE IF NOT EXISTS device_sessions (
  id BLOB PRIMARY KEY, accounts TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  user_agent TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay (key BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_cache (
  client_id TEXT PRIMARY KEY, json TEXT NOT NULL, expires_at INTEGER NOT NULL
) WITHOUT ROWID;
-- Resolved permission-set Lexicons (SCOPE-11): a `CachedLexicon` as JSON, freshness decided by
-- the resolver. Added without a version bump: CREATE IF NOT EXISTS on every open.
CREATE TABLE IF NOT EXISTS lexicon_cache (nsid TEXT PRIMARY KEY, entry TEXT NOT NULL) WITHOUT ROWID;
";

/// The legacy session tables ([`super::SqliteLegacyStore`]), created by
/// [`super::SqliteLegacyStore::in_store`] next to the OAuth tables.
pub(super) const LEGACY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS legacy_app_password (
    did TEXT NOT NULL, name TEXT NOT NULL, password_hash TEXT NOT NULL,
    privileged INTEGER NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (did, name));
CREATE TABLE IF NOT EXISTS legacy_refresh_token (
    id TEXT PRIMARY KEY, did TEXT NOT NULL, app_password TEXT, privileged INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, next_id TEXT);
CREATE INDEX IF NOT EXISTS legacy_refresh_token_did ON legacy_refresh_token (did);
";

/// Brings the database up to [`SCHEMA_VERSION`] on the writer connection. Refuses a newer version.
pub(super) fn migrate(writer: &Connection) -> Result<(), StoreError> {
    let version: i64 = writer.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    if version < 2 {
        writer.execute_batch(MIGRATE_TO_2).map_err(backend)?;
    }
    if version < 3 {
        writer.execute_batch(MIGRATE_TO_3).map_err(backend)?;
    }
    if version < 4 {
        writer.execute_batch(MIGRATE_TO_4).map_err(backend)?;
    }
    if version < 5 {
        // No `sessions` yet on a new database: SCHEMA creates it with the columns.
        let has_sessions: bool = writer
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions')",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        if has_sessions {
            for (column, add) in MIGRATE_TO_5 {
                let present: bool = writer
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('sessions') WHERE name = ?1)",
                        [column],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if !present {
                    writer.execute_batch(add).map_err(backend)?;
                }
            }
        }
    }
    writer.execute_batch(SCHEMA).map_err(backend)?;
    writer.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(backend)?;
    Ok(())
}
