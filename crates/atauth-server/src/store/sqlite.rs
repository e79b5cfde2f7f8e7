//! SQLite backend (the default): one database file in the data directory, WAL journal,
//! `synchronous=NORMAL`, cached prepared statements. Calls run on the store's own threads, never on
//! the async workers: one writer that group-commits concurrent writes (each write in its own
//! savepoint, so every read-then-write operation stays atomic and a failed one is undone alone),
//! and a few readers (see `sqlite_threads`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::memory::{
    Presented, ROTATED_AT_CURRENT, ROTATED_AT_NO_RETRY, Verdict, apply_rotation, judge_rotation,
    remove_accounts, rotated_at_marker, upsert_account,
};
use super::sqlite_threads::Threads;
use super::{
    AccountRecord, AccountStatus, AccountStore, AuthorizationRequest, ClientAuthBinding, ClientMetadataCache,
    CodeRecord, DeviceAccount, DeviceSession, DeviceStore, PendingRequest, RedeemOutcome, ReplayStore,
    RequestStore, RotateOutcome, Rotation, SessionRecord, StoreError, TokenHash, TokenStore,
};
use atauth_crypto::SecretString;

/// 2: device sessions hold several accounts (`device_sessions`, replacing `devices`).
const SCHEMA_VERSION: i64 = 2;

/// Run before [`SCHEMA`] on a database of an older version. Device sessions are short-lived browser
/// sign-ins, so the old table is dropped rather than converted: users sign in again.
const MIGRATE_TO_2: &str = "DROP TABLE IF EXISTS devices;";

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
  device_id TEXT
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS sessions_access_jti ON sessions(access_jti);
CREATE INDEX IF NOT EXISTS sessions_sub ON sessions(sub);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_at);
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
";

struct Inner {
    /// `None` only while dropping: the threads stop (and close their connections) first.
    threads: Option<Threads>,
    path: PathBuf,
    delete_on_drop: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.threads.take();
        if self.delete_on_drop {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// The SQLite store. Cheap to clone. See the module docs.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it. Blocking: call at startup.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), false)
    }

    /// A fresh database in the system temporary directory, deleted when the last clone drops. For
    /// tests.
    pub fn open_temp() -> Result<Self, StoreError> {
        let name = format!("atauth-test-{}.sqlite", hex::encode(atauth_crypto::random::random_bytes::<8>()));
        Self::open_inner(&std::env::temp_dir().join(name), true)
    }

    fn open_inner(path: &Path, delete_on_drop: bool) -> Result<Self, StoreError> {
        let writer = open_connection(path).map_err(backend)?;
        let version: i64 = writer.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} is newer than this build's {SCHEMA_VERSION}"
            )));
        }
        if version < 2 {
            writer.execute_batch(MIGRATE_TO_2).map_err(backend)?;
        }
        writer.execute_batch(SCHEMA).map_err(backend)?;
        writer.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(backend)?;
        let threads = Threads::start(writer, path, open_connection)?;
        Ok(Self { inner: Arc::new(Inner { threads: Some(threads), path: path.to_owned(), delete_on_drop }) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn threads(&self) -> Result<&Threads, StoreError> {
        self.inner.threads.as_ref().ok_or_else(|| StoreError::Backend("the SQLite store is closing".into()))
    }

    /// Runs `f` on the writer thread, inside a savepoint of the current batch transaction: `Err`
    /// undoes everything `f` wrote. Answers after the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads()?.write(f).await
    }

    /// Runs `f` on a reader thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.threads()?.read(f).await
    }
}

// ------------------------------------------------------------------------------- row mapping ---

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash_from(v: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(v).map(TokenHash).map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into()))
}

const ACCOUNT_COLS: &str = "did, handle, email, password_hash, signing_key, created_at, status";

fn account_row(r: &Row<'_>) -> rusqlite::Result<(AccountRecord, String)> {
    Ok((
        AccountRecord {
            did: r.get(0)?,
            handle: r.get(1)?,
            email: r.get(2)?,
            password_hash: SecretString::new(r.get::<_, String>(3)?),
            signing_key_hex: r.get::<_, Option<String>>(4)?.map(SecretString::new),
            created_at: r.get(5)?,
            status: AccountStatus::Active,
        },
        r.get(6)?,
    ))
}

fn finish_account(row: Option<(AccountRecord, String)>) -> Result<Option<AccountRecord>, StoreError> {
    row.map(|(mut a, status)| {
        a.status = AccountStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown account status {status:?}")))?;
        Ok(a)
    })
    .transpose()
}

const REQUEST_COLS: &str = "id, request, dpop_jkt, client_auth, created_at, expires_at, device_id";

type RequestRow = (String, String, String, String, i64, i64, Option<String>);

fn request_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn finish_request(row: RequestRow) -> Result<PendingRequest, StoreError> {
    let (id, request, dpop_jkt, client_auth, created_at, expires_at, device_id) = row;
    Ok(PendingRequest {
        id,
        request: from_json::<AuthorizationRequest>(&request)?,
        dpop_jkt,
        client_auth: from_json::<ClientAuthBinding>(&client_auth)?,
        created_at,
        expires_at,
        device_id,
    })
}

const CODE_COLS: &str =
    "hash, request, sub, scope, dpop_jkt, client_auth, created_at, expires_at, used, session_id, device_id";

type CodeRow =
    (Vec<u8>, String, String, String, String, String, i64, i64, bool, Option<String>, Option<String>);

fn code_row(r: &Row<'_>) -> rusqlite::Result<CodeRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn finish_code(row: CodeRow) -> Result<CodeRecord, StoreError> {
    let (
        hash,
        request,
        sub,
        scope,
        dpop_jkt,
        client_auth,
        created_at,
        expires_at,
        used,
        session_id,
        device_id,
    ) = row;
    Ok(CodeRecord {
        code_hash: hash_from(&hash)?,
        request: from_json(&request)?,
        sub,
        scope,
        dpop_jkt,
        client_auth: from_json(&client_auth)?,
        created_at,
        expires_at,
        used,
        session_id,
        device_id,
    })
}

const SESSION_COLS: &str = "id, client_id, sub, scope, dpop_jkt, client_auth, created_at, expires_at, \
     refresh_hash, refresh_expires_at, access_jti, access_expires_at, updated_at, device_id";

struct SessionRow {
    id: String,
    client_id: String,
    sub: String,
    scope: String,
    dpop_jkt: String,
    client_auth: String,
    created_at: i64,
    expires_at: i64,
    refresh_hash: Vec<u8>,
    refresh_expires_at: i64,
    access_jti: String,
    access_expires_at: i64,
    updated_at: i64,
    device_id: Option<String>,
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        client_id: r.get(1)?,
        sub: r.get(2)?,
        scope: r.get(3)?,
        dpop_jkt: r.get(4)?,
        client_auth: r.get(5)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        refresh_hash: r.get(8)?,
        refresh_expires_at: r.get(9)?,
        access_jti: r.get(10)?,
        access_expires_at: r.get(11)?,
        updated_at: r.get(12)?,
        device_id: r.get(13)?,
    })
}

fn finish_session(r: SessionRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: r.id,
        client_id: r.client_id,
        sub: r.sub,
        scope: r.scope,
        dpop_jkt: r.dpop_jkt,
        client_auth: from_json(&r.client_auth)?,
        created_at: r.created_at,
        expires_at: r.expires_at,
        refresh_hash: hash_from(&r.refresh_hash)?,
        refresh_expires_at: r.refresh_expires_at,
        access_jti: r.access_jti,
        access_expires_at: r.access_expires_at,
        updated_at: r.updated_at,
        device_id: r.device_id,
    })
}

fn load_session(conn: &Connection, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1"))
        .map_err(backend)?;
    stmt.query_row([id], session_row).optional().map_err(backend)?.map(finish_session).transpose()
}

fn insert_session(conn: &Connection, s: &SessionRecord) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "INSERT INTO sessions ({SESSION_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
        ))
        .map_err(backend)?;
    stmt.execute(params![
        s.id,
        s.client_id,
        s.sub,
        s.scope,
        s.dpop_jkt,
        to_json(&s.client_auth)?,
        s.created_at,
        s.expires_at,
        &s.refresh_hash.0[..],
        s.refresh_expires_at,
        s.access_jti,
        s.access_expires_at,
        s.updated_at,
        s.device_id,
    ])
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict("session id"),
        _ => backend(e),
    })?;
    let mut stmt = conn
        .prepare_cached("INSERT INTO refresh_tokens (hash, session_id, rotated) VALUES (?1, ?2, 0)")
        .map_err(backend)?;
    stmt.execute(params![&s.refresh_hash.0[..], s.id]).map_err(backend)?;
    Ok(())
}

fn revoke_in(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")
        .map_err(backend)?
        .execute([id])
        .map_err(backend)?;
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE session_id = ?1")
        .map_err(backend)?
        .execute([id])
        .map_err(backend)?;
    Ok(n > 0)
}

// ------------------------------------------------------------------------------------ accounts ---

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, a: AccountRecord) -> Result<(), StoreError> {
        self.write(move |c| {
            let exists = |sql: &str, v: &str| -> Result<bool, StoreError> {
                c.query_row(sql, [v], |_| Ok(())).optional().map(|o| o.is_some()).map_err(backend)
            };
            if exists("SELECT 1 FROM accounts WHERE did = ?1", &a.did)? {
                return Err(StoreError::Conflict("did"));
            }
            if exists("SELECT 1 FROM accounts WHERE handle = ?1", &a.handle)? {
                return Err(StoreError::Conflict("handle"));
            }
            if let Some(email) = &a.email
                && exists("SELECT 1 FROM accounts WHERE email = ?1", email)?
            {
                return Err(StoreError::Conflict("email"));
            }
            c.execute(
                &format!("INSERT INTO accounts ({ACCOUNT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
                params![
                    a.did,
                    a.handle,
                    a.email,
                    a.password_hash.expose_secret(),
                    a.signing_key_hex.as_ref().map(|k| k.expose_secret().to_owned()),
                    a.created_at,
                    a.status.as_str()
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn account_by_did(&self, did: &str) -> Result<Option<AccountRecord>, StoreError> {
        let did = did.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE did = ?1"))
                .map_err(backend)?;
            finish_account(st.query_row([did], account_row).optional().map_err(backend)?)
        })
        .await
    }

    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError> {
        let handle = handle.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE handle = ?1"))
                .map_err(backend)?;
            finish_account(st.query_row([handle], account_row).optional().map_err(backend)?)
        })
        .await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        let email = email.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE email = ?1"))
                .map_err(backend)?;
            finish_account(st.query_row([email], account_row).optional().map_err(backend)?)
        })
        .await
    }

    async fn set_account_status(&self, did: &str, status: AccountStatus) -> Result<bool, StoreError> {
        let did = did.to_owned();
        self.write(move |c| {
            c.execute("UPDATE accounts SET status = ?2 WHERE did = ?1", params![did, status.as_str()])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn set_password_hash(&self, did: &str, hash: &SecretString) -> Result<bool, StoreError> {
        let did = did.to_owned();
        let hash = hash.clone();
        self.write(move |c| {
            c.execute(
                "UPDATE accounts SET password_hash = ?2 WHERE did = ?1",
                params![did, hash.expose_secret()],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }
}

// ------------------------------------------------------------------------------------ requests ---

#[async_trait]
impl RequestStore for SqliteStore {
    async fn put_request(&self, r: PendingRequest) -> Result<(), StoreError> {
        let request = to_json(&r.request)?;
        let auth = to_json(&r.client_auth)?;
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO par_requests ({REQUEST_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"
            ))
            .map_err(backend)?
            .execute(params![r.id, request, r.dpop_jkt, auth, r.created_at, r.expires_at, r.device_id])
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict("request id"),
                _ => backend(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn get_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLS} FROM par_requests WHERE id = ?1 AND expires_at > ?2"
                ))
                .map_err(backend)?;
            st.query_row(params![id, now], request_row)
                .optional()
                .map_err(backend)?
                .map(finish_request)
                .transpose()
        })
        .await
    }

    async fn bind_request_device(&self, id: &str, device_id: &str, now: i64) -> Result<bool, StoreError> {
        let (id, device_id) = (id.to_owned(), device_id.to_owned());
        self.write(move |c| {
            let bound: Option<Option<String>> = c
                .query_row(
                    "SELECT device_id FROM par_requests WHERE id = ?1 AND expires_at > ?2",
                    params![id, now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let ok = match bound {
                None => false,
                Some(Some(d)) => d == device_id,
                Some(None) => {
                    c.execute("UPDATE par_requests SET device_id = ?2 WHERE id = ?1", params![id, device_id])
                        .map_err(backend)?;
                    true
                }
            };
            Ok(ok)
        })
        .await
    }

    async fn take_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            let row = c
                .prepare_cached(&format!("DELETE FROM par_requests WHERE id = ?1 RETURNING {REQUEST_COLS}"))
                .map_err(backend)?
                .query_row([id], request_row)
                .optional()
                .map_err(backend)?;
            match row {
                Some(r) if r.5 > now => finish_request(r).map(Some),
                _ => Ok(None),
            }
        })
        .await
    }
}

// -------------------------------------------------------------------------------------- tokens ---

#[async_trait]
impl TokenStore for SqliteStore {
    async fn put_code(&self, code: CodeRecord) -> Result<(), StoreError> {
        let request = to_json(&code.request)?;
        let auth = to_json(&code.client_auth)?;
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO codes ({CODE_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
            ))
            .map_err(backend)?
            .execute(params![
                &code.code_hash.0[..],
                request,
                code.sub,
                code.scope,
                code.dpop_jkt,
                auth,
                code.created_at,
                code.expires_at,
                code.used,
                code.session_id,
                code.device_id
            ])
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict("code"),
                _ => backend(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn get_code(&self, hash: &TokenHash) -> Result<Option<CodeRecord>, StoreError> {
        let hash = *hash;
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {CODE_COLS} FROM codes WHERE hash = ?1"))
                .map_err(backend)?;
            st.query_row([&hash.0[..]], code_row).optional().map_err(backend)?.map(finish_code).transpose()
        })
        .await
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: i64,
        session: SessionRecord,
    ) -> Result<RedeemOutcome, StoreError> {
        let hash = *hash;
        self.write(move |c| {
            let row: Option<(bool, Option<String>, i64)> = c
                .prepare_cached("SELECT used, session_id, expires_at FROM codes WHERE hash = ?1")
                .map_err(backend)?
                .query_row([&hash.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(backend)?;
            let outcome = match row {
                None => RedeemOutcome::NotFound,
                Some((true, sid, _)) => {
                    if let Some(sid) = sid {
                        revoke_in(c, &sid)?;
                    }
                    RedeemOutcome::Reused
                }
                Some((false, _, exp)) if exp <= now => {
                    c.execute("DELETE FROM codes WHERE hash = ?1", [&hash.0[..]]).map_err(backend)?;
                    RedeemOutcome::Expired
                }
                Some((false, _, _)) => {
                    c.prepare_cached("UPDATE codes SET used = 1, session_id = ?2 WHERE hash = ?1")
                        .map_err(backend)?
                        .execute(params![&hash.0[..], session.id])
                        .map_err(backend)?;
                    insert_session(c, &session)?;
                    RedeemOutcome::Redeemed
                }
            };
            Ok(outcome)
        })
        .await
    }

    async fn rotate_refresh(&self, old: &TokenHash, r: Rotation) -> Result<RotateOutcome, StoreError> {
        let old = *old;
        self.write(move |c| {
            let found: Option<(String, i64)> = c
                .prepare_cached("SELECT session_id, rotated FROM refresh_tokens WHERE hash = ?1")
                .map_err(backend)?
                .query_row([&old.0[..]], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .map_err(backend)?;
            let Some((sid, rotated_at)) = found else {
                return Ok(RotateOutcome::NotFound);
            };
            let Some(mut session) = load_session(c, &sid)? else {
                c.execute("DELETE FROM refresh_tokens WHERE session_id = ?1", [&sid]).map_err(backend)?;
                return Ok(RotateOutcome::NotFound);
            };
            // Only on the replay path: was this token replaced by the family's latest rotation (no
            // other token of the family rotated at or after it)?
            let latest = || -> Result<bool, StoreError> {
                let later: Option<i64> = c
                    .prepare_cached(
                        "SELECT 1 FROM refresh_tokens WHERE session_id = ?1 AND rotated >= ?2 AND hash != ?3",
                    )
                    .map_err(backend)?
                    .query_row(params![sid, rotated_at, &old.0[..]], |row| row.get(0))
                    .optional()
                    .map_err(backend)?;
                Ok(later.is_none())
            };
            let in_window = r.retry_grace > 0 && r.now - rotated_at <= r.retry_grace;
            let is_latest = rotated_at > ROTATED_AT_NO_RETRY && in_window && latest()?;
            let presented = Presented::from_rotated_at(rotated_at, || is_latest);
            let retry = match judge_rotation(&session, presented, &r) {
                Verdict::Refuse(refusal) => {
                    revoke_in(c, &sid)?;
                    return Ok(refusal);
                }
                Verdict::Rotate => false,
                Verdict::Retry => true,
            };
            let mut mark = c
                .prepare_cached("UPDATE refresh_tokens SET rotated = ?2 WHERE hash = ?1")
                .map_err(backend)?;
            if retry {
                // The undelivered successor and this token's one retry are both spent.
                mark.execute(params![&old.0[..], ROTATED_AT_NO_RETRY]).map_err(backend)?;
                mark.execute(params![&session.refresh_hash.0[..], ROTATED_AT_NO_RETRY]).map_err(backend)?;
            } else {
                mark.execute(params![&old.0[..], rotated_at_marker(r.now)]).map_err(backend)?;
            }
            drop(mark);
            apply_rotation(&mut session, &r);
            c.prepare_cached("INSERT INTO refresh_tokens (hash, session_id, rotated) VALUES (?1, ?2, ?3)")
                .map_err(backend)?
                .execute(params![&session.refresh_hash.0[..], sid, ROTATED_AT_CURRENT])
                .map_err(backend)?;
            c.prepare_cached(
                "UPDATE sessions SET refresh_hash = ?2, refresh_expires_at = ?3, access_jti = ?4, \
                 access_expires_at = ?5, client_auth = ?6, updated_at = ?7 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                sid,
                &session.refresh_hash.0[..],
                session.refresh_expires_at,
                session.access_jti,
                session.access_expires_at,
                to_json(&session.client_auth)?,
                session.updated_at
            ])
            .map_err(backend)?;
            Ok(if retry { RotateOutcome::Retried(session) } else { RotateOutcome::Rotated(session) })
        })
        .await
    }

    async fn session_by_access_jti(&self, jti: &str, now: i64) -> Result<Option<SessionRecord>, StoreError> {
        let jti = jti.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE access_jti = ?1 AND access_expires_at > ?2 \
                     AND expires_at > ?2"
                ))
                .map_err(backend)?;
            st.query_row(params![jti, now], session_row)
                .optional()
                .map_err(backend)?
                .map(finish_session)
                .transpose()
        })
        .await
    }

    async fn session_by_refresh(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        let hash = *hash;
        self.read(move |c| {
            let sid: Option<String> = c
                .prepare_cached("SELECT session_id FROM refresh_tokens WHERE hash = ?1")
                .map_err(backend)?
                .query_row([&hash.0[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            match sid {
                Some(sid) => load_session(c, &sid),
                None => Ok(None),
            }
        })
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| load_session(c, &id)).await
    }

    async fn sessions_for_account(&self, sub: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let sub = sub.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE sub = ?1 AND expires_at > ?2 ORDER BY created_at, id"
                ))
                .map_err(backend)?;
            let rows = st.query_map(params![sub, now], session_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(finish_session)).collect()
        })
        .await
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            let found = revoke_in(c, &id)?;
            Ok(found)
        })
        .await
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            let codes = c.execute("DELETE FROM codes WHERE expires_at <= ?1", [now]).map_err(backend)?;
            c.execute(
                "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE expires_at <= ?1)",
                [now],
            )
            .map_err(backend)?;
            let sessions = c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now]).map_err(backend)?;
            c.execute("DELETE FROM par_requests WHERE expires_at <= ?1", [now]).map_err(backend)?;
            Ok(u64::try_from(codes + sessions).unwrap_or(0))
        })
        .await
    }
}

// ------------------------------------------------------------------------------------- devices ---

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn put_device(&self, d: DeviceSession) -> Result<(), StoreError> {
        let accounts = to_json(&d.accounts)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO device_sessions (id, accounts, created_at, expires_at, user_agent) \
                 VALUES (?1,?2,?3,?4,?5)",
            )
            .map_err(backend)?
            .execute(params![&d.id.0[..], accounts, d.created_at, d.expires_at, d.user_agent])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_device(&self, id: &TokenHash, now: i64) -> Result<Option<DeviceSession>, StoreError> {
        let id = *id;
        let row = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT accounts, created_at, expires_at, user_agent FROM device_sessions \
                     WHERE id = ?1 AND expires_at > ?2",
                )
                .map_err(backend)?
                .query_row(params![&id.0[..], now], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
                .map_err(backend)
            })
            .await?;
        row.map(|(accounts, created_at, expires_at, user_agent)| {
            Ok(DeviceSession { id, accounts: from_json(&accounts)?, created_at, expires_at, user_agent })
        })
        .transpose()
    }

    async fn upsert_device_account(
        &self,
        id: &TokenHash,
        account: DeviceAccount,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = *id;
        self.write(move |c| {
            let found: Option<(String, i64)> = c
                .query_row(
                    "SELECT accounts, expires_at FROM device_sessions WHERE id = ?1 AND expires_at > ?2",
                    params![&id.0[..], now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((json, old_expiry)) = found else { return Ok(false) };
            let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
            upsert_account(&mut accounts, account);
            c.execute(
                "UPDATE device_sessions SET accounts = ?2, expires_at = ?3 WHERE id = ?1",
                params![&id.0[..], to_json(&accounts)?, old_expiry.max(expires_at)],
            )
            .map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn remove_device_accounts(&self, id: &TokenHash, did: Option<&str>) -> Result<u64, StoreError> {
        let (id, did) = (*id, did.map(str::to_owned));
        self.write(move |c| {
            let found: Option<String> = c
                .query_row("SELECT accounts FROM device_sessions WHERE id = ?1", [&id.0[..]], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let Some(json) = found else { return Ok(0) };
            let mut accounts: Vec<DeviceAccount> = from_json(&json)?;
            let removed = remove_accounts(&mut accounts, did.as_deref());
            if removed > 0 {
                c.execute(
                    "UPDATE device_sessions SET accounts = ?2 WHERE id = ?1",
                    params![&id.0[..], to_json(&accounts)?],
                )
                .map_err(backend)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn delete_device(&self, id: &TokenHash) -> Result<bool, StoreError> {
        let id = *id;
        self.write(move |c| {
            c.execute("DELETE FROM device_sessions WHERE id = ?1", [&id.0[..]])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn purge_expired_devices(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute("DELETE FROM device_sessions WHERE expires_at <= ?1", [now])
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(backend)
        })
        .await
    }
}

// -------------------------------------------------------------------------------------- replay ---

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError> {
        self.write(move |c| {
            // One statement: insert, or take over an expired record; `changes() == 0` is a replay.
            let n = c
                .prepare_cached(
                    "INSERT INTO replay (key, expires_at) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE \
                     SET expires_at = excluded.expires_at WHERE replay.expires_at <= ?3",
                )
                .map_err(backend)?
                .execute(params![&key[..], expires_at, now])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute("DELETE FROM replay WHERE expires_at <= ?1", [now])
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(backend)
        })
        .await
    }
}

// -------------------------------------------------------------------------------- client cache ---

#[async_trait]
impl ClientMetadataCache for SqliteStore {
    async fn get_client(&self, client_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT json FROM client_cache WHERE client_id = ?1 AND expires_at > ?2")
                .map_err(backend)?
                .query_row(params![client_id, now], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn put_client(&self, client_id: &str, json: &str, expires_at: i64) -> Result<(), StoreError> {
        let (client_id, json) = (client_id.to_owned(), json.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO client_cache (client_id, json, expires_at) VALUES (?1,?2,?3)",
            )
            .map_err(backend)?
            .execute(params![client_id, json, expires_at])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn remove_client(&self, client_id: &str) -> Result<(), StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM client_cache WHERE client_id = ?1", [client_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}
