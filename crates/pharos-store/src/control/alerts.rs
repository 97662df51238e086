//! The alert repository: everything the alert service knows, persisted as it changes so that a
//! kill -9 loses nothing and a restart (or the next leader) carries on where it stopped.
//!
//! - `alert_rule_state`: the evaluation state of each rule group (pending and firing instances,
//!   as JSON), so `for:` clocks survive a restart.
//! - `alert_alerts`: the alerts the service holds, by fingerprint, with their labels and
//!   annotations (JSON), start and end, and whether the end was set by the resolve timeout.
//! - `alert_silences`: silences with their matchers (JSON); ended ones are pruned.
//! - `alert_notification_log`: per aggregation group and integration, what was last delivered
//!   (the firing and resolved fingerprints) and until when the entry matters, so a restart
//!   neither repeats nor drops a notification.
//! - `alert_outbox`: the outbox of notifications. A notification is written `pending` before it
//!   is sent; after a 2xx it is marked `delivered` together with its notification-log entry in
//!   one transaction ([`AlertRepository::mark_delivered`]); after the last failed attempt it is
//!   marked `dead` and shows in the dead letters. On restart the pending rows are sent again
//!   with the same Idempotency-Key, so a receiver can drop what it already had. Finished rows are
//!   pruned after a retention.
//! - `alert_outbox_log`: the notification-log entries of other groups an outbox row's delivery
//!   writes besides its own (a rate-limit summary speaks for every group it held back).
//! - `alert_delivery_attempts`: every attempt to deliver an outbox row (outcome, HTTP status,
//!   error, duration), for the API; pruned by age.
//! - `alert_leases`: named leases; the replica holding one evaluates and notifies, and takes it
//!   over only once it expired ([`AlertRepository::try_acquire_lease`] is one atomic statement).
//! - `alert_rule_groups`: rule groups stored through the API, as their YAML.
//! - `alert_acknowledgements`: who acknowledged a firing alert, when and why.
//!
//! JSON is stored as TEXT and times are milliseconds since the Unix epoch, given by the caller.
//! Every statement is the same static text on both backends; writes on SQLite take the store's
//! write lock, since SQLite has one writer.

use crate::backend::{Pool, Store, with_pool};
use crate::error::{Result, StoreError};

/// One row of `alert_alerts`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRow {
    pub fingerprint: String,
    pub labels_json: String,
    pub annotations_json: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: String,
    pub updated_at_ms: i64,
    /// The end time was set by the resolve timeout, not by the sender.
    pub timeout: bool,
}

/// One row of `alert_silences`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SilenceRow {
    pub id: String,
    pub matchers_json: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

/// One row of `alert_notification_log`: what was last delivered to one integration for one
/// aggregation group.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NotificationLogRow {
    pub group_key: String,
    pub integration: String,
    pub firing_json: String,
    pub resolved_json: String,
    pub sent_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A notification in `alert_outbox`, with the notification-log entry its delivery writes.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxRow {
    /// Sent as the Idempotency-Key header, the same on every attempt and after a restart.
    pub idempotency_key: String,
    pub group_key: String,
    pub integration: String,
    pub receiver: String,
    pub url: String,
    pub body: String,
    pub log_firing_json: String,
    pub log_resolved_json: String,
    pub log_expires_at_ms: i64,
    pub created_at_ms: i64,
}

/// The notification-log entry of another aggregation group that an outbox row's delivery writes
/// (for the row's integration, with the row's expiry): the groups a summary speaks for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxLogRow {
    pub group_key: String,
    pub firing_json: String,
    pub resolved_json: String,
}

/// An outbox row given up after its last attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeadLetterRow {
    #[sqlx(flatten)]
    pub outbox: OutboxRow,
    pub failed_at_ms: i64,
    pub last_error: String,
}

/// One row of `alert_delivery_attempts`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptRow {
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub at_ms: i64,
    pub duration_ms: i64,
    pub outcome: String,
    /// `None` when no response arrived.
    pub http_status: Option<i32>,
    pub error: String,
}

/// One rule group stored through the API.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RuleGroupRow {
    pub namespace: String,
    pub name: String,
    pub yaml: String,
    pub updated_at_ms: i64,
}

/// One acknowledged alert.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AcknowledgementRow {
    pub fingerprint: String,
    pub acknowledged_by: String,
    pub comment: String,
    pub at_ms: i64,
}

const UPSERT_RULE_STATE: &str = "INSERT INTO alert_rule_state (group_key, state, updated_at_ms) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (group_key) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms";
const LOAD_RULE_STATES: &str = "SELECT group_key, state FROM alert_rule_state ORDER BY group_key";
const DELETE_RULE_STATE: &str = "DELETE FROM alert_rule_state WHERE group_key = $1";

const UPSERT_ALERT: &str = "INSERT INTO alert_alerts \
     (fingerprint, labels, annotations, starts_at_ms, ends_at_ms, generator_url, updated_at_ms, timeout) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, annotations = excluded.annotations, \
     starts_at_ms = excluded.starts_at_ms, ends_at_ms = excluded.ends_at_ms, \
     generator_url = excluded.generator_url, updated_at_ms = excluded.updated_at_ms, timeout = excluded.timeout";
const LOAD_ALERTS: &str = "SELECT fingerprint, labels AS labels_json, annotations AS annotations_json, \
     starts_at_ms, ends_at_ms, generator_url, updated_at_ms, timeout \
     FROM alert_alerts ORDER BY fingerprint";
const DELETE_ALERT: &str = "DELETE FROM alert_alerts WHERE fingerprint = $1";
const DELETE_ALERTS_POSTGRES: &str = "DELETE FROM alert_alerts WHERE fingerprint = ANY($1)";

const UPSERT_SILENCE: &str = "INSERT INTO alert_silences \
     (id, matchers, starts_at_ms, ends_at_ms, updated_at_ms, created_by, comment) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, starts_at_ms = excluded.starts_at_ms, \
     ends_at_ms = excluded.ends_at_ms, updated_at_ms = excluded.updated_at_ms, \
     created_by = excluded.created_by, comment = excluded.comment";
const LOAD_SILENCES: &str = "SELECT id, matchers AS matchers_json, starts_at_ms, ends_at_ms, \
     updated_at_ms, created_by, comment FROM alert_silences ORDER BY id";
const DELETE_SILENCES_ENDED: &str = "DELETE FROM alert_silences WHERE ends_at_ms < $1";

const UPSERT_NOTIFICATION_LOG: &str = "INSERT INTO alert_notification_log \
     (group_key, integration, firing, resolved, sent_at_ms, expires_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (group_key, integration) DO UPDATE SET firing = excluded.firing, \
     resolved = excluded.resolved, sent_at_ms = excluded.sent_at_ms, expires_at_ms = excluded.expires_at_ms";
const LOAD_NOTIFICATION_LOG: &str = "SELECT group_key, integration, firing AS firing_json, \
     resolved AS resolved_json, sent_at_ms, expires_at_ms \
     FROM alert_notification_log ORDER BY group_key, integration";
const DELETE_NOTIFICATION_LOG_EXPIRED: &str =
    "DELETE FROM alert_notification_log WHERE expires_at_ms <= $1";

const ENQUEUE: &str = "INSERT INTO alert_outbox \
     (idempotency_key, group_key, integration, receiver, url, body, log_firing, log_resolved, \
     log_expires_at_ms, created_at_ms, state, finished_at_ms, last_error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', NULL, '') \
     ON CONFLICT (idempotency_key) DO NOTHING";
const ENQUEUE_LOG: &str = "INSERT INTO alert_outbox_log (idempotency_key, group_key, firing, resolved) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key, group_key) DO NOTHING";
/// The other groups' entries of a delivered row, for its integration and expiry (`WHERE` before
/// `ON CONFLICT`, which SQLite needs to parse an upsert from a `SELECT`).
const UPSERT_NOTIFICATION_LOG_FROM_OUTBOX: &str = "INSERT INTO alert_notification_log \
     (group_key, integration, firing, resolved, sent_at_ms, expires_at_ms) \
     SELECT group_key, $2, firing, resolved, $3, $4 FROM alert_outbox_log WHERE idempotency_key = $1 \
     ON CONFLICT (group_key, integration) DO UPDATE SET firing = excluded.firing, \
     resolved = excluded.resolved, sent_at_ms = excluded.sent_at_ms, expires_at_ms = excluded.expires_at_ms";
const DELETE_OUTBOX_LOG_ORPHANS: &str = "DELETE FROM alert_outbox_log \
     WHERE idempotency_key NOT IN (SELECT idempotency_key FROM alert_outbox)";
const PENDING_OUTBOX: &str = "SELECT idempotency_key, group_key, integration, receiver, url, body, \
     log_firing AS log_firing_json, log_resolved AS log_resolved_json, log_expires_at_ms, created_at_ms \
     FROM alert_outbox WHERE state = 'pending' ORDER BY created_at_ms, idempotency_key";
const MARK_DELIVERED: &str = "UPDATE alert_outbox SET state = 'delivered', finished_at_ms = $2 \
     WHERE idempotency_key = $1 AND state = 'pending' \
     RETURNING group_key, integration, log_firing, log_resolved, log_expires_at_ms";
const MARK_DEAD: &str = "UPDATE alert_outbox SET state = 'dead', finished_at_ms = $3, last_error = $2 \
     WHERE idempotency_key = $1 AND state = 'pending'";
const OUTBOX_STATE: &str = "SELECT state FROM alert_outbox WHERE idempotency_key = $1";
const DEAD_LETTERS: &str = "SELECT idempotency_key, group_key, integration, receiver, url, body, \
     log_firing AS log_firing_json, log_resolved AS log_resolved_json, log_expires_at_ms, created_at_ms, \
     COALESCE(finished_at_ms, 0) AS failed_at_ms, last_error \
     FROM alert_outbox WHERE state = 'dead' \
     ORDER BY finished_at_ms DESC, idempotency_key DESC LIMIT $1";
const DELETE_OUTBOX_FINISHED: &str = "DELETE FROM alert_outbox \
     WHERE state IN ('delivered', 'dead') AND finished_at_ms < $1";

const RECORD_ATTEMPT: &str = "INSERT INTO alert_delivery_attempts \
     (idempotency_key, attempt, at_ms, duration_ms, outcome, http_status, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const ATTEMPTS: &str = "SELECT idempotency_key, attempt, at_ms, duration_ms, outcome, http_status, error \
     FROM alert_delivery_attempts WHERE ($1 IS NULL OR idempotency_key = $1) \
     ORDER BY at_ms DESC, id DESC LIMIT $2";
const DELETE_ATTEMPTS_BEFORE: &str = "DELETE FROM alert_delivery_attempts WHERE at_ms < $1";

/// Takes the lease when absent, expired or already ours (renewing it); changes no row otherwise.
const ACQUIRE_LEASE: &str = "INSERT INTO alert_leases (name, holder, expires_at_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
     WHERE alert_leases.holder = excluded.holder OR alert_leases.expires_at_ms <= $4";
const RELEASE_LEASE: &str = "DELETE FROM alert_leases WHERE name = $1 AND holder = $2";
const LEASE_HOLDER: &str = "SELECT holder FROM alert_leases WHERE name = $1 AND expires_at_ms > $2";

const PUT_RULE_GROUP: &str = "INSERT INTO alert_rule_groups (namespace, name, yaml, updated_at_ms) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (namespace, name) DO UPDATE SET yaml = excluded.yaml, updated_at_ms = excluded.updated_at_ms";
const DELETE_RULE_GROUP: &str = "DELETE FROM alert_rule_groups WHERE namespace = $1 AND name = $2";
const LIST_RULE_GROUPS: &str =
    "SELECT namespace, name, yaml, updated_at_ms FROM alert_rule_groups ORDER BY namespace, name";

const PUT_ACKNOWLEDGEMENT: &str = "INSERT INTO alert_acknowledgements \
     (fingerprint, acknowledged_by, comment, at_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (fingerprint) DO UPDATE SET acknowledged_by = excluded.acknowledged_by, \
     comment = excluded.comment, at_ms = excluded.at_ms";
const DELETE_ACKNOWLEDGEMENT: &str = "DELETE FROM alert_acknowledgements WHERE fingerprint = $1";
const DELETE_ACKNOWLEDGEMENTS_POSTGRES: &str =
    "DELETE FROM alert_acknowledgements WHERE fingerprint = ANY($1)";
const LOAD_ACKNOWLEDGEMENTS: &str = "SELECT fingerprint, acknowledged_by, comment, at_ms \
     FROM alert_acknowledgements ORDER BY fingerprint";

/// The notification-log entry an outbox row writes when delivered.
type LogEntry = (String, String, String, String, i64);

/// The alert repository of a [`Store`].
#[derive(Debug, Clone)]
pub struct AlertRepository {
    store: Store,
}

crate::backend::repository!(AlertRepository);

impl Store {
    pub fn alerts(&self) -> AlertRepository {
        AlertRepository {
            store: self.clone(),
        }
    }
}

impl AlertRepository {
    /// The store's write lock on SQLite (one writer per file); nothing on PostgreSQL.
    async fn sqlite_writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.store.pool {
            Pool::Sqlite(_) => Some(self.store.write_lock.lock().await),
            Pool::Postgres(_) => None,
        }
    }

    /// Runs one write statement binding only text, returning the rows it changed.
    async fn execute_texts(&self, statement: &'static str, texts: &[&str]) -> Result<u64> {
        let _writer = self.sqlite_writer().await;
        Ok(with_pool!(self.store, |pool| {
            let mut query = sqlx::query(statement);
            for text in texts {
                query = query.bind(*text);
            }
            query.execute(pool).await?.rows_affected()
        }))
    }

    /// Runs one write statement binding one integer, returning the rows it changed.
    async fn execute_i64(&self, statement: &'static str, value: i64) -> Result<u64> {
        let _writer = self.sqlite_writer().await;
        Ok(with_pool!(self.store, |pool| {
            sqlx::query(statement)
                .bind(value)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Deletes the rows whose `key` is one of `keys`: one statement with an array on
    /// PostgreSQL, one statement per key in a transaction on SQLite.
    async fn delete_keys(
        &self,
        postgres: &'static str,
        sqlite: &'static str,
        keys: &[String],
    ) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let _writer = self.sqlite_writer().await;
        match &self.store.pool {
            Pool::Postgres(pool) => Ok(sqlx::query(postgres)
                .bind(keys)
                .execute(pool)
                .await?
                .rows_affected()),
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let mut removed = 0;
                for key in keys {
                    removed += sqlx::query(sqlite)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }
        }
    }

    // Rule state.

    /// Writes the evaluation state of rule group `group_key`, replacing what was there.
    pub async fn save_rule_state(
        &self,
        group_key: &str,
        state_json: &str,
        updated_at_ms: i64,
    ) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            sqlx::query(UPSERT_RULE_STATE)
                .bind(group_key)
                .bind(state_json)
                .bind(updated_at_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every rule group's state as `(group_key, state_json)`, by group key.
    pub async fn load_rule_states(&self) -> Result<Vec<(String, String)>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(LOAD_RULE_STATES).fetch_all(pool).await?
        }))
    }

    /// Forgets the state of a rule group that no longer exists.
    pub async fn delete_rule_state(&self, group_key: &str) -> Result<()> {
        self.execute_texts(DELETE_RULE_STATE, &[group_key]).await?;
        Ok(())
    }

    // Alerts.

    /// Writes `rows` (replacing those with the same fingerprint) in one transaction.
    pub async fn upsert_alerts(&self, rows: &[AlertRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            for row in rows {
                sqlx::query(UPSERT_ALERT)
                    .bind(&row.fingerprint)
                    .bind(&row.labels_json)
                    .bind(&row.annotations_json)
                    .bind(row.starts_at_ms)
                    .bind(row.ends_at_ms)
                    .bind(&row.generator_url)
                    .bind(row.updated_at_ms)
                    .bind(row.timeout)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every stored alert, by fingerprint.
    pub async fn load_alerts(&self) -> Result<Vec<AlertRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(LOAD_ALERTS).fetch_all(pool).await?
        }))
    }

    /// Deletes the alerts with these fingerprints; returns how many there were.
    pub async fn delete_alerts(&self, fingerprints: &[String]) -> Result<u64> {
        self.delete_keys(DELETE_ALERTS_POSTGRES, DELETE_ALERT, fingerprints)
            .await
    }

    // Silences.

    /// Writes `rows` (replacing those with the same id) in one transaction.
    pub async fn upsert_silences(&self, rows: &[SilenceRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            for row in rows {
                sqlx::query(UPSERT_SILENCE)
                    .bind(&row.id)
                    .bind(&row.matchers_json)
                    .bind(row.starts_at_ms)
                    .bind(row.ends_at_ms)
                    .bind(row.updated_at_ms)
                    .bind(&row.created_by)
                    .bind(&row.comment)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every stored silence, by id.
    pub async fn load_silences(&self) -> Result<Vec<SilenceRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(LOAD_SILENCES).fetch_all(pool).await?
        }))
    }

    /// Deletes the silences that ended before `before_ms`; returns how many.
    pub async fn delete_silences_ended_before(&self, before_ms: i64) -> Result<u64> {
        self.execute_i64(DELETE_SILENCES_ENDED, before_ms).await
    }

    // Notification log (written by `mark_delivered`).

    /// Every notification-log entry, by group key and integration.
    pub async fn load_notification_log(&self) -> Result<Vec<NotificationLogRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(LOAD_NOTIFICATION_LOG)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Deletes the entries expired at `now_ms` (`expires_at_ms <= now_ms`); returns how many.
    pub async fn delete_notification_log_expired(&self, now_ms: i64) -> Result<u64> {
        self.execute_i64(DELETE_NOTIFICATION_LOG_EXPIRED, now_ms)
            .await
    }

    // Outbox.

    /// Writes a notification `pending`, before it is sent, with the entries of other groups its
    /// delivery will record (`also_logs`, empty but for a summary). A row with the same
    /// idempotency key is left as it is, whatever its state.
    pub async fn enqueue(&self, row: &OutboxRow, also_logs: &[OutboxLogRow]) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(ENQUEUE)
                .bind(&row.idempotency_key)
                .bind(&row.group_key)
                .bind(&row.integration)
                .bind(&row.receiver)
                .bind(&row.url)
                .bind(&row.body)
                .bind(&row.log_firing_json)
                .bind(&row.log_resolved_json)
                .bind(row.log_expires_at_ms)
                .bind(row.created_at_ms)
                .execute(&mut *tx)
                .await?;
            for log in also_logs {
                sqlx::query(ENQUEUE_LOG)
                    .bind(&row.idempotency_key)
                    .bind(&log.group_key)
                    .bind(&log.firing_json)
                    .bind(&log.resolved_json)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The notifications still to send, oldest first: after a restart, those that were in
    /// flight when the process stopped.
    pub async fn pending_outbox(&self) -> Result<Vec<OutboxRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(PENDING_OUTBOX).fetch_all(pool).await?
        }))
    }

    /// Marks a pending notification delivered and writes its notification-log entry and those of
    /// the groups it speaks for (sent at `delivered_at_ms`), in one transaction: a crash leaves either both or neither. A row no
    /// longer pending is left as it is; an unknown key is [`StoreError::NotFound`].
    pub async fn mark_delivered(&self, idempotency_key: &str, delivered_at_ms: i64) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            let entry: Option<LogEntry> = sqlx::query_as(MARK_DELIVERED)
                .bind(idempotency_key)
                .bind(delivered_at_ms)
                .fetch_optional(&mut *tx)
                .await?;
            match entry {
                Some((group_key, integration, firing, resolved, expires_at_ms)) => {
                    sqlx::query(UPSERT_NOTIFICATION_LOG)
                        .bind(group_key)
                        .bind(&integration)
                        .bind(firing)
                        .bind(resolved)
                        .bind(delivered_at_ms)
                        .bind(expires_at_ms)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(UPSERT_NOTIFICATION_LOG_FROM_OUTBOX)
                        .bind(idempotency_key)
                        .bind(&integration)
                        .bind(delivered_at_ms)
                        .bind(expires_at_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    let state: Option<String> = sqlx::query_scalar(OUTBOX_STATE)
                        .bind(idempotency_key)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if state.is_none() {
                        return Err(StoreError::NotFound);
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Gives up a pending notification after its last attempt, keeping `error`. A row no longer
    /// pending is left as it is; an unknown key is [`StoreError::NotFound`].
    pub async fn mark_dead(
        &self,
        idempotency_key: &str,
        error: &str,
        failed_at_ms: i64,
    ) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(MARK_DEAD)
                .bind(idempotency_key)
                .bind(error)
                .bind(failed_at_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                let state: Option<String> = sqlx::query_scalar(OUTBOX_STATE)
                    .bind(idempotency_key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if state.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` notifications given up, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetterRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(DEAD_LETTERS)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Deletes the delivered and dead notifications finished before `before_ms` (pending ones
    /// are never deleted); returns how many.
    pub async fn delete_outbox_finished_before(&self, before_ms: i64) -> Result<u64> {
        let deleted = self.execute_i64(DELETE_OUTBOX_FINISHED, before_ms).await?;
        if deleted > 0 {
            self.execute_texts(DELETE_OUTBOX_LOG_ORPHANS, &[]).await?;
        }
        Ok(deleted)
    }

    // Delivery attempts.

    /// Records one delivery attempt.
    pub async fn record_attempt(&self, row: &AttemptRow) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            sqlx::query(RECORD_ATTEMPT)
                .bind(&row.idempotency_key)
                .bind(row.attempt)
                .bind(row.at_ms)
                .bind(row.duration_ms)
                .bind(&row.outcome)
                .bind(row.http_status)
                .bind(&row.error)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Up to `limit` attempts, of one notification or of all, newest first.
    pub async fn attempts(
        &self,
        idempotency_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AttemptRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(ATTEMPTS)
                .bind(idempotency_key)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Deletes the attempts made before `before_ms`; returns how many.
    pub async fn delete_attempts_before(&self, before_ms: i64) -> Result<u64> {
        self.execute_i64(DELETE_ATTEMPTS_BEFORE, before_ms).await
    }

    // Leader lease.

    /// Takes lease `name` for `holder` until `now_ms + ttl_ms` when it is free, expired
    /// (`expires_at_ms <= now_ms`) or already `holder`'s (a renewal); `false` when another
    /// holder has it. One atomic statement, so two contenders never both win.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool> {
        let _writer = self.sqlite_writer().await;
        let changed = with_pool!(self.store, |pool| {
            sqlx::query(ACQUIRE_LEASE)
                .bind(name)
                .bind(holder)
                .bind(now_ms.saturating_add(ttl_ms))
                .bind(now_ms)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Gives lease `name` up, if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.execute_texts(RELEASE_LEASE, &[name, holder]).await?;
        Ok(())
    }

    /// Who holds lease `name` at `now_ms`, if anyone.
    pub async fn lease_holder(&self, name: &str, now_ms: i64) -> Result<Option<String>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_scalar(LEASE_HOLDER)
                .bind(name)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
        }))
    }

    // Rule groups stored through the API.

    /// Writes a rule group, replacing the one with the same namespace and name.
    pub async fn put_rule_group(&self, row: &RuleGroupRow) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            sqlx::query(PUT_RULE_GROUP)
                .bind(&row.namespace)
                .bind(&row.name)
                .bind(&row.yaml)
                .bind(row.updated_at_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes a rule group; `false` when there was none.
    pub async fn delete_rule_group(&self, namespace: &str, name: &str) -> Result<bool> {
        let removed = self
            .execute_texts(DELETE_RULE_GROUP, &[namespace, name])
            .await?;
        Ok(removed > 0)
    }

    /// Every stored rule group, by namespace and name.
    pub async fn list_rule_groups(&self) -> Result<Vec<RuleGroupRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(LIST_RULE_GROUPS).fetch_all(pool).await?
        }))
    }

    // Acknowledgements.

    /// Writes an acknowledgement, replacing the alert's previous one.
    pub async fn put_acknowledgement(&self, row: &AcknowledgementRow) -> Result<()> {
        let _writer = self.sqlite_writer().await;
        with_pool!(self.store, |pool| {
            sqlx::query(PUT_ACKNOWLEDGEMENT)
                .bind(&row.fingerprint)
                .bind(&row.acknowledged_by)
                .bind(&row.comment)
                .bind(row.at_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes the acknowledgements of these alerts; returns how many there were.
    pub async fn delete_acknowledgements(&self, fingerprints: &[String]) -> Result<u64> {
        self.delete_keys(
            DELETE_ACKNOWLEDGEMENTS_POSTGRES,
            DELETE_ACKNOWLEDGEMENT,
            fingerprints,
        )
        .await
    }

    /// Every acknowledgement, by fingerprint.
    pub async fn load_acknowledgements(&self) -> Result<Vec<AcknowledgementRow>> {
        Ok(with_pool!(self.store, |pool| {
            sqlx::query_as(LOAD_ACKNOWLEDGEMENTS)
                .fetch_all(pool)
                .await?
        }))
    }
}
