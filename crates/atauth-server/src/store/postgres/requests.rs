//! [`RequestStore`] on Postgres: table `par_requests` (pending PAR requests, AS-PAR-08).

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;

use super::{PostgresStore, backend, conflict_or_backend, from_json, to_json};
use crate::store::{PendingRequest, RequestReplayStore, RequestStore, StoreError};

macro_rules! request_cols {
    () => {
        "id, request, dpop_jkt, client_auth, created_at, expires_at, device_id"
    };
}

fn request_row(r: &PgRow) -> Result<PendingRequest, StoreError> {
    Ok(PendingRequest {
        id: r.try_get(0).map_err(backend)?,
        request: from_json(r.try_get::<&str, _>(1).map_err(backend)?)?,
        dpop_jkt: r.try_get(2).map_err(backend)?,
        client_auth: from_json(r.try_get::<&str, _>(3).map_err(backend)?)?,
        created_at: r.try_get(4).map_err(backend)?,
        expires_at: r.try_get(5).map_err(backend)?,
        device_id: r.try_get(6).map_err(backend)?,
    })
}

/// Binds a request's columns as `$1`…`$7`, in the order of `request_cols!`.
fn bind_request<'q>(
    q: Query<'q, Postgres, PgArguments>,
    r: &'q PendingRequest,
) -> Result<Query<'q, Postgres, PgArguments>, StoreError> {
    Ok(q.bind(&r.id)
        .bind(to_json(&r.request)?)
        .bind(&r.dpop_jkt)
        .bind(to_json(&r.client_auth)?)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(&r.device_id))
}

#[async_trait]
impl RequestReplayStore for PostgresStore {
    async fn put_request_once(
        &self,
        r: PendingRequest,
        key: [u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // One statement, so one round trip and one transaction: the replay record as
        // `check_and_record` writes it (of two instances racing on one key, one affects a row),
        // and the request only if it did. A conflicting request id fails the statement, and with
        // it the replay record.
        let q = sqlx::query(concat!(
            "WITH once AS (INSERT INTO replay (key, expires_at) VALUES ($8, $9) ON CONFLICT (key) DO UPDATE \
             SET expires_at = EXCLUDED.expires_at WHERE replay.expires_at <= $10 RETURNING 1) \
             INSERT INTO par_requests (",
            request_cols!(),
            ") SELECT $1,$2,$3,$4,$5,$6,$7 WHERE EXISTS (SELECT 1 FROM once)"
        ));
        let done = bind_request(q, &r)?
            .bind(&key[..])
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_backend(e, "request id"))?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl RequestStore for PostgresStore {
    async fn put_request(&self, r: PendingRequest) -> Result<(), StoreError> {
        let q = sqlx::query(concat!(
            "INSERT INTO par_requests (",
            request_cols!(),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7)"
        ));
        bind_request(q, &r)?.execute(&self.pool).await.map_err(|e| conflict_or_backend(e, "request id"))?;
        Ok(())
    }

    async fn get_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            request_cols!(),
            " FROM par_requests WHERE id = $1 AND expires_at > $2"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(request_row).transpose()
    }

    async fn bind_request_device(&self, id: &str, device_id: &str, now: i64) -> Result<bool, StoreError> {
        // One conditional statement: of two devices binding an unbound request at once, the row lock
        // lets one in; the other re-evaluates the condition against its write and matches nothing.
        let r = sqlx::query(
            "UPDATE par_requests SET device_id = $2 WHERE id = $1 AND expires_at > $3 \
             AND (device_id IS NULL OR device_id = $2)",
        )
        .bind(id)
        .bind(device_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn take_request(&self, id: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        // Single use (AS-AUTHZ-01): one `DELETE … RETURNING`, so only one caller, on any instance,
        // gets the row. An expired one is deleted too and answers `None`.
        let row = sqlx::query(concat!("DELETE FROM par_requests WHERE id = $1 RETURNING ", request_cols!()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row.as_ref().map(request_row).transpose()? {
            Some(r) if r.expires_at > now => Ok(Some(r)),
            _ => Ok(None),
        }
    }
}
