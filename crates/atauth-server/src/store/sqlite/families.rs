//! Token families ("sessions") on SQLite: tables `sessions` and `refresh_tokens` (every refresh
//! token a family was issued, current or rotated). The row mapping and the steps the code and
//! refresh operations of [`super::tokens`] share.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{backend, from_json, hash_from, to_json};
use crate::store::{SessionRecord, StoreError};

pub(super) const SESSION_COLS: &str = "id, client_id, sub, scope, dpop_jkt, client_auth, created_at, expires_at, \
     refresh_hash, refresh_expires_at, access_jti, access_expires_at, updated_at, device_id";

pub(super) struct SessionRow {
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

pub(super) fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
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

pub(super) fn finish_session(r: SessionRow) -> Result<SessionRecord, StoreError> {
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

pub(super) fn load_session(conn: &Connection, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1"))
        .map_err(backend)?;
    stmt.query_row([id], session_row).optional().map_err(backend)?.map(finish_session).transpose()
}

pub(super) fn insert_session(conn: &Connection, s: &SessionRecord) -> Result<(), StoreError> {
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

pub(super) fn revoke_in(conn: &Connection, id: &str) -> Result<bool, StoreError> {
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
