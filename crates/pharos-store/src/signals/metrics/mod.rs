//! [`MetricsRepository`]: metric series, points and rollups. Series are looked up or created in
//! batches; points go in with binary `COPY` on PostgreSQL (into day partitions created ahead) and
//! with multi-row inserts on SQLite, one transaction per batch so a batch is stored whole or not
//! at all. Each batch also marks the hours it touched as pending, in the same transaction, and
//! [`MetricsRepository::roll_up`] turns pending hours into hourly and daily rollups (count, sum,
//! min, max per series), so late points are never left out of a rollup.
//!
//! Each batch also marks the 10-minute windows it touched, and [`MetricsRepository::compact`]
//! turns each pending window that has ended into one compressed chunk per series
//! (`metric_chunks`, format in `chunk.rs`), so that range reads decode a few chunks instead of
//! reading a row per point; `metric_points` stays the record that batches append to.
//!
//! This file holds the types and the repository; its jobs live beside it: `write.rs` (series
//! and points in), `rollup.rs`, `compact.rs`, `retention.rs` and `read.rs`.

// The aggregates of an hour of points, written into `metric_rollups_1h` by the rollup and
// computed for still-pending hours by the query service's read: both must give the same row, or
// a query read from rollups would differ from one read from points. Count, sum, min and max of
// the numbers, then the count of ordinary NaN points; staleness markers are left out by the
// `*_not_stale` condition.

/// PostgreSQL's hour aggregates.
macro_rules! postgres_hour_aggregates {
    () => {
        "COUNT(*) FILTER (WHERE value <> 'NaN'::float8), \
         COALESCE(SUM(value) FILTER (WHERE value <> 'NaN'::float8), 0), \
         COALESCE(MIN(value) FILTER (WHERE value <> 'NaN'::float8), 'NaN'::float8), \
         COALESCE(MAX(value) FILTER (WHERE value <> 'NaN'::float8), 'NaN'::float8), \
         COUNT(*) FILTER (WHERE value = 'NaN'::float8)"
    };
}

/// PostgreSQL: the point is not the staleness marker (its NaN has bits of its own).
macro_rules! postgres_not_stale {
    () => {
        "float8send(value) <> '\\x7ff0000000000002'::bytea"
    };
}

/// SQLite's hour aggregates, where a NaN is a NULL `value` with its bits in `nan_bits`.
macro_rules! sqlite_hour_aggregates {
    () => {
        "COUNT(metric_points.value), COALESCE(SUM(metric_points.value), 0), \
         COALESCE(MIN(metric_points.value), 0), COALESCE(MAX(metric_points.value), 0), \
         COUNT(*) - COUNT(metric_points.value)"
    };
}

/// SQLite: the point is not the staleness marker (9218868437227405314 is its bits).
macro_rules! sqlite_not_stale {
    () => {
        "(metric_points.value IS NOT NULL OR nan_bits IS NULL OR nan_bits <> 9218868437227405314)"
    };
}

mod chunk;
mod compact;
mod read;
mod retention;
mod rollup;
mod write;

use crate::Store;
use crate::backend::partitions::{Partitions, Span, TimeUnit};

pub use crate::backend::partitions::Expired;
pub(crate) use read::prepare_reads;
pub use read::{
    CLIENT_CHECK_MS, EncodedPoints, POSTGRES_LATEST, POSTGRES_READ, PostgresReadRow, RecentPoints,
    SeriesPoints,
};

/// The form a reader of points keeps them in, each made from its stored time (microseconds)
/// and value as the read decodes it: a reader with times in another unit converts in the same
/// pass, into the vectors it keeps, instead of copying every point once more.
pub trait PointForm {
    type Point: Copy + Send + 'static;
    fn point(time_us: i64, value: f64) -> Self::Point;
    /// The point's time in the reader's unit, which never decreases as the stored time grows.
    fn time(point: &Self::Point) -> i64;
}

/// Points as the store keeps them: (time in microseconds, value).
pub struct Microseconds;

impl PointForm for Microseconds {
    type Point = (i64, f64);

    #[inline]
    fn point(time_us: i64, value: f64) -> Self::Point {
        (time_us, value)
    }

    #[inline]
    fn time(point: &Self::Point) -> i64 {
        point.0
    }
}
pub use write::encode_copy_binary;

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

/// The starts of the `span_us`-long buckets (hours, chunk windows) that `times` fall in,
/// sorted and distinct.
fn bucket_starts(times: impl Iterator<Item = i64>, span_us: i64) -> Vec<i64> {
    let mut starts: Vec<i64> = times
        .map(|time| time.div_euclid(span_us) * span_us)
        .collect();
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// Opens one pass of a job over pending marks (rollup, compaction) on PostgreSQL: a
/// transaction holding the job's advisory `lock` (`None` when another replica holds it), in
/// which `take` has taken the oldest mark starting at or before `before`. `None` when there is
/// nothing to do. Taking the mark first makes a batch that marks the same start again wait for
/// the pass, whose later statements then see the batch's points.
async fn take_pending_postgres(
    pool: &sqlx::PgPool,
    lock: i64,
    take: &'static str,
    before: i64,
) -> crate::error::Result<Option<(sqlx::PgTransaction<'static>, i64)>> {
    let mut transaction = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(lock)
        .fetch_one(&mut *transaction)
        .await?;
    let start: Option<i64> = if locked {
        sqlx::query_scalar(take)
            .bind(before)
            .fetch_optional(&mut *transaction)
            .await?
    } else {
        None
    };
    match start {
        Some(start) => Ok(Some((transaction, start))),
        None => {
            // Ended here, not on drop: a dropped transaction's rollback is sent later, and the
            // lock it holds would turn the next pass away.
            transaction.rollback().await?;
            Ok(None)
        }
    }
}

/// [`take_pending_postgres`] on SQLite, where the caller holds the store's write lock.
async fn take_pending_sqlite(
    pool: &sqlx::SqlitePool,
    take: &'static str,
    before: i64,
) -> crate::error::Result<Option<(sqlx::Transaction<'static, sqlx::Sqlite>, i64)>> {
    let mut transaction = pool.begin().await?;
    let start: Option<i64> = sqlx::query_scalar(take)
        .bind(before)
        .fetch_optional(&mut *transaction)
        .await?;
    match start {
        Some(start) => Ok(Some((transaction, start))),
        None => {
            transaction.rollback().await?;
            Ok(None)
        }
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

/// How a point's value goes into SQLite, which stores a NaN as NULL: a NaN keeps NULL in
/// `value` and its bit pattern in `nan_bits`, so that Prometheus' staleness marker (a NaN of
/// its own) stays distinct from an ordinary NaN.
pub(crate) fn sqlite_value(value: f64) -> (Option<f64>, Option<i64>) {
    if value.is_nan() {
        (None, Some(value.to_bits() as i64))
    } else {
        (Some(value), None)
    }
}

/// A value read back from SQLite (see [`sqlite_value`]); rows written before `nan_bits`
/// existed read as an ordinary NaN.
pub(crate) fn from_sqlite_value(value: Option<f64>, nan_bits: Option<i64>) -> f64 {
    match (value, nan_bits) {
        (Some(value), _) => value,
        (None, Some(bits)) => f64::from_bits(bits as u64),
        (None, None) => f64::NAN,
    }
}

/// An hour; also the time a metric chunk covers once its hour has ended.
pub const HOUR_US: i64 = 3_600_000_000;
/// The time one metric chunk covers while its hour goes on: ten minutes, so that a range read
/// ending now takes all but its last few minutes from chunks. A chunk starts at a multiple of
/// it and covers it or (once compacted with its hour) the whole hour.
pub const CHUNK_WINDOW_US: i64 = 600_000_000;
/// An hour is rolled up (a window compacted) once it ended this long ago, so that batches
/// holding its last points have committed (later points mark it pending again and it is rolled
/// up or compacted again).
pub const ROLLUP_SETTLE_US: i64 = 120_000_000;

/// Metric series, points and rollups; cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricsRepository {
    store: Store,
    points: Partitions,
    chunks: Partitions,
    hourly: Partitions,
    daily: Partitions,
}

/// One series' aggregate over an hour or a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupRow {
    pub series_id: i64,
    /// Start of the bucket, microseconds since the Unix epoch.
    pub bucket_us: i64,
    /// Points that are numbers (not NaN); `sum`, `min` and `max` are theirs.
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Ordinary NaN points (staleness markers are not counted anywhere).
    pub nan_count: i64,
}

/// What one [`MetricsRepository::compact`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Windows and hours compacted.
    pub windows: u64,
    /// Of them, whole hours (their window chunks replaced by one chunk a series).
    pub hours: u64,
    /// Chunks written (one per series with points in a window).
    pub chunks: u64,
    pub points: u64,
    /// Bytes of the chunks written.
    pub bytes: u64,
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
            chunks: Partitions::new("metric_chunks", Span::Day, TimeUnit::Micros),
            hourly: Partitions::new("metric_rollups_1h", Span::Day, TimeUnit::Micros),
            daily: Partitions::new("metric_rollups_1d", Span::Month, TimeUnit::Micros),
        }
    }
}
