//! [`SignInLimitStore`] on Postgres (table `sign_in_buckets`): the sign-in rate-limit buckets shared
//! by every instance when there is no Redis (issue 14).
//!
//! A row per bucket, keyed by the SHA-256 of the bucket key (no identifier or address in the
//! clear): `tokens` at time `at`, the `burst` and `rate` it was last taken with, and `full_at`, when
//! it has refilled completely (purged after that). An attempt is **one upsert** of its buckets in
//! one transaction: each row is inserted (a new bucket, full, minus one) or, when it has an attempt
//! left, updated from its locked current value (`ON CONFLICT DO UPDATE … WHERE level >= 1`). If a
//! row was refused, fewer rows come back and the transaction is rolled back: nothing is taken (all
//! or nothing). Rows are upserted in key order, so two attempts sharing buckets lock them in the
//! same order and never deadlock; two instances racing for a bucket's last attempt queue on its row
//! lock, and the second sees it spent.

use async_trait::async_trait;

use super::{PostgresStore, backend};
use crate::ratelimit::{LimitBucket, SignInLimitStore, level};
use crate::store::StoreError;

/// The refill rule of [`level`] in SQL, for the existing row `b` and the attempted row `EXCLUDED`.
macro_rules! level_sql {
    () => {
        "LEAST(EXCLUDED.burst, b.tokens + GREATEST(EXCLUDED.at - b.at, 0) * EXCLUDED.rate)"
    };
}

#[async_trait]
impl SignInLimitStore for PostgresStore {
    async fn take(&self, buckets: &[LimitBucket], now: f64) -> Result<Option<f64>, StoreError> {
        let mut sorted: Vec<(Vec<u8>, &LimitBucket)> =
            buckets.iter().map(|b| (b.digest().to_vec(), b)).collect();
        sorted.sort_by(|x, y| x.0.cmp(&y.0));
        sorted.dedup_by(|x, y| x.0 == y.0);
        let keys: Vec<Vec<u8>> = sorted.iter().map(|(k, _)| k.clone()).collect();
        let bursts: Vec<f64> = sorted.iter().map(|(_, b)| b.burst()).collect();
        let rates: Vec<f64> = sorted.iter().map(|(_, b)| b.rate()).collect();
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let taken: Vec<(Vec<u8>,)> = sqlx::query_as(concat!(
            "INSERT INTO sign_in_buckets AS b (key, tokens, at, burst, rate, full_at) \
             SELECT k, br - 1, $4, br, r, $4 + 1 / r \
             FROM UNNEST($1::bytea[], $2::float8[], $3::float8[]) AS t(k, br, r) ORDER BY k \
             ON CONFLICT (key) DO UPDATE SET tokens = ",
            level_sql!(),
            " - 1, at = GREATEST(b.at, EXCLUDED.at), burst = EXCLUDED.burst, rate = EXCLUDED.rate, \
             full_at = GREATEST(b.at, EXCLUDED.at) + (EXCLUDED.burst - (",
            level_sql!(),
            " - 1)) / EXCLUDED.rate WHERE ",
            level_sql!(),
            " >= 1 RETURNING b.key"
        ))
        .bind(&keys)
        .bind(&bursts)
        .bind(&rates)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if taken.len() == keys.len() {
            tx.commit().await.map_err(backend)?;
            return Ok(None);
        }
        // Refused: undo the takes of the buckets that had an attempt, then say how long to wait.
        tx.rollback().await.map_err(backend)?;
        let rows: Vec<(Vec<u8>, f64, f64)> =
            sqlx::query_as("SELECT key, tokens, at FROM sign_in_buckets WHERE key = ANY($1)")
                .bind(&keys)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        let wait = rows
            .iter()
            .filter_map(|(k, tokens, at)| {
                let (_, b) = sorted.iter().find(|(key, _)| key == k)?;
                let l = level(*tokens, *at, now, b.burst(), b.rate());
                (l < 1.0).then(|| (1.0 - l) / b.rate())
            })
            .reduce(f64::max);
        // A bucket refilled between the two statements: still refused, retry in a moment.
        Ok(Some(wait.unwrap_or(0.0)))
    }

    async fn succeeded(&self, reset: &LimitBucket, refund: &LimitBucket, now: f64) -> Result<(), StoreError> {
        // One statement: forget the pair, give the identifier one attempt back if it is tracked.
        sqlx::query(
            "WITH reset AS (DELETE FROM sign_in_buckets WHERE key = $1) \
             UPDATE sign_in_buckets AS b SET \
             tokens = LEAST($3, LEAST($3, b.tokens + GREATEST($5 - b.at, 0) * $4) + 1), \
             at = GREATEST(b.at, $5), burst = $3, rate = $4, \
             full_at = GREATEST(b.at, $5) + ($3 - LEAST($3, LEAST($3, b.tokens + GREATEST($5 - b.at, 0) * $4) + 1)) / $4 \
             WHERE b.key = $2",
        )
        .bind(&reset.digest()[..])
        .bind(&refund.digest()[..])
        .bind(refund.burst())
        .bind(refund.rate())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn purge_full(&self, now: f64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sign_in_buckets WHERE full_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}
