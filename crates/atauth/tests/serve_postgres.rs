//! `atauth serve --database-url` / `--redis-url` and the admin commands on Postgres, run as the
//! built binary against the Postgres (127.0.0.1:5432, or `ATAUTH_TEST_POSTGRES_URL`) and Redis of
//! the machine; each test has its own database, dropped afterwards.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use atauth_server::store::postgres::testing::TestDatabase;
use atauth_server::store::postgres::{ConnectError, PostgresStore};
use common::*;

/// `atauth serve --dev` on a free port with `data` as its data directory and these store flags,
/// run to completion (for starts that must be refused).
fn serve_refused(home: &std::path::Path, data: &std::path::Path, flags: &[&str]) -> std::process::Output {
    let data = data.to_str().unwrap();
    run(home, &[&["serve", "--dev", "--port", "0", "--data-dir", data], flags].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_starts_and_admin_commands_use_the_same_database() {
    let db = TestDatabase::create().await;
    let home = TempDir::new("serve-pg");
    let data = home.join("data");
    let serve = Serve::start(&home.0, &data, &["--database-url", db.url()]);
    let (status, _) = get(&format!("{}/.well-known/oauth-authorization-server", serve.addr)).await;
    assert_eq!(status, 200);
    assert!(!data.join("atauth.sqlite").exists(), "no SQLite file next to a Postgres database");
    assert!(data.join("oauth-signing-keys.json").exists(), "the data directory keeps the key files");
    assert!(serve.stop().success());

    // The admin commands read the same database (env ATAUTH_DATABASE_URL like `serve`).
    let out = atauth(&home.0)
        .env("ATAUTH_DATABASE_URL", db.url())
        .args(["account", "show", "nobody.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no account \"nobody.test\""), "{}", stderr(&out));
}

#[test]
fn a_bad_database_url_is_one_clear_error_and_writes_nothing() {
    let home = TempDir::new("serve-pg-bad");
    let data = home.join("d");
    let out = serve_refused(&home.0, &data, &["--database-url", "mysql://x/y"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("postgres://"), "says what a URL looks like: {}", stderr(&out));
    let out = serve_refused(&home.0, &data, &["--database-url", "postgres://postgres@127.0.0.1:1/atauth"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1:1/atauth"), "names the target: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(!data.exists(), "a refused start creates no data directory");

    // A Redis that refuses the credentials (the test server has no password).
    let out = serve_refused(
        &home.0,
        &data,
        &[
            "--database-url",
            "postgres://postgres@127.0.0.1:1/atauth",
            "--redis-url",
            "redis://:wrong-password@127.0.0.1:6379",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Redis"), "{}", stderr(&out));
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schema_is_refused_without_migrate_and_upgraded_with_it() {
    let db = TestDatabase::create().await;
    db.set_up_old_version(1).await;
    let home = TempDir::new("serve-pg-old");
    let data = home.join("d");
    let out = serve_refused(&home.0, &data, &["--database-url", db.url()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--migrate"), "{}", stderr(&out));
    assert!(!data.exists(), "nothing written");
    assert!(
        matches!(PostgresStore::connect(db.url()).await, Err(ConnectError::NeedsMigration { found: 1, .. })),
        "the database is as it was"
    );

    let serve = Serve::start(&home.0, &data, &["--database-url", db.url(), "--migrate"]);
    assert!(serve.stop().success());
    PostgresStore::connect(db.url()).await.expect("migrated");
}

#[test]
fn serve_help_shows_the_scale_out_flags() {
    let home = TempDir::new("serve-pg-help");
    let out = run(&home.0, &["serve", "--help"]);
    let help = stdout(&out);
    for flag in [
        "--database-url",
        "--migrate",
        "--redis-url",
        "--redis-prefix",
        "ATAUTH_DATABASE_URL",
        "ATAUTH_REDIS_URL",
        "ATAUTH_REDIS_PREFIX",
    ] {
        assert!(help.contains(flag), "{flag} in serve --help");
    }
}

/// A Redis that refuses the credentials, in every way a real one does, is one clear error at start
/// (exit 1, "Redis" named, no panic, the password not echoed), and nothing is written: no data
/// directory, and the (reachable, empty) database is not set up. The machine's Redis has no
/// password, so a redis-server of the test's own with `--requirepass` plays the protected one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_refuses_auth_is_one_clear_error_and_writes_nothing() {
    let db = TestDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let protected = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--requirepass", "the-right-secret"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is needed for this test (apt-get install redis-server)");
    let _protected = atauth_testkit::process::ChildGuard::new(protected);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let home = TempDir::new("serve-redis-auth");
    let data = home.join("d");
    let cases = [
        // The machine's Redis: a user that does not exist (WRONGPASS), a password it does not have.
        ("redis://nobody:not-a-secret@127.0.0.1:6379".to_owned(), "authentication failed"),
        ("redis://:not-a-secret@127.0.0.1:6379".to_owned(), "authentication failed"),
        // A Redis with a password: none given (NOAUTH at the first command), a wrong one (WRONGPASS).
        (format!("redis://127.0.0.1:{port}"), "authentication required"),
        (format!("redis://:not-a-secret@127.0.0.1:{port}"), "authentication failed"),
    ];
    for (url, says) in &cases {
        let out = serve_refused(&home.0, &data, &["--database-url", db.url(), "--redis-url", url]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(
            err.contains("could not open Redis") && err.to_lowercase().contains(says),
            "{url}: names Redis and the refusal: {err}"
        );
        assert!(!err.contains("panicked"), "{url}: {err}");
        assert!(!err.contains("not-a-secret"), "{url}: the password is not echoed: {err}");
        assert!(!data.exists(), "{url}: a refused start creates no data directory");
    }
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(db.url()).await.unwrap();
    let set_up: bool =
        sqlx::query_scalar("SELECT to_regclass('atauth_schema') IS NOT NULL").fetch_one(&pool).await.unwrap();
    pool.close().await;
    assert!(!set_up, "the database was not touched");

    // The right password starts, and every key it writes is under `--redis-prefix`: a wrong
    // password spends a sign-in bucket, which lives in Redis.
    let url = format!("redis://:the-right-secret@127.0.0.1:{port}");
    let prefix = "shared-redis-atauth:";
    let serve = Serve::start(
        &home.0,
        &data,
        &["--database-url", db.url(), "--redis-url", &url, "--redis-prefix", prefix],
    );
    let wrong = http()
        .post(format!("{}/xrpc/com.atproto.server.createSession", serve.addr))
        .header("content-type", "application/json")
        .body(r#"{"identifier":"nobody.test","password":"wrong"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let scan = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "-a", "the-right-secret", "--no-auth-warning", "--scan"])
        .output()
        .expect("redis-cli");
    let keys = String::from_utf8_lossy(&scan.stdout).to_string();
    assert!(!keys.trim().is_empty(), "the sign-in attempt wrote a bucket");
    assert!(keys.lines().all(|k| k.starts_with(prefix)), "every key under the prefix: {keys}");
    assert!(serve.stop().success());
}
