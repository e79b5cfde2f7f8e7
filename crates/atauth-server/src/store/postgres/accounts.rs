//! [`AccountStore`] on Postgres: table `accounts`.

use async_trait::async_trait;
use atauth_crypto::SecretString;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend};
use crate::store::{AccountRecord, AccountStatus, AccountStore, StoreError};

macro_rules! account_cols {
    () => {
        "did, handle, email, password_hash, signing_key, created_at, status"
    };
}

fn account_row(r: &PgRow) -> Result<AccountRecord, StoreError> {
    let status: String = r.try_get(6).map_err(backend)?;
    Ok(AccountRecord {
        did: r.try_get(0).map_err(backend)?,
        handle: r.try_get(1).map_err(backend)?,
        email: r.try_get(2).map_err(backend)?,
        password_hash: SecretString::new(r.try_get::<String, _>(3).map_err(backend)?),
        signing_key_hex: r.try_get::<Option<String>, _>(4).map_err(backend)?.map(SecretString::new),
        created_at: r.try_get(5).map_err(backend)?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown account status {status:?}")))?,
    })
}

/// Which unique constraint a refused insert hit, named as [`StoreError::Conflict`] names it.
fn account_conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict(match db.constraint() {
            Some("accounts_handle_key") => "handle",
            Some("accounts_email_key") => "email",
            _ => "did",
        });
    }
    backend(e)
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_account(&self, a: AccountRecord) -> Result<(), StoreError> {
        // One statement: the unique constraints decide, so two instances creating the same handle
        // at once cannot both succeed. Checked in the SQLite order (DID, handle, email) first so a
        // refusal names the same field on every backend.
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT CASE WHEN did = $1 THEN 'did' WHEN handle = $2 THEN 'handle' ELSE 'email' END \
             FROM accounts WHERE did = $1 OR handle = $2 OR ($3::text IS NOT NULL AND email = $3) \
             ORDER BY (did = $1) DESC, (handle = $2) DESC LIMIT 1",
        )
        .bind(&a.did)
        .bind(&a.handle)
        .bind(&a.email)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        if let Some(field) = taken {
            return Err(StoreError::Conflict(match field.as_str() {
                "did" => "did",
                "handle" => "handle",
                _ => "email",
            }));
        }
        sqlx::query(concat!("INSERT INTO accounts (", account_cols!(), ") VALUES ($1,$2,$3,$4,$5,$6,$7)"))
            .bind(&a.did)
            .bind(&a.handle)
            .bind(&a.email)
            .bind(a.password_hash.expose_secret())
            .bind(a.signing_key_hex.as_ref().map(SecretString::expose_secret))
            .bind(a.created_at)
            .bind(a.status.as_str())
            .execute(&self.pool)
            .await
            .map_err(account_conflict)?;
        Ok(())
    }

    async fn account_by_did(&self, did: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(concat!("SELECT ", account_cols!(), " FROM accounts WHERE did = $1"), did).await
    }

    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(concat!("SELECT ", account_cols!(), " FROM accounts WHERE handle = $1"), handle)
            .await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(concat!("SELECT ", account_cols!(), " FROM accounts WHERE email = $1"), email)
            .await
    }

    async fn set_account_status(&self, did: &str, status: AccountStatus) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE accounts SET status = $2 WHERE did = $1")
            .bind(did)
            .bind(status.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_password_hash(&self, did: &str, hash: &SecretString) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE accounts SET password_hash = $2 WHERE did = $1")
            .bind(did)
            .bind(hash.expose_secret())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }
}

impl PostgresStore {
    /// The account `sql` selects by one unique column equal to `value`.
    async fn account_where(
        &self,
        sql: &'static str,
        value: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row = sqlx::query(sql).bind(value).fetch_optional(&self.pool).await.map_err(backend)?;
        row.as_ref().map(account_row).transpose()
    }
}
