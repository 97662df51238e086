//! [`MetricsRepository`]: metric series and points. Series are looked up or created in batches;
//! points go in with binary `COPY` on PostgreSQL (into day partitions created ahead) and with
//! multi-row inserts on SQLite, one transaction per batch so a batch is stored whole or not at all.
//! Each batch also marks the hours it touched as pending, in the same transaction, and
//! [`MetricsRepository::roll_up`] turns pending hours into hourly and daily rollups (count, sum,
//! min, max per series), so late points are never left out of a rollup.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite};

use crate::Store;
use crate::backend::bulk::{Batch, CopyEncoder, time_range, write_batch};
use crate::backend::partitions::{DAY_US, Partitions, Span, TimeUnit};
use crate::backend::{Pool, with_pool};
use crate::error::Result;
use crate::signals::feed::{FeedEntry, append_sqlite};

pub use crate::backend::partitions::Expired;

/// The identity of a series: its metric name and canonical label set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub name: String,
    /// Sorted `name="value"` pairs joined by `,`.
    pub labels_key: String,
}

/// A series to look up or create: its key and its labels, sorted by name.
#[derive(Debug, Clone)]
pub struct NewSeries {
    pub key: SeriesKey,
    pub labels: Vec<(String, String)>,
}

impl NewSeries {
    /// The labels as a JSON object, as the `labels` column holds them. Built only for series
    /// being created, never on the per-point path.
    pub fn labels_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        serde_json::Value::Object(object).to_string()
    }
}

/// One point of a known series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointRow {
    pub series_id: i64,
    /// Microseconds since the Unix epoch.
    pub time_us: i64,
    pub value: f64,
}

/// A stored series, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRow {
    pub id: i64,
    pub name: String,
    pub labels_key: String,
}

const HOUR_US: i64 = 3_600_000_000;
/// SQLite allows 32766 bound parameters per statement; three per point.
const SQLITE_POINTS_PER_INSERT: usize = 5_000;
/// An hour is rolled up once it ended this long ago, so that batches holding its last points
/// have committed (later points mark it pending again and it is rolled up again).
const ROLLUP_SETTLE_US: i64 = 120_000_000;
/// PostgreSQL advisory lock that lets one replica at a time roll up.
const ROLLUP_LOCK: i64 = 0x7068_6172_6f73_0001;

/// Metric series, points and rollups; cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricsRepository {
    store: Store,
    points: Partitions,
    hourly: Partitions,
    daily: Partitions,
}

/// One series' aggregate over an hour or a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupRow {
    pub series_id: i64,
    /// Start of the bucket, microseconds since the Unix epoch.
    pub bucket_us: i64,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// What one [`MetricsRepository::roll_up`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolledUp {
    pub hours: u64,
    /// Hourly rows written (one per series with points in an hour).
    pub hourly_rows: u64,
}

crate::backend::repository!(MetricsRepository);

impl Store {
    /// Metric series, points and rollups.
    pub fn metrics(&self) -> MetricsRepository {
        MetricsRepository {
            store: self.clone(),
            points: Partitions::new("metric_points", Span::Day, TimeUnit::Micros),
            hourly: Partitions::new("metric_rollups_1h", Span::Day, TimeUnit::Micros),
            daily: Partitions::new("metric_rollups_1d", Span::Month, TimeUnit::Micros),
        }
    }
}

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

    /// Stores `points` in one transaction, with the hours they touched marked for rollup and,
    /// when given, the batch's feed row; returns the feed position.
    pub async fn insert_points(
        &self,
        points: &[PointRow],
        feed: Option<&FeedEntry>,
    ) -> Result<Option<i64>> {
        if points.is_empty() {
            return Ok(None);
        }
        let (oldest, newest) = time_range(points.iter().map(|point| point.time_us));
        let mut hours: Vec<i64> = points
            .iter()
            .map(|point| point.time_us.div_euclid(HOUR_US) * HOUR_US)
            .collect();
        hours.sort_unstable();
        hours.dedup();
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let data = encode_copy_binary(points);
                // Hours a rollup may already be reading (late points) lock their mark, so that
                // the rollup either waits for this batch or runs again after it; marks of
                // recent hours do not lock, so concurrent batches never queue on them.
                let settled = self.store.clock().now_micros() - ROLLUP_SETTLE_US;
                let (late, recent): (Vec<i64>, Vec<i64>) =
                    hours.iter().partition(|&&hour| hour + HOUR_US <= settled);
                let mut then = Vec::new();
                if !recent.is_empty() {
                    then.push((
                        "INSERT INTO metric_rollup_pending (hour_us) \
                         SELECT UNNEST($1::bigint[]) ON CONFLICT DO NOTHING",
                        recent,
                    ));
                }
                if !late.is_empty() {
                    then.push((
                        "INSERT INTO metric_rollup_pending (hour_us) \
                         SELECT UNNEST($1::bigint[]) \
                         ON CONFLICT (hour_us) DO UPDATE SET hour_us = EXCLUDED.hour_us",
                        late,
                    ));
                }
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
                    let mut insert: QueryBuilder<Sqlite> =
                        QueryBuilder::new("INSERT INTO metric_points (series_id, time_us, value) ");
                    insert.push_values(chunk, |mut row, point| {
                        row.push_bind(point.series_id)
                            .push_bind(point.time_us)
                            .push_bind((!point.value.is_nan()).then_some(point.value));
                    });
                    insert.build().execute(&mut *transaction).await?;
                }
                let mut mark: QueryBuilder<Sqlite> =
                    QueryBuilder::new("INSERT INTO metric_rollup_pending (hour_us) ");
                mark.push_values(&hours, |mut row, hour| {
                    row.push_bind(*hour);
                });
                mark.push(" ON CONFLICT DO NOTHING");
                mark.build().execute(&mut *transaction).await?;
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

    /// Removes every point older than `before_us`. On PostgreSQL whole day partitions go, those
    /// entirely before the cut (a partial day stays until it is whole); on SQLite rows are deleted.
    pub async fn expire_points(&self, before_us: i64) -> Result<Expired> {
        self.store
            .expire(&self.points, "metric_points", "time_us", before_us)
            .await
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
                    let mut transaction = pool.begin().await?;
                    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                        .bind(ROLLUP_LOCK)
                        .fetch_one(&mut *transaction)
                        .await?;
                    if !locked {
                        return Ok(done);
                    }
                    // Taking the mark first makes a batch that marks the hour again wait for
                    // this rollup, whose later statements then see the batch's points.
                    let hour: Option<i64> = sqlx::query_scalar(TAKE_PENDING_HOUR)
                        .bind(before)
                        .fetch_optional(&mut *transaction)
                        .await?;
                    let Some(hour) = hour else { return Ok(done) };
                    let day = hour.div_euclid(DAY_US) * DAY_US;
                    self.hourly.ensure(pool, hour, hour).await?;
                    self.daily.ensure(pool, day, day).await?;
                    let rows = sqlx::query(
                        "INSERT INTO metric_rollups_1h (series_id, bucket_us, count, sum, min, max) \
                         SELECT series_id, $1, COUNT(*), SUM(value), MIN(value), MAX(value) \
                         FROM metric_points WHERE time_us >= $1 AND time_us < $2 \
                         AND value <> 'NaN'::float8 GROUP BY series_id \
                         ON CONFLICT (series_id, bucket_us) DO UPDATE SET count = EXCLUDED.count, \
                         sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max",
                    )
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
                    let mut transaction = pool.begin().await?;
                    let hour: Option<i64> = sqlx::query_scalar(TAKE_PENDING_HOUR)
                        .bind(before)
                        .fetch_optional(&mut *transaction)
                        .await?;
                    let Some(hour) = hour else { return Ok(done) };
                    let day = hour.div_euclid(DAY_US) * DAY_US;
                    // NaN is stored as NULL, which the aggregates skip.
                    let rows = sqlx::query(
                        "INSERT INTO metric_rollups_1h (series_id, bucket_us, count, sum, min, max) \
                         SELECT series_id, $1, COUNT(value), SUM(value), MIN(value), MAX(value) \
                         FROM metric_points WHERE time_us >= $1 AND time_us < $2 \
                         AND value IS NOT NULL GROUP BY series_id \
                         ON CONFLICT (series_id, bucket_us) DO UPDATE SET count = excluded.count, \
                         sum = excluded.sum, min = excluded.min, max = excluded.max",
                    )
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

    /// Hours waiting for their rollup, oldest first.
    pub async fn pending_rollups(&self) -> Result<Vec<i64>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT hour_us FROM metric_rollup_pending ORDER BY hour_us")
                .fetch_all(pool)
                .await?
        }))
    }

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

/// Takes the oldest pending hour that ended before `$1`.
const TAKE_PENDING_HOUR: &str = "DELETE FROM metric_rollup_pending WHERE hour_us = \
     (SELECT hour_us FROM metric_rollup_pending WHERE hour_us <= $1 ORDER BY hour_us LIMIT 1) \
     RETURNING hour_us";

/// Recomputes the daily rollup of the day `$1..$2` from its hourly rows.
const ROLL_UP_DAY: &str = "INSERT INTO metric_rollups_1d (series_id, bucket_us, count, sum, min, max) \
     SELECT series_id, $1, SUM(count), SUM(sum), MIN(min), MAX(max) FROM metric_rollups_1h \
     WHERE bucket_us >= $1 AND bucket_us < $2 GROUP BY series_id \
     ON CONFLICT (series_id, bucket_us) DO UPDATE SET count = excluded.count, \
     sum = excluded.sum, min = excluded.min, max = excluded.max";

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
