//! [`AccountStore`] on SQLite: table `accounts`.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, Row, params};

use super::{SqliteStore, backend};
use crate::store::{AccountRecord, AccountStatus, AccountStore, StoreError};
use atauth_crypto::SecretString;

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
        self.account_where(AccountKey::Did, did).await
    }

    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(AccountKey::Handle, handle).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where(AccountKey::Email, email).await
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

/// The unique columns an account is looked up by.
#[derive(Debug, Clone, Copy)]
enum AccountKey {
    Did,
    Handle,
    Email,
}

impl AccountKey {
    fn column(self) -> &'static str {
        match self {
            Self::Did => "did",
            Self::Handle => "handle",
            Self::Email => "email",
        }
    }
}

impl SqliteStore {
    /// The account whose `key` column equals `value` (each is unique).
    async fn account_where(&self, key: AccountKey, value: &str) -> Result<Option<AccountRecord>, StoreError> {
        let value = value.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE {} = ?1", key.column());
            let mut st = c.prepare_cached(&sql).map_err(backend)?;
            finish_account(st.query_row([value], account_row).optional().map_err(backend)?)
        })
        .await
    }
}
