//! Interop against the reference implementations from `interop/` (started on loopback):
//!
//! - our `did:plc` genesis operations (DAG-CBOR, ES256K low-S signature, DID derivation) are accepted
//!   by the reference PLC directory (`@did-plc/server`) and resolve to the document we intended;
//! - the reference OAuth client (`@atproto/oauth-client-node`, `ref-client-login.mjs --consent external`)
//!   logs in against our server over real sockets: identity resolution through our `resolveHandle` and
//!   the PLC, metadata discovery, PAR with DPoP nonces, consent (driven here through the interim consent
//!   API), code exchange with its `sub`/`iss` checks, DPoP-bound `getSession`, refresh, `getSession` again.
//!
//! The harness lives in `interop/` (override with `ATAUTH_INTEROP_DIR`). If it is not installed the tests
//! **fail** and say to run `interop/setup.sh`, unless `ATAUTH_SKIP_INTEROP=1` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_docs)]

mod interop {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    use atauth_crypto::SecretString;
    use atauth_identity::http::{HttpRequest, SafeHttpClient};
    use atauth_server::AuthServer;
    use atauth_server::account::NewAccount;
    use atauth_testkit::interop::RefPeers;
    use atauth_testkit::process::ChildGuard;
    use url::Url;

    const PASSWORD: &str = "interop-pass-123";

    /// The harness directory, or `None` when skipped on request (the test kit's shared rule).
    fn installed() -> Option<PathBuf> {
        atauth_testkit::interop::installed()
    }

    /// Starts the reference PLC directory alone; returns it (stopped on drop) and its URL.
    fn start_plc(dir: &Path) -> (RefPeers, Url) {
        let (peers, url) = atauth_testkit::interop::start_plc(dir, Duration::from_secs(170));
        (peers, Url::parse(&url).unwrap())
    }

    fn http() -> SafeHttpClient {
        SafeHttpClient::builder().allow_http_loopback(true).timeout(Duration::from_secs(15)).build().unwrap()
    }

    async fn server_on_socket(plc: &Url) -> (AuthServer, String, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://localhost:{port}");
        let server = AuthServer::builder(&url)
            .dev_mode(true)
            .plc_directory(plc.clone())
            .handle_domains([".test"])
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(atauth_server::web::serve(server.clone(), listener, None, async move {
            let _ = rx.await;
        }));
        (server, url, tx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interop_plc_accepts_our_genesis_operations() {
        let Some(dir) = installed() else { return };
        let (_plc_proc, plc) = start_plc(&dir);
        let (server, url, stop) = server_on_socket(&plc).await;
        let account = server
            .create_account(NewAccount {
                handle: "alice.test".into(),
                email: Some("alice@example.test".into()),
                password: SecretString::new(PASSWORD),
            })
            .await
            .expect("the reference PLC accepted our genesis operation");
        assert!(account.did.starts_with("did:plc:") && account.did.len() == 32);

        // The directory serves the document we meant.
        let doc: serde_json::Value = http()
            .get_json_exact_200_with_types(
                &plc.join(&format!("/{}", account.did)).unwrap(),
                64 * 1024,
                &["application/json", "application/did+ld+json"],
            )
            .await
            .unwrap();
        assert_eq!(doc["id"], account.did);
        assert_eq!(doc["alsoKnownAs"][0], "at://alice.test");
        assert_eq!(doc["service"][0]["serviceEndpoint"], url);
        let key = atauth_crypto::PrivateKey::from_hex(
            atauth_crypto::Algorithm::Es256k,
            account.signing_key_hex.as_ref().unwrap().expose_secret(),
        )
        .unwrap();
        // The operation data carries exactly our keys (the document renders them in a legacy form).
        let data: serde_json::Value = http()
            .get_json_exact_200(&plc.join(&format!("/{}/data", account.did)).unwrap(), 64 * 1024)
            .await
            .unwrap();
        assert_eq!(data["verificationMethods"]["atproto"], key.public_key().to_did_key());
        assert_eq!(data["rotationKeys"].as_array().unwrap().len(), 1);
        assert_eq!(data["services"]["atproto_pds"]["endpoint"], url);

        // Our identity crate resolves it both ways through our resolveHandle and the PLC (ID-HANDLE-07).
        let res = http()
            .send(HttpRequest::get(
                Url::parse(&format!("{url}/xrpc/com.atproto.identity.resolveHandle?handle=alice.test"))
                    .unwrap(),
            ))
            .await
            .unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&res.body).unwrap()["did"], account.did);

        // A second account gets its own DID; duplicate handles are refused before touching the PLC.
        let bob = server
            .create_account(NewAccount {
                handle: "bob.test".into(),
                email: None,
                password: SecretString::new(PASSWORD),
            })
            .await
            .unwrap();
        assert_ne!(bob.did, account.did);
        let dup = server
            .create_account(NewAccount {
                handle: "alice.test".into(),
                email: None,
                password: SecretString::new(PASSWORD),
            })
            .await;
        assert!(matches!(dup, Err(atauth_server::account::CreateAccountError::HandleTaken)));
        let _ = stop.send(());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interop_reference_client_logs_in_against_our_server() {
        let Some(dir) = installed() else { return };
        let (_plc_proc, plc) = start_plc(&dir);
        let (server, url, stop) = server_on_socket(&plc).await;
        server
            .create_account(NewAccount {
                handle: "alice.test".into(),
                email: None,
                password: SecretString::new(PASSWORD),
            })
            .await
            .unwrap();

        let mut child = Command::new(dir.join("node22"))
            .args(["ref-client-login.mjs", "--pds", &url, "--plc", plc.as_str().trim_end_matches('/')])
            .args([
                "--handle",
                "alice.test",
                "--password",
                PASSWORD,
                "--consent",
                "external",
                "--timeout",
                "60",
            ])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ref-client-login.mjs");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut proc = ChildGuard::new(child);
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[ref-client stderr] {line}");
                if line.starts_with("{\"authorizeUrl\"") {
                    let _ = tx.send(line);
                }
            }
        });
        let (otx, orx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let out: Vec<String> = BufReader::new(stdout).lines().map_while(Result::ok).collect();
            let _ = otx.send(out.join("\n"));
        });

        let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the reference client printed no authorizeUrl (see its stderr above)");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let authorize = Url::parse(v["authorizeUrl"].as_str().unwrap()).unwrap();
        assert_eq!(authorize.as_str().split('?').next().unwrap(), format!("{url}/oauth/authorize"));
        let q: std::collections::HashMap<String, String> = authorize.query_pairs().into_owned().collect();

        // Consent through the interim API; then deliver the redirect to the client's loopback listener.
        let res = http()
            .send(HttpRequest::post_form(
                Url::parse(&format!("{url}/oauth/authorize/sign-in-and-approve")).unwrap(),
                &[
                    ("client_id", &q["client_id"]),
                    ("request_uri", &q["request_uri"]),
                    ("identifier", "alice.test"),
                    ("password", PASSWORD),
                ],
            ))
            .await;
        let location = match res {
            Err(atauth_identity::http::HttpError::Redirect { location: Some(l), .. }) => l,
            other => panic!("expected a 303 from the consent API, got {other:?}"),
        };
        let cb = http().send(HttpRequest::get(Url::parse(&location).unwrap())).await.unwrap();
        assert!(cb.status.is_success(), "callback listener answered {}", cb.status);

        let out = tokio::task::spawn_blocking(move || orx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the reference client did not finish");
        let status = proc.child_mut().wait().unwrap();
        let result: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap_or_default();
        assert!(status.success() && result["ok"] == true, "reference client failed: {out}");
        let steps: Vec<&str> =
            result["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(
            steps,
            ["authorize", "consent", "callback", "token", "getSession", "refresh", "getSession2"]
        );
        let _ = stop.send(());
    }
}
