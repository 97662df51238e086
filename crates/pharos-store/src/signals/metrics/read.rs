//! The read paths of metrics: points and rollups of a series over time, the series of a name or
//! of a set of ids, and counts for tests and diagnostics.

use super::{
    CHUNK_WINDOW_US, HOUR_US, MetricsRepository, Microseconds, PointForm, RollupRow, SeriesRow,
    chunk,
};
use crate::backend::{Pool, with_pool};
use crate::error::Result;

/// [`MetricsRepository::recent_points`] inside its snapshot transaction, the same steps on
/// both backends: the feed position, every series (`$series`, the statement that lists them),
/// then the points of `$points` (`postgres_points` or `sqlite_points`) since `$from_us`,
/// [`RECENT_SERIES_PER_READ`] series per read.
macro_rules! recent_points_in {
    ($transaction:ident, $series:expr, $points:ident, $from_us:expr) => {{
        let position: i64 = sqlx::query_scalar(crate::signals::feed::FEED_HEAD)
            .fetch_one(&mut *$transaction)
            .await?;
        let series: Vec<(i64, String, String)> = sqlx::query_as($series)
            .fetch_all(&mut *$transaction)
            .await?;
        let mut points = Vec::new();
        for chunk in series.chunks(RECENT_SERIES_PER_READ) {
            let ids: Vec<i64> = chunk.iter().map(|s| s.0).collect();
            points.extend(
                $points(&mut $transaction, &ids, $from_us, i64::MAX)
                    .await?
                    .decode_all::<Microseconds>(&|_, _| 0)?,
            );
        }
        $transaction.rollback().await?;
        Ok(RecentPoints::new(position, series, points))
    }};
}

impl MetricsRepository {
    /// Points of one series in `from_us..to_us`, oldest first.
    pub async fn read_points(
        &self,
        series_id: i64,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let rows = self
            .points_of_series(&[series_id], from_us, to_us.saturating_sub(1))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(_, time, value)| (time, value))
            .collect())
    }

    /// Rollup rows of one series, hourly or daily, oldest first.
    pub async fn read_rollups(&self, series_id: i64, hourly: bool) -> Result<Vec<RollupRow>> {
        let sql = if hourly {
            "SELECT series_id, bucket_us, count, sum, min, max, nan_count FROM metric_rollups_1h \
             WHERE series_id = $1 ORDER BY bucket_us"
        } else {
            "SELECT series_id, bucket_us, count, sum, min, max, nan_count FROM metric_rollups_1d \
             WHERE series_id = $1 ORDER BY bucket_us"
        };
        let rows: Vec<RollupTuple> = with_pool!(self.store, |pool| {
            sqlx::query_as(sql).bind(series_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(rollup_row).collect())
    }

    /// The hourly aggregates of the series `ids` for the hours starting in `from_us..to_us`
    /// (hour-aligned), as the query service reads long ranges: hours already rolled up from
    /// `metric_rollups_1h`, hours still pending (their rollup is missing or outdated) computed
    /// from their points the same way, all read in one snapshot. Ordered by series and hour.
    pub async fn hourly_aggregates(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<RollupRow>> {
        if ids.is_empty() || to_us <= from_us {
            return Ok(Vec::new());
        }
        let mut rows: Vec<RollupTuple> = match &self.store.pool {
            Pool::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *transaction)
                    .await?;
                plan_each_time(&mut transaction).await?;
                let pending: Vec<i64> = sqlx::query_scalar(PENDING_HOURS)
                    .bind(from_us)
                    .bind(to_us)
                    .fetch_all(&mut *transaction)
                    .await?;
                let mut rows: Vec<RollupTuple> = sqlx::query_as(
                    "SELECT series_id, bucket_us, count, sum, min, max, nan_count \
                     FROM metric_rollups_1h WHERE series_id = ANY($1) \
                     AND bucket_us >= $2 AND bucket_us < $3 AND NOT (bucket_us = ANY($4))",
                )
                .bind(ids)
                .bind(from_us)
                .bind(to_us)
                .bind(&pending)
                .fetch_all(&mut *transaction)
                .await?;
                if !pending.is_empty() {
                    let fresh: Vec<RollupTuple> = sqlx::query_as(concat!(
                        "SELECT series_id, hour_us, ",
                        postgres_hour_aggregates!(),
                        " FROM unnest($2::BIGINT[]) AS pending(hour_us) \
                         JOIN metric_points ON series_id = ANY($1) \
                         AND time_us >= hour_us AND time_us < hour_us + 3600000000 AND ",
                        postgres_not_stale!(),
                        " GROUP BY series_id, hour_us"
                    ))
                    .bind(ids)
                    .bind(&pending)
                    .fetch_all(&mut *transaction)
                    .await?;
                    rows.extend(fresh);
                }
                transaction.commit().await?;
                rows
            }
            Pool::Sqlite(pool) => {
                let mut transaction = pool.begin().await?;
                let pending: Vec<i64> = sqlx::query_scalar(PENDING_HOURS)
                    .bind(from_us)
                    .bind(to_us)
                    .fetch_all(&mut *transaction)
                    .await?;
                let mut rows: Vec<RollupTuple> = sqlx::query_as(
                    "SELECT series_id, bucket_us, count, sum, min, max, nan_count \
                     FROM metric_rollups_1h WHERE series_id IN (SELECT value FROM json_each($1)) \
                     AND bucket_us >= $2 AND bucket_us < $3 \
                     AND bucket_us NOT IN (SELECT value FROM json_each($4))",
                )
                .bind(ids_json(ids))
                .bind(from_us)
                .bind(to_us)
                .bind(ids_json(&pending))
                .fetch_all(&mut *transaction)
                .await?;
                if !pending.is_empty() {
                    let fresh: Vec<RollupTuple> = sqlx::query_as(concat!(
                        "SELECT series_id, pending.value, ",
                        sqlite_hour_aggregates!(),
                        " FROM json_each($2) AS pending JOIN metric_points \
                         ON series_id IN (SELECT value FROM json_each($1)) \
                         AND time_us >= pending.value AND time_us < pending.value + 3600000000 \
                         AND ",
                        sqlite_not_stale!(),
                        " GROUP BY series_id, pending.value"
                    ))
                    .bind(ids_json(ids))
                    .bind(ids_json(&pending))
                    .fetch_all(&mut *transaction)
                    .await?;
                    rows.extend(fresh);
                }
                transaction.commit().await?;
                rows
            }
        };
        rows.sort_unstable_by_key(|row| (row.0, row.1));
        Ok(rows.into_iter().map(rollup_row).collect())
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

    /// The series of metric `name` (of every name when `None`) that have, for each
    /// `(label, values)` of `wanted`, the label with one of `values` (none of them empty), oldest
    /// first: id, name and labels (a JSON object of the labels other than the name). The query
    /// service narrows its selection with this (a selector's equality matchers and its regex
    /// matchers of plain alternatives, `job=~"a|b"`), then matches labels itself.
    ///
    /// On PostgreSQL the labels of one value are asked as `labels @> {...}` and each label of
    /// several values as `labels @> ANY([{label: a}, {label: b}])`, which the labels' GIN index
    /// answers without a name (a bitmap scan per element); on SQLite, without a JSON index, each
    /// row's labels are compared through `json_each`. A label wanted twice with one value keeps
    /// one of them here (the caller's matching applies both).
    pub async fn series_labels(
        &self,
        name: Option<&str>,
        wanted: &[(&str, &[&str])],
    ) -> Result<Vec<(i64, String, String)>> {
        if wanted.iter().any(|(_, values)| values.is_empty()) {
            return Ok(Vec::new());
        }
        let mut binds: Vec<String> = Vec::with_capacity(3);
        let mut clauses: Vec<String> = Vec::with_capacity(3);
        // Binds `value`: its placeholder's number.
        let mut bind = |value: String| {
            binds.push(value);
            binds.len()
        };
        if let Some(name) = name {
            let n = bind(name.to_owned());
            clauses.push(format!("name = ${n}"));
        }
        let columns = match &self.store.pool {
            Pool::Postgres(_) => {
                let one = json_object(wanted.iter().filter_map(|(label, values)| match values {
                    [value] => Some((*label, (*value).into())),
                    _ => None,
                }));
                if let Some(one) = one {
                    let n = bind(one);
                    clauses.push(format!("labels @> ${n}::jsonb"));
                }
                // One clause per label of several values: its label equal to any of them,
                // asked of the GIN index as containment of any one-label object.
                for (label, values) in wanted.iter().filter(|(_, values)| values.len() > 1) {
                    let objects: Vec<serde_json::Value> = values
                        .iter()
                        .map(|value| serde_json::json!({ *label: value }))
                        .collect();
                    let n = bind(serde_json::Value::from(objects).to_string());
                    clauses.push(format!(
                        "labels @> ANY(ARRAY(SELECT jsonb_array_elements(${n}::jsonb)))"
                    ));
                }
                "id, name, labels::text"
            }
            Pool::Sqlite(_) => {
                let all = json_object(
                    wanted
                        .iter()
                        .map(|(label, values)| (*label, serde_json::Value::from(values.to_vec()))),
                );
                if let Some(all) = all {
                    let n = bind(all);
                    clauses.push(format!(
                        "NOT EXISTS (SELECT 1 FROM json_each(${n}) AS wanted \
                         WHERE NOT EXISTS (SELECT 1 FROM json_each(metric_series.labels) \
                         AS have, json_each(wanted.value) AS choice \
                         WHERE have.key = wanted.key AND have.value = choice.value))"
                    ));
                }
                "id, name, labels"
            }
        };
        let filter = match clauses.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", clauses.join(" AND ")),
        };
        let statement = format!("SELECT {columns} FROM metric_series{filter} ORDER BY id");
        Ok(with_pool!(self.store, |pool| {
            // Made of the fragments above alone: every value is bound.
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(statement));
            for value in &binds {
                query = query.bind(value);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// The distinct metric names, sorted.
    pub async fn metric_names(&self) -> Result<Vec<String>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT DISTINCT name FROM metric_series ORDER BY name")
                .fetch_all(pool)
                .await?
        }))
    }

    /// The points of the series `ids` with times in `from_us..=to_us`, ordered by series and
    /// time (series id, time in microseconds, value), as the query service reads them: on PostgreSQL in
    /// one statement (one snapshot, one round trip), on a connection closed if the read is
    /// dropped before its end (a timed-out query, a caller gone), which PostgreSQL notices
    /// within [`CLIENT_CHECK_MS`] and stops the statement.
    ///
    /// Compacted windows are read from their chunks, pending ones (the last few minutes, and
    /// windows late points reached since their compaction) from `metric_points`. On SQLite,
    /// without a snapshot across its statements, the answer still holds every point committed
    /// before the read began: points are never removed from `metric_points` (but by expiry),
    /// and a window taken from its chunk was compacted from every point it had when the read
    /// found it done.
    pub async fn points_of_series(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, i64, f64)>> {
        let series = self.points_by_series(ids, from_us, to_us).await?;
        Ok(series
            .into_iter()
            .flat_map(|(id, points)| {
                points
                    .into_iter()
                    .map(move |(time, value)| (id, time, value))
            })
            .collect())
    }

    /// [`MetricsRepository::points_of_series`] grouped by series: each series of `ids`
    /// with points in the range, in id order, with its points oldest first.
    pub async fn points_by_series(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<SeriesPoints>> {
        self.points_by_series_as::<Microseconds>(ids, from_us, to_us, &|_, _| 0)
            .await
    }

    /// [`MetricsRepository::points_by_series`] with each point made in the form `F` as it is
    /// decoded, each series' vector with room for `room_after(series id, points read)` more
    /// points (which the caller appends from elsewhere without growing it).
    pub async fn points_by_series_as<F: PointForm>(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
        room_after: &(dyn Fn(i64, usize) -> usize + Sync),
    ) -> Result<Vec<(i64, Vec<F::Point>)>> {
        self.encoded_points_by_series(ids, from_us, to_us)
            .await?
            .decode_all::<F>(room_after)
    }

    /// [`MetricsRepository::points_by_series`] as read, each series decoded when the caller
    /// takes it (see [`EncodedPoints`]).
    pub async fn encoded_points_by_series(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<EncodedPoints> {
        if ids.is_empty() || to_us < from_us {
            return Ok(EncodedPoints::empty((from_us, to_us)));
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let mut read = AbandonableRead::start(self.store.metric_read_pool(pool)).await?;
                let points = postgres_points(read.connection()?, ids, from_us, to_us).await?;
                read.finished();
                Ok(points)
            }
            Pool::Sqlite(pool) => {
                let mut connection = pool.acquire().await?;
                sqlite_points(&mut connection, ids, from_us, to_us).await
            }
        }
    }

    /// Every point with a time at or after `from_us`, of every series that has one, and the
    /// committed-data feed's position they are complete up to, all read from one snapshot: the
    /// batches after that position are exactly those the answer misses. What a copy of the
    /// recent points kept current by the feed starts from.
    pub async fn recent_points(&self, from_us: i64) -> Result<RecentPoints> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *transaction)
                    .await?;
                recent_points_in!(
                    transaction,
                    "SELECT id, name, labels::text FROM metric_series ORDER BY id",
                    postgres_points,
                    from_us
                )
            }
            Pool::Sqlite(pool) => {
                // A read transaction: its first statement fixes the snapshot the others see.
                let mut transaction = pool.begin().await?;
                recent_points_in!(
                    transaction,
                    "SELECT id, name, labels FROM metric_series ORDER BY id",
                    sqlite_points,
                    from_us
                )
            }
        }
    }

    /// The latest point of each of the series `ids` with a time in `from_us..=to_us` (series
    /// without one are absent), ordered by series: what an instant-vector selector evaluated at
    /// one instant needs, one index probe per series instead of the whole lookback window.
    pub async fn latest_points_of_series(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, i64, f64)>> {
        // SQLite gives the bare columns of an aggregate query the values of the row max() chose.
        const SQLITE_LATEST: &str = "SELECT series_id, max(time_us) AS time_us, value, nan_bits \
             FROM metric_points WHERE series_id IN (SELECT value FROM json_each($1)) \
             AND time_us >= $2 AND time_us <= $3 GROUP BY series_id ORDER BY series_id";
        self.read_point_rows((POSTGRES_LATEST, SQLITE_LATEST), ids, from_us, to_us)
            .await
    }

    /// Runs a read of `(series id, time, value)` rows binding the ids, `from_us` and `to_us`:
    /// the PostgreSQL statement stopped on the server when the read is dropped, the SQLite one
    /// decoding its NaN payloads.
    async fn read_point_rows(
        &self,
        (postgres_sql, sqlite_sql): (&'static str, &'static str),
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, i64, f64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match &self.store.pool {
            Pool::Postgres(pool) => {
                // A read dropped before its end (its query timed out, or its caller went away)
                // closes its connection, and the server stops its statement, rather than run to
                // its end on a connection that goes back to the pool.
                let mut read = AbandonableRead::start(self.store.metric_read_pool(pool)).await?;
                let rows = sqlx::query_as(postgres_sql)
                    .bind(ids)
                    .bind(from_us)
                    .bind(to_us)
                    .fetch_all(read.connection()?)
                    .await?;
                read.finished();
                rows
            }
            Pool::Sqlite(pool) => {
                let rows: Vec<(i64, i64, Option<f64>, Option<i64>)> = sqlx::query_as(sqlite_sql)
                    .bind(ids_json(ids))
                    .bind(from_us)
                    .bind(to_us)
                    .fetch_all(pool)
                    .await?;
                rows.into_iter()
                    .map(|(id, time, value, nan_bits)| {
                        (id, time, super::from_sqlite_value(value, nan_bits))
                    })
                    .collect()
            }
        })
    }

    /// The points of the series `ids` at the millisecond instants `instants_ms` (a point at
    /// 1.5 ms is at instant 1), ordered by series and time.
    pub async fn points_at_instants(
        &self,
        ids: &[i64],
        instants_ms: &[i64],
    ) -> Result<Vec<(i64, i64, f64)>> {
        if ids.is_empty() || instants_ms.is_empty() {
            return Ok(Vec::new());
        }
        let instants_us: Vec<i64> = instants_ms
            .iter()
            .map(|ms| ms.saturating_mul(1000))
            .collect();
        let mut rows: Vec<(i64, i64, f64)> = match &self.store.pool {
            Pool::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                plan_each_time(&mut transaction).await?;
                let rows = sqlx::query_as(
                    "SELECT series_id, time_us, value FROM unnest($2::BIGINT[]) AS instant(t) \
                     JOIN metric_points ON series_id = ANY($1) \
                     AND time_us >= instant.t AND time_us < instant.t + 1000",
                )
                .bind(ids)
                .bind(&instants_us)
                .fetch_all(&mut *transaction)
                .await?;
                transaction.commit().await?;
                rows
            }
            Pool::Sqlite(pool) => {
                let rows: Vec<(i64, i64, Option<f64>, Option<i64>)> = sqlx::query_as(
                    "SELECT series_id, time_us, metric_points.value, nan_bits \
                     FROM json_each($2) AS instant JOIN metric_points \
                     ON series_id IN (SELECT value FROM json_each($1)) \
                     AND time_us >= instant.value AND time_us < instant.value + 1000",
                )
                .bind(ids_json(ids))
                .bind(ids_json(&instants_us))
                .fetch_all(pool)
                .await?;
                rows.into_iter()
                    .map(|(id, time, value, nan_bits)| {
                        (id, time, super::from_sqlite_value(value, nan_bits))
                    })
                    .collect()
            }
        };
        rows.sort_unstable_by_key(|row| (row.0, row.1));
        Ok(rows)
    }

    /// Of the series `ids`, those with at least one point in `from_us..=to_us`.
    pub async fn series_with_points(
        &self,
        ids: &[i64],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match &self.store.pool {
            Pool::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT id FROM unnest($1::BIGINT[]) AS wanted(id) WHERE EXISTS \
                     (SELECT 1 FROM metric_points \
                      WHERE series_id = wanted.id AND time_us >= $2 AND time_us <= $3)",
                )
                .bind(ids)
                .bind(from_us)
                .bind(to_us)
                .fetch_all(pool)
                .await?
            }
            Pool::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT value FROM json_each($1) AS wanted WHERE EXISTS \
                     (SELECT 1 FROM metric_points \
                      WHERE series_id = wanted.value AND time_us >= $2 AND time_us <= $3)",
                )
                .bind(ids_json(ids))
                .bind(from_us)
                .bind(to_us)
                .fetch_all(pool)
                .await?
            }
        })
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

/// A pooled PostgreSQL connection running a read that may be abandoned: dropped before
/// [`AbandonableRead::finished`], it closes the connection instead of returning it to the pool,
/// so that a statement still running on it cannot meet the next borrower; the server notices
/// the closed connection within [`CLIENT_CHECK_MS`] and stops the statement.
struct AbandonableRead {
    connection: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

/// How often PostgreSQL checks, while a statement runs, that its client is still there
/// (`client_connection_check_interval`, set on every connection of the pool as it connects).
pub const CLIENT_CHECK_MS: u32 = 100;

impl AbandonableRead {
    async fn start(pool: &sqlx::PgPool) -> Result<Self> {
        Ok(Self {
            connection: Some(pool.acquire().await?),
        })
    }

    /// The connection the read runs its statements on.
    fn connection(&mut self) -> Result<&mut sqlx::PgConnection> {
        self.connection
            .as_deref_mut()
            .ok_or_else(|| crate::error::StoreError::InvalidValue("the read has ended".to_owned()))
    }

    /// The read ended: the connection goes back to the pool.
    fn finished(mut self) {
        self.connection.take();
    }
}

impl Drop for AbandonableRead {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.as_mut() {
            connection.close_on_drop();
        }
    }
}

/// Plans this transaction's statements for their own parameters every time, without JIT: the
/// reads that join an array of instants or hours with `metric_points` got a generic plan after
/// five runs on one connection that scanned every partition (30 s instead of 0.6 s, in the query
/// benchmark), and spent most of their custom plan's time compiling JIT.
async fn plan_each_time(transaction: &mut sqlx::PgTransaction<'_>) -> Result<()> {
    sqlx::query(
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), \
         set_config('jit', 'off', true)",
    )
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// A chunk as read: series id, window, point count, data.
type ChunkRow = (i64, i64, i32, Vec<u8>);

/// A row of [`POSTGRES_READ`]: a pending window (series id NULL), a chunk (its series, window,
/// point count and data) or a point of a pending window (its series, time and value).
pub type PostgresReadRow = (Option<i64>, i64, i32, Option<Vec<u8>>, Option<f64>);

/// The read of the series `$1` over `$5..=$3`, in one statement and so in one snapshot: the
/// pending windows starting in `$4..=$3` (`$4` the window of `$5`, `$6` a window's length);
/// the chunks that may hold points there, those starting there and the one at `$2`, the hour
/// of `$5`, which may be that hour's chunk (ordered by series and window); and the points of
/// the pending windows in the range, read by runs of consecutive windows (in no order). The
/// points' bounds `$5..=$3` stand beside each run's so that PostgreSQL prunes the partitions of
/// `metric_points` outside the range as it plans or starts the statement, not as it meets each
/// run: a plan holding every daily partition costs more than the read itself.
pub const POSTGRES_READ: &str = "WITH pending AS MATERIALIZED (SELECT window_us \
     FROM metric_chunk_pending WHERE window_us >= $4 AND window_us <= $3), \
     runs AS (SELECT min(window_us) AS low, max(window_us) + $6 - 1 AS high FROM \
     (SELECT window_us, window_us - $6 * row_number() OVER (ORDER BY window_us) AS run \
     FROM pending) AS numbered GROUP BY run) \
     (SELECT NULL::BIGINT, window_us, 0, NULL::BYTEA, NULL::FLOAT8 FROM pending) UNION ALL \
     (SELECT series_id, window_us, points, data, NULL::FLOAT8 FROM metric_chunks \
     WHERE series_id = ANY($1) AND window_us >= $2 AND window_us <= $3 \
     AND (window_us >= $4 OR window_us = $2) ORDER BY series_id, window_us) UNION ALL \
     (SELECT point.series_id, point.time_us, 0, NULL::BYTEA, point.value FROM runs \
     CROSS JOIN LATERAL (SELECT series_id, time_us, value FROM metric_points \
     WHERE series_id = ANY($1) AND time_us >= $5 AND time_us <= $3 \
     AND time_us >= runs.low AND time_us <= runs.high OFFSET 0) AS point)";

/// The latest point of each of the series `$1` in `$2..=$3`, by series.
pub const POSTGRES_LATEST: &str = "SELECT latest.series_id, latest.time_us, latest.value \
     FROM unnest($1::BIGINT[]) AS wanted(id) CROSS JOIN LATERAL ( \
     SELECT series_id, time_us, value FROM metric_points \
     WHERE series_id = wanted.id AND time_us >= $2 AND time_us <= $3 \
     ORDER BY time_us DESC LIMIT 1) AS latest ORDER BY latest.series_id";

/// Plans, on a new connection of the pool of reads (whose plans are generic), the statements
/// reads of points run, with no series: the first plan of each takes milliseconds.
pub(crate) async fn prepare_reads(connection: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    let none: &[i64] = &[];
    sqlx::query(POSTGRES_READ)
        .bind(none)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(CHUNK_WINDOW_US)
        .execute(&mut *connection)
        .await?;
    sqlx::query(POSTGRES_LATEST)
        .bind(none)
        .bind(0_i64)
        .bind(0_i64)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Pending chunk windows starting in `$1..=$2`, oldest first.
const PENDING_WINDOWS: &str = "SELECT window_us FROM metric_chunk_pending \
     WHERE window_us >= $1 AND window_us <= $2 ORDER BY window_us";

/// Series whose recent points one statement of [`MetricsRepository::recent_points`] reads.
const RECENT_SERIES_PER_READ: usize = 1_000;

/// What [`MetricsRepository::recent_points`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentPoints {
    /// The feed position of the last batch the points hold.
    pub position: i64,
    /// Id, name and labels (a JSON object) of each series in `points`, in id order.
    pub series: Vec<(i64, String, String)>,
    /// The points of each series, oldest first, in id order.
    pub points: Vec<SeriesPoints>,
}

impl RecentPoints {
    fn new(position: i64, series: Vec<(i64, String, String)>, points: Vec<SeriesPoints>) -> Self {
        let with_points: std::collections::HashSet<i64> = points.iter().map(|p| p.0).collect();
        let series = series
            .into_iter()
            .filter(|s| with_points.contains(&s.0))
            .collect();
        Self {
            position,
            series,
            points,
        }
    }
}

/// The points of `ids` in `from_us..=to_us` on PostgreSQL: [`POSTGRES_READ`] on `connection`.
async fn postgres_points(
    connection: &mut sqlx::PgConnection,
    ids: &[i64],
    from_us: i64,
    to_us: i64,
) -> Result<EncodedPoints> {
    if ids.is_empty() || to_us < from_us {
        return Ok(EncodedPoints::empty((from_us, to_us)));
    }
    let (first_window, first_hour) = first_window_and_hour(from_us);
    let rows: Vec<PostgresReadRow> = sqlx::query_as(POSTGRES_READ)
        .bind(ids)
        .bind(first_hour)
        .bind(to_us)
        .bind(first_window)
        .bind(from_us)
        .bind(CHUNK_WINDOW_US)
        .fetch_all(connection)
        .await?;
    let mut pending = Vec::new();
    let mut chunks: Vec<ChunkRow> = Vec::new();
    let mut points = Vec::new();
    for row in rows {
        match row {
            (None, window, _, _, _) => pending.push(window),
            (Some(series_id), window, count, Some(data), _) => {
                chunks.push((series_id, window, count, data))
            }
            (Some(series_id), time, _, None, Some(value)) => points.push((series_id, time, value)),
            (Some(series_id), time, _, None, None) => {
                return Err(crate::error::StoreError::InvalidValue(format!(
                    "series {series_id} has a point at {time} us without a value"
                )));
            }
        }
    }
    pending.sort_unstable();
    if !chunks.is_sorted_by_key(|chunk| (chunk.0, chunk.1)) {
        chunks.sort_unstable_by_key(|chunk| (chunk.0, chunk.1));
    }
    Ok(EncodedPoints::new(
        chunks,
        vec![points],
        PendingWindows(pending),
        (from_us, to_us),
    ))
}

/// The points of `ids` in `from_us..=to_us` on SQLite: pending windows, chunks, then the
/// points of each run of pending windows, on `connection`.
async fn sqlite_points(
    connection: &mut sqlx::SqliteConnection,
    ids: &[i64],
    from_us: i64,
    to_us: i64,
) -> Result<EncodedPoints> {
    if ids.is_empty() || to_us < from_us {
        return Ok(EncodedPoints::empty((from_us, to_us)));
    }
    let (first_window, first_hour) = first_window_and_hour(from_us);
    let ids = ids_json(ids);
    let pending: Vec<i64> = sqlx::query_scalar(PENDING_WINDOWS)
        .bind(first_window)
        .bind(to_us)
        .fetch_all(&mut *connection)
        .await?;
    let chunks: Vec<ChunkRow> = sqlx::query_as(
        "SELECT series_id, window_us, points, data FROM metric_chunks \
         WHERE series_id IN (SELECT value FROM json_each($1)) \
         AND window_us >= $2 AND window_us <= $3 \
         AND (window_us >= $4 OR window_us = $2) \
         ORDER BY series_id, window_us",
    )
    .bind(&ids)
    .bind(first_hour)
    .bind(to_us)
    .bind(first_window)
    .fetch_all(&mut *connection)
    .await?;
    let mut runs = Vec::new();
    for (low, high) in pending_runs(&pending, chunks.iter().map(|c| c.1), from_us, to_us) {
        let rows: Vec<(i64, i64, Option<f64>, Option<i64>)> = sqlx::query_as(
            "SELECT series_id, time_us, value, nan_bits FROM metric_points \
             WHERE series_id IN (SELECT value FROM json_each($1)) \
             AND time_us >= $2 AND time_us <= $3 ORDER BY series_id, time_us",
        )
        .bind(&ids)
        .bind(low)
        .bind(high)
        .fetch_all(&mut *connection)
        .await?;
        runs.push(
            rows.into_iter()
                .map(|(id, time, value, nan_bits)| {
                    (id, time, super::from_sqlite_value(value, nan_bits))
                })
                .collect(),
        );
    }
    Ok(EncodedPoints::new(
        chunks,
        runs,
        PendingWindows(pending),
        (from_us, to_us),
    ))
}

/// The first chunk window of a read from `from_us`, and the hour it lies in (an hour's chunk
/// starts at its hour, which may be before the first window).
fn first_window_and_hour(from_us: i64) -> (i64, i64) {
    (
        from_us.div_euclid(CHUNK_WINDOW_US) * CHUNK_WINDOW_US,
        from_us.div_euclid(HOUR_US) * HOUR_US,
    )
}

/// The time ranges within `from_us..=to_us` that the pending windows `pending` (sorted) cover:
/// where a read takes points from `metric_points`. Pending windows join into one range unless
/// a chunk (starting at one of `chunked`, in any order) starts between them: a gap without
/// chunks mostly holds no points of the series read, so one statement reads a run of pending
/// windows with gaps in the data (the points of windows that are not pending are dropped).
fn pending_runs(
    pending: &[i64],
    chunked: impl IntoIterator<Item = i64>,
    from_us: i64,
    to_us: i64,
) -> Vec<(i64, i64)> {
    let mut chunked: Vec<i64> = chunked.into_iter().collect();
    chunked.sort_unstable();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &window in pending {
        let (low, high) = (
            window.max(from_us),
            (window + CHUNK_WINDOW_US - 1).min(to_us),
        );
        if low > high {
            continue;
        }
        match runs.last_mut() {
            Some(last)
                if chunked
                    .get(chunked.partition_point(|&c| c <= last.1))
                    .is_none_or(|&c| c >= low) =>
            {
                last.1 = high
            }
            _ => runs.push((low, high)),
        }
    }
    runs
}

/// A series id and its points (time in microseconds, value), oldest first.
pub type SeriesPoints = (i64, Vec<(i64, f64)>);

/// The pending windows a read found, sorted: their points come from `metric_points`, whatever
/// chunks of them (compacted before a late point marked them again, or inside an hour's chunk)
/// hold.
struct PendingWindows(Vec<i64>);

impl PendingWindows {
    /// Whether the point at `time_us` lies in a pending window.
    fn holds(&self, time_us: i64) -> bool {
        let window = time_us.div_euclid(CHUNK_WINDOW_US) * CHUNK_WINDOW_US;
        self.0.binary_search(&window).is_ok()
    }

    /// Whether the chunk starting at `start` (covering at most an hour) may hold points of a
    /// pending window.
    fn meet_chunk_at(&self, start: i64) -> bool {
        let at = self.0.partition_point(|&window| window < start);
        self.0
            .get(at)
            .is_some_and(|&window| window < start + HOUR_US)
    }
}

/// The points a read found, as read: each series' chunks still encoded and the points of its
/// pending windows, decoded a series at a time by whoever takes them
/// ([`EncodedPoints::decode`]). The query service decodes each group of series just before the
/// engine evaluates it: the points are still in cache when the engine first reads them, and
/// only a group's are alive at once (a chunk takes about a tenth of the memory of its points).
pub struct EncodedPoints {
    /// By series id.
    series: std::collections::BTreeMap<i64, EncodedSeries>,
    pending: PendingWindows,
    /// The read's range, `from_us..=to_us`.
    range: (i64, i64),
    scratch: chunk::Scratch,
}

/// One series' part of a read.
#[derive(Default)]
struct EncodedSeries {
    /// Window start, points recorded and data of each chunk, in window order.
    chunks: Vec<(i64, i32, Vec<u8>)>,
    /// The points of its pending windows (time in microseconds), in any order.
    points: Vec<(i64, f64)>,
}

impl std::fmt::Debug for EncodedPoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedPoints")
            .field("series", &self.series.len())
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl EncodedPoints {
    /// The points of `chunks` (ordered by series and window) and of `runs` (rows in any order)
    /// within `from_us..=to_us`: points of the `pending` windows from the runs, the others
    /// from the chunks.
    fn new(
        chunks: Vec<ChunkRow>,
        runs: Vec<Vec<(i64, i64, f64)>>,
        pending: PendingWindows,
        range: (i64, i64),
    ) -> Self {
        let mut series: std::collections::BTreeMap<i64, EncodedSeries> =
            std::collections::BTreeMap::new();
        for (series_id, window, count, data) in chunks {
            series
                .entry(series_id)
                .or_default()
                .chunks
                .push((window, count, data));
        }
        for run in runs {
            for (series_id, time, value) in run {
                if pending.holds(time) {
                    series
                        .entry(series_id)
                        .or_default()
                        .points
                        .push((time, value));
                }
            }
        }
        Self {
            series,
            pending,
            range,
            scratch: chunk::Scratch::default(),
        }
    }

    fn empty(range: (i64, i64)) -> Self {
        Self::new(Vec::new(), Vec::new(), PendingWindows(Vec::new()), range)
    }

    /// How many series the read found chunks or points of.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Series `id`'s points in the range, in the reader's form and oldest first (empty when
    /// the read found none, or when they were taken already), in one vector sized once for
    /// them and for `room_after(points read)` more, which the caller means to append.
    pub fn decode<F: PointForm>(
        &mut self,
        id: i64,
        room_after: impl FnOnce(usize) -> usize,
    ) -> Result<Vec<F::Point>> {
        let Some(EncodedSeries { chunks, mut points }) = self.series.remove(&id) else {
            return Ok(Vec::new());
        };
        // Counts come from the rows: past a bound the vector grows as it fills instead.
        let read = chunks
            .iter()
            .map(|chunk| usize::try_from(chunk.1).unwrap_or(0))
            .sum::<usize>()
            + points.len();
        let mut decoded = Vec::with_capacity((read + room_after(read)).min(MAX_POINTS_RESERVED));
        let pending = &self.pending;
        let held_by_pending = |time: i64| pending.holds(time);
        for (start, recorded_count, data) in chunks {
            // Where a pending window meets the chunk, its points are read from the points table.
            let dropped = pending
                .meet_chunk_at(start)
                .then_some(&held_by_pending as &dyn Fn(i64) -> bool);
            chunk::decode_into::<F>(
                &data,
                recorded_count,
                self.range,
                dropped,
                &mut decoded,
                &mut self.scratch,
            )?;
        }
        // PostgreSQL returns the points of pending windows in no particular order.
        if !points.is_sorted_by_key(|point| point.0) {
            points.sort_by_key(|point| point.0);
        }
        let points = points
            .into_iter()
            .map(|(time, value)| F::point(time, value));
        Ok(merge_sorted::<F>(decoded, points))
    }

    /// Every series' points, by series in id order, each oldest first and followed by room for
    /// `room_after(id, points read)` more; series without points in the range left out.
    pub fn decode_all<F: PointForm>(
        mut self,
        room_after: &dyn Fn(i64, usize) -> usize,
    ) -> Result<Vec<(i64, Vec<F::Point>)>> {
        let ids: Vec<i64> = self.series.keys().copied().collect();
        let mut decoded = Vec::with_capacity(ids.len());
        for id in ids {
            let points = self.decode::<F>(id, |read| room_after(id, read))?;
            if !points.is_empty() {
                decoded.push((id, points));
            }
        }
        Ok(decoded)
    }
}

/// The most points a read sets room aside for at once for one series (64 MiB).
const MAX_POINTS_RESERVED: usize = 1 << 22;

/// Two lists of points in time order as one. A chunk and a pending window never share a
/// millisecond (windows are whole milliseconds), so times in the reader's unit order them as
/// stored times would.
fn merge_sorted<F: PointForm>(
    mut a: Vec<F::Point>,
    b: impl ExactSizeIterator<Item = F::Point>,
) -> Vec<F::Point> {
    let mut b = b.peekable();
    // The pending windows are mostly the latest: then the merge is an append.
    if a.last()
        .zip(b.peek())
        .is_none_or(|(x, y)| F::time(x) <= F::time(y))
    {
        a.extend(b);
        return a;
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if F::time(x) <= F::time(y) => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(point) => merged.push(point),
            None => return merged,
        }
    }
}

/// `entries` as the text of a JSON object; `None` when there are none.
fn json_object<'a>(entries: impl Iterator<Item = (&'a str, serde_json::Value)>) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = entries
        .map(|(label, value)| (label.to_owned(), value))
        .collect();
    (!object.is_empty()).then(|| serde_json::Value::Object(object).to_string())
}

/// Pending hours in `$1..$2`.
const PENDING_HOURS: &str =
    "SELECT hour_us FROM metric_rollup_pending WHERE hour_us >= $1 AND hour_us < $2";

/// A rollup row as read: series id, bucket, count, sum, min, max, NaN count.
type RollupTuple = (i64, i64, i64, f64, f64, f64, i64);

fn rollup_row((series_id, bucket_us, count, sum, min, max, nan_count): RollupTuple) -> RollupRow {
    RollupRow {
        series_id,
        bucket_us,
        count,
        sum,
        min,
        max,
        nan_count,
    }
}

/// `ids` as a JSON array, which SQLite reads back with `json_each` (it has no array type).
fn ids_json(ids: &[i64]) -> String {
    let mut text = String::with_capacity(ids.len() * 8 + 2);
    text.push('[');
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&id.to_string());
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = CHUNK_WINDOW_US;

    #[test]
    fn points_from_chunks_and_pending_windows_merge_in_time_order() {
        let points = |times: &[i64]| -> Vec<(i64, f64)> {
            times.iter().map(|&time| (time, time as f64)).collect()
        };
        // Pending points after the chunks' (the usual case), between them, and either empty.
        assert_eq!(
            merge_sorted::<Microseconds>(points(&[1, 2, 3]), points(&[4, 5]).into_iter()),
            points(&[1, 2, 3, 4, 5])
        );
        assert_eq!(
            merge_sorted::<Microseconds>(points(&[1, 4, 6]), points(&[2, 3, 7]).into_iter()),
            points(&[1, 2, 3, 4, 6, 7])
        );
        assert_eq!(
            merge_sorted::<Microseconds>(points(&[5, 6]), points(&[1, 2]).into_iter()),
            points(&[1, 2, 5, 6])
        );
        assert_eq!(
            merge_sorted::<Microseconds>(Vec::new(), points(&[1]).into_iter()),
            points(&[1])
        );
        assert_eq!(
            merge_sorted::<Microseconds>(points(&[1]), std::iter::empty()),
            points(&[1])
        );
    }

    /// Series 1: three window chunks, then a pending window; series 2: two chunks.
    fn read_of_two_series() -> EncodedPoints {
        let chunk = |series: i64, window: i64| -> ChunkRow {
            let points: Vec<(i64, f64)> = (0..40)
                .map(|i| (window + i * 15_000_000, i as f64))
                .collect();
            let data = chunk::encode(&points).expect("encode");
            (series, window, 40, data)
        };
        let chunks = vec![
            chunk(1, 0),
            chunk(1, W),
            chunk(1, 2 * W),
            chunk(2, 0),
            chunk(2, W),
        ];
        let pending_points: Vec<(i64, i64, f64)> =
            (0..5).map(|i| (1, 3 * W + i * 15_000_000, -1.0)).collect();
        EncodedPoints::new(
            chunks,
            vec![pending_points],
            PendingWindows(vec![3 * W]),
            (0, 10 * W),
        )
    }

    #[test]
    fn a_series_points_from_chunks_and_pending_windows_fill_one_vector_sized_once() {
        let read = read_of_two_series()
            .decode_all::<Microseconds>(&|id, read| if id == 1 { read / 25 + 2 } else { 0 })
            .expect("decode");
        assert_eq!(read.len(), 2);
        let (first, second) = (&read[0].1, &read[1].1);
        assert_eq!((read[0].0, first.len()), (1, 125));
        assert_eq!((read[1].0, second.len()), (2, 80));
        assert!(first.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(
            first[120..],
            (0..5)
                .map(|i| (3 * W + i * 15_000_000, -1.0))
                .collect::<Vec<_>>()[..]
        );
        // Sized once for the chunks, the pending points and the room asked for after them:
        // never doubled on the way.
        assert_eq!(first.capacity(), 125 + 7);
        assert_eq!(second.capacity(), 80);
    }

    #[test]
    fn a_read_decodes_each_series_as_it_is_taken_in_any_order() {
        let all = read_of_two_series()
            .decode_all::<Microseconds>(&|_, _| 0)
            .expect("decode");
        let mut read = read_of_two_series();
        assert_eq!(read.len(), 2);
        let second = read.decode::<Microseconds>(2, |_| 0).expect("second");
        let first = read.decode::<Microseconds>(1, |read| read).expect("first");
        assert_eq!([(1, first.clone()), (2, second)], all[..]);
        assert_eq!(first.capacity(), 2 * 125);
        // Taken once: a series taken again, or one the read did not find, has no points.
        assert!(read.is_empty());
        assert!(
            read.decode::<Microseconds>(1, |_| 0)
                .expect("again")
                .is_empty()
        );
        assert!(
            read.decode::<Microseconds>(7, |_| 0)
                .expect("absent")
                .is_empty()
        );
    }

    #[test]
    fn pending_windows_join_unless_a_chunk_lies_between() {
        // Windows 0, 1 and 3 pending, nothing compacted: one run over the gap.
        assert_eq!(
            pending_runs(&[0, W, 3 * W], [], 0, 10 * W),
            [(0, 4 * W - 1)]
        );
        // Window 2 has a chunk: two runs around it.
        assert_eq!(
            pending_runs(&[0, W, 3 * W], [2 * W, 2 * W], 0, 10 * W),
            [(0, 2 * W - 1), (3 * W, 4 * W - 1)]
        );
        // A chunk beyond the runs changes nothing; the range clips the runs.
        assert_eq!(pending_runs(&[0, W], [5 * W], 10, W + 5), [(10, W + 5)]);
        assert_eq!(pending_runs(&[0], [], W, 2 * W), []);
    }
}
