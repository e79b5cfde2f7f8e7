//! `atauth serve` and the admin commands, run as the built binary on temporary data directories and
//! free ports (no PLC needed here; the account tests that need one are in `interop_cli.rs`).

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_health_metadata_and_metrics_and_stops_cleanly_on_sigterm() {
    let home = TempDir::new("serve-health");
    let serve = Serve::start(&home.0, &home.join("data"), &[]);
    assert!(serve.addr.starts_with("http://127.0.0.1:"), "binds loopback by default: {}", serve.addr);
    assert_eq!(serve.issuer, format!("http://localhost:{}", serve.port), "--dev issuer follows the port");

    let (status, body) = get(&format!("{}/_health", serve.addr)).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let (status, body) = get(&format!("{}/.well-known/oauth-authorization-server", serve.addr)).await;
    assert_eq!(status, 200);
    let meta: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(meta["issuer"], serve.issuer);

    let (status, body) = get(&format!("{}/metrics", serve.addr)).await;
    assert_eq!(status, 200);
    assert!(body.contains("atauth_http_requests_total"), "{body}");
    assert!(body.contains("route=\"/_health\""), "{body}");

    let starting =
        serve.stderr.wait_for(std::time::Duration::from_secs(5), |l| l.contains("atauth serve starting"));
    assert!(starting.is_some(), "{}", serve.stderr.text());
    let status = serve.stop();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_is_generated_0600_and_reused_after_restart() {
    let home = TempDir::new("serve-keys");
    let data = home.join("data");
    let serve = Serve::start(&home.0, &data, &[]);
    let (_, jwks1) = get(&format!("{}/oauth/jwks", serve.addr)).await;
    let generated = serve
        .stderr
        .wait_for(std::time::Duration::from_secs(5), |l| l.contains("generated a new signing key"));
    assert!(generated.is_some(), "first start generates the key");
    assert!(serve.stop().success());

    let key = data.join("oauth-signing-keys.json");
    assert_eq!(mode(&key), 0o600, "the signing key is owner-only");
    assert_eq!(mode(&data), 0o700, "the data directory is owner-only");
    assert_eq!(
        mode(&data.join("atauth.sqlite")),
        0o600,
        "the database (password hashes, repo keys) is owner-only"
    );
    let keys: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    assert!(keys["keys"][0]["d"].is_string(), "the file holds the private key");
    assert!(!jwks1.contains("\"d\""), "the JWKS endpoint publishes only public keys");

    let serve = Serve::start(&home.0, &data, &[]);
    let (_, jwks2) = get(&format!("{}/oauth/jwks", serve.addr)).await;
    assert_eq!(jwks1, jwks2, "the same key after a restart");
    let stderr = serve.stderr.text();
    assert!(serve.stop().success());
    assert!(!stderr.contains("generated a new signing key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_path_flag_and_env_settings_are_honoured() {
    let home = TempDir::new("serve-flags");
    let key = home.join("keys/signing.json");
    let issuer_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = atauth(&home.0);
    cmd.env("ATAUTH_ISSUER", format!("http://localhost:{issuer_port}"))
        .env("ATAUTH_DEV", "true")
        .env("ATAUTH_PORT", issuer_port.to_string())
        .env("ATAUTH_DATA_DIR", home.join("data"))
        .env("ATAUTH_ACCESS_TOKEN_LIFETIME", "5m")
        .env("ATAUTH_BRAND_NAME", "Test PDS")
        .args(["serve", "--signing-key", key.to_str().unwrap(), "--no-metrics"]);
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = atauth_testkit::process::Lines::spawn(child.stdout.take().unwrap(), Some("serve stdout"));
    let stderr = atauth_testkit::process::Lines::spawn(child.stderr.take().unwrap(), Some("serve stderr"));
    let mut proc = atauth_testkit::process::ChildGuard::new(child);
    let line = stdout.wait_for(std::time::Duration::from_secs(60), |l| l.contains("listening on"));
    assert!(line.is_some(), "did not start: {}", stderr.text());
    assert!(line.unwrap().contains(&format!("(issuer http://localhost:{issuer_port})")));
    assert!(key.exists(), "the key is written where --signing-key says");
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    let (status, _) = get(&format!("http://127.0.0.1:{issuer_port}/metrics")).await;
    assert_eq!(status, 404, "--no-metrics turns /metrics off");
    assert!(proc.terminate(std::time::Duration::from_secs(15)).unwrap().success());
}

#[test]
fn serve_without_issuer_or_dev_is_a_configuration_error() {
    let home = TempDir::new("serve-noissuer");
    let out = run(&home.0, &["serve", "--port", "0", "--data-dir", home.join("d").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--issuer"), "{}", stderr(&out));

    let out = run(
        &home.0,
        &[
            "serve",
            "--issuer",
            "http://localhost:1234",
            "--port",
            "0",
            "--data-dir",
            home.join("d").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "plain-http issuers need --dev");
    assert!(stderr(&out).contains("--dev"), "{}", stderr(&out));

    // --dev does not make a non-loopback plain-http issuer acceptable: the error says what does.
    let out = run(
        &home.0,
        &[
            "serve",
            "--dev",
            "--issuer",
            "http://auth.example.com",
            "--port",
            "0",
            "--data-dir",
            home.join("d").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("https://"), "{}", stderr(&out));
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
    assert!(!home.join("d").exists(), "a refused start creates no data directory");
}

#[test]
fn creating_accounts_without_a_plc_directory_is_refused_with_a_clear_error() {
    let home = TempDir::new("acct-noplc");
    let data = home.join("d");
    let out = run(
        &home.0,
        &["account", "create", "--handle", "alice.test", "--dev", "--data-dir", data.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--plc-url"), "{}", stderr(&out));

    // The demo account of `serve` is refused the same way, before the server listens.
    let out = run(
        &home.0,
        &[
            "serve",
            "--dev",
            "--port",
            "0",
            "--data-dir",
            data.to_str().unwrap(),
            "--demo-account",
            "alice.test",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--plc-url"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("listening"), "{}", stdout(&out));
}

#[test]
fn admin_commands_refuse_a_directory_without_a_database() {
    let home = TempDir::new("admin-nodb");
    let out = run(
        &home.0,
        &["sessions", "list", "alice.test", "--data-dir", home.join("nothing").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no atauth database"), "{}", stderr(&out));
    assert!(!home.join("nothing").exists(), "nothing is created by a read-only admin command");
}

/// `--dev-lexicon-dns` answers `_lexicon` lookups locally, so it is refused without `--dev`; a
/// `--lexicon-dir` with a broken document is refused at start, naming the file (SCOPE-10).
#[test]
fn permission_set_options_are_checked_at_start() {
    let home = TempDir::new("serve-lexicons");
    let data = home.join("d");
    let data = data.to_str().unwrap();
    let out = run(
        &home.0,
        &[
            "serve",
            "--issuer",
            "https://pds.example.com",
            "--port",
            "0",
            "--data-dir",
            data,
            "--dev-lexicon-dns",
            "_lexicon.example.app=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--dev-lexicon-dns is only allowed with --dev"), "{}", stderr(&out));

    let lexicons = home.join("lexicons");
    std::fs::create_dir_all(&lexicons).unwrap();
    std::fs::write(lexicons.join("broken.json"), "{ not json").unwrap();
    let out = run(
        &home.0,
        &["serve", "--dev", "--port", "0", "--data-dir", data, "--lexicon-dir", lexicons.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("broken.json"), "{}", stderr(&out));
}

/// The invite-code admin commands (`atauth account invite …`) work on the database of a running
/// `atauth serve --invite-required`, whose sign-up page then asks for a code; `serve --help` shows
/// the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_codes_are_made_listed_and_disabled_next_to_a_running_server() {
    let home = TempDir::new("invites");
    let help = stdout(&run(&home.0, &["serve", "--help"]));
    assert!(help.contains("--invite-required") && help.contains("--sign-up-limit-ip"), "{help}");

    let data = home.join("d");
    let serve = Serve::start(&home.0, &data, &["--invite-required"]);
    let d = data.to_str().unwrap();
    let out = run(&home.0, &["account", "invite", "create", "--count", "2", "--uses", "3", "--data-dir", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    let codes: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    for c in &codes {
        let groups: Vec<&str> = c.split('-').collect();
        assert!(groups.len() == 3 && groups.iter().all(|g| g.len() == 5), "{c}");
    }
    assert!(stderr(&out).contains("created 2 invite code(s), 3 uses each"), "{}", stderr(&out));

    let out = run(&home.0, &["account", "invite", "disable", &codes[0].to_uppercase(), "--data-dir", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("disabled {}", codes[0]));
    let out = run(&home.0, &["account", "invite", "disable", "nope0-nope0-nope0", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no invite code \"nope0-nope0-nope0\""), "{}", stderr(&out));

    let out = run(&home.0, &["account", "invite", "list", "--json", "--data-dir", d]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let by_code = |c: &str| listed.as_array().unwrap().iter().find(|i| i["code"] == c).cloned().unwrap();
    assert_eq!(by_code(&codes[0])["disabled"], true);
    assert_eq!(by_code(&codes[0])["remaining"], 0);
    assert_eq!(by_code(&codes[1])["usesAllowed"], 3);
    assert_eq!(by_code(&codes[1])["remaining"], 3);
    let text = stdout(&run(&home.0, &["account", "invite", "list", "--data-dir", d]));
    assert!(text.contains(&format!("{}  disabled", codes[0])), "{text}");
    assert!(text.contains(&format!("{}  3/3 left", codes[1])), "{text}");

    let page = http().get(format!("{}/account/sign-up", serve.issuer)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("This server is invite-only"), "{body}");
    assert!(serve.stop().success());
}
