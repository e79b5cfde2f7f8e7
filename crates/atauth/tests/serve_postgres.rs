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
    for flag in ["--database-url", "--migrate", "--redis-url", "ATAUTH_DATABASE_URL", "ATAUTH_REDIS_URL"] {
        assert!(help.contains(flag), "{flag} in serve --help");
    }
}
