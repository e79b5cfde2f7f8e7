//! `atauth-bench`: a load generator for atproto authorization servers on loopback.
//!
//! - `atauth-bench serve [--port P] [--dir D] [--store sqlite|memory]`: atauth-server (SQLite store, one account
//!   `bench.test` / `bench-pass-123`) on 127.0.0.1, issuer `http://localhost:P`. Prints one JSON line
//!   (`{"ready":true,"url":..,"pid":..}`) and serves until SIGINT/SIGTERM.
//! - `atauth-bench compare [options]`: starts `atauth serve --dev` (the CLI next to this binary;
//!   `--atauth builder`: the `serve` above instead) and the reference PDS of
//!   `interop/` (`ref-pds.mjs`), runs every phase against both, one after the other, and prints one
//!   JSON line per phase and target. `--md FILE` also writes a Markdown table with the ratios.
//!
//! Options of `compare`: `--workers 8` (concurrent workers, each on its own connection from a
//! keep-alive pool and its own token family), `--count 2000` and `--seconds 10` (every phase stops at
//! whichever comes first), `--phases par,refresh,refresh@1,getsession,login,legacy-create,legacy-refresh`
//! (`name@N` overrides the worker count; `par-include`, atauth only: PAR whose scope includes a
//! permission set pinned in the server's `--lexicon-dir`, compared with `par` under the table;
//! `par-expanded`: the same permissions written out, the control),
//! `--targets atauth,reference`, `--md FILE`, `--store sqlite`
//! (`memory`: atauth's in-memory stores instead of SQLite, to separate the store's cost from the rest;
//! `postgres`, `postgres+redis`: `atauth serve --database-url` on a fresh database of the machine's
//! Postgres, and `--redis-url` with a key prefix of its own; a list such as
//! `sqlite,postgres,postgres+redis` runs each in turn, and the Markdown gets a stores table with the
//! database's CPU per request), `--instances 1,2` (with a shared store: also N `atauth serve`
//! processes over one database behind one issuer, each request sent to the next in turn),
//! `--pg-sslmode disable|prefer|require` (appended to the instances' database URL),
//! `--seed-sessions N` (N extra live token families written straight into atauth's SQLite file before
//! it starts: the growth runs), `--atauth-before PATH` (another `atauth` binary, e.g. a release
//! build of the previous commit, started the same way as the target `atauth-before`: with
//! `--targets atauth-before,atauth` every phase runs on the old build, then on the new one, and the
//! Markdown gets a before → after table; repeat phases to interleave more pairs).
//!
//! Every request carries a fresh DPoP proof (new `jti`, the latest `DPoP-Nonce` of the target; a
//! `use_dpop_nonce` answer is retried once with the new nonce and counted). Only loopback targets are
//! accepted. Server CPU per request = delta of utime+stime in `/proc/<server pid>/stat` / requests.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line tool that reports on stdout")]

mod client_login;
mod compare;
mod measure;
mod opts;
mod report;
mod server;
mod stats;
mod target;
mod workloads;

use opts::Opts;

/// The error of every command.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("serve") => rt.block_on(server::serve(&Opts::parse(&args[1..])?)),
        Some("compare") => rt.block_on(compare::compare(Opts::parse(&args[1..])?)),
        Some("client-login") => rt.block_on(client_login::run(client_login::Opts::parse(&args[1..])?)),
        _ => {
            eprintln!(
                "usage: atauth-bench serve [--port P] [--dir D] | compare [options] (see the crate docs)"
            );
            std::process::exit(2)
        }
    }
}
