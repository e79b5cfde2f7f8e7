//! [`CliError`]: every failure of a subcommand, with the message the user sees and the exit status.
//!
//! Messages are built where the context is known ("could not reach the PLC directory at …") and never
//! contain a token, code, password or key: the library error types they wrap carry none.
//!
//! | exit status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation failed (network, server error, I/O) |
//! | 2 | invalid command line or configuration |
//! | 3 | not logged in (`whoami`, `logout` without a saved session) |
//! | 4 | authentication refused: wrong password, consent denied, session revoked or expired |
//! | 5 | timed out waiting for the browser |
//! | 130 | interrupted (Ctrl-C / SIGTERM during `login`) |

/// The exit statuses, as documented in `atauth --help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit status: 0 success, 1 failure (network, server, I/O), 2 invalid command line or configuration, \
3 not logged in, 4 authentication refused (wrong password, consent denied, session revoked or expired), \
5 timed out waiting for the browser, 130 interrupted.";

/// A subcommand failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// Invalid flags or configuration (exit 2).
    #[error("{0}")]
    Config(String),
    /// No saved session (exit 3).
    #[error("not logged in (no session in {0}); run `atauth login <handle>` first")]
    NotLoggedIn(String),
    /// The server or the user refused (exit 4).
    #[error("{0}")]
    Refused(String),
    /// Nobody completed the login in time (exit 5).
    #[error("timed out after {0} waiting for the login to complete in the browser")]
    Timeout(String),
    /// Ctrl-C or SIGTERM (exit 130).
    #[error("interrupted")]
    Interrupted,
    /// Anything else (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit status.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::Config(_) => 2,
            Self::NotLoggedIn(_) => 3,
            Self::Refused(_) => 4,
            Self::Timeout(_) => 5,
            Self::Interrupted => 130,
        }
    }

    /// A failure with context: `"{context}: {error}"`.
    pub(crate) fn failed(context: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        Self::Failed(format!("{context}: {e}"))
    }
}
