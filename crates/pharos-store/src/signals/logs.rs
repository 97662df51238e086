//! [`LogsRepository`]: log records. Binary `COPY` into day partitions on PostgreSQL, batched
//! inserts on SQLite; expiry drops whole days (deletes rows on SQLite).

use sqlx::Sqlite;
use sqlx::query_builder::Separated;

use crate::backend::append_only::{self, AppendOnlyRow, append_only_repository};
use crate::backend::bulk::CopyEncoder;
use crate::backend::partitions::{Expired, Span, TimeUnit};
use crate::backend::{Pool, with_pool};
use crate::error::Result;

/// The columns of `logs`, in the order rows are written.
macro_rules! columns {
    () => {
        "time_ns, observed_ns, service, severity_number, severity_text, body, attributes, \
         resource, trace_id, span_id"
    };
}

/// One log record as stored. JSON columns hold JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRow {
    pub time_ns: i64,
    pub observed_ns: i64,
    pub service: String,
    pub severity_number: i16,
    pub severity_text: String,
    pub body: String,
    pub attributes: String,
    pub resource: String,
    /// Empty when the record is not part of a trace.
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
}

impl LogRow {
    /// Bytes this row takes in memory, for buffer accounting.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.service.len()
            + self.severity_text.len()
            + self.body.len()
            + self.attributes.len()
            + self.resource.len()
            + self.trace_id.len()
            + self.span_id.len()
    }
}

impl AppendOnlyRow for LogRow {
    const COPY: &'static str = concat!("COPY logs (", columns!(), ") FROM STDIN (FORMAT binary)");
    const INSERT: &'static str = concat!("INSERT INTO logs (", columns!(), ") ");
    const COUNT: &'static str = "SELECT COUNT(*) FROM logs";
    const DELETE_BEFORE: &'static str = "DELETE FROM logs WHERE time_ns < $1";
    const COLUMNS: u8 = 10;
    const PARTITIONS: &'static [(&'static str, Span, TimeUnit)] =
        &[("logs", Span::Day, TimeUnit::Nanos)];

    fn time(&self) -> i64 {
        self.time_ns
    }

    fn size(&self) -> usize {
        LogRow::size(self)
    }

    fn encode(&self, encoder: &mut CopyEncoder) {
        encoder
            .i64(self.time_ns)
            .i64(self.observed_ns)
            .text(&self.service)
            .i16(self.severity_number)
            .text(&self.severity_text)
            .text(&self.body)
            .jsonb(&self.attributes)
            .jsonb(&self.resource)
            .bytes_or_null(&self.trace_id)
            .bytes_or_null(&self.span_id);
    }

    fn bind(&self, row: &mut Separated<'_, Sqlite, &'static str>) {
        row.push_bind(self.time_ns)
            .push_bind(self.observed_ns)
            .push_bind(&self.service)
            .push_bind(self.severity_number)
            .push_bind(&self.severity_text)
            .push_bind(&self.body)
            .push_bind(&self.attributes)
            .push_bind(&self.resource)
            .push_bind((!self.trace_id.is_empty()).then_some(&self.trace_id))
            .push_bind((!self.span_id.is_empty()).then_some(&self.span_id));
    }
}

append_only_repository! {
    /// The log records.
    pub struct LogsRepository(LogRow) from Store::logs {}
}

impl LogsRepository {
    /// Stores `records` in one transaction.
    pub async fn insert(&self, records: &[LogRow]) -> Result<()> {
        self.table.insert(records, None).await.map(drop)
    }

    /// Removes records older than `before_ns` (whole days on PostgreSQL).
    pub async fn expire(&self, before_ns: i64) -> Result<Expired> {
        self.table.expire(before_ns).await
    }

    /// Records with `from_ns <= time < to_ns`, oldest first, at most `limit`.
    pub async fn read(&self, from_ns: i64, to_ns: i64, limit: i64) -> Result<Vec<LogRow>> {
        let sql = match &self.store.pool {
            Pool::Postgres(_) => {
                "SELECT time_ns, observed_ns, service, severity_number, severity_text, body, \
                 attributes::text, resource::text, trace_id, span_id FROM logs \
                 WHERE time_ns >= $1 AND time_ns < $2 ORDER BY time_ns, body LIMIT $3"
            }
            Pool::Sqlite(_) => {
                "SELECT time_ns, observed_ns, service, severity_number, severity_text, body, \
                 attributes, resource, trace_id, span_id FROM logs \
                 WHERE time_ns >= $1 AND time_ns < $2 ORDER BY time_ns, body LIMIT $3"
            }
        };
        type Tuple = (
            i64,
            i64,
            String,
            i16,
            String,
            String,
            String,
            String,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        );
        let rows: Vec<Tuple> = with_pool!(self.store, |pool| {
            sqlx::query_as(sql)
                .bind(from_ns)
                .bind(to_ns)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    time_ns,
                    observed_ns,
                    service,
                    severity_number,
                    severity_text,
                    body,
                    attributes,
                    resource,
                    trace_id,
                    span_id,
                )| LogRow {
                    time_ns,
                    observed_ns,
                    service,
                    severity_number,
                    severity_text,
                    body,
                    attributes,
                    resource,
                    trace_id: trace_id.unwrap_or_default(),
                    span_id: span_id.unwrap_or_default(),
                },
            )
            .collect())
    }

    /// Records stored in total (for tests and diagnostics).
    pub async fn count(&self) -> Result<i64> {
        self.table.count().await
    }
}

/// `records` in binary COPY format for `logs`; public so that the benchmark can load the same
/// bytes with plain `psql` as its reference.
pub fn encode(records: &[LogRow]) -> Vec<u8> {
    append_only::encode(records)
}
