//! [`AccountStore`] on SQLite: tables `accounts`, `invite_codes` and `invite_code_uses`.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{SqliteStore, backend};
use crate::store::{
    AccountRecord, AccountStatus, AccountStore, InviteCode, InviteCodeUse, InviteRedeemOutcome, StoreError,
};
use atauth_crypto::SecretString;

/// Inserts `a` after naming the first unique value (DID, handle, email) it would repeat.
fn insert_account(c: &Connection, a: &AccountRecord) -> Result<(), StoreError> {
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
}

/// The invite code `code` with its uses.
fn read_invite(c: &Connection, code: &str) -> Result<Option<InviteCode>, StoreError> {
    let row = c
        .prepare_cached("SELECT code, uses_allowed, disabled, created_at FROM invite_codes WHERE code = ?1")
        .map_err(backend)?
        .query_row([code], |r| {
            Ok(InviteCode {
                code: r.get(0)?,
                uses_allowed: r.get(1)?,
                disabled: r.get(2)?,
                created_at: r.get(3)?,
                uses: Vec::new(),
            })
        })
        .optional()
        .map_err(backend)?;
    let Some(mut invite) = row else { return Ok(None) };
    invite.uses = invite_uses(c, code)?;
    Ok(Some(invite))
}

fn invite_uses(c: &Connection, code: &str) -> Result<Vec<InviteCodeUse>, StoreError> {
    let mut st = c
        .prepare_cached("SELECT did, used_at FROM invite_code_uses WHERE code = ?1 ORDER BY used_at, did")
        .map_err(backend)?;
    let rows = st
        .query_map([code], |r| Ok(InviteCodeUse { did: r.get(0)?, used_at: r.get(1)? }))
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
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

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, a: AccountRecord) -> Result<(), StoreError> {
        self.write(move |c| insert_account(c, &a)).await
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

    async fn put_invite_code(&self, code: InviteCode) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "INSERT INTO invite_codes (code, uses_allowed, used, disabled, created_at) \
                     VALUES (?1, ?2, 0, ?3, ?4) ON CONFLICT (code) DO NOTHING",
                    params![code.code, code.uses_allowed, code.disabled, code.created_at],
                )
                .map_err(backend)?;
            if n == 0 { Err(StoreError::Conflict("invite code")) } else { Ok(()) }
        })
        .await
    }

    async fn invite_code(&self, code: &str) -> Result<Option<InviteCode>, StoreError> {
        let code = code.to_owned();
        self.read(move |c| read_invite(c, &code)).await
    }

    async fn list_invite_codes(&self) -> Result<Vec<InviteCode>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT code FROM invite_codes ORDER BY created_at, code").map_err(backend)?;
            let codes: Vec<String> = st
                .query_map([], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            codes.iter().filter_map(|code| read_invite(c, code).transpose()).collect()
        })
        .await
    }

    async fn disable_invite_code(&self, code: &str) -> Result<bool, StoreError> {
        let code = code.to_owned();
        self.write(move |c| {
            c.execute("UPDATE invite_codes SET disabled = 1 WHERE code = ?1", [code])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn create_account_with_invite(
        &self,
        account: AccountRecord,
        code: &str,
    ) -> Result<InviteRedeemOutcome, StoreError> {
        let code = code.to_owned();
        // One savepoint on the single writer: an `Err` undoes the use taken below.
        self.write(move |c| {
            let taken = c
                .execute(
                    "UPDATE invite_codes SET used = used + 1 \
                     WHERE code = ?1 AND disabled = 0 AND used < uses_allowed",
                    [&code],
                )
                .map_err(backend)?;
            if taken == 0 {
                return Ok(match read_invite(c, &code)? {
                    None => InviteRedeemOutcome::UnknownCode,
                    Some(i) if i.disabled => InviteRedeemOutcome::Disabled,
                    Some(_) => InviteRedeemOutcome::UsedUp,
                });
            }
            insert_account(c, &account)?;
            c.execute(
                "INSERT INTO invite_code_uses (code, did, used_at) VALUES (?1, ?2, ?3)",
                params![code, account.did, account.created_at],
            )
            .map_err(backend)?;
            Ok(InviteRedeemOutcome::Created)
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
