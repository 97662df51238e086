//! Metric rollups: [`MetricsRepository::roll_up`] turns each pending hour that has ended into
//! `metric_rollups_1h` rows (count, sum, min, max per series of its numbers, and apart the
//! count of its ordinary NaN points; staleness markers left out) and recomputes the
//! hour's day in `metric_rollups_1d`, one replica at a time (an advisory lock on PostgreSQL).

use super::{
    HOUR_US, MetricsRepository, ROLLUP_SETTLE_US, RolledUp, take_pending_postgres,
    take_pending_sqlite,
};
use crate::backend::partitions::DAY_US;
use crate::backend::{Pool, with_pool};
use crate::error::Result;

/// PostgreSQL advisory lock that lets one replica at a time roll up.
const ROLLUP_LOCK: i64 = 0x7068_6172_6f73_0001;

impl MetricsRepository {
    /// Rolls up every pending hour that ended before `now_us` less a settling margin: the
    /// hour's points become one hourly row per series, and the hour's day is recomputed from its
    /// hourly rows. Each hour commits on its own. On PostgreSQL one replica at a time rolls up
    /// (the others return at once).
    pub async fn roll_up(&self, now_us: i64) -> Result<RolledUp> {
        let before = now_us - ROLLUP_SETTLE_US - HOUR_US;
        let mut done = RolledUp::default();
        loop {
            let rows = match &self.store.pool {
                Pool::Postgres(pool) => {
                    let Some((mut transaction, hour)) =
                        take_pending_postgres(pool, ROLLUP_LOCK, TAKE_PENDING_HOUR, before).await?
                    else {
                        return Ok(done);
                    };
                    let day = hour.div_euclid(DAY_US) * DAY_US;
                    self.hourly.ensure(pool, hour, hour).await?;
                    self.daily.ensure(pool, day, day).await?;
                    let rows = sqlx::query(ROLL_UP_HOUR_POSTGRES)
                        .bind(hour)
                        .bind(hour + HOUR_US)
                        .execute(&mut *transaction)
                        .await?
                        .rows_affected();
                    sqlx::query(ROLL_UP_DAY)
                        .bind(day)
                        .bind(day + DAY_US)
                        .execute(&mut *transaction)
                        .await?;
                    transaction.commit().await?;
                    rows
                }
                Pool::Sqlite(pool) => {
                    let _writer = self.store.write_lock.lock().await;
                    let Some((mut transaction, hour)) =
                        take_pending_sqlite(pool, TAKE_PENDING_HOUR, before).await?
                    else {
                        return Ok(done);
                    };
                    let day = hour.div_euclid(DAY_US) * DAY_US;
                    let rows = sqlx::query(ROLL_UP_HOUR_SQLITE)
                        .bind(hour)
                        .bind(hour + HOUR_US)
                        .execute(&mut *transaction)
                        .await?
                        .rows_affected();
                    sqlx::query(ROLL_UP_DAY)
                        .bind(day)
                        .bind(day + DAY_US)
                        .execute(&mut *transaction)
                        .await?;
                    transaction.commit().await?;
                    rows
                }
            };
            done.hours += 1;
            done.hourly_rows += rows;
        }
    }

    /// Hours waiting for their rollup, oldest first.
    pub async fn pending_rollups(&self) -> Result<Vec<i64>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT hour_us FROM metric_rollup_pending ORDER BY hour_us")
                .fetch_all(pool)
                .await?
        }))
    }
}

/// Takes the oldest pending hour that ended before `$1`.
const TAKE_PENDING_HOUR: &str = "DELETE FROM metric_rollup_pending WHERE hour_us = \
     (SELECT hour_us FROM metric_rollup_pending WHERE hour_us <= $1 ORDER BY hour_us LIMIT 1) \
     RETURNING hour_us";

/// Recomputes the daily rollup of the day `$1..$2` from its hourly rows.
const ROLL_UP_DAY: &str = "INSERT INTO metric_rollups_1d \
     (series_id, bucket_us, count, sum, min, max, nan_count) \
     SELECT series_id, $1, SUM(count), SUM(sum), MIN(min), MAX(max), SUM(nan_count) \
     FROM metric_rollups_1h WHERE bucket_us >= $1 AND bucket_us < $2 GROUP BY series_id \
     ON CONFLICT (series_id, bucket_us) DO UPDATE SET count = excluded.count, \
     sum = excluded.sum, min = excluded.min, max = excluded.max, nan_count = excluded.nan_count";

/// One hour (`$1..$2`) of points as hourly rows, on PostgreSQL (see `postgres_hour_aggregates`).
const ROLL_UP_HOUR_POSTGRES: &str = concat!(
    "INSERT INTO metric_rollups_1h (series_id, bucket_us, count, sum, min, max, nan_count) \
     SELECT series_id, $1, ",
    postgres_hour_aggregates!(),
    " FROM metric_points WHERE time_us >= $1 AND time_us < $2 AND ",
    postgres_not_stale!(),
    " GROUP BY series_id \
     ON CONFLICT (series_id, bucket_us) DO UPDATE SET count = EXCLUDED.count, \
     sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max, nan_count = EXCLUDED.nan_count"
);

/// The same on SQLite (see `sqlite_hour_aggregates`).
const ROLL_UP_HOUR_SQLITE: &str = concat!(
    "INSERT INTO metric_rollups_1h (series_id, bucket_us, count, sum, min, max, nan_count) \
     SELECT series_id, $1, ",
    sqlite_hour_aggregates!(),
    " FROM metric_points WHERE time_us >= $1 AND time_us < $2 AND ",
    sqlite_not_stale!(),
    " GROUP BY series_id \
     ON CONFLICT (series_id, bucket_us) DO UPDATE SET count = excluded.count, \
     sum = excluded.sum, min = excluded.min, max = excluded.max, nan_count = excluded.nan_count"
);
