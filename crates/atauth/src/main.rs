//! `atauth`: the command line of the atauth project.
//!
//! - `atauth serve`: run the authorization server (SQLite in a data directory, keys generated on
//!   first start), with `/metrics`, health, graceful shutdown, and an optional demo account.
//! - `atauth login | whoami | logout`: log in from a terminal as a loopback OAuth client (or with an
//!   app password), use the saved session, revoke it.
//! - `atauth account …`, `atauth sessions …`: operator administration on the server's data directory.
//!
//! `main` only parses the command line, sets up logging and the runtime, and maps the outcome to an
//! exit status; each subcommand lives in its own module. See `atauth --help`.

mod account;
mod callback;
mod cli;
mod durations;
mod error;
mod logging;
mod login;
mod logout;
mod output;
mod paths;
mod prompt;
mod serve;
mod server_args;
mod session_file;
mod sessions;
mod signals;
mod whoami;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// mimalloc instead of glibc's malloc: glibc keeps the 16 MiB scrypt buffers of every thread's arena
/// after the hash (its mmap threshold rises to that size after the first free), so server RSS grew
/// to several hundred MiB under sign-in load; mimalloc returns them to the system and is faster on
/// the many small allocations of a request (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log, cli.command.default_log_filter());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(&CliError::Failed(format!("could not start the async runtime: {e}"))),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Login(args) => login::run(args).await,
        Command::Whoami(args) => whoami::run(args).await,
        Command::Logout(args) => logout::run(args).await,
        Command::Account(cmd) => account::run(cmd).await,
        Command::Sessions(cmd) => sessions::run(cmd).await,
    }
}

fn report(e: &CliError) -> ExitCode {
    output::error(&format!("error: {e}"));
    ExitCode::from(e.exit_code())
}
