//! Metric compaction: [`MetricsRepository::compact`] turns each pending chunk window that has
//! ended into one compressed chunk per series with points in it (`metric_chunks`), replacing the
//! window's earlier chunks, one window per transaction and one replica at a time (an advisory
//! lock on PostgreSQL). Once a whole hour has ended, a pending window of it compacts the hour:
//! one chunk per series for the hour replaces its window chunks, so that long reads decode a
//! sixth of the chunks (a chunk's decoding costs about 2 µs before its first point). Points
//! stay in `metric_points`; reads take a compacted window from its chunks and a pending one from
//! its points, so a window's points read the same either way.

use futures::TryStreamExt;

use super::{
    CHUNK_WINDOW_US, Compacted, HOUR_US, MetricsRepository, ROLLUP_SETTLE_US, chunk,
    take_pending_postgres, take_pending_sqlite,
};
use crate::backend::{Pool, with_pool};
use crate::error::Result;

/// PostgreSQL advisory lock that lets one replica at a time compact.
const COMPACTION_LOCK: i64 = 0x7068_6172_6f73_0002;

/// Chunks inserted per statement.
const CHUNKS_PER_INSERT: usize = 2_000;

/// One series' chunk of a window, ready to insert.
struct NewChunk {
    series_id: i64,
    points: i32,
    data: Vec<u8>,
}

impl MetricsRepository {
    /// Compacts every pending window that ended before `now_us` less a settling margin, the
    /// whole hour when the hour it is in has ended too. Each window (or hour) commits on its
    /// own; on PostgreSQL one replica at a time compacts (the others return at once).
    pub async fn compact(&self, now_us: i64) -> Result<Compacted> {
        let before = now_us - ROLLUP_SETTLE_US - CHUNK_WINDOW_US;
        let mut done = Compacted::default();
        loop {
            let (span, chunks) = match &self.store.pool {
                Pool::Postgres(pool) => {
                    let Some((mut transaction, window)) =
                        take_pending_postgres(pool, COMPACTION_LOCK, TAKE_PENDING_WINDOW, before)
                            .await?
                    else {
                        return Ok(done);
                    };
                    let span = compaction_span(window, before);
                    self.chunks.ensure(pool, span.start, span.start).await?;
                    clear_span::<sqlx::Postgres>(&mut transaction, &span).await?;
                    let chunks = encode_window(
                        sqlx::query_as(
                            "SELECT series_id, time_us, value FROM metric_points \
                             WHERE time_us >= $1 AND time_us < $2 ORDER BY series_id, time_us",
                        )
                        .bind(span.start)
                        .bind(span.end)
                        .fetch(&mut *transaction),
                    )
                    .await?;
                    for part in chunks.chunks(CHUNKS_PER_INSERT) {
                        let ids: Vec<i64> = part.iter().map(|c| c.series_id).collect();
                        let counts: Vec<i32> = part.iter().map(|c| c.points).collect();
                        let data: Vec<&[u8]> = part.iter().map(|c| c.data.as_slice()).collect();
                        sqlx::query(
                            "INSERT INTO metric_chunks (series_id, window_us, points, data) \
                             SELECT series_id, $1, points, data \
                             FROM UNNEST($2::bigint[], $3::int[], $4::bytea[]) \
                             AS new(series_id, points, data)",
                        )
                        .bind(span.start)
                        .bind(&ids)
                        .bind(&counts)
                        .bind(&data)
                        .execute(&mut *transaction)
                        .await?;
                    }
                    transaction.commit().await?;
                    (span, chunks)
                }
                Pool::Sqlite(pool) => {
                    let _writer = self.store.write_lock.lock().await;
                    let Some((mut transaction, window)) =
                        take_pending_sqlite(pool, TAKE_PENDING_WINDOW, before).await?
                    else {
                        return Ok(done);
                    };
                    let span = compaction_span(window, before);
                    clear_span::<sqlx::Sqlite>(&mut transaction, &span).await?;
                    // Series by series (CROSS JOIN keeps that order), each read through the
                    // (series_id, time_us) index.
                    let chunks = encode_window(
                        sqlx::query_as::<_, (i64, i64, Option<f64>, Option<i64>)>(
                            "SELECT series_id, time_us, metric_points.value, nan_bits \
                             FROM metric_series CROSS JOIN metric_points \
                             ON series_id = metric_series.id \
                             AND time_us >= $1 AND time_us < $2 ORDER BY series_id, time_us",
                        )
                        .bind(span.start)
                        .bind(span.end)
                        .fetch(&mut *transaction)
                        .map_ok(|(id, time, value, nan_bits)| {
                            (id, time, super::from_sqlite_value(value, nan_bits))
                        }),
                    )
                    .await?;
                    for chunk in &chunks {
                        sqlx::query(
                            "INSERT INTO metric_chunks (series_id, window_us, points, data) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(chunk.series_id)
                        .bind(span.start)
                        .bind(chunk.points)
                        .bind(&chunk.data)
                        .execute(&mut *transaction)
                        .await?;
                    }
                    transaction.commit().await?;
                    (span, chunks)
                }
            };
            done.windows += 1;
            if span.end - span.start == HOUR_US {
                done.hours += 1;
            }
            done.chunks += chunks.len() as u64;
            for chunk in &chunks {
                done.points += chunk.points as u64;
                done.bytes += chunk.data.len() as u64;
            }
        }
    }

    /// Windows waiting for compaction, oldest first.
    pub async fn pending_windows(&self) -> Result<Vec<i64>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT window_us FROM metric_chunk_pending ORDER BY window_us")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Chunks stored and the bytes of their data (for tests, diagnostics and the benchmark).
    pub async fn chunk_totals(&self) -> Result<(i64, i64)> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(LENGTH(data)), 0) AS BIGINT) FROM metric_chunks",
            )
            .fetch_one(pool)
            .await?
        }))
    }
}

/// Encodes a window's points, streamed in series and time order, as one chunk per series; only
/// the encoded chunks are held, never the window's rows.
async fn encode_window<E>(
    mut rows: impl futures::Stream<Item = std::result::Result<(i64, i64, f64), E>> + Unpin,
) -> Result<Vec<NewChunk>>
where
    crate::error::StoreError: From<E>,
{
    let mut chunks = Vec::new();
    let mut series: Option<i64> = None;
    let mut points: Vec<(i64, f64)> = Vec::new();
    while let Some((series_id, time_us, value)) = rows.try_next().await? {
        if series != Some(series_id) {
            if let Some(previous) = series {
                chunks.push(new_chunk(previous, &points)?);
            }
            series = Some(series_id);
            points.clear();
        }
        points.push((time_us, value));
    }
    if let Some(previous) = series {
        chunks.push(new_chunk(previous, &points)?);
    }
    Ok(chunks)
}

fn new_chunk(series_id: i64, points: &[(i64, f64)]) -> Result<NewChunk> {
    Ok(NewChunk {
        series_id,
        points: i32::try_from(points.len()).unwrap_or(i32::MAX),
        data: chunk::encode(points)?,
    })
}

/// What compacting the pending `window` rewrites: its hour when that hour's last window ended
/// before `before` (the hour's window chunks become hour chunks), else the window alone.
fn compaction_span(window: i64, before: i64) -> std::ops::Range<i64> {
    let hour = window.div_euclid(HOUR_US) * HOUR_US;
    if hour + HOUR_US - CHUNK_WINDOW_US <= before {
        hour..hour + HOUR_US
    } else {
        window..window + CHUNK_WINDOW_US
    }
}

/// Takes the other pending marks of `span`, which its compaction covers, and removes the chunks
/// starting in it (an hour's window chunks, or its hour chunks), which its new chunks replace;
/// before the span's points are read, so that a batch marking it again is compacted again.
async fn clear_span<DB: sqlx::Database>(
    connection: &mut DB::Connection,
    span: &std::ops::Range<i64>,
) -> Result<()>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for statement in [
        "DELETE FROM metric_chunk_pending WHERE window_us >= $1 AND window_us < $2",
        "DELETE FROM metric_chunks WHERE window_us >= $1 AND window_us < $2",
    ] {
        sqlx::query::<DB>(statement)
            .bind(span.start)
            .bind(span.end)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Takes the oldest pending window that ended before `$1`.
const TAKE_PENDING_WINDOW: &str = "DELETE FROM metric_chunk_pending WHERE window_us = \
     (SELECT window_us FROM metric_chunk_pending WHERE window_us <= $1 \
      ORDER BY window_us LIMIT 1) RETURNING window_us";
