//! Throwaway Postgres databases and Redis key prefixes for the store tests, on the servers of the
//! test machine (`ATAUTH_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! `ATAUTH_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`). Each is removed when its guard
//! drops, after a passing and after a panicking test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::future::Future;

use atauth_client::{PostgresOptions, PostgresStore, RedisOptions, RedisStore};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

pub fn postgres_admin_url() -> String {
    std::env::var("ATAUTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("ATAUTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn random_hex() -> String {
    atauth_crypto::random::random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `f` to completion on a runtime of its own in a thread of its own (for `Drop`, which may run
/// during a panic and outside any runtime we could block on).
fn run_detached<F, Fut>(f: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = bool>,
{
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return false };
        rt.block_on(f())
    })
    .join()
    .unwrap_or(false)
}

/// A fresh, empty database `atauth_client_test_<random>`, dropped `WITH (FORCE)` on drop.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = postgres_admin_url();
        let name = format!("atauth_client_test_{}", random_hex());
        let mut c = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("Postgres tests need a server at {admin} (set ATAUTH_TEST_POSTGRES_URL): {e}")
        });
        // The name is ours (hex digits), not input: safe to splice.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
        let _ = c.close().await;
        let (base, _) = admin.rsplit_once('/').expect("ATAUTH_TEST_POSTGRES_URL must end in /DATABASE");
        let url = format!("{base}/{name}");
        Self { name, url }
    }

    /// A store on the database (migrating an empty one; a second call is a second process).
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.expect("connect to the test database")
    }

    pub async fn store_with(&self, options: PostgresOptions) -> PostgresStore {
        PostgresStore::connect_with(&self.url, options).await.expect("connect to the test database")
    }

    /// Runs raw SQL on the database (setting up schemas of other versions).
    pub async fn exec(&self, sql: &str) {
        let mut c = PgConnection::connect(&self.url).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut c).await.unwrap();
        let _ = c.close().await;
    }

    /// The names of the tables in the database, sorted.
    pub async fn tables(&self) -> Vec<String> {
        let mut c = PgConnection::connect(&self.url).await.unwrap();
        let t: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        let _ = c.close().await;
        t
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (postgres_admin_url(), self.name.clone());
        let dropped = run_detached(move || async move {
            let Ok(mut c) = PgConnection::connect(&admin).await else { return false };
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let ok = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await.is_ok();
            let _ = c.close().await;
            ok
        });
        if !dropped {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A fresh key prefix `atauth-client-test:<random>:` on the test Redis; its keys are deleted on drop.
#[derive(Debug)]
pub struct TestPrefix {
    pub prefix: String,
}

impl TestPrefix {
    pub fn new() -> Self {
        Self { prefix: format!("atauth-client-test:{}:", random_hex()) }
    }

    pub fn options(&self) -> RedisOptions {
        RedisOptions::default().prefix(self.prefix.clone())
    }

    /// A store under the prefix (a second call is a second process).
    pub async fn store(&self) -> RedisStore {
        let url = redis_url();
        RedisStore::connect_with(&url, self.options())
            .await
            .unwrap_or_else(|e| panic!("Redis tests need a server at {url} (set ATAUTH_TEST_REDIS_URL): {e}"))
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        let options = self.options();
        let cleaned = run_detached(move || async move {
            match RedisStore::connect_with(&redis_url(), options).await {
                Ok(s) => s.delete_all().await.is_ok(),
                Err(_) => false,
            }
        });
        if !cleaned {
            eprintln!("could not delete the test keys under {}", self.prefix);
        }
    }
}
