//! `atauth account create | show | invite …`, and the demo account of `atauth serve --demo-account`.
//!
//! Creating an account registers a `did:plc` (genesis operation signed with the server's rotation
//! key, this server as the PDS) in a PLC directory, so it needs one: `--plc-url`, or the public
//! directory for a non-dev server. There is no fallback that invents a DID: without a directory,
//! creation is refused with an error that says what to pass.

use atauth_crypto::SecretString;
use atauth_crypto::random::random_token;
use atauth_server::AuthServer;
use atauth_server::account::{CreateAccountError, NewAccount};
use atauth_server::store::{AccountRecord, InviteCode, SqliteStore, Stores};
use url::Url;

use crate::cli::{
    AccountCommand, AccountCreateArgs, AccountShowArgs, DataDirArgs, InviteCommand, InviteCreateArgs,
    InviteDisableArgs, InviteListArgs,
};
use crate::error::CliError;
use crate::output;
use crate::paths;
use crate::prompt;

/// Runs `atauth account …`.
pub(crate) async fn run(cmd: AccountCommand) -> Result<(), CliError> {
    match cmd {
        AccountCommand::Create(args) => create_cmd(args).await,
        AccountCommand::Show(args) => show_cmd(args).await,
        AccountCommand::Invite(InviteCommand::Create(args)) => invite_create_cmd(args).await,
        AccountCommand::Invite(InviteCommand::List(args)) => invite_list_cmd(args).await,
        AccountCommand::Invite(InviteCommand::Disable(args)) => invite_disable_cmd(args).await,
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn invite_json(i: &InviteCode) -> serde_json::Value {
    serde_json::json!({
        "code": i.code,
        "usesAllowed": i.uses_allowed,
        "remaining": i.remaining(),
        "disabled": i.disabled,
        "createdAt": i.created_at,
        "uses": i.uses.iter().map(|u| serde_json::json!({"did": u.did, "usedAt": u.used_at})).collect::<Vec<_>>(),
    })
}

async fn invite_create_cmd(args: InviteCreateArgs) -> Result<(), CliError> {
    let stores = open_stores(&args.data).await?;
    let mut made = Vec::with_capacity(args.count as usize);
    for _ in 0..args.count {
        let code = atauth_server::signup::new_invite_code(args.uses, now_unix());
        stores
            .accounts
            .put_invite_code(code.clone())
            .await
            .map_err(|e| CliError::failed("could not store the invite code", e))?;
        made.push(code);
    }
    if args.json {
        output::say(&serde_json::Value::Array(made.iter().map(invite_json).collect()).to_string());
    } else {
        for code in &made {
            output::say(&code.code);
        }
        let each = if args.uses == 1 { "single use".to_owned() } else { format!("{} uses each", args.uses) };
        output::note(&format!("created {} invite code(s), {each}", made.len()));
    }
    Ok(())
}

async fn invite_list_cmd(args: InviteListArgs) -> Result<(), CliError> {
    let stores = open_stores(&args.data).await?;
    let codes = stores
        .accounts
        .list_invite_codes()
        .await
        .map_err(|e| CliError::failed("could not read the invite codes", e))?;
    if args.json {
        output::say(&serde_json::Value::Array(codes.iter().map(invite_json).collect()).to_string());
        return Ok(());
    }
    if codes.is_empty() {
        output::note("no invite codes (create some with `atauth account invite create`)");
    }
    for i in &codes {
        let state = if i.disabled {
            "disabled".to_owned()
        } else {
            format!("{}/{} left", i.remaining(), i.uses_allowed)
        };
        let used_by: Vec<&str> = i.uses.iter().map(|u| u.did.as_str()).collect();
        let used_by =
            if used_by.is_empty() { String::new() } else { format!("  used by {}", used_by.join(", ")) };
        output::say(&format!("{}  {state}  created {}{used_by}", i.code, output::utc(i.created_at)));
    }
    Ok(())
}

async fn invite_disable_cmd(args: InviteDisableArgs) -> Result<(), CliError> {
    let stores = open_stores(&args.data).await?;
    let code = atauth_server::signup::normalize_invite_code(&args.code);
    let found = stores
        .accounts
        .disable_invite_code(&code)
        .await
        .map_err(|e| CliError::failed("could not disable the invite code", e))?;
    if !found {
        return Err(CliError::Failed(format!("no invite code {code:?} on this server")));
    }
    output::say(&format!("disabled {code}"));
    Ok(())
}

async fn create_cmd(args: AccountCreateArgs) -> Result<(), CliError> {
    let password = if args.password_stdin { Some(prompt::read_password(true, "")?) } else { None };
    let built = tokio::task::block_in_place(|| args.server.build(args.server.port))?;
    let generated = password.is_none();
    let password = password.unwrap_or_else(generate_password);
    let record =
        create(&built.server, built.plc_url.as_ref(), &args.handle, args.email.as_deref(), &password).await?;
    output::say(&format!("created account {} ({})", record.handle, record.did));
    if generated {
        output::say(&format!("password: {}", password.expose_secret()));
        output::note("(generated; shown only this once)");
    }
    Ok(())
}

async fn show_cmd(args: AccountShowArgs) -> Result<(), CliError> {
    let stores = open_stores(&args.data).await?;
    let account = find_account(&stores, &args.account).await?;
    if args.json {
        let v = serde_json::json!({
            "did": account.did,
            "handle": account.handle,
            "email": account.email,
            "status": account.status.as_str(),
            "createdAt": account.created_at,
        });
        output::say(&v.to_string());
    } else {
        output::say(&format!("did:     {}", account.did));
        output::say(&format!("handle:  {}", account.handle));
        output::say(&format!("email:   {}", account.email.as_deref().unwrap_or("-")));
        output::say(&format!("status:  {}", account.status.as_str()));
        output::say(&format!("created: {}", output::utc(account.created_at)));
    }
    Ok(())
}

/// A random password for generated accounts: 128 bits, base64url (22 characters).
pub(crate) fn generate_password() -> SecretString {
    SecretString::new(random_token::<16>())
}

/// Creates an account, mapping every refusal to a message that says what to change.
pub(crate) async fn create(
    server: &AuthServer,
    plc_url: Option<&Url>,
    handle: &str,
    email: Option<&str>,
    password: &SecretString,
) -> Result<AccountRecord, CliError> {
    let Some(plc) = plc_url else {
        return Err(CliError::Config(
            "creating an account registers its did:plc in a PLC directory, and none is configured \
             (--dev has no default): pass --plc-url URL (scripts/demo.sh starts a local one)"
                .into(),
        ));
    };
    let new = NewAccount {
        handle: handle.trim().trim_start_matches('@').to_ascii_lowercase(),
        email: email.map(str::to_owned),
        password: password.clone(),
    };
    server.create_account(new).await.map_err(|e| match e {
        CreateAccountError::UnsupportedDomain => CliError::Config(format!(
            "handle {handle:?} is not under this server's handle domains {:?} (set --handle-domains)",
            server.config().handle_domains
        )),
        CreateAccountError::Plc(err) => {
            CliError::failed(format!("could not register the DID in the PLC directory at {plc}"), err)
        }
        CreateAccountError::Password(err) => CliError::failed("password hashing failed", err),
        CreateAccountError::Store(err) => CliError::failed("could not store the account", err),
        other => CliError::Config(format!("cannot create {handle:?}: {other}")),
    })
}

/// `atauth serve --demo-account`: creates the account if it is missing and prints its handle, DID
/// and password once, labelled as a demo credential. An existing account is left alone.
pub(crate) async fn ensure_demo_account(
    server: &AuthServer,
    plc_url: Option<&Url>,
    handle: &str,
    password: Option<SecretString>,
) -> Result<(), CliError> {
    let normalized = handle.trim().trim_start_matches('@').to_ascii_lowercase();
    let existing = server
        .stores()
        .accounts
        .account_by_handle(&normalized)
        .await
        .map_err(|e| CliError::failed("could not read the accounts", e))?;
    if let Some(a) = existing {
        output::say(&format!(
            "demo account: {} ({}) exists; its password was printed when it was created",
            a.handle, a.did
        ));
        return Ok(());
    }
    let password = password.unwrap_or_else(generate_password);
    let record = create(server, plc_url, &normalized, None, &password).await?;
    tracing::info!(did = %record.did, handle = %record.handle, "demo account created");
    output::say("demo account created (a DEMO credential for local testing, shown only this once):");
    output::say(&format!("  handle:   {}", record.handle));
    output::say(&format!("  did:      {}", record.did));
    output::say(&format!("  password: {}", password.expose_secret()));
    Ok(())
}

/// Opens the server's stores without building a server: the Postgres database of `--database-url`,
/// or the SQLite file in the data directory.
pub(crate) async fn open_stores(args: &DataDirArgs) -> Result<Stores, CliError> {
    if let Some(url) = &args.database_url {
        let store = crate::server_args::connect_postgres(url, false).await?;
        return Ok(Stores::single(store));
    }
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => paths::default_server_dir()?,
    };
    let db = dir.join(atauth_server::server::DATABASE_FILE);
    if !db.exists() {
        return Err(CliError::Config(format!(
            "no atauth database in {} (pass the --data-dir of `atauth serve`)",
            dir.display()
        )));
    }
    let store = SqliteStore::open(&db)
        .map_err(|e| CliError::failed(format!("could not open {}", db.display()), e))?;
    Ok(Stores::single(store))
}

/// The account with this handle (`@` allowed) or DID.
pub(crate) async fn find_account(stores: &Stores, who: &str) -> Result<AccountRecord, CliError> {
    let who = who.trim();
    let found = if who.starts_with("did:") {
        stores.accounts.account_by_did(who).await
    } else {
        stores.accounts.account_by_handle(&who.trim_start_matches('@').to_ascii_lowercase()).await
    };
    found
        .map_err(|e| CliError::failed("could not read the accounts", e))?
        .ok_or_else(|| CliError::Failed(format!("no account {who:?} on this server")))
}
