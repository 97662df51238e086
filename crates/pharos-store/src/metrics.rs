//! [`MetricsRepository`]: metric series and points. Series are looked up or created in batches;
//! points go in with binary `COPY` on PostgreSQL (into day partitions created ahead) and with
//! multi-row inserts on SQLite, one transaction per batch so a batch is stored whole or not at all.

use std::collections::HashMap;

use sqlx::{PgConnection, QueryBuilder, Sqlite};

use crate::backend::{Pool, with_pool};
use crate::error::Result;
use crate::{Store, now_micros};

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

const DAY_US: i64 = 86_400_000_000;
/// SQLite allows 32766 bound parameters per statement; three per point.
const SQLITE_POINTS_PER_INSERT: usize = 5_000;
/// PostgreSQL's binary COPY header: signature, flags, header extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

#[derive(Debug, Clone)]
pub struct MetricsRepository {
    store: Store,
}

impl MetricsRepository {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

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
        let now = now_micros();
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

    /// Stores `points` in one transaction.
    pub async fn insert_points(&self, points: &[PointRow]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let mut transaction = begin_on_live_connection(pool).await?;
                copy_points(&mut transaction, points).await?;
                transaction.commit().await?;
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
                transaction.commit().await?;
            }
        }
        Ok(())
    }

    /// Creates the missing day partitions of `metric_points` covering `from_us..=to_us`
    /// (PostgreSQL; SQLite has no partitions). Returns how many it created.
    pub async fn ensure_partitions(&self, from_us: i64, to_us: i64) -> Result<usize> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT child.relname::text FROM pg_inherits \
             JOIN pg_class parent ON parent.oid = pg_inherits.inhparent \
             JOIN pg_class child ON child.oid = pg_inherits.inhrelid \
             WHERE parent.relname = 'metric_points'",
        )
        .fetch_all(pool)
        .await?;
        let mut created = 0;
        let mut day = from_us.div_euclid(DAY_US);
        while day <= to_us.div_euclid(DAY_US) {
            let name = partition_name(day);
            if !existing.contains(&name) {
                // Built from a day number we computed, never from input.
                let ddl = format!(
                    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF metric_points FOR VALUES FROM ({}) TO ({})",
                    day * DAY_US,
                    (day + 1) * DAY_US
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                    .execute(pool)
                    .await?;
                created += 1;
            }
            day += 1;
        }
        Ok(created)
    }

    /// Removes every point older than `before_us`. On PostgreSQL whole day partitions go, those
    /// entirely before the cut (a partial day stays until it is whole); on SQLite rows are deleted.
    pub async fn expire_points(&self, before_us: i64) -> Result<Expired> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let partitions: Vec<(String, String)> = sqlx::query_as(
                    "SELECT child.relname::text, pg_get_expr(child.relpartbound, child.oid) \
                     FROM pg_inherits \
                     JOIN pg_class parent ON parent.oid = pg_inherits.inhparent \
                     JOIN pg_class child ON child.oid = pg_inherits.inhrelid \
                     WHERE parent.relname = 'metric_points'",
                )
                .fetch_all(pool)
                .await?;
                let mut expired = Expired::default();
                for (name, bound) in partitions {
                    let Some(upper) = partition_upper_bound(&bound) else {
                        continue;
                    };
                    if upper > before_us || !is_partition_name(&name) {
                        continue;
                    }
                    // The name came from the catalog and matches metric_points_pYYYYMMDD.
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                        .execute(pool)
                        .await?;
                    expired.partitions_dropped += 1;
                }
                Ok(expired)
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let deleted = sqlx::query("DELETE FROM metric_points WHERE time_us < $1")
                    .bind(before_us)
                    .execute(pool)
                    .await?
                    .rows_affected();
                Ok(Expired {
                    partitions_dropped: 0,
                    rows_deleted: deleted,
                })
            }
        }
    }

    /// Day partitions of `metric_points` (PostgreSQL; 0 on SQLite).
    pub async fn partition_count(&self) -> Result<i64> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_inherits JOIN pg_class parent ON parent.oid = pg_inherits.inhparent \
             WHERE parent.relname = 'metric_points'",
        )
        .fetch_one(pool)
        .await?)
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

    /// Points stored in total (for tests and diagnostics).
    pub async fn count_points(&self) -> Result<i64> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
                .fetch_one(pool)
                .await?
        }))
    }
}

/// Starts a transaction, passing over pooled connections that died while idle (the server
/// restarted or ended them): nothing was sent on those yet, so trying the next one is safe.
async fn begin_on_live_connection(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    const ATTEMPTS: usize = 4;
    let mut attempt = 1;
    loop {
        match pool.begin().await {
            Ok(transaction) => return Ok(transaction),
            Err(error) if attempt < ATTEMPTS && is_dead_connection(&error) => {
                tracing::debug!(%error, attempt, "pooled connection was dead; trying another");
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// An I/O failure, or a server message that the connection is over (SQLSTATE class 08,
/// connection exception, or 57P, operator intervention such as a terminated backend).
fn is_dead_connection(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(database) => database
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// What [`MetricsRepository::expire_points`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub partitions_dropped: u64,
    pub rows_deleted: u64,
}

/// The upper bound of `FOR VALUES FROM ('a') TO ('b')`.
fn partition_upper_bound(bound: &str) -> Option<i64> {
    let upper = bound.split(" TO (").nth(1)?;
    upper
        .trim_matches(|c: char| !c.is_ascii_digit() && c != '-')
        .parse()
        .ok()
}

fn is_partition_name(name: &str) -> bool {
    name.strip_prefix("metric_points_p")
        .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
}

fn partition_name(day: i64) -> String {
    let (year, month, date) = civil_from_days(day);
    format!("metric_points_p{year:04}{month:02}{date:02}")
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Streams `points` into `metric_points` with binary COPY on the given connection.
async fn copy_points(connection: &mut PgConnection, points: &[PointRow]) -> Result<()> {
    let data = encode_copy_binary(points);
    let mut copy = connection
        .copy_in_raw("COPY metric_points (series_id, time_us, value) FROM STDIN (FORMAT binary)")
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// `points` in PostgreSQL's binary COPY format for `metric_points (series_id, time_us, value)`;
/// public so that the benchmark can load the same bytes with plain `psql` as its reference.
pub fn encode_copy_binary(points: &[PointRow]) -> Vec<u8> {
    // Per row: field count (2 bytes) and three 8-byte fields with 4-byte lengths.
    let mut data = Vec::with_capacity(COPY_HEADER.len() + points.len() * 38 + 2);
    data.extend_from_slice(COPY_HEADER);
    for point in points {
        data.extend_from_slice(&3i16.to_be_bytes());
        for field in [
            point.series_id.to_be_bytes(),
            point.time_us.to_be_bytes(),
            point.value.to_bits().to_be_bytes(),
        ] {
            data.extend_from_slice(&8i32.to_be_bytes());
            data.extend_from_slice(&field);
        }
    }
    data.extend_from_slice(&(-1i16).to_be_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_are_utc_days() {
        assert_eq!(partition_name(0), "metric_points_p19700101");
        // 2026-11-25 is day 20782 since the epoch.
        assert_eq!(partition_name(20_782), "metric_points_p20261125");
        assert_eq!(partition_name(-1), "metric_points_p19691231");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert!(is_partition_name("metric_points_p20261125"));
        assert!(!is_partition_name("metric_points_p2026112; DROP"));
        assert_eq!(
            partition_upper_bound("FOR VALUES FROM ('1795564800000000') TO ('1795651200000000')"),
            Some(1_795_651_200_000_000)
        );
    }
}
