//! Interop with the reference PDS for legacy sessions: an account created by the reference PDS
//! (`interop/ref-pds.mjs --data-dir`) has its scrypt hash read from the reference's `account.sqlite`;
//! atauth verifies it (reference format: N=2^14, r=8, p=1, 64-byte key, `salt:hexhash`) and a
//! `createSession` against atauth with that hash and the reference password succeeds;
//! - the reference legacy client, `@atproto/api`'s `AtpAgent` (`interop/atp-agent-legacy.mjs`), logs in
//!   to atauth over a real socket with the account password and with an app password, calls
//!   getSession, refreshes, calls getSession again and deletes the session.
//!
//! Fails when the harness is not installed (run `interop/setup.sh`), unless `ATAUTH_SKIP_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use atauth_crypto::SecretString;
use atauth_server::AuthServer;
use atauth_server::password::verify_sync;
use atauth_server::store::{AccountRecord, AccountStatus};
use atauth_testkit::process::ChildGuard;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

const PASSWORD: &str = "ref-hash-pass-123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_reference_pds_password_hash_verifies_and_logs_in_to_atauth() {
    let Some(dir) = atauth_testkit::interop::installed() else { return };
    let data = std::env::temp_dir()
        .join(format!("atauth-refhash-{}", hex::encode(atauth_crypto::random::random_bytes::<6>())));
    std::fs::create_dir_all(&data).unwrap();
    let mut child = Command::new(dir.join("node22"))
        .args([
            "ref-pds.mjs",
            "--accounts",
            "hashy.test",
            "--password",
            PASSWORD,
            "--ttl",
            "110",
            "--data-dir",
        ])
        .arg(&data)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start interop/ref-pds.mjs");
    let stdout = child.stdout.take().unwrap();
    let proc = ChildGuard::new(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line =
        match tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60))).await.unwrap() {
            Ok(Some(Ok(l))) => l,
            other => panic!("ref-pds.mjs printed no JSON line: {other:?}"),
        };
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(info["ready"], true, "{line}");
    let did = info["accounts"][0]["did"].as_str().unwrap().to_owned();

    // The reference's stored hash, read from its own database.
    let db = rusqlite::Connection::open_with_flags(
        data.join("account.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let stored: String =
        db.query_row("SELECT passwordScrypt FROM account WHERE did = ?1", [&did], |r| r.get(0)).unwrap();
    drop(db);
    drop(proc);
    let (salt, hash) = stored.split_once(':').expect("salt:hexhash");
    assert_eq!((salt.len(), hash.len()), (32, 128), "reference format");
    let stored = SecretString::new(stored);
    assert!(verify_sync(PASSWORD, &stored).unwrap(), "the reference PDS's hash verifies in atauth");
    assert!(!verify_sync("wrong-password", &stored).unwrap());

    // A migrated account keeps its password: createSession against atauth with the reference hash.
    let server = AuthServer::builder("https://pds.example.com")
        .service_did("did:web:pds.example.com")
        .handle_domains([".test"])
        .build()
        .unwrap();
    server
        .stores()
        .accounts
        .create_account(AccountRecord {
            did: did.clone(),
            handle: "hashy.test".into(),
            email: None,
            password_hash: stored,
            signing_key_hex: None,
            created_at: 0,
            status: AccountStatus::Active,
        })
        .await
        .unwrap();
    let res = atauth_server::web::router(server)
        .oneshot(
            Request::post("/xrpc/com.atproto.server.createSession")
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::json!({ "identifier": "hashy.test", "password": PASSWORD }).to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["did"], serde_json::json!(did));
    std::fs::remove_dir_all(&data).ok();
}

fn run_agent(dir: &Path, service: &str, identifier: &str, password: &str, scope: &str) -> serde_json::Value {
    let out = Command::new(dir.join("node22"))
        .args([
            "atp-agent-legacy.mjs",
            "--service",
            service,
            "--identifier",
            identifier,
            "--password",
            password,
        ])
        .args(["--expect-scope", scope])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run interop/atp-agent-legacy.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| panic!("no JSON line from atp-agent-legacy.mjs: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_reference_atp_agent_logs_in_refreshes_and_logs_out_with_password_and_app_password() {
    let Some(dir) = atauth_testkit::interop::installed() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let server = AuthServer::builder(&url).dev_mode(true).handle_domains([".test"]).build().unwrap();
    let did = "did:plc:agent0000000000000000000";
    server
        .stores()
        .accounts
        .create_account(AccountRecord {
            did: did.into(),
            handle: "agent.test".into(),
            email: Some("agent@example.test".into()),
            password_hash: atauth_server::password::hash_with_salt(
                PASSWORD,
                "0123456789abcdef0123456789abcdef",
            )
            .unwrap(),
            signing_key_hex: Some(
                atauth_crypto::PrivateKey::generate(atauth_crypto::Algorithm::Es256k).to_hex(),
            ),
            created_at: 0,
            status: AccountStatus::Active,
        })
        .await
        .unwrap();
    let access = atauth_server::legacy::LegacyAccess {
        did: did.into(),
        scope: atauth_server::legacy::LegacyScope::Access,
        jti: "setup".into(),
    };
    let app = server.create_app_password(&access, "interop", false).await.unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(atauth_server::web::serve(server.clone(), listener, None, async move {
        let _ = rx.await;
    }));
    let app_password = app.password.expose_secret().to_owned();
    for (identifier, password, scope) in [
        ("agent.test", PASSWORD.to_owned(), "com.atproto.access"),
        ("agent@example.test", app_password, "com.atproto.appPass"),
    ] {
        let (d, u) = (dir.clone(), url.clone());
        let result = tokio::task::spawn_blocking(move || run_agent(&d, &u, identifier, &password, scope))
            .await
            .unwrap();
        assert_eq!(result["ok"], true, "{identifier}: {result}");
        assert_eq!(result["steps"]["login"]["did"], did);
        assert_eq!(result["steps"]["getSession2"]["did"], did);
        assert_eq!(result["steps"]["afterLogout"]["error"], "ExpiredToken");
    }
    let _ = stop.send(());
}
