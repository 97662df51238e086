//! [`SecurityEventsRepository`]: security events, stored by retention class. On PostgreSQL the
//! table is partitioned by severity: critical events live in a plain table and are kept
//! forever, high ones in month partitions and the rest in day partitions, so that each class
//! expires by dropping whole partitions. SQLite keeps one table and deletes rows.

use std::net::IpAddr;

use sqlx::Sqlite;
use sqlx::query_builder::Separated;

use crate::backend::append_only::{AppendOnlyRow, append_only_repository};
use crate::backend::bulk::CopyEncoder;
use crate::backend::partitions::{Expired, Span, TimeUnit};
use crate::backend::{Pool, with_pool};
use crate::error::Result;
use crate::signals::feed::FeedEntry;

/// Severities, as stored.
pub const SEVERITY_HIGH: i16 = 4;
pub const SEVERITY_CRITICAL: i16 = 5;

/// The columns of `security_events`, in the order rows are written.
macro_rules! columns {
    () => {
        "time_ns, event_type, severity, user_id, source_ip, resource, service, attributes"
    };
}

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

impl AppendOnlyRow for SecurityEventRow {
    const COPY: &'static str = concat!(
        "COPY security_events (",
        columns!(),
        ") FROM STDIN (FORMAT binary)"
    );
    const INSERT: &'static str = concat!("INSERT INTO security_events (", columns!(), ") ");
    const COUNT: &'static str = "SELECT COUNT(*) FROM security_events";
    const DELETE_BEFORE: &'static str = "DELETE FROM security_events WHERE time_ns < $1";
    const COLUMNS: u8 = 8;
    /// High events by month, the lower ones by day; critical ones live in a plain table.
    const PARTITIONS: &'static [(&'static str, Span, TimeUnit)] = &[
        ("security_events_high", Span::Month, TimeUnit::Nanos),
        ("security_events_other", Span::Day, TimeUnit::Nanos),
    ];

    fn time(&self) -> i64 {
        self.time_ns
    }

    fn size(&self) -> usize {
        SecurityEventRow::size(self)
    }

    fn encode(&self, encoder: &mut CopyEncoder) {
        encoder
            .i64(self.time_ns)
            .text(&self.event_type)
            .i16(self.severity)
            .text(&self.user_id)
            .inet(self.source_ip)
            .text(&self.resource)
            .text(&self.service)
            .jsonb(&self.attributes);
    }

    fn bind(&self, row: &mut Separated<'_, Sqlite, &'static str>) {
        row.push_bind(self.time_ns)
            .push_bind(&self.event_type)
            .push_bind(self.severity)
            .push_bind(&self.user_id)
            .push_bind(self.source_ip.map(|ip| ip.to_string()))
            .push_bind(&self.resource)
            .push_bind(&self.service)
            .push_bind(&self.attributes);
    }
}

append_only_repository! {
    /// The security events.
    pub struct SecurityEventsRepository(SecurityEventRow) from Store::security_events {}
}

impl SecurityEventsRepository {
    /// Stores `events` in one transaction with, when given, the batch's feed row; returns the
    /// feed position.
    pub async fn insert(
        &self,
        events: &[SecurityEventRow],
        feed: Option<&FeedEntry>,
    ) -> Result<Option<i64>> {
        self.table.insert(events, feed).await
    }

    /// Removes high events older than `high_before_ns` and lower ones older than
    /// `other_before_ns`; critical events stay.
    pub async fn expire(&self, high_before_ns: i64, other_before_ns: i64) -> Result<Expired> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                self.table
                    .drop_partitions_before(pool, [high_before_ns, other_before_ns])
                    .await
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
        self.table.count().await
    }
}
