//! [`AccountStore`] on Postgres: tables `accounts`, `invite_codes` and `invite_code_uses`.

use async_trait::async_trait;
use atauth_crypto::SecretString;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend};
use crate::store::{
    AccountRecord, AccountStatus, AccountStore, InviteCode, InviteCodeUse, InviteRedeemOutcome, StoreError,
};

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
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        insert_account(&mut conn, &a).await
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

    async fn put_invite_code(&self, code: InviteCode) -> Result<(), StoreError> {
        let uses_allowed = i32::try_from(code.uses_allowed)
            .map_err(|_| StoreError::Backend("invite code uses_allowed too large".into()))?;
        let r = sqlx::query(
            "INSERT INTO invite_codes (code, uses_allowed, used, disabled, created_at) \
             VALUES ($1, $2, 0, $3, $4) ON CONFLICT (code) DO NOTHING",
        )
        .bind(&code.code)
        .bind(uses_allowed)
        .bind(code.disabled)
        .bind(code.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if r.rows_affected() == 0 { Err(StoreError::Conflict("invite code")) } else { Ok(()) }
    }

    async fn invite_code(&self, code: &str) -> Result<Option<InviteCode>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        read_invite(&mut conn, code).await
    }

    async fn list_invite_codes(&self) -> Result<Vec<InviteCode>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let codes: Vec<String> =
            sqlx::query_scalar("SELECT code FROM invite_codes ORDER BY created_at, code")
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?;
        let mut out = Vec::with_capacity(codes.len());
        for code in codes {
            out.extend(read_invite(&mut conn, &code).await?);
        }
        Ok(out)
    }

    async fn disable_invite_code(&self, code: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE invite_codes SET disabled = TRUE WHERE code = $1")
            .bind(code)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_account_with_invite(
        &self,
        account: AccountRecord,
        code: &str,
    ) -> Result<InviteRedeemOutcome, StoreError> {
        // One transaction. The conditional UPDATE locks the code's row, so a second instance
        // taking the same code waits and then re-checks `used` against the committed count; a
        // refused account insert rolls the use back.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let taken = sqlx::query(
            "UPDATE invite_codes SET used = used + 1 \
             WHERE code = $1 AND NOT disabled AND used < uses_allowed",
        )
        .bind(code)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if taken.rows_affected() == 0 {
            let outcome = match read_invite(&mut tx, code).await? {
                None => InviteRedeemOutcome::UnknownCode,
                Some(i) if i.disabled => InviteRedeemOutcome::Disabled,
                Some(_) => InviteRedeemOutcome::UsedUp,
            };
            return Ok(outcome);
        }
        insert_account(&mut tx, &account).await?;
        sqlx::query("INSERT INTO invite_code_uses (code, did, used_at) VALUES ($1, $2, $3)")
            .bind(code)
            .bind(&account.did)
            .bind(account.created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(InviteRedeemOutcome::Created)
    }
}

/// Inserts `a`. One statement: the unique constraints decide, so two instances creating the same
/// handle at once cannot both succeed. Checked in the SQLite order (DID, handle, email) first so a
/// refusal names the same field on every backend.
async fn insert_account(conn: &mut sqlx::PgConnection, a: &AccountRecord) -> Result<(), StoreError> {
    let taken: Option<String> = sqlx::query_scalar(
        "SELECT CASE WHEN did = $1 THEN 'did' WHEN handle = $2 THEN 'handle' ELSE 'email' END \
         FROM accounts WHERE did = $1 OR handle = $2 OR ($3::text IS NOT NULL AND email = $3) \
         ORDER BY (did = $1) DESC, (handle = $2) DESC LIMIT 1",
    )
    .bind(&a.did)
    .bind(&a.handle)
    .bind(&a.email)
    .fetch_optional(&mut *conn)
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
        .execute(&mut *conn)
        .await
        .map_err(account_conflict)?;
    Ok(())
}

/// The invite code `code` with its uses.
async fn read_invite(conn: &mut sqlx::PgConnection, code: &str) -> Result<Option<InviteCode>, StoreError> {
    let row =
        sqlx::query("SELECT code, uses_allowed, disabled, created_at FROM invite_codes WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let uses_allowed: i32 = row.try_get(1).map_err(backend)?;
    let uses = sqlx::query("SELECT did, used_at FROM invite_code_uses WHERE code = $1 ORDER BY used_at, did")
        .bind(code)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok(InviteCodeUse { did: r.try_get(0).map_err(backend)?, used_at: r.try_get(1).map_err(backend)? })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(InviteCode {
        code: row.try_get(0).map_err(backend)?,
        uses_allowed: u32::try_from(uses_allowed)
            .map_err(|_| StoreError::Corrupt(format!("invite code uses_allowed {uses_allowed}")))?,
        disabled: row.try_get(2).map_err(backend)?,
        created_at: row.try_get(3).map_err(backend)?,
        uses,
    }))
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
