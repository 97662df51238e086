//! The configuration repository: current values in `system_configurations`,
//! one global revision in `config_meta`, and every change in
//! `config_changes` (read by Watch and History, pruned after a retention).
//!
//! Every write takes the `config_meta` row lock first, so revisions commit in
//! the order they are handed out: a reader that has seen revision N has seen
//! every change up to N. On PostgreSQL the write also sends a NOTIFY on
//! [`CHANGES_CHANNEL`], delivered to listeners when it commits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, ChangeLogCompaction, Store, with_pool};
use crate::error::{Result, StoreError};

/// The PostgreSQL NOTIFY channel of configuration changes.
pub const CHANGES_CHANNEL: &str = "pharos_config_changes";
/// NOTIFY payloads must stay under 8000 bytes; larger changes are announced
/// by revision only and read back from the change log.
const MAX_NOTIFY_PAYLOAD: usize = 7900;

/// `config_changes.kind` of a put.
pub const KIND_PUT: i64 = 1;
/// `config_changes.kind` of a delete.
pub const KIND_DELETE: i64 = 2;

/// One row of `system_configurations`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize, Deserialize)]
pub struct EntryRow {
    pub key: String,
    pub environment: String,
    pub value: String,
    pub value_type: i64,
    pub category: String,
    pub description: String,
    pub revision: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// One row of `config_changes`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize, Deserialize)]
pub struct ChangeRow {
    pub revision: i64,
    pub kind: i64,
    pub key: String,
    pub environment: String,
    /// The value written by a put, or the value removed by a delete.
    pub value: String,
    pub previous_value: Option<String>,
    pub value_type: i64,
    pub category: String,
    pub description: String,
    pub changed_at: i64,
    pub actor: String,
}

impl ChangeRow {
    /// The entry as this change left it (for a delete: as it was, stamped
    /// with the delete's revision).
    pub fn entry(&self) -> EntryRow {
        EntryRow {
            key: self.key.clone(),
            environment: self.environment.clone(),
            value: self.value.clone(),
            value_type: self.value_type,
            category: self.category.clone(),
            description: self.description.clone(),
            revision: self.revision,
            updated_at: self.changed_at,
            updated_by: self.actor.clone(),
        }
    }
}

/// The payload of a change notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChangeNotice {
    Full(ChangeRow),
    Revision { revision: i64 },
}

/// A put: fields left `None` keep the entry's current value.
#[derive(Debug, Clone, Default)]
pub struct PutEntry {
    pub key: String,
    pub environment: String,
    pub value: String,
    pub value_type: Option<i64>,
    pub category: Option<String>,
    pub description: Option<String>,
    /// Compare-and-set: the entry's current revision, 0 for "must not exist".
    pub expected_revision: Option<i64>,
    pub actor: String,
}

/// A delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteEntry {
    pub key: String,
    pub environment: String,
    pub expected_revision: Option<i64>,
    pub actor: String,
}

/// A page of `List`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub category: String,
    /// Empty: base values; else values resolved for this environment.
    pub environment: String,
    /// Keys strictly after this one.
    pub after_key: String,
    pub limit: usize,
}

/// The revision counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    pub current: i64,
    /// Changes up to and including this revision were pruned.
    pub compacted: i64,
}

const NEXT_REVISION: &str =
    "UPDATE config_meta SET revision = revision + 1 WHERE id = 1 RETURNING revision";
const SELECT_ENTRY_FOR_UPDATE: &str = "SELECT key, environment, value, value_type, category, description, revision, updated_at, updated_by \
     FROM system_configurations WHERE key = $1 AND environment = $2";
const UPSERT_ENTRY: &str = "INSERT INTO system_configurations \
     (key, environment, value, value_type, category, description, revision, updated_at, updated_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (key, environment) DO UPDATE SET value = excluded.value, value_type = excluded.value_type, \
     category = excluded.category, description = excluded.description, revision = excluded.revision, \
     updated_at = excluded.updated_at, updated_by = excluded.updated_by";
const DELETE_ENTRY: &str = "DELETE FROM system_configurations WHERE key = $1 AND environment = $2";
const INSERT_CHANGE: &str = "INSERT INTO config_changes \
     (revision, kind, key, environment, value, previous_value, value_type, category, description, changed_at, actor) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
const SELECT_KEY: &str = "SELECT key, environment, value, value_type, category, description, revision, updated_at, updated_by \
     FROM system_configurations WHERE key = $1 ORDER BY environment";
const SELECT_RANGE: &str = "SELECT key, environment, value, value_type, category, description, revision, updated_at, updated_by \
     FROM system_configurations WHERE key >= $1 AND ($2 IS NULL OR key < $2) ORDER BY key, environment";
const LIST_BASE: &str = "SELECT key, environment, value, value_type, category, description, revision, updated_at, updated_by \
     FROM system_configurations \
     WHERE environment = '' AND key >= $1 AND ($2 IS NULL OR key < $2) AND key > $3 AND ($4 = '' OR category = $4) \
     ORDER BY key LIMIT $5";
const LIST_RESOLVED: &str = "SELECT key, environment, value, value_type, category, description, revision, updated_at, updated_by \
     FROM system_configurations \
     WHERE (environment = '' OR environment = $4) AND key >= $1 AND ($2 IS NULL OR key < $2) AND key > $3 \
     ORDER BY key, environment LIMIT $5";
const HISTORY: &str = "SELECT revision, kind, key, environment, value, previous_value, value_type, category, description, changed_at, actor \
     FROM config_changes WHERE key = $1 AND environment = $2 ORDER BY revision DESC LIMIT $3";
const CHANGES_AFTER: &str = "SELECT revision, kind, key, environment, value, previous_value, value_type, category, description, changed_at, actor \
     FROM config_changes WHERE revision > $1 ORDER BY revision LIMIT $2";
const REVISIONS: &str = "SELECT revision, compacted_revision FROM config_meta WHERE id = 1";
const PRUNABLE: &str = "SELECT MAX(revision) FROM config_changes WHERE changed_at < $1";
const PRUNE: &str = "DELETE FROM config_changes WHERE revision <= $1";
const COMPACTION: ChangeLogCompaction = ChangeLogCompaction {
    prunable: PRUNABLE,
    prune: PRUNE,
    set_compacted: SET_COMPACTED,
};
const SET_COMPACTED: &str =
    "UPDATE config_meta SET compacted_revision = $1 WHERE id = 1 AND compacted_revision < $1";

/// Inserts the change row and, on PostgreSQL, announces it.
macro_rules! insert_change {
    ($tx:ident, $change:ident, $is_postgres:ident) => {
        sqlx::query(INSERT_CHANGE)
            .bind($change.revision)
            .bind($change.kind)
            .bind(&$change.key)
            .bind(&$change.environment)
            .bind(&$change.value)
            .bind(&$change.previous_value)
            .bind($change.value_type)
            .bind(&$change.category)
            .bind(&$change.description)
            .bind($change.changed_at)
            .bind(&$change.actor)
            .execute(&mut *$tx)
            .await?;
        if $is_postgres {
            sqlx::query(NOTIFY)
                .bind(CHANGES_CHANNEL)
                .bind(notice_payload(&$change))
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// The configuration repository of a [`Store`].
#[derive(Debug, Clone)]
pub struct ConfigRepository {
    store: Store,
}

crate::backend::repository!(ConfigRepository);

impl Store {
    pub fn config(&self) -> ConfigRepository {
        ConfigRepository {
            store: self.clone(),
        }
    }
}

impl ConfigRepository {
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Writes a value and records the change. `validate` checks the value
    /// against the type it will have (given, or kept from the entry).
    pub async fn put(
        &self,
        put: PutEntry,
        validate: impl Fn(i64, &str) -> std::result::Result<(), String> + Send,
    ) -> Result<ChangeRow> {
        let is_postgres = self.backend() == Backend::Postgres;
        let _writer = self.store.write_lock.lock().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(NEXT_REVISION)
                .fetch_one(&mut *tx)
                .await?;
            let current: Option<EntryRow> = sqlx::query_as(SELECT_ENTRY_FOR_UPDATE)
                .bind(&put.key)
                .bind(&put.environment)
                .fetch_optional(&mut *tx)
                .await?;
            check_expected(put.expected_revision, current.as_ref())?;
            // A new override inherits what it does not say from the base value.
            let inherited: Option<EntryRow> = match &current {
                Some(entry) => Some(entry.clone()),
                None if !put.environment.is_empty() => {
                    sqlx::query_as(SELECT_ENTRY_FOR_UPDATE)
                        .bind(&put.key)
                        .bind("")
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
            };
            let value_type = put
                .value_type
                .or(inherited.as_ref().map(|entry| entry.value_type))
                .unwrap_or(1);
            validate(value_type, &put.value).map_err(StoreError::InvalidValue)?;
            let category = put
                .category
                .or_else(|| inherited.as_ref().map(|entry| entry.category.clone()))
                .unwrap_or_default();
            let description = put
                .description
                .or_else(|| inherited.as_ref().map(|entry| entry.description.clone()))
                .unwrap_or_default();
            let change = ChangeRow {
                revision,
                kind: KIND_PUT,
                key: put.key,
                environment: put.environment,
                value: put.value,
                previous_value: current.map(|entry| entry.value),
                value_type,
                category,
                description,
                changed_at: self.store.clock().now_micros(),
                actor: put.actor,
            };
            sqlx::query(UPSERT_ENTRY)
                .bind(&change.key)
                .bind(&change.environment)
                .bind(&change.value)
                .bind(change.value_type)
                .bind(&change.category)
                .bind(&change.description)
                .bind(change.revision)
                .bind(change.changed_at)
                .bind(&change.actor)
                .execute(&mut *tx)
                .await?;
            insert_change!(tx, change, is_postgres);
            tx.commit().await?;
            Ok(change)
        })
    }

    /// Removes a value and records the change.
    pub async fn delete(&self, delete: DeleteEntry) -> Result<ChangeRow> {
        let is_postgres = self.backend() == Backend::Postgres;
        let _writer = self.store.write_lock.lock().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(NEXT_REVISION)
                .fetch_one(&mut *tx)
                .await?;
            let current: Option<EntryRow> = sqlx::query_as(SELECT_ENTRY_FOR_UPDATE)
                .bind(&delete.key)
                .bind(&delete.environment)
                .fetch_optional(&mut *tx)
                .await?;
            check_expected(delete.expected_revision, current.as_ref())?;
            let Some(current) = current else {
                return Err(StoreError::NotFound);
            };
            let change = ChangeRow {
                revision,
                kind: KIND_DELETE,
                key: current.key,
                environment: current.environment,
                previous_value: Some(current.value.clone()),
                value: current.value,
                value_type: current.value_type,
                category: current.category,
                description: current.description,
                changed_at: self.store.clock().now_micros(),
                actor: delete.actor,
            };
            sqlx::query(DELETE_ENTRY)
                .bind(&change.key)
                .bind(&change.environment)
                .execute(&mut *tx)
                .await?;
            insert_change!(tx, change, is_postgres);
            tx.commit().await?;
            Ok(change)
        })
    }

    /// Every row of a key: its base value and its environment overrides.
    pub async fn key_rows(&self, key: &str) -> Result<Vec<EntryRow>> {
        with_pool!(self.store, |pool| {
            Ok(sqlx::query_as(SELECT_KEY).bind(key).fetch_all(pool).await?)
        })
    }

    /// One page of values, by key order. With an environment, each key
    /// appears once, as its override if it has one, else its base value.
    pub async fn list(&self, query: &ListQuery) -> Result<(Vec<EntryRow>, bool)> {
        let upper = prefix_upper_bound(&query.prefix);
        let limit = query.limit.max(1);
        if query.environment.is_empty() {
            let rows: Vec<EntryRow> = with_pool!(self.store, |pool| {
                sqlx::query_as(LIST_BASE)
                    .bind(&query.prefix)
                    .bind(&upper)
                    .bind(&query.after_key)
                    .bind(&query.category)
                    .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
                    .fetch_all(pool)
                    .await?
            });
            let more = rows.len() > limit;
            return Ok((rows.into_iter().take(limit).collect(), more));
        }
        // Each key has at most two candidate rows (base, override), so
        // 2 * (limit + 1) rows always hold limit + 1 whole keys when there are.
        let fetch = 2 * (limit + 1);
        let rows: Vec<EntryRow> = with_pool!(self.store, |pool| {
            sqlx::query_as(LIST_RESOLVED)
                .bind(&query.prefix)
                .bind(&upper)
                .bind(&query.after_key)
                .bind(&query.environment)
                .bind(i64::try_from(fetch).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?
        });
        let exhausted = rows.len() < fetch;
        let mut resolved: Vec<EntryRow> = Vec::new();
        for row in rows {
            match resolved.last_mut() {
                // Rows of a key arrive base first ('' sorts before any name).
                Some(last) if last.key == row.key => *last = row,
                _ => resolved.push(row),
            }
        }
        let keys_seen = resolved.len();
        let mut page: Vec<EntryRow> = resolved.into_iter().take(limit).collect();
        let more = keys_seen > limit || !exhausted;
        if !query.category.is_empty() {
            page.retain(|row| row.category == query.category);
        }
        Ok((page, more && keys_seen >= limit))
    }

    /// The recorded changes of one entry, newest first.
    pub async fn history(
        &self,
        key: &str,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<ChangeRow>> {
        with_pool!(self.store, |pool| {
            Ok(sqlx::query_as(HISTORY)
                .bind(key)
                .bind(environment)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?)
        })
    }

    /// Up to `limit` changes after `revision`, in revision order.
    pub async fn changes_after(&self, revision: i64, limit: usize) -> Result<Vec<ChangeRow>> {
        with_pool!(self.store, |pool| {
            Ok(sqlx::query_as(CHANGES_AFTER)
                .bind(revision)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?)
        })
    }

    pub async fn revisions(&self) -> Result<Revisions> {
        let (current, compacted): (i64, i64) = with_pool!(self.store, |pool| {
            sqlx::query_as(REVISIONS).fetch_one(pool).await?
        });
        Ok(Revisions { current, compacted })
    }

    /// The rows matching exact keys or key prefixes (everything when both are
    /// empty) and the revision they are consistent with, read in one snapshot.
    pub async fn snapshot(
        &self,
        keys: &[String],
        prefixes: &[String],
    ) -> Result<(i64, Vec<EntryRow>)> {
        let is_postgres = self.backend() == Backend::Postgres;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            if is_postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let (revision, _): (i64, i64) = sqlx::query_as(REVISIONS).fetch_one(&mut *tx).await?;
            let mut rows: BTreeMap<(String, String), EntryRow> = BTreeMap::new();
            let everything = keys.is_empty() && prefixes.is_empty();
            let ranges = prefixes
                .iter()
                .map(String::as_str)
                .chain(everything.then_some(""));
            for prefix in ranges {
                let found: Vec<EntryRow> = sqlx::query_as(SELECT_RANGE)
                    .bind(prefix)
                    .bind(prefix_upper_bound(prefix))
                    .fetch_all(&mut *tx)
                    .await?;
                for row in found {
                    rows.insert((row.key.clone(), row.environment.clone()), row);
                }
            }
            for key in keys {
                let found: Vec<EntryRow> = sqlx::query_as(SELECT_KEY)
                    .bind(key)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in found {
                    rows.insert((row.key.clone(), row.environment.clone()), row);
                }
            }
            tx.commit().await?;
            Ok((revision, rows.into_values().collect()))
        })
    }

    /// Prunes changes older than `before_micros` (never the latest one's
    /// revision counter) and returns the new compacted revision, if any.
    pub async fn compact(&self, before_micros: i64) -> Result<Option<i64>> {
        self.store.compact_log(&COMPACTION, before_micros).await
    }
}

fn check_expected(expected: Option<i64>, current: Option<&EntryRow>) -> Result<()> {
    let current = current.map_or(0, |entry| entry.revision);
    match expected {
        Some(expected) if expected != current => {
            Err(StoreError::RevisionMismatch { expected, current })
        }
        _ => Ok(()),
    }
}

fn notice_payload(change: &ChangeRow) -> String {
    let full = serde_json::to_string(&ChangeNotice::Full(change.clone())).unwrap_or_default();
    if !full.is_empty() && full.len() <= MAX_NOTIFY_PAYLOAD {
        return full;
    }
    serde_json::to_string(&ChangeNotice::Revision {
        revision: change.revision,
    })
    .unwrap_or_default()
}

/// The smallest string greater than every string starting with `prefix`, or
/// `None` when there is no upper bound (empty prefix).
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(u32::from(last) + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("app."), Some("app/".to_string()));
        assert_eq!(prefix_upper_bound("a"), Some("b".to_string()));
    }

    #[test]
    fn notice_round_trips() {
        let change = ChangeRow {
            revision: 7,
            kind: KIND_PUT,
            key: "k".into(),
            environment: String::new(),
            value: "v".into(),
            previous_value: None,
            value_type: 1,
            category: String::new(),
            description: String::new(),
            changed_at: 1,
            actor: "me".into(),
        };
        let payload = notice_payload(&change);
        let parsed: ChangeNotice = serde_json::from_str(&payload).expect("parse");
        assert_eq!(parsed, ChangeNotice::Full(change.clone()));
        let big = ChangeRow {
            value: "x".repeat(10_000),
            ..change
        };
        let parsed: ChangeNotice = serde_json::from_str(&notice_payload(&big)).expect("parse");
        assert_eq!(parsed, ChangeNotice::Revision { revision: 7 });
    }
}
