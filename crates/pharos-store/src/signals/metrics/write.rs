//! The write path of metrics: series looked up and created in batches (`UNNEST` on PostgreSQL),
//! points stored with binary `COPY` on PostgreSQL and multi-row inserts on SQLite, one transaction
//! per batch that also marks the hours it touched for rollup and appends the batch's feed row,
//! and the day partitions created ahead of the points.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite};

use super::{
    CHUNK_WINDOW_US, HOUR_US, MetricsRepository, NewSeries, PointRow, ROLLUP_SETTLE_US, SeriesKey,
    bucket_starts,
};
use crate::backend::bulk::{Batch, CopyEncoder, time_range, write_batch};
use crate::backend::{Pool, with_pool};
use crate::error::Result;
use crate::signals::feed::{FeedEntry, append_sqlite};

/// SQLite allows 32766 bound parameters per statement; three per point.
const SQLITE_POINTS_PER_INSERT: usize = 5_000;

impl MetricsRepository {
    /// Ids of `keys` that exist already (absent keys are missing from the map).
    pub async fn find_series(&self, keys: &[SeriesKey]) -> Result<HashMap<SeriesKey, i64>> {
        let mut found = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(found);
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
                let labels: Vec<&str> = keys.iter().map(|key| key.labels_key.as_str()).collect();
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT s.id, s.name, s.labels_key FROM metric_series s \
                     JOIN UNNEST($1::text[], $2::text[]) AS wanted(name, labels_key) \
                     ON s.name = wanted.name AND s.labels_key = wanted.labels_key",
                )
                .bind(&names)
                .bind(&labels)
                .fetch_all(pool)
                .await?;
                for (id, name, labels_key) in rows {
                    found.insert(SeriesKey { name, labels_key }, id);
                }
            }
            Pool::Sqlite(pool) => {
                let mut connection = pool.acquire().await?;
                for key in keys {
                    let id: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM metric_series WHERE name = $1 AND labels_key = $2",
                    )
                    .bind(&key.name)
                    .bind(&key.labels_key)
                    .fetch_optional(&mut *connection)
                    .await?;
                    if let Some(id) = id {
                        found.insert(key.clone(), id);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Creates the series that do not exist yet and returns the id of every one of `series`,
    /// with `true` for those this call created.
    pub async fn create_series(
        &self,
        series: &[NewSeries],
    ) -> Result<HashMap<SeriesKey, (i64, bool)>> {
        let mut ids = HashMap::with_capacity(series.len());
        if series.is_empty() {
            return Ok(ids);
        }
        // Concurrent creators that share series wait on each other's uncommitted rows; inserting
        // in one global order means they never wait in a cycle (no deadlock).
        let mut series: Vec<&NewSeries> = series.iter().collect();
        series.sort_unstable_by(|a, b| {
            (&a.key.name, &a.key.labels_key).cmp(&(&b.key.name, &b.key.labels_key))
        });
        let series = series.as_slice();
        let now = self.store.clock().now_micros();
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let names: Vec<&str> = series.iter().map(|s| s.key.name.as_str()).collect();
                let labels: Vec<&str> = series.iter().map(|s| s.key.labels_key.as_str()).collect();
                let json: Vec<String> = series.iter().map(|s| s.labels_json()).collect();
                let created: Vec<(i64, String, String)> = sqlx::query_as(
                    "INSERT INTO metric_series (name, labels_key, labels, created_at) \
                     SELECT name, labels_key, labels::jsonb, $4 \
                     FROM UNNEST($1::text[], $2::text[], $3::text[]) AS new(name, labels_key, labels) \
                     ON CONFLICT (name, labels_key) DO NOTHING \
                     RETURNING id, name, labels_key",
                )
                .bind(&names)
                .bind(&labels)
                .bind(&json)
                .bind(now)
                .fetch_all(pool)
                .await?;
                for (id, name, labels_key) in created {
                    ids.insert(SeriesKey { name, labels_key }, (id, true));
                }
                // Series another writer created meanwhile.
                let rest: Vec<SeriesKey> = series
                    .iter()
                    .map(|s| s.key.clone())
                    .filter(|key| !ids.contains_key(key))
                    .collect();
                for (key, id) in self.find_series(&rest).await? {
                    ids.insert(key, (id, false));
                }
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let mut transaction = pool.begin().await?;
                for new in series {
                    let inserted = sqlx::query(
                        "INSERT INTO metric_series (name, labels_key, labels, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (name, labels_key) DO NOTHING",
                    )
                    .bind(&new.key.name)
                    .bind(&new.key.labels_key)
                    .bind(new.labels_json())
                    .bind(now)
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected()
                        == 1;
                    let id: i64 = sqlx::query_scalar(
                        "SELECT id FROM metric_series WHERE name = $1 AND labels_key = $2",
                    )
                    .bind(&new.key.name)
                    .bind(&new.key.labels_key)
                    .fetch_one(&mut *transaction)
                    .await?;
                    ids.insert(new.key.clone(), (id, inserted));
                }
                transaction.commit().await?;
            }
        }
        Ok(ids)
    }

    /// How many series each metric name has, for the cardinality limit.
    pub async fn series_counts(&self) -> Result<HashMap<String, u64>> {
        let rows: Vec<(String, i64)> = with_pool!(self.store, |pool| {
            sqlx::query_as("SELECT name, COUNT(*) FROM metric_series GROUP BY name")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(name, count)| (name, count.max(0) as u64))
            .collect())
    }

    /// Stores `points` in one transaction, with the hours they touched marked for rollup, the
    /// windows they touched marked for compaction and, when given, the batch's feed row;
    /// returns the feed position.
    pub async fn insert_points(
        &self,
        points: &[PointRow],
        feed: Option<&FeedEntry>,
    ) -> Result<Option<i64>> {
        if points.is_empty() {
            return Ok(None);
        }
        let (oldest, newest) = time_range(points.iter().map(|point| point.time_us));
        let windows = bucket_starts(points.iter().map(|point| point.time_us), CHUNK_WINDOW_US);
        // Windows divide hours: the hours come from the few window starts, not the points.
        let hours = bucket_starts(windows.iter().copied(), HOUR_US);
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let data = encode_copy_binary(points);
                let settled = self.store.clock().now_micros() - ROLLUP_SETTLE_US;
                let mut then = HOUR_MARKS.statements(hours, settled);
                then.extend(WINDOW_MARKS.statements(windows, settled));
                write_batch(
                    pool,
                    Batch {
                        copy: "COPY metric_points (series_id, time_us, value) FROM STDIN (FORMAT binary)",
                        data,
                        then,
                        partitions: vec![(&self.points, oldest, newest)],
                        feed,
                        clock: self.store.clock(),
                    },
                )
                .await
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let mut transaction = pool.begin().await?;
                for chunk in points.chunks(SQLITE_POINTS_PER_INSERT) {
                    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                        "INSERT INTO metric_points (series_id, time_us, value, nan_bits) ",
                    );
                    insert.push_values(chunk, |mut row, point| {
                        let (value, nan_bits) = super::sqlite_value(point.value);
                        row.push_bind(point.series_id)
                            .push_bind(point.time_us)
                            .push_bind(value)
                            .push_bind(nan_bits);
                    });
                    insert.build().execute(&mut *transaction).await?;
                }
                for (insert, starts) in [
                    ("INSERT INTO metric_rollup_pending (hour_us) ", &hours),
                    ("INSERT INTO metric_chunk_pending (window_us) ", &windows),
                ] {
                    let mut mark: QueryBuilder<Sqlite> = QueryBuilder::new(insert);
                    mark.push_values(starts, |mut row, start| {
                        row.push_bind(*start);
                    });
                    mark.push(" ON CONFLICT DO NOTHING");
                    mark.build().execute(&mut *transaction).await?;
                }
                let position = match feed {
                    Some(entry) => {
                        Some(append_sqlite(&mut transaction, entry, self.store.clock()).await?)
                    }
                    None => None,
                };
                transaction.commit().await?;
                Ok(position)
            }
        }
    }

    /// Creates the missing day partitions of `metric_points` covering `from_us..=to_us`
    /// (PostgreSQL; SQLite has no partitions). Returns how many it created.
    pub async fn ensure_partitions(&self, from_us: i64, to_us: i64) -> Result<usize> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        self.points.ensure(pool, from_us, to_us).await
    }
}

/// A table of pending marks (hours waiting for their rollup, windows waiting for compaction) as
/// a batch of points marks it on PostgreSQL.
struct PendingMarks {
    /// Marks starts that may still be receiving points, without locking: concurrent batches
    /// never queue on them.
    recent: &'static str,
    /// Marks starts a rollup or compaction may be reading (late points), locking the mark so
    /// that the job either waits for this batch or runs again after it.
    late: &'static str,
    span_us: i64,
}

const HOUR_MARKS: PendingMarks = PendingMarks {
    recent: "INSERT INTO metric_rollup_pending (hour_us) \
             SELECT UNNEST($1::bigint[]) ON CONFLICT DO NOTHING",
    late: "INSERT INTO metric_rollup_pending (hour_us) SELECT UNNEST($1::bigint[]) \
           ON CONFLICT (hour_us) DO UPDATE SET hour_us = EXCLUDED.hour_us",
    span_us: HOUR_US,
};

const WINDOW_MARKS: PendingMarks = PendingMarks {
    recent: "INSERT INTO metric_chunk_pending (window_us) \
             SELECT UNNEST($1::bigint[]) ON CONFLICT DO NOTHING",
    late: "INSERT INTO metric_chunk_pending (window_us) SELECT UNNEST($1::bigint[]) \
           ON CONFLICT (window_us) DO UPDATE SET window_us = EXCLUDED.window_us",
    span_us: CHUNK_WINDOW_US,
};

impl PendingMarks {
    /// The statements marking `starts`, those that ended before `settled` being late.
    fn statements(&self, starts: Vec<i64>, settled: i64) -> Vec<(&'static str, Vec<i64>)> {
        let (late, recent): (Vec<i64>, Vec<i64>) = starts
            .into_iter()
            .partition(|&start| start + self.span_us <= settled);
        [(self.recent, recent), (self.late, late)]
            .into_iter()
            .filter(|(_, starts)| !starts.is_empty())
            .collect()
    }
}

/// `points` in PostgreSQL's binary COPY format for `metric_points (series_id, time_us, value)`;
/// public so that the benchmark can load the same bytes with plain `psql` as its reference.
pub fn encode_copy_binary(points: &[PointRow]) -> Vec<u8> {
    // Per row: field count (2 bytes) and three 8-byte fields with 4-byte lengths.
    let mut encoder = CopyEncoder::with_capacity(points.len() * 38);
    for point in points {
        encoder
            .row(3)
            .i64(point.series_id)
            .i64(point.time_us)
            .f64(point.value);
    }
    encoder.finish()
}
