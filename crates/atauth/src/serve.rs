//! `atauth serve`: the authorization server on a socket.
//!
//! Startup: bind the listener (so `--port 0` and a `--dev` issuer of `http://localhost:PORT` agree),
//! build the server from [`ServerArgs`](crate::server_args::ServerArgs) (SQLite database and keys
//! in the data directory; the signing key is generated on first start, mode 0600), create the
//! `--demo-account` if asked and missing,
//! install the Prometheus recorder for `/metrics`, then print one line on stdout,
//! `atauth serve: listening on http://ADDR (issuer URL)`, and serve until SIGINT or SIGTERM, when it
//! stops accepting, finishes in-flight requests and exits 0.

use atauth_crypto::SecretString;
use tracing::info;

use crate::account;
use crate::cli::ServeArgs;
use crate::error::CliError;
use crate::output;
use crate::signals::Signals;

/// Runs the server until a signal.
pub(crate) async fn run(args: ServeArgs) -> Result<(), CliError> {
    let mut signals = Signals::install();
    let s = &args.server;
    let listener = tokio::net::TcpListener::bind((s.bind, s.port))
        .await
        .map_err(|e| CliError::failed(format!("could not listen on {}:{}", s.bind, s.port), e))?;
    let addr = listener.local_addr().map_err(|e| CliError::failed("listener address", e))?;
    let built = tokio::task::block_in_place(|| s.build(addr.port()))?;
    let server = built.server.clone();
    info!(
        issuer = server.issuer(),
        data_dir = %built.data_dir.display(),
        signing_key = %built.signing_key_path.display(),
        kid = %built.signing_kid,
        plc = built.plc_url.as_ref().map_or("none", url::Url::as_str),
        handle_domains = ?server.config().handle_domains,
        dev = server.config().dev_mode,
        "atauth serve starting"
    );
    if built.generated_key {
        info!(path = %built.signing_key_path.display(), kid = %built.signing_kid, "generated a new signing key (mode 0600)");
    }

    if let Some(handle) = &args.demo_account {
        let password = args.demo_password.as_deref().map(SecretString::new);
        account::ensure_demo_account(&server, built.plc_url.as_ref(), handle, password).await?;
    }

    let metrics = if args.no_metrics {
        None
    } else {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| CliError::failed("could not set up metrics", e))?;
        Some(handle)
    };

    output::say(&format!("atauth serve: listening on http://{addr} (issuer {})", server.issuer()));
    let shutdown = async move {
        let signal = signals.recv().await;
        info!(signal, "shutting down: no new connections, finishing in-flight requests");
    };
    atauth_server::web::serve(server, listener, metrics, shutdown)
        .await
        .map_err(|e| CliError::failed("the server stopped with an error", e))?;
    info!("atauth serve stopped");
    Ok(())
}
