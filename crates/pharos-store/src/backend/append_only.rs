//! The one shape of the append-only tables (spans, logs, security events): rows only ever go in,
//! in batches, and leave by age. [`AppendOnlyRow`] says what a row's table is and how one row is
//! written; [`AppendOnlyTable`] does the rest the same way for each of those tables: time
//! partitions created ahead (PostgreSQL), a batch in one transaction (binary `COPY` on PostgreSQL,
//! multi-row inserts on SQLite, with the batch's feed row when it has one), expiry by age and a
//! count. Each signal keeps only its row type, its column encoding, its reads and its own expiry
//! rules when they differ.

use std::marker::PhantomData;
use std::sync::Arc;

use sqlx::query_builder::Separated;
use sqlx::{PgPool, QueryBuilder, Sqlite};

use super::bulk::{Batch, CopyEncoder, time_range, write_batch};
use super::partitions::{Expired, Partitions, Span, TimeUnit};
use super::{Pool, Store, with_pool};
use crate::error::Result;
use crate::signals::feed::{FeedEntry, append_sqlite};

/// SQLite allows this many bound parameters in one statement.
const SQLITE_MAX_PARAMETERS: usize = 32_766;

/// A row of an append-only table. The statements are static text naming the table and its
/// columns in the order [`AppendOnlyRow::encode`] and [`AppendOnlyRow::bind`] write them.
pub(crate) trait AppendOnlyRow: Send + Sync + 'static {
    /// `COPY <table> (<columns>) FROM STDIN (FORMAT binary)`.
    const COPY: &'static str;
    /// `INSERT INTO <table> (<columns>) `, to which a batch's `VALUES` are added.
    const INSERT: &'static str;
    /// `SELECT COUNT(*) FROM <table>`.
    const COUNT: &'static str;
    /// `DELETE FROM <table> WHERE <time column> < $1`: expiry by age on SQLite.
    const DELETE_BEFORE: &'static str;
    /// How many columns a row fills.
    const COLUMNS: u8;
    /// The PostgreSQL partitions rows fall in (at least one): each a parent table partitioned by
    /// [`AppendOnlyRow::time`], and how much time one partition covers.
    const PARTITIONS: &'static [(&'static str, Span, TimeUnit)];

    /// The time the table is partitioned and expired by.
    fn time(&self) -> i64;
    /// Bytes the row takes in memory, to size the COPY payload.
    fn size(&self) -> usize;
    /// Writes the row's fields in binary COPY format, in column order.
    fn encode(&self, encoder: &mut CopyEncoder);
    /// Binds the row's fields for a SQLite insert, in column order.
    fn bind(&self, row: &mut Separated<'_, Sqlite, &'static str>);
}

/// An append-only table of `R` rows; cheap to clone (the memory of known partitions is shared).
#[derive(Debug, Clone)]
pub(crate) struct AppendOnlyTable<R> {
    store: Store,
    partitions: Arc<[Partitions]>,
    row: PhantomData<fn(&R)>,
}

impl<R: AppendOnlyRow> AppendOnlyTable<R> {
    pub(crate) fn new(store: Store) -> Self {
        const {
            assert!(
                !R::PARTITIONS.is_empty(),
                "an append-only table is partitioned"
            )
        };
        Self {
            store,
            partitions: R::PARTITIONS
                .iter()
                .map(|&(parent, span, unit)| Partitions::new(parent, span, unit))
                .collect(),
            row: PhantomData,
        }
    }

    /// The first of the table's partitioned tables ([`AppendOnlyRow::PARTITIONS`]), for expiry
    /// that looks inside a partition before dropping it.
    pub(crate) fn first_partitions(&self) -> &Partitions {
        &self.partitions[0]
    }

    /// Creates the missing partitions covering `from..=to` ahead of the data (PostgreSQL;
    /// nothing on SQLite). Returns how many it created.
    pub(crate) async fn ensure_partitions(&self, from: i64, to: i64) -> Result<usize> {
        let Pool::Postgres(pool) = &self.store.pool else {
            return Ok(0);
        };
        let mut created = 0;
        for partitions in self.partitions.iter() {
            created += partitions.ensure(pool, from, to).await?;
        }
        Ok(created)
    }

    /// Stores `rows` in one transaction with, when given, the batch's feed row; returns the feed
    /// position.
    pub(crate) async fn insert(&self, rows: &[R], feed: Option<&FeedEntry>) -> Result<Option<i64>> {
        if rows.is_empty() {
            return Ok(None);
        }
        match &self.store.pool {
            Pool::Postgres(pool) => {
                let (oldest, newest) = time_range(rows.iter().map(R::time));
                write_batch(
                    pool,
                    Batch {
                        copy: R::COPY,
                        data: encode(rows),
                        then: Vec::new(),
                        feed,
                        clock: self.store.clock(),
                        partitions: self
                            .partitions
                            .iter()
                            .map(|partitions| (partitions, oldest, newest))
                            .collect(),
                    },
                )
                .await
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let mut transaction = pool.begin().await?;
                for chunk in rows.chunks(SQLITE_MAX_PARAMETERS / usize::from(R::COLUMNS)) {
                    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(R::INSERT);
                    insert.push_values(chunk, |mut values, row| row.bind(&mut values));
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

    /// Removes the rows older than `before`: on PostgreSQL the partitions wholly before it, on
    /// SQLite the rows.
    pub(crate) async fn expire(&self, before: i64) -> Result<Expired> {
        match &self.store.pool {
            Pool::Postgres(pool) => {
                self.drop_partitions_before(pool, std::iter::repeat(before))
                    .await
            }
            Pool::Sqlite(pool) => {
                let _writer = self.store.write_lock.lock().await;
                let deleted = sqlx::query(R::DELETE_BEFORE)
                    .bind(before)
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

    /// Drops the partitions wholly before the cut `cuts` gives each partitioned table, in the
    /// order of [`AppendOnlyRow::PARTITIONS`] (PostgreSQL), for tables whose classes of rows are
    /// kept for different times.
    pub(crate) async fn drop_partitions_before(
        &self,
        pool: &PgPool,
        cuts: impl IntoIterator<Item = i64>,
    ) -> Result<Expired> {
        let mut expired = Expired::default();
        for (partitions, cut) in self.partitions.iter().zip(cuts) {
            let dropped = partitions.drop_before(pool, cut).await?;
            expired.partitions_dropped += dropped.len() as u64;
        }
        Ok(expired)
    }

    /// Rows stored in the table.
    pub(crate) async fn count(&self) -> Result<i64> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar(R::COUNT).fetch_one(pool).await?
        }))
    }
}

/// `rows` in binary COPY format for their table.
pub(crate) fn encode<R: AppendOnlyRow>(rows: &[R]) -> Vec<u8> {
    // Per row: the field count, then each field's length before its bytes.
    let bytes: usize = rows
        .iter()
        .map(|row| row.size() + 2 + 4 * usize::from(R::COLUMNS))
        .sum();
    let mut encoder = CopyEncoder::with_capacity(bytes);
    for row in rows {
        encoder.row(i16::from(R::COLUMNS));
        row.encode(&mut encoder);
    }
    encoder.finish()
}

/// Declares the repository of an append-only table: the struct (its store, its
/// [`AppendOnlyTable`] and any further fields with their initial values), its accessor on
/// [`Store`], its [`crate::Repository`] implementation and `ensure_partitions`. The signal's
/// file adds its inserts, reads and expiry.
macro_rules! append_only_repository {
    (
        $(#[$doc:meta])*
        pub struct $repository:ident($row:ty) from Store::$accessor:ident {
            $($field:ident: $type:ty = $init:expr,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $repository {
            store: $crate::Store,
            table: $crate::backend::append_only::AppendOnlyTable<$row>,
            $($field: $type,)*
        }

        $crate::backend::repository!($repository);

        impl $crate::Store {
            $(#[$doc])*
            pub fn $accessor(&self) -> $repository {
                $repository {
                    store: self.clone(),
                    table: $crate::backend::append_only::AppendOnlyTable::new(self.clone()),
                    $($field: $init,)*
                }
            }
        }

        impl $repository {
            /// Creates the missing partitions covering `from_ns..=to_ns` ahead of the data
            /// (PostgreSQL; nothing on SQLite). Returns how many it created.
            pub async fn ensure_partitions(&self, from_ns: i64, to_ns: i64) -> $crate::Result<usize> {
                self.table.ensure_partitions(from_ns, to_ns).await
            }
        }
    };
}
pub(crate) use append_only_repository;
