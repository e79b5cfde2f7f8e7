//! Reading a password: from the first line of stdin (`--password-stdin`, for scripts), or from the
//! terminal without echo. Never from a flag or an environment variable of the client commands, where
//! it would show in `ps` or the shell history.

use std::io::{BufRead as _, IsTerminal as _};

use atauth_crypto::SecretString;

use crate::error::CliError;

/// Reads a password as described in the module docs.
pub(crate) fn read_password(from_stdin: bool, prompt: &str) -> Result<SecretString, CliError> {
    let raw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::failed("could not read the password from stdin", e))?;
        line
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(|e| CliError::failed("could not read the password", e))?
    } else {
        return Err(CliError::Config(
            "no terminal to ask for the password: pipe it in with --password-stdin".into(),
        ));
    };
    let password = SecretString::new(raw.trim_end_matches(['\r', '\n']));
    if password.is_empty() {
        return Err(CliError::Config("the password is empty".into()));
    }
    Ok(password)
}
