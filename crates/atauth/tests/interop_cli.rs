//! End-to-end tests of the `atauth` binary that need the reference peers of `interop/`:
//!
//! - against our own `atauth serve` (with the reference **PLC directory**, where accounts get their
//!   did:plc): the demo account, `atauth login` → consent through the server's interim consent API →
//!   session file (0600) → `whoami` → `sessions list` → `logout` (file gone, the old access token
//!   refused by the server), then the same with `--app-password` (legacy `createSession`); operator revocation ending a CLI session; an account created with
//!   `atauth account create` surviving a restart;
//! - against the Bluesky **reference PDS**: `atauth login` with consent through the reference
//!   provider's UI API, `whoami`, `logout`; and `atauth login --app-password`.
//!
//! The harness must be installed (`interop/setup.sh`); otherwise these tests fail and say so, unless
//! `ATAUTH_SKIP_INTEROP=1`.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

mod interop {
    use std::time::Duration;

    use atauth_crypto::dpop::{DpopSigner, ProofParams};
    use atauth_crypto::{Jwk, PrivateKey};
    use atauth_testkit::{consent, interop};

    use crate::common::*;

    const PLC_TTL: Duration = Duration::from_secs(170);

    /// The value after `label` on a line of `text` (e.g. `  did:      did:plc:…`).
    fn field(text: &str, label: &str) -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
    }

    fn dev_flags<'a>(plc: &'a str, resolver: &'a str, session_dir: &'a str) -> Vec<&'a str> {
        vec![
            "--session-dir",
            session_dir,
            "--plc-url",
            plc,
            "--handle-resolver",
            resolver,
            "--allow-http-loopback",
            "--no-browser",
            "--timeout",
            "90s",
        ]
    }

    /// `GET /xrpc/com.atproto.server.getSession` with this access token and DPoP key, answering one
    /// nonce challenge. Returns the final status and `WWW-Authenticate`.
    async fn get_session_with(pds: &str, token: &str, dpop_jwk: &serde_json::Value) -> (u16, String) {
        let jwk: Jwk = serde_json::from_value(dpop_jwk.clone()).unwrap();
        let signer = DpopSigner::new(PrivateKey::from_jwk(&jwk).unwrap());
        let url = format!("{pds}/xrpc/com.atproto.server.getSession");
        let mut nonce: Option<String> = None;
        for _ in 0..2 {
            let iat = atauth_crypto::clock::unix_seconds(std::time::SystemTime::now());
            let proof = signer.proof(&ProofParams {
                method: "GET",
                url: &url,
                nonce: nonce.as_deref(),
                access_token: Some(token),
                iat,
            });
            let res = http()
                .get(&url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let www =
                res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let new_nonce = res.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()).map(str::to_owned);
            if status == 401 && www.contains("use_dpop_nonce") && nonce.is_none() {
                nonce = new_nonce;
                continue;
            }
            return (status, www);
        }
        panic!("two nonce challenges in a row");
    }

    /// Starts the PLC and `atauth serve` with the demo account; returns them with the demo
    /// account's DID and password as printed.
    fn plc_and_serve(home: &TempDir) -> (interop::RefPeers, String, Serve, String, String) {
        let dir = interop::installed().expect("checked by the caller");
        let (plc_proc, plc) = interop::start_plc(&dir, PLC_TTL);
        let data = home.join("data");
        let serve = Serve::start(&home.0, &data, &["--plc-url", &plc, "--demo-account", "alice.test"]);
        let printed = serve.stdout.text();
        assert!(printed.contains("DEMO credential"), "{printed}");
        let did = field(&printed, "did:");
        let password = field(&printed, "password:");
        assert!(did.starts_with("did:plc:"), "{did}");
        (plc_proc, plc, serve, did, password)
    }

    /// `atauth login alice.test` against `serve`, approved through the interim consent API.
    async fn login_to_serve(home: &TempDir, plc: &str, serve: &Serve, password: &str, sdir: &str) -> Login {
        let mut args = vec!["alice.test"];
        args.extend(dev_flags(plc, &serve.issuer, sdir));
        let mut login = Login::start(&home.0, &args);
        assert!(login.authorize_url.as_str().starts_with(&format!("{}/oauth/authorize?", serve.issuer)));
        let redirect =
            consent::atauth_interim(&login.authorize_url, "alice.test", password, true).await.unwrap();
        assert_eq!(redirect.host_str(), Some("127.0.0.1"));
        let (status, page) = consent::deliver(&redirect).await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("alice.test"), "{page}");
        let status = login.wait(60);
        assert!(status.success(), "login failed: {}", login.stderr.text());
        login
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interop_login_whoami_logout_against_atauth_serve() {
        if interop::installed().is_none() {
            return;
        }
        let home = TempDir::new("e2e-serve");
        let (_plc_proc, plc, serve, did, password) = plc_and_serve(&home);
        let sdir = home.join("session");
        let sdir_s = sdir.to_str().unwrap();

        let login = login_to_serve(&home, &plc, &serve, &password, sdir_s).await;
        assert!(
            login.stdout.text().contains(&format!("Logged in as alice.test ({did})")),
            "{}",
            login.stdout.text()
        );
        let file = sdir.join("session.json");
        #[cfg(unix)]
        {
            assert_eq!(mode(&file), 0o600, "the session file is owner-only");
            assert_eq!(mode(&sdir), 0o700, "the session directory is owner-only");
        }
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(saved["kind"], "oauth");
        assert_eq!(saved["session"]["key"]["did"], did.as_str());
        let access_token = saved["session"]["tokens"]["access_token"].as_str().unwrap().to_owned();
        let dpop_key = saved["session"]["dpop_key"].clone();
        let pds = saved["session"]["pds_url"].as_str().unwrap().trim_end_matches('/').to_owned();
        assert_eq!(get_session_with(&pds, &access_token, &dpop_key).await.0, 200, "the saved token works");

        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert!(out.status.success());
        assert!(stdout(&out).starts_with(&format!("alice.test ({did})")), "{}", stdout(&out));
        assert!(stdout(&out).contains("session: oauth"));
        let out = run(&home.0, &["whoami", "--session-dir", sdir_s, "--json"]);
        let me: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!((me["did"].as_str(), me["handle"].as_str()), (Some(did.as_str()), Some("alice.test")));

        // The operator sees the session.
        let data = home.join("data");
        let out = run(&home.0, &["sessions", "list", "alice.test", "--data-dir", data.to_str().unwrap()]);
        assert!(out.status.success());
        assert!(stdout(&out).contains("1 live session"), "{}", stdout(&out));
        assert!(stdout(&out).contains("client:    http://localhost?redirect_uri="), "{}", stdout(&out));

        let out = run(&home.0, &["logout", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("Logged out alice.test"), "{}", stdout(&out));
        assert!(!file.exists(), "the session file is deleted");
        let (status, www) = get_session_with(&pds, &access_token, &dpop_key).await;
        assert_eq!(status, 401, "the revoked access token is refused");
        assert!(www.contains("invalid_token"), "{www}");
        let out = run(&home.0, &["sessions", "list", "alice.test", "--data-dir", data.to_str().unwrap()]);
        assert!(stdout(&out).contains("no live sessions"), "{}", stdout(&out));
        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert_eq!(out.status.code(), Some(3));

        // A legacy session against our server's createSession.
        let mut args = vec!["login", "--app-password", "alice.test", "--password-stdin"];
        let flags = dev_flags(&plc, &serve.issuer, sdir_s);
        args.extend(&flags[..7]);
        let out = run_with_stdin(&home.0, &args, Some("not-the-password\n"));
        assert_eq!(out.status.code(), Some(4), "wrong password: {}", stderr(&out));
        let out = run_with_stdin(&home.0, &args, Some(&format!("{password}\n")));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&format!("Logged in as alice.test ({did}) with an app password")));
        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("app password (legacy)"), "{}", stdout(&out));
        let out = run(&home.0, &["logout", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!file.exists());
        assert!(serve.stop().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interop_operator_revocation_ends_a_cli_session() {
        if interop::installed().is_none() {
            return;
        }
        let home = TempDir::new("e2e-revoke");
        let (_plc_proc, plc, serve, _did, password) = plc_and_serve(&home);
        let sdir = home.join("session");
        let sdir_s = sdir.to_str().unwrap();
        login_to_serve(&home, &plc, &serve, &password, sdir_s).await;
        let data = home.join("data");
        let data_s = data.to_str().unwrap();

        let out = run(&home.0, &["sessions", "list", "alice.test", "--data-dir", data_s, "--json"]);
        let list: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let id = list[0]["id"].as_str().unwrap().to_owned();
        let out = run(&home.0, &["sessions", "revoke", &id, "--data-dir", data_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&format!("revoked {id}")));
        let out = run(&home.0, &["sessions", "revoke", &id, "--data-dir", data_s]);
        assert_eq!(out.status.code(), Some(1), "revoking twice: no such session");

        // The CLI's access token is refused, its refresh token too: the session has ended.
        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(stderr(&out).contains("atauth login"), "{}", stderr(&out));
        assert!(!sdir.join("session.json").exists(), "an ended session is removed");

        // `revoke --all` on a fresh login.
        login_to_serve(&home, &plc, &serve, &password, sdir_s).await;
        let out = run(&home.0, &["tokens", "revoke", "--all", "alice.test", "--data-dir", data_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert_eq!(out.status.code(), Some(4));
        assert!(serve.stop().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interop_account_created_by_admin_survives_restart() {
        let Some(dir) = interop::installed() else { return };
        let (_plc_proc, plc) = interop::start_plc(&dir, PLC_TTL);
        let home = TempDir::new("e2e-account");
        let data = home.join("data");
        let data_s = data.to_str().unwrap();
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();

        let out = run_with_stdin(
            &home.0,
            &["account", "create", "--handle", "bob.test", "--email", "bob@example.test", "--password-stdin"],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "without server settings: {}", stderr(&out));
        let args = [
            "account",
            "create",
            "--handle",
            "bob.test",
            "--email",
            "bob@example.test",
            "--password-stdin",
            "--dev",
            "--port",
            &port,
            "--plc-url",
            &plc,
            "--data-dir",
            data_s,
        ];
        let out = run_with_stdin(&home.0, &args, Some("bob-password-123\n"));
        assert!(out.status.success(), "{}", stderr(&out));
        let created = stdout(&out);
        assert!(!created.contains("bob-password-123"), "a given password is never printed");
        let did = created.split('(').nth(1).unwrap().split(')').next().unwrap().to_owned();
        assert!(did.starts_with("did:plc:"), "{created}");
        let out = run_with_stdin(&home.0, &args, Some("another\n"));
        assert_eq!(out.status.code(), Some(2), "duplicate handle");
        assert!(stderr(&out).contains("already taken"), "{}", stderr(&out));

        for round in 0..2 {
            let serve = Serve::start_args(
                &home.0,
                &["serve", "--dev", "--port", &port, "--data-dir", data_s, "--plc-url", &plc],
            );
            let (status, body) =
                get(&format!("{}/xrpc/com.atproto.identity.resolveHandle?handle=bob.test", serve.addr)).await;
            assert_eq!((status, body), (200, format!("{{\"did\":\"{did}\"}}")), "round {round}");
            assert!(serve.stop().success());
        }
        let out = run(&home.0, &["account", "show", "bob.test", "--data-dir", data_s, "--json"]);
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["did"], did.as_str());
        assert_eq!(v["email"], "bob@example.test");
        assert_eq!(v["status"], "active");
        // The PLC directory serves the DID document naming this server as the PDS.
        let (status, doc) = get(&format!("{plc}/{did}")).await;
        assert_eq!(status, 200);
        assert!(doc.contains(&format!("http://localhost:{port}")), "{doc}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interop_login_against_the_reference_pds_oauth_and_app_password() {
        let Some(dir) = interop::installed() else { return };
        let (_peers, r) = interop::start_ref_pds(&dir, Duration::from_secs(170));
        let home = TempDir::new("e2e-refpds");
        let sdir = home.join("session");
        let sdir_s = sdir.to_str().unwrap();

        let mut args = vec![r.handle.as_str()];
        args.extend(dev_flags(&r.plc_url, &r.pds_url, sdir_s));
        let mut login = Login::start(&home.0, &args);
        assert!(login.authorize_url.as_str().starts_with(&format!("{}/oauth/authorize?", r.pds_url)));
        let redirect =
            consent::reference_provider(&login.authorize_url, &r.handle, &r.password).await.unwrap();
        let (status, page) = consent::deliver(&redirect).await.unwrap();
        assert_eq!(status, 200, "{page}");
        let status = login.wait(60);
        assert!(status.success(), "{}", login.stderr.text());
        assert!(login.stdout.text().contains(&format!("Logged in as {} ({})", r.handle, r.did)));
        #[cfg(unix)]
        assert_eq!(mode(&sdir.join("session.json")), 0o600);

        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).starts_with(&format!("{} ({})", r.handle, r.did)), "{}", stdout(&out));
        let out = run(&home.0, &["logout", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!sdir.join("session.json").exists());

        // Legacy app-password session (com.atproto.server.createSession).
        let mut args = vec!["login", "--app-password", r.handle.as_str(), "--password-stdin"];
        let flags = dev_flags(&r.plc_url, &r.pds_url, sdir_s);
        args.extend(&flags[..7]);
        let out = run_with_stdin(&home.0, &args, Some("wrong-password\n"));
        assert_eq!(out.status.code(), Some(4), "wrong password: {}", stderr(&out));
        let out = run_with_stdin(&home.0, &args, Some(&format!("{}\n", r.password)));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("app password"), "{}", stdout(&out));
        #[cfg(unix)]
        assert_eq!(mode(&sdir.join("session.json")), 0o600);
        let out = run(&home.0, &["whoami", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&r.did) && stdout(&out).contains("app password"), "{}", stdout(&out));
        let out = run(&home.0, &["logout", "--session-dir", sdir_s]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!sdir.join("session.json").exists());
    }
}
