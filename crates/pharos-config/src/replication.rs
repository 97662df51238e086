//! How changes reach this replica's cache and watchers, exactly once and in
//! revision order: the [`Replicator`] applies committed changes one revision
//! after another, from this replica's own writes (at once), from PostgreSQL
//! NOTIFY (other replicas' writes, within a millisecond or so), and from the
//! change log whenever it sees a gap, a lost connection or a periodic check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use futures::future::BoxFuture;
use pharos_runtime::Shutdown;
use pharos_store::control::config::{CHANGES_CHANNEL, ChangeNotice, ChangeRow, ConfigRepository};
use pharos_store::control::follow::{Follower, ReplicaSettings, replicate};

use crate::cache::ConfigCache;
use crate::convert;
use crate::error::{ConfigError, Result};
use crate::metrics::ConfigMetrics;
use crate::watch::{Hub, WatchItem};

/// Changes read from the log per query while catching up.
const CATCH_UP_PAGE: usize = 1000;

/// Applies committed changes to the cache and the watch hub, in order.
pub struct Replicator {
    repository: ConfigRepository,
    cache: Arc<ConfigCache>,
    hub: Arc<Hub>,
    /// The last revision applied here; held while applying, so application is
    /// serialised.
    last_applied: tokio::sync::Mutex<i64>,
    /// A lock-free copy of `last_applied` for health reports.
    applied: AtomicI64,
    /// Whether the notification connection is up (always true on SQLite).
    listening: AtomicBool,
    metrics: ConfigMetrics,
}

impl Replicator {
    pub async fn new(
        repository: ConfigRepository,
        cache: Arc<ConfigCache>,
        hub: Arc<Hub>,
        metrics: ConfigMetrics,
    ) -> Result<Arc<Self>> {
        let current = repository.revisions().await?.current;
        Ok(Arc::new(Self {
            repository,
            cache,
            hub,
            last_applied: tokio::sync::Mutex::new(current),
            applied: AtomicI64::new(current),
            listening: AtomicBool::new(true),
            metrics,
        }))
    }

    pub fn applied_revision(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Applies `change` (committed) and anything before it not yet applied.
    pub async fn apply(&self, change: ChangeRow) -> Result<()> {
        let mut last = self.last_applied.lock().await;
        if change.revision <= *last {
            return Ok(());
        }
        if change.revision == *last + 1 {
            self.apply_one(&change).await;
            *last = change.revision;
            self.applied.store(*last, Ordering::Release);
            return Ok(());
        }
        self.catch_up_locked(&mut last).await
    }

    /// Applies every committed change after the last applied one.
    pub async fn catch_up(&self) -> Result<()> {
        let mut last = self.last_applied.lock().await;
        self.catch_up_locked(&mut last).await
    }

    async fn catch_up_locked(&self, last: &mut i64) -> Result<()> {
        loop {
            let changes = self.repository.changes_after(*last, CATCH_UP_PAGE).await?;
            let Some(first) = changes.first() else {
                break;
            };
            if first.revision > *last + 1 {
                // The log was compacted past what this replica had applied:
                // the missing changes cannot be replayed.
                tracing::warn!(
                    applied = *last,
                    next = first.revision,
                    "changes missed beyond the change log's retention; dropping the cache and ending watch streams"
                );
                self.cache.invalidate_all();
                self.hub.close_all(ConfigError::RevisionCompacted {
                    requested: *last,
                    compacted: first.revision - 1,
                });
            }
            for change in &changes {
                self.apply_one(change).await;
                *last = change.revision;
            }
            self.applied.store(*last, Ordering::Release);
            if changes.len() < CATCH_UP_PAGE {
                break;
            }
        }
        Ok(())
    }

    async fn apply_one(&self, change: &ChangeRow) {
        self.cache.apply(change).await;
        self.hub.publish(Arc::new(WatchItem {
            revision: change.revision,
            key: change.key.clone(),
            environment: change.environment.clone(),
            event: convert::watch_event(change),
        }));
        let lag =
            (self.repository.store().clock().now_micros() - change.changed_at).max(0) as f64 / 1e6;
        self.metrics.apply_lag.record(lag, &[]);
    }

    /// Spawns the task that keeps this replica current (see [`replicate`]): NOTIFY on
    /// PostgreSQL, the periodic catch-up check and change-log compaction.
    pub fn spawn_tasks(self: &Arc<Self>, intervals: ReplicaSettings, shutdown: Shutdown) {
        let replicator = self.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let shutdown = stop;
            let store = replicator.repository.store().clone();
            tokio::select! {
                () = replicate(&store, CHANGES_CHANNEL, &*replicator, intervals) => {}
                () = shutdown.wait() => {}
            }
        });
    }
}

/// Configuration changes from other replicas: a notice carries the whole change when it fits in
/// a NOTIFY payload, else only its revision.
impl Follower for Replicator {
    fn subject(&self) -> &'static str {
        "configuration changes"
    }

    fn catch_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            if let Err(error) = Replicator::catch_up(self).await {
                tracing::warn!(%error, "catch-up from the configuration change log failed");
            }
        })
    }

    fn notified<'a>(&'a self, payload: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let result = match serde_json::from_str::<ChangeNotice>(payload) {
                Ok(ChangeNotice::Full(change)) => self.apply(change).await,
                Ok(ChangeNotice::Revision { .. }) | Err(_) => Replicator::catch_up(self).await,
            };
            if let Err(error) = result {
                tracing::warn!(%error, "applying a notified configuration change failed");
            }
        })
    }

    fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Relaxed);
    }

    fn applied_revision(&self) -> i64 {
        Replicator::applied_revision(self)
    }

    fn committed_revision(&self) -> BoxFuture<'_, pharos_store::Result<i64>> {
        Box::pin(async { Ok(self.repository.revisions().await?.current) })
    }

    fn compact(&self, before_micros: i64) -> BoxFuture<'_, pharos_store::Result<Option<i64>>> {
        Box::pin(self.repository.compact(before_micros))
    }
}
