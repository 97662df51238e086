//! [`SpansRepository`]: trace spans. Spans go in with binary `COPY` on PostgreSQL (into day
//! partitions by start time) and batched inserts on SQLite. Expiry keeps traces with an error
//! longer: on PostgreSQL, before a day of spans is dropped, the spans of its traces that hold an
//! error are copied into `spans_retained` (partitioned the same way, with its own retention).

use sqlx::{QueryBuilder, Sqlite};

use crate::Store;
use crate::backend::bulk::{Batch, CopyEncoder, time_range, write_batch};
use crate::backend::partitions::{Expired, Partitions, Span, TimeUnit};
use crate::backend::{Pool, with_pool};
use crate::error::Result;

/// OpenTelemetry's status code for a failed operation.
pub const STATUS_ERROR: i16 = 2;
/// How far around a day of spans expiry looks for the error that keeps a trace: a trace's spans
/// may start on both sides of midnight.
const TRACE_REACH_NS: i64 = 3_600_000_000_000;
const COLUMNS: &str = "trace_id, span_id, parent_span_id, trace_state, service, name, kind, \
     start_ns, end_ns, status_code, status_message, attributes, events, links, resource";
const SQLITE_ROWS_PER_INSERT: usize = 32_766 / 15;

/// One span as stored. JSON columns hold JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpanRow {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    /// Empty for a root span.
    pub parent_span_id: Vec<u8>,
    pub trace_state: String,
    pub service: String,
    pub name: String,
    pub kind: i16,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status_code: i16,
    pub status_message: String,
    pub attributes: String,
    pub events: String,
    pub links: String,
    pub resource: String,
}

impl SpanRow {
    /// Bytes this row takes in memory, for buffer accounting.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.trace_id.len()
            + self.span_id.len()
            + self.parent_span_id.len()
            + self.trace_state.len()
            + self.service.len()
            + self.name.len()
            + self.status_message.len()
            + self.attributes.len()
            + self.events.len()
            + self.links.len()
            + self.resource.len()
    }
}

#[derive(Debug, Clone)]
pub struct SpansRepository {
    store: Store,
    spans: Partitions,
    retained: Partitions,
}

crate::backend::repository!(SpansRepository);

impl Store {
    /// The trace spans.
    pub fn spans(&self) -> SpansRepository {
        SpansRepository {
            store: self.clone(),
            spans: Partitions::new("spans", Span::Day, TimeUnit::Nanos),
            retained: Partitions::new("spans_retained", Span::Day, TimeUnit::Nanos),
        }
    }
}

impl SpansRepository {
    /// Creates the missing day partitions covering `from_ns..=to_ns` ahead of the data
    /// (PostgreSQL; nothing on SQLite). Returns how many it created.
    pub async fn ensure_partitions(&self, from_ns: i64, to_ns: i64) -> Result<usize> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        self.spans.ensure(pool, from_ns, to_ns).await
    }

    /// Stores `spans` in one transaction.
    pub async fn insert(&self, spans: &[SpanRow]) -> Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let (oldest, newest) = time_range(spans.iter().map(|span| span.start_ns));
                let data = encode(spans);
                write_batch(
                    pool,
                    Batch {
                        copy: "COPY spans (trace_id, span_id, parent_span_id, trace_state, service, \
                         name, kind, start_ns, end_ns, status_code, status_message, attributes, \
                         events, links, resource) FROM STDIN (FORMAT binary)",
                        data,
                        then: Vec::new(),
                        feed: None,
                        clock: self.store.clock(),
                        partitions: vec![(&self.spans, oldest, newest)],
                    },
                )
                .await
                .map(drop)
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let mut transaction = pool.begin().await?;
                for chunk in spans.chunks(SQLITE_ROWS_PER_INSERT) {
                    let mut insert: QueryBuilder<Sqlite> =
                        QueryBuilder::new(format!("INSERT INTO spans ({COLUMNS}) "));
                    insert.push_values(chunk, |mut row, span| {
                        row.push_bind(&span.trace_id)
                            .push_bind(&span.span_id)
                            .push_bind(
                                (!span.parent_span_id.is_empty()).then_some(&span.parent_span_id),
                            )
                            .push_bind(&span.trace_state)
                            .push_bind(&span.service)
                            .push_bind(&span.name)
                            .push_bind(span.kind)
                            .push_bind(span.start_ns)
                            .push_bind(span.end_ns)
                            .push_bind(span.status_code)
                            .push_bind(&span.status_message)
                            .push_bind(&span.attributes)
                            .push_bind(&span.events)
                            .push_bind(&span.links)
                            .push_bind(&span.resource);
                    });
                    insert.build().execute(&mut *transaction).await?;
                }
                transaction.commit().await?;
                Ok(())
            }
        }
    }

    /// Removes spans that started before `before_ns`, except the traces with an error, which go
    /// once they started before `errors_before_ns`.
    pub async fn expire(&self, before_ns: i64, errors_before_ns: i64) -> Result<Expired> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let mut expired = Expired::default();
                for (name, lower, upper) in self.spans.wholly_before(pool, before_ns).await? {
                    if upper > errors_before_ns {
                        self.retained.ensure(pool, lower, upper - 1).await?;
                        let mut transaction = pool.begin().await?;
                        // The partition name came from the catalog and matched our pattern.
                        let keep = format!(
                            "INSERT INTO spans_retained SELECT * FROM {name} WHERE trace_id IN (\
                             SELECT trace_id FROM spans WHERE status_code = {STATUS_ERROR} \
                             AND start_ns >= $1 AND start_ns < $2 \
                             UNION SELECT trace_id FROM spans_retained \
                             WHERE status_code = {STATUS_ERROR} AND start_ns >= $1 AND start_ns < $2)"
                        );
                        let kept = sqlx::query(sqlx::AssertSqlSafe(keep))
                            .bind(lower - TRACE_REACH_NS)
                            .bind(upper + TRACE_REACH_NS)
                            .execute(&mut *transaction)
                            .await?
                            .rows_affected();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                            .execute(&mut *transaction)
                            .await?;
                        transaction.commit().await?;
                        tracing::info!(partition = %name, kept, "kept the spans of traces with errors");
                    } else {
                        self.spans.drop_one(pool, &name).await?;
                    }
                    expired.partitions_dropped += 1;
                }
                self.spans.forget();
                let dropped = self.retained.drop_before(pool, errors_before_ns).await?;
                expired.partitions_dropped += dropped.len() as u64;
                Ok(expired)
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let deleted = sqlx::query(
                    "DELETE FROM spans WHERE start_ns < $1 AND (start_ns < $2 OR trace_id NOT IN \
                     (SELECT trace_id FROM spans WHERE status_code = 2))",
                )
                .bind(before_ns)
                .bind(errors_before_ns)
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

    /// Every stored span of one trace (kept or not), by start time.
    pub async fn trace(&self, trace_id: &[u8]) -> Result<Vec<SpanRow>> {
        let rows: Vec<SpanTuple> =
            match &self.store.pool {
                Pool::Postgres(pool) => sqlx::query_as(
                    "SELECT trace_id, span_id, parent_span_id, trace_state, service, name, kind, \
                     start_ns, end_ns, status_code, status_message, attributes::text, \
                     events::text, links::text, resource::text FROM \
                     (SELECT * FROM spans WHERE trace_id = $1 \
                      UNION ALL SELECT * FROM spans_retained WHERE trace_id = $1) AS both_tables \
                     ORDER BY start_ns, span_id",
                )
                .bind(trace_id)
                .fetch_all(pool)
                .await?,
                Pool::Sqlite(pool) => {
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM spans WHERE trace_id = $1 ORDER BY start_ns, span_id"
                    )))
                    .bind(trace_id)
                    .fetch_all(pool)
                    .await?
                }
            };
        Ok(rows.into_iter().map(SpanRow::from).collect())
    }

    /// Spans stored in total, kept ones included (for tests and diagnostics).
    pub async fn count(&self) -> Result<i64> {
        match &self.store.pool {
            Pool::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM spans) + (SELECT COUNT(*) FROM spans_retained)",
            )
            .fetch_one(pool)
            .await?),
            Pool::Sqlite(_) => Ok(with_pool!(self.store, |pool| {
                sqlx::query_scalar("SELECT COUNT(*) FROM spans")
                    .fetch_one(pool)
                    .await?
            })),
        }
    }
}

type SpanTuple = (
    Vec<u8>,
    Vec<u8>,
    Option<Vec<u8>>,
    String,
    String,
    String,
    i16,
    i64,
    i64,
    i16,
    String,
    String,
    String,
    String,
    String,
);

impl From<SpanTuple> for SpanRow {
    fn from(row: SpanTuple) -> Self {
        let (
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            service,
            name,
            kind,
            start_ns,
            end_ns,
            status_code,
            status_message,
            attributes,
            events,
            links,
            resource,
        ) = row;
        SpanRow {
            trace_id,
            span_id,
            parent_span_id: parent_span_id.unwrap_or_default(),
            trace_state,
            service,
            name,
            kind,
            start_ns,
            end_ns,
            status_code,
            status_message,
            attributes,
            events,
            links,
            resource,
        }
    }
}

/// `spans` in binary COPY format for `spans`; public so that the benchmark can load the same bytes
/// with plain `psql` as its reference.
pub fn encode(spans: &[SpanRow]) -> Vec<u8> {
    let bytes: usize = spans.iter().map(|span| span.size() + 80).sum();
    let mut encoder = CopyEncoder::with_capacity(bytes);
    for span in spans {
        encoder
            .row(15)
            .bytes_or_null(&span.trace_id)
            .bytes_or_null(&span.span_id)
            .bytes_or_null(&span.parent_span_id)
            .text(&span.trace_state)
            .text(&span.service)
            .text(&span.name)
            .i16(span.kind)
            .i64(span.start_ns)
            .i64(span.end_ns)
            .i16(span.status_code)
            .text(&span.status_message)
            .jsonb(&span.attributes)
            .jsonb(&span.events)
            .jsonb(&span.links)
            .jsonb(&span.resource);
    }
    encoder.finish()
}
