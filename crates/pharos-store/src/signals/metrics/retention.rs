//! Metric retention: points (with their chunks) and rollups past their age go, as whole partitions on PostgreSQL
//! (a partial day or month stays until it is whole past the cut) and as rows on SQLite.

use super::{HOUR_US, MetricsRepository};
use crate::backend::Pool;
use crate::backend::partitions::Expired;
use crate::error::Result;

impl MetricsRepository {
    /// Removes every point older than `before_us`, with its chunks. On PostgreSQL whole day
    /// partitions go, those entirely before the cut (a partial day stays until it is whole); on
    /// SQLite rows are deleted, and the chunks of the hour the cut falls in (a chunk covers at
    /// most an hour) stay until it is whole past it.
    pub async fn expire_points(&self, before_us: i64) -> Result<Expired> {
        let whole_hours = before_us.div_euclid(HOUR_US) * HOUR_US;
        let mut expired = self
            .store
            .expire(&self.chunks, "metric_chunks", "window_us", whole_hours)
            .await?;
        expired += self
            .store
            .expire(&self.points, "metric_points", "time_us", before_us)
            .await?;
        Ok(expired)
    }

    /// Removes hourly rollups older than `hourly_before_us` and daily ones older than
    /// `daily_before_us`, the same way as [`MetricsRepository::expire_points`].
    pub async fn expire_rollups(
        &self,
        hourly_before_us: i64,
        daily_before_us: i64,
    ) -> Result<Expired> {
        let mut expired = self
            .store
            .expire(
                &self.hourly,
                "metric_rollups_1h",
                "bucket_us",
                hourly_before_us,
            )
            .await?;
        expired += self
            .store
            .expire(
                &self.daily,
                "metric_rollups_1d",
                "bucket_us",
                daily_before_us,
            )
            .await?;
        Ok(expired)
    }

    /// Day partitions of `metric_points` (PostgreSQL; 0 on SQLite).
    pub async fn partition_count(&self) -> Result<i64> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        Ok(self.points.count(pool).await? as i64)
    }
}
