//! `atauth logout`: revoke the saved session at its server and delete it.
//!
//! OAuth: the refresh token and the access token are revoked at the authorization server's
//! revocation endpoint (RFC 7009, with the session's DPoP key), then the file is deleted. A legacy
//! session is ended with `com.atproto.server.deleteSession`. The local file is deleted even when the
//! server cannot be reached; that case is reported (exit 1) because the tokens may still work there.

use std::sync::Arc;

use atauth_client::PasswordSession;

use crate::cli::LogoutArgs;
use crate::error::CliError;
use crate::login::legacy_error;
use crate::output;
use crate::paths::DirLock;
use crate::session_file::{self, FileStore, Saved};

/// Runs `atauth logout`.
pub(crate) async fn run(args: LogoutArgs) -> Result<(), CliError> {
    let dir = session_file::dir_from(args.session.session_dir.as_ref())?;
    let _lock = DirLock::acquire(&dir).await?;
    let saved = session_file::load(&dir)?.ok_or_else(|| CliError::NotLoggedIn(dir.display().to_string()))?;
    let who = saved.describe();
    let result = match saved {
        Saved::Oauth { client, session } => {
            let store = Arc::new(FileStore::new(&dir, client.clone()));
            let oauth = session_file::oauth_client(&client, store)?;
            match oauth.restore(&session.key).await {
                // Revokes (errors are not reported by the library) and deletes the file.
                Ok(Some(s)) => {
                    s.sign_out().await.map_err(|e| CliError::failed("could not delete the saved session", e))
                }
                Ok(None) => Err(CliError::Failed("the saved session was unusable and was deleted".into())),
                Err(e) => Err(CliError::failed("could not read the saved session", e)),
            }
        }
        Saved::AppPassword { dev, session } => match dev.http_client() {
            Ok(http) => PasswordSession::resume(http, session)
                .logout()
                .await
                .map_err(|e| legacy_error("the server did not end the session", &e)),
            Err(e) => Err(e),
        },
    };
    session_file::remove(&dir)?;
    result?;
    output::say(&format!("Logged out {who}: the session was revoked and deleted"));
    Ok(())
}
