//! [`RequestStore`] on SQLite: table `par_requests` (pending PAR requests, AS-PAR-08).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::replay::record_once;
use super::{SqliteStore, backend, from_json, to_json};
use crate::store::{
    AuthorizationRequest, ClientAuthBinding, PendingRequest, RequestReplayStore, RequestStore, StoreError,
};

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

/// The JSON columns of a request, encoded before it goes to the writer thread.
struct RequestJson {
    request: String,
    client_auth: String,
}

impl RequestJson {
    fn of(r: &PendingRequest) -> Result<Self, StoreError> {
        Ok(Self { request: to_json(&r.request)?, client_auth: to_json(&r.client_auth)? })
    }
}

fn insert_request(c: &Connection, r: &PendingRequest, json: &RequestJson) -> Result<(), StoreError> {
    c.prepare_cached(&format!("INSERT INTO par_requests ({REQUEST_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"))
        .map_err(backend)?
        .execute(params![
            r.id,
            json.request,
            r.dpop_jkt,
            json.client_auth,
            r.created_at,
            r.expires_at,
            r.device_id
        ])
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict("request id"),
            _ => backend(e),
        })?;
    Ok(())
}

#[async_trait]
impl RequestReplayStore for SqliteStore {
    async fn put_request_once(
        &self,
        r: PendingRequest,
        key: [u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let row = RequestJson::of(&r)?;
        // One write job, so one savepoint: a conflicting request id undoes the replay record too.
        self.write(move |c| {
            if !record_once(c, &key, expires_at, now)? {
                return Ok(false);
            }
            insert_request(c, &r, &row)?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn put_request(&self, r: PendingRequest) -> Result<(), StoreError> {
        let row = RequestJson::of(&r)?;
        self.write(move |c| insert_request(c, &r, &row)).await
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
