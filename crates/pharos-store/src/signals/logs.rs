//! [`LogsRepository`]: log records. Binary `COPY` into day partitions on PostgreSQL, batched
//! inserts on SQLite; expiry drops whole days (deletes rows on SQLite).

use sqlx::{QueryBuilder, Sqlite};

use crate::Store;
use crate::backend::bulk::{Batch, CopyEncoder, time_range, write_batch};
use crate::backend::partitions::{Expired, Partitions, Span, TimeUnit};
use crate::backend::{Pool, with_pool};
use crate::error::Result;

const COLUMNS: &str = "time_ns, observed_ns, service, severity_number, severity_text, body, \
     attributes, resource, trace_id, span_id";
const SQLITE_ROWS_PER_INSERT: usize = 32_766 / 10;

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

#[derive(Debug, Clone)]
pub struct LogsRepository {
    store: Store,
    logs: Partitions,
}

crate::backend::repository!(LogsRepository);

impl Store {
    /// The log records.
    pub fn logs(&self) -> LogsRepository {
        LogsRepository {
            store: self.clone(),
            logs: Partitions::new("logs", Span::Day, TimeUnit::Nanos),
        }
    }
}

impl LogsRepository {
    /// Creates the missing day partitions covering `from_ns..=to_ns` ahead of the data
    /// (PostgreSQL; nothing on SQLite). Returns how many it created.
    pub async fn ensure_partitions(&self, from_ns: i64, to_ns: i64) -> Result<usize> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        self.logs.ensure(pool, from_ns, to_ns).await
    }

    /// Stores `records` in one transaction.
    pub async fn insert(&self, records: &[LogRow]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let (oldest, newest) = time_range(records.iter().map(|record| record.time_ns));
                let data = encode(records);
                write_batch(
                    pool,
                    Batch {
                        copy: "COPY logs (time_ns, observed_ns, service, severity_number, \
                         severity_text, body, attributes, resource, trace_id, span_id) \
                         FROM STDIN (FORMAT binary)",
                        data,
                        then: Vec::new(),
                        feed: None,
                        clock: self.store.clock(),
                        partitions: vec![(&self.logs, oldest, newest)],
                    },
                )
                .await
                .map(drop)
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let mut transaction = pool.begin().await?;
                for chunk in records.chunks(SQLITE_ROWS_PER_INSERT) {
                    let mut insert: QueryBuilder<Sqlite> =
                        QueryBuilder::new(format!("INSERT INTO logs ({COLUMNS}) "));
                    insert.push_values(chunk, |mut row, record| {
                        row.push_bind(record.time_ns)
                            .push_bind(record.observed_ns)
                            .push_bind(&record.service)
                            .push_bind(record.severity_number)
                            .push_bind(&record.severity_text)
                            .push_bind(&record.body)
                            .push_bind(&record.attributes)
                            .push_bind(&record.resource)
                            .push_bind((!record.trace_id.is_empty()).then_some(&record.trace_id))
                            .push_bind((!record.span_id.is_empty()).then_some(&record.span_id));
                    });
                    insert.build().execute(&mut *transaction).await?;
                }
                transaction.commit().await?;
                Ok(())
            }
        }
    }

    /// Removes records older than `before_ns` (whole days on PostgreSQL).
    pub async fn expire(&self, before_ns: i64) -> Result<Expired> {
        self.store
            .expire(&self.logs, "logs", "time_ns", before_ns)
            .await
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
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM logs")
                .fetch_one(pool)
                .await?
        }))
    }
}

/// `records` in binary COPY format for `logs`; public so that the benchmark can load the same
/// bytes with plain `psql` as its reference.
pub fn encode(records: &[LogRow]) -> Vec<u8> {
    let bytes: usize = records.iter().map(|record| record.size() + 50).sum();
    let mut encoder = CopyEncoder::with_capacity(bytes);
    for record in records {
        encoder
            .row(10)
            .i64(record.time_ns)
            .i64(record.observed_ns)
            .text(&record.service)
            .i16(record.severity_number)
            .text(&record.severity_text)
            .text(&record.body)
            .jsonb(&record.attributes)
            .jsonb(&record.resource)
            .bytes_or_null(&record.trace_id)
            .bytes_or_null(&record.span_id);
    }
    encoder.finish()
}
