//! The read paths of metrics: points and rollups of a series over time, the series of a name or
//! of a set of ids, and counts for tests and diagnostics.

use super::{MetricsRepository, RollupRow, SeriesRow};
use crate::backend::{Pool, with_pool};
use crate::error::Result;

impl MetricsRepository {
    /// Points of one series in `from_us..to_us`, oldest first.
    pub async fn read_points(
        &self,
        series_id: i64,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let rows: Vec<(i64, Option<f64>)> = with_pool!(self.store, |pool| {
            sqlx::query_as(
                "SELECT time_us, value FROM metric_points \
                 WHERE series_id = $1 AND time_us >= $2 AND time_us < $3 ORDER BY time_us",
            )
            .bind(series_id)
            .bind(from_us)
            .bind(to_us)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(time, value)| (time, value.unwrap_or(f64::NAN)))
            .collect())
    }

    /// Rollup rows of one series, hourly or daily, oldest first.
    pub async fn read_rollups(&self, series_id: i64, hourly: bool) -> Result<Vec<RollupRow>> {
        let sql = if hourly {
            "SELECT series_id, bucket_us, count, sum, min, max FROM metric_rollups_1h \
             WHERE series_id = $1 ORDER BY bucket_us"
        } else {
            "SELECT series_id, bucket_us, count, sum, min, max FROM metric_rollups_1d \
             WHERE series_id = $1 ORDER BY bucket_us"
        };
        let rows: Vec<(i64, i64, i64, f64, f64, f64)> = with_pool!(self.store, |pool| {
            sqlx::query_as(sql).bind(series_id).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(series_id, bucket_us, count, sum, min, max)| RollupRow {
                series_id,
                bucket_us,
                count,
                sum,
                min,
                max,
            })
            .collect())
    }

    /// The series of one metric name.
    pub async fn series_of(&self, name: &str) -> Result<Vec<SeriesRow>> {
        let rows: Vec<(i64, String, String)> = with_pool!(self.store, |pool| {
            sqlx::query_as(
                "SELECT id, name, labels_key FROM metric_series WHERE name = $1 ORDER BY id",
            )
            .bind(name)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, name, labels_key)| SeriesRow {
                id,
                name,
                labels_key,
            })
            .collect())
    }

    /// Name and labels (a JSON object) of each of `ids` that exists.
    pub async fn series_by_ids(&self, ids: &[i64]) -> Result<Vec<(i64, String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match &self.store.pool {
            Pool::Postgres(pool) => Ok(sqlx::query_as(
                "SELECT id, name, labels::text FROM metric_series WHERE id = ANY($1)",
            )
            .bind(ids)
            .fetch_all(pool)
            .await?),
            Pool::Sqlite(pool) => {
                let mut found = Vec::with_capacity(ids.len());
                let mut connection = pool.acquire().await?;
                for id in ids {
                    let row: Option<(i64, String, String)> =
                        sqlx::query_as("SELECT id, name, labels FROM metric_series WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *connection)
                            .await?;
                    found.extend(row);
                }
                Ok(found)
            }
        }
    }

    /// Points stored in total (for tests and diagnostics).
    pub async fn count_points(&self) -> Result<i64> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
                .fetch_one(pool)
                .await?
        }))
    }
}
