//! `atauth whoami`: the saved session's account, confirmed by an authenticated
//! `com.atproto.server.getSession` at its PDS (DPoP-bound for OAuth; refreshes if needed and saves
//! the new tokens first).

use std::sync::Arc;

use atauth_client::{Agent, PasswordSession, RefreshError, RequestError};

use crate::cli::WhoamiArgs;
use crate::error::CliError;
use crate::login::legacy_error;
use crate::output;
use crate::paths::DirLock;
use crate::session_file::{self, FileStore, Saved};

/// Runs `atauth whoami`.
pub(crate) async fn run(args: WhoamiArgs) -> Result<(), CliError> {
    let dir = session_file::dir_from(args.session.session_dir.as_ref())?;
    let _lock = DirLock::acquire(&dir).await?;
    let saved = session_file::load(&dir)?.ok_or_else(|| CliError::NotLoggedIn(dir.display().to_string()))?;
    let (me, kind, details): (serde_json::Value, &str, Vec<(&str, String)>) = match saved {
        Saved::Oauth { client, session } => {
            let store = Arc::new(FileStore::new(&dir, client.clone()));
            let oauth = session_file::oauth_client(&client, store)?;
            let s = oauth
                .restore(&session.key)
                .await
                .map_err(|e| CliError::failed("could not read the session", e))?
                .ok_or_else(|| CliError::Failed("the saved session is unusable; log in again".into()))?;
            let me = Agent::new(s.clone())
                .query::<serde_json::Value>("com.atproto.server.getSession", &[])
                .await
                .map_err(session_error)?;
            let info = s.info().await;
            let details = vec![("issuer", info.issuer), ("pds", info.pds_url), ("scope", info.scope)];
            (me, "oauth", details)
        }
        Saved::AppPassword { dev, session } => {
            let s = PasswordSession::resume(dev.http_client()?, session);
            let me =
                Agent::new(s.clone()).query::<serde_json::Value>("com.atproto.server.getSession", &[]).await;
            // A refresh may have rotated the tokens: save them whatever the outcome.
            let data = s.export().await;
            let pds = data.service.clone();
            session_file::save(&dir, &Saved::AppPassword { dev, session: data })?;
            let me = me.map_err(|e| legacy_error("the server refused the saved session", &e))?;
            (me, "app password (legacy)", vec![("pds", pds)])
        }
    };
    if args.json {
        output::say(&me.to_string());
        return Ok(());
    }
    let did = me["did"].as_str().unwrap_or("?");
    let handle = me["handle"].as_str().unwrap_or("(no handle)");
    output::say(&format!("{handle} ({did})"));
    output::say(&format!("  session: {kind}"));
    for (k, v) in details {
        output::say(&format!("  {k}: {}{v}", " ".repeat(7usize.saturating_sub(k.len()))));
    }
    Ok(())
}

/// Maps a failed authenticated request of an OAuth session.
pub(crate) fn session_error(e: RequestError) -> CliError {
    match e {
        RequestError::Refresh(
            RefreshError::SessionEnded(_)
            | RefreshError::SessionNotFound
            | RefreshError::IssuerChanged { .. },
        ) => CliError::Refused(format!("{e}; the saved session was removed: run `atauth login` again")),
        RequestError::Xrpc { status: 401, .. } => {
            CliError::Refused(format!("the server refused the saved session ({e}); run `atauth login` again"))
        }
        other => CliError::failed("getSession failed", other),
    }
}
