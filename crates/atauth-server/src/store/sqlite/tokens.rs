//! [`TokenStore`] on SQLite: authorization codes (table `codes`) and the token families of
//! [`super::families`]. Redemption and rotation are each one write job, so one transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::families::{SESSION_COLS, finish_session, insert_session, load_session, revoke_in, session_row};
use super::{SqliteStore, backend, from_json, hash_from, to_json};
use crate::store::rules::{
    Presented, ROTATED_AT_CURRENT, ROTATED_AT_NO_RETRY, Verdict, apply_rotation, judge_rotation,
    presented_keyed, previous_after, rotated_at_marker,
};
use crate::store::{
    CodeRecord, RedeemOutcome, RefreshKey, RotateOutcome, Rotation, SessionRecord, StoreError, TokenHash,
    TokenStore,
};

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

    async fn rotate_refresh(&self, old: &RefreshKey, r: Rotation) -> Result<RotateOutcome, StoreError> {
        let old = old.clone();
        self.write(move |c| match &old.family {
            Some(family) => rotate_keyed(c, family, &old.hash, &r),
            None => rotate_by_hash(c, &old.hash, &r),
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

    async fn session_by_refresh(&self, key: &RefreshKey) -> Result<Option<SessionRecord>, StoreError> {
        let (hash, family) = (key.hash, key.family.clone());
        self.read(move |c| {
            if let Some(family) = family {
                return load_session(c, &family);
            }
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

    async fn revoke_account_sessions(
        &self,
        sub: &str,
        client_id: Option<&str>,
        device_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (sub, client_id, device_id) =
            (sub.to_owned(), client_id.map(str::to_owned), device_id.map(str::to_owned));
        self.write(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT id FROM sessions WHERE sub = ?1 AND (?2 IS NULL OR client_id = ?2) \
                     AND (?3 IS NULL OR device_id = ?3)",
                )
                .map_err(backend)?
                .query_map(params![sub, client_id, device_id], |r| r.get(0))
                .map_err(backend)?
                .collect::<rusqlite::Result<_>>()
                .map_err(backend)?;
            let mut n = 0;
            for id in &ids {
                n += u64::from(revoke_in(c, id)?);
            }
            Ok(n)
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

/// Rotation of a keyed token ([`RefreshKey`]): the family by its id, the presented token judged
/// against the family's current and previous token, and one `UPDATE` of the `sessions` row (no
/// `refresh_tokens` row is read or written: the hot path of issue 18). The previous token is the
/// one the latest rotation replaced, whatever the time, so two rotations in the same second leave
/// the latest one retryable (which the by-hash path, comparing whole-second times, cannot).
fn rotate_keyed(
    c: &Connection,
    family: &str,
    hash: &TokenHash,
    r: &Rotation,
) -> Result<RotateOutcome, StoreError> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {SESSION_COLS}, prev_refresh_hash, prev_rotated_at FROM sessions WHERE id = ?1"
        ))
        .map_err(backend)?
        .query_row([family], |row| {
            Ok((session_row(row)?, row.get::<_, Option<Vec<u8>>>(14)?, row.get::<_, i64>(15)?))
        })
        .optional()
        .map_err(backend)?;
    let Some((row, prev_hash, prev_at)) = row else { return Ok(RotateOutcome::NotFound) };
    let mut session = finish_session(row)?;
    let previous = prev_hash.as_deref().map(hash_from).transpose()?;
    let presented = presented_keyed(&session.refresh_hash, previous.as_ref().map(|p| (p, prev_at)), hash);
    let retry = match judge_rotation(&session, presented, r) {
        Verdict::Refuse(refusal) => {
            revoke_in(c, family)?;
            return Ok(refusal);
        }
        Verdict::Rotate => false,
        Verdict::Retry => true,
    };
    let (prev, prev_at) = previous_after(retry, *hash, session.refresh_hash, r.now);
    apply_rotation(&mut session, r);
    update_rotated(c, &session, &prev, prev_at)?;
    Ok(if retry { RotateOutcome::Retried(session) } else { RotateOutcome::Rotated(session) })
}

/// Rotation of a token found by hash (unkeyed, or a family's first token presented by a caller
/// that does not key it): the `refresh_tokens` table holds every such token's state. The new
/// token gets a row too (the store cannot tell whether it will be presented keyed), and the
/// `sessions` row records the replaced token like [`rotate_keyed`] does.
fn rotate_by_hash(c: &Connection, old: &TokenHash, r: &Rotation) -> Result<RotateOutcome, StoreError> {
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
    let retry = match judge_rotation(&session, presented, r) {
        Verdict::Refuse(refusal) => {
            revoke_in(c, &sid)?;
            return Ok(refusal);
        }
        Verdict::Rotate => false,
        Verdict::Retry => true,
    };
    let mut mark =
        c.prepare_cached("UPDATE refresh_tokens SET rotated = ?2 WHERE hash = ?1").map_err(backend)?;
    if retry {
        // The undelivered successor and this token's one retry are both spent.
        mark.execute(params![&old.0[..], ROTATED_AT_NO_RETRY]).map_err(backend)?;
        mark.execute(params![&session.refresh_hash.0[..], ROTATED_AT_NO_RETRY]).map_err(backend)?;
    } else {
        mark.execute(params![&old.0[..], rotated_at_marker(r.now)]).map_err(backend)?;
    }
    drop(mark);
    // The presented token is the one replaced either way, so it is the family's previous one.
    let (prev, prev_at) = previous_after(retry, *old, *old, r.now);
    apply_rotation(&mut session, r);
    c.prepare_cached("INSERT INTO refresh_tokens (hash, session_id, rotated) VALUES (?1, ?2, ?3)")
        .map_err(backend)?
        .execute(params![&session.refresh_hash.0[..], sid, ROTATED_AT_CURRENT])
        .map_err(backend)?;
    update_rotated(c, &session, &prev, prev_at)?;
    Ok(if retry { RotateOutcome::Retried(session) } else { RotateOutcome::Rotated(session) })
}

/// Writes a rotated family: its new tokens and the token the rotation replaced.
fn update_rotated(
    c: &Connection,
    s: &SessionRecord,
    prev: &TokenHash,
    prev_at: i64,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE sessions SET refresh_hash = ?2, refresh_expires_at = ?3, access_jti = ?4, \
         access_expires_at = ?5, client_auth = ?6, updated_at = ?7, prev_refresh_hash = ?8, \
         prev_rotated_at = ?9 WHERE id = ?1",
    )
    .map_err(backend)?
    .execute(params![
        s.id,
        &s.refresh_hash.0[..],
        s.refresh_expires_at,
        s.access_jti,
        s.access_expires_at,
        to_json(&s.client_auth)?,
        s.updated_at,
        &prev.0[..],
        prev_at
    ])
    .map_err(backend)?;
    Ok(())
}
