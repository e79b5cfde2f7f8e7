//! [`TokenStore`] on Postgres: authorization codes (table `codes`), token families (`sessions`) and
//! every refresh token a family was issued (`refresh_tokens`, current or rotated). Redemption and
//! rotation are each one transaction holding a row lock; see the module docs of [`super`]. The
//! common rotation (a keyed token that is its family's current one) is first tried as one
//! compare-and-set statement (`PostgresStore::rotate_current_keyed`).

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};

use super::{PostgresStore, backend, conflict_or_backend, from_json, hash_from, to_json};
use crate::store::rules::{
    Presented, ROTATED_AT_CURRENT, ROTATED_AT_NO_RETRY, Verdict, apply_rotation, judge_rotation,
    rotated_at_marker,
};
use crate::store::{
    CodeRecord, RedeemOutcome, RefreshKey, RotateOutcome, Rotation, SessionRecord, StoreError, TokenHash,
    TokenStore,
};

// Column lists as macros, so every statement is one `&'static str` built at compile time.
macro_rules! code_cols {
    () => {
        "hash, request, sub, scope, dpop_jkt, client_auth, created_at, expires_at, used, session_id, device_id"
    };
}

macro_rules! session_cols {
    () => {
        "id, client_id, sub, scope, dpop_jkt, client_auth, created_at, expires_at, refresh_hash, \
         refresh_expires_at, access_jti, access_expires_at, updated_at, device_id"
    };
}

fn code_row(r: &PgRow) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        code_hash: hash_from(r.try_get::<&[u8], _>(0).map_err(backend)?)?,
        request: from_json(r.try_get::<&str, _>(1).map_err(backend)?)?,
        sub: r.try_get(2).map_err(backend)?,
        scope: r.try_get(3).map_err(backend)?,
        dpop_jkt: r.try_get(4).map_err(backend)?,
        client_auth: from_json(r.try_get::<&str, _>(5).map_err(backend)?)?,
        created_at: r.try_get(6).map_err(backend)?,
        expires_at: r.try_get(7).map_err(backend)?,
        used: r.try_get(8).map_err(backend)?,
        session_id: r.try_get(9).map_err(backend)?,
        device_id: r.try_get(10).map_err(backend)?,
    })
}

fn session_row(r: &PgRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: r.try_get(0).map_err(backend)?,
        client_id: r.try_get(1).map_err(backend)?,
        sub: r.try_get(2).map_err(backend)?,
        scope: r.try_get(3).map_err(backend)?,
        dpop_jkt: r.try_get(4).map_err(backend)?,
        client_auth: from_json(r.try_get::<&str, _>(5).map_err(backend)?)?,
        created_at: r.try_get(6).map_err(backend)?,
        expires_at: r.try_get(7).map_err(backend)?,
        refresh_hash: hash_from(r.try_get::<&[u8], _>(8).map_err(backend)?)?,
        refresh_expires_at: r.try_get(9).map_err(backend)?,
        access_jti: r.try_get(10).map_err(backend)?,
        access_expires_at: r.try_get(11).map_err(backend)?,
        updated_at: r.try_get(12).map_err(backend)?,
        device_id: r.try_get(13).map_err(backend)?,
    })
}

/// The family `id`; with `lock`, its row stays locked until the transaction ends.
async fn load_session(
    c: &mut PgConnection,
    id: &str,
    lock: bool,
) -> Result<Option<SessionRecord>, StoreError> {
    let sql = if lock {
        concat!("SELECT ", session_cols!(), " FROM sessions WHERE id = $1 FOR UPDATE")
    } else {
        concat!("SELECT ", session_cols!(), " FROM sessions WHERE id = $1")
    };
    let row = sqlx::query(sql).bind(id).fetch_optional(c).await.map_err(backend)?;
    row.as_ref().map(session_row).transpose()
}

async fn insert_session(c: &mut PgConnection, s: &SessionRecord) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO sessions (",
        session_cols!(),
        ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)"
    ))
    .bind(&s.id)
    .bind(&s.client_id)
    .bind(&s.sub)
    .bind(&s.scope)
    .bind(&s.dpop_jkt)
    .bind(to_json(&s.client_auth)?)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(&s.refresh_hash.0[..])
    .bind(s.refresh_expires_at)
    .bind(&s.access_jti)
    .bind(s.access_expires_at)
    .bind(s.updated_at)
    .bind(&s.device_id)
    .execute(&mut *c)
    .await
    .map_err(|e| conflict_or_backend(e, "session id"))?;
    sqlx::query("INSERT INTO refresh_tokens (hash, session_id, rotated) VALUES ($1, $2, $3)")
        .bind(&s.refresh_hash.0[..])
        .bind(&s.id)
        .bind(ROTATED_AT_CURRENT)
        .execute(&mut *c)
        .await
        .map_err(|e| conflict_or_backend(e, "refresh token"))?;
    Ok(())
}

/// Deletes a family and all its refresh tokens; `true` if it existed.
/// A token that is not in `refresh_tokens` but names a live family (a keyed token, [`RefreshKey`])
/// was issued to that family before (family ids appear nowhere else): a replay, the family is
/// revoked (AS-REF-01). Otherwise it is simply unknown.
async fn replay_of_named_family(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    key: &RefreshKey,
) -> Result<RotateOutcome, StoreError> {
    let Some(family) = &key.family else { return Ok(RotateOutcome::NotFound) };
    let live: Option<(String,)> = sqlx::query_as("SELECT id FROM sessions WHERE id = $1 FOR UPDATE")
        .bind(family)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    if live.is_none() {
        return Ok(RotateOutcome::NotFound);
    }
    revoke_in(&mut tx, family).await?;
    tx.commit().await.map_err(backend)?;
    Ok(RotateOutcome::Replayed)
}

async fn revoke_in(c: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    let n = sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(backend)?
        .rows_affected();
    sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(backend)?;
    Ok(n > 0)
}

impl PostgresStore {
    /// The common rotation in two round trips instead of five (issue 18): a keyed token that is
    /// its family's current one. Reads the family without a lock, judges it by the shared rules,
    /// and rotates in one statement that is a compare-and-set on the current token's hash: if a
    /// rotation, retry or revocation of the family committed in between (on any instance), the
    /// `UPDATE` re-reads the row, matches nothing and writes nothing. `None` then, and for every
    /// other case (a retry, a replay, a refusal, an unknown family): the locking path decides.
    async fn rotate_current_keyed(
        &self,
        family: &str,
        presented: &TokenHash,
        r: &Rotation,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", session_cols!(), " FROM sessions WHERE id = $1"))
            .bind(family)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(mut session) = row.as_ref().map(session_row).transpose()? else { return Ok(None) };
        if session.refresh_hash != *presented
            || judge_rotation(&session, Presented::Current, r) != Verdict::Rotate
        {
            return Ok(None);
        }
        apply_rotation(&mut session, r);
        // The sessions row is locked first (the other CTEs read `rotated`), as on the locking path.
        let rotated: i64 = sqlx::query_scalar(
            "WITH rotated AS (UPDATE sessions SET refresh_hash = $3, refresh_expires_at = $4, access_jti = $5, \
             access_expires_at = $6, client_auth = $7, updated_at = $8 WHERE id = $1 AND refresh_hash = $2 \
             RETURNING id), \
             mark AS (UPDATE refresh_tokens SET rotated = $9 WHERE hash = $2 AND EXISTS (SELECT 1 FROM rotated)), \
             successor AS (INSERT INTO refresh_tokens (hash, session_id, rotated) SELECT $3, id, $10 FROM rotated) \
             SELECT count(*) FROM rotated",
        )
        .bind(family)
        .bind(&presented.0[..])
        .bind(&session.refresh_hash.0[..])
        .bind(session.refresh_expires_at)
        .bind(&session.access_jti)
        .bind(session.access_expires_at)
        .bind(to_json(&session.client_auth)?)
        .bind(session.updated_at)
        .bind(rotated_at_marker(r.now))
        .bind(ROTATED_AT_CURRENT)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict_or_backend(e, "refresh token or access token id"))?;
        Ok((rotated == 1).then_some(RotateOutcome::Rotated(session)))
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn put_code(&self, code: CodeRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO codes (",
            code_cols!(),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
        ))
        .bind(&code.code_hash.0[..])
        .bind(to_json(&code.request)?)
        .bind(&code.sub)
        .bind(&code.scope)
        .bind(&code.dpop_jkt)
        .bind(to_json(&code.client_auth)?)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(code.used)
        .bind(&code.session_id)
        .bind(&code.device_id)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend(e, "code"))?;
        Ok(())
    }

    async fn get_code(&self, hash: &TokenHash) -> Result<Option<CodeRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", code_cols!(), " FROM codes WHERE hash = $1"))
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(code_row).transpose()
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: i64,
        session: SessionRecord,
    ) -> Result<RedeemOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The code row stays locked to the end: a second redeemer (any instance) waits here, then
        // reads `used` and takes the reuse path (AS-CODE-01/02).
        let row: Option<(bool, Option<String>, i64)> =
            sqlx::query_as("SELECT used, session_id, expires_at FROM codes WHERE hash = $1 FOR UPDATE")
                .bind(&hash.0[..])
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let outcome = match row {
            None => return Ok(RedeemOutcome::NotFound),
            Some((true, sid, _)) => {
                if let Some(sid) = sid {
                    revoke_in(&mut tx, &sid).await?;
                }
                RedeemOutcome::Reused
            }
            Some((false, _, exp)) if exp <= now => {
                sqlx::query("DELETE FROM codes WHERE hash = $1")
                    .bind(&hash.0[..])
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                RedeemOutcome::Expired
            }
            Some((false, _, _)) => {
                sqlx::query("UPDATE codes SET used = TRUE, session_id = $2 WHERE hash = $1")
                    .bind(&hash.0[..])
                    .bind(&session.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                insert_session(&mut tx, &session).await?;
                RedeemOutcome::Redeemed
            }
        };
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn rotate_refresh(&self, key: &RefreshKey, r: Rotation) -> Result<RotateOutcome, StoreError> {
        if let Some(family) = &key.family
            && let Some(rotated) = self.rotate_current_keyed(family, &key.hash, &r).await?
        {
            return Ok(rotated);
        }
        // Every token, keyed or not, has a row in `refresh_tokens` here; the family a keyed token
        // names decides only what an unknown token of a live family is (a replay, as on SQLite).
        let old = &key.hash;
        // Five round trips: BEGIN, lock the family, read the token's state, one write, COMMIT.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Lock the family first (the token → family link never changes, so the subquery may read
        // an older snapshot), then read the presented token's state in a new statement, which sees
        // what the previous holder of the lock committed: every rotation, retry and revocation of
        // one family (on any instance) runs one after the other (AS-REF-01: of two racing uses of
        // one token, the second is a replay, or the lost-response retry when the grace allows it).
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1) FOR UPDATE"
        ))
        .bind(&old.0[..])
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(mut session) = row.as_ref().map(session_row).transpose()? else {
            return replay_of_named_family(tx, key).await;
        };
        let sid = session.id.clone();
        // The token's state, and whether no other token of the family was rotated at or after it
        // (it was replaced by the family's latest rotation).
        let state: Option<(i64, bool)> = sqlx::query_as(
            "SELECT t.rotated, NOT EXISTS (SELECT 1 FROM refresh_tokens o WHERE o.session_id = t.session_id \
             AND o.rotated >= t.rotated AND o.hash <> t.hash) FROM refresh_tokens t WHERE t.hash = $1",
        )
        .bind(&old.0[..])
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        // A revocation between the two reads deletes the family too (no row above).
        let Some((rotated_at, no_later)) = state else { return Ok(RotateOutcome::NotFound) };
        let in_window = r.retry_grace > 0 && r.now - rotated_at <= r.retry_grace;
        let is_latest = rotated_at > ROTATED_AT_NO_RETRY && in_window && no_later;
        let presented = Presented::from_rotated_at(rotated_at, || is_latest);
        let retry = match judge_rotation(&session, presented, &r) {
            Verdict::Refuse(refusal) => {
                revoke_in(&mut tx, &sid).await?;
                tx.commit().await.map_err(backend)?;
                return Ok(refusal);
            }
            Verdict::Rotate => false,
            Verdict::Retry => true,
        };
        // On a retry the undelivered successor (the current token) and this token's one retry are
        // both spent; otherwise this token records its rotation time.
        let (mark, also_current) =
            if retry { (ROTATED_AT_NO_RETRY, true) } else { (rotated_at_marker(r.now), false) };
        let current = session.refresh_hash;
        apply_rotation(&mut session, &r);
        sqlx::query(
            "WITH mark AS (UPDATE refresh_tokens SET rotated = $3 WHERE hash = $2 OR ($5 AND hash = $4)), \
             successor AS (INSERT INTO refresh_tokens (hash, session_id, rotated) VALUES ($6, $1, $7)) \
             UPDATE sessions SET refresh_hash = $6, refresh_expires_at = $8, access_jti = $9, \
             access_expires_at = $10, client_auth = $11, updated_at = $12 WHERE id = $1",
        )
        .bind(&sid)
        .bind(&old.0[..])
        .bind(mark)
        .bind(&current.0[..])
        .bind(also_current)
        .bind(&session.refresh_hash.0[..])
        .bind(ROTATED_AT_CURRENT)
        .bind(session.refresh_expires_at)
        .bind(&session.access_jti)
        .bind(session.access_expires_at)
        .bind(to_json(&session.client_auth)?)
        .bind(session.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend(e, "refresh token or access token id"))?;
        tx.commit().await.map_err(backend)?;
        Ok(if retry { RotateOutcome::Retried(session) } else { RotateOutcome::Rotated(session) })
    }

    async fn session_by_access_jti(&self, jti: &str, now: i64) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE access_jti = $1 AND access_expires_at > $2 AND expires_at > $2"
        ))
        .bind(jti)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(session_row).transpose()
    }

    async fn session_by_refresh(&self, key: &RefreshKey) -> Result<Option<SessionRecord>, StoreError> {
        if let Some(family) = &key.family {
            return self.session(family).await;
        }
        let hash = &key.hash;
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1)"
        ))
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(session_row).transpose()
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let mut c = self.pool.acquire().await.map_err(backend)?;
        load_session(&mut c, id, false).await
    }

    async fn sessions_for_account(&self, sub: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE sub = $1 AND expires_at > $2 ORDER BY created_at, id"
        ))
        .bind(sub)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(session_row).collect()
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let found = revoke_in(&mut tx, id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(found)
    }

    async fn revoke_account_sessions(
        &self,
        sub: &str,
        client_id: Option<&str>,
        device_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        // The rows stay locked from the choice to the delete: a concurrent rotation waits and then
        // finds its family gone.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE sub = $1 AND ($2::TEXT IS NULL OR client_id = $2) \
             AND ($3::TEXT IS NULL OR device_id = $3) FOR UPDATE",
        )
        .bind(sub)
        .bind(client_id)
        .bind(device_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut n = 0;
        for id in &ids {
            n += u64::from(revoke_in(&mut tx, id).await?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let run = |sql: &'static str| sqlx::query(sql).bind(now);
        let codes =
            run("DELETE FROM codes WHERE expires_at <= $1").execute(&mut *tx).await.map_err(backend)?;
        run(
            "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE expires_at <= $1)",
        )
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let sessions =
            run("DELETE FROM sessions WHERE expires_at <= $1").execute(&mut *tx).await.map_err(backend)?;
        run("DELETE FROM par_requests WHERE expires_at <= $1").execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(codes.rows_affected() + sessions.rows_affected())
    }
}
