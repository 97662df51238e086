//! [`SpansRepository`]: trace spans. Spans go in with binary `COPY` on PostgreSQL (into day
//! partitions by start time) and batched inserts on SQLite. Expiry keeps traces with an error
//! longer: on PostgreSQL, before a day of spans is dropped, the spans of its traces that hold an
//! error are copied into `spans_retained` (partitioned the same way, with its own retention).

use sqlx::Sqlite;
use sqlx::query_builder::Separated;

use crate::backend::Pool;
use crate::backend::append_only::{self, AppendOnlyRow, append_only_repository};
use crate::backend::bulk::CopyEncoder;
use crate::backend::partitions::{Expired, Partitions, Span, TimeUnit};
use crate::error::Result;

/// OpenTelemetry's status code for a failed operation.
pub const STATUS_ERROR: i16 = 2;
/// How far around a day of spans expiry looks for the error that keeps a trace: a trace's spans
/// may start on both sides of midnight.
const TRACE_REACH_NS: i64 = 3_600_000_000_000;

/// The columns of `spans` (and `spans_retained`), in the order rows are written.
macro_rules! columns {
    () => {
        "trace_id, span_id, parent_span_id, trace_state, service, name, kind, start_ns, end_ns, \
         status_code, status_message, attributes, events, links, resource"
    };
}

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

impl AppendOnlyRow for SpanRow {
    const COPY: &'static str = concat!("COPY spans (", columns!(), ") FROM STDIN (FORMAT binary)");
    const INSERT: &'static str = concat!("INSERT INTO spans (", columns!(), ") ");
    const COUNT: &'static str = "SELECT COUNT(*) FROM spans";
    const DELETE_BEFORE: &'static str = "DELETE FROM spans WHERE start_ns < $1";
    const COLUMNS: u8 = 15;
    const PARTITIONS: &'static [(&'static str, Span, TimeUnit)] =
        &[("spans", Span::Day, TimeUnit::Nanos)];

    fn time(&self) -> i64 {
        self.start_ns
    }

    fn size(&self) -> usize {
        SpanRow::size(self)
    }

    fn encode(&self, encoder: &mut CopyEncoder) {
        encoder
            .bytes_or_null(&self.trace_id)
            .bytes_or_null(&self.span_id)
            .bytes_or_null(&self.parent_span_id)
            .text(&self.trace_state)
            .text(&self.service)
            .text(&self.name)
            .i16(self.kind)
            .i64(self.start_ns)
            .i64(self.end_ns)
            .i16(self.status_code)
            .text(&self.status_message)
            .jsonb(&self.attributes)
            .jsonb(&self.events)
            .jsonb(&self.links)
            .jsonb(&self.resource);
    }

    fn bind(&self, row: &mut Separated<'_, Sqlite, &'static str>) {
        row.push_bind(&self.trace_id)
            .push_bind(&self.span_id)
            .push_bind((!self.parent_span_id.is_empty()).then_some(&self.parent_span_id))
            .push_bind(&self.trace_state)
            .push_bind(&self.service)
            .push_bind(&self.name)
            .push_bind(self.kind)
            .push_bind(self.start_ns)
            .push_bind(self.end_ns)
            .push_bind(self.status_code)
            .push_bind(&self.status_message)
            .push_bind(&self.attributes)
            .push_bind(&self.events)
            .push_bind(&self.links)
            .push_bind(&self.resource);
    }
}

append_only_repository! {
    /// The trace spans, and the spans kept longer because their trace holds an error.
    pub struct SpansRepository(SpanRow) from Store::spans {
        retained: Partitions = Partitions::new("spans_retained", Span::Day, TimeUnit::Nanos),
    }
}

impl SpansRepository {
    /// Stores `spans` in one transaction.
    pub async fn insert(&self, spans: &[SpanRow]) -> Result<()> {
        self.table.insert(spans, None).await.map(drop)
    }

    /// Removes spans that started before `before_ns`, except the traces with an error, which go
    /// once they started before `errors_before_ns`.
    pub async fn expire(&self, before_ns: i64, errors_before_ns: i64) -> Result<Expired> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let spans = self.table.first_partitions();
                let mut expired = Expired::default();
                for (name, lower, upper) in spans.wholly_before(pool, before_ns).await? {
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
                        spans.drop_one(pool, &name).await?;
                    }
                    expired.partitions_dropped += 1;
                }
                spans.forget();
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
                    sqlx::query_as(concat!(
                        "SELECT ",
                        columns!(),
                        " FROM spans WHERE trace_id = $1 ORDER BY start_ns, span_id"
                    ))
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
            Pool::Sqlite(_) => self.table.count().await,
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
    append_only::encode(spans)
}
