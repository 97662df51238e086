//! The vector repository of the search service: index definitions in `vector_indexes`, every
//! vector and its payload in `vectors` (the source of truth that restarts and replicas load),
//! one global revision in `vector_meta` and each change in `vector_changes`.
//!
//! Every write takes the `vector_meta` row lock first, so revisions commit in the order they are
//! handed out: a replica that applies changes in revision order, after loading a snapshot at
//! revision N, ends with exactly the stored state. An upsert's vectors are not copied into the
//! change log: the rows of `vectors` carry the revision that wrote them. On PostgreSQL each write
//! sends the revision on [`CHANGES_CHANNEL`], delivered to listeners when it commits.

use std::collections::HashSet;

use futures::TryStreamExt as _;
use sqlx::{Postgres, QueryBuilder, Sqlite};

use crate::backend::{Backend, ChangeLogCompaction, Pool, Store, with_pool};
use crate::error::{Result, StoreError};

/// The PostgreSQL NOTIFY channel of vector changes; the payload is the revision.
pub const CHANGES_CHANNEL: &str = "pharos_vector_changes";

/// Rows per statement on SQLite (5 parameters each, under its 32,766 limit).
const SQLITE_ROWS_PER_STATEMENT: usize = 1000;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    CreateIndex,
    DropIndex,
    Upsert,
    Delete,
    /// New quantizers of an IVF_PQ index, read from `vector_indexes`.
    Trained,
}

impl ChangeKind {
    fn code(self) -> i64 {
        match self {
            ChangeKind::CreateIndex => 1,
            ChangeKind::DropIndex => 2,
            ChangeKind::Upsert => 3,
            ChangeKind::Delete => 4,
            ChangeKind::Trained => 5,
        }
    }

    fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => ChangeKind::CreateIndex,
            2 => ChangeKind::DropIndex,
            3 => ChangeKind::Upsert,
            4 => ChangeKind::Delete,
            5 => ChangeKind::Trained,
            _ => return None,
        })
    }
}

/// One committed change, as replicas replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub revision: i64,
    pub kind: ChangeKind,
    pub index: String,
    /// Create: the index definition.
    pub definition: String,
    /// Delete: the ids removed.
    pub ids: Vec<u64>,
    /// Vectors written or removed.
    pub count: i64,
    /// Microseconds since the Unix epoch.
    pub changed_at: i64,
}

/// One index as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IndexRow {
    pub name: String,
    pub definition: String,
    pub revision: i64,
    pub quantizers: Option<Vec<u8>>,
    pub created_at: i64,
}

/// One vector to write or as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorRow {
    pub id: u64,
    pub values: Vec<f32>,
    /// The payload as a JSON object of strings.
    pub payload: String,
}

/// What [`VectorRepository::load`] hands over, in order: each index, then its vectors.
#[derive(Debug)]
pub enum Loaded {
    Index(IndexRow),
    Vector { index: String, row: VectorRow },
}

#[derive(sqlx::FromRow)]
struct ChangeRecord {
    revision: i64,
    kind: i64,
    index_name: String,
    detail: String,
    ids: Vec<u8>,
    count: i64,
    changed_at: i64,
}

#[derive(sqlx::FromRow)]
struct VectorRecord {
    index_name: String,
    id: i64,
    vector: Vec<u8>,
    payload: String,
}

const NEXT_REVISION: &str =
    "UPDATE vector_meta SET revision = revision + 1 WHERE id = 1 RETURNING revision";
const REVISIONS: &str = "SELECT revision, compacted_revision FROM vector_meta WHERE id = 1";
const IDENTITY: &str =
    "SELECT store_id, revision, compacted_revision FROM vector_meta WHERE id = 1";
const SELECT_DEFINITION: &str = "SELECT definition FROM vector_indexes WHERE name = $1";
const INSERT_INDEX: &str =
    "INSERT INTO vector_indexes (name, definition, revision, created_at) VALUES ($1, $2, $3, $4)";
const DELETE_INDEX: &str = "DELETE FROM vector_indexes WHERE name = $1";
const DELETE_INDEX_VECTORS: &str = "DELETE FROM vectors WHERE index_name = $1";
const INSERT_CHANGE: &str = "INSERT INTO vector_changes \
     (revision, kind, index_name, detail, ids, count, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
const UPSERT_POSTGRES: &str = "INSERT INTO vectors (index_name, id, vector, payload, revision) \
     SELECT $1, u.id, u.vector, u.payload, $5 FROM UNNEST($2::bigint[], $3::bytea[], $4::text[]) AS u(id, vector, payload) \
     ON CONFLICT (index_name, id) DO UPDATE SET vector = excluded.vector, payload = excluded.payload, revision = excluded.revision";
const UPSERT_SQLITE_TAIL: &str = " ON CONFLICT (index_name, id) DO UPDATE SET vector = excluded.vector, \
     payload = excluded.payload, revision = excluded.revision";
const DELETE_POSTGRES: &str = "DELETE FROM vectors WHERE index_name = $1 AND id = ANY($2)";
const CHANGES_AFTER: &str = "SELECT revision, kind, index_name, detail, ids, count, changed_at \
     FROM vector_changes WHERE revision > $1 ORDER BY revision LIMIT $2";
const VECTORS_OF_CHANGE: &str =
    "SELECT index_name, id, vector, payload FROM vectors WHERE revision = $1";
const ALL_INDEXES: &str =
    "SELECT name, definition, revision, quantizers, created_at FROM vector_indexes ORDER BY name";
const SET_QUANTIZERS: &str = "UPDATE vector_indexes SET quantizers = $2 WHERE name = $1";
const SELECT_QUANTIZERS: &str = "SELECT quantizers FROM vector_indexes WHERE name = $1";
const VECTORS_OF_INDEX: &str =
    "SELECT index_name, id, vector, payload FROM vectors WHERE index_name = $1 ORDER BY id";
const PRUNABLE: &str = "SELECT MAX(revision) FROM vector_changes WHERE changed_at < $1";
const PRUNE: &str = "DELETE FROM vector_changes WHERE revision <= $1";
const COMPACTION: ChangeLogCompaction = ChangeLogCompaction {
    prunable: PRUNABLE,
    prune: PRUNE,
    set_compacted: SET_COMPACTED,
};
const SET_COMPACTED: &str =
    "UPDATE vector_meta SET compacted_revision = $1 WHERE id = 1 AND compacted_revision < $1";

/// Which store this is and how far its change log reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    pub store_id: String,
    /// The latest change.
    pub revision: i64,
    /// Changes up to this one were pruned from the log.
    pub compacted_revision: i64,
}

/// The vector repository of a [`Store`].
#[derive(Debug, Clone)]
pub struct VectorRepository {
    store: Store,
}

crate::backend::repository!(VectorRepository);

impl Store {
    pub fn vectors(&self) -> VectorRepository {
        VectorRepository {
            store: self.clone(),
        }
    }
}

/// Opens a write transaction and takes the revision row's lock with the next revision.
macro_rules! begin_write {
    ($pool:ident, $tx:ident, $revision:ident) => {
        let mut $tx = $pool.begin().await?;
        let $revision: i64 = sqlx::query_scalar(NEXT_REVISION)
            .fetch_one(&mut *$tx)
            .await?;
    };
}

/// Records the change and, on PostgreSQL, announces its revision at commit.
macro_rules! record_change {
    ($tx:ident, $change:expr, $is_postgres:expr) => {{
        let change: &Change = $change;
        sqlx::query(INSERT_CHANGE)
            .bind(change.revision)
            .bind(change.kind.code())
            .bind(&change.index)
            .bind(&change.definition)
            .bind(encode_ids(&change.ids))
            .bind(change.count)
            .bind(change.changed_at)
            .execute(&mut *$tx)
            .await?;
        if $is_postgres {
            sqlx::query(NOTIFY)
                .bind(CHANGES_CHANNEL)
                .bind(change.revision.to_string())
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

impl VectorRepository {
    fn is_postgres(&self) -> bool {
        self.store.backend() == Backend::Postgres
    }

    async fn sqlite_writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.store.pool {
            Pool::Sqlite(_) => Some(self.store.write_lock.lock().await),
            Pool::Postgres(_) => None,
        }
    }

    /// Creates index `name`; [`StoreError::AlreadyExists`] when it exists.
    pub async fn create_index(&self, name: &str, definition: &str) -> Result<Change> {
        let is_postgres = self.is_postgres();
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            begin_write!(pool, tx, revision);
            let existing: Option<String> = sqlx::query_scalar(SELECT_DEFINITION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            if existing.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let change = Change {
                revision,
                kind: ChangeKind::CreateIndex,
                index: name.to_owned(),
                definition: definition.to_owned(),
                ids: Vec::new(),
                count: 0,
                changed_at: self.store.clock().now_micros(),
            };
            sqlx::query(INSERT_INDEX)
                .bind(name)
                .bind(definition)
                .bind(revision)
                .bind(change.changed_at)
                .execute(&mut *tx)
                .await?;
            record_change!(tx, &change, is_postgres);
            tx.commit().await?;
            Ok(change)
        })
    }

    /// Drops index `name` and its vectors; [`StoreError::NotFound`] when it does not exist.
    pub async fn drop_index(&self, name: &str) -> Result<Change> {
        let is_postgres = self.is_postgres();
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            begin_write!(pool, tx, revision);
            let removed = sqlx::query(DELETE_INDEX)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            let count = sqlx::query(DELETE_INDEX_VECTORS)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let change = Change {
                revision,
                kind: ChangeKind::DropIndex,
                index: name.to_owned(),
                definition: String::new(),
                ids: Vec::new(),
                count: i64::try_from(count).unwrap_or(i64::MAX),
                changed_at: self.store.clock().now_micros(),
            };
            record_change!(tx, &change, is_postgres);
            tx.commit().await?;
            Ok(change)
        })
    }

    /// Writes `rows` into index `name` (an id given twice keeps its last row), if the index
    /// still has the `definition` the caller validated them against: otherwise
    /// [`StoreError::NotFound`] (dropped) or [`StoreError::InvalidValue`] (dropped and created
    /// again with another definition meanwhile).
    pub async fn upsert(&self, name: &str, definition: &str, rows: &[VectorRow]) -> Result<Change> {
        let rows = last_of_each_id(rows);
        let is_postgres = self.is_postgres();
        let _writer = self.sqlite_writer().await;
        let change = with_pool!(self.store, |pool| {
            begin_write!(pool, tx, revision);
            tx.check_definition(name, definition).await?;
            let change = Change {
                revision,
                kind: ChangeKind::Upsert,
                index: name.to_owned(),
                definition: String::new(),
                ids: Vec::new(),
                count: i64::try_from(rows.len()).unwrap_or(i64::MAX),
                changed_at: self.store.clock().now_micros(),
            };
            tx.write_rows(name, revision, &rows).await?;
            record_change!(tx, &change, is_postgres);
            tx.commit().await?;
            change
        });
        Ok(change)
    }

    /// Removes `ids` from index `name` (ids not there are ignored).
    pub async fn delete(&self, name: &str, ids: &[u64]) -> Result<Change> {
        let is_postgres = self.is_postgres();
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            begin_write!(pool, tx, revision);
            let exists: Option<String> = sqlx::query_scalar(SELECT_DEFINITION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            let removed = tx.delete_rows(name, ids).await?;
            let change = Change {
                revision,
                kind: ChangeKind::Delete,
                index: name.to_owned(),
                definition: String::new(),
                ids: ids.to_vec(),
                count: i64::try_from(removed).unwrap_or(i64::MAX),
                changed_at: self.store.clock().now_micros(),
            };
            record_change!(tx, &change, is_postgres);
            tx.commit().await?;
            Ok(change)
        })
    }

    /// Stores the trained quantizers of index `name` (if it still has `definition`), for every
    /// replica to install.
    pub async fn set_quantizers(
        &self,
        name: &str,
        definition: &str,
        quantizers: &[u8],
    ) -> Result<Change> {
        let is_postgres = self.is_postgres();
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            begin_write!(pool, tx, revision);
            tx.check_definition(name, definition).await?;
            sqlx::query(SET_QUANTIZERS)
                .bind(name)
                .bind(quantizers)
                .execute(&mut *tx)
                .await?;
            let change = Change {
                revision,
                kind: ChangeKind::Trained,
                index: name.to_owned(),
                definition: String::new(),
                ids: Vec::new(),
                count: 0,
                changed_at: self.store.clock().now_micros(),
            };
            record_change!(tx, &change, is_postgres);
            tx.commit().await?;
            Ok(change)
        })
    }

    /// The stored quantizers of index `name` (`None`: not trained or no such index).
    pub async fn quantizers(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let stored: Option<Option<Vec<u8>>> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(SELECT_QUANTIZERS)
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(stored.flatten())
    }

    /// The current and compacted revisions.
    pub async fn revisions(&self) -> Result<(i64, i64)> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(REVISIONS).fetch_one(pool).await?
        }))
    }

    /// The store's identity (random, made with the schema) with its current and compacted
    /// revisions: what an index snapshot must match to be brought current from the change log.
    pub async fn identity(&self) -> Result<StoreIdentity> {
        let (store_id, revision, compacted_revision): (String, i64, i64) =
            with_pool!(self.store, |pool| {
                sqlx::query_as(IDENTITY).fetch_one(pool).await?
            });
        Ok(StoreIdentity {
            store_id,
            revision,
            compacted_revision,
        })
    }

    /// Up to `limit` changes after `revision`, in revision order.
    pub async fn changes_after(&self, revision: i64, limit: usize) -> Result<Vec<Change>> {
        let records: Vec<ChangeRecord> = with_pool!(self.store, |pool| {
            sqlx::query_as(CHANGES_AFTER)
                .bind(revision)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?
        });
        records.into_iter().map(change_of).collect()
    }

    /// The vectors written by upsert `revision` and not overwritten since (those are applied
    /// with the later change).
    pub async fn vectors_of_change(&self, revision: i64) -> Result<Vec<VectorRow>> {
        let records: Vec<VectorRecord> = with_pool!(self.store, |pool| {
            sqlx::query_as(VECTORS_OF_CHANGE)
                .bind(revision)
                .fetch_all(pool)
                .await?
        });
        records
            .into_iter()
            .map(|record| vector_of(record).map(|(_, row)| row))
            .collect()
    }

    /// Every index and vector, read in one consistent snapshot, handed to `on` index by index;
    /// returns the revision the snapshot is at.
    pub async fn load(&self, on: &mut (dyn FnMut(Loaded) + Send)) -> Result<i64> {
        let is_postgres = self.is_postgres();
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            if is_postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let (revision, _): (i64, i64) = sqlx::query_as(REVISIONS).fetch_one(&mut *tx).await?;
            let indexes: Vec<IndexRow> = sqlx::query_as(ALL_INDEXES).fetch_all(&mut *tx).await?;
            for index in indexes {
                let name = index.name.clone();
                on(Loaded::Index(index));
                let mut rows = sqlx::query_as::<_, VectorRecord>(VECTORS_OF_INDEX)
                    .bind(&name)
                    .fetch(&mut *tx);
                while let Some(record) = rows.try_next().await? {
                    let (index, row) = vector_of(record)?;
                    on(Loaded::Vector { index, row });
                }
            }
            tx.commit().await?;
            Ok(revision)
        })
    }

    /// Prunes changes older than `before_micros`; returns the new compacted revision, if any.
    pub async fn compact(&self, before_micros: i64) -> Result<Option<i64>> {
        self.store.compact_log(&COMPACTION, before_micros).await
    }
}

/// The writes of the vector repository that differ by backend: one statement with arrays on
/// PostgreSQL, blocks of rows on SQLite.
trait VectorWrites {
    /// Fails unless index `name` exists with `definition`.
    async fn check_definition(&mut self, name: &str, definition: &str) -> Result<()>;
    async fn write_rows(&mut self, name: &str, revision: i64, rows: &[&VectorRow]) -> Result<()>;
    async fn delete_rows(&mut self, name: &str, ids: &[u64]) -> Result<u64>;
}

/// The definition check, the same SQL on both backends.
macro_rules! check_definition {
    ($self:ident, $name:ident, $definition:ident) => {{
        let stored: Option<String> = sqlx::query_scalar(SELECT_DEFINITION)
            .bind($name)
            .fetch_optional(&mut **$self)
            .await?;
        match stored {
            None => Err(StoreError::NotFound),
            Some(stored) if stored != $definition => Err(StoreError::InvalidValue(format!(
                "index {:?} was recreated with another definition meanwhile; read it again",
                $name
            ))),
            Some(_) => Ok(()),
        }
    }};
}

impl VectorWrites for sqlx::Transaction<'_, Postgres> {
    async fn check_definition(&mut self, name: &str, definition: &str) -> Result<()> {
        check_definition!(self, name, definition)
    }

    async fn write_rows(&mut self, name: &str, revision: i64, rows: &[&VectorRow]) -> Result<()> {
        let ids: Vec<i64> = rows.iter().map(|row| stored_id(row.id)).collect();
        let vectors: Vec<Vec<u8>> = rows.iter().map(|row| encode_values(&row.values)).collect();
        let payloads: Vec<&str> = rows.iter().map(|row| row.payload.as_str()).collect();
        sqlx::query(UPSERT_POSTGRES)
            .bind(name)
            .bind(ids)
            .bind(vectors)
            .bind(payloads)
            .bind(revision)
            .execute(&mut **self)
            .await?;
        Ok(())
    }

    async fn delete_rows(&mut self, name: &str, ids: &[u64]) -> Result<u64> {
        let ids: Vec<i64> = ids.iter().map(|&id| stored_id(id)).collect();
        Ok(sqlx::query(DELETE_POSTGRES)
            .bind(name)
            .bind(ids)
            .execute(&mut **self)
            .await?
            .rows_affected())
    }
}

impl VectorWrites for sqlx::Transaction<'_, Sqlite> {
    async fn check_definition(&mut self, name: &str, definition: &str) -> Result<()> {
        check_definition!(self, name, definition)
    }

    async fn write_rows(&mut self, name: &str, revision: i64, rows: &[&VectorRow]) -> Result<()> {
        for block in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO vectors (index_name, id, vector, payload, revision) ",
            );
            insert.push_values(block, |mut values, row| {
                values
                    .push_bind(name)
                    .push_bind(stored_id(row.id))
                    .push_bind(encode_values(&row.values))
                    .push_bind(row.payload.as_str())
                    .push_bind(revision);
            });
            insert.push(UPSERT_SQLITE_TAIL);
            insert.build().execute(&mut **self).await?;
        }
        Ok(())
    }

    async fn delete_rows(&mut self, name: &str, ids: &[u64]) -> Result<u64> {
        let mut removed = 0;
        for block in ids.chunks(SQLITE_ROWS_PER_STATEMENT) {
            let mut delete: QueryBuilder<Sqlite> =
                QueryBuilder::new("DELETE FROM vectors WHERE index_name = ");
            delete.push_bind(name).push(" AND id IN (");
            let mut separated = delete.separated(", ");
            for &id in block {
                separated.push_bind(stored_id(id));
            }
            delete.push(")");
            removed += delete.build().execute(&mut **self).await?.rows_affected();
        }
        Ok(removed)
    }
}

/// The rows with each id's last occurrence only, in their order.
fn last_of_each_id(rows: &[VectorRow]) -> Vec<&VectorRow> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut kept: Vec<&VectorRow> = rows
        .iter()
        .rev()
        .filter(|row| seen.insert(row.id))
        .collect();
    kept.reverse();
    kept
}

/// A u64 id in a BIGINT column, same bits.
fn stored_id(id: u64) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

fn caller_id(stored: i64) -> u64 {
    u64::from_ne_bytes(stored.to_ne_bytes())
}

fn encode_values(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

fn encode_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

fn decode_values(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::InvalidValue(format!(
            "a stored vector has {} bytes, not a multiple of 4",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect())
}

fn decode_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut id = [0u8; 8];
            id.copy_from_slice(chunk);
            u64::from_le_bytes(id)
        })
        .collect()
}

fn vector_of(record: VectorRecord) -> Result<(String, VectorRow)> {
    Ok((
        record.index_name,
        VectorRow {
            id: caller_id(record.id),
            values: decode_values(&record.vector)?,
            payload: record.payload,
        },
    ))
}

fn change_of(record: ChangeRecord) -> Result<Change> {
    let kind = ChangeKind::from_code(record.kind).ok_or_else(|| {
        StoreError::InvalidValue(format!("unknown vector change kind {}", record.kind))
    })?;
    Ok(Change {
        revision: record.revision,
        kind,
        index: record.index_name,
        definition: record.detail,
        ids: decode_ids(&record.ids),
        count: record.count,
        changed_at: record.changed_at,
    })
}
