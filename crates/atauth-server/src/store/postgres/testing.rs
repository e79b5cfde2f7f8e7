//! Test support (feature `testing`): a throwaway database per test on the Postgres server at
//! `ATAUTH_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, trust auth).

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

use super::{PostgresOptions, PostgresStore};

/// The server the test databases are made on.
pub fn admin_url() -> String {
    std::env::var("ATAUTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database named `atauth_test_<random>`, dropped (`WITH (FORCE)`, closing whatever
/// connections are left) when the guard drops: after a passing test and after a panicking one.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates the database.
    ///
    /// # Panics
    /// When the Postgres server is unreachable (the message says which URL and how to set it).
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("atauth_test_{}", hex::encode(atauth_crypto::random::random_bytes::<8>()));
        let mut c = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("Postgres tests need a server at {admin} (set ATAUTH_TEST_POSTGRES_URL): {e}")
        });
        // The name is ours (hex digits), not input: safe to splice.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .expect("CREATE DATABASE");
        let _ = c.close().await;
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("ATAUTH_TEST_POSTGRES_URL must end in /DATABASE"),
        };
        Self { name, url }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A store on the database (migrated; a second call shares the schema: a second instance).
    ///
    /// # Panics
    /// When connecting fails.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.expect("connect to the test database")
    }

    /// Sets the database up to schema version `version` only (< [`super::schema::SCHEMA_VERSION`]),
    /// as an older release left it.
    ///
    /// # Panics
    /// When connecting or migrating fails.
    pub async fn set_up_old_version(&self, version: i32) {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("connect");
        super::schema::migrate_to(&pool, version, true).await.expect("migrate to the old version");
        pool.close().await;
    }

    /// [`PostgresOptions`] with `migrate` set.
    pub fn migrating() -> PostgresOptions {
        PostgresOptions { migrate: true, ..PostgresOptions::default() }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we could borrow (maybe during a panic): a thread of
        // its own with a small runtime does the one statement.
        let (admin, name) = (admin_url(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut c = PgConnection::connect(&admin).await.ok()?;
                sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut c)
                    .await
                    .ok()?;
                c.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            tracing::warn!(database = %self.name, "could not drop the test database");
        }
    }
}
