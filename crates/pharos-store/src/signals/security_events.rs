//! [`SecurityEventsRepository`]: security events, stored by retention class. On PostgreSQL the
//! table is partitioned by severity: critical events live in a plain table and are kept
//! forever, high ones in month partitions and the rest in day partitions, so that each class
//! expires by dropping whole partitions. SQLite keeps one table and deletes rows.

use std::net::IpAddr;

use sqlx::{QueryBuilder, Sqlite};

use crate::Store;
use crate::backend::bulk::{Batch, CopyEncoder, time_range, write_batch};
use crate::backend::partitions::{Expired, Partitions, Span, TimeUnit};
use crate::backend::{Pool, with_pool};
use crate::error::Result;
use crate::signals::feed::{FeedEntry, append_sqlite};

/// Severities, as stored.
pub const SEVERITY_HIGH: i16 = 4;
pub const SEVERITY_CRITICAL: i16 = 5;
const COLUMNS: &str =
    "time_ns, event_type, severity, user_id, source_ip, resource, service, attributes";
const SQLITE_ROWS_PER_INSERT: usize = 32_766 / 8;

/// One security event as stored. `attributes` holds JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityEventRow {
    pub time_ns: i64,
    pub event_type: String,
    /// 1 info, 2 low, 3 medium, 4 high, 5 critical.
    pub severity: i16,
    pub user_id: String,
    pub source_ip: Option<IpAddr>,
    pub resource: String,
    pub service: String,
    pub attributes: String,
}

impl SecurityEventRow {
    /// Bytes this row takes in memory, for buffer accounting.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.event_type.len()
            + self.user_id.len()
            + self.resource.len()
            + self.service.len()
            + self.attributes.len()
    }
}

#[derive(Debug, Clone)]
pub struct SecurityEventsRepository {
    store: Store,
    high: Partitions,
    other: Partitions,
}

crate::backend::repository!(SecurityEventsRepository);

impl Store {
    /// The security events.
    pub fn security_events(&self) -> SecurityEventsRepository {
        SecurityEventsRepository {
            store: self.clone(),
            high: Partitions::new("security_events_high", Span::Month, TimeUnit::Nanos),
            other: Partitions::new("security_events_other", Span::Day, TimeUnit::Nanos),
        }
    }
}

impl SecurityEventsRepository {
    /// Creates the missing partitions covering `from_ns..=to_ns` ahead of the data
    /// (PostgreSQL; nothing on SQLite). Returns how many it created.
    pub async fn ensure_partitions(&self, from_ns: i64, to_ns: i64) -> Result<usize> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        Ok(self.high.ensure(pool, from_ns, to_ns).await?
            + self.other.ensure(pool, from_ns, to_ns).await?)
    }

    /// Stores `events` in one transaction with, when given, the batch's feed row; returns the
    /// feed position.
    pub async fn insert(
        &self,
        events: &[SecurityEventRow],
        feed: Option<&FeedEntry>,
    ) -> Result<Option<i64>> {
        if events.is_empty() {
            return Ok(None);
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let (oldest, newest) = time_range(events.iter().map(|event| event.time_ns));
                let data = encode(events);
                write_batch(
                    pool,
                    Batch {
                        copy: "COPY security_events (time_ns, event_type, severity, user_id, \
                         source_ip, resource, service, attributes) FROM STDIN (FORMAT binary)",
                        data,
                        then: Vec::new(),
                        feed,
                        clock: self.store.clock(),
                        partitions: vec![
                            (&self.high, oldest, newest),
                            (&self.other, oldest, newest),
                        ],
                    },
                )
                .await
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let mut transaction = pool.begin().await?;
                for chunk in events.chunks(SQLITE_ROWS_PER_INSERT) {
                    let mut insert: QueryBuilder<Sqlite> =
                        QueryBuilder::new(format!("INSERT INTO security_events ({COLUMNS}) "));
                    insert.push_values(chunk, |mut row, event| {
                        row.push_bind(event.time_ns)
                            .push_bind(&event.event_type)
                            .push_bind(event.severity)
                            .push_bind(&event.user_id)
                            .push_bind(event.source_ip.map(|ip| ip.to_string()))
                            .push_bind(&event.resource)
                            .push_bind(&event.service)
                            .push_bind(&event.attributes);
                    });
                    insert.build().execute(&mut *transaction).await?;
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

    /// Removes high events older than `high_before_ns` and lower ones older than
    /// `other_before_ns`; critical events stay.
    pub async fn expire(&self, high_before_ns: i64, other_before_ns: i64) -> Result<Expired> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let high = self.high.drop_before(pool, high_before_ns).await?;
                let other = self.other.drop_before(pool, other_before_ns).await?;
                Ok(Expired {
                    partitions_dropped: (high.len() + other.len()) as u64,
                    rows_deleted: 0,
                })
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let deleted = sqlx::query(
                    "DELETE FROM security_events WHERE (severity = $1 AND time_ns < $2) \
                     OR (severity < $1 AND time_ns < $3)",
                )
                .bind(SEVERITY_HIGH)
                .bind(high_before_ns)
                .bind(other_before_ns)
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

    /// Events with `from_ns <= time < to_ns`, oldest first, at most `limit`.
    pub async fn read(
        &self,
        from_ns: i64,
        to_ns: i64,
        limit: i64,
    ) -> Result<Vec<SecurityEventRow>> {
        let sql = match &self.store.pool {
            Pool::Postgres(_) => {
                "SELECT time_ns, event_type, severity, user_id, host(source_ip), resource, \
                 service, attributes::text FROM security_events \
                 WHERE time_ns >= $1 AND time_ns < $2 ORDER BY time_ns, event_type LIMIT $3"
            }
            Pool::Sqlite(_) => {
                "SELECT time_ns, event_type, severity, user_id, source_ip, resource, service, \
                 attributes FROM security_events \
                 WHERE time_ns >= $1 AND time_ns < $2 ORDER BY time_ns, event_type LIMIT $3"
            }
        };
        type Tuple = (
            i64,
            String,
            i16,
            String,
            Option<String>,
            String,
            String,
            String,
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
                    event_type,
                    severity,
                    user_id,
                    source_ip,
                    resource,
                    service,
                    attributes,
                )| {
                    SecurityEventRow {
                        time_ns,
                        event_type,
                        severity,
                        user_id,
                        source_ip: source_ip.and_then(|ip| ip.parse().ok()),
                        resource,
                        service,
                        attributes,
                    }
                },
            )
            .collect())
    }

    /// Events stored in total (for tests and diagnostics).
    pub async fn count(&self) -> Result<i64> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM security_events")
                .fetch_one(pool)
                .await?
        }))
    }
}

fn encode(events: &[SecurityEventRow]) -> Vec<u8> {
    let bytes: usize = events.iter().map(|event| event.size() + 60).sum();
    let mut encoder = CopyEncoder::with_capacity(bytes);
    for event in events {
        encoder
            .row(8)
            .i64(event.time_ns)
            .text(&event.event_type)
            .i16(event.severity)
            .text(&event.user_id)
            .inet(event.source_ip)
            .text(&event.resource)
            .text(&event.service)
            .jsonb(&event.attributes);
    }
    encoder.finish()
}
