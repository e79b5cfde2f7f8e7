//! A development authorization server with one account, for trying the sign-in and consent UI in a
//! browser and for the interop suite's `ref-client-vs-serve` case (until it moves to `atauth serve`).
//!
//! ```sh
//! cd interop && ./node22 ref-pds.mjs --plc-only      # prints {"ready":true,"plcUrl":...}
//! cargo run -p atauth-server --example ui_server -- --plc http://127.0.0.1:PLCPORT
//! ```
//!
//! Options: `--plc URL` (required: the account's `did:plc` is registered there), `--port N`
//! (default 0 = a free port), `--handle H` (default `alice.test`), `--password P` (default
//! `test-pass-123`), `--name NAME` (branding). The issuer is `http://localhost:PORT` (development
//! mode), stores are in memory, and the headless consent API is off, so only the HTML UI can
//! approve. Prints one JSON line
//! `{"ready":true,"url":…,"handle":…,"did":…,"password":…,"pid":…}` when listening, then serves
//! until SIGINT/SIGTERM.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use atauth_crypto::SecretString;
use atauth_server::account::NewAccount;
use atauth_server::{AuthServer, Branding};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("usage: ui_server --plc URL [--port N] [--handle H] [--password P] [--name NAME]");
        return ExitCode::SUCCESS;
    }
    let Some(plc) = arg(&args, "--plc").and_then(|u| url::Url::parse(&u).ok()) else {
        eprintln!("ui_server: --plc URL is required (see --help)");
        return ExitCode::from(2);
    };
    let port: u16 = arg(&args, "--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let handle = arg(&args, "--handle").unwrap_or_else(|| "alice.test".into());
    let password = arg(&args, "--password").unwrap_or_else(|| "test-pass-123".into());
    let name = arg(&args, "--name").unwrap_or_else(|| "atauth".into());

    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ui_server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let url = format!("http://localhost:{port}");
    let server = match AuthServer::builder(url.clone())
        .dev_mode(true)
        .plc_directory(plc)
        .handle_domains([".test"])
        .password_consent_api(false)
        .branding(Branding { name, ..Branding::default() })
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ui_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let account = match server
        .create_account(NewAccount { handle, email: None, password: SecretString::new(password.clone()) })
        .await
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ui_server: creating the account failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ready = serde_json::json!({
        "ready": true,
        "url": url,
        "handle": account.handle,
        "did": account.did,
        "password": password,
        "pid": std::process::id(),
    });
    println!("{ready}");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    match atauth_server::web::serve(server, listener, None, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ui_server: {e}");
            ExitCode::FAILURE
        }
    }
}
