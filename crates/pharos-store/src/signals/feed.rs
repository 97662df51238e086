//! [`FeedRepository`]: the committed-data feed. A batch of metric points or security events
//! appends one feed row in its own transaction ([`FeedEntry`], through `append_postgres` or `append_sqlite`): the next
//! position, taken from a head row that stays locked until the commit, so positions are
//! gap-free and in commit order across every writer and replica. Subscribers read the rows
//! after their last position; rows older than the feed's retention are deleted. A payload is
//! opaque bytes here: its format belongs to the ingest service, which writes and reads it.

use sqlx::{Postgres, Sqlite, Transaction};

use crate::backend::{Pool, with_pool};
use crate::error::Result;
use pharos_clock::Clock;

use crate::Store;

/// The PostgreSQL NOTIFY channel a committed feed row is announced on (payload: its position).
pub const FEED_CHANNEL: &str = "pharos_ingest_feed";

/// What a feed row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedSignal {
    Metrics = 1,
    SecurityEvents = 2,
}

impl FeedSignal {
    pub fn from_code(code: i16) -> Option<FeedSignal> {
        match code {
            1 => Some(FeedSignal::Metrics),
            2 => Some(FeedSignal::SecurityEvents),
            _ => None,
        }
    }
}

/// A feed row to append with a batch.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub signal: FeedSignal,
    pub items: i32,
    pub payload: Vec<u8>,
}

/// A committed feed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    pub position: i64,
    pub signal: FeedSignal,
    pub committed_us: i64,
    pub items: i32,
    pub payload: Vec<u8>,
}

/// Takes the next position; the head row stays locked until the transaction ends, so it is run
/// last in a batch's transaction.
const NEXT_POSITION: &str =
    "UPDATE ingest_feed_head SET position = position + 1 WHERE id = 1 RETURNING position";
/// The last position handed out.
pub(crate) const FEED_HEAD: &str = "SELECT position FROM ingest_feed_head WHERE id = 1";
const INSERT_ROW: &str = "INSERT INTO ingest_feed (position, signal, committed_us, items, payload) \
     VALUES ($1, $2, $3, $4, $5)";

/// Appends `entry` in a PostgreSQL batch transaction, announced on [`FEED_CHANNEL`] at commit;
/// returns its position.
pub(crate) async fn append_postgres(
    transaction: &mut Transaction<'static, Postgres>,
    entry: &FeedEntry,
    clock: &Clock,
) -> Result<i64> {
    let position: i64 = sqlx::query_scalar(NEXT_POSITION)
        .fetch_one(&mut **transaction)
        .await?;
    sqlx::query(INSERT_ROW)
        .bind(position)
        .bind(entry.signal as i16)
        .bind(clock.now_micros())
        .bind(entry.items)
        .bind(&entry.payload)
        .execute(&mut **transaction)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(FEED_CHANNEL)
        .bind(position.to_string())
        .execute(&mut **transaction)
        .await?;
    Ok(position)
}

/// Appends `entry` in a SQLite batch transaction (under the store's write lock); returns its
/// position.
pub(crate) async fn append_sqlite(
    transaction: &mut Transaction<'static, Sqlite>,
    entry: &FeedEntry,
    clock: &Clock,
) -> Result<i64> {
    let position: i64 = sqlx::query_scalar(NEXT_POSITION)
        .fetch_one(&mut **transaction)
        .await?;
    sqlx::query(INSERT_ROW)
        .bind(position)
        .bind(entry.signal as i16)
        .bind(clock.now_micros())
        .bind(entry.items)
        .bind(&entry.payload)
        .execute(&mut **transaction)
        .await?;
    Ok(position)
}

#[derive(Debug, Clone)]
pub struct FeedRepository {
    store: Store,
}

crate::backend::repository!(FeedRepository);

impl Store {
    /// The committed-data feed.
    pub fn feed(&self) -> FeedRepository {
        FeedRepository {
            store: self.clone(),
        }
    }
}

impl FeedRepository {
    /// Rows after `position`, oldest first, at most `limit`.
    pub async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<FeedRow>> {
        let rows: Vec<(i64, i16, i64, i32, Vec<u8>)> = with_pool!(self.store, |pool| {
            sqlx::query_as(
                "SELECT position, signal, committed_us, items, payload FROM ingest_feed \
                 WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(position)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(position, signal, committed_us, items, payload)| {
                Some(FeedRow {
                    position,
                    signal: FeedSignal::from_code(signal)?,
                    committed_us,
                    items,
                    payload,
                })
            })
            .collect())
    }

    /// The last position handed out (0 before the first batch).
    pub async fn head(&self) -> Result<i64> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar(FEED_HEAD).fetch_one(pool).await?
        }))
    }

    /// The position of the last batch of `signal` still kept (0 when none is).
    pub async fn last_position_of(&self, signal: FeedSignal) -> Result<i64> {
        let position: Option<i64> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(
                "SELECT position FROM ingest_feed WHERE signal = $1 ORDER BY position DESC LIMIT 1",
            )
            .bind(signal as i16)
            .fetch_optional(pool)
            .await?
        });
        Ok(position.unwrap_or(0))
    }

    /// Deletes rows committed before `before_us`; returns how many.
    pub async fn expire(&self, before_us: i64) -> Result<u64> {
        let _writer = match &self.store.pool {
            Pool::Sqlite(_) => Some(self.store.write_lock.lock().await),
            Pool::Postgres(_) => None,
        };
        Ok(with_pool!(self.store, |pool| {
            sqlx::query("DELETE FROM ingest_feed WHERE committed_us < $1")
                .bind(before_us)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
