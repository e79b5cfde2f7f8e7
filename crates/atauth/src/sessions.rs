//! `atauth sessions list | revoke`: an account's OAuth sessions (token families) on this server.
//!
//! Works on the data directory's SQLite database, so it can run next to a live `atauth serve`:
//! revocation is stateful (the resource verifier checks that an access token's family is live), so a
//! revoked session's refresh **and** access tokens are refused from the next request on.

use crate::account::{find_account, open_stores};
use crate::cli::{SessionsCommand, SessionsListArgs, SessionsRevokeArgs};
use crate::error::CliError;
use crate::output;

/// Runs `atauth sessions …`.
pub(crate) async fn run(cmd: SessionsCommand) -> Result<(), CliError> {
    match cmd {
        SessionsCommand::List(args) => list(args).await,
        SessionsCommand::Revoke(args) => revoke(args).await,
    }
}

fn now() -> i64 {
    atauth_crypto::clock::unix_seconds(std::time::SystemTime::now())
}

async fn list(args: SessionsListArgs) -> Result<(), CliError> {
    let stores = open_stores(&args.data).await?;
    let account = find_account(&stores, &args.account).await?;
    let sessions = stores
        .tokens
        .sessions_for_account(&account.did, now())
        .await
        .map_err(|e| CliError::failed("could not read the sessions", e))?;
    if args.json {
        let v: Vec<serde_json::Value> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "clientId": s.client_id,
                    "scope": s.scope,
                    "createdAt": s.created_at,
                    "updatedAt": s.updated_at,
                    "expiresAt": s.expires_at,
                    "refreshExpiresAt": s.refresh_expires_at,
                })
            })
            .collect();
        output::say(&serde_json::Value::Array(v).to_string());
        return Ok(());
    }
    if sessions.is_empty() {
        output::say(&format!("{} ({}) has no live sessions", account.handle, account.did));
        return Ok(());
    }
    output::say(&format!("{} ({}): {} live session(s)", account.handle, account.did, sessions.len()));
    for s in &sessions {
        output::say(&s.id);
        output::say(&format!("  client:    {}", s.client_id));
        output::say(&format!("  scope:     {}", s.scope));
        output::say(&format!("  created:   {}", output::utc(s.created_at)));
        output::say(&format!("  last used: {}", output::utc(s.updated_at)));
        output::say(&format!("  ends:      {}", output::utc(s.expires_at)));
    }
    Ok(())
}

async fn revoke(args: SessionsRevokeArgs) -> Result<(), CliError> {
    let stores = open_stores(&args.data).await?;
    let ids: Vec<String> = match &args.all {
        Some(who) => {
            let account = find_account(&stores, who).await?;
            stores
                .tokens
                .sessions_for_account(&account.did, now())
                .await
                .map_err(|e| CliError::failed("could not read the sessions", e))?
                .into_iter()
                .map(|s| s.id)
                .collect()
        }
        None => args.ids.clone(),
    };
    let mut missing = Vec::new();
    for id in &ids {
        let revoked = stores
            .tokens
            .revoke_session(id)
            .await
            .map_err(|e| CliError::failed(format!("could not revoke session {id}"), e))?;
        if revoked {
            tracing::info!(session = %id, "session revoked by the operator");
            output::say(&format!("revoked {id}"));
        } else {
            missing.push(id.clone());
        }
    }
    if args.all.is_some() && ids.is_empty() {
        output::say("no live sessions to revoke");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!("no such session: {}", missing.join(", "))))
    }
}
