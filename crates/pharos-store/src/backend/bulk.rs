//! Bulk loading on PostgreSQL: [`CopyEncoder`] builds rows in the binary `COPY` format (the
//! fastest way to load rows), [`copy_in`] streams them into a table, and [`write_batch`] runs one
//! batch transaction on a live pooled connection, creating missing time partitions first.

use pharos_clock::Clock;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::backend::partitions::Partitions;
use crate::error::{Result, StoreError};
use crate::signals::feed::{FeedEntry, append_postgres};

/// Signature, flags and header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Builds a binary COPY payload: call [`CopyEncoder::row`] with the field count, then one method
/// per field in column order, and [`CopyEncoder::finish`].
pub struct CopyEncoder {
    data: Vec<u8>,
}

impl CopyEncoder {
    pub fn with_capacity(bytes: usize) -> Self {
        let mut data = Vec::with_capacity(HEADER.len() + bytes + 2);
        data.extend_from_slice(HEADER);
        Self { data }
    }

    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.data.extend_from_slice(&fields.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.data.extend_from_slice(&length.to_be_bytes());
        self.data.extend_from_slice(bytes);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.data.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub fn f64(&mut self, value: f64) -> &mut Self {
        self.field(&value.to_bits().to_be_bytes())
    }

    /// `text`, `varchar`.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.field(value.as_bytes())
    }

    /// `bytea`; empty is stored as NULL.
    pub fn bytes_or_null(&mut self, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            self.null()
        } else {
            self.field(value)
        }
    }

    /// `jsonb` from JSON text: a version byte, then the text.
    pub fn jsonb(&mut self, json: &str) -> &mut Self {
        let length = i32::try_from(json.len() + 1).unwrap_or(i32::MAX);
        self.data.extend_from_slice(&length.to_be_bytes());
        self.data.push(1);
        self.data.extend_from_slice(json.as_bytes());
        self
    }

    /// `inet` for one address (not a network); `None` is NULL.
    pub fn inet(&mut self, address: Option<std::net::IpAddr>) -> &mut Self {
        // Family (PGSQL_AF_INET = 2, PGSQL_AF_INET6 = 3), prefix bits, is_cidr, length, bytes.
        match address {
            None => self.null(),
            Some(std::net::IpAddr::V4(v4)) => {
                let mut field = vec![2, 32, 0, 4];
                field.extend_from_slice(&v4.octets());
                self.field(&field)
            }
            Some(std::net::IpAddr::V6(v6)) => {
                let mut field = vec![3, 128, 0, 16];
                field.extend_from_slice(&v6.octets());
                self.field(&field)
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.data.extend_from_slice(&(-1i16).to_be_bytes());
        self.data
    }
}

/// Streams a binary COPY payload into `statement` (`COPY t (..) FROM STDIN (FORMAT binary)`).
pub(crate) async fn copy_in(
    connection: &mut PgConnection,
    statement: &'static str,
    data: &[u8],
) -> Result<()> {
    let mut copy = connection.copy_in_raw(statement).await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// One batch: a binary COPY payload and statements run after it in the same transaction, each
/// binding one `bigint[]` parameter.
pub(crate) struct Batch<'a> {
    pub copy: &'static str,
    pub data: Vec<u8>,
    pub then: Vec<(&'static str, Vec<i64>)>,
    /// Time-partitioned tables the rows fall in, with the range they cover.
    pub partitions: Vec<(&'a Partitions, i64, i64)>,
    /// The batch's row of the committed-data feed, if it has one.
    pub feed: Option<&'a FeedEntry>,
    /// The clock that stamps the feed row.
    pub clock: &'a Clock,
}

/// Writes `batch` in one transaction on a live connection, after making sure its partitions
/// exist. If a partition vanished meanwhile (another replica's expiry dropped it), the
/// partitions are checked again and the batch retried once. Returns the batch's feed position.
pub(crate) async fn write_batch(pool: &PgPool, batch: Batch<'_>) -> Result<Option<i64>> {
    let mut retried = false;
    loop {
        for &(table, from, to) in &batch.partitions {
            table.ensure(pool, from, to).await?;
        }
        match try_write(pool, &batch).await {
            Err(error) if !retried && is_missing_partition(&error) => {
                tracing::info!(%error, "a partition vanished under the batch; checking again");
                for &(table, _, _) in &batch.partitions {
                    table.forget();
                }
                retried = true;
            }
            result => return result,
        }
    }
}

async fn try_write(pool: &PgPool, batch: &Batch<'_>) -> Result<Option<i64>> {
    let mut transaction = begin_on_live_connection(pool).await?;
    copy_in(&mut transaction, batch.copy, &batch.data).await?;
    for (statement, values) in &batch.then {
        sqlx::query(*statement)
            .bind(values)
            .execute(&mut *transaction)
            .await?;
    }
    let position = match batch.feed {
        Some(entry) => Some(append_postgres(&mut transaction, entry, batch.clock).await?),
        None => None,
    };
    transaction.commit().await?;
    Ok(position)
}

/// "no partition of relation ... found for row" (SQLSTATE 23514).
fn is_missing_partition(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(database)) => {
            database.code().as_deref() == Some("23514")
        }
        _ => false,
    }
}

/// Starts a transaction, passing over pooled connections that died while idle (the server
/// restarted or ended them): nothing was sent on those yet, so trying the next one is safe.
pub(crate) async fn begin_on_live_connection(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>> {
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

/// The smallest and largest of `times` (`(0, 0)` when empty).
pub(crate) fn time_range(times: impl Iterator<Item = i64>) -> (i64, i64) {
    let (low, high) = times.fold((i64::MAX, i64::MIN), |(low, high), time| {
        (low.min(time), high.max(time))
    });
    if low > high { (0, 0) } else { (low, high) }
}
