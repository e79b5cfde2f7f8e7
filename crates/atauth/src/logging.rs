//! Log output: `tracing-subscriber` to stderr, text or JSON. The filter comes from `--log` /
//! `ATAUTH_LOG`, else `RUST_LOG`, else the subcommand's default (`info` for `serve`, `warn` for the
//! client commands, whose output is for people).
//!
//! Nothing logged anywhere in atauth contains a token, code, password or private key: the libraries
//! log identifiers (DIDs, handles, routes, statuses) and redact secrets in `Debug`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};
use crate::output;

/// Installs the global subscriber.
pub(crate) fn init(args: &LogArgs, default_filter: &str) {
    let spec = args
        .filter
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| default_filter.to_owned());
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        output::error(&format!("invalid log filter {spec:?} ({e}); using {default_filter:?}"));
        EnvFilter::new(default_filter)
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
