//! The command line (clap derive). Every server setting is a flag and an `ATAUTH_*` environment
//! variable (flags win); client commands share `--session-dir` and the development switches.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use url::Url;

use crate::durations::parse_duration;
use crate::error::EXIT_CODES_HELP;
use crate::server_args::ServerArgs;

/// atauth: the AT Protocol (Bluesky) auth stack. Run an OAuth authorization server, or log in to
/// one from a terminal.
#[derive(Debug, Parser)]
#[command(name = "atauth", version, after_help = EXIT_CODES_HELP, max_term_width = 110)]
pub(crate) struct Cli {
    /// Logging options.
    #[command(flatten)]
    pub(crate) log: LogArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log output (to stderr).
#[derive(Debug, Clone, Args)]
pub(crate) struct LogArgs {
    /// Log filter in `tracing` syntax, e.g. `info` or `warn,atauth_server=debug` (default: `info`
    /// for `serve`, `warn` otherwise; `RUST_LOG` is read when this is unset).
    #[arg(long = "log", env = "ATAUTH_LOG", global = true, value_name = "FILTER")]
    pub(crate) filter: Option<String>,
    /// Log format.
    #[arg(long, env = "ATAUTH_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub(crate) enum Command {
    /// Run the authorization server.
    Serve(ServeArgs),
    /// Log in from this terminal: opens the browser (the URL is always printed too) and waits for
    /// the redirect on a 127.0.0.1 loopback listener. Saves the session for `whoami` and `logout`.
    Login(LoginArgs),
    /// Show the logged-in account, checked with an authenticated `com.atproto.server.getSession`.
    Whoami(WhoamiArgs),
    /// Revoke the saved session at its server and delete it.
    Logout(LogoutArgs),
    /// Accounts on this server (operator commands; work on the server's data directory).
    #[command(subcommand)]
    Account(AccountCommand),
    /// A user's OAuth sessions on this server (operator commands; work on the data directory).
    #[command(subcommand, visible_alias = "tokens")]
    Sessions(SessionsCommand),
}

impl Command {
    /// The log filter used when neither `--log` nor `RUST_LOG` is set.
    pub(crate) fn default_log_filter(&self) -> &'static str {
        match self {
            Self::Serve(_) => "info",
            _ => "warn",
        }
    }
}

/// `atauth serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Server settings.
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Create this account on first start if it does not exist (needs a PLC directory, e.g.
    /// `--plc-url` from `scripts/demo.sh`), and print its handle, DID and password once.
    #[arg(long, env = "ATAUTH_DEMO_ACCOUNT", value_name = "HANDLE", help_heading = "Demo")]
    pub(crate) demo_account: Option<String>,
    /// The demo account's password (default: a random one, printed once at creation).
    #[arg(
        long,
        env = "ATAUTH_DEMO_PASSWORD",
        hide_env_values = true,
        requires = "demo_account",
        help_heading = "Demo"
    )]
    pub(crate) demo_password: Option<String>,
    /// Do not serve Prometheus metrics at `/metrics`.
    #[arg(long, env = "ATAUTH_NO_METRICS", help_heading = "Operations")]
    pub(crate) no_metrics: bool,
}

/// Where the client commands keep the session.
#[derive(Debug, Clone, Args)]
pub(crate) struct SessionDirArgs {
    /// Directory of the saved session (`session.json`, mode 0600; the directory is made 0700).
    /// Default: `$XDG_DATA_HOME/atauth`, i.e. `~/.local/share/atauth`.
    #[arg(long, env = "ATAUTH_SESSION_DIR", value_name = "DIR")]
    pub(crate) session_dir: Option<PathBuf>,
}

/// Development switches for offline use against local servers (e.g. `scripts/demo.sh`). All off by
/// default; they are saved with the session so `whoami`/`logout` reuse them.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DevArgs {
    /// PLC directory for `did:plc` resolution (default `https://plc.directory`).
    #[arg(long, env = "ATAUTH_PLC_URL", value_name = "URL", help_heading = "Development")]
    pub(crate) plc_url: Option<Url>,
    /// Resolve handles with `com.atproto.identity.resolveHandle` on this server instead of DNS and
    /// HTTPS well-known (also admits `.test` handles).
    #[arg(long, env = "ATAUTH_HANDLE_RESOLVER", value_name = "URL", help_heading = "Development")]
    pub(crate) handle_resolver: Option<Url>,
    /// Allow plain `http://` to loopback addresses (PDS, authorization server, PLC) and
    /// `http://localhost` issuers.
    #[arg(long, env = "ATAUTH_ALLOW_HTTP_LOOPBACK", help_heading = "Development")]
    pub(crate) allow_http_loopback: bool,
}

/// `atauth login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Who to log in as: a handle (`alice.bsky.social`), a DID, or the URL of a PDS / authorization
    /// server (you then pick the account there).
    #[arg(value_name = "HANDLE|DID|PDS-URL")]
    pub(crate) input: String,
    /// Session directory.
    #[command(flatten)]
    pub(crate) session: SessionDirArgs,
    /// Development switches.
    #[command(flatten)]
    pub(crate) dev: DevArgs,
    /// Scope to request.
    #[arg(long, default_value = "atproto transition:generic")]
    pub(crate) scope: String,
    /// How long to wait for the browser.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) timeout: Duration,
    /// Port of the loopback callback listener on 127.0.0.1 (default: a free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// Do not open a browser; only print the URL.
    #[arg(long, env = "ATAUTH_NO_BROWSER")]
    pub(crate) no_browser: bool,
    /// Log in with an app password instead (legacy `com.atproto.server.createSession`): the password
    /// is asked for without echo, or read from stdin with `--password-stdin`.
    #[arg(long, help_heading = "App password (legacy)")]
    pub(crate) app_password: bool,
    /// Read the app password from the first line of stdin.
    #[arg(long, requires = "app_password", help_heading = "App password (legacy)")]
    pub(crate) password_stdin: bool,
}

/// `atauth whoami`.
#[derive(Debug, Args)]
pub(crate) struct WhoamiArgs {
    /// Session directory.
    #[command(flatten)]
    pub(crate) session: SessionDirArgs,
    /// Print the `getSession` answer as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `atauth logout`.
#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// Session directory.
    #[command(flatten)]
    pub(crate) session: SessionDirArgs,
}

/// The server's data directory, for the admin commands that only read or change the database.
#[derive(Debug, Clone, Args)]
pub(crate) struct DataDirArgs {
    /// The server's data directory (as given to `atauth serve`).
    /// Default: `$XDG_DATA_HOME/atauth/server`, i.e. `~/.local/share/atauth/server`.
    #[arg(long, env = "ATAUTH_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The Postgres database of `atauth serve --database-url`, instead of the data directory's
    /// SQLite file.
    #[arg(long, env = "ATAUTH_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
}

/// `atauth account …`.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub(crate) enum AccountCommand {
    /// Create an account: registers a did:plc in the PLC directory (`--plc-url`) and stores it.
    /// Takes the same settings as `atauth serve` (issuer, handle domains, data directory, …), since
    /// the DID document names this server as the account's PDS.
    Create(AccountCreateArgs),
    /// Show an account (DID, handle, email, status).
    Show(AccountShowArgs),
    /// Invite codes for sign-up (`atauth serve --invite-required`): create, list, disable.
    #[command(subcommand)]
    Invite(InviteCommand),
}

/// `atauth account invite …`.
#[derive(Debug, Subcommand)]
pub(crate) enum InviteCommand {
    /// Create invite codes and print them, one a line.
    Create(InviteCreateArgs),
    /// List every invite code: uses left, created, the accounts it made.
    List(InviteListArgs),
    /// Disable a code: no more sign-ups with it (the accounts it made stay).
    Disable(InviteDisableArgs),
}

/// `atauth account invite create`.
#[derive(Debug, Args)]
pub(crate) struct InviteCreateArgs {
    /// How many codes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) count: u32,
    /// How many accounts each code may create.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) uses: u32,
    /// Data directory.
    #[command(flatten)]
    pub(crate) data: DataDirArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `atauth account invite list`.
#[derive(Debug, Args)]
pub(crate) struct InviteListArgs {
    /// Data directory.
    #[command(flatten)]
    pub(crate) data: DataDirArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `atauth account invite disable`.
#[derive(Debug, Args)]
pub(crate) struct InviteDisableArgs {
    /// The code.
    pub(crate) code: String,
    /// Data directory.
    #[command(flatten)]
    pub(crate) data: DataDirArgs,
}

/// `atauth account create`.
#[derive(Debug, Args)]
pub(crate) struct AccountCreateArgs {
    /// The handle, under one of the server's handle domains (e.g. `alice.test`).
    #[arg(long)]
    pub(crate) handle: String,
    /// Email address.
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// Read the password from the first line of stdin (default: generate one and print it once).
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Server settings (the same as `atauth serve`).
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// `atauth account show`.
#[derive(Debug, Args)]
pub(crate) struct AccountShowArgs {
    /// Handle or DID.
    pub(crate) account: String,
    /// Data directory.
    #[command(flatten)]
    pub(crate) data: DataDirArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `atauth sessions …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List an account's live OAuth sessions (token families): id, client, scope, times.
    List(SessionsListArgs),
    /// Revoke sessions by id, or all of an account's: their refresh and access tokens stop working
    /// at once, also in a running `atauth serve` on the same data directory.
    Revoke(SessionsRevokeArgs),
}

/// `atauth sessions list`.
#[derive(Debug, Args)]
pub(crate) struct SessionsListArgs {
    /// Handle or DID.
    pub(crate) account: String,
    /// Data directory.
    #[command(flatten)]
    pub(crate) data: DataDirArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `atauth sessions revoke`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["ids", "all"]))]
pub(crate) struct SessionsRevokeArgs {
    /// Session ids (from `atauth sessions list`).
    #[arg(value_name = "SESSION-ID")]
    pub(crate) ids: Vec<String>,
    /// Revoke every session of this account (handle or DID) instead.
    #[arg(long, value_name = "HANDLE|DID")]
    pub(crate) all: Option<String>,
    /// Data directory.
    #[command(flatten)]
    pub(crate) data: DataDirArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
